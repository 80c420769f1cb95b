//! The upstream target ([ACC-01]): the real etcd, kube-apiserver, kube-controller-manager, kro
//! and Cluster API (core, kubeadm bootstrap, kubeadm control plane), built from Go modules by
//! `make upstream` and run as loopback processes, plus the kany8s managers authenticated as
//! their bundles' ServiceAccounts, so the real RBAC authorizer enforces `config/rbac`.
//!
//! Only what cannot run here is simulated, in process: the scheduler and kubelet (no container
//! runtime; [`kubelet`]) and the CAPD infrastructure of the kubeadm scenario.

pub mod helm;
pub mod kubelet;
pub mod manifests;
pub mod pki;
pub mod process;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::{ApiResource, Discovery};
use serde_json::{Value, json};

use manifests::{ManifestError, documents, documents_in, documents_of, module_dir};
use pki::{Authority, CertKey, Credential, PkiError};
use process::{Process, ProcessError, free_port, http_ok};

/// How long one component may take to become ready (2 shared cores; kube-apiserver's first
/// start installs its bootstrap RBAC and builds OpenAPI for every CRD).
const READY_TIMEOUT: Duration = Duration::from_secs(180);
const FIELD_MANAGER: &str = "kany8s-upstream-target";
/// The namespace of the workload cluster's admin ServiceAccount: the target plays every
/// workload cluster, and scenario kubeconfigs authenticate as this cluster-admin account.
pub const WORKLOAD_NAMESPACE: &str = "kany8s-workload";
pub const WORKLOAD_ADMIN: &str = "admin";

/// Why the upstream target could not start.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error(
        "the upstream binaries are missing ({0} not found): run `make upstream` (needs Go 1.26 and the Go module proxy)"
    )]
    NotBuilt(PathBuf),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("kubernetes client: {0}")]
    Client(String),
    #[error("{what}: {message}")]
    Install { what: String, message: String },
}

/// The repository root (the acceptance crate's parent).
pub fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Where `make upstream` puts the binaries (`UPSTREAM_BIN` overrides).
pub fn bin_dir() -> PathBuf {
    std::env::var_os("UPSTREAM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repository_root().join(".upstream/bin"))
}

/// The binaries the target runs; an error names the first one missing.
pub const BINARIES: &[&str] = &[
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kubectl",
    "kro",
    "capi-core",
    "capi-kubeadm-bootstrap",
    "capi-kubeadm-control-plane",
];

/// Whether every binary of the target is built.
pub fn built() -> Result<PathBuf, UpstreamError> {
    let bin = bin_dir();
    for name in BINARIES {
        let path = bin.join(name);
        if !path.is_file() {
            return Err(UpstreamError::NotBuilt(path));
        }
    }
    Ok(bin)
}

/// What to start.
#[derive(Clone, Debug)]
pub struct Options {
    /// Working folder: certificates, kubeconfigs, etcd data, process logs.
    pub dir: PathBuf,
    /// Where to write the admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// kube-apiserver's port (0: any free one).
    pub port: u16,
    /// Which components to start.
    pub components: Components,
    /// Start the kany8s managers (one per group, as their ServiceAccounts).
    pub managers: bool,
    /// Verbs removed from the managers' base ClusterRoles before they start, as
    /// `(role name suffix, api group, verb)`: the RBAC check's broken install.
    pub revoke: Vec<(String, String, String)>,
    /// Extra kube-apiserver flags (the scale bench's audit log).
    pub apiserver_args: Vec<String>,
}

impl Options {
    pub fn new(dir: &Path, kubeconfig: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            kubeconfig: kubeconfig.to_path_buf(),
            port: 0,
            components: Components::Full,
            managers: true,
            revoke: Vec::new(),
            apiserver_args: Vec::new(),
        }
    }
}

/// How much of the target to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Components {
    /// etcd, kube-apiserver and kube-controller-manager only: the oracle of the API server
    /// differential suite, which needs no kro, Cluster API or Kany8s.
    Kubernetes,
    /// Kubernetes plus kro (its CRDs and its controller): the oracle of the fake-kro
    /// differential, which needs no Cluster API or Kany8s.
    Kro,
    /// Everything a scenario needs: Kubernetes, kro, Cluster API, the simulated actors and the
    /// Kany8s install.
    Full,
}

