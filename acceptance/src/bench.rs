//! Scale and chaos benchmarks of the provider: the real `kany8s` binary as its own process (so
//! its RSS is its own) against the embedded API server or, for `bench scale`, the upstream
//! target ([`upstream`]: real kube-apiserver and etcd), with fake-kro (children kept in memory,
//! instances ready at once) and the simulated Cluster API core in this process. Writes are
//! counted per user by the embedded server's access log or kube-apiserver's audit log.

mod upstream;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::StreamExt;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BenchError(pub String);

fn fail(context: &str) -> impl Fn(kube::Error) -> BenchError + '_ {
    move |e| BenchError(format!("{context}: {e}"))
}

const MANAGER_USER: &str = "system:serviceaccount:kany8s-system:kany8s-controller-manager";
const NAMESPACE: &str = "bench";

/// The benchmark's RGD: one in-memory child, ready at once, kubeconfig Option B.
fn rgd() -> Value {
    json!({"apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
        "metadata": {"name": "bench-control-plane.kro.run"},
        "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "BenchControlPlane",
            "spec": {"name": "string | required=true", "version": "string | required=true"},
            "status": {"ready": "${config.metadata.name != \"\"}",
                "endpoint": "${schema.spec.name + \".bench.example.com:443\"}",
                "kubeconfigSecretRef": {"name": "${schema.spec.name + \"-admin-kubeconfig\"}"}}},
        "resources": [{"id": "config", "template": {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "${schema.spec.name}-cp"}, "data": {"version": "${schema.spec.version}"}}}]}})
}

fn instance_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kro.run", "v1alpha1", "BenchControlPlane"),
        "benchcontrolplanes",
    )
}

fn kubeconfig_value(token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://c.bench.example.com:443\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: {token}\n"
    )
}

/// Which API server the bench runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The embedded API server, in this process.
    Embedded,
    /// Real etcd, kube-apiserver and kube-controller-manager from `.upstream/bin`.
    Upstream,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Target::Embedded => "embedded",
            Target::Upstream => "upstream",
        })
    }
}

/// The API server of a bench and how it counts the manager's requests.
enum Backend {
    /// Counted by the server's access log; the manager impersonates its ServiceAccount.
    Embedded {
        server: kany8s_apiserver::Server,
        serving: Option<kany8s_apiserver::ServeHandle>,
    },
    /// Counted by kube-apiserver's audit log; the manager holds its ServiceAccount's token.
    Upstream(Box<upstream::UpstreamTarget>),
}

/// The server, simulators and a handle on the manager process.
struct Bench {
    // Declared before `workdir`: the upstream processes stop before their folder goes.
    backend: Backend,
    client: Client,
    manager_kubeconfig: PathBuf,
    manager_binary: PathBuf,
    workdir: tempfile::TempDir,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Bench {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Backend::Embedded { serving, .. } = &mut self.backend
            && let Some(serving) = serving.take()
        {
            serving.shutdown();
        }
    }
}

/// A running `kany8s` process.
struct Manager {
    child: tokio::process::Child,
    log: PathBuf,
}

