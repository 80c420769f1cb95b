//! `make fidelity`: runs the differential suite against a fresh upstream stack, prints the
//! table and the summary line, writes the differences to `target/fidelity/differences.md`.
//! `fidelity [FILTER]` runs only the sequences whose name or area contains FILTER.

use std::process::ExitCode;

fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,fidelity=info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let filter = std::env::args().nth(1);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fidelity: a tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fidelity::suite::run(filter.as_deref())) {
        Ok(report) => {
            println!("{}", report.table());
            if report.failed() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("fidelity: {e}");
            ExitCode::FAILURE
        }
    }
}