/// A running upstream target. Dropping it stops every process and in-process actor.
pub struct Upstream {
    /// `https://127.0.0.1:PORT` of kube-apiserver.
    pub server: String,
    pub port: u16,
    /// The admin kubeconfig (`system:masters`).
    pub kubeconfig: PathBuf,
    /// The target's CA certificate (PEM), trusted by every component.
    pub ca: String,
    /// The CA with its key, for fixtures that play a workload cluster's CA.
    pub authority_ca: CertKey,
    /// Every port a component of the target listens on.
    pub ports: Vec<u16>,
    /// Where the process logs are.
    pub logs: PathBuf,
    /// The wall time each component took to become ready, in start order.
    pub timings: Vec<(String, Duration)>,
    pub bin: PathBuf,
    /// The working folder.
    pub dir: PathBuf,
    processes: Vec<Process>,
    actors: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("server", &self.server)
            .field("kubeconfig", &self.kubeconfig)
            .finish_non_exhaustive()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(actors) = self.actors.take() {
            actors.shutdown_background();
        }
        // Controllers first, etcd last.
        while let Some(mut process) = self.processes.pop() {
            process.stop();
        }
    }
}

/// A kube client from a kubeconfig file.
pub async fn client(kubeconfig: &Path) -> Result<Client, UpstreamError> {
    let config = kube::config::Kubeconfig::read_from(kubeconfig)
        .map_err(|e| UpstreamError::Client(e.to_string()))?;
    let config =
        kube::Config::from_custom_kubeconfig(config, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| UpstreamError::Client(e.to_string()))?;
    Client::try_from(config).map_err(|e| UpstreamError::Client(e.to_string()))
}

fn write(path: &Path, text: &str) -> Result<(), UpstreamError> {
    std::fs::write(path, text).map_err(|e| UpstreamError::Io(path.display().to_string(), e))
}

fn args(list: &[String]) -> Vec<String> {
    list.to_vec()
}

/// The wrapper module folder of `name` (upstream/<name>).
fn wrapper(name: &str) -> PathBuf {
    repository_root().join("upstream").join(name)
}

/// One Cluster API provider: its binary, where its manifests are, its ports.
struct Provider {
    name: &'static str,
    binary: &'static str,
    folder: &'static str,
    webhook_port: u16,
    health_port: u16,
    feature_gates: Option<&'static str>,
}

impl Upstream {
    /// Starts the whole target; each component is waited for before the next one starts.
    pub async fn start(options: Options) -> Result<Self, UpstreamError> {
        let bin = built()?;
        let dir = options.dir.clone();
        let logs = dir.join("logs");
        let pki_dir = dir.join("pki");
        let webhook_dir = dir.join("webhook-certs");
        for d in [&dir, &logs, &pki_dir, &webhook_dir] {
            std::fs::create_dir_all(d)
                .map_err(|e| UpstreamError::Io(d.display().to_string(), e))?;
        }
        let mut timings = Vec::new();
        let mut processes = Vec::new();
        let mut ports = Vec::new();
        let port = |ports: &mut Vec<u16>| -> Result<u16, UpstreamError> {
            let p = free_port().map_err(|e| UpstreamError::Io("a free port".into(), e))?;
            ports.push(p);
            Ok(p)
        };

        // Certificates: one CA for serving and client certificates.
        let started = Instant::now();
        let authority = Authority::new()?;
        let ca_path = pki_dir.join("ca.crt");
        write(&ca_path, &authority.ca.cert)?;
        // The CA key too: a kubeadm demo cluster may take the target's CA as its own.
        write(&pki_dir.join("ca.key"), &authority.ca.key)?;
        let (serving_cert, serving_key) = authority
            .serving("kube-apiserver")?
            .write(&pki_dir, "serving")?;
        let webhook = authority.serving("cluster-api-webhooks")?;
        write(&webhook_dir.join("tls.crt"), &webhook.cert)?;
        write(&webhook_dir.join("tls.key"), &webhook.key)?;
        let (sa_key, sa_public) = pki::service_account_key()?;
        let sa_key_path = pki_dir.join("sa.key");
        let sa_public_path = pki_dir.join("sa.pub");
        write(&sa_key_path, &sa_key)?;
        write(&sa_public_path, &sa_public)?;
        let admin = authority.client("kany8s-upstream-admin", &["system:masters"])?;
        timings.push(("certificates".to_string(), started.elapsed()));

        // etcd.
        let etcd_client = port(&mut ports)?;
        let etcd_peer = port(&mut ports)?;
        let etcd_data = dir.join("etcd");
        let mut etcd = Process::start(
            "etcd",
            &bin.join("etcd"),
            &args(&[
                "--name=upstream".into(),
                format!("--data-dir={}", etcd_data.display()),
                format!("--listen-client-urls=http://127.0.0.1:{etcd_client}"),
                format!("--advertise-client-urls=http://127.0.0.1:{etcd_client}"),
                format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}"),
                format!("--initial-cluster=upstream=http://127.0.0.1:{etcd_peer}"),
                "--listen-metrics-urls=".into(),
                "--unsafe-no-fsync=true".into(),
                "--log-level=warn".into(),
            ]),
            &logs,
            &[],
        )?;
        let waited = etcd
            .wait_ready(READY_TIMEOUT, || http_ok(etcd_client, "/health"))
            .await?;
        timings.push(("etcd".into(), waited));
        processes.push(etcd);

