//! The manager (provider.md §10.1): runs the enabled controller groups, optionally only while
//! holding a leader-election Lease, and serves health probes and metrics until shut down.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::FutureExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::{self, Metrics};

pub use crate::reconciler::runtime::Options;

/// A controller group of `--enable-controller`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    ControlPlane,
    Infrastructure,
}

impl Group {
    /// Parses a `--enable-controller` value.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "control-plane" => Ok(Group::ControlPlane),
            "infrastructure" => Ok(Group::Infrastructure),
            other => Err(format!(
                "unknown controller group \"{other}\" (supported: infrastructure, control-plane)"
            )),
        }
    }

    /// The groups `--enable-controller` selects: each once, all when none is given.
    pub fn enabled(groups: &[Group]) -> Vec<Group> {
        let mut distinct = groups.to_vec();
        distinct.sort();
        distinct.dedup();
        if distinct.is_empty() {
            vec![Group::ControlPlane, Group::Infrastructure]
        } else {
            distinct
        }
    }

    /// The metric labels of the group's controllers.
    pub fn controllers(self) -> &'static [&'static str] {
        match self {
            Group::ControlPlane => &[metrics::CONTROL_PLANE, metrics::KUBEADM],
            Group::Infrastructure => &[metrics::INFRASTRUCTURE],
        }
    }
}

/// [MGR-02]: the Lease name for the enabled groups (all groups when `groups` is empty).
pub fn lease_name(groups: &[Group]) -> String {
    const ID: &str = "4d5f86eb.cluster.x-k8s.io";
    match Group::enabled(groups).as_slice() {
        [Group::ControlPlane] => format!("control-plane.{ID}"),
        [Group::Infrastructure] => format!("infrastructure.{ID}"),
        _ => ID.to_string(),
    }
}

/// Lease timings ([MGR-01]).
#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaderElection {
    pub fn new(name: String, namespace: String, identity: String) -> Self {
        Self {
            name,
            namespace,
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Why the manager stopped other than by a requested shutdown.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("binding {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("leader election lost: the lease {0} was not renewed within the renew deadline")]
    LeaseLost(String),
}

/// Everything `run` needs.
#[derive(Debug)]
pub struct Config {
    pub groups: Vec<Group>,
    pub options: Options,
    pub leader_election: Option<LeaderElection>,
    pub health_address: Option<SocketAddr>,
    pub metrics_address: Option<SocketAddr>,
}

#[derive(Debug)]
struct Probes {
    ready: AtomicBool,
    metrics: Arc<Metrics>,
}

async fn healthz() -> StatusCode {
    StatusCode::OK
}

async fn readyz(State(probes): State<Arc<Probes>>) -> StatusCode {
    if probes.ready.load(Ordering::SeqCst) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn metrics_text(State(probes): State<Arc<Probes>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        probes.metrics.encode(),
    )
}

async fn serve(
    address: SocketAddr,
    router: Router,
    stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ManagerError> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| ManagerError::Bind(address, e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| ManagerError::Bind(address, e))?;
    let handle = tokio::spawn(async move {
        let mut stop = stop;
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(error) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(%error, "probe server stopped");
        }
    });
    Ok((bound, handle))
}

/// The addresses the servers bound (port 0 resolved), reported once the manager started.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bound {
    pub health: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
}

