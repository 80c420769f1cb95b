//! The `kany8s` command: the manager of the Kany8s controllers and its helper subcommands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use kany8s::manager;

#[derive(Debug, Parser)]
#[command(
    name = "kany8s",
    version,
    about = "Cluster API providers driven by kro ResourceGraphDefinitions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the Kany8s CRDs as multi-document YAML, or write one file per CRD.
    Crds {
        /// Write `<group>_<plural>.yaml` files into this folder instead of printing.
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
    },
    /// Run the manager: the controllers of the enabled groups, until SIGTERM or Ctrl-C.
    Run(Box<RunArgs>),
}

/// The manager's flags ([MGR-01]).
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Controller groups to run (repeatable): `control-plane` or `infrastructure`; none: all.
    #[arg(long = "enable-controller", value_name = "GROUP")]
    enable_controller: Vec<String>,
    /// Restrict every namespaced watch to this namespace (empty: all).
    #[arg(long, default_value = "")]
    namespace: String,
    /// Only reconcile objects labelled cluster.x-k8s.io/watch-filter=<value>.
    #[arg(long, default_value = "")]
    watch_filter: String,
    /// Run the controllers only while holding the leader-election Lease.
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Lease name (default: computed from the enabled groups).
    #[arg(long, default_value = "")]
    leader_election_id: String,
    /// Lease namespace (default: POD_NAMESPACE, else the service-account namespace).
    #[arg(long, default_value = "")]
    leader_election_namespace: String,
    /// Metrics address (`:8443`, `127.0.0.1:9090`); `0` disables.
    #[arg(long, default_value = "0")]
    metrics_bind_address: String,
    /// Serve metrics over HTTPS with TokenReview/SubjectAccessReview (not built: pass false).
    #[arg(long, num_args = 0..=1, default_value_t = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    metrics_secure: bool,
    /// Health probe address (`/healthz`, `/readyz`); `0` disables.
    #[arg(long, default_value = ":8081")]
    health_probe_bind_address: String,
    /// Periodic re-enqueue of every object (`10m`, `30s`, `1h`).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    sync_period: Duration,
    /// Maximum concurrent reconciles per controller.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Kubeconfig (default: in-cluster, then KUBECONFIG).
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// `text` or `json`.
    #[arg(long, default_value = "text")]
    log_format: String,
    /// Log verbosity: 0 info, 1-3 debug, 4 and more trace (RUST_LOG overrides).
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    verbosity: u8,
}

/// Go-style durations: `500ms`, `30s`, `10m`, `1h`, and sums such as `1m30s`.
fn parse_duration(value: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration \"{value}\" (examples: 30s, 10m, 1h)");
    let mut total = Duration::ZERO;
    let mut rest = value.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(invalid)?;
        let number: f64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ms" => number / 1000.0,
            "s" => number,
            "m" => number * 60.0,
            "h" => number * 3600.0,
            _ => return Err(invalid()),
        };
        total += Duration::from_secs_f64(seconds);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// `:8081` → all interfaces; `0` or empty → disabled.
fn parse_address(flag: &str, value: &str) -> Result<Option<SocketAddr>, String> {
    match value {
        "" | "0" => Ok(None),
        v if v.starts_with(':') => format!("0.0.0.0{v}")
            .parse()
            .map(Some)
            .map_err(|e| format!("--{flag}: \"{value}\": {e}")),
        v => v
            .parse()
            .map(Some)
            .map_err(|e| format!("--{flag}: \"{value}\": {e}")),
    }
}

/// The Lease namespace when not given: POD_NAMESPACE, else the service account's.
fn pod_namespace() -> Option<String> {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                .ok()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
        })
}

