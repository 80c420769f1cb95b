//! The `fake-kro` command: RGD → CRD generation (more subcommands arrive with the checker and
//! the simulator).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fake_kro::crd::{CrdOptions, generate};
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(
    name = "fake-kro",
    version,
    about = "A kro v0.9.x simulation for tests and RGD authors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the CustomResourceDefinition kro generates for each RGD in FILE.
    Crd {
        /// A YAML file with one or more ResourceGraphDefinitions.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd { file } => crd(&file),
    }
}

/// The ResourceGraphDefinitions of a (multi-document) YAML file.
fn read_rgds(file: &PathBuf) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut rgds = Vec::new();
    for document in yaml_serde::Deserializer::from_str(&text) {
        let value: Value = serde::Deserialize::deserialize(document)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        if value.get("kind").and_then(Value::as_str) == Some("ResourceGraphDefinition") {
            rgds.push(value);
        }
    }
    if rgds.is_empty() {
        return Err(format!(
            "{}: no ResourceGraphDefinition found",
            file.display()
        ));
    }
    Ok(rgds)
}

fn crd(file: &PathBuf) -> ExitCode {
    let rgds = match read_rgds(file) {
        Ok(rgds) => rgds,
        Err(message) => {
            eprintln!("fake-kro: {message}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for rgd in rgds {
        let uid = rgd
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let options = CrdOptions {
            rgd_uid: uid,
            ..CrdOptions::default()
        };
        match generate(&rgd, &options)
            .and_then(|crd| fake_kro::canonical::to_yaml(&crd).map_err(|e| e.to_string()))
        {
            Ok(yaml) => print!("---\n{yaml}"),
            Err(message) => {
                let name = rgd
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("<unnamed>");
                eprintln!("{}: error: {name}: {message}", file.display());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
