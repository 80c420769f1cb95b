//! The `eks-karpenter-bootstrapper` command ([KB-01]): parses the flags, builds the Kubernetes
//! client (`--kubeconfig`, else `$KUBECONFIG`, else in-cluster) and the EC2 client (the AWS
//! default credentials chain, `--aws-endpoint-url`), and runs the bootstrapper until SIGTERM or
//! Ctrl-C.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use kany8s_eks::BOOTSTRAPPER;
use kany8s_eks::bootstrapper::ec2::Ec2;
use kany8s_eks::bootstrapper::flags::{Flags, LEASE_NAME, Settings};
use kany8s_eks::bootstrapper::run::{Options, run as run_bootstrapper};
use kany8s_eks::manager::{self, Process};
use kany8s_eks::metrics::Metrics;
use kany8s_eks::process;

fn main() -> ExitCode {
    process::main(
        BOOTSTRAPPER,
        Flags::parse_args(std::env::args_os()),
        Flags::settings,
        |s: &Settings| s.process.enable_http2,
        run,
    )
}

fn run(settings: Settings) -> Result<(), String> {
    let election = process::election(settings.process.leader_elect, LEASE_NAME, BOOTSTRAPPER)?;
    let metrics = Arc::new(Metrics::new(
        BOOTSTRAPPER,
        1,
        election.as_ref().map(|e| e.name.as_str()),
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let outcome = runtime.block_on(async move {
        let client = process::client(settings.process.kubeconfig.as_deref()).await?;
        let ec2 = Ec2::default_chain(settings.aws_endpoint_url.clone()).await;
        let options = Options {
            namespace: settings.process.watch_namespace.clone(),
            timing: settings.timing,
            chart_version: settings.chart_version.clone(),
            instance: std::env::var("POD_NAME").ok(),
            metrics: metrics.clone(),
            ..Options::default()
        };
        let process = Process {
            name: BOOTSTRAPPER,
            metrics,
            election,
            health_address: settings.process.health_address,
            metrics_address: settings.process.metrics_address,
        };
        let bootstrapper = run_bootstrapper(client.clone(), options, ec2);
        manager::serve(
            client,
            process,
            bootstrapper,
            process::shutdown_signal(),
            None,
        )
        .await
        .map_err(|e| e.to_string())
    });
    // In-flight watches are abandoned so the process exits promptly.
    runtime.shutdown_timeout(Duration::from_secs(2));
    outcome
}
