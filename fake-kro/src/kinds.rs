//! The built-in kinds fake-kro knows without a cluster: the OpenAPI schema and scope of every kind
//! of the targeted Kubernetes version, generated from k8s-openapi with references inlined (on
//! first use, per kind) so CEL projections and the type checker can walk them.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};

use k8s_openapi::schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// A built-in kind: its root schema (references not yet inlined) and whether it is namespaced.
struct BuiltIn {
    schema: Value,
    namespaced: bool,
}

/// The REST scope of a k8s-openapi resource type.
trait Scope {
    const NAMESPACED: bool;
}

impl Scope for k8s_openapi::NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

impl Scope for k8s_openapi::ClusterResourceScope {
    const NAMESPACED: bool = false;
}

/// Every kind the targeted Kubernetes version serves (k8s-openapi's feature `v1_33`): each
/// resource type whose scope is namespaced or cluster (subresources and the discovery types are
/// not kinds an RGD can create). Regenerate with
/// `grep -rl "type Scope = crate::\(Namespace\|Cluster\)ResourceScope" src/v1_33` in the crate.
macro_rules! every_built_in_kind {
    ($register:ident) => {
        $register!(k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration);
        $register!(k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy);
        $register!(k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding);
        $register!(k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration);
        $register!(k8s_openapi::api::admissionregistration::v1alpha1::MutatingAdmissionPolicy);
        $register!(k8s_openapi::api::admissionregistration::v1alpha1::MutatingAdmissionPolicyBinding);
        $register!(k8s_openapi::api::admissionregistration::v1beta1::ValidatingAdmissionPolicy);
        $register!(k8s_openapi::api::admissionregistration::v1beta1::ValidatingAdmissionPolicyBinding);
        $register!(k8s_openapi::api::apiserverinternal::v1alpha1::StorageVersion);
        $register!(k8s_openapi::api::apps::v1::ControllerRevision);
        $register!(k8s_openapi::api::apps::v1::DaemonSet);
        $register!(k8s_openapi::api::apps::v1::Deployment);
        $register!(k8s_openapi::api::apps::v1::ReplicaSet);
        $register!(k8s_openapi::api::apps::v1::StatefulSet);
        $register!(k8s_openapi::api::authentication::v1::SelfSubjectReview);
        $register!(k8s_openapi::api::authentication::v1::TokenReview);
        $register!(k8s_openapi::api::authorization::v1::LocalSubjectAccessReview);
        $register!(k8s_openapi::api::authorization::v1::SelfSubjectAccessReview);
        $register!(k8s_openapi::api::authorization::v1::SelfSubjectRulesReview);
        $register!(k8s_openapi::api::authorization::v1::SubjectAccessReview);
        $register!(k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler);
        $register!(k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler);
        $register!(k8s_openapi::api::batch::v1::CronJob);
        $register!(k8s_openapi::api::batch::v1::Job);
        $register!(k8s_openapi::api::certificates::v1::CertificateSigningRequest);
        $register!(k8s_openapi::api::certificates::v1alpha1::ClusterTrustBundle);
        $register!(k8s_openapi::api::certificates::v1beta1::ClusterTrustBundle);
        $register!(k8s_openapi::api::coordination::v1::Lease);
        $register!(k8s_openapi::api::coordination::v1alpha2::LeaseCandidate);
        $register!(k8s_openapi::api::coordination::v1beta1::LeaseCandidate);
        $register!(k8s_openapi::api::core::v1::Binding);
        $register!(k8s_openapi::api::core::v1::ComponentStatus);
        $register!(k8s_openapi::api::core::v1::ConfigMap);
        $register!(k8s_openapi::api::core::v1::Endpoints);
        $register!(k8s_openapi::api::core::v1::Event);
        $register!(k8s_openapi::api::core::v1::LimitRange);
        $register!(k8s_openapi::api::core::v1::Namespace);
        $register!(k8s_openapi::api::core::v1::Node);
        $register!(k8s_openapi::api::core::v1::PersistentVolume);
        $register!(k8s_openapi::api::core::v1::PersistentVolumeClaim);
        $register!(k8s_openapi::api::core::v1::Pod);
        $register!(k8s_openapi::api::core::v1::PodTemplate);
        $register!(k8s_openapi::api::core::v1::ReplicationController);
        $register!(k8s_openapi::api::core::v1::ResourceQuota);
        $register!(k8s_openapi::api::core::v1::Secret);
        $register!(k8s_openapi::api::core::v1::Service);
        $register!(k8s_openapi::api::core::v1::ServiceAccount);
        $register!(k8s_openapi::api::discovery::v1::EndpointSlice);
        $register!(k8s_openapi::api::events::v1::Event);
        $register!(k8s_openapi::api::flowcontrol::v1::FlowSchema);
        $register!(k8s_openapi::api::flowcontrol::v1::PriorityLevelConfiguration);
        $register!(k8s_openapi::api::networking::v1::IPAddress);
        $register!(k8s_openapi::api::networking::v1::Ingress);
        $register!(k8s_openapi::api::networking::v1::IngressClass);
        $register!(k8s_openapi::api::networking::v1::NetworkPolicy);
        $register!(k8s_openapi::api::networking::v1::ServiceCIDR);
        $register!(k8s_openapi::api::networking::v1beta1::IPAddress);
        $register!(k8s_openapi::api::networking::v1beta1::ServiceCIDR);
        $register!(k8s_openapi::api::node::v1::RuntimeClass);
        $register!(k8s_openapi::api::policy::v1::PodDisruptionBudget);
        $register!(k8s_openapi::api::rbac::v1::ClusterRole);
        $register!(k8s_openapi::api::rbac::v1::ClusterRoleBinding);
        $register!(k8s_openapi::api::rbac::v1::Role);
        $register!(k8s_openapi::api::rbac::v1::RoleBinding);
        $register!(k8s_openapi::api::resource::v1alpha3::DeviceClass);
        $register!(k8s_openapi::api::resource::v1alpha3::DeviceTaintRule);
        $register!(k8s_openapi::api::resource::v1alpha3::ResourceClaim);
        $register!(k8s_openapi::api::resource::v1alpha3::ResourceClaimTemplate);
        $register!(k8s_openapi::api::resource::v1alpha3::ResourceSlice);
        $register!(k8s_openapi::api::resource::v1beta1::DeviceClass);
        $register!(k8s_openapi::api::resource::v1beta1::ResourceClaim);
        $register!(k8s_openapi::api::resource::v1beta1::ResourceClaimTemplate);
        $register!(k8s_openapi::api::resource::v1beta1::ResourceSlice);
        $register!(k8s_openapi::api::resource::v1beta2::DeviceClass);
        $register!(k8s_openapi::api::resource::v1beta2::ResourceClaim);
        $register!(k8s_openapi::api::resource::v1beta2::ResourceClaimTemplate);
        $register!(k8s_openapi::api::resource::v1beta2::ResourceSlice);
        $register!(k8s_openapi::api::scheduling::v1::PriorityClass);
        $register!(k8s_openapi::api::storage::v1::CSIDriver);
        $register!(k8s_openapi::api::storage::v1::CSINode);
        $register!(k8s_openapi::api::storage::v1::CSIStorageCapacity);
        $register!(k8s_openapi::api::storage::v1::StorageClass);
        $register!(k8s_openapi::api::storage::v1::VolumeAttachment);
        $register!(k8s_openapi::api::storage::v1alpha1::VolumeAttributesClass);
        $register!(k8s_openapi::api::storage::v1beta1::VolumeAttributesClass);
        $register!(k8s_openapi::api::storagemigration::v1alpha1::StorageVersionMigration);
        $register!(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition);
        $register!(k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService);
    };
}

