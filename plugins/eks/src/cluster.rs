//! The slice of Cluster API's `Cluster` (`cluster.x-k8s.io/v1beta2`) the plugins read. The
//! plugins never write a Cluster through this type (the bootstrapper's writes are patches of
//! the fields it owns), so unknown fields are simply not modelled.

use futures::Stream;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, CustomResource, Resource};
use serde::{Deserialize, Serialize};

/// `spec.controlPlaneRef` (a v1beta2 `ContractVersionedObjectReference`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlaneRef {
    #[serde(default)]
    pub api_group: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
}

/// One `spec.topology.variables` entry: a name and any JSON value.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct TopologyVariable {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: serde_json::Value,
}

/// `spec.topology`, as far as the bootstrapper reads it ([KB-02]).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct Topology {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<TopologyVariable>,
}

/// The Cluster spec fields the plugins read.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[kube(
    group = "cluster.x-k8s.io",
    version = "v1beta2",
    kind = "Cluster",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_ref: Option<ControlPlaneRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<Topology>,
}

/// The control-plane reference kind [PLG-02] takes the EKS name from.
pub const KANY8S_CONTROL_PLANE_GROUP: &str = "controlplane.cluster.x-k8s.io";
pub const KANY8S_CONTROL_PLANE_KIND: &str = "Kany8sControlPlane";

/// [ROT-02], [KB-01]: a hash of the Cluster changes that matter to the plugins — generation
/// (spec: `controlPlaneRef`, topology), annotations (opt-in, overrides, takeover), labels,
/// finalizers, deletion. Status updates, which Cluster API writes often, do not change it.
pub fn relevant(cluster: &Cluster) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    cluster.metadata.generation.hash(&mut hasher);
    cluster.metadata.annotations.hash(&mut hasher);
    cluster.metadata.labels.hash(&mut hasher);
    cluster.metadata.finalizers.hash(&mut hasher);
    cluster
        .metadata
        .deletion_timestamp
        .is_some()
        .hash(&mut hasher);
    cluster.metadata.uid.hash(&mut hasher);
    Some(hasher.finish())
}

/// The Clusters a plugin watches (in `namespace`, or all): a cache without managedFields and
/// the stream of the [`relevant`] changes, which feeds the plugin's controller.
pub fn watch(
    client: &Client,
    namespace: Option<&str>,
) -> (
    Store<Cluster>,
    impl Stream<Item = Result<Cluster, watcher::Error>> + Send + use<>,
) {
    let clusters: Api<Cluster> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (store, writer) = reflector::store();
    let events = reflector::reflector(
        writer,
        watcher(clusters, watcher::Config::default())
            .modify(|c| c.meta_mut().managed_fields = None),
    )
    .default_backoff()
    .touched_objects()
    .predicate_filter(relevant, Default::default());
    (store, events)
}

/// A Cluster for unit tests: `namespace/name` with `annotations`.
#[cfg(test)]
pub(crate) fn sample(namespace: &str, name: &str, annotations: &[(&str, &str)]) -> Cluster {
    let mut cluster = Cluster::new(name, ClusterSpec::default());
    cluster.metadata.namespace = Some(namespace.into());
    cluster.metadata.annotations = Some(
        annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    cluster
}
