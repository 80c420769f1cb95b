//! The instance lifecycle simulator (kro.md §5 instances, §8 RGD controller): acts as kro's
//! controllers against any Kubernetes API. RGDs get their CRD and kro's status; instances get
//! kro's finalizer, labels, `state`, conditions and author status fields; children are applied
//! to the API or kept in memory (`children`), with simulated status and per-instance scripts.
//! The decisions are the graph engine's (`crate::graph`); this module does the I/O.
//!
//! - `rgd`: the RGD controller and kro's RGD CRD.
//! - `instance`: the instance controller: observe, management, the engine's pass, apply, prune.
//! - `deletion`: instance deletion, one child per pass, then the finalizer.
//! - `children`: children in Virtual or Applied mode, kro's child labels, child simulators.
//! - `script`: the `fake-kro/script` annotation, typed, as perturbations of a pass.
//! - `status`: the instance status write.

mod children;
mod deletion;
mod instance;
mod rgd;
mod script;
mod status;

pub use children::{ChildMode, applyset_id, simulate_status};
pub use rgd::rgd_crd;
pub use script::{
    Deletion, Failure, FailureKind, KubeconfigSecret, Overlay, SCRIPT_ANNOTATION, Script,
    ScriptError, duration,
};

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use rgd::{RgdContext, reconcile_rgd, rgd_resource, wait_established};

/// The finalizer kro puts on instances and RGDs.
pub const FINALIZER: &str = "kro.run/finalizer";

/// The field manager of kro's own writes (RGD finalizer and status, generated CRD, instance
/// status and finalizer removal): kro names none, and kube-apiserver takes `kro` from its user
/// agent.
pub(crate) const KRO_MANAGER: &str = "kro";

/// Patch parameters of a write kro makes in its own name ([`KRO_MANAGER`]).
pub(crate) fn kro_patch() -> PatchParams {
    PatchParams {
        field_manager: Some(KRO_MANAGER.into()),
        ..PatchParams::default()
    }
}

/// Create/replace parameters of a write kro makes in its own name ([`KRO_MANAGER`]).
pub(crate) fn kro_post() -> PostParams {
    PostParams {
        field_manager: Some(KRO_MANAGER.into()),
        ..PostParams::default()
    }
}

/// Errors of one reconcile (retried).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Invalid(String),
}

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub kro_version_label: String,
    /// kro's `--instance-requeue-interval`.
    pub requeue: Duration,
    pub mode: ChildMode,
    /// Applied mode: play the controllers of child kinds (Deployment, Service, Job, ...) and
    /// write their status. Off against real clusters, whose controllers own child status.
    pub child_simulators: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            kro_version_label: "v0.9.3".into(),
            requeue: Duration::from_secs(3),
            mode: ChildMode::Virtual,
            child_simulators: true,
        }
    }
}

/// Per-instance memory of the simulator: virtual children and the first-pass time.
#[derive(Debug, Default)]
pub(crate) struct InstanceMemory {
    children: BTreeMap<String, Value>,
    first_pass: Option<Instant>,
    deletion_started: Option<Instant>,
}

#[derive(Debug, Default)]
pub(crate) struct Shared {
    controllers: HashMap<String, JoinHandle<()>>,
    instances: HashMap<String, InstanceMemory>,
    kinds: children::KindCache,
}

pub(crate) fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub(crate) fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `object`'s finalizers without kro's (what releasing an RGD or an instance leaves).
fn finalizers_without_kro(object: &DynamicObject) -> Vec<String> {
    object
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect()
}

/// Installs kro's RGD CRD (if needed) and runs the RGD controller until the future is dropped.
pub async fn run(client: Client, options: SimOptions) -> Result<(), SimError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition =
        serde_json::from_value(rgd_crd()).map_err(|e| SimError::Invalid(e.to_string()))?;
    crds.patch(
        "resourcegraphdefinitions.kro.run",
        &PatchParams::apply("fake-kro").force(),
        &Patch::Apply(&crd),
    )
    .await?;
    wait_established(&crds, "resourcegraphdefinitions.kro.run").await?;
    let shared = Arc::new(Mutex::new(Shared::default()));
    // Dropping this future (or returning) stops every per-kind instance controller too.
    let _stop = StopInstances(shared.clone());
    let rgds: Api<DynamicObject> = Api::all_with(client.clone(), &rgd_resource());
    let controller = Controller::new_with(rgds, watcher::Config::default(), rgd_resource());
    let context = Arc::new(RgdContext {
        client,
        options,
        shared: shared.clone(),
        rgds: controller.store(),
    });
    controller
        .run(
            reconcile_rgd,
            |_, _, _| Action::requeue(Duration::from_secs(1)),
            context,
        )
        .for_each(|_| async {})
        .await;
    Ok(())
}

/// Aborts the instance controllers when the simulator stops.
struct StopInstances(Arc<Mutex<Shared>>);

impl Drop for StopInstances {
    fn drop(&mut self) {
        for (_, handle) in lock(&self.0).controllers.drain() {
            handle.abort();
        }
    }
}
