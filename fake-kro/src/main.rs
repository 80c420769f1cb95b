//! The `fake-kro` command: `crd` (RGD → CRD), `render` (offline rendering), `check` (the offline
//! checker) and `run` (the lifecycle simulator against a Kubernetes API).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use fake_kro::catalog::Catalog;
use fake_kro::check::{CheckOptions, Contract, Severity, check};
use fake_kro::crd::{CrdOptions, generate};
use serde_json::{Value, json};

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
    /// Render an instance: defaulted instance, child resources in dependency order, and the
    /// status evaluated from observed-state fixtures (`<id>.yaml` files in --resources).
    Render {
        /// The RGD file.
        rgd: PathBuf,
        /// The instance file.
        instance: PathBuf,
        /// A folder of `<resource id>.yaml` observed-state fixtures (e.g. a Deployment status).
        #[arg(long, value_name = "DIR")]
        resources: Option<PathBuf>,
        /// CRDs the templates' kinds resolve against when the RGD is admitted (as `check`);
        /// may be repeated.
        #[arg(long = "crds", value_name = "PATH")]
        crds: Vec<PathBuf>,
    },
    /// Run the kro simulator (RGDs → CRDs and status; instances → kro's lifecycle, children
    /// applied to the API) against a Kubernetes API until interrupted.
    Run {
        /// Kubeconfig of the API to act on (default: the usual kubeconfig resolution).
        #[arg(long, value_name = "PATH")]
        kubeconfig: Option<PathBuf>,
        /// `applied`: children are server-side applied as kro does; `virtual`: kept in memory.
        #[arg(long, value_enum, default_value = "applied")]
        children: Children,
        /// Do not play the controllers of child kinds (for real clusters, whose controllers
        /// own Deployment, Service and Job status).
        #[arg(long)]
        no_child_simulators: bool,
        /// kro's --instance-requeue-interval, in milliseconds.
        #[arg(long, default_value_t = 3000)]
        requeue_ms: u64,
    },
    /// Check RGDs offline the way kro does at creation, plus the Kany8s status contract.
    Check {
        /// YAML files with ResourceGraphDefinitions.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// The Kany8s status contract the RGDs must meet.
        #[arg(long, value_enum, default_value_t = ContractArg::None)]
        contract: ContractArg,
        /// Report every error, not only the first one kro would stop at.
        #[arg(long)]
        all: bool,
        /// CRDs the templates' kinds resolve against: files or folders of CRD YAML (several
        /// documents or `kubectl get crd -o yaml` output); may be repeated.
        #[arg(long = "crds", value_name = "PATH")]
        crds: Vec<PathBuf>,
        /// The built-in kinds and the --crds given are everything the cluster serves (e.g.
        /// `kubectl get crd -o yaml` of the target cluster): a child kind outside them is
        /// refused as kro refuses it there, instead of warned about (W-GVK-UNKNOWN).
        #[arg(long)]
        served_only: bool,
        /// The RGDs as they stand before this change (a file of RGDs): an RGD of the same
        /// name whose CRD would break existing instances is refused as kro refuses it (K1).
        #[arg(long, value_name = "PATH")]
        previous: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ContractArg {
    None,
    Controlplane,
    Infrastructure,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            kubeconfig,
            children,
            no_child_simulators,
            requeue_ms,
        } => run_simulator(
            kubeconfig,
            fake_kro::sim::SimOptions {
                mode: match children {
                    Children::Applied => fake_kro::sim::ChildMode::Applied,
                    Children::Virtual => fake_kro::sim::ChildMode::Virtual,
                },
                child_simulators: !no_child_simulators,
                requeue: std::time::Duration::from_millis(requeue_ms),
                ..fake_kro::sim::SimOptions::default()
            },
        ),
        Command::Crd { file } => crd(&file),
        Command::Render {
            rgd,
            instance,
            resources,
            crds,
        } => match render(&rgd, &instance, resources.as_deref(), &crds) {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("fake-kro: {message}");
                ExitCode::FAILURE
            }
        },
        Command::Check {
            files,
            format,
            contract,
            all,
            crds,
            served_only,
            previous,
        } => {
            let previous = match previous.as_ref().map(read_rgds).transpose() {
                Ok(previous) => by_name(previous.unwrap_or_default()),
                Err(message) => {
                    eprintln!("fake-kro: --previous {message}");
                    return ExitCode::FAILURE;
                }
            };
            let mut catalog = Catalog::default();
            for path in &crds {
                if let Err(e) = catalog.load(path) {
                    eprintln!("fake-kro: --crds {e}");
                    return ExitCode::FAILURE;
                }
            }
            if served_only {
                catalog = catalog.served_only();
            }
            let contract = match contract {
                ContractArg::None => Contract::None,
                ContractArg::Controlplane => Contract::ControlPlane,
                ContractArg::Infrastructure => Contract::Infrastructure,
            };
            check_files(
                &files,
                format,
                &previous,
                CheckOptions {
                    contract,
                    all_errors: all,
                    catalog: std::sync::Arc::new(catalog),
                    ..CheckOptions::default()
                },
            )
        }
    }
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Children {
    Applied,
    Virtual,
}

