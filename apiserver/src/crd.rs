//! CustomResourceDefinitions: validation, conditions, and the resource type a CRD serves.

use serde_json::{Value, json};

use crate::registry::{
    Kind, PrinterColumn, ResourceType, ScaleSubresource, Version, version_priority,
};
use crate::status::FieldError;

fn str_at<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// kube-apiserver's defaults of a CRD spec (apiextensions v1 `SetDefaults`): no conversion
/// given is `strategy: None`.
pub fn set_defaults(crd: &mut Value) {
    let Some(spec) = crd.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let conversion = spec
        .entry("conversion")
        .or_insert_with(|| json!({"strategy": "None"}));
    if let Some(conversion) = conversion.as_object_mut() {
        conversion
            .entry("strategy")
            .or_insert_with(|| json!("None"));
    }
}

/// The status of a new CRD, as kube-apiserver's create leaves it: whatever the request sent is
/// dropped, conditions are `null`, the accepted names are empty and the storage version is the
/// one stored version.
pub fn reset_status(crd: &mut Value) {
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|versions| {
            versions
                .iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    crd["status"] = json!({"conditions": null, "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": stored});
}

/// The field manager of the CRD status kube-apiserver's own controllers write (names, then
/// establishing): `kube-apiserver`, an `Update` of the `status` subresource.
pub const STATUS_MANAGER: &str = "kube-apiserver";

/// What field management knows of a CRD's status: conditions are a list map keyed by `type`.
pub fn status_management_schema() -> Value {
    json!({"type": "object", "properties": {"status": {"type": "object", "properties": {
        "conditions": {"type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"], "items": {"type": "object"}}
    }}}})
}

/// Create/update validation of a CRD beyond its typed shape.
pub fn validate(crd: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let group = str_at(crd, "/spec/group");
    let plural = str_at(crd, "/spec/names/plural");
    let name = str_at(crd, "/metadata/name");
    if name != format!("{plural}.{group}") {
        errors.push(FieldError::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if group.is_empty() {
        errors.push(FieldError::required("spec.group"));
    }
    if str_at(crd, "/spec/names/kind").is_empty() {
        errors.push(FieldError::required("spec.names.kind"));
    }
    if !matches!(str_at(crd, "/spec/scope"), "Namespaced" | "Cluster") {
        errors.push(FieldError::new(
            "spec.scope",
            crate::status::FieldErrorKind::NotSupported,
            Some(crate::status::go_quote(str_at(crd, "/spec/scope"))),
            "supported values: \"Cluster\", \"Namespaced\"",
        ));
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let storage = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if storage != 1 {
        errors.push(FieldError::invalid(
            "spec.versions",
            &json!(versions.len()),
            "must have exactly one version marked as storage version",
        ));
    }
    for (i, version) in versions.iter().enumerate() {
        if let Some(schema) = version.pointer("/schema/openAPIV3Schema") {
            let compiled = kube_cel::compile_schema(schema);
            for failure in compiled.compilation_errors() {
                errors.push(FieldError::invalid(
                    format!("spec.versions[{i}].schema.openAPIV3Schema"),
                    &json!("object"),
                    format!("compilation failed: {failure}"),
                ));
            }
        }
    }
    errors
}

/// The status of a condition type, if present.
pub fn condition_status(crd: &Value, type_: &str) -> Option<String> {
    crd.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
        .and_then(|c| c.get("status").and_then(Value::as_str))
        .map(str::to_string)
}

/// Sets a condition, moving `lastTransitionTime` only when the status changes.
pub fn set_condition(
    crd: &mut Value,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &str,
) {
    if !crd.get("status").is_some_and(Value::is_object) {
        crd["status"] = json!({});
    }
    // A new CRD's conditions are `null` until the first one is set.
    let conditions = crd["status"].as_object_mut().map(|s| {
        let conditions = s.entry("conditions").or_insert_with(|| json!([]));
        if !conditions.is_array() {
            *conditions = json!([]);
        }
        conditions
    });
    let Some(Value::Array(conditions)) = conditions else {
        return;
    };
    let new = json!({"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": now});
    match conditions
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
    {
        Some(existing) => {
            let time = if existing.get("status").and_then(Value::as_str) == Some(status) {
                existing
                    .get("lastTransitionTime")
                    .cloned()
                    .unwrap_or(json!(now))
            } else {
                json!(now)
            };
            *existing = new;
            existing["lastTransitionTime"] = time;
        }
        None => conditions.push(new),
    }
}

/// Marks a CRD whose deletion just started.
pub fn set_terminating(crd: &mut Value, now: &str) {
    set_condition(
        crd,
        "Terminating",
        "True",
        "InstanceDeletionPending",
        "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
        now,
    );
}

fn printer_columns(version: &Value) -> Vec<PrinterColumn> {
    version
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .map(|columns| {
            columns
                .iter()
                .map(|c| PrinterColumn {
                    name: str_at(c, "/name").into(),
                    type_: str_at(c, "/type").into(),
                    format: str_at(c, "/format").into(),
                    description: str_at(c, "/description").into(),
                    priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    json_path: str_at(c, "/jsonPath").into(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The resource type a CRD serves (served versions only, preferred first).
pub fn resource_type(crd: &Value) -> Option<ResourceType> {
    let spec = crd.get("spec")?;
    let group = spec.get("group")?.as_str()?.to_string();
    let names = spec.get("names")?;
    let kind_name = names.get("kind")?.as_str()?.to_string();
    let plural = names.get("plural")?.as_str()?.to_string();
    let list_kind = names
        .get("listKind")
        .and_then(Value::as_str)
        .map_or_else(|| format!("{kind_name}List"), str::to_string);
    let singular = names
        .get("singular")
        .and_then(Value::as_str)
        .map_or_else(|| kind_name.to_lowercase(), str::to_string);
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let all_versions = spec.get("versions")?.as_array()?;
    let mut versions: Vec<Version> = Vec::new();
    let mut storage_version = String::new();
    let mut status_subresource = false;
    let mut scale = None;
    for v in all_versions {
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage_version = name.clone();
        }
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        if v.pointer("/subresources/status").is_some() {
            status_subresource = true;
        }
        if let Some(s) = v.pointer("/subresources/scale") {
            scale = Some(ScaleSubresource {
                spec_replicas_path: str_at(s, "/specReplicasPath").into(),
                status_replicas_path: str_at(s, "/statusReplicasPath").into(),
                label_selector_path: s
                    .get("labelSelectorPath")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            });
        }
        let selectable_fields = v
            .get("selectableFields")
            .and_then(Value::as_array)
            .map(|f| {
                f.iter()
                    .filter_map(|x| {
                        x.get("jsonPath")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default();
        versions.push(Version {
            name,
            schema: v.pointer("/schema/openAPIV3Schema").cloned(),
            printer_columns: printer_columns(v),
            selectable_fields,
        });
    }
    versions.sort_by_key(|v| std::cmp::Reverse(version_priority(&v.name)));
    if versions.is_empty() {
        return None;
    }
    Some(ResourceType {
        group,
        versions,
        storage_version,
        plural,
        singular,
        kind_name,
        list_kind,
        namespaced: spec.get("scope").and_then(Value::as_str) == Some("Namespaced"),
        short_names: strings(names.get("shortNames")),
        categories: strings(names.get("categories")),
        status_subresource,
        scale,
        kind: Kind::Custom,
        crd_name: crd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_string),
        established: condition_status(crd, "Established").as_deref() == Some("True"),
    })
}
