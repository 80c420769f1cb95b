//! The ACK EKS `Cluster` (`eks.services.k8s.aws/v1alpha1`), read as an untyped object: a field of
//! an unexpected type reads as absent instead of failing the read ([ROT-03]).

use std::collections::BTreeMap;

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;

pub const GROUP: &str = "eks.services.k8s.aws";
pub const VERSION: &str = "v1alpha1";
pub const KIND: &str = "Cluster";
pub const PLURAL: &str = "clusters";

/// `eks.services.k8s.aws/v1alpha1`, the group-version the availability check asks about.
pub fn group_version() -> String {
    format!("{GROUP}/{VERSION}")
}

/// The API resource of ACK EKS Clusters.
pub fn resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, KIND), PLURAL)
}

/// The ACK Cluster fields the rotator uses, trimmed (empty when absent or not a string).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AckCluster {
    pub namespace: String,
    pub name: String,
    /// `status.endpoint`.
    pub endpoint: String,
    /// `status.certificateAuthority.data` (base64 of the PEM bundle).
    pub certificate_authority: String,
    /// `status.ackResourceMetadata.region`.
    pub status_region: String,
    /// Annotation `services.k8s.aws/region`.
    pub annotations: BTreeMap<String, String>,
}

/// The trimmed string at `pointer` in an untyped object; empty when absent or not a string.
pub fn text_at(object: &DynamicObject, pointer: &str) -> String {
    object
        .data
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl AckCluster {
    pub fn from_object(object: &DynamicObject) -> Self {
        let text = |pointer: &str| text_at(object, pointer);
        Self {
            namespace: object.metadata.namespace.clone().unwrap_or_default(),
            name: object.metadata.name.clone().unwrap_or_default(),
            endpoint: text("/status/endpoint"),
            certificate_authority: text("/status/certificateAuthority/data"),
            status_region: text("/status/ackResourceMetadata/region"),
            annotations: object.metadata.annotations.clone().unwrap_or_default(),
        }
    }

    /// [ROT-03]: both the endpoint and the CA data are published.
    pub fn ready(&self) -> bool {
        !self.endpoint.is_empty() && !self.certificate_authority.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn object(status: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "eks.services.k8s.aws/v1alpha1", "kind": "Cluster",
            "metadata": {"name": "demo", "namespace": "ns",
                "annotations": {"services.k8s.aws/region": "eu-west-1"}},
            "status": status,
        }))
        .unwrap()
    }

    /// [ROT-03]: the fields are trimmed; wrong types read as absent; readiness needs both.
    #[test]
    fn rot03_fields_and_readiness() {
        let ack = AckCluster::from_object(&object(json!({
            "endpoint": " https://ABC.gr7.eu-west-1.eks.amazonaws.com ",
            "certificateAuthority": {"data": "Q0E="},
            "ackResourceMetadata": {"region": "eu-west-1"},
        })));
        assert_eq!(ack.endpoint, "https://ABC.gr7.eu-west-1.eks.amazonaws.com");
        assert_eq!(ack.certificate_authority, "Q0E=");
        assert_eq!(ack.status_region, "eu-west-1");
        assert!(ack.ready());
        let partial = AckCluster::from_object(&object(json!({
            "endpoint": "https://x", "certificateAuthority": {"data": "  "}})));
        assert!(!partial.ready());
        let wrong = AckCluster::from_object(&object(json!({
            "endpoint": 5, "certificateAuthority": "Q0E="})));
        assert_eq!(
            (
                wrong.endpoint.as_str(),
                wrong.certificate_authority.as_str()
            ),
            ("", "")
        );
        assert!(!AckCluster::from_object(&object(Value::Null)).ready());
    }
}
