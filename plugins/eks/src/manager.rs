//! A plugin process ([ROT-01], [KB-01]): health probes (`/healthz`, `/readyz`), metrics
//! (`/metrics`), optional leader election, and the plugin's controller until shutdown
//! ([`serve`]); [`run`] is the rotator's.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use kube::Client;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::lease::{Election, Elector, LeaseLost};
use crate::metrics::Metrics;
use crate::rotator::run::{Options, run as run_rotator};
use crate::token::TokenSource;

/// Why the process stopped other than by a requested shutdown.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("binding {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error(transparent)]
    LeaseLost(#[from] LeaseLost),
}

/// Everything [`run`] needs.
#[derive(Debug)]
pub struct Config {
    pub options: Options,
    pub tokens: TokenSource,
    pub election: Option<Election>,
    pub health_address: Option<SocketAddr>,
    pub metrics_address: Option<SocketAddr>,
}

/// The addresses bound (port 0 resolved).
#[derive(Clone, Copy, Debug, Default)]
pub struct Bound {
    pub health: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
}

#[derive(Debug)]
struct Shared {
    ready: AtomicBool,
    metrics: Arc<Metrics>,
}

async fn healthz() -> StatusCode {
    StatusCode::OK
}

async fn readyz(State(shared): State<Arc<Shared>>) -> StatusCode {
    if shared.ready.load(Ordering::SeqCst) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        shared.metrics.encode(),
    )
}

async fn listen(
    address: SocketAddr,
    router: Router,
    mut stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ManagerError> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| ManagerError::Bind(address, e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| ManagerError::Bind(address, e))?;
    let task = tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(error) = axum::serve(listener, router)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::warn!(%error, "HTTP server stopped");
        }
    });
    Ok((bound, task))
}

/// What [`serve`] runs around a controller.
#[derive(Debug)]
pub struct Process {
    /// The controller name in the log lines.
    pub name: &'static str,
    pub metrics: Arc<Metrics>,
    pub election: Option<Election>,
    pub health_address: Option<SocketAddr>,
    pub metrics_address: Option<SocketAddr>,
}

/// Serves the probes and metrics and runs the rotator (while leading, when elected) until
/// `shutdown` resolves or the Lease is lost. `started` receives the bound addresses.
pub async fn run(
    client: Client,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
    started: Option<tokio::sync::oneshot::Sender<Bound>>,
) -> Result<(), ManagerError> {
    let process = Process {
        name: crate::ROTATOR,
        metrics: config.options.metrics.clone(),
        election: config.election,
        health_address: config.health_address,
        metrics_address: config.metrics_address,
    };
    let rotator = run_rotator(client.clone(), config.options, config.tokens);
    serve(client, process, rotator, shutdown, started).await
}

/// Serves the probes and metrics and runs `controller` (while leading, when elected) until
/// `shutdown` resolves or the Lease is lost. `started` receives the bound addresses.
pub async fn serve(
    client: Client,
    process: Process,
    controller: impl Future<Output = ()> + Send,
    shutdown: impl Future<Output = ()> + Send,
    started: Option<tokio::sync::oneshot::Sender<Bound>>,
) -> Result<(), ManagerError> {
    let metrics = process.metrics.clone();
    let shared = Arc::new(Shared {
        ready: AtomicBool::new(false),
        metrics: metrics.clone(),
    });
    let (stop, stopped) = watch::channel(false);
    let mut bound = Bound::default();
    let mut servers = Vec::new();
    if let Some(address) = process.health_address {
        let router = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(shared.clone());
        let (address, task) = listen(address, router, stopped.clone()).await?;
        bound.health = Some(address);
        servers.push(task);
    }
    if let Some(address) = process.metrics_address {
        let router = Router::new()
            .route("/metrics", get(self::metrics))
            .with_state(shared.clone());
        let (address, task) = listen(address, router, stopped.clone()).await?;
        bound.metrics = Some(address);
        servers.push(task);
    }
    // Ready once the client exists and the servers listen; standbys are ready too.
    shared.ready.store(true, Ordering::SeqCst);
    if let Some(started) = started {
        let _ = started.send(bound);
    }
    let name = process.name;
    tracing::info!(health = ?bound.health, metrics = ?bound.metrics, "{name} started");
    let outcome = match process.election {
        None => {
            tokio::select! {
                () = controller => {}
                () = shutdown => {}
            }
            Ok(())
        }
        Some(election) => Elector::new(client, election)
            .lead(controller, shutdown, &metrics)
            .await
            .map_err(ManagerError::from),
    };
    shared.ready.store(false, Ordering::SeqCst);
    let _ = stop.send(true);
    for server in servers {
        let _ = server.await;
    }
    tracing::info!("{name} stopped");
    outcome
}
