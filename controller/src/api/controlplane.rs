//! `Kany8sControlPlane` and `Kany8sControlPlaneTemplate` ([CRD-12], [CRD-13]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::shared::{
    BackendReference, ControlPlaneVersion, ResourceGraphDefinitionReference, free_form_object,
    versions_schema,
};
use crate::capi::{ApiEndpoint, ContractVersionedObjectReference, ObjectMeta, conditions_schema};

/// A managed control plane realised by exactly one backend: a kro instance, an object of an
/// operator-chosen kind, or a self-managed kubeadm control plane.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "controlplane.cluster.x-k8s.io",
    version = "v1alpha1",
    kind = "Kany8sControlPlane",
    plural = "kany8scontrolplanes",
    namespaced,
    status = "Kany8sControlPlaneStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct Kany8sControlPlaneSpec {
    /// The Kubernetes version, injected into the backend. Set by Cluster API topology when the
    /// Cluster uses a ClusterClass.
    #[schemars(length(min = 1, max = 256))]
    pub version: String,
    #[serde(flatten)]
    pub backend: ControlPlaneBackend,
    /// The endpoint of the control plane's API server. Written only by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_endpoint: Option<ApiEndpoint>,
}

/// The backend selection of a control plane: exactly one of the three fields.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlaneBackend {
    /// Selects the kro backend: the ResourceGraphDefinition whose instance realises the control
    /// plane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_graph_definition_ref: Option<ResourceGraphDefinitionReference>,
    /// The spec of the kro instance, before `version` is injected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub kro_spec: Option<serde_json::Value>,
    /// Selects the kubeadm backend: a self-managed control plane on one Machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeadm: Option<KubeadmBackend>,
    /// Selects the external backend: an object of an operator-chosen kind that publishes the
    /// Kany8s normalised status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "!(self.kind == 'Kany8sControlPlane' && self.apiVersion.startsWith('controlplane.cluster.x-k8s.io/'))",
        "message": "externalBackend must not reference a Kany8sControlPlane"
    }]))]
    pub external_backend: Option<ExternalBackend>,
}

/// The kubeadm backend of a control plane, copied into its `Kany8sKubeadmControlPlane`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeadmBackend {
    /// Number of control-plane machines; only one is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1), extend("default" = 1))]
    pub replicas: Option<i32>,
    /// The infrastructure machine template of the control-plane machine.
    pub machine_template: KubeadmMachineTemplate,
    /// The kubeadm bootstrap configuration (Cluster API `KubeadmConfigSpec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub kubeadm_config_spec: Option<serde_json::Value>,
}

/// Where the control-plane machine's infrastructure comes from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeadmMachineTemplate {
    /// The infrastructure machine template, e.g. a `DockerMachineTemplate`.
    pub infrastructure_ref: ContractVersionedObjectReference,
}

/// An object of an operator-chosen kind that realises the control plane.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalBackend {
    /// `group/version` of the backend kind (`version` alone for the core group).
    #[schemars(length(min = 1, max = 317))]
    pub api_version: String,
    /// The backend kind.
    #[schemars(length(min = 1, max = 63))]
    pub kind: String,
    /// The spec of the backend object, before `version` is injected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub spec: Option<serde_json::Value>,
}

/// Observed state of a `Kany8sControlPlane`, including the Cluster API v1beta2 contract fields.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Kany8sControlPlaneStatus {
    /// Cluster API initialization flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialization: Option<ControlPlaneInitialization>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "versions_schema")]
    pub versions: Vec<ControlPlaneVersion>,
    /// Deprecated mirror of `versions[0].version`, for Cluster API cores before v1.14.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub version: Option<String>,
    /// Always true for kro and external backends: the control plane has no Machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_managed_control_plane: Option<bool>,
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

/// Cluster API control-plane initialization flags. Once true, never reset.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1))]
pub struct ControlPlaneInitialization {
    /// True once the API server is reachable and a kubeconfig is in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_initialized: Option<bool>,
}

/// A template from which Cluster API topology clones `Kany8sControlPlane` objects.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "controlplane.cluster.x-k8s.io",
    version = "v1alpha1",
    kind = "Kany8sControlPlaneTemplate",
    plural = "kany8scontrolplanetemplates",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct Kany8sControlPlaneTemplateSpec {
    pub template: Kany8sControlPlaneTemplateResource,
}

/// What a cloned `Kany8sControlPlane` gets: metadata and a spec without the fields topology and
/// the controller own (`version`, `controlPlaneEndpoint`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Kany8sControlPlaneTemplateResource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    pub spec: ControlPlaneBackend,
}

impl crate::capi::ConditionedStatus for Kany8sControlPlaneStatus {
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
}
