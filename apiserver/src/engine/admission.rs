//! Admission: the typed decoding of built-ins, type-specific defaults and validation, the
//! custom-resource schema pipeline, and `fieldValidation` reporting.

use base64::Engine as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::{Engine, FieldValidation, Target, WriteOptions, metadata_mut};
use crate::meta;
use crate::registry::{Kind, ResourceType};
use crate::schema;
use crate::status::{ApiError, FieldError};

/// Rewrites whole floats as integers (`1.0` → `1`), as the Go decoder's output does.
pub fn normalize_numbers(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                #[allow(clippy::cast_possible_truncation)]
                let i = f as i64;
                *value = Value::from(i);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_numbers),
        Value::Object(map) => map.values_mut().for_each(normalize_numbers),
        _ => {}
    }
}

/// Fields removed by a typed round trip (unknown to the built-in type).
fn dropped_fields(input: &Value, output: &Value, path: &str, out: &mut Vec<String>) {
    let (Value::Object(i), Value::Object(o)) = (input, output) else {
        return;
    };
    for (key, value) in i {
        let child = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        match o.get(key) {
            Some(kept) => dropped_fields(value, kept, &child, out),
            None => {
                let empty = value.is_null()
                    || value.as_object().is_some_and(Map::is_empty)
                    || value.as_array().is_some_and(Vec::is_empty);
                if !empty {
                    out.push(child);
                }
            }
        }
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(
    object: &Value,
    kind: &str,
    version: &str,
) -> Result<Value, ApiError> {
    let typed: T = serde_json::from_value(object.clone()).map_err(|e| {
        ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {e}"
        ))
    })?;
    serde_json::to_value(typed).map_err(|e| ApiError::internal("InternalError", e.to_string()))
}

/// Decodes a built-in object through its k8s-openapi type: unknown fields are dropped and
/// returned.
fn typed_builtin(
    resource: &ResourceType,
    version: &str,
    object: &Value,
) -> Result<(Value, Vec<String>), ApiError> {
    use k8s_openapi::api::{apps, batch, coordination, core, events, rbac};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let kind = resource.kind_name.as_str();
    let out = match (resource.kind, resource.group.as_str()) {
        (Kind::Namespace, _) => round_trip::<core::v1::Namespace>(object, kind, version)?,
        (Kind::ConfigMap, _) => round_trip::<core::v1::ConfigMap>(object, kind, version)?,
        (Kind::Secret, _) => round_trip::<core::v1::Secret>(object, kind, version)?,
        (Kind::Event, "") => round_trip::<core::v1::Event>(object, kind, version)?,
        (Kind::Event, _) => round_trip::<events::v1::Event>(object, kind, version)?,
        (Kind::Lease, _) => round_trip::<coordination::v1::Lease>(object, kind, version)?,
        (Kind::Deployment, _) => round_trip::<apps::v1::Deployment>(object, kind, version)?,
        (Kind::StatefulSet, _) => round_trip::<apps::v1::StatefulSet>(object, kind, version)?,
        (Kind::ReplicaSet, _) => round_trip::<apps::v1::ReplicaSet>(object, kind, version)?,
        (Kind::Job, _) => round_trip::<batch::v1::Job>(object, kind, version)?,
        (Kind::Service, _) => round_trip::<core::v1::Service>(object, kind, version)?,
        (Kind::ServiceAccount, _) => round_trip::<core::v1::ServiceAccount>(object, kind, version)?,
        (Kind::DaemonSet, _) => round_trip::<apps::v1::DaemonSet>(object, kind, version)?,
        (Kind::PodTemplate, _) => round_trip::<core::v1::PodTemplate>(object, kind, version)?,
        (Kind::Role, _) => round_trip::<rbac::v1::Role>(object, kind, version)?,
        (Kind::ClusterRole, _) => round_trip::<rbac::v1::ClusterRole>(object, kind, version)?,
        (Kind::RoleBinding, _) => round_trip::<rbac::v1::RoleBinding>(object, kind, version)?,
        (Kind::ClusterRoleBinding, _) => {
            round_trip::<rbac::v1::ClusterRoleBinding>(object, kind, version)?
        }
        (Kind::CustomResourceDefinition, _) => {
            round_trip::<CustomResourceDefinition>(object, kind, version)?
        }
        (Kind::Custom, _) => return Ok((object.clone(), Vec::new())),
    };
    let mut dropped = Vec::new();
    dropped_fields(object, &out, "", &mut dropped);
    let mut out = out;
    normalize_numbers(&mut out);
    Ok((out, dropped))
}

