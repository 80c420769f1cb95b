//! The embedded target ([ACC-01]): the embedded API server on a loopback port, fake-kro's
//! simulator, the simulated Cluster API core and the kany8s manager (all groups), connected
//! through ordinary clients; plus a log sink so a failing run can show the controllers' logs.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use serde_json::Value;

/// Why the environment could not start.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("listening on {0}: {1}")]
    Listen(String, std::io::Error),
    #[error("writing the kubeconfig {0}: {1}")]
    Kubeconfig(PathBuf, std::io::Error),
    #[error("kubernetes client: {0}")]
    Client(String),
    #[error("installing {0}: {1}")]
    Install(String, String),
}

/// Everything the controllers and simulators log, kept for the artifacts folder.
#[derive(Clone, Debug, Default)]
pub struct LogSink(Arc<Mutex<Vec<u8>>>);

impl LogSink {
    /// The text logged so far.
    pub fn contents(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static SINK: OnceLock<LogSink> = OnceLock::new();

/// Installs (once per process) a JSON log subscriber writing into the returned sink; when
/// `echo` is set, logs also go to stderr.
pub fn capture_logs(echo: bool) -> LogSink {
    SINK.get_or_init(|| {
        let sink = LogSink::default();
        let writer = sink.clone();
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(
                "info,kany8s=debug,fake_kro=debug,acceptance=debug,kube_runtime=warn,kube_client=warn",
            )
        });
        let make: Box<dyn Fn() -> Box<dyn Write> + Send + Sync> = if echo {
            Box::new(move || Box::new(Tee(writer.clone())))
        } else {
            Box::new(move || Box::new(writer.clone()))
        };
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(make)
            .try_init();
        sink
    })
    .clone()
}

struct Tee(LogSink);

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// A running embedded environment; dropping it stops everything.
pub struct Embedded {
    pub server: kany8s_apiserver::Server,
    pub address: SocketAddr,
    pub kubeconfig: PathBuf,
    pub client: Client,
    /// Each group's manager with its metrics ([MET-01]), read in process: what the manager's
    /// `/metrics` endpoint would serve.
    pub managers: Vec<(kany8s::manager::Group, Arc<kany8s::metrics::Metrics>)>,
    serving: Option<kany8s_apiserver::ServeHandle>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("address", &self.address)
            .field("kubeconfig", &self.kubeconfig)
            .finish_non_exhaustive()
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(serving) = self.serving.take() {
            serving.shutdown();
        }
    }
}

/// The namespace of a group's clusterctl bundle ([PKG-03]).
pub fn provider_namespace(group: kany8s::manager::Group) -> &'static str {
    match group {
        kany8s::manager::Group::ControlPlane => "control-plane-kany8s-system",
        kany8s::manager::Group::Infrastructure => "infrastructure-kany8s-system",
    }
}

/// The user a group's manager acts as: the ServiceAccount of its clusterctl bundle.
pub fn manager_user(group: kany8s::manager::Group) -> String {
    let namespace = provider_namespace(group);
    let prefix = namespace.trim_end_matches("system");
    format!("system:serviceaccount:{namespace}:{prefix}controller-manager")
}

/// Creates a namespace (already existing is fine).
pub async fn create_namespace(client: &Client, name: &str) -> Result<(), EnvError> {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))
        .map_err(|e| EnvError::Install(name.into(), e.to_string()))?;
    match namespaces.create(&PostParams::default(), &namespace).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(EnvError::Install(name.into(), e.to_string())),
    }
}

