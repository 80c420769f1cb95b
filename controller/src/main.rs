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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crds { output_dir } => crds(output_dir),
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
