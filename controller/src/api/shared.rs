//! Shapes shared by several Kany8s kinds, and the schema helpers they need.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Selects the kro ResourceGraphDefinition that realises the object.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceGraphDefinitionReference {
    /// The name of the cluster-scoped ResourceGraphDefinition.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// The backend object currently managed, in the namespace of the managing object.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackendReference {
    /// API version of the backend object.
    pub api_version: String,
    /// Kind of the backend object.
    pub kind: String,
    /// Name of the backend object.
    pub name: String,
}

/// One Kubernetes version a control plane runs, with how many replicas run it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlaneVersion {
    /// The Kubernetes version.
    #[schemars(length(min = 1, max = 256))]
    pub version: String,
    /// How many control-plane replicas run this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub replicas: Option<i32>,
}

/// Schema of a free-form JSON object ([CRD-09]): the API server rejects arrays, strings and
/// numbers, keeps every nested field, and prunes `null`. The Rust field stays a
/// `serde_json::Value` so that objects stored before the rule existed still deserialize and the
/// controller can report them ([CEL-08]).
pub fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::Schema::try_from(json!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    }))
    .unwrap_or_default()
}

/// Schema of `status.versions`: a list-map keyed by `version`, ordered old to new ([CT-01]).
pub fn versions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = json!({
        "description": "The Kubernetes versions the control plane runs, oldest first.",
        "type": "array",
        "minItems": 1,
        "maxItems": 100,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["version"],
    });
    if let Some(object) = schema.as_object_mut() {
        object.insert(
            "items".into(),
            generator.subschema_for::<ControlPlaneVersion>().to_value(),
        );
    }
    schemars::Schema::try_from(schema).unwrap_or_default()
}
