//! Cluster API v1beta2 contract types the provider reads or writes, written for this project.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// API group of the Cluster API core kinds.
pub const CLUSTER_API_GROUP: &str = "cluster.x-k8s.io";
/// Label carrying the name of the Cluster an object belongs to.
pub const CLUSTER_NAME_LABEL: &str = "cluster.x-k8s.io/cluster-name";
/// Annotation (presence) pausing reconciliation of the annotated object ([CT-16]).
pub const PAUSED_ANNOTATION: &str = "cluster.x-k8s.io/paused";
/// Annotation that makes clusterctl move wait ([CT-21]).
pub const BLOCK_MOVE_ANNOTATION: &str = "clusterctl.cluster.x-k8s.io/block-move";
/// Annotation clusterctl sets before deleting moved objects in the source cluster ([CT-22]).
pub const DELETE_FOR_MOVE_ANNOTATION: &str = "clusterctl.cluster.x-k8s.io/delete-for-move";
/// Annotation marking an infrastructure cluster as managed by something else ([IC-01]).
pub const MANAGED_BY_ANNOTATION: &str = "cluster.x-k8s.io/managed-by";
/// Label selecting the objects one controller instance handles (`--watch-filter`).
pub const WATCH_FILTER_LABEL: &str = "cluster.x-k8s.io/watch-filter";

/// Largest `host` an [`ApiEndpoint`] may carry ([CRD-08]).
const ENDPOINT_HOST_MAX: usize = 512;

/// The address of a Kubernetes API server (`APIEndpoint` in Cluster API).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1))]
pub struct ApiEndpoint {
    /// The hostname or IP address on which the API server is serving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = ENDPOINT_HOST_MAX))]
    pub host: Option<String>,
    /// The port on which the API server is serving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
}

impl ApiEndpoint {
    /// An endpoint is usable once both host and a port are set.
    pub fn is_valid(&self) -> bool {
        self.host.as_deref().is_some_and(|h| !h.is_empty()) && self.port.is_some_and(|p| p > 0)
    }

    /// `host:port`, an IPv6 host in brackets.
    pub fn host_port(&self) -> String {
        let host = self.host.as_deref().unwrap_or_default();
        let port = self.port.unwrap_or_default();
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }
}

/// A reference to an object of a contract-versioned kind: the version comes from the
/// contract label of the kind's CRD, so only the group is stored.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContractVersionedObjectReference {
    /// The API group of the referenced kind.
    #[schemars(length(min = 1, max = 253))]
    #[schemars(regex(
        pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
    ))]
    pub api_group: String,
    /// The kind of the referenced object.
    #[schemars(length(min = 1, max = 63))]
    #[schemars(regex(pattern = r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"))]
    pub kind: String,
    /// The name of the referenced object, in the referrer's namespace.
    #[schemars(length(min = 1, max = 253))]
    #[schemars(regex(
        pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
    ))]
    pub name: String,
}

/// The fields of a Cluster API `Cluster` the providers read. Unknown fields are dropped on
/// read; the providers never write a Cluster.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "cluster.x-k8s.io",
    version = "v1beta2",
    kind = "Cluster",
    plural = "clusters",
    namespaced,
    status = "ClusterStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// Pauses every controller acting for this Cluster ([CT-16]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// The endpoint Cluster API copied from the control plane once it was initialized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_endpoint: Option<ApiEndpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_ref: Option<ContractVersionedObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure_ref: Option<ContractVersionedObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<ClusterTopology>,
}

/// The part of a managed topology the providers read.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterTopology {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The part of a Cluster's status the providers read.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Kubernetes API versions are `group/version`, or `version` alone for the core group.
pub fn api_group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(group, _)| group)
}

/// Returns the condition of the given type, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Inserts or replaces a condition. `lastTransitionTime` moves to `now` only when the status
/// changes ([CT-07]); reason, message and observedGeneration are always taken from `new`.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition, now: &Time) {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => {
            new.last_transition_time = if existing.status == new.status {
                existing.last_transition_time.clone()
            } else {
                now.clone()
            };
            *existing = new;
        }
        None => {
            new.last_transition_time = now.clone();
            conditions.push(new);
        }
    }
}

/// Removes the condition of the given type; returns whether one was present.
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    before != conditions.len()
}

