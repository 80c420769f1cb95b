//! The `kany8s-apiserver` command.

use std::process::ExitCode;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "kany8s-apiserver",
    version,
    about = "Kany8s test harness: the embedded API server"
)]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    eprintln!("kany8s-apiserver: the embedded API server is not built yet; see the open issues");
    ExitCode::from(2)
}
