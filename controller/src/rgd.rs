//! ResourceGraphDefinition → instance GVK and acceptance (provider.md §4.1 [RG-01]–[RG-05],
//! [RG-10]). Pure: the caller reads the RGD and checks that the kind is served.

use kube::api::{ApiResource, GroupVersionKind};
use serde_json::Value;

use crate::backend_status::json_type;
use crate::reconciler::conditions::reasons;

/// kro's ResourceGraphDefinition kind.
pub fn rgd_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kro.run", "v1alpha1", "ResourceGraphDefinition"),
        "resourcegraphdefinitions",
    )
}

/// Why an RGD cannot be used; `reason()` is the condition reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RgdError {
    #[error("{0}")]
    Invalid(String),
    #[error("ResourceGraphDefinition \"{0}\" not found")]
    NotFound(String),
    #[error("get ResourceGraphDefinition \"{0}\": {1}")]
    GetFailed(String, String),
    #[error("{0}")]
    NotAccepted(String),
    #[error("{0}/{1}, Kind={2} is not served by the API server")]
    NotServed(String, String, String),
}

impl RgdError {
    pub fn reason(&self) -> &'static str {
        match self {
            RgdError::Invalid(_) => reasons::RGD_INVALID,
            RgdError::NotFound(_) => reasons::RGD_NOT_FOUND,
            RgdError::GetFailed(..) => reasons::RGD_GET_FAILED,
            RgdError::NotAccepted(_) => reasons::RGD_NOT_ACCEPTED,
            RgdError::NotServed(..) => reasons::BACKEND_KIND_NOT_SERVED,
        }
    }
}

/// The instance kind of an accepted RGD.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceKind {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl InstanceKind {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `ResourceGraphDefinition "<name>" resolved to <group>/<version>, Kind=<Kind>` ([RG-07]).
    pub fn resolved_message(&self, rgd: &str) -> String {
        format!(
            "ResourceGraphDefinition \"{rgd}\" resolved to {}/{}, Kind={}",
            self.group, self.version, self.kind
        )
    }
}

/// [RG-01]: the trimmed RGD name.
pub fn name(reference: &str) -> Result<String, RgdError> {
    let name = reference.trim();
    if name.is_empty() {
        return Err(RgdError::Invalid("rgd name is required".into()));
    }
    Ok(name.to_string())
}

/// [RG-03]–[RG-05]: the instance kind of `rgd` (named `name`), if it is accepted.
pub fn resolve(name: &str, rgd: &Value) -> Result<InstanceKind, RgdError> {
    let schema_text = |field: &str| -> Result<String, RgdError> {
        match rgd.pointer(&format!("/spec/schema/{field}")) {
            None | Some(Value::Null) => Err(RgdError::Invalid(format!(
                "ResourceGraphDefinition \"{name}\" missing spec.schema.{field}"
            ))),
            Some(Value::String(s)) if s.trim().is_empty() => Err(RgdError::Invalid(format!(
                "ResourceGraphDefinition \"{name}\" missing spec.schema.{field}"
            ))),
            Some(Value::String(s)) => Ok(s.trim().to_string()),
            Some(other) => Err(RgdError::Invalid(format!(
                "read ResourceGraphDefinition spec.schema.{field}: expected string, got {}",
                json_type(other)
            ))),
        }
    };
    let api_version = schema_text("apiVersion")?;
    let kind = schema_text("kind")?;
    let schema_group = rgd
        .pointer("/spec/schema/group")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|g| !g.is_empty());
    let (group, version) = match api_version.split_once('/') {
        Some((left, right)) => {
            if left.is_empty() || right.is_empty() {
                return Err(RgdError::Invalid(format!(
                    "invalid ResourceGraphDefinition schema apiVersion \"{api_version}\""
                )));
            }
            if let Some(group) = schema_group.filter(|g| *g != left) {
                return Err(RgdError::Invalid(format!(
                    "ResourceGraphDefinition \"{name}\" has conflicting groups \"{group}\" and \"{left}\""
                )));
            }
            (left.to_string(), right.to_string())
        }
        None => (
            schema_group.unwrap_or("kro.run").to_string(),
            api_version.clone(),
        ),
    };
    accepted(name, rgd)?;
    Ok(InstanceKind {
        group,
        version,
        kind,
    })
}

/// [RG-05]: `state == Active` and a current `Ready` condition.
fn accepted(name: &str, rgd: &Value) -> Result<(), RgdError> {
    let state = rgd
        .pointer("/status/state")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let conditions = rgd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let condition = |type_: &str| conditions.iter().find(|c| c["type"] == type_);
    let generation = rgd.pointer("/metadata/generation").and_then(Value::as_i64);
    let ready_current = condition("Ready")
        .and_then(|c| c.get("observedGeneration"))
        .and_then(Value::as_i64)
        .is_none_or(|observed| Some(observed) == generation);
    if state == "Active" && ready_current {
        return Ok(());
    }
    let rejected = ["GraphAccepted", "ResourceGraphAccepted"]
        .iter()
        .find_map(|t| condition(t).filter(|c| c["status"] == "False"));
    Err(RgdError::NotAccepted(match rejected {
        Some(c) => format!(
            "ResourceGraphDefinition \"{name}\" is not accepted: {}",
            c["message"].as_str().unwrap_or_default()
        ),
        None => format!("ResourceGraphDefinition \"{name}\" is not active (state \"{state}\")"),
    }))
}

/// [RG-09]: whether the RGD's schema declares a top-level `spec.version`.
pub fn declares_version(rgd: &Value) -> bool {
    schema_has_spec_field(rgd, "version").unwrap_or(false)
}