        // kube-apiserver.
        let api_port = if options.port == 0 {
            port(&mut ports)?
        } else {
            ports.push(options.port);
            options.port
        };
        let server = format!("https://127.0.0.1:{api_port}");
        let mut apiserver_args = args(&[
            format!("--etcd-servers=http://127.0.0.1:{etcd_client}"),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={api_port}"),
            "--advertise-address=127.0.0.1".into(),
            "--endpoint-reconciler-type=none".into(),
            format!("--tls-cert-file={}", serving_cert.display()),
            format!("--tls-private-key-file={}", serving_key.display()),
            format!("--client-ca-file={}", ca_path.display()),
            "--authorization-mode=Node,RBAC".into(),
            format!("--service-account-issuer={server}"),
            format!("--service-account-key-file={}", sa_public_path.display()),
            format!(
                "--service-account-signing-key-file={}",
                sa_key_path.display()
            ),
            "--service-cluster-ip-range=10.96.0.0/16".into(),
            format!("--cert-dir={}", pki_dir.display()),
            "--allow-privileged=true".into(),
            "--profiling=false".into(),
            "--v=1".into(),
        ]);
        apiserver_args.extend(options.apiserver_args.iter().cloned());
        let mut apiserver = Process::start(
            "kube-apiserver",
            &bin.join("kube-apiserver"),
            &apiserver_args,
            &logs,
            &[],
        )?;
        let admin_config = pki::kubeconfig(
            &server,
            &authority.ca.cert,
            "kany8s-upstream-admin",
            Credential::Certificate(&admin),
        );
        write(&options.kubeconfig, &admin_config)?;
        let admin_client = client(&options.kubeconfig).await?;
        let probe_client = admin_client.clone();
        let waited = apiserver
            .wait_ready(READY_TIMEOUT, move || {
                let client = probe_client.clone();
                async move {
                    let request = http::Request::get("/readyz")
                        .body(Vec::new())
                        .map_err(|e| e.to_string())?;
                    client
                        .request_text(request)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            })
            .await?;
        timings.push(("kube-apiserver".into(), waited));
        processes.push(apiserver);

        // kube-controller-manager: the garbage collector, namespace lifecycle, ClusterRole
        // aggregation and the Deployment/ReplicaSet controllers the kro demo children need.
        let mut kcm = Process::start(
            "kube-controller-manager",
            &bin.join("kube-controller-manager"),
            &args(&[
                format!("--kubeconfig={}", options.kubeconfig.display()),
                format!("--authentication-kubeconfig={}", options.kubeconfig.display()),
                format!("--authorization-kubeconfig={}", options.kubeconfig.display()),
                "--leader-elect=false".into(),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={}", port(&mut ports)?),
                format!("--cert-dir={}", pki_dir.join("kcm").display()),
                "--use-service-account-credentials=false".into(),
                "--controllers=garbage-collector-controller,namespace-controller,clusterrole-aggregation-controller,serviceaccount-controller,deployment-controller,replicaset-controller".into(),
                "--concurrent-gc-syncs=5".into(),
                "--v=1".into(),
            ]),
            &logs,
            &[],
        )?;
        let sa_client = admin_client.clone();
        let waited = kcm
            .wait_ready(READY_TIMEOUT, move || {
                let client = sa_client.clone();
                // The ServiceAccount controller's first write: proof the manager runs.
                async move {
                    let accounts: Api<ServiceAccount> = Api::namespaced(client, "default");
                    match accounts.get_opt("default").await {
                        Ok(Some(_)) => Ok(()),
                        Ok(None) => Err("no default ServiceAccount yet".into()),
                        Err(e) => Err(e.to_string()),
                    }
                }
            })
            .await?;
        timings.push(("kube-controller-manager".into(), waited));
        processes.push(kcm);
        let mut upstream = Self {
            server,
            port: api_port,
            kubeconfig: options.kubeconfig.clone(),
            ca: authority.ca.cert.clone(),
            authority_ca: authority.ca.clone(),
            ports,
            logs,
            timings,
            bin,
            dir: dir.clone(),
            processes,
            actors: None,
        };
        if options.components == Components::Kubernetes {
            return Ok(upstream);
        }

        // CRDs: kro's, Cluster API's (conversion to the providers' webhook servers), the
        // simulated CAPD's; the Kany8s CRDs come with the bundles below.
        let started = Instant::now();
        let kro_dir = module_dir(&wrapper("kro"), "github.com/kubernetes-sigs/kro")?;
        let capi_dir = module_dir(&wrapper("cluster-api"), "sigs.k8s.io/cluster-api")?;
        let mut providers = vec![
            Provider {
                name: "capi-core",
                binary: "capi-core",
                folder: "core",
                webhook_port: port(&mut upstream.ports)?,
                health_port: port(&mut upstream.ports)?,
                feature_gates: Some("ClusterTopology=true"),
            },
            Provider {
                name: "capi-kubeadm-bootstrap",
                binary: "capi-kubeadm-bootstrap",
                folder: "bootstrap/kubeadm",
                webhook_port: port(&mut upstream.ports)?,
                health_port: port(&mut upstream.ports)?,
                feature_gates: None,
            },
            Provider {
                name: "capi-kubeadm-control-plane",
                binary: "capi-kubeadm-control-plane",
                folder: "controlplane/kubeadm",
                webhook_port: port(&mut upstream.ports)?,
                health_port: port(&mut upstream.ports)?,
                feature_gates: Some("ClusterTopology=true"),
            },
        ];
        let mut crds = documents_in(&kro_dir.join("helm/crds"))?;
        let kubectl = upstream.bin.join("kubectl");
        // kro alone: Cluster API's CRDs, managers and webhooks are left out.
        if options.components == Components::Kro {
            providers.clear();
        }
        for provider in &providers {
            // The provider's own kustomization adds the contract labels and the conversion
            // webhook; only the webhook's address is rewritten.
            let rendered =
                kustomize(&kubectl, &capi_dir.join(provider.folder).join("config/crd")).await?;
            for crd in documents_of(&rendered).map_err(|e| UpstreamError::Install {
                what: format!("the {} CRDs", provider.name),
                message: e,
            })? {
                crds.push(manifests::loopback_conversion(
                    crd,
                    provider.webhook_port,
                    &authority.ca.cert,
                ));
            }
        }
        // Only the infrastructure kinds of the simulated CAPD: KubeadmConfig is the real one.
        if options.components == Components::Full {
            crds.extend(
                crate::crds::capd_kubeadm()
                    .into_iter()
                    .filter(|c| c["spec"]["group"] == "infrastructure.cluster.x-k8s.io"),
            );
        }
        crate::env::install(&admin_client, crds)
            .await
            .map_err(|e| UpstreamError::Install {
                what: "CRDs".into(),
                message: e.to_string(),
            })?;
        upstream
            .timings
            .push(("CRDs established".into(), started.elapsed()));

        // kro.
        let kro_health = port(&mut upstream.ports)?;
        let mut kro = Process::start(
            "kro",
            &upstream.bin.join("kro"),
            &args(&[
                format!("--kubeconfig={}", options.kubeconfig.display()),
                "--metrics-bind-address=0".into(),
                format!("--health-probe-bind-address=127.0.0.1:{kro_health}"),
                "--leader-elect=false".into(),
            ]),
            &upstream.logs,
            &[],
        )?;
        let waited = kro
            .wait_ready(READY_TIMEOUT, || http_ok(kro_health, "/readyz"))
            .await?;
        upstream.timings.push(("kro".into(), waited));
        upstream.processes.push(kro);
        if options.components == Components::Kro {
            return Ok(upstream);
        }

        // Cluster API managers, then their admission webhooks (failurePolicy Fail: created only
        // once the servers answer).
        for provider in &mut providers {
            let mut list = vec![
                format!("--kubeconfig={}", options.kubeconfig.display()),
                "--leader-elect=false".into(),
                format!("--webhook-port={}", provider.webhook_port),
                format!("--webhook-cert-dir={}", webhook_dir.display()),
                format!("--health-addr=127.0.0.1:{}", provider.health_port),
                "--diagnostics-address=0".into(),
                "--insecure-diagnostics=true".into(),
            ];
            if let Some(gates) = provider.feature_gates {
                list.push(format!("--feature-gates={gates}"));
            }
            let mut manager = Process::start(
                provider.name,
                &upstream.bin.join(provider.binary),
                &list,
                &upstream.logs,
                &[],
            )?;
            let health = provider.health_port;
            let waited = manager
                .wait_ready(READY_TIMEOUT, || http_ok(health, "/readyz"))
                .await?;
            upstream.timings.push((provider.name.to_string(), waited));
            upstream.processes.push(manager);
        }
        let started = Instant::now();
        let mut webhooks = Vec::new();
        for provider in &providers {
            let file = capi_dir
                .join(provider.folder)
                .join("config/webhook/manifests.yaml");
            webhooks.extend(manifests::loopback_webhooks(
                documents(&file)?,
                provider.name,
                provider.webhook_port,
                &authority.ca.cert,
            )?);
        }
        apply_all(&admin_client, webhooks).await?;
        upstream
            .timings
            .push(("webhooks".into(), started.elapsed()));

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("upstream-actors")
            .enable_all()
            .build()
            .map_err(|e| UpstreamError::Io("the actors' runtime".into(), e))?;
        // Owned by the stack at once: a later step that fails drops the stack, whose Drop shuts
        // the runtime down in the background (a runtime dropped in async code panics and hides
        // the error).
        let actors = upstream.actors.insert(runtime).handle().clone();

        // Simulated: the scheduler and kubelet, the CAPD infrastructure.
        let kubeconfig = options.kubeconfig.clone();
        actors.spawn(async move {
            match client(&kubeconfig).await {
                Ok(client) => kubelet::run(client).await,
                Err(error) => tracing::error!(%error, "simulated kubelet: no client"),
            }
        });
        let kubeconfig = options.kubeconfig.clone();
        // The target plays every workload cluster: DockerClusters publish its own endpoint.
        let endpoint = ("127.0.0.1".to_string(), i64::from(api_port));
        actors.spawn(async move {
            match client(&kubeconfig).await {
                Ok(client) => crate::capd::run_infrastructure(client, endpoint).await,
                Err(error) => tracing::error!(%error, "simulated CAPD: no client"),
            }
        });

        // The workload cluster's admin, whose tokens go into scenario kubeconfigs.
        crate::env::create_namespace(&admin_client, WORKLOAD_NAMESPACE)
            .await
            .map_err(|e| UpstreamError::Install {
                what: "the workload admin".into(),
                message: e.to_string(),
            })?;
        apply_all(
            &admin_client,
            vec![
                json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": WORKLOAD_ADMIN, "namespace": WORKLOAD_NAMESPACE}}),
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": {"name": "kany8s-workload-admin"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                    "subjects": [{"kind": "ServiceAccount", "name": WORKLOAD_ADMIN, "namespace": WORKLOAD_NAMESPACE}]}),
            ],
        )
        .await?;

        // The Kany8s install: both clusterctl bundles (CRDs, RBAC, namespaces) without the
        // manager Deployments, whose managers run here as their ServiceAccounts.
        let started = Instant::now();
        upstream
            .install_bundles(
                &admin_client,
                &["clusterctl/controlplane", "clusterctl/infrastructure"],
                &options.revoke,
            )
            .await?;
        upstream
            .timings
            .push(("kany8s bundles".into(), started.elapsed()));
        if options.managers {
            let started = Instant::now();
            for group in [
                kany8s::manager::Group::ControlPlane,
                kany8s::manager::Group::Infrastructure,
            ] {
                let user = crate::env::manager_user(group);
                let account = user.rsplit(':').next().unwrap_or_default();
                let token = upstream
                    .service_account_token(
                        &admin_client,
                        crate::env::provider_namespace(group),
                        account,
                    )
                    .await?;
                let config = pki::kubeconfig(
                    &upstream.server,
                    &upstream.ca,
                    &crate::env::manager_user(group),
                    Credential::Token(&token),
                );
                let path = dir.join(format!("{}.kubeconfig", group.controllers()[0]));
                write(&path, &config)?;
                actors.spawn(run_manager(group, path));
            }
            upstream
                .timings
                .push(("kany8s managers".into(), started.elapsed()));
        }
        Ok(upstream)
    }