/// `data: {}` and `binaryData: {}` are not stored (Go's `omitempty` maps of ConfigMap and
/// Secret: kube-apiserver never returns them).
fn drop_empty_maps(object: &mut Value) {
    if let Some(fields) = object.as_object_mut() {
        fields.retain(|k, v| {
            !(matches!(k.as_str(), "data" | "binaryData")
                && v.as_object().is_some_and(serde_json::Map::is_empty))
        });
    }
}

/// What the write pipeline needs to know about the request.
pub(super) struct WriteContext<'a> {
    pub(super) target: &'a Target,
    pub(super) options: &'a WriteOptions,
    pub(super) manager: String,
    pub(super) now: String,
}

impl<'a> WriteContext<'a> {
    pub(super) fn new(
        target: &'a Target,
        options: &'a WriteOptions,
        default_manager: &str,
        now: String,
    ) -> Self {
        let manager = options
            .field_manager
            .clone()
            .unwrap_or_else(|| default_manager.to_string());
        Self {
            target,
            options,
            manager,
            now,
        }
    }
}

impl Engine {
    /// Service admission, the one piece of built-in defaulting schema-only kinds get: a cluster
    /// IP is allocated at create (unless the Service is headless or an ExternalName) and may
    /// not change afterwards.
    fn service_ip(&self, old: Option<&Value>, object: &mut Value) -> Vec<FieldError> {
        let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
            return Vec::new();
        };
        if spec.get("type").and_then(Value::as_str) == Some("ExternalName") {
            return Vec::new();
        }
        let requested = spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .filter(|ip| !ip.is_empty())
            .map(str::to_string);
        let previous = old
            .and_then(|o| o.pointer("/spec/clusterIP"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let ip = match (previous, requested) {
            (Some(previous), Some(requested)) if previous != requested => {
                return vec![FieldError::invalid(
                    "spec.clusterIPs[0]",
                    &json!([requested]),
                    "may not change once set",
                )];
            }
            (Some(previous), _) => previous,
            (None, Some(requested)) => requested,
            (None, None) => {
                let n = self
                    .next_cluster_ip
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                format!(
                    "10.{}.{}.{}",
                    96 + (n >> 16 & 0x0f),
                    n >> 8 & 0xff,
                    n & 0xff
                )
            }
        };
        spec.insert("clusterIP".into(), json!(ip));
        spec.insert("clusterIPs".into(), json!([ip]));
        Vec::new()
    }

    /// Type-specific admission: defaults, the custom-resource schema pipeline, validation.
    /// Returns the object and the fields dropped as unknown.
    pub(super) fn admit(
        &self,
        context: &WriteContext<'_>,
        old: Option<&Value>,
        mut object: Value,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let target = context.target;
        let resource = &target.resource;
        let name = meta::str_field(&object, "name")
            .unwrap_or_default()
            .to_string();
        normalize_numbers(&mut object);
        let (mut object, mut dropped) = typed_builtin(resource, &target.version, &object)?;
        let mut errors = Vec::new();
        match resource.kind {
            Kind::Custom => {
                if let Some(schema) = resource
                    .version(&target.version)
                    .and_then(|v| v.schema.as_ref())
                {
                    let only_status = target.subresource() == "status";
                    let old_presented = old.map(|o| Self::present(resource, &target.version, o));
                    let (pruned, schema_errors) =
                        schema::admit(&mut object, schema, old_presented.as_ref(), only_status);
                    dropped.extend(pruned);
                    errors.extend(schema_errors);
                }
            }
            Kind::Namespace => {
                let metadata = metadata_mut(&mut object);
                let labels = metadata.entry("labels").or_insert_with(|| json!({}));
                labels["kubernetes.io/metadata.name"] = json!(name);
                if old.is_none() {
                    if object.pointer("/spec/finalizers").is_none() {
                        object["spec"] = json!({"finalizers": ["kubernetes"]});
                    }
                    object["status"] = json!({"phase": "Active"});
                }
            }
            Kind::Secret => {
                if object
                    .get("type")
                    .is_none_or(|t| t.is_null() || t.as_str() == Some(""))
                {
                    object["type"] = json!("Opaque");
                }
                if let Some(Value::Object(string_data)) =
                    object.as_object_mut().and_then(|o| o.remove("stringData"))
                {
                    let data = object
                        .as_object_mut()
                        .map(|o| o.entry("data").or_insert_with(|| json!({})));
                    if let Some(Value::Object(data)) = data {
                        for (k, v) in string_data {
                            let encoded = base64::engine::general_purpose::STANDARD
                                .encode(v.as_str().unwrap_or_default());
                            data.insert(k, json!(encoded));
                        }
                    }
                }
                drop_empty_maps(&mut object);
                errors.extend(validate_data_keys(&object));
                errors.extend(immutable_data(old, &object));
            }
            Kind::ConfigMap => {
                drop_empty_maps(&mut object);
                errors.extend(validate_data_keys(&object));
                errors.extend(immutable_data(old, &object));
            }
            Kind::CustomResourceDefinition => {
                crate::crd::set_defaults(&mut object);
                if old.is_none() {
                    crate::crd::reset_status(&mut object);
                }
                errors.extend(crate::crd::validate(&object));
            }
            Kind::Service => errors.extend(self.service_ip(old, &mut object)),
            Kind::Event
            | Kind::Lease
            | Kind::Job
            | Kind::ServiceAccount
            | Kind::Deployment
            | Kind::StatefulSet
            | Kind::ReplicaSet
            | Kind::DaemonSet
            | Kind::PodTemplate
            | Kind::Role
            | Kind::ClusterRole
            | Kind::RoleBinding
            | Kind::ClusterRoleBinding => {}
        }
        if let Some(metadata) = object.get("metadata").and_then(Value::as_object) {
            let label_only = resource.kind == Kind::Namespace;
            if old.is_none() && !name.is_empty() {
                errors.extend(meta::validate_name(&name, label_only));
            }
            errors.extend(meta::validate(metadata));
        }
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta::normalize(metadata);
        }
        if !errors.is_empty() {
            return Err(ApiError::invalid(&resource.name(), &name, &errors));
        }
        Ok((object, dropped))
    }
}

