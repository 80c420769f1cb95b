//! The `eks-kubeconfig-rotator` command ([ROT-01]): parses the flags, builds the Kubernetes
//! client (`--kubeconfig`, else `$KUBECONFIG`, else in-cluster) and the AWS default credentials
//! chain, and runs the rotator until SIGTERM or Ctrl-C.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use kany8s_eks::ROTATOR;
use kany8s_eks::flags::{Flags, LEASE_NAME, Settings};
use kany8s_eks::manager::{self, Config};
use kany8s_eks::metrics::Metrics;
use kany8s_eks::process;
use kany8s_eks::rotator::run::Options;
use kany8s_eks::token::TokenSource;

fn main() -> ExitCode {
    let flags = Flags::parse_args(std::env::args_os());
    let http2 = flags.as_ref().is_ok_and(|f| f.process.enable_http2);
    process::main(ROTATOR, flags, Flags::settings, |_| http2, run)
}

fn run(settings: Settings) -> Result<(), String> {
    let election = process::election(settings.leader_elect, LEASE_NAME, ROTATOR)?;
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
        let client = process::client(settings.kubeconfig.as_deref()).await?;
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
        manager::run(client, config, process::shutdown_signal(), None)
            .await
            .map_err(|e| e.to_string())
    });
    // In-flight watches are abandoned so the process exits promptly.
    runtime.shutdown_timeout(Duration::from_secs(2));
    outcome
}