/// Runs the manager until `shutdown` resolves (then exits cleanly, releasing the Lease) or
/// the Lease is lost. `started` receives the bound addresses once the servers listen.
pub async fn run(
    client: Client,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
    started: Option<tokio::sync::oneshot::Sender<Bound>>,
) -> Result<(), ManagerError> {
    let groups = Group::enabled(&config.groups);
    let metrics = config.options.metrics.clone();
    let probes = Arc::new(Probes {
        ready: AtomicBool::new(false),
        metrics: metrics.clone(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut bound = Bound::default();
    let mut servers = Vec::new();
    if let Some(address) = config.health_address {
        let router = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(probes.clone());
        let (address, handle) = serve(address, router, stop_rx.clone()).await?;
        bound.health = Some(address);
        servers.push(handle);
    }
    if let Some(address) = config.metrics_address {
        let router = Router::new()
            .route("/metrics", get(metrics_text))
            .with_state(probes.clone());
        let (address, handle) = serve(address, router, stop_rx.clone()).await?;
        bound.metrics = Some(address);
        servers.push(handle);
    }
    // [MGR-04]: ready once the client is built and the servers are bound; standbys too.
    probes.ready.store(true, Ordering::SeqCst);
    if let Some(started) = started {
        let _ = started.send(bound);
    }
    tracing::info!(groups = ?groups, health = ?bound.health, metrics = ?bound.metrics, "manager started");

    let controllers = run_groups(client.clone(), groups, config.options.clone());
    let outcome = match &config.leader_election {
        None => {
            tokio::select! {
                () = controllers => Ok(()),
                () = shutdown => Ok(()),
            }
        }
        Some(election) => {
            let leases: Api<Lease> = Api::namespaced(client.clone(), &election.namespace);
            let elector = Elector {
                leases,
                election: election.clone(),
                metrics: metrics.clone(),
            };
            elector.lead(controllers, shutdown).await
        }
    };
    probes.ready.store(false, Ordering::SeqCst);
    let _ = stop_tx.send(true);
    for server in servers {
        let _ = server.await;
    }
    tracing::info!("manager stopped");
    outcome
}

/// Runs the controllers of `groups` until one of them stops; they share one Cluster watch.
async fn run_groups(client: Client, groups: Vec<Group>, options: Options) {
    let clusters = crate::cache::SharedClusters::default();
    let mut running = Vec::new();
    for group in groups {
        let client = client.clone();
        let options = options.clone();
        running.push(match group {
            Group::ControlPlane => {
                let kubeadm = crate::kubeadm::run(
                    client.clone(),
                    options.clone(),
                    clusters.subscribe(crate::kubeadm::cluster_relevant),
                );
                let controlplane = crate::controlplane::run(
                    client,
                    options,
                    clusters.subscribe(crate::owner::cluster_relevant),
                );
                async move {
                    futures::future::select(controlplane.boxed(), kubeadm.boxed()).await;
                }
                .boxed()
            }
            Group::Infrastructure => crate::infrastructure::run(
                client,
                options,
                clusters.subscribe(crate::owner::cluster_relevant),
            )
            .boxed(),
        });
    }
    // Every controller subscribed above; the watch starts after.
    running.push(clusters.run(options.api(&client)).boxed());
    futures::future::select_all(running).await;
}

/// Lease-based leader election (coordination.k8s.io/v1), client-go's algorithm: acquire when
/// the Lease is free or expired, renew every retry period, give up after the renew deadline.
struct Elector {
    leases: Api<Lease>,
    election: LeaderElection,
    metrics: Arc<Metrics>,
}

enum Attempt {
    Leading,
    HeldByOther,
}

impl Elector {
    fn now() -> MicroTime {
        MicroTime(k8s_openapi::jiff::Timestamp::now())
    }

    /// One acquire-or-renew round: a create, or an update guarded by resourceVersion.
    async fn try_acquire_or_renew(&self) -> Result<Attempt, kube::Error> {
        let e = &self.election;
        let seconds = i32::try_from(e.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let Some(mut lease) = self.leases.get_opt(&e.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(e.name.clone()),
                    namespace: Some(e.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(e.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(Self::now()),
                    renew_time: Some(Self::now()),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            self.leases.create(&PostParams::default(), &lease).await?;
            return Ok(Attempt::Leading);
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let mine = holder == e.identity;
        if !mine && !holder.is_empty() {
            let duration = spec.lease_duration_seconds.map_or(e.lease_duration, |s| {
                Duration::from_secs(u64::try_from(s).unwrap_or(0))
            });
            let renewed = spec.renew_time.as_ref().map(|t| t.0);
            let expired = renewed.is_none_or(|t| {
                let age = k8s_openapi::jiff::Timestamp::now().duration_since(t);
                age.as_secs_f64() > duration.as_secs_f64()
            });
            if !expired {
                return Ok(Attempt::HeldByOther);
            }
        }
        let mut next = spec.clone();
        next.holder_identity = Some(e.identity.clone());
        next.lease_duration_seconds = Some(seconds);
        next.renew_time = Some(Self::now());
        if !mine {
            next.acquire_time = Some(Self::now());
            next.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        lease.spec = Some(next);
        self.leases
            .replace(&e.name, &PostParams::default(), &lease)
            .await?;
        Ok(Attempt::Leading)
    }

    /// Gives the Lease up on shutdown so a standby takes over at once.
    async fn release(&self) {
        let e = &self.election;
        let Ok(Some(mut lease)) = self.leases.get_opt(&e.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(e.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(Self::now());
        if let Err(error) = self
            .leases
            .replace(&e.name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(%error, lease = %e.name, "releasing the lease failed");
        }
    }

    /// Waits for leadership, then runs `controllers` while renewing; returns on shutdown
    /// (after releasing) or with `LeaseLost`.
    async fn lead(
        &self,
        controllers: impl Future<Output = ()>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ManagerError> {
        let e = &self.election;
        futures::pin_mut!(shutdown);
        loop {
            let attempt = tokio::select! {
                () = &mut shutdown => return Ok(()),
                attempt = self.try_acquire_or_renew() => attempt,
            };
            match attempt {
                Ok(Attempt::Leading) => break,
                Ok(Attempt::HeldByOther) => {}
                Err(error) => tracing::debug!(%error, lease = %e.name, "acquiring the lease"),
            }
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(e.retry_period) => {}
            }
        }
        tracing::info!(lease = %e.name, identity = %e.identity, "became leader");
        self.metrics.set_leader(&e.name, true);
        futures::pin_mut!(controllers);
        let mut last_renewal = tokio::time::Instant::now();
        let outcome = loop {
            tokio::select! {
                () = &mut shutdown => break Ok(()),
                () = &mut controllers => break Ok(()),
                () = tokio::time::sleep(e.retry_period) => {
                    match self.try_acquire_or_renew().await {
                        Ok(Attempt::Leading) => last_renewal = tokio::time::Instant::now(),
                        Ok(Attempt::HeldByOther) => break Err(ManagerError::LeaseLost(e.name.clone())),
                        Err(error) => {
                            tracing::warn!(%error, lease = %e.name, "renewing the lease failed");
                            if last_renewal.elapsed() > e.renew_deadline {
                                break Err(ManagerError::LeaseLost(e.name.clone()));
                            }
                        }
                    }
                }
            }
        };
        self.metrics.set_leader(&e.name, false);
        if outcome.is_ok() {
            self.release().await;
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [MGR-02]
    #[test]
    fn mgr02_lease_ids() {
        use Group::*;
        assert_eq!(lease_name(&[]), "4d5f86eb.cluster.x-k8s.io");
        assert_eq!(
            lease_name(&[ControlPlane, Infrastructure]),
            "4d5f86eb.cluster.x-k8s.io"
        );
        assert_eq!(
            lease_name(&[ControlPlane, ControlPlane]),
            "control-plane.4d5f86eb.cluster.x-k8s.io"
        );
        assert_eq!(
            lease_name(&[Infrastructure]),
            "infrastructure.4d5f86eb.cluster.x-k8s.io"
        );
    }

    /// [MGR-01]: no `--enable-controller` runs every group; repeats count once.
    #[test]
    fn mgr01_enabled_groups() {
        use Group::*;
        assert_eq!(Group::enabled(&[]), [ControlPlane, Infrastructure]);
        assert_eq!(
            Group::enabled(&[Infrastructure, Infrastructure]),
            [Infrastructure]
        );
        assert_eq!(
            Group::enabled(&[Infrastructure, ControlPlane]),
            [ControlPlane, Infrastructure]
        );
    }

    /// [MGR-01]: the group values and their error.
    #[test]
    fn mgr01_groups() {
        assert_eq!(Group::parse("control-plane"), Ok(Group::ControlPlane));
        assert_eq!(Group::parse("infrastructure"), Ok(Group::Infrastructure));
        assert_eq!(
            Group::parse("bootstrap"),
            Err(
                "unknown controller group \"bootstrap\" (supported: infrastructure, control-plane)"
                    .into()
            )
        );
    }
}
