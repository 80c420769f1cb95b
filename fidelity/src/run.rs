//! Runs sequences on both servers: a fresh embedded server per sequence, one shared upstream
//! stack (each sequence in its own namespace and with its own cluster-scoped names).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acceptance::upstream::{Components, Options, Upstream};
use fake_kro::sim::{ChildMode, SimOptions};
use futures::StreamExt;
use kany8s_apiserver::Server;
use serde_json::{Value, json};

use crate::compare::{self, Outcome};
use crate::ctx::{Ctx, Observation, Req, Side};
use crate::normalise::Normaliser;
use crate::report::{CheckResult, Report, SequenceResult};
use crate::{FidelityError, Sequence, Stack};

/// How long one sequence may run on one server.
const SEQUENCE_TIMEOUT: Duration = Duration::from_secs(240);
/// Sequences run at the same time (2 shared cores; the servers, not the client, are the load).
const CONCURRENCY: usize = 4;

/// Starts the oracle of `stack`: etcd, kube-apiserver and kube-controller-manager, plus kro
/// for [`Stack::Kro`].
pub async fn start_upstream(dir: &Path, stack: Stack) -> Result<Upstream, FidelityError> {
    let mut options = Options::new(dir, &dir.join("admin.kubeconfig"));
    options.components = match stack {
        Stack::Kubernetes => Components::Kubernetes,
        Stack::Kro => Components::Kro,
    };
    options.managers = false;
    Ok(Upstream::start(options).await?)
}

/// fake-kro as the fake-kro differential runs it: Applied mode (children are real objects of
/// the embedded server) and no child simulators (the upstream side has no kubelet either; a
/// sequence drives child status the same way on both sides), kro's default requeue.
fn fake_kro_options() -> SimOptions {
    SimOptions {
        mode: ChildMode::Applied,
        child_simulators: false,
        ..SimOptions::default()
    }
}

/// The upstream side every sequence shares.
#[derive(Clone)]
pub struct UpstreamSide {
    pub client: kube::Client,
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
}

impl std::fmt::Debug for UpstreamSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamSide")
            .field("kubeconfig", &self.kubeconfig)
            .finish_non_exhaustive()
    }
}

impl UpstreamSide {
    pub async fn of(upstream: &Upstream) -> Result<Self, FidelityError> {
        Ok(Self {
            client: upstream.admin().await?,
            kubeconfig: upstream.kubeconfig.clone(),
            kubectl: upstream.bin.join("kubectl"),
        })
    }
}

/// Runs `sequences` (those whose name or area contains `filter`, if given) and compares.
pub async fn run_all(
    upstream: &UpstreamSide,
    sequences: &[Sequence],
    filter: Option<&str>,
) -> Report {
    let started = Instant::now();
    let selected: Vec<Sequence> = sequences
        .iter()
        .filter(|s| crate::suite::selected(s, filter))
        .copied()
        .collect();
    let mut results: Vec<SequenceResult> = futures::stream::iter(selected)
        .map(|sequence| run_one(upstream, sequence))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    results.sort_by(|a, b| (a.area, a.name).cmp(&(b.area, b.name)));
    Report {
        sequences: results,
        wall: started.elapsed(),
    }
}

async fn run_side(mut ctx: Ctx, sequence: Sequence) -> (Vec<Observation>, Option<String>) {
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ctx.ns}});
    let error = match ctx.send(&Req::post("/api/v1/namespaces", namespace)).await {
        Ok(r) if r.status == 201 => {
            match tokio::time::timeout(SEQUENCE_TIMEOUT, (sequence.run)(&mut ctx)).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("timed out after {SEQUENCE_TIMEOUT:?}")),
            }
        }
        Ok(r) => Some(format!("creating the namespace: {} {}", r.status, r.text)),
        Err(e) => Some(e.to_string()),
    };
    (ctx.into_observations(), error)
}