/// Each kind's root schema by (apiVersion, kind), and the definitions the roots refer to.
type BuiltIns = (BTreeMap<(String, String), BuiltIn>, Map<String, Value>);

/// Generated once, on first use.
static BUILT_IN: LazyLock<BuiltIns> = LazyLock::new(|| {
    let mut generator = SchemaSettings::openapi3()
        .with(|s| s.meta_schema = None)
        .into_generator();
    let mut kinds = BTreeMap::new();
    macro_rules! register {
        ($t:ty) => {
            kinds.insert(
                (
                    <$t as k8s_openapi::Resource>::API_VERSION.to_string(),
                    <$t as k8s_openapi::Resource>::KIND.to_string(),
                ),
                BuiltIn {
                    schema: generator.subschema_for::<$t>().to_value(),
                    namespaced: <<$t as k8s_openapi::Resource>::Scope as Scope>::NAMESPACED,
                },
            );
        };
    }
    every_built_in_kind!(register);
    let object_meta = generator
        .subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>()
        .to_value();
    kinds.insert(
        (String::new(), OBJECT_META.to_string()),
        BuiltIn {
            schema: object_meta,
            namespaced: false,
        },
    );
    let definitions = generator.take_definitions(true).into_iter().collect();
    (kinds, definitions)
});

