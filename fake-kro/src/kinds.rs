//! The built-in kinds fake-kro knows without a cluster: OpenAPI schemas of the kinds kro RGDs
//! commonly create (kro.md §6.7), generated from k8s-openapi with references inlined so CEL
//! projections can walk them, and which kinds are cluster-scoped.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use k8s_openapi::schemars::JsonSchema;
use k8s_openapi::schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// (apiVersion, kind) → schema.
static KNOWN: LazyLock<BTreeMap<(String, String), Value>> = LazyLock::new(|| {
    use k8s_openapi::api::{apps, batch, core};
    let mut generator = SchemaSettings::openapi3()
        .with(|s| s.meta_schema = None)
        .into_generator();
    let mut roots = Vec::new();
    fn root<T: JsonSchema>(
        generator: &mut k8s_openapi::schemars::SchemaGenerator,
        api_version: &str,
        kind: &str,
        roots: &mut Vec<(String, String, Value)>,
    ) {
        roots.push((
            api_version.into(),
            kind.into(),
            generator.subschema_for::<T>().to_value(),
        ));
    }
    root::<apps::v1::Deployment>(&mut generator, "apps/v1", "Deployment", &mut roots);
    root::<apps::v1::StatefulSet>(&mut generator, "apps/v1", "StatefulSet", &mut roots);
    root::<core::v1::Service>(&mut generator, "v1", "Service", &mut roots);
    root::<core::v1::ConfigMap>(&mut generator, "v1", "ConfigMap", &mut roots);
    root::<core::v1::Secret>(&mut generator, "v1", "Secret", &mut roots);
    root::<core::v1::Namespace>(&mut generator, "v1", "Namespace", &mut roots);
    root::<core::v1::ServiceAccount>(&mut generator, "v1", "ServiceAccount", &mut roots);
    root::<batch::v1::Job>(&mut generator, "batch/v1", "Job", &mut roots);
    let definitions: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    roots
        .into_iter()
        .map(|(api_version, kind, schema)| ((api_version, kind), inline(&schema, &definitions, 0)))
        .collect()
});

/// Replaces `$ref`s with their definitions, up to a depth that covers every path a status
/// expression reads.
fn inline(node: &Value, definitions: &Map<String, Value>, depth: usize) -> Value {
    match node {
        Value::Object(map) => {
            // `{"$ref": …, "description": …}` arrives as `{"allOf": [{"$ref": …}], …}`.
            let target = match map
                .get("allOf")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
            {
                Some([only]) => only.get("$ref").and_then(Value::as_str),
                _ => map.get("$ref").and_then(Value::as_str),
            };
            if let Some(reference) = target {
                let key = reference.rsplit('/').next().unwrap_or_default();
                let mut resolved = match definitions.get(key) {
                    Some(definition) if depth < 12 => inline(definition, definitions, depth + 1),
                    _ => serde_json::json!({"x-kubernetes-preserve-unknown-fields": true}),
                };
                if let Some(object) = resolved.as_object_mut() {
                    for (k, v) in map
                        .iter()
                        .filter(|(k, _)| !matches!(k.as_str(), "$ref" | "allOf"))
                    {
                        object.insert(k.clone(), inline(v, definitions, depth));
                    }
                }
                return resolved;
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), inline(v, definitions, depth)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| inline(v, definitions, depth))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The schema of a built-in kind, if bundled.
pub fn schema(api_version: &str, kind: &str) -> Option<Value> {
    KNOWN
        .get(&(api_version.to_string(), kind.to_string()))
        .cloned()
}

/// Built-in cluster-scoped kinds by API group (`""` is the core group). Kinds not listed,
/// custom resources included, are taken as namespaced (kro reads the scope from the REST
/// mapping; offline there is none).
const CLUSTER_SCOPED: &[(&str, &[&str])] = &[
    (
        "",
        &["Namespace", "Node", "PersistentVolume", "ComponentStatus"],
    ),
    (
        "admissionregistration.k8s.io",
        &[
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
            "MutatingAdmissionPolicy",
            "MutatingAdmissionPolicyBinding",
        ],
    ),
    ("apiextensions.k8s.io", &["CustomResourceDefinition"]),
    ("apiregistration.k8s.io", &["APIService"]),
    (
        "certificates.k8s.io",
        &["CertificateSigningRequest", "ClusterTrustBundle"],
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        &["FlowSchema", "PriorityLevelConfiguration"],
    ),
    ("kro.run", &["ResourceGraphDefinition"]),
    (
        "networking.k8s.io",
        &["IngressClass", "IPAddress", "ServiceCIDR"],
    ),
    ("node.k8s.io", &["RuntimeClass"]),
    (
        "rbac.authorization.k8s.io",
        &["ClusterRole", "ClusterRoleBinding"],
    ),
    ("resource.k8s.io", &["DeviceClass"]),
    ("scheduling.k8s.io", &["PriorityClass"]),
    (
        "storage.k8s.io",
        &[
            "StorageClass",
            "CSIDriver",
            "CSINode",
            "VolumeAttachment",
            "VolumeAttributesClass",
        ],
    ),
];

/// Whether `kind` of `api_version` is a built-in cluster-scoped kind.
pub fn cluster_scoped(api_version: &str, kind: &str) -> bool {
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    CLUSTER_SCOPED
        .iter()
        .any(|(g, kinds)| *g == group && kinds.contains(&kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_schema_is_walkable() {
        let deployment = schema("apps/v1", "Deployment").unwrap();
        let replicas = &deployment["properties"]["status"]["properties"]["availableReplicas"];
        assert_eq!(replicas["type"], "integer");
        assert_eq!(
            deployment["properties"]["metadata"]["properties"]["name"]["type"],
            "string"
        );
        assert!(schema("v1", "Pod").is_none());
    }

    #[test]
    fn cluster_scoped_kinds_by_group() {
        assert!(cluster_scoped("v1", "Namespace"));
        assert!(cluster_scoped(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole"
        ));
        assert!(!cluster_scoped("v1", "ConfigMap"));
        assert!(!cluster_scoped("rbac.authorization.k8s.io/v1", "Role"));
        assert!(!cluster_scoped("example.com/v1", "Namespace"));
    }
}
