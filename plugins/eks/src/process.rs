//! What both plugin commands do around their controller: logging to stderr, the Kubernetes
//! client (`--kubeconfig`, else `$KUBECONFIG`, else in-cluster), the Lease identity and
//! namespace, and the shutdown signal (SIGTERM or Ctrl-C).

use std::path::Path;
use std::process::ExitCode;

use crate::lease::Election;

/// A plugin command's `main`: the parsed flags (`--help`/`--version` print and succeed, a bad
/// flag prints clap's message naming it and exits 1), their checked settings (a message naming
/// the flag, exit 1), the `--enable-http2` notice, logging, then `run`; its error is printed
/// after the command's name and exits 1.
pub fn main<F, S>(
    name: &str,
    flags: Result<F, clap::Error>,
    settings: impl FnOnce(&F) -> Result<S, String>,
    enable_http2: impl FnOnce(&S) -> bool,
    run: impl FnOnce(S) -> Result<(), String>,
) -> ExitCode {
    let flags = match flags {
        Ok(flags) => flags,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let settings = match settings(&flags) {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    if enable_http2(&settings) {
        eprintln!(
            "--enable-http2: this build serves metrics over HTTP/1.1 only; the flag has no effect"
        );
    }
    init_tracing();
    match run(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{name}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Structured logs on stderr, level from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The Lease namespace: POD_NAMESPACE, else the service account's.
pub fn pod_namespace() -> Option<String> {
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

/// The election of `controller` on `lease` when `--leader-elect` is on: identity
/// `<pod or host>_<uuid>`, namespace from [`pod_namespace`].
pub fn election(
    leader_elect: bool,
    lease: &str,
    controller: &str,
) -> Result<Option<Election>, String> {
    if !leader_elect {
        return Ok(None);
    }
    let namespace =
        pod_namespace().ok_or("--leader-elect: no lease namespace (set POD_NAMESPACE)")?;
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| controller.into());
    let identity = format!("{host}_{}", uuid::Uuid::new_v4());
    Ok(Some(Election::new(lease, &namespace, &identity)))
}

/// The management cluster's client.
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, String> {
    let config = match kubeconfig {
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

/// SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
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
