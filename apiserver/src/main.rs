//! `kany8s-apiserver`: serves the embedded API server on loopback and writes a kubeconfig.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kany8s_apiserver::Server;

#[derive(Debug, Parser)]
#[command(
    name = "kany8s-apiserver",
    version,
    about = "An embedded, in-memory, Kubernetes-compatible API server"
)]
struct Cli {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Where to write a kubeconfig for this server.
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Share of writes answered with an injected 409 Conflict (0.0–1.0).
    #[arg(long, default_value_t = 0.0, value_name = "RATIO")]
    fail_writes_conflicts: f64,
    /// Share of writes answered with an injected 500 (0.0–1.0).
    #[arg(long, default_value_t = 0.0, value_name = "RATIO")]
    fail_writes_errors: f64,
    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    latency_ms: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let server = Server::builder().build();
    server
        .faults()
        .fail_writes(cli.fail_writes_conflicts, cli.fail_writes_errors);
    server
        .faults()
        .latency(std::time::Duration::from_millis(cli.latency_ms));
    let (address, _handle) = match server.serve(&cli.listen).await {
        Ok(bound) => bound,
        Err(error) => {
            eprintln!("kany8s-apiserver: cannot listen on {}: {error}", cli.listen);
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &cli.kubeconfig
        && let Err(error) = std::fs::write(path, Server::kubeconfig(address))
    {
        eprintln!(
            "kany8s-apiserver: cannot write kubeconfig {}: {error}",
            path.display()
        );
        return ExitCode::FAILURE;
    }
    println!("kany8s-apiserver ready at http://{address} (fault knobs: POST /_sandbox/faults)");
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
    ExitCode::SUCCESS
}