/// Reports or rejects unknown fields per `fieldValidation`.
pub(super) fn field_validation(
    context: &WriteContext<'_>,
    unknown: Vec<String>,
) -> Result<Vec<String>, ApiError> {
    let problems: Vec<String> = context
        .options
        .duplicate_fields
        .iter()
        .map(|f| format!("duplicate field \"{f}\""))
        .chain(unknown.iter().map(|f| format!("unknown field \"{f}\"")))
        .collect();
    match context.options.field_validation {
        FieldValidation::Ignore => Ok(Vec::new()),
        FieldValidation::Warn => Ok(problems),
        FieldValidation::Strict if problems.is_empty() => Ok(Vec::new()),
        FieldValidation::Strict => {
            let kind = &context.target.resource.kind_name;
            let list = problems;
            Err(ApiError::bad_request(format!(
                "{kind} in version \"{}\" cannot be handled as a {kind}: strict decoding error: {}",
                context.target.version,
                list.join(", ")
            )))
        }
    }
}

pub(super) fn check_type_meta(target: &Target, body: &Value) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be an object",
        ));
    }
    let expected = target.api_version();
    let api_version = body
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or_default();
    if !api_version.is_empty() && api_version != expected {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({expected})"
        )));
    }
    if !kind.is_empty() && kind != target.resource.kind_name && target.resource.kind == Kind::Custom
    {
        // A custom resource is validated as unstructured data: kube-apiserver answers a 422
        // naming the kind the data claims.
        let name = meta::str_field(body, "name").unwrap_or_default();
        let claimed = crate::status::ResourceName {
            kind: kind.to_string(),
            ..target.resource.name()
        };
        let error = FieldError::invalid(
            "kind",
            &json!(kind),
            format!("must be {}", target.resource.kind_name),
        );
        return Err(ApiError::invalid(&claimed, name, &[error]));
    }
    if !kind.is_empty() && kind != target.resource.kind_name {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            target.resource.kind_name
        )));
    }
    Ok(())
}

fn validate_data_keys(object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let data = object.get("data").and_then(Value::as_object);
    let binary = object.get("binaryData").and_then(Value::as_object);
    for (field, map) in [("data", data), ("binaryData", binary)] {
        for key in map.into_iter().flat_map(|m| m.keys()) {
            let valid = !key.is_empty()
                && key.len() <= 253
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
            if !valid {
                errors.push(FieldError::invalid(format!("{field}[{key}]"), &json!(key), "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
            }
        }
    }
    if let (Some(data), Some(binary)) = (data, binary) {
        for key in data.keys().filter(|k| binary.contains_key(*k)) {
            errors.push(FieldError::invalid(
                format!("data[{key}]"),
                &json!(key),
                "duplicate of key present in binaryData",
            ));
        }
    }
    errors
}

fn immutable_data(old: Option<&Value>, new: &Value) -> Vec<FieldError> {
    let Some(old) = old else { return Vec::new() };
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return Vec::new();
    }
    let mut errors = Vec::new();
    for field in ["data", "binaryData", "stringData"] {
        if old.get(field) != new.get(field) {
            errors.push(FieldError::forbidden(
                field,
                "field is immutable when `immutable` is set",
            ));
        }
    }
    if new.get("immutable").and_then(Value::as_bool) != Some(true) {
        errors.push(FieldError::forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
    errors
}
