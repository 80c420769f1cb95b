//! The Kany8sKubeadmControlPlane controller (provider.md §7): a self-managed control plane of
//! one kubeadm Machine built from certificate Secrets, an admin kubeconfig, a KubeadmConfig and
//! an infrastructure machine, driven by watches ([KK-16]) instead of polling.

pub mod build;
pub mod certs;
pub mod decide;
pub mod reconcile;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};

use crate::api::Kany8sKubeadmControlPlane;
use crate::cache::ClusterFeed;
use crate::capi::{CLUSTER_NAME_LABEL, Cluster};
use crate::dynamic::{DynamicWatches, Probe};
use crate::manager::Options;
use crate::metrics;
use crate::reconciler::queue::Lane;
use crate::reconciler::runtime::{Triggers, by_cluster, run_controller};
use decide::CONTROL_PLANE_LABEL;
use reconcile::{Context, machine_resource};

/// The facades in `namespace` owned by the Cluster named `cluster`.
fn owned_by_cluster(
    store: &Store<Kany8sKubeadmControlPlane>,
    namespace: &str,
    cluster: &str,
) -> Vec<ObjectRef<Kany8sKubeadmControlPlane>> {
    store
        .state()
        .into_iter()
        .filter(|k| {
            k.namespace().as_deref() == Some(namespace)
                && k.owner_references()
                    .iter()
                    .any(|o| o.kind == "Cluster" && o.name == cluster)
        })
        .map(|k| ObjectRef::from(k.as_ref()))
        .collect()
}

/// The Cluster an object belongs to: its cluster-name label, else its Cluster owner.
fn cluster_of(meta: &kube::api::ObjectMeta) -> Option<String> {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(CLUSTER_NAME_LABEL).cloned())
        .or_else(|| {
            meta.owner_references
                .iter()
                .flatten()
                .find(|o| o.kind == "Cluster")
                .map(|o| o.name.clone())
        })
}

/// [KK-16]: the Cluster changes the facade reacts to: those of the other controllers plus the
/// `RemoteConnectionProbe` condition.
pub fn cluster_relevant(cluster: &Cluster) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    crate::owner::cluster_relevant(cluster).hash(&mut hasher);
    cluster
        .status
        .as_ref()
        .and_then(|s| crate::capi::find_condition(&s.conditions, "RemoteConnectionProbe"))
        .map(|c| c.status.clone())
        .hash(&mut hasher);
    Some(hasher.finish())
}

/// [KK-16]: the facade a Cluster's `spec.controlPlaneRef` names.
fn named_by(cluster: &Cluster) -> Option<String> {
    cluster
        .spec
        .control_plane_ref
        .as_ref()
        .filter(|r| {
            r.api_group == crate::api::CONTROL_PLANE_GROUP
                && r.kind == Kany8sKubeadmControlPlane::kind(&())
        })
        .map(|r| r.name.clone())
}

/// Runs the controller until the future is dropped.
pub async fn run(client: Client, options: Options, clusters: ClusterFeed) {
    let (reader, primary) = options.primary::<Kany8sKubeadmControlPlane>(&client);
    let by_infrastructure = reader.clone();
    let (watches, triggers) = DynamicWatches::new(
        client.clone(),
        options.namespace.clone(),
        Probe {
            metrics: options.metrics.clone(),
            controller: metrics::KUBEADM,
        },
        Arc::new(move |meta| {
            let (Some(namespace), Some(cluster)) = (meta.namespace.clone(), cluster_of(meta))
            else {
                return Vec::new();
            };
            owned_by_cluster(&by_infrastructure, &namespace, &cluster)
                .into_iter()
                .map(|o| (namespace.clone(), o.name))
                .collect()
        }),
        options.sync_period,
    );
    let context = Arc::new(Context::new(
        client.clone(),
        clusters.store,
        options.recorder(&client),
        watches,
        options.metrics.clone(),
        options.sync_period,
    ));

    let cluster_events = clusters.events;
    let machines = options.dynamic_api(&client, &machine_resource());
    let machine_events = watcher::watcher(
        machines,
        watcher::Config::default().labels(CONTROL_PLANE_LABEL),
    )
    .default_backoff()
    .touched_objects();
    let by_machine = reader.clone();
    let secrets: Api<PartialObjectMeta<Secret>> = options.api(&client);
    let secret_events = watcher::watcher(
        secrets,
        watcher::Config::default().labels(CLUSTER_NAME_LABEL),
    )
    .default_backoff()
    .touched_objects();
    let by_secret = reader.clone();
    let triggers = Triggers::default()
        .primary(primary)
        .watch(
            cluster_events,
            Lane::Normal,
            by_cluster(reader.clone(), named_by),
        )
        // Machines and Secrets of the cluster: progress of the facade's own work.
        .watch(machine_events, Lane::Fast, move |machine| {
            let namespace = machine.namespace().unwrap_or_default();
            machine
                .labels()
                .get(CLUSTER_NAME_LABEL)
                .map(|cluster| owned_by_cluster(&by_machine, &namespace, cluster))
                .unwrap_or_default()
        })
        .watch(secret_events, Lane::Fast, move |secret| {
            let namespace = secret.namespace().unwrap_or_default();
            secret
                .labels()
                .get(CLUSTER_NAME_LABEL)
                .map(|cluster| owned_by_cluster(&by_secret, &namespace, cluster))
                .unwrap_or_default()
        })
        // [CP-55]: a backend object's status is progress.
        .refs(triggers, Lane::Fast);
    run_controller(
        reader,
        triggers,
        &options,
        metrics::KUBEADM,
        context,
        reconcile::reconcile,
    )
    .await;
}