    /// Renders each `config/<bundle>` with the target's kubectl (kustomize) and applies
    /// everything but the Deployment; `revoke` removes verbs from the base roles.
    pub async fn install_bundles(
        &self,
        admin: &Client,
        bundles: &[&str],
        revoke: &[(String, String, String)],
    ) -> Result<(), UpstreamError> {
        let mut objects = Vec::new();
        for bundle in bundles {
            let folder = repository_root().join("config").join(bundle);
            let text = kustomize(&self.bin.join("kubectl"), &folder).await?;
            let documents = documents_of(&text).map_err(|e| UpstreamError::Install {
                what: format!("the {bundle} bundle"),
                message: e,
            })?;
            for mut object in documents {
                if object["kind"] == "Deployment" {
                    continue;
                }
                if object["kind"] == "ClusterRole" {
                    revoke_rules(&mut object, revoke);
                }
                objects.push(object);
            }
        }
        // Namespaces and CRDs before what lives in them or uses them.
        objects.sort_by_key(|o| match o["kind"].as_str() {
            Some("Namespace") => 0,
            Some("CustomResourceDefinition") => 1,
            _ => 2,
        });
        let crds: Vec<Value> = objects
            .iter()
            .filter(|o| o["kind"] == "CustomResourceDefinition")
            .cloned()
            .collect();
        let rest: Vec<Value> = objects
            .into_iter()
            .filter(|o| o["kind"] != "CustomResourceDefinition")
            .collect();
        crate::env::install(admin, crds)
            .await
            .map_err(|e| UpstreamError::Install {
                what: "the Kany8s CRDs".into(),
                message: e.to_string(),
            })?;
        apply_all(admin, rest).await
    }