impl Manager {
    fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Peak resident set size (VmHWM) in KiB, from /proc.
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    /// What the manager logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn kill(mut self) -> String {
        let _ = self.child.kill().await;
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Bench {
    async fn start(
        manager_binary: &Path,
        faults: Option<u64>,
        target: Target,
    ) -> Result<Self, BenchError> {
        let workdir = tempfile::tempdir().map_err(|e| BenchError(format!("tempdir: {e}")))?;
        let mut crds = crate::crds::cluster_api();
        crds.extend(crate::crds::capd_kubeadm());
        let manager_kubeconfig = workdir.path().join("manager-kubeconfig");
        let (backend, client) = match target {
            Target::Embedded => {
                let server = kany8s_apiserver::Server::builder()
                    .record_access(true)
                    .build();
                let (address, serving) = server
                    .serve("127.0.0.1:0")
                    .await
                    .map_err(|e| BenchError(format!("listen: {e}")))?;
                let config = kube::Config::new(
                    format!("http://{address}")
                        .parse()
                        .map_err(|e| BenchError(format!("{e}")))?,
                );
                let client = Client::try_from(config).map_err(|e| BenchError(e.to_string()))?;
                for crd in kany8s::crds::all().map_err(|e| BenchError(e.to_string()))? {
                    crds.push(serde_json::to_value(crd).map_err(|e| BenchError(e.to_string()))?);
                }
                crate::env::install(&client, crds)
                    .await
                    .map_err(|e| BenchError(e.to_string()))?;
                crate::env::create_namespace(&client, "kany8s-system")
                    .await
                    .map_err(|e| BenchError(e.to_string()))?;
                let kubeconfig = format!(
                    "apiVersion: v1\nkind: Config\nclusters:\n- name: bench\n  cluster:\n    server: http://{address}\ncontexts:\n- name: bench\n  context:\n    cluster: bench\n    user: manager\ncurrent-context: bench\nusers:\n- name: manager\n  user:\n    as: {MANAGER_USER}\n"
                );
                std::fs::write(&manager_kubeconfig, kubeconfig)
                    .map_err(|e| BenchError(format!("kubeconfig: {e}")))?;
                if let Some(seed) = faults {
                    server.faults().seed(seed);
                }
                let serving = Some(serving);
                (Backend::Embedded { server, serving }, client)
            }
            Target::Upstream => {
                if faults.is_some() {
                    return Err(BenchError(
                        "fault injection needs the embedded target".into(),
                    ));
                }
                // The Kany8s CRDs, RBAC and namespace come with the bundle.
                let started = upstream::start(workdir.path(), MANAGER_USER, crds).await?;
                std::fs::copy(&started.manager_kubeconfig, &manager_kubeconfig)
                    .map_err(|e| BenchError(format!("kubeconfig: {e}")))?;
                (Backend::Upstream(Box::new(started.target)), started.client)
            }
        };
        crate::env::create_namespace(&client, NAMESPACE)
            .await
            .map_err(|e| BenchError(e.to_string()))?;
        let mut tasks = Vec::new();
        let kro = client.clone();
        tasks.push(tokio::spawn(async move {
            let options = fake_kro::sim::SimOptions {
                requeue: Duration::from_secs(30),
                mode: fake_kro::sim::ChildMode::Virtual,
                ..fake_kro::sim::SimOptions::default()
            };
            let _ = fake_kro::sim::run(kro, options).await;
        }));
        tasks.push(tokio::spawn(crate::capi::run(client.clone())));
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &kany8s::rgd::rgd_resource());
        let rgd: DynamicObject =
            serde_json::from_value(rgd()).map_err(|e| BenchError(e.to_string()))?;
        // fake-kro installs the RGD CRD first; kube-apiserver takes longer to establish CRDs.
        let attempts = match target {
            Target::Embedded => 200,
            Target::Upstream => 1200,
        };
        let mut created = false;
        for _ in 0..attempts {
            if api.create(&PostParams::default(), &rgd).await.is_ok() {
                created = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !created {
            return Err(BenchError("the bench RGD could not be created".into()));
        }
        for _ in 0..attempts {
            let state = api
                .get("bench-control-plane.kro.run")
                .await
                .map(|r| r.data["status"]["state"].clone());
            if matches!(state, Ok(ref s) if s == "Active") {
                return Ok(Self {
                    backend,
                    client,
                    manager_kubeconfig,
                    manager_binary: manager_binary.to_path_buf(),
                    workdir,
                    tasks,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(BenchError("the bench RGD never became Active".into()))
    }

    fn spawn_manager(&self, generation: usize) -> Result<Manager, BenchError> {
        let log = match std::env::var_os("BENCH_LOG_DIR") {
            Some(dir) => PathBuf::from(dir).join(format!("manager-{generation}.log")),
            None => self
                .workdir
                .path()
                .join(format!("manager-{generation}.log")),
        };
        let file = std::fs::File::create(&log).map_err(|e| BenchError(format!("log: {e}")))?;
        let child = tokio::process::Command::new(&self.manager_binary)
            .args(["run", "--kubeconfig"])
            .arg(&self.manager_kubeconfig)
            .args(["--health-probe-bind-address", "0", "--log-format", "json"])
            .env(
                "RUST_LOG",
                // The reconcile lines (debug) are counted for the reconciles-per-cluster figure.
                std::env::var("BENCH_MANAGER_LOG")
                    .unwrap_or_else(|_| "warn,kany8s::metrics=debug".into()),
            )
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BenchError(format!("starting {}: {e}", self.manager_binary.display())))?;
        Ok(Manager { child, log })
    }

    /// The embedded server, for fault injection.
    fn embedded_server(&self) -> Result<&kany8s_apiserver::Server, BenchError> {
        match &self.backend {
            Backend::Embedded { server, .. } => Ok(server),
            Backend::Upstream(_) => Err(BenchError(
                "fault injection needs the embedded target".into(),
            )),
        }
    }

    /// The manager's writes per kind (the embedded server's access log or kube-apiserver's
    /// audit log).
    fn write_counts(&self) -> BTreeMap<kany8s_apiserver::access::Access, u64> {
        match &self.backend {
            Backend::Embedded { server, .. } => server
                .access_log()
                .map(|log| log.write_counts(MANAGER_USER))
                .unwrap_or_default(),
            Backend::Upstream(target) => target.audit.write_counts(MANAGER_USER),
        }
    }

    /// The manager's reads per kind (get, list and watch on the embedded target; get on the
    /// upstream one, whose audit policy logs no other read).
    fn read_counts(&self) -> BTreeMap<kany8s_apiserver::access::Access, u64> {
        match &self.backend {
            Backend::Embedded { server, .. } => server
                .access_log()
                .map(|log| log.read_counts(MANAGER_USER))
                .unwrap_or_default(),
            Backend::Upstream(target) => target.audit.read_counts(MANAGER_USER),
        }
    }

    fn manager_writes(&self) -> u64 {
        self.write_counts().values().sum()
    }

    /// The manager's GETs (single objects read from the API server rather than a cache), per
    /// group/resource.
    fn manager_gets(&self) -> BTreeMap<String, u64> {
        let mut gets = BTreeMap::new();
        for (access, n) in self.read_counts() {
            if access.verb == "get" {
                *gets
                    .entry(format!("{}/{}", access.group, access.resource))
                    .or_default() += n;
            }
        }
        gets
    }

    /// Creates `n` clusters (Secret, Cluster, Kany8sControlPlane, Kany8sCluster each), 32 at
    /// a time; `foreign` clusters get a `<name>-kubeconfig` someone else owns.
    async fn create_clusters(&self, n: usize, foreign: &BTreeSet<usize>) -> Result<(), BenchError> {
        let objects = |i: usize| -> Vec<(ApiResource, Value)> {
            let name = format!("c{i}");
            let secret = |secret_name: String, labels: Value| {
                json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": secret_name, "namespace": NAMESPACE, "labels": labels},
                "data": {"value": base64::engine::general_purpose::STANDARD.encode(kubeconfig_value(&name))}})
            };
            let mut out = vec![(
                ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&()),
                secret(format!("{name}-admin-kubeconfig"), json!({})),
            )];
            if foreign.contains(&i) {
                out.push((
                    ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&()),
                    secret(
                        format!("{name}-kubeconfig"),
                        json!({"app.kubernetes.io/managed-by": "someone-else"}),
                    ),
                ));
            }
            out.push((ApiResource::erase::<kany8s::api::Kany8sControlPlane>(&()), json!({"apiVersion": "controlplane.cluster.x-k8s.io/v1alpha1", "kind": "Kany8sControlPlane",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": {"version": "v1.34.0", "resourceGraphDefinitionRef": {"name": "bench-control-plane.kro.run"}, "kroSpec": {"name": name}}})));
            out.push((ApiResource::erase::<kany8s::api::Kany8sCluster>(&()), json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1alpha1", "kind": "Kany8sCluster",
                "metadata": {"name": name, "namespace": NAMESPACE}, "spec": {}})));
            out.push((crate::capi::cluster_resource(), json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": {"controlPlaneRef": {"apiGroup": "controlplane.cluster.x-k8s.io", "kind": "Kany8sControlPlane", "name": name},
                    "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "Kany8sCluster", "name": name}}})));
            out
        };
        let client = self.client.clone();
        let results: Vec<Result<(), BenchError>> = futures::stream::iter(0..n)
            .map(|i| {
                let client = client.clone();
                let items = objects(i);
                async move {
                    for (resource, body) in items {
                        let api: Api<DynamicObject> =
                            Api::namespaced_with(client.clone(), NAMESPACE, &resource);
                        let object: DynamicObject =
                            serde_json::from_value(body).map_err(|e| BenchError(e.to_string()))?;
                        // Injected faults hit the bench's own writes too; it retries like a client.
                        let mut last = None;
                        for _ in 0..50 {
                            match api.create(&PostParams::default(), &object).await {
                                Ok(_) => {
                                    last = None;
                                    break;
                                }
                                Err(kube::Error::Api(e))
                                    if e.code == 409 && e.reason == "AlreadyExists" =>
                                {
                                    last = None;
                                    break;
                                }
                                Err(e) => last = Some(e.to_string()),
                            }
                        }
                        if let Some(e) = last {
                            return Err(BenchError(format!("creating {}: {e}", object.name_any())));
                        }
                    }
                    Ok(())
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        results.into_iter().collect()
    }
}

/// What the observer saw, by object name.
#[derive(Debug, Default)]
struct Seen {
    instance_ready: BTreeMap<String, Instant>,
    endpoint: BTreeMap<String, Instant>,
    available: BTreeSet<String>,
    conflicted: BTreeSet<String>,
    initialized: BTreeSet<String>,
    initialized_flips: u64,
    provisioned: BTreeSet<String>,
}

fn spawn_observers(client: &Client, seen: Arc<Mutex<Seen>>) -> Vec<tokio::task::JoinHandle<()>> {
    let instances: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NAMESPACE, &instance_resource());
    let cps: Api<kany8s::api::Kany8sControlPlane> = Api::namespaced(client.clone(), NAMESPACE);
    let ics: Api<kany8s::api::Kany8sCluster> = Api::namespaced(client.clone(), NAMESPACE);
    let s1 = seen.clone();
    let s2 = seen.clone();
    let s3 = seen;
    vec![
        tokio::spawn(async move {
            let stream = watcher::watcher(instances, watcher::Config::default())
                .default_backoff()
                .applied_objects();
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                if let Ok(o) = event
                    && o.data["status"]["ready"] == true
                    && let Ok(mut s) = s1.lock()
                {
                    s.instance_ready
                        .entry(o.name_any())
                        .or_insert_with(Instant::now);
                }
            }
        }),
        tokio::spawn(async move {
            let stream = watcher::watcher(cps, watcher::Config::default())
                .default_backoff()
                .applied_objects();
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                let Ok(cp) = event else { continue };
                let Ok(mut s) = s2.lock() else { continue };
                let name = cp.name_any();
                if cp.spec.control_plane_endpoint.is_some() {
                    s.endpoint.entry(name.clone()).or_insert_with(Instant::now);
                }
                let status = cp.status.clone().unwrap_or_default();
                let initialized = status
                    .initialization
                    .and_then(|i| i.control_plane_initialized)
                    == Some(true);
                if initialized {
                    s.initialized.insert(name.clone());
                } else if s.initialized.contains(&name) {
                    s.initialized_flips += 1;
                }
                let condition = |t: &str| {
                    status
                        .conditions
                        .iter()
                        .find(|c| c.type_ == t)
                        .map(|c| (c.status.clone(), c.reason.clone()))
                };
                if condition("Available").is_some_and(|c| c.0 == "True") {
                    s.available.insert(name.clone());
                } else {
                    s.available.remove(&name);
                }
                if condition("KubeconfigSecretReconciled")
                    .is_some_and(|c| c.1 == "KubeconfigSecretOwnershipConflict")
                {
                    s.conflicted.insert(name);
                }
            }
        }),
        tokio::spawn(async move {
            let stream = watcher::watcher(ics, watcher::Config::default())
                .default_backoff()
                .applied_objects();
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                if let Ok(ic) = event
                    && ic
                        .status
                        .as_ref()
                        .and_then(|s| s.initialization.as_ref())
                        .and_then(|i| i.provisioned)
                        == Some(true)
                    && let Ok(mut s) = s3.lock()
                {
                    s.provisioned.insert(ic.name_any());
                }
            }
        }),
    ]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Whether every cluster is converged: Available (or, for `foreign` ones, refused with an
/// ownership conflict) and provisioned.
fn converged(seen: &Mutex<Seen>, n: usize, foreign: &BTreeSet<usize>) -> bool {
    seen.lock().is_ok_and(|s| {
        (0..n).all(|i| {
            let name = format!("c{i}");
            let cp = if foreign.contains(&i) {
                s.conflicted.contains(&name)
            } else {
                s.available.contains(&name)
            };
            cp && s.provisioned.contains(&name)
        })
    })
}

/// How far the convergence got, for a timeout message.
fn progress(seen: &Mutex<Seen>, n: usize) -> String {
    seen.lock()
        .map(|s| {
            format!(
                "{} available, {} conflicted, {} provisioned of {n}",
                s.available.len(),
                s.conflicted.len(),
                s.provisioned.len()
            )
        })
        .unwrap_or_default()
}

/// Waits until every cluster is converged: Available (or, for `foreign` ones, refused with
/// an ownership conflict) and provisioned.
async fn converge(
    seen: &Arc<Mutex<Seen>>,
    n: usize,
    foreign: &BTreeSet<usize>,
    limit: Duration,
) -> Result<Duration, BenchError> {
    let started = Instant::now();
    loop {
        if converged(seen.as_ref(), n, foreign) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            let summary = progress(seen.as_ref(), n);
            return Err(BenchError(format!(
                "no convergence within {limit:?}: {summary}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The API floor: `writes` server-side applies by a bare kube-rs client, 10 at a time (the
/// manager's default concurrency), against the same server.
async fn floor(client: &Client, writes: u64, objects: usize) -> Result<Duration, BenchError> {
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), NAMESPACE);
    let started = Instant::now();
    let results: Vec<Result<(), BenchError>> = futures::stream::iter(0..writes)
        .map(|i| {
            let api = api.clone();
            async move {
                let name = format!("floor-{}", i as usize % objects.max(1));
                let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"write": i.to_string()}});
                api.patch(&name, &PatchParams::apply("bench-floor").force(), &Patch::Apply(&body)).await.map(|_| ()).map_err(|e| BenchError(e.to_string()))
            }
        })
        .buffer_unordered(10)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(started.elapsed())
}

/// One line of `bench scale`.
#[derive(Debug)]
pub struct ScaleReport {
    pub clusters: usize,
    pub converge: Duration,
    pub floor: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub rss_kib: u64,
    pub writes_per_cluster: f64,
    pub steady_writes: u64,
    /// GETs per cluster until convergence.
    pub gets_per_cluster: f64,
    /// Reconciles per cluster until convergence, per controller (from the manager's log).
    pub reconciles_per_cluster: BTreeMap<String, f64>,
}

impl std::fmt::Display for ScaleReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "clusters={} converge={:.2}s api-floor={:.2}s ratio={:.2} ready->endpoint p50={:.1}ms p99={:.1}ms controller-peak-rss={:.1}MiB writes/cluster-lifecycle={:.2} steady-state-writes={}",
            self.clusters,
            self.converge.as_secs_f64(),
            self.floor.as_secs_f64(),
            self.converge.as_secs_f64() / self.floor.as_secs_f64().max(1e-9),
            self.p50.as_secs_f64() * 1000.0,
            self.p99.as_secs_f64() * 1000.0,
            self.rss_kib as f64 / 1024.0,
            self.writes_per_cluster,
            self.steady_writes
        )?;
        write!(f, " gets/cluster={:.2}", self.gets_per_cluster)?;
        for (controller, n) in &self.reconciles_per_cluster {
            write!(f, " reconciles/cluster[{controller}]={n:.2}")?;
        }
        Ok(())
    }
}

/// Reconciles per controller in a manager log (its debug `reconciled` lines, JSON format).
fn reconciles_in(log: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for line in log.lines().filter(|l| l.contains("\"reconciled\"")) {
        let Ok(entry) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let Some(controller) = entry.pointer("/fields/controller").and_then(Value::as_str) {
            *counts.entry(controller.to_string()).or_default() += 1;
        }
    }
    counts
}

/// `bench scale`: N clusters from nothing to converged, a quiet steady state, deletion.
pub async fn scale(
    clusters: usize,
    steady: Duration,
    manager_binary: &Path,
    target: Target,
) -> Result<ScaleReport, BenchError> {
    let bench = Bench::start(manager_binary, None, target).await?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let observers = spawn_observers(&bench.client, seen.clone());
    let manager = bench.spawn_manager(0)?;
    let started = Instant::now();
    bench.create_clusters(clusters, &BTreeSet::new()).await?;
    let limit = match target {
        Target::Embedded => Duration::from_secs(120 + clusters as u64 / 10),
        // Real etcd and kube-apiserver share the two cores with everything else.
        Target::Upstream => Duration::from_secs(300 + clusters as u64 / 2),
    };
    converge(
        &seen,
        clusters,
        &BTreeSet::new(),
        limit.saturating_sub(started.elapsed()),
    )
    .await?;
    let converge_time = started.elapsed();
    // Printed at once, so a run that fails later (deletion) still leaves its convergence.
    eprintln!(
        "bench scale: {clusters} clusters converged in {:.2}s",
        converge_time.as_secs_f64()
    );
    let converge_writes = bench.manager_writes();
    let converge_gets = bench.manager_gets();
    for (resource, n) in &converge_gets {
        eprintln!("bench scale: gets until convergence: {n} × {resource}");
    }
    let converge_gets: u64 = converge_gets.values().sum();
    if std::env::var_os("BENCH_ACCESS").is_some()
        && let Backend::Embedded { server, .. } = &bench.backend
    {
        // Only the embedded server logs every user's accesses.
        for (access, n) in server.access_log().map(|l| l.all()).unwrap_or_default() {
            eprintln!(
                "bench scale: access until convergence: {n} × {} {} {}/{}",
                access.user, access.verb, access.group, access.resource
            );
        }
    }
    let converge_reconciles = reconciles_in(&manager.log());
    let mut latencies: Vec<Duration> = seen
        .lock()
        .map(|s| {
            s.endpoint
                .iter()
                .filter_map(|(n, at)| {
                    s.instance_ready
                        .get(n)
                        .map(|r| at.saturating_duration_since(*r))
                })
                .collect()
        })
        .unwrap_or_default();
    latencies.sort();
    // The last reconciles of the convergence may still be in flight: the steady window starts
    // once the manager made no write for 2 s.
    let mut last = bench.manager_writes();
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = bench.manager_writes();
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
    let before = bench.write_counts();
    tokio::time::sleep(steady).await;
    let after = bench.write_counts();
    let steady_writes: u64 = after.values().sum::<u64>() - before.values().sum::<u64>();
    for (access, count) in &after {
        let delta = count - before.get(access).copied().unwrap_or(0);
        if delta > 0 {
            eprintln!(
                "bench scale: steady-state writes: {delta} × {} {}/{}",
                access.verb, access.group, access.resource
            );
        }
    }
    let rss_kib = manager.peak_rss_kib().unwrap_or(0);
    // Deletion: the Clusters go, the simulated core deletes the control planes and the
    // infrastructure, the controllers delete the instances and release their finalizers.
    let clusters_api: Api<DynamicObject> = Api::namespaced_with(
        bench.client.clone(),
        NAMESPACE,
        &crate::capi::cluster_resource(),
    );
    match target {
        Target::Embedded => {
            clusters_api
                .delete_collection(&DeleteParams::default(), &ListParams::default())
                .await
                .map_err(|e| BenchError(format!("deleting the clusters: {e}")))?;
        }
        // kube-apiserver's deletecollection of 1000 Clusters outlives its request timeout (the
        // connection closed after about two minutes): one delete per Cluster, 32 in flight.
        Target::Upstream => {
            let results: Vec<Result<(), BenchError>> = futures::stream::iter(0..clusters)
                .map(|i| {
                    let api = clusters_api.clone();
                    async move {
                        match api.delete(&format!("c{i}"), &DeleteParams::default()).await {
                            Ok(_) => Ok(()),
                            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                            Err(e) => Err(BenchError(format!("deleting the cluster c{i}: {e}"))),
                        }
                    }
                })
                .buffer_unordered(32)
                .collect()
                .await;
            results.into_iter().collect::<Result<Vec<()>, _>>()?;
        }
    }
    let cps: Api<kany8s::api::Kany8sControlPlane> =
        Api::namespaced(bench.client.clone(), NAMESPACE);
    let deletion_started = Instant::now();
    let deadline = deletion_started + limit;
    loop {
        // One item is enough to know whether any is left: a full list of 10,000 control
        // planes several times a second was a load of its own on the server under test.
        let any_left = !cps
            .list_metadata(&ListParams::default().limit(1))
            .await
            .map_err(fail("listing"))?
            .items
            .is_empty();
        if !any_left {
            break;
        }
        if Instant::now() > deadline {
            let left = cps
                .list_metadata(&ListParams::default())
                .await
                .map_err(fail("listing"))?
                .items
                .len();
            return Err(BenchError(format!(
                "{left} control planes still exist after deletion"
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let deletion_time = deletion_started.elapsed();
    eprintln!(
        "bench scale: {clusters} clusters deleted in {:.2}s",
        deletion_time.as_secs_f64()
    );
    let lifecycle_writes = bench.manager_writes();
    let rss_kib = rss_kib.max(manager.peak_rss_kib().unwrap_or(0));
    let log = manager.kill().await;
    if log.contains("panicked") {
        return Err(BenchError("the manager panicked".into()));
    }
    for o in observers {
        o.abort();
    }
    let floor = floor(&bench.client, converge_writes, clusters).await?;
    Ok(ScaleReport {
        clusters,
        converge: converge_time,
        floor,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        rss_kib,
        writes_per_cluster: lifecycle_writes as f64 / clusters as f64,
        steady_writes,
        gets_per_cluster: converge_gets as f64 / clusters as f64,
        reconciles_per_cluster: converge_reconciles
            .into_iter()
            .map(|(controller, n)| (controller, n as f64 / clusters as f64))
            .collect(),
    })
}

/// The result of `bench chaos`.
#[derive(Debug)]
pub struct ChaosReport {
    pub clusters: usize,
    pub converge: Duration,
    pub restarts: usize,
    pub duplicate_instances: u64,
    pub initialized_flips: u64,
    pub foreign_secrets_overwritten: u64,
    pub panics: u64,
}

impl std::fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "clusters={} converge={:.2}s manager-restarts={} duplicate-instances={} initialized-flips={} foreign-secrets-overwritten={} panics={}",
            self.clusters,
            self.converge.as_secs_f64(),
            self.restarts,
            self.duplicate_instances,
            self.initialized_flips,
            self.foreign_secrets_overwritten,
            self.panics
        )
    }
}

/// `bench chaos`: `clusters` clusters while the server injects 10 % conflicts and 5 % errors,
/// drops watches every 2 s, and the manager is killed and restarted every `restart_every`.
pub async fn chaos(
    clusters: usize,
    restart_every: Duration,
    manager_binary: &Path,
) -> Result<ChaosReport, BenchError> {
    let bench = Bench::start(manager_binary, Some(0x5eed), Target::Embedded).await?;
    let server = bench.embedded_server()?;
    let foreign: BTreeSet<usize> = (0..clusters).step_by(10).collect();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let observers = spawn_observers(&bench.client, seen.clone());
    bench.create_clusters(clusters, &foreign).await?;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(bench.client.clone(), NAMESPACE);
    let mut foreign_versions = BTreeMap::new();
    for i in &foreign {
        let name = format!("c{i}-kubeconfig");
        let secret = secrets
            .get(&name)
            .await
            .map_err(fail("reading a foreign Secret"))?;
        foreign_versions.insert(name, secret.resource_version());
    }
    let started = Instant::now();
    server.faults().fail_writes(0.10, 0.05);
    let mut manager = bench.spawn_manager(0)?;
    let mut logs = String::new();
    let mut restarts = 0;
    let mut last_restart = Instant::now();
    let mut last_drop = Instant::now();
    let limit = Duration::from_secs(300 + clusters as u64 / 5);
    let converged = loop {
        if last_drop.elapsed() >= Duration::from_secs(2) {
            server.faults().drop_watches();
            last_drop = Instant::now();
        }
        if last_restart.elapsed() >= restart_every {
            logs.push_str(&manager.kill().await);
            restarts += 1;
            manager = bench.spawn_manager(restarts)?;
            last_restart = Instant::now();
        }
        if converged(seen.as_ref(), clusters, &foreign) {
            break started.elapsed();
        }
        if started.elapsed() > limit {
            let summary = progress(seen.as_ref(), clusters);
            logs.push_str(&manager.kill().await);
            return Err(BenchError(format!(
                "no convergence within {limit:?} under chaos: {summary}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    server.faults().fail_writes(0.0, 0.0);
    logs.push_str(&manager.kill().await);
    let instances: Api<DynamicObject> =
        Api::namespaced_with(bench.client.clone(), NAMESPACE, &instance_resource());
    let names: Vec<String> = instances
        .list_metadata(&ListParams::default())
        .await
        .map_err(fail("listing instances"))?
        .items
        .iter()
        .map(|o| o.name_any())
        .collect();
    let expected: BTreeSet<String> = (0..clusters).map(|i| format!("c{i}")).collect();
    let duplicate_instances = names.len().saturating_sub(expected.len()) as u64
        + names.iter().filter(|n| !expected.contains(*n)).count() as u64;
    let mut overwritten = 0;
    for (name, version) in &foreign_versions {
        let secret = secrets
            .get(name)
            .await
            .map_err(fail("reading a foreign Secret"))?;
        if &secret.resource_version() != version {
            overwritten += 1;
        }
    }
    for o in observers {
        o.abort();
    }
    let flips = seen.lock().map(|s| s.initialized_flips).unwrap_or(0);
    Ok(ChaosReport {
        clusters,
        converge: converged,
        restarts,
        duplicate_instances,
        initialized_flips: flips,
        foreign_secrets_overwritten: overwritten,
        panics: logs.matches("panicked").count() as u64,
    })
}