/// [RG-10]: whether `spec.schema.spec` declares the dot-separated `path`.
pub fn schema_has_spec_field(rgd: &Value, path: &str) -> Result<bool, String> {
    if path.trim().is_empty() {
        return Err("field path is required".into());
    }
    let segments: Vec<&str> = path.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(format!("field path \"{path}\" is invalid"));
    }
    let mut node = match rgd.pointer("/spec/schema/spec") {
        None | Some(Value::Null) => return Ok(false),
        Some(v @ Value::Object(_)) => v,
        Some(other) => {
            return Err(format!(
                "read ResourceGraphDefinition spec.schema.spec: expected object, got {}",
                json_type(other)
            ));
        }
    };
    for segment in segments {
        match node.as_object().and_then(|o| o.get(segment)) {
            Some(next) => node = next,
            None => return Ok(false),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    fn rgd(schema: Value) -> Value {
        json!({"metadata": {"generation": 1}, "spec": {"schema": schema},
            "status": {"state": "Active", "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 1}]}})
    }

    /// [RG-03], [RG-04] examples.
    #[rstest]
    #[case(json!({"apiVersion": "v1alpha1", "kind": "Demo"}), Ok(("kro.run", "v1alpha1", "Demo")))]
    #[case(json!({"apiVersion": " v1alpha1 ", "kind": " Demo ", "group": "demo.kany8s.io"}), Ok(("demo.kany8s.io", "v1alpha1", "Demo")))]
    #[case(json!({"apiVersion": "example.com/v1", "kind": "Demo"}), Ok(("example.com", "v1", "Demo")))]
    #[case(json!({"apiVersion": "example.com/v1", "kind": "Demo", "group": "example.com"}), Ok(("example.com", "v1", "Demo")))]
    #[case(json!({"apiVersion": "example.com/", "kind": "Demo"}), Err("invalid ResourceGraphDefinition schema apiVersion \"example.com/\""))]
    #[case(json!({"apiVersion": "a.io/v1", "kind": "Demo", "group": "b.io"}), Err("ResourceGraphDefinition \"r\" has conflicting groups \"b.io\" and \"a.io\""))]
    #[case(json!({"kind": "Demo"}), Err("ResourceGraphDefinition \"r\" missing spec.schema.apiVersion"))]
    #[case(json!({"apiVersion": "v1", "kind": "  "}), Err("ResourceGraphDefinition \"r\" missing spec.schema.kind"))]
    #[case(json!({"apiVersion": 1, "kind": "Demo"}), Err("read ResourceGraphDefinition spec.schema.apiVersion: expected string, got integer"))]
    fn rg03_rg04_instance_kind(
        #[case] schema: Value,
        #[case] expected: Result<(&str, &str, &str), &str>,
    ) {
        let got = resolve("r", &rgd(schema))
            .map(|k| (k.group, k.version, k.kind))
            .map_err(|e| {
                assert_eq!(e.reason(), "ResourceGraphDefinitionInvalid");
                e.to_string()
            });
        let expected = expected
            .map(|(g, v, k)| (g.to_string(), v.to_string(), k.to_string()))
            .map_err(str::to_string);
        assert_eq!(got, expected);
    }

    /// [RG-05] acceptance.
    #[rstest]
    #[case(json!({"state": "Active"}), None)]
    #[case(json!({"state": "Active", "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 1}]}), None)]
    #[case(json!({"state": "Active", "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 0}]}), Some("ResourceGraphDefinition \"r\" is not active (state \"Active\")"))]
    #[case(json!({"state": "Inactive", "conditions": [{"type": "GraphAccepted", "status": "False", "message": "bad graph"}]}), Some("ResourceGraphDefinition \"r\" is not accepted: bad graph"))]
    #[case(json!({"state": "Inactive", "conditions": [{"type": "ResourceGraphAccepted", "status": "False", "message": "old"}]}), Some("ResourceGraphDefinition \"r\" is not accepted: old"))]
    #[case(json!({}), Some("ResourceGraphDefinition \"r\" is not active (state \"\")"))]
    fn rg05_acceptance(#[case] status: Value, #[case] expected: Option<&str>) {
        let object = json!({"metadata": {"generation": 1},
            "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "Demo"}}, "status": status});
        let got = resolve("r", &object).err().map(|e| {
            assert_eq!(e.reason(), "ResourceGraphDefinitionNotAccepted");
            e.to_string()
        });
        assert_eq!(got.as_deref(), expected);
    }

    #[test]
    fn rg01_blank_name() {
        assert_eq!(name("  ").unwrap_err().to_string(), "rgd name is required");
        assert_eq!(name(" demo ").unwrap(), "demo");
    }

    /// [RG-10] the schema probe.
    #[rstest]
    #[case(json!({"clusterUID": "string | required=true"}), "clusterUID", Ok(true))]
    #[case(json!({"a": {"b": "string"}}), "a.b", Ok(true))]
    #[case(json!({"a": "string"}), "a.b", Ok(false))]
    #[case(json!({}), "clusterUID", Ok(false))]
    #[case(Value::Null, "clusterUID", Ok(false))]
    #[case(json!("x"), "clusterUID", Err("read ResourceGraphDefinition spec.schema.spec: expected object, got string"))]
    #[case(json!({}), " ", Err("field path is required"))]
    #[case(json!({}), "a..b", Err("field path \"a..b\" is invalid"))]
    fn rg10_schema_probe(
        #[case] spec: Value,
        #[case] path: &str,
        #[case] expected: Result<bool, &str>,
    ) {
        let object = json!({"spec": {"schema": {"spec": spec}}});
        assert_eq!(
            schema_has_spec_field(&object, path),
            expected.map_err(str::to_string)
        );
    }
}
