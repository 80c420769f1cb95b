//! An embedded, in-memory, Kubernetes-compatible API server for tests and the local sandbox.
//!
//! In-process: `Server::builder().build()` then `server.client()` (a `kube::Client` over the
//! router, no socket). Over loopback: `server.serve("127.0.0.1:0")` and `server.kubeconfig()`.

pub mod access;
pub mod clock;
pub mod controllers;
pub mod crd;
pub mod discovery;
pub mod duplicates;
pub mod engine;
pub mod events;
pub mod faults;
pub mod http;
pub mod meta;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod registry;
pub mod schema;
pub mod selector;
pub mod ssa;
pub mod status;
pub mod store;
pub mod table;
pub mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::controllers::ControllerDelays;
use crate::engine::Engine;
use crate::http::{Frontend, Settings};

/// Largest request body accepted (a little above the 3 MiB etcd limit Kubernetes enforces).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Builds a [`Server`].
#[derive(Clone, Debug, Default)]
pub struct ServerBuilder {
    history: Option<usize>,
    delays: ControllerDelays,
    settings: Settings,
    clock: Option<Clock>,
    record_access: bool,
}

impl ServerBuilder {
    /// Record who did what ([`access::AccessLog`]); off by default, as it costs every request
    /// a classification and a lock.
    pub fn record_access(mut self, enabled: bool) -> Self {
        self.record_access = enabled;
        self
    }

    /// How many events the watch history keeps.
    pub fn history(mut self, events: usize) -> Self {
        self.history = Some(events);
        self
    }

    /// Delay of the CRD naming step.
    pub fn crd_names_delay(mut self, delay: Duration) -> Self {
        self.delays.crd_names = delay;
        self
    }

    /// Delay of the CRD `Established` step.
    pub fn crd_establish_delay(mut self, delay: Duration) -> Self {
        self.delays.crd_establish = delay;
        self
    }

    /// Delay of each garbage-collection pass.
    pub fn gc_latency(mut self, delay: Duration) -> Self {
        self.delays.gc = delay;
        self
    }

    /// `sendInitialEvents` support (default on).
    pub fn watch_list(mut self, enabled: bool) -> Self {
        self.settings.watch_list = enabled;
        self
    }

    /// Interval of watch bookmarks (default 60 s).
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.settings.bookmark_interval = interval;
        self
    }

    /// The clock (default: wall time, advancing with tokio time).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Builds the server and starts its built-in controllers. Must run inside a tokio runtime.
    pub fn build(self) -> Server {
        let engine = Arc::new(Engine::new(
            self.clock.unwrap_or_default(),
            self.history.unwrap_or(store::DEFAULT_HISTORY),
        ));
        let controllers = tokio::spawn(controllers::run(engine.clone(), self.delays));
        let frontend = Arc::new(Frontend {
            engine,
            settings: self.settings,
            faults: faults::Faults::default(),
            access: self.record_access.then(access::AccessLog::default),
        });
        Server {
            frontend,
            controllers,
        }
    }
}

/// A running embedded API server.
#[derive(Debug)]
pub struct Server {
    frontend: Arc<Frontend>,
    controllers: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.controllers.abort();
    }
}

async fn dispatch(State(frontend): State<Arc<Frontend>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return http::error_response(&status::ApiError::new(
                413,
                "RequestEntityTooLarge",
                "the request body is too large",
            ));
        }
    };
    frontend
        .handle(parts.method, parts.uri, parts.headers, bytes)
        .await
}

/// A handle on a loopback listener; dropping it does not stop serving, `shutdown` does.
#[derive(Debug)]
pub struct ServeHandle {
    task: JoinHandle<()>,
}

impl ServeHandle {
    pub fn shutdown(self) {
        self.task.abort();
    }
}

impl Server {
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The API as an axum router.
    pub fn router(&self) -> Router {
        Router::new()
            .fallback(dispatch)
            .with_state(self.frontend.clone())
    }

    /// A kube client talking to the router in-process. It adds no retry layer.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.router(), "default")
    }

    /// The engine, for tests that inspect or drive storage directly.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.frontend.engine
    }

    /// Who did what so far, when built with [`ServerBuilder::record_access`].
    pub fn access_log(&self) -> Option<&access::AccessLog> {
        self.frontend.access.as_ref()
    }

    /// The fault-injection knobs.
    pub fn faults(&self) -> &faults::Faults {
        &self.frontend.faults
    }

    /// Discards watch history up to `resource_version` (so 410 paths can be exercised).
    pub fn compact(&self, resource_version: u64) {
        self.frontend.engine.compact(resource_version);
    }

    /// Serves HTTP/1.1 on a loopback address (`127.0.0.1:0` picks a free port).
    pub async fn serve(&self, address: &str) -> std::io::Result<(SocketAddr, ServeHandle)> {
        let listener = tokio::net::TcpListener::bind(address).await?;
        let local = listener.local_addr()?;
        let router = self.router();
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "API server listener stopped");
            }
        });
        Ok((local, ServeHandle { task }))
    }

    /// A kubeconfig for a server listening at `address`.
    pub fn kubeconfig(address: SocketAddr) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kany8s-embedded\n  cluster:\n    server: http://{address}\ncontexts:\n- name: kany8s-embedded\n  context:\n    cluster: kany8s-embedded\n    user: kany8s-embedded\n    namespace: default\ncurrent-context: kany8s-embedded\nusers:\n- name: kany8s-embedded\n  user: {{}}\n"
        )
    }
}