/// The manager's flags may come without the `run` subcommand, as the manifests pass them
/// (`/kany8s --leader-elect ...`, [PKG-03]).
fn arguments() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let flag_first = args
        .get(1)
        .and_then(|a| a.to_str())
        .is_some_and(|a| a.starts_with('-') && !matches!(a, "-h" | "--help" | "-V" | "--version"));
    if flag_first {
        args.insert(1, "run".into());
    }
    args
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(arguments());
    let result = match cli.command {
        Command::Crds { output_dir } => crds(output_dir),
        Command::Run(args) => match manager_config(&args) {
            Ok(config) => run(&args, config),
            Err(message) => {
                eprintln!("{message}");
                return ExitCode::from(2);
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("kany8s: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Validates the flags into the manager's configuration; errors are usage errors (exit 2).
fn manager_config(args: &RunArgs) -> Result<manager::Config, String> {
    let mut groups = Vec::new();
    for value in &args.enable_controller {
        groups.push(manager::Group::parse(value)?);
    }
    let metrics_address = parse_address("metrics-bind-address", &args.metrics_bind_address)?;
    if metrics_address.is_some() && args.metrics_secure {
        return Err("--metrics-secure: HTTPS metrics with TokenReview authentication are not built yet; pass --metrics-secure=false to serve /metrics over HTTP".into());
    }
    let health_address =
        parse_address("health-probe-bind-address", &args.health_probe_bind_address)?;
    let leader_election = if args.leader_elect {
        let name = Some(args.leader_election_id.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| manager::lease_name(&groups));
        let namespace = Some(args.leader_election_namespace.clone())
            .filter(|n| !n.is_empty())
            .or_else(pod_namespace)
            .ok_or("--leader-elect: no lease namespace (set --leader-election-namespace or POD_NAMESPACE)")?;
        let host = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "kany8s".into());
        let identity = format!("{host}_{}", uuid::Uuid::new_v4());
        Some(manager::LeaderElection::new(name, namespace, identity))
    } else {
        None
    };
    let active: Vec<&str> = manager::Group::enabled(&groups)
        .iter()
        .flat_map(|g| g.controllers().iter().copied())
        .collect();
    let metrics = Arc::new(kany8s::metrics::Metrics::new(
        &active,
        args.concurrency,
        leader_election.as_ref().map(|e| e.name.as_str()),
    ));
    Ok(manager::Config {
        groups,
        options: manager::Options {
            namespace: Some(args.namespace.clone()).filter(|n| !n.is_empty()),
            watch_filter: Some(args.watch_filter.clone()).filter(|w| !w.is_empty()),
            instance: std::env::var("POD_NAME").ok(),
            sync_period: args.sync_period,
            concurrency: args.concurrency,
            metrics,
        },
        leader_election,
        health_address,
        metrics_address,
    })
}

fn crds(output_dir: Option<PathBuf>) -> Result<(), String> {
    let Some(dir) = output_dir else {
        let yaml = kany8s::crds::render_all().map_err(|e| e.to_string())?;
        print!("{yaml}");
        return Ok(());
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for crd in kany8s::crds::all().map_err(|e| e.to_string())? {
        let path = dir.join(kany8s::crds::file_name(&crd));
        let yaml = kany8s::crds::render(&crd).map_err(|e| e.to_string())?;
        std::fs::write(&path, format!("---\n{yaml}"))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}

fn run(args: &RunArgs, config: manager::Config) -> Result<(), String> {
    let default_level = match args.verbosity {
        0 => "info",
        1..=3 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format.as_str() {
        "json" => builder.json().init(),
        "text" => builder.init(),
        other => {
            return Err(format!(
                "--log-format: unknown format \"{other}\" (text, json)"
            ));
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let kubeconfig = args.kubeconfig.clone();
    let outcome = runtime.block_on(async move {
        let config_kube = match kubeconfig {
            Some(path) => {
                let file = kube::config::Kubeconfig::read_from(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                kube::Config::from_custom_kubeconfig(
                    file,
                    &kube::config::KubeConfigOptions::default(),
                )
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => kube::Config::infer().await.map_err(|e| e.to_string())?,
        };
        let client = kube::Client::try_from(config_kube).map_err(|e| e.to_string())?;
        manager::run(client, config, shutdown_signal(), None)
            .await
            .map_err(|e| e.to_string())
    });
    // [MGR-04]: in-flight watch tasks are abandoned so the process exits promptly.
    runtime.shutdown_timeout(Duration::from_secs(2));
    outcome
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM; Ctrl-C only");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutdown requested");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// [MGR-01]: `--sync-period` and the bind addresses.
    #[test]
    fn mgr01_flag_values() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "10", "m", "10x", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_address("a", "0"), Ok(None));
        assert_eq!(
            parse_address("a", ":8081"),
            Ok(Some("0.0.0.0:8081".parse().unwrap()))
        );
        assert_eq!(
            parse_address("a", "127.0.0.1:9"),
            Ok(Some("127.0.0.1:9".parse().unwrap()))
        );
        assert!(
            parse_address("metrics-bind-address", "x:1")
                .unwrap_err()
                .starts_with("--metrics-bind-address: \"x:1\"")
        );
    }

    fn args(extra: &[&str]) -> RunArgs {
        let mut argv = vec!["kany8s", "run"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Run(args) => *args,
            Command::Crds { .. } => unreachable!(),
        }
    }

    /// [MGR-01], [MGR-02]: groups, the secure-metrics refusal and the computed Lease.
    #[test]
    fn mgr01_manager_config() {
        let config = manager_config(&args(&[])).unwrap();
        assert!(config.groups.is_empty());
        assert_eq!(config.options.sync_period, Duration::from_secs(600));
        assert_eq!(config.options.concurrency, 10);
        assert_eq!(config.health_address, Some("0.0.0.0:8081".parse().unwrap()));
        assert_eq!(config.metrics_address, None);
        let err = manager_config(&args(&["--enable-controller", "bootstrap"])).unwrap_err();
        assert_eq!(
            err,
            "unknown controller group \"bootstrap\" (supported: infrastructure, control-plane)"
        );
        let err = manager_config(&args(&["--metrics-bind-address=:8443"])).unwrap_err();
        assert!(err.starts_with("--metrics-secure:"), "{err}");
        let config = manager_config(&args(&[
            "--metrics-bind-address=:8443",
            "--metrics-secure=false",
            "--leader-elect",
            "--leader-election-namespace=kany8s-system",
            "--enable-controller=infrastructure",
        ]))
        .unwrap();
        let election = config.leader_election.unwrap();
        assert_eq!(election.name, "infrastructure.4d5f86eb.cluster.x-k8s.io");
        assert_eq!(election.namespace, "kany8s-system");
        assert_eq!(election.lease_duration, Duration::from_secs(15));
        assert!(Cli::try_parse_from(["kany8s", "run", "--concurrency=0"]).is_err());
        assert!(Cli::try_parse_from(["kany8s", "run", "--sync-period=soon"]).is_err());
    }
}