/// Creates `crds` and waits until each is Established.
pub async fn install(client: &Client, crds: Vec<Value>) -> Result<(), EnvError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    for crd in crds {
        let crd: CustomResourceDefinition = serde_json::from_value(crd)
            .map_err(|e| EnvError::Install("a CRD".into(), e.to_string()))?;
        let name = crd.name_any();
        api.create(&PostParams::default(), &crd)
            .await
            .map_err(|e| EnvError::Install(name.clone(), e.to_string()))?;
        names.push(name);
    }
    for name in names {
        let mut established = false;
        for _ in 0..500 {
            let crd = api
                .get(&name)
                .await
                .map_err(|e| EnvError::Install(name.clone(), e.to_string()))?;
            established = crd.status.and_then(|s| s.conditions).is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if established {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if !established {
            return Err(EnvError::Install(name, "never established".into()));
        }
    }
    Ok(())
}

impl Embedded {
    /// Starts the server on `listen`, writes its kubeconfig to `kubeconfig`, installs the
    /// Cluster API and Kany8s CRDs and starts fake-kro, the simulated core and the manager.
    pub async fn start(listen: &str, kubeconfig: &Path) -> Result<Self, EnvError> {
        // The access log lets the RBAC test see what each manager did.
        let server = kany8s_apiserver::Server::builder()
            .record_access(true)
            .build();
        let (address, serving) = server
            .serve(listen)
            .await
            .map_err(|e| EnvError::Listen(listen.to_string(), e))?;
        std::fs::write(kubeconfig, kany8s_apiserver::Server::kubeconfig(address))
            .map_err(|e| EnvError::Kubeconfig(kubeconfig.to_path_buf(), e))?;
        let config = kube::Config::new(
            format!("http://{address}")
                .parse()
                .map_err(|e| EnvError::Client(format!("{e}")))?,
        );
        let client = Client::try_from(config).map_err(|e| EnvError::Client(e.to_string()))?;
        let mut crds = crate::crds::cluster_api();
        crds.extend(crate::crds::capd_kubeadm());
        for crd in kany8s::crds::all()
            .map_err(|e| EnvError::Install("Kany8s CRDs".into(), e.to_string()))?
        {
            crds.push(
                serde_json::to_value(crd)
                    .map_err(|e| EnvError::Install("Kany8s CRDs".into(), e.to_string()))?,
            );
        }
        install(&client, crds).await?;
        let mut tasks = Vec::new();
        let kro = client.clone();
        tasks.push(tokio::spawn(async move {
            let options = fake_kro::sim::SimOptions {
                requeue: Duration::from_millis(200),
                mode: fake_kro::sim::ChildMode::Applied,
                ..fake_kro::sim::SimOptions::default()
            };
            if let Err(error) = fake_kro::sim::run(kro, options).await {
                tracing::error!(%error, "fake-kro stopped");
            }
        }));
        tasks.push(tokio::spawn(crate::capi::run(client.clone())));
        tasks.push(tokio::spawn(crate::capd::run(client.clone())));
        // One manager per group, as the two clusterctl Deployments run them, each as its
        // ServiceAccount (so the access log tells their requests apart) with its own Lease.
        let mut managers = Vec::new();
        for group in [
            kany8s::manager::Group::ControlPlane,
            kany8s::manager::Group::Infrastructure,
        ] {
            let namespace = provider_namespace(group);
            create_namespace(&client, namespace).await?;
            let mut config = kube::Config::new(
                format!("http://{address}")
                    .parse()
                    .map_err(|e| EnvError::Client(format!("{e}")))?,
            );
            config.auth_info.impersonate = Some(manager_user(group));
            let manager = Client::try_from(config).map_err(|e| EnvError::Client(e.to_string()))?;
            let lease = kany8s::manager::lease_name(&[group]);
            let election = kany8s::manager::LeaderElection::new(
                lease,
                namespace.to_string(),
                format!("{namespace}-embedded"),
            );
            let options = kany8s::manager::Options {
                instance: Some(format!("{}-embedded", group.controllers()[0])),
                ..kany8s::manager::Options::default()
            };
            managers.push((group, options.metrics.clone()));
            tasks.push(tokio::spawn(async move {
                let config = kany8s::manager::Config {
                    groups: vec![group],
                    options,
                    leader_election: Some(election),
                    health_address: None,
                    metrics_address: None,
                };
                if let Err(error) =
                    kany8s::manager::run(manager, config, std::future::pending(), None).await
                {
                    tracing::error!(%error, "manager stopped");
                }
            }));
        }
        Ok(Self {
            server,
            address,
            kubeconfig: kubeconfig.to_path_buf(),
            client,
            managers,
            serving: Some(serving),
            tasks,
        })
    }

    /// How many reconciles of `controller` (a [`kany8s::metrics`] controller label) are in
    /// flight now: the `controller_runtime_active_workers` gauge of the manager that runs it.
    pub fn reconciles_in_flight(&self, controller: &str) -> Option<i64> {
        let series = format!("controller_runtime_active_workers{{controller=\"{controller}\"}} ");
        let (_, metrics) = self
            .managers
            .iter()
            .find(|(group, _)| group.controllers().contains(&controller))?;
        metrics
            .encode()
            .lines()
            .find_map(|line| line.strip_prefix(&series)?.trim().parse().ok())
    }
}
