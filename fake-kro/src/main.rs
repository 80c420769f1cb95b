//! The `fake-kro` command.

use std::process::ExitCode;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "fake-kro",
    version,
    about = "Kany8s test harness: RGD → CRD generation, the offline checker and the simulator"
)]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    eprintln!(
        "fake-kro: RGD → CRD generation, the offline checker and the simulator is not built yet; see the open issues"
    );
    ExitCode::from(2)
}