    /// A token of the ServiceAccount `namespace/name` (TokenRequest, one day).
    pub async fn service_account_token(
        &self,
        admin: &Client,
        namespace: &str,
        name: &str,
    ) -> Result<String, UpstreamError> {
        let user = format!("system:serviceaccount:{namespace}:{name}");
        let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
        let request = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 86400}});
        let response: Value = accounts
            .create_subresource("token", name, &PostParams::default(), &request)
            .await
            .map_err(|e| UpstreamError::Install {
                what: format!("a token of {user}"),
                message: e.to_string(),
            })?;
        response["status"]["token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| UpstreamError::Install {
                what: format!("a token of {user}"),
                message: "the TokenRequest returned no token".into(),
            })
    }

    /// The admin client (a new one: clients belong to the runtime that uses them).
    pub async fn admin(&self) -> Result<Client, UpstreamError> {
        client(&self.kubeconfig).await
    }

    /// The last lines of every process log.
    pub fn log_tails(&self, lines: usize) -> String {
        self.processes
            .iter()
            .map(|p| format!("==> {} <==\n{}\n", p.name, p.tail(lines)))
            .collect()
    }

    /// Fails when a process has exited.
    pub fn check_running(&mut self) -> Result<(), UpstreamError> {
        for process in &mut self.processes {
            process.check_running()?;
        }
        Ok(())
    }

    /// What a scenario harness needs of this target.
    pub fn target(&self) -> crate::harness::UpstreamTarget {
        crate::harness::UpstreamTarget {
            kubectl: self.bin.join("kubectl"),
            server: self.server.clone(),
            ports: self.ports.clone(),
            ca: self.ca.clone(),
            ca_key: self.authority_ca.key.clone(),
            logs: self.logs.clone(),
        }
    }

    /// The kubeconfig a kany8s manager of `group` uses (its ServiceAccount's token).
    pub fn manager_kubeconfig(&self, group: kany8s::manager::Group) -> PathBuf {
        self.dir
            .join(format!("{}.kubeconfig", group.controllers()[0]))
    }

    /// Process ids, for the no-orphan check.
    pub fn pids(&self) -> Vec<u32> {
        self.processes.iter().map(Process::id).collect()
    }
}

