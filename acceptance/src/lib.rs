//! Kany8s acceptance: the simulated Cluster API core, the embedded target, the sandbox and the
//! scenario runners (provider.md §11).

pub mod ack;
pub mod bench;
pub mod capd;
pub mod capi;
pub mod crds;
pub mod env;
pub mod harness;
pub mod scenarios;
mod sim_common;
pub mod upstream;

use std::path::Path;

use harness::{Failure, Harness, Target};

/// Why a run did not pass.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Setup(String),
    #[error("scenario {scenario} failed: {failure}\nartifacts: {artifacts}")]
    Failed {
        scenario: String,
        failure: Failure,
        artifacts: String,
    },
}

/// Runs `scenario` on `target`; on failure the artifacts go under `artifacts`.
pub async fn run_scenario(
    scenario: &str,
    target: Target,
    artifacts: &Path,
    keep: bool,
) -> Result<(), RunError> {
    if !scenarios::ALL.iter().any(|(n, _)| *n == scenario) {
        return Err(RunError::Setup(format!(
            "unknown scenario \"{scenario}\" (known: {})",
            scenarios::ALL
                .iter()
                .map(|s| s.0)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if !scenarios::runs_on(scenario, target) {
        return Err(RunError::Setup(format!(
            "scenario {scenario} does not run on the {target:?} target"
        )));
    }
    let logs = env::capture_logs(false);
    let workdir =
        tempfile::tempdir().map_err(|e| RunError::Setup(format!("temporary folder: {e}")))?;
    let kubeconfig = workdir.path().join("kubeconfig");
    match target {
        Target::Embedded => {
            let env = env::Embedded::start("127.0.0.1:0", &kubeconfig)
                .await
                .map_err(|e| RunError::Setup(e.to_string()))?;
            let client = env.client.clone();
            let outcome = run_one(
                scenario,
                target,
                client,
                &kubeconfig,
                Some(logs),
                artifacts,
                keep,
                None,
            )
            .await;
            drop(env);
            outcome
        }
        Target::Upstream => {
            let stack =
                upstream::Upstream::start(upstream::Options::new(workdir.path(), &kubeconfig))
                    .await
                    .map_err(|e| RunError::Setup(format!("starting the upstream target: {e}")))?;
            let outcome = run_on_upstream(&stack, scenario, artifacts, keep, Some(logs)).await;
            drop(stack);
            outcome
        }
        Target::Kind => {
            let path = std::env::var("KUBECONFIG").map_err(|_| RunError::Setup("--target kind needs KUBECONFIG pointing at the kind cluster (scripts/kind-up.sh writes it)".into()))?;
            let client = kube::Client::try_default()
                .await
                .map_err(|e| RunError::Setup(format!("kubernetes client: {e}")))?;
            run_one(
                scenario,
                target,
                client,
                &std::path::PathBuf::from(path),
                None,
                artifacts,
                keep,
                None,
            )
            .await
        }
    }
}

/// Runs `scenarios` one after the other on one embedded environment and returns it, so its
/// server's access log can be inspected.
pub async fn run_embedded(
    scenarios: &[&str],
    workdir: &Path,
    artifacts: &Path,
) -> Result<env::Embedded, RunError> {
    let logs = env::capture_logs(false);
    let env = env::Embedded::start("127.0.0.1:0", &workdir.join("kubeconfig"))
        .await
        .map_err(|e| RunError::Setup(e.to_string()))?;
    for scenario in scenarios {
        let client = env.client.clone();
        run_one(
            scenario,
            Target::Embedded,
            client,
            &env.kubeconfig,
            Some(logs.clone()),
            artifacts,
            false,
            None,
        )
        .await?;
    }
    Ok(env)
}

/// Runs `scenario` on a running upstream target, in a namespace of its own.
pub async fn run_on_upstream(
    stack: &upstream::Upstream,
    scenario: &str,
    artifacts: &Path,
    keep: bool,
    logs: Option<env::LogSink>,
) -> Result<(), RunError> {
    let client = stack
        .admin()
        .await
        .map_err(|e| RunError::Setup(e.to_string()))?;
    run_one(
        scenario,
        Target::Upstream,
        client,
        &stack.kubeconfig,
        logs,
        artifacts,
        keep,
        Some(stack.target()),
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn run_one(
    scenario: &str,
    target: Target,
    client: kube::Client,
    kubeconfig: &Path,
    logs: Option<env::LogSink>,
    artifacts: &Path,
    keep: bool,
    upstream: Option<harness::UpstreamTarget>,
) -> Result<(), RunError> {
    let mut h = Harness::new(scenario, client, kubeconfig, target, logs);
    if let Some(upstream) = upstream {
        h = h.on_upstream(upstream);
    }
    println!("[{scenario}] target {target:?}, namespace {}", h.namespace);
    let started = std::time::Instant::now();
    let outcome = match h.create_namespace().await {
        Ok(()) => scenarios::run(scenario, &h).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => {
            println!(
                "[{scenario}] passed in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            if !keep {
                h.delete_namespace().await;
            }
            Ok(())
        }
        Err(failure) => {
            let folder = h
                .dump(artifacts, &failure)
                .await
                .map(|p| p.display().to_string())
                .unwrap_or_else(|e| format!("(could not be written: {e})"));
            Err(RunError::Failed {
                scenario: scenario.to_string(),
                failure,
                artifacts: folder,
            })
        }
    }
}