async fn run_one(upstream: &UpstreamSide, sequence: Sequence) -> SequenceResult {
    let started = Instant::now();
    tracing::info!(sequence = sequence.name, "running");
    let setup = embedded_side(sequence.name, sequence.stack).await;
    let (embedded, upstream_result) = match setup {
        Ok((ctx, _keep)) => {
            let upstream_home = tempfile::tempdir().ok();
            let home = upstream_home
                .as_ref()
                .map_or_else(std::env::temp_dir, |d| d.path().to_path_buf());
            let up = Ctx::new(
                Side::Upstream,
                sequence.name,
                upstream.client.clone(),
                upstream.kubeconfig.clone(),
                upstream.kubectl.clone(),
                home,
                None,
            );
            let both = tokio::join!(run_side(ctx, sequence), run_side(up, sequence));
            drop(_keep);
            both
        }
        Err(e) => ((Vec::new(), Some(e.to_string())), (Vec::new(), None)),
    };
    let mut result = compare_sides(sequence, embedded, upstream_result);
    result.elapsed = started.elapsed();
    result
}

/// What keeps an embedded server (and its fake-kro) alive for its sequence.
struct EmbeddedKeep {
    _handle: kany8s_apiserver::ServeHandle,
    _dir: tempfile::TempDir,
    fake_kro: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for EmbeddedKeep {
    fn drop(&mut self) {
        if let Some(task) = self.fake_kro.take() {
            task.abort();
        }
    }
}

async fn embedded_side(name: &str, stack: Stack) -> Result<(Ctx, EmbeddedKeep), FidelityError> {
    let server = Arc::new(Server::builder().build());
    let (address, handle) = server
        .serve("127.0.0.1:0")
        .await
        .map_err(|e| FidelityError::Io("serving the embedded server".into(), e))?;
    let fake_kro = (stack == Stack::Kro).then(|| {
        let client = server.client();
        tokio::spawn(async move {
            if let Err(error) = fake_kro::sim::run(client, fake_kro_options()).await {
                tracing::error!(%error, "fake-kro stopped");
            }
        })
    });
    let dir = tempfile::tempdir().map_err(|e| FidelityError::Io("a temporary folder".into(), e))?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, Server::kubeconfig(address))
        .map_err(|e| FidelityError::Io(kubeconfig.display().to_string(), e))?;
    let ctx = Ctx::new(
        Side::Embedded,
        name,
        server.client(),
        kubeconfig,
        acceptance::upstream::bin_dir().join("kubectl"),
        dir.path().to_path_buf(),
        Some(server),
    );
    Ok((
        ctx,
        EmbeddedKeep {
            _handle: handle,
            _dir: dir,
            fake_kro,
        },
    ))
}