/// The key under which ObjectMeta's schema is kept beside the kinds.
const OBJECT_META: &str = "ObjectMeta";

/// Schemas already inlined, by (apiVersion, kind).
static INLINED: LazyLock<Mutex<BTreeMap<(String, String), Value>>> =
    LazyLock::new(|| Mutex::new(BTreeMap::new()));

fn inlined(api_version: &str, kind: &str) -> Option<Value> {
    let key = (api_version.to_string(), kind.to_string());
    if let Ok(cache) = INLINED.lock()
        && let Some(schema) = cache.get(&key)
    {
        return Some(schema.clone());
    }
    let (kinds, definitions) = &*BUILT_IN;
    let schema = inline(&kinds.get(&key)?.schema, definitions, &mut Vec::new());
    if let Ok(mut cache) = INLINED.lock() {
        cache.insert(key, schema.clone());
    }
    Some(schema)
}

/// Replaces `$ref`s with their definitions. A definition that refers to itself (JSONSchemaProps,
/// inside CustomResourceDefinition) is left open (`x-kubernetes-preserve-unknown-fields`) where
/// it recurs, or the inlined tree would grow without bound.
fn inline(node: &Value, definitions: &Map<String, Value>, open: &mut Vec<String>) -> Value {
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
                let key = reference.rsplit('/').next().unwrap_or_default().to_string();
                let mut resolved = match definitions.get(&key) {
                    Some(definition) if !open.contains(&key) => {
                        open.push(key);
                        let inlined = inline(definition, definitions, open);
                        open.pop();
                        inlined
                    }
                    _ => serde_json::json!({"x-kubernetes-preserve-unknown-fields": true}),
                };
                if let Some(object) = resolved.as_object_mut() {
                    for (k, v) in map
                        .iter()
                        .filter(|(k, _)| !matches!(k.as_str(), "$ref" | "allOf"))
                    {
                        object.insert(k.clone(), inline(v, definitions, open));
                    }
                }
                return resolved;
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), inline(v, definitions, open)))
                    .collect(),
            )
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| inline(v, definitions, open)).collect())
        }
        other => other.clone(),
    }
}

/// The schema of a built-in kind, if the targeted Kubernetes version serves it.
pub fn schema(api_version: &str, kind: &str) -> Option<Value> {
    if api_version.is_empty() {
        return None;
    }
    inlined(api_version, kind)
}

/// Whether a built-in kind is namespaced (`None`: not a built-in kind).
pub fn namespaced(api_version: &str, kind: &str) -> Option<bool> {
    BUILT_IN
        .0
        .get(&(api_version.to_string(), kind.to_string()))
        .filter(|_| !api_version.is_empty())
        .map(|k| k.namespaced)
}

/// Whether the targeted Kubernetes version serves a built-in group version.
pub fn serves_api_version(api_version: &str) -> bool {
    !api_version.is_empty() && BUILT_IN.0.keys().any(|(served, _)| served == api_version)
}

/// ObjectMeta's schema as the API server publishes it, references inlined.
pub fn object_meta() -> Value {
    inlined("", OBJECT_META).unwrap_or_else(|| serde_json::json!({"type": "object"}))
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
    if let Some(namespaced) = namespaced(api_version, kind) {
        return !namespaced;
    }
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
        assert!(schema("v1", "Pod").is_some());
        assert!(schema("policy/v1", "PodDisruptionBudget").is_some());
        assert!(schema("v1", "NoSuchKind").is_none());
        assert_eq!(
            namespaced("rbac.authorization.k8s.io/v1", "ClusterRole"),
            Some(false)
        );
        assert_eq!(
            namespaced("networking.k8s.io/v1", "NetworkPolicy"),
            Some(true)
        );
        assert_eq!(object_meta()["properties"]["name"]["type"], "string");
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
