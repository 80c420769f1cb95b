//! The slice of Cluster API's `Cluster` (`cluster.x-k8s.io/v1beta2`) the plugins read. The
//! plugins never write Clusters, so unknown fields are simply not modelled.

use kube::CustomResource;
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
}

/// The control-plane reference kind [PLG-02] takes the EKS name from.
pub const KANY8S_CONTROL_PLANE_GROUP: &str = "controlplane.cluster.x-k8s.io";
pub const KANY8S_CONTROL_PLANE_KIND: &str = "Kany8sControlPlane";

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
