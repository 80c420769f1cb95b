//! `Kany8sKubeadmControlPlane`: the self-managed kubeadm facade ([CRD-14], [CRD-15]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::controlplane::{ControlPlaneInitialization, KubeadmMachineTemplate};
use super::shared::{ControlPlaneVersion, free_form_object, versions_schema};
use crate::capi::{ApiEndpoint, conditions_schema};

/// A self-managed control plane of one kubeadm-bootstrapped Machine.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "controlplane.cluster.x-k8s.io",
    version = "v1alpha1",
    kind = "Kany8sKubeadmControlPlane",
    plural = "kany8skubeadmcontrolplanes",
    namespaced,
    status = "Kany8sKubeadmControlPlaneStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct Kany8sKubeadmControlPlaneSpec {
    /// The Kubernetes version of the control-plane machine.
    #[schemars(length(min = 1, max = 256))]
    pub version: String,
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
    /// The endpoint of the control plane's API server. Written only by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_endpoint: Option<ApiEndpoint>,
}

/// Observed state of a `Kany8sKubeadmControlPlane`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Kany8sKubeadmControlPlaneStatus {
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
    /// Number of control-plane machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Number of control-plane machines that are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Number of control-plane machines that are available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_replicas: Option<i32>,
    /// Number of control-plane machines that run the desired version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to_date_replicas: Option<i32>,
    /// Label selector of the control-plane machines, in string form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The metadata.generation seen by the last status write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub observed_generation: Option<i64>,
    /// Deprecated: the reason of a terminal failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Deprecated: the message of a terminal failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
}

impl crate::capi::ConditionedStatus for Kany8sKubeadmControlPlaneStatus {
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
}
