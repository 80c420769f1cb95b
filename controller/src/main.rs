//! The `kany8s` command: the manager of the Kany8s controllers and its helper subcommands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    Run {
        /// Controller groups to run (repeatable): `control-plane` or `infrastructure`.
        #[arg(long = "enable-controller", value_name = "GROUP")]
        enable_controller: Vec<String>,
        /// Restrict every namespaced watch to this namespace (empty: all).
        #[arg(long, default_value = "")]
        namespace: String,
        /// Only reconcile objects labelled cluster.x-k8s.io/watch-filter=<value>.
        #[arg(long, default_value = "")]
        watch_filter: String,
        /// Kubeconfig (default: in-cluster, then KUBECONFIG).
        #[arg(long, value_name = "PATH")]
        kubeconfig: Option<PathBuf>,
        /// `text` or `json`.
        #[arg(long, default_value = "text")]
        log_format: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crds { output_dir } => crds(output_dir),
        Command::Run {
            enable_controller,
            namespace,
            watch_filter,
            kubeconfig,
            log_format,
        } => {
            for group in &enable_controller {
                if group != "control-plane" && group != "infrastructure" {
                    eprintln!(
                        "unknown controller group \"{group}\" (supported: infrastructure, control-plane)"
                    );
                    return ExitCode::from(2);
                }
            }
            if enable_controller.iter().any(|g| g == "infrastructure") {
                eprintln!("kany8s: the infrastructure controller group is not built yet");
                return ExitCode::from(2);
            }
            let options = kany8s::controlplane::Options {
                namespace: Some(namespace).filter(|n| !n.is_empty()),
                watch_filter: Some(watch_filter).filter(|w| !w.is_empty()),
                instance: std::env::var("POD_NAME").ok(),
            };
            run(kubeconfig, &log_format, options)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("kany8s: {message}");
            ExitCode::FAILURE
        }
    }
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

fn run(
    kubeconfig: Option<PathBuf>,
    log_format: &str,
    options: kany8s::controlplane::Options,
) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log_format {
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
    runtime.block_on(async move {
        let config = match kubeconfig {
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
        let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
        tracing::info!(namespace = ?options.namespace, "starting the control-plane controller");
        kany8s::controlplane::run(client, options).await;
        Ok(())
    })
}