/// `kubectl kustomize folder` with the target's kubectl.
async fn kustomize(kubectl: &Path, folder: &Path) -> Result<String, UpstreamError> {
    let output = tokio::process::Command::new(kubectl)
        .arg("kustomize")
        .arg(folder)
        .output()
        .await
        .map_err(|e| UpstreamError::Io("kubectl kustomize".into(), e))?;
    if !output.status.success() {
        return Err(UpstreamError::Install {
            what: format!("kubectl kustomize {}", folder.display()),
            message: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn revoke_rules(role: &mut Value, revoke: &[(String, String, String)]) {
    let name = role["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for (suffix, group, verb) in revoke {
        if !name.ends_with(suffix.as_str()) {
            continue;
        }
        for rule in role["rules"].as_array_mut().into_iter().flatten() {
            let in_group = rule["apiGroups"]
                .as_array()
                .is_some_and(|g| g.iter().any(|g| g == group.as_str()));
            if in_group && let Some(verbs) = rule["verbs"].as_array_mut() {
                verbs.retain(|v| v != verb.as_str());
            }
        }
        if let Some(rules) = role["rules"].as_array_mut() {
            rules.retain(|r| r["verbs"].as_array().is_none_or(|v| !v.is_empty()));
        }
    }
}

/// Server-side applies `objects` as the target's field manager (kinds found by discovery).
pub async fn apply_all(client: &Client, objects: Vec<Value>) -> Result<(), UpstreamError> {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .map_err(|e| UpstreamError::Client(e.to_string()))?;
    for object in objects {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
        let (resource, capabilities): (ApiResource, _) =
            discovery
                .resolve_gvk(&gvk)
                .ok_or_else(|| UpstreamError::Install {
                    what: format!("{kind} {name}"),
                    message: format!("{api_version} {kind} is not served"),
                })?;
        let api: Api<DynamicObject> =
            match (capabilities.scope, object["metadata"]["namespace"].as_str()) {
                (kube::discovery::Scope::Namespaced, Some(ns)) => {
                    Api::namespaced_with(client.clone(), ns, &resource)
                }
                (kube::discovery::Scope::Namespaced, None) => {
                    Api::default_namespaced_with(client.clone(), &resource)
                }
                (kube::discovery::Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
            };
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await
        .map_err(|e| UpstreamError::Install {
            what: format!("{kind} {name}"),
            message: e.to_string(),
        })?;
    }
    Ok(())
}

/// One kany8s manager (the groups of one clusterctl bundle) as its ServiceAccount, with its
/// Lease, as the bundle's Deployment runs it.
async fn run_manager(group: kany8s::manager::Group, kubeconfig: PathBuf) {
    let client = match client(&kubeconfig).await {
        Ok(c) => c,
        Err(error) => {
            tracing::error!(%error, "kany8s manager: no client");
            return;
        }
    };
    let namespace = crate::env::provider_namespace(group);
    let election = kany8s::manager::LeaderElection::new(
        kany8s::manager::lease_name(&[group]),
        namespace.to_string(),
        format!("{namespace}-upstream"),
    );
    let config = kany8s::manager::Config {
        groups: vec![group],
        options: kany8s::manager::Options {
            instance: Some(format!("{}-upstream", group.controllers()[0])),
            ..kany8s::manager::Options::default()
        },
        leader_election: Some(election),
        health_address: None,
        metrics_address: None,
    };
    if let Err(error) = kany8s::manager::run(client, config, std::future::pending(), None).await {
        tracing::error!(%error, "kany8s manager stopped");
    }
}
