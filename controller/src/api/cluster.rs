//! `Kany8sCluster` and `Kany8sClusterTemplate`: the infrastructure provider kinds ([CRD-16]–[CRD-18]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::shared::{BackendReference, ResourceGraphDefinitionReference, free_form_object};
use crate::capi::{ApiEndpoint, ObjectMeta, conditions_schema};

/// The infrastructure of a Cluster: a kro instance (kro mode) or nothing at all (stub mode,
/// when no ResourceGraphDefinition is referenced).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1alpha1",
    kind = "Kany8sCluster",
    plural = "kany8sclusters",
    namespaced,
    status = "Kany8sClusterStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct Kany8sClusterSpec {
    #[serde(flatten)]
    pub backend: ClusterBackend,
    /// The endpoint the infrastructure instance published, if any. Written only by the
    /// controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_endpoint: Option<ApiEndpoint>,
}

/// The backend selection of a `Kany8sCluster`, shared with its template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterBackend {
    /// The ResourceGraphDefinition whose instance realises the infrastructure; absent selects
    /// stub mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_graph_definition_ref: Option<ResourceGraphDefinitionReference>,
    /// The spec of the kro instance, before the cluster identity is injected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub kro_spec: Option<serde_json::Value>,
}

/// Observed state of a `Kany8sCluster`, including the Cluster API v1beta2 contract fields.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Kany8sClusterStatus {
    /// Cluster API initialization flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialization: Option<ClusterInitialization>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The metadata.generation seen by the last status write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub observed_generation: Option<i64>,
    /// The backend object currently managed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_ref: Option<BackendReference>,
    /// Deprecated: the reason of a terminal failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Deprecated: the message of a terminal failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
}

/// Cluster API infrastructure initialization flags. Once true, never reset.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1))]
pub struct ClusterInitialization {
    /// True once the infrastructure is provisioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned: Option<bool>,
}

/// A template from which Cluster API topology clones `Kany8sCluster` objects.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1alpha1",
    kind = "Kany8sClusterTemplate",
    plural = "kany8sclustertemplates",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct Kany8sClusterTemplateSpec {
    pub template: Kany8sClusterTemplateResource,
}

/// What a cloned `Kany8sCluster` gets: metadata and a spec without `controlPlaneEndpoint`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Kany8sClusterTemplateResource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    pub spec: ClusterBackend,
}

impl crate::capi::ConditionedStatus for Kany8sClusterStatus {
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
}
