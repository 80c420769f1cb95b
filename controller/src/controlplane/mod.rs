//! The Kany8sControlPlane controller (provider.md §4): observe the control plane, its owner
//! Cluster, RGD, backend object and Secrets; decide the status purely; apply with SSA.

pub mod decide;
pub mod reconcile;

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use crate::api::Kany8sControlPlane;
use crate::capi::Cluster;
use crate::dynamic::DynamicWatches;
use reconcile::{Context, Error, rgd_resource};

/// Where and what the controller watches.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Restrict every watch to this namespace.
    pub namespace: Option<String>,
    /// Only objects with this `cluster.x-k8s.io/watch-filter` label value.
    pub watch_filter: Option<String>,
    /// The `reportingInstance` of events (the pod name).
    pub instance: Option<String>,
}

/// [CP-50]: only changes of generation, labels, annotations, owners, finalizers or deletion
/// trigger; status-only updates (the controller's own included) do not.
fn relevant(cp: &Kany8sControlPlane) -> Option<u64> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    cp.metadata.generation.hash(&mut hasher);
    cp.labels().hash(&mut hasher);
    cp.annotations().hash(&mut hasher);
    cp.finalizers().hash(&mut hasher);
    cp.metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .hash(&mut hasher);
    for owner in cp.owner_references() {
        owner.uid.hash(&mut hasher);
    }
    Some(hasher.finish())
}

/// [CP-54]: per-object error backoff is kube-rs's; failed reconciles retry after 5 s here and
/// are spread by the controller's queue.
fn error_policy(_: Arc<Kany8sControlPlane>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(%error, "reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// Runs the controller until the future is dropped.
pub async fn run(client: Client, options: Options) {
    let api: Api<Kany8sControlPlane> = match &options.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut config = watcher::Config::default();
    if let Some(filter) = &options.watch_filter {
        config = config.labels(&format!("{}={filter}", crate::capi::WATCH_FILTER_LABEL));
    }
    let (reader, writer) = reflector::store();
    let primary = reflector::reflector(writer, watcher::watcher(api, config))
        .default_backoff()
        .touched_objects()
        .predicate_filter(relevant, PredicateConfig::default());
    let (watches, triggers) = DynamicWatches::new(client.clone(), options.namespace.clone());
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "kany8s".into(),
            instance: options.instance.clone(),
        },
    );
    let context = Arc::new(Context::new(client.clone(), recorder, watches));
    let secrets = context.secrets.clone();

    let rgds: Api<DynamicObject> = Api::all_with(client.clone(), &rgd_resource());
    let by_rgd = reader.clone();
    let clusters: Api<Cluster> = match &options.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let by_cluster = reader.clone();
    let secret_api: Api<PartialObjectMeta<Secret>> = match &options.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let secret_events = watcher::watcher(secret_api, watcher::Config::default())
        .default_backoff()
        .touched_objects();
    Controller::for_stream(primary, reader)
        .watches_with(
            rgds,
            rgd_resource(),
            watcher::Config::default(),
            move |rgd| {
                let name = rgd.name_any();
                by_rgd
                    .state()
                    .into_iter()
                    .filter(|cp| {
                        cp.spec
                            .backend
                            .resource_graph_definition_ref
                            .as_ref()
                            .is_some_and(|r| r.name.trim() == name)
                    })
                    .map(|cp| ObjectRef::from(cp.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .watches(clusters, watcher::Config::default(), move |cluster| {
            let namespace = cluster.namespace().unwrap_or_default();
            let uid = cluster.uid().unwrap_or_default();
            let named = cluster
                .spec
                .control_plane_ref
                .as_ref()
                .filter(|r| {
                    r.api_group == crate::api::CONTROL_PLANE_GROUP && r.kind == "Kany8sControlPlane"
                })
                .map(|r| r.name.clone());
            by_cluster
                .state()
                .into_iter()
                .filter(|cp| {
                    cp.namespace().as_deref() == Some(namespace.as_str())
                        && (named.as_deref() == Some(cp.name_any().as_str())
                            || cp.owner_references().iter().any(|o| o.uid == uid))
                })
                .map(|cp| ObjectRef::from(cp.as_ref()))
                .collect::<Vec<_>>()
        })
        .watches_stream(secret_events, move |secret| {
            let namespace = secret.namespace().unwrap_or_default();
            let dependents =
                reconcile::lock_index(&secrets).dependents(&namespace, &secret.name_any());
            dependents
                .into_iter()
                .map(|name| reconcile::by_name(&namespace, &name))
                .collect::<Vec<_>>()
        })
        .reconcile_on(triggers)
        .shutdown_on_signal()
        .run(reconcile::reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        })
        .await;
}