/// Normalises one side's observations (labels made unique: a repeated label gets `#2`, ...).
fn normalise_side(observations: Vec<Observation>) -> BTreeMap<String, (usize, Observation)> {
    let mut normaliser = Normaliser::default();
    let json: Vec<&Value> = observations
        .iter()
        .filter(|o| !o.kubectl)
        .map(|o| &o.value)
        .collect();
    normaliser.learn(&json);
    for o in observations.iter().filter(|o| o.kubectl) {
        normaliser.learn_text(o.value["stdout"].as_str().unwrap_or_default());
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (index, mut o) in observations.into_iter().enumerate() {
        let count = seen.entry(o.label.clone()).or_insert(0);
        *count += 1;
        let label = if *count == 1 {
            o.label.clone()
        } else {
            format!("{}#{count}", o.label)
        };
        o.value = if o.kubectl {
            json!({
                "exit": o.value["exit"],
                "stdout": normaliser.kubectl_output(o.value["stdout"].as_str().unwrap_or_default()),
                "stderr": normaliser.kubectl_output(o.value["stderr"].as_str().unwrap_or_default()),
            })
        } else {
            normaliser.apply(&o.value)
        };
        out.insert(label, (index, o));
    }
    out
}

fn compare_sides(
    sequence: Sequence,
    embedded: (Vec<Observation>, Option<String>),
    upstream: (Vec<Observation>, Option<String>),
) -> SequenceResult {
    let mut checks = Vec::new();
    let mut errors = Vec::new();
    if let Some(e) = &embedded.1 {
        errors.push(format!("embedded: {e}"));
    }
    if let Some(e) = &upstream.1 {
        errors.push(format!("upstream: {e}"));
    }
    // The same code declares the same explanations on both sides: the embedded side's count.
    let explains_declared: Vec<compare::Explain> = embedded
        .0
        .iter()
        .flat_map(|o| o.explains.clone())
        .fold(Vec::new(), |mut all, e| {
            if !all.contains(&e) {
                all.push(e);
            }
            all
        });
    let mut explains_declared = explains_declared;
    for (s, _, path, reason) in crate::known::KNOWN {
        let e = compare::Explain::new(*path, *reason);
        if *s == sequence.name && !explains_declared.contains(&e) {
            explains_declared.push(e);
        }
    }
    let a = normalise_side(embedded.0);
    let b = normalise_side(upstream.0);
    let mut labels: Vec<(usize, String)> = a.iter().map(|(l, (i, _))| (*i, l.clone())).collect();
    let offset = labels.len();
    labels.extend(
        b.iter()
            .filter(|(l, _)| !a.contains_key(*l))
            .map(|(l, (i, _))| (offset + i, l.clone())),
    );
    labels.sort();
    let mut used = vec![false; explains_declared.len()];
    for (_, label) in labels {
        let (ea, eb) = (a.get(&label), b.get(&label));
        let (va, vb) = (
            ea.map_or(Value::Null, |(_, o)| o.value.clone()),
            eb.map_or(Value::Null, |(_, o)| o.value.clone()),
        );
        let mut explains: Vec<compare::Explain> =
            ea.map(|(_, o)| o.explains.clone()).unwrap_or_default();
        explains.extend(crate::known::explains(sequence.name, &label));
        if ea.is_none() || eb.is_none() {
            if let Some(e) = explains.iter().find(|e| e.path.is_empty()) {
                for (i, d) in explains_declared.iter().enumerate() {
                    if d == e {
                        used[i] = true;
                    }
                }
                checks.push(CheckResult {
                    label: label.clone(),
                    check: "observed".into(),
                    outcome: Outcome::Explained(Vec::new(), vec![e.reason.clone()]),
                });
                continue;
            }
            checks.push(CheckResult {
                label: label.clone(),
                check: "observed".into(),
                outcome: Outcome::Different(vec![compare::Diff {
                    pointer: String::new(),
                    embedded: ea.map(|(_, o)| o.value.clone()),
                    upstream: eb.map(|(_, o)| o.value.clone()),
                }]),
            });
            continue;
        }
        let mut parts = compare::checks_of(&va);
        for part in compare::checks_of(&vb) {
            if !parts.contains(&part) {
                parts.push(part);
            }
        }
        for (check, pointer) in parts {
            let outcome = compare::compare_check(&va, &vb, &pointer, &explains);
            if let Outcome::Explained(diffs, _) = &outcome {
                for (i, e) in explains_declared.iter().enumerate() {
                    if explains.contains(e) && diffs.iter().any(|d| e.covers(&d.pointer)) {
                        used[i] = true;
                    }
                }
            }
            checks.push(CheckResult {
                label: label.clone(),
                check,
                outcome,
            });
        }
    }
    if !errors.is_empty() {
        checks.push(CheckResult {
            label: "sequence".into(),
            check: "ran to the end".into(),
            outcome: Outcome::Different(Vec::new()),
        });
    }
    let mut unused: Vec<compare::Explain> = explains_declared
        .into_iter()
        .zip(used)
        .filter(|(_, u)| !u)
        .map(|(e, _)| e)
        .collect();
    unused.dedup();
    SequenceResult {
        area: sequence.area,
        name: sequence.name,
        ids: sequence.ids,
        checks,
        errors,
        unused,
        elapsed: Duration::ZERO,
    }
}