/// Whether two condition lists say the same thing, ignoring `lastTransitionTime` and order
/// ([CP-47]): the basis of "no status write when nothing changed".
pub fn conditions_equivalent(a: &[Condition], b: &[Condition]) -> bool {
    fn key(c: &Condition) -> (&str, &str, &str, &str, Option<i64>) {
        (
            &c.type_,
            &c.status,
            &c.reason,
            &c.message,
            c.observed_generation,
        )
    }
    let mut left: Vec<_> = a.iter().map(key).collect();
    let mut right: Vec<_> = b.iter().map(key).collect();
    left.sort_unstable();
    right.sort_unstable();
    left == right
}

/// A status with a `conditions` list, written whole by one controller.
pub trait ConditionedStatus: Clone + PartialEq + serde::Serialize {
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;

    /// Whether `self` says the same as `other`, conditions compared without
    /// `lastTransitionTime` ([CP-47]).
    fn same_as(&self, other: &Self) -> bool {
        let (mut a, mut b) = (self.clone(), other.clone());
        conditions_equivalent(a.conditions_mut(), b.conditions_mut()) && {
            a.conditions_mut().clear();
            b.conditions_mut().clear();
            a == b
        }
    }
}

/// The OpenAPI schema of a `status.conditions` list ([CRD-07]): standard `metav1.Condition`
/// items, a list-map keyed by `type`, at most 32 entries.
pub fn conditions_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let schema = json!({
        "description": "The observations of the object's current state, one per condition type.",
        "type": "array",
        "maxItems": 32,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "description": "One aspect of the object's current state.",
            "type": "object",
            "required": ["type", "status", "reason", "message", "lastTransitionTime"],
            "properties": {
                "type": {
                    "description": "The condition type, in CamelCase or foo.example.com/CamelCase.",
                    "type": "string",
                    "maxLength": 316,
                    "pattern": r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
                },
                "status": {
                    "description": "The status of the condition: True, False or Unknown.",
                    "type": "string",
                    "enum": ["True", "False", "Unknown"]
                },
                "reason": {
                    "description": "A programmatic identifier for the reason of the last transition.",
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 1024,
                    "pattern": r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
                },
                "message": {
                    "description": "A human-readable message about the transition.",
                    "type": "string",
                    "maxLength": 32768
                },
                "observedGeneration": {
                    "description": "The metadata.generation the condition was set from.",
                    "type": "integer",
                    "format": "int64",
                    "minimum": 0
                },
                "lastTransitionTime": {
                    "description": "When the condition last changed its status.",
                    "type": "string",
                    "format": "date-time"
                }
            }
        }
    });
    schemars::Schema::try_from(schema).unwrap_or_default()
}

/// Labels and annotations a template stamps onto the objects cloned from it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Labels added to the cloned object.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations added to the cloned object.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(type_: &str, status: &str, reason: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: Time(Default::default()),
        }
    }

    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap())
    }

    /// [CT-07] lastTransitionTime changes only when the status changes.
    #[test]
    fn set_condition_moves_transition_time_only_on_status_change() {
        let mut conditions = Vec::new();
        set_condition(&mut conditions, cond("Ready", "False", "Creating"), &at(10));
        set_condition(&mut conditions, cond("Ready", "False", "Waiting"), &at(20));
        assert_eq!(conditions[0].last_transition_time, at(10));
        assert_eq!(conditions[0].reason, "Waiting");
        set_condition(&mut conditions, cond("Ready", "True", "Ready"), &at(30));
        assert_eq!(conditions[0].last_transition_time, at(30));
        assert_eq!(conditions.len(), 1);
    }

    /// [CP-47] equality ignores lastTransitionTime and order but not reason or generation.
    #[test]
    fn conditions_equivalence_ignores_time_and_order() {
        let mut a = vec![
            cond("Ready", "True", "Ready"),
            cond("Paused", "False", "NotPaused"),
        ];
        let b = vec![
            cond("Paused", "False", "NotPaused"),
            cond("Ready", "True", "Ready"),
        ];
        a[0].last_transition_time = at(99);
        assert!(conditions_equivalent(&a, &b));
        a[0].observed_generation = Some(2);
        assert!(!conditions_equivalent(&a, &b));
        assert!(remove_condition(&mut a, "Ready"));
        assert!(!remove_condition(&mut a, "Ready"));
        assert!(find_condition(&a, "Paused").is_some());
    }

    #[test]
    fn api_group_of_core_and_named_groups() {
        assert_eq!(api_group_of("v1"), "");
        assert_eq!(api_group_of("cluster.x-k8s.io/v1beta2"), "cluster.x-k8s.io");
    }

    #[test]
    fn endpoint_validity() {
        assert!(!ApiEndpoint::default().is_valid());
        let endpoint = ApiEndpoint {
            host: Some("example.com".into()),
            port: Some(6443),
        };
        assert!(endpoint.is_valid());
    }
}
