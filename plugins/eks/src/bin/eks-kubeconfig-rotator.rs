//! The `eks-kubeconfig-rotator` command ([ROT-01]): parses the flags, builds the Kubernetes
//! client (`--kubeconfig`, else `$KUBECONFIG`, else in-cluster) and the AWS default credentials
//! chain, and runs the rotator until SIGTERM or Ctrl-C.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use kany8s_eks::ROTATOR;
use kany8s_eks::flags::{Flags, LEASE_NAME, Settings};
use kany8s_eks::lease::Election;
use kany8s_eks::manager::{self, Config};
use kany8s_eks::metrics::Metrics;
use kany8s_eks::rotator::run::Options;
use kany8s_eks::token::TokenSource;

fn main() -> ExitCode {
    let flags = match Flags::parse_args(std::env::args_os()) {
        Ok(flags) => flags,
        Err(error) if !error.use_stderr() => {
            // --help and --version.
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let _ = error.print();
            return ExitCode::FAILURE;
        }
    };
    let settings = match flags.settings() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    if flags.enable_http2 {
        eprintln!(
            "--enable-http2: this build serves metrics over HTTP/1.1 only; the flag has no effect"
        );
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("eks-kubeconfig-rotator: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The Lease namespace: POD_NAMESPACE, else the service account's.
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

async fn client(settings: &Settings) -> Result<kube::Client, String> {
    let config = match &settings.kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("--kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| format!("--kubeconfig {}: {e}", path.display()))?
        }
        // $KUBECONFIG (or ~/.kube/config) first, then in-cluster, as controller-runtime does.
        None => {
            match kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions::default()).await {
                Ok(config) => config,
                Err(_) => kube::Config::incluster()
                    .map_err(|e| format!("no kubeconfig and not in a cluster: {e}"))?,
            }
        }
    };
    kube::Client::try_from(config).map_err(|e| e.to_string())
}

fn run(settings: Settings) -> Result<(), String> {
    let election = if settings.leader_elect {
        let namespace =
            pod_namespace().ok_or("--leader-elect: no lease namespace (set POD_NAMESPACE)")?;
        let host = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| ROTATOR.into());
        let identity = format!("{host}_{}", uuid::Uuid::new_v4());
        Some(Election::new(LEASE_NAME, &namespace, &identity))
    } else {
        None
    };
    let metrics = Arc::new(Metrics::new(
        ROTATOR,
        1,
        election.as_ref().map(|e| e.name.as_str()),
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let outcome = runtime.block_on(async move {
        let client = client(&settings).await?;
        let tokens = TokenSource::default_chain().await;
        let config = Config {
            options: Options {
                namespace: settings.watch_namespace.clone(),
                policy: settings.policy,
                instance: std::env::var("POD_NAME").ok(),
                metrics,
                ..Options::default()
            },
            tokens,
            election,
            health_address: settings.health_address,
            metrics_address: settings.metrics_address,
        };
        manager::run(client, config, shutdown_signal(), None)
            .await
            .map_err(|e| e.to_string())
    });
    // In-flight watches are abandoned so the process exits promptly.
    runtime.shutdown_timeout(Duration::from_secs(2));
    outcome
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutdown requested");
}