fn run_simulator(kubeconfig: Option<PathBuf>, options: fake_kro::sim::SimOptions) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .json()
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fake-kro: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let config = match kubeconfig {
            Some(path) => {
                let options = kube::config::KubeConfigOptions::default();
                match kube::config::Kubeconfig::read_from(&path) {
                    Ok(k) => kube::Config::from_custom_kubeconfig(k, &options)
                        .await
                        .map_err(|e| format!("{}: {e}", path.display())),
                    Err(e) => Err(format!("{}: {e}", path.display())),
                }
            }
            None => kube::Config::infer().await.map_err(|e| e.to_string()),
        };
        let client = match config.and_then(|c| kube::Client::try_from(c).map_err(|e| e.to_string()))
        {
            Ok(c) => c,
            Err(message) => {
                eprintln!("fake-kro: {message}");
                return ExitCode::FAILURE;
            }
        };
        eprintln!("fake-kro: simulating kro v0.9.3");
        tokio::select! {
            result = fake_kro::sim::run(client, options) => match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("fake-kro: {e}");
                    ExitCode::FAILURE
                }
            },
            _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
        }
    })
}

fn read_one(path: &std::path::Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    yaml_serde::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn render(
    rgd: &std::path::Path,
    instance: &std::path::Path,
    resources: Option<&std::path::Path>,
    crds: &[PathBuf],
) -> Result<String, String> {
    let mut catalog = Catalog::default();
    for path in crds {
        catalog.load(path).map_err(|e| format!("--crds {e}"))?;
    }
    let options = fake_kro::render::RenderOptions {
        admission: Some(std::sync::Arc::new(catalog)),
    };
    let rgd_value = read_one(rgd)?;
    let instance_value = read_one(instance)?;
    let mut observed = std::collections::BTreeMap::new();
    if let Some(dir) = resources {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) == Some("yaml") {
                let id = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_string();
                observed.insert(id, read_one(&path)?);
            }
        }
    }
    let rendered = fake_kro::render::render_with(&rgd_value, &instance_value, &observed, &options)
        .map_err(|e| format!("{}: {e}", rgd.display()))?;
    let mut out = String::new();
    for (id, object) in &rendered.resources {
        out.push_str(&format!("--- # resource {id}\n"));
        out.push_str(&yaml_serde::to_string(object).map_err(|e| e.to_string())?);
    }
    for (id, why) in &rendered.not_rendered {
        out.push_str(&format!(
            "# resource {id} not rendered: {}\n",
            why.replace('\n', " ")
        ));
    }
    out.push_str("--- # instance\n");
    out.push_str(&yaml_serde::to_string(&rendered.instance).map_err(|e| e.to_string())?);
    Ok(out)
}

/// RGDs by `metadata.name`.
fn by_name(rgds: Vec<Value>) -> BTreeMap<String, Value> {
    rgds.into_iter()
        .map(|rgd| {
            let name = rgd
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            (name, rgd)
        })
        .collect()
}

fn check_files(
    files: &[PathBuf],
    format: Format,
    previous: &BTreeMap<String, Value>,
    options: CheckOptions,
) -> ExitCode {
    let mut findings = Vec::new();
    let mut errors = 0usize;
    for file in files {
        let name = file.display().to_string();
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                findings.push(json!({"file": name, "line": 0, "col": 0, "severity": "error", "id": "IO", "path": "", "message": e.to_string()}));
                errors += 1;
                continue;
            }
        };
        let positions = fake_kro::locate::positions(&text);
        for (index, document) in yaml_serde::Deserializer::from_str(&text).enumerate() {
            let value: Value = match serde::Deserialize::deserialize(document) {
                Ok(v) => v,
                Err(e) => {
                    let (line, col) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
                    findings.push(json!({"file": name, "line": line, "col": col, "severity": "error", "id": "YAML", "path": "", "message": e.to_string()}));
                    errors += 1;
                    break;
                }
            };
            if value.get("kind").and_then(Value::as_str) != Some("ResourceGraphDefinition") {
                continue;
            }
            let located = positions.get(index).cloned().unwrap_or_default();
            let mut options = options.clone();
            options.previous = value
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .and_then(|name| previous.get(name))
                .cloned()
                .map(std::sync::Arc::new);
            for diagnostic in check(&value, &options) {
                let at = fake_kro::locate::find(&located, &diagnostic.path);
                if diagnostic.severity == Severity::Error {
                    errors += 1;
                }
                findings.push(json!({"file": name, "line": at.line, "col": at.col, "severity": diagnostic.severity,
                    "id": diagnostic.id, "path": diagnostic.path, "message": diagnostic.message}));
            }
        }
    }
    match format {
        Format::Json => println!("{}", Value::Array(findings.clone())),
        Format::Text => {
            for f in &findings {
                println!(
                    "{}:{}:{}: {}[{}]: {}",
                    f["file"].as_str().unwrap_or_default(),
                    f["line"],
                    f["col"],
                    f["severity"].as_str().unwrap_or_default(),
                    f["id"].as_str().unwrap_or_default(),
                    f["message"].as_str().unwrap_or_default()
                );
            }
        }
    }
    if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
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
