//! The `kany8s-acceptance` command: the local sandbox and the acceptance runners.

use std::path::PathBuf;
use std::process::ExitCode;

use acceptance::harness::Target;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "kany8s-acceptance",
    version,
    about = "Kany8s test harness: the sandbox and the acceptance runners"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TargetArg {
    Embedded,
    Upstream,
    Kind,
}

impl From<TargetArg> for Target {
    fn from(target: TargetArg) -> Self {
        match target {
            TargetArg::Embedded => Target::Embedded,
            TargetArg::Upstream => Target::Upstream,
            TargetArg::Kind => Target::Kind,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a target with the kany8s managers (embedded: the embedded API server, fake-kro and
    /// the simulated Cluster API core; upstream: the real etcd, kube-apiserver, kro and Cluster
    /// API processes); print the KUBECONFIG to use and a line with `ready`; run until
    /// interrupted.
    Sandbox {
        /// Where to write the kubeconfig.
        #[arg(long, default_value = ".sandbox/kubeconfig")]
        kubeconfig: PathBuf,
        /// The API server's listen address (upstream: 127.0.0.1 only; port 0 picks one).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        #[arg(long, value_enum, default_value = "embedded")]
        target: TargetArg,
    },
    /// Run one acceptance scenario.
    Run {
        /// The scenario (see `list`).
        scenario: String,
        #[arg(long, value_enum, default_value = "embedded")]
        target: TargetArg,
        /// Where a failing scenario leaves its objects, events and logs.
        #[arg(long, default_value = "artifacts")]
        artifacts: PathBuf,
        /// Keep the scenario's namespace after success.
        #[arg(long)]
        keep: bool,
    },
    /// List the scenarios.
    List,
    /// Scale and chaos benchmarks (docs/performance.md).
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// N clusters to convergence, a quiet steady state and deletion; one line per N.
    Scale {
        /// Comma-separated cluster counts.
        #[arg(long, default_value = "100,1000", value_delimiter = ',')]
        clusters: Vec<usize>,
        /// Length of the steady-state window.
        #[arg(long, default_value_t = 120)]
        steady_secs: u64,
        /// The kany8s binary (default: next to this one).
        #[arg(long)]
        manager: Option<PathBuf>,
        /// The API server: the embedded one, or real kube-apiserver and etcd (`make upstream`).
        #[arg(long, value_enum, default_value_t = BenchTarget::Embedded)]
        target: BenchTarget,
    },
    /// Clusters under injected API faults, dropped watches and manager restarts.
    Chaos {
        #[arg(long, default_value_t = 1000)]
        clusters: usize,
        /// Kill and restart the manager this often.
        #[arg(long, default_value_t = 15)]
        restart_secs: u64,
        #[arg(long)]
        manager: Option<PathBuf>,
    },
}

/// The API server of `bench scale`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum BenchTarget {
    Embedded,
    Upstream,
}

impl From<BenchTarget> for acceptance::bench::Target {
    fn from(target: BenchTarget) -> Self {
        match target {
            BenchTarget::Embedded => Self::Embedded,
            BenchTarget::Upstream => Self::Upstream,
        }
    }
}

/// The kany8s binary next to this one (cargo puts both in the same target folder).
fn manager_binary(given: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(path) = given {
        return Ok(path);
    }
    let me = std::env::current_exe().map_err(|e| format!("locating this binary: {e}"))?;
    let sibling = me.with_file_name("kany8s");
    if sibling.exists() {
        Ok(sibling)
    } else {
        Err(format!(
            "{} not found: build it (cargo build --release -p kany8s) or pass --manager",
            sibling.display()
        ))
    }
}

async fn bench(which: BenchCommand) -> Result<(), String> {
    match which {
        BenchCommand::Scale {
            clusters,
            steady_secs,
            manager,
            target,
        } => {
            let manager = manager_binary(manager)?;
            let target = acceptance::bench::Target::from(target);
            for n in clusters {
                let report = acceptance::bench::scale(
                    n,
                    std::time::Duration::from_secs(steady_secs),
                    &manager,
                    target,
                )
                .await
                .map_err(|e| format!("scale {n} ({target}): {e}"))?;
                match target {
                    acceptance::bench::Target::Embedded => {
                        println!("bench scale: {report} (steady window {steady_secs}s)")
                    }
                    acceptance::bench::Target::Upstream => println!(
                        "bench scale: target=upstream {report} (steady window {steady_secs}s)"
                    ),
                }
            }
            Ok(())
        }
        BenchCommand::Chaos {
            clusters,
            restart_secs,
            manager,
        } => {
            let manager = manager_binary(manager)?;
            let report = acceptance::bench::chaos(
                clusters,
                std::time::Duration::from_secs(restart_secs),
                &manager,
            )
            .await
            .map_err(|e| format!("chaos: {e}"))?;
            println!("bench chaos: {report}");
            let bad = report.duplicate_instances
                + report.initialized_flips
                + report.foreign_secrets_overwritten
                + report.panics;
            if bad > 0 {
                return Err(format!("{bad} invariant violations"));
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kany8s-acceptance: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::List => {
            for (name, on_kind) in acceptance::scenarios::ALL {
                println!(
                    "{name}{}",
                    if *on_kind {
                        ""
                    } else {
                        " (embedded and upstream only)"
                    }
                );
            }
            ExitCode::SUCCESS
        }
        Command::Run {
            scenario,
            target,
            artifacts,
            keep,
        } => {
            match runtime.block_on(acceptance::run_scenario(
                &scenario,
                target.into(),
                &artifacts,
                keep,
            )) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("kany8s-acceptance: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Bench { which } => match runtime.block_on(bench(which)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kany8s-acceptance: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Sandbox {
            kubeconfig,
            listen,
            target,
        } => {
            let started = match target {
                TargetArg::Embedded => runtime.block_on(sandbox(kubeconfig, listen)),
                TargetArg::Upstream => runtime.block_on(sandbox_upstream(kubeconfig, listen)),
                TargetArg::Kind => {
                    Err("the kind target is a cluster of its own: scripts/kind-up.sh".into())
                }
            };
            match started {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("kany8s-acceptance: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Writes the sandbox's JSON logs to `sandbox.log` beside the kubeconfig; returns its path.
fn sandbox_logs(kubeconfig: &std::path::Path) -> Result<PathBuf, String> {
    if let Some(dir) = kubeconfig.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let log_path = kubeconfig.with_file_name("sandbox.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("creating {}: {e}", log_path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,kube_runtime=warn,kube_client=warn")
    });
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::sync::Mutex::new(log))
        .init();
    Ok(log_path)
}

async fn sandbox(kubeconfig: PathBuf, listen: String) -> Result<(), String> {
    let log_path = sandbox_logs(&kubeconfig)?;
    let env = acceptance::env::Embedded::start(&listen, &kubeconfig)
        .await
        .map_err(|e| e.to_string())?;
    let absolute = std::fs::canonicalize(&kubeconfig).unwrap_or(kubeconfig);
    println!(
        "kany8s sandbox ready at http://{} (logs: {})",
        env.address,
        log_path.display()
    );
    println!("export KUBECONFIG={}", absolute.display());
    let _ = tokio::signal::ctrl_c().await;
    println!("kany8s sandbox stopped");
    Ok(())
}

async fn sandbox_upstream(kubeconfig: PathBuf, listen: String) -> Result<(), String> {
    let (host, port) = listen
        .rsplit_once(':')
        .ok_or_else(|| format!("--listen {listen}: expected 127.0.0.1:PORT"))?;
    if host != "127.0.0.1" {
        return Err(format!(
            "--listen {listen}: the upstream target listens on 127.0.0.1 only"
        ));
    }
    let port: u16 = port
        .parse()
        .map_err(|e| format!("--listen {listen}: port: {e}"))?;
    let log_path = sandbox_logs(&kubeconfig)?;
    let absolute = std::path::absolute(&kubeconfig).unwrap_or(kubeconfig);
    let dir = absolute
        .parent()
        .map(|d| d.join("upstream"))
        .unwrap_or_else(|| PathBuf::from("upstream"));
    // A leftover etcd of an earlier sandbox would bring its objects back.
    let _ = std::fs::remove_dir_all(&dir);
    let mut options = acceptance::upstream::Options::new(&dir, &absolute);
    options.port = port;
    let started = std::time::Instant::now();
    let stack = acceptance::upstream::Upstream::start(options)
        .await
        .map_err(|e| e.to_string())?;
    for (component, took) in &stack.timings {
        println!("  {component}: {:.1} s", took.as_secs_f64());
    }
    println!(
        "kany8s upstream sandbox ready at {} in {:.1} s (logs: {}, {})",
        stack.server,
        started.elapsed().as_secs_f64(),
        log_path.display(),
        stack.logs.display()
    );
    println!("export KUBECONFIG={}", absolute.display());
    println!(
        "export PATH={}:$PATH  # the target's kubectl",
        stack.bin.display()
    );
    let _ = tokio::signal::ctrl_c().await;
    drop(stack);
    println!("kany8s sandbox stopped");
    Ok(())
}
