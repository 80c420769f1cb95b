//! ObjectMeta rules: name and label syntax, empty-collection normalisation, owner references.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use crate::status::{FieldError, FieldErrorKind, go_quote};

static DNS1123_SUBDOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
        .unwrap_or_else(|_| unreachable!())
});
static DNS1123_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").unwrap_or_else(|_| unreachable!())
});
static QUALIFIED_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$").unwrap_or_else(|_| unreachable!())
});

const SUBDOMAIN_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MESSAGE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MESSAGE: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MESSAGE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// The metadata fields ObjectMeta knows; anything else is unknown and dropped.
pub const KNOWN_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

pub fn is_dns1123_subdomain(name: &str) -> bool {
    name.len() <= 253 && DNS1123_SUBDOMAIN.is_match(name)
}

pub fn is_dns1123_label(name: &str) -> bool {
    name.len() <= 63 && DNS1123_LABEL.is_match(name)
}

/// Validates an object name: a DNS-1123 label for namespaces, a subdomain otherwise.
pub fn validate_name(name: &str, label_only: bool) -> Vec<FieldError> {
    let value = Value::String(name.to_string());
    if label_only {
        if !is_dns1123_label(name) {
            let mut errors = Vec::new();
            if name.len() > 63 {
                errors.push(FieldError::invalid(
                    "metadata.name",
                    &value,
                    "must be no more than 63 characters",
                ));
            }
            if !DNS1123_LABEL.is_match(name) {
                errors.push(FieldError::invalid("metadata.name", &value, LABEL_MESSAGE));
            }
            return errors;
        }
        return Vec::new();
    }
    let mut errors = Vec::new();
    if name == "." || name == ".." {
        errors.push(FieldError::invalid(
            "metadata.name",
            &value,
            format!("may not be '{name}'"),
        ));
    }
    for forbidden in ['/', '%'] {
        if name.contains(forbidden) {
            errors.push(FieldError::invalid(
                "metadata.name",
                &value,
                format!("may not contain '{forbidden}'"),
            ));
        }
    }
    if name.len() > 253 {
        errors.push(FieldError::invalid(
            "metadata.name",
            &value,
            "must be no more than 253 characters",
        ));
    }
    if !DNS1123_SUBDOMAIN.is_match(name) {
        errors.push(FieldError::invalid(
            "metadata.name",
            &value,
            SUBDOMAIN_MESSAGE,
        ));
    }
    errors
}

/// Validates a qualified name (label or annotation key, finalizer): optional DNS prefix + `/`
/// + name part.
fn validate_qualified_name(key: &str, path: &str) -> Vec<FieldError> {
    let value = Value::String(key.to_string());
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let mut errors = Vec::new();
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            errors.push(FieldError::invalid(
                path,
                &value,
                "prefix part must be non-empty",
            ));
        } else if !is_dns1123_subdomain(prefix) {
            errors.push(FieldError::invalid(
                path,
                &value,
                format!("prefix part {SUBDOMAIN_MESSAGE}"),
            ));
        }
    }
    if name.is_empty() {
        errors.push(FieldError::invalid(
            path,
            &value,
            "name part must be non-empty",
        ));
    } else {
        if name.len() > 63 {
            errors.push(FieldError::invalid(
                path,
                &value,
                "name part must be no more than 63 characters",
            ));
        }
        if !QUALIFIED_NAME.is_match(name) {
            errors.push(FieldError::invalid(path, &value, QUALIFIED_NAME_MESSAGE));
        }
    }
    errors
}

/// Drops empty `labels`, `annotations`, `finalizers` and `ownerReferences` and unknown fields.
/// Returns the unknown fields (for field-validation reporting).
pub fn normalize(metadata: &mut Map<String, Value>) -> Vec<String> {
    let unknown: Vec<String> = metadata
        .keys()
        .filter(|k| !KNOWN_FIELDS.contains(&k.as_str()))
        .cloned()
        .collect();
    for key in &unknown {
        metadata.remove(key);
    }
    for key in [
        "labels",
        "annotations",
        "finalizers",
        "ownerReferences",
        "managedFields",
    ] {
        let empty = match metadata.get(key) {
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Null) => true,
            _ => false,
        };
        if empty {
            metadata.remove(key);
        }
    }
    for key in [
        "generateName",
        "selfLink",
        "uid",
        "resourceVersion",
        "namespace",
        "name",
    ] {
        if metadata
            .get(key)
            .is_some_and(|v| v.is_null() || v.as_str() == Some(""))
        {
            metadata.remove(key);
        }
    }
    unknown
        .into_iter()
        .map(|k| format!("metadata.{k}"))
        .collect()
}

/// Validates labels, annotations, finalizers and owner references.
pub fn validate(metadata: &Map<String, Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(labels) = metadata.get("labels") {
        match labels.as_object() {
            Some(labels) => {
                for (key, value) in labels {
                    errors.extend(validate_qualified_name(key, "metadata.labels"));
                    match value.as_str() {
                        Some("") => {}
                        Some(v) if v.len() <= 63 && QUALIFIED_NAME.is_match(v) => {}
                        Some(v) => {
                            let detail = if v.len() > 63 {
                                "must be no more than 63 characters".to_string()
                            } else {
                                LABEL_VALUE_MESSAGE.to_string()
                            };
                            errors.push(FieldError::invalid("metadata.labels", value, detail));
                        }
                        None => errors.push(type_error("metadata.labels", value, "string")),
                    }
                }
            }
            None => errors.push(type_error("metadata.labels", labels, "object")),
        }
    }
    if let Some(annotations) = metadata.get("annotations") {
        match annotations.as_object() {
            Some(annotations) => {
                let mut total = 0usize;
                for (key, value) in annotations {
                    errors.extend(validate_qualified_name(
                        &key.to_lowercase(),
                        "metadata.annotations",
                    ));
                    total += key.len() + value.as_str().map_or(0, str::len);
                    if !value.is_string() {
                        errors.push(type_error("metadata.annotations", value, "string"));
                    }
                }
                if total > 262_144 {
                    errors.push(FieldError::new(
                        "metadata.annotations",
                        FieldErrorKind::TooLong,
                        None,
                        "may not be more than 262144 bytes",
                    ));
                }
            }
            None => errors.push(type_error("metadata.annotations", annotations, "object")),
        }
    }
    if let Some(finalizers) = metadata.get("finalizers").and_then(Value::as_array) {
        let names: Vec<&str> = finalizers.iter().filter_map(Value::as_str).collect();
        for (i, name) in names.iter().enumerate() {
            errors.extend(validate_qualified_name(
                name,
                &format!("metadata.finalizers[{i}]"),
            ));
        }
        if names.contains(&"orphan") && names.contains(&"foregroundDeletion") {
            errors.push(FieldError::invalid(
                "metadata.finalizers",
                &Value::String("foregroundDeletion".into()),
                "finalizer foregroundDeletion and orphan cannot be both set",
            ));
        }
    }
    if let Some(references) = metadata.get("ownerReferences").and_then(Value::as_array) {
        let mut controllers = Vec::new();
        for reference in references {
            // kube-apiserver validates each reference at `metadata.ownerReferences` (no index).
            let path = "metadata.ownerReferences";
            for field in ["apiVersion", "kind", "name", "uid"] {
                if reference
                    .get(field)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    let detail = match field {
                        "apiVersion" => "version must not be empty",
                        "kind" => "kind must not be empty",
                        "name" => "name must not be empty",
                        _ => "must not be empty",
                    };
                    errors.push(FieldError::invalid(
                        format!("{path}.{field}"),
                        &Value::String(String::new()),
                        detail,
                    ));
                }
            }
            if reference.get("controller").and_then(Value::as_bool) == Some(true) {
                controllers.push(format!(
                    "{}/{}",
                    reference
                        .get("kind")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                    reference
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                ));
            }
        }
        if controllers.len() > 1 {
            errors.push(FieldError::invalid(
                "metadata.ownerReferences",
                &Value::Array(references.clone()),
                format!(
                    "Only one reference can have Controller set to true. Found \"true\" in references for {} and {}",
                    controllers[0], controllers[1]
                ),
            ));
        }
    }
    errors
}

/// `<path> in body must be of type <expected>: "<actual>"`.
pub fn type_error(path: &str, value: &Value, expected: &str) -> FieldError {
    FieldError::new(
        path,
        FieldErrorKind::TypeInvalid,
        Some(go_quote(json_type(value))),
        format!(
            "{path} in body must be of type {expected}: {}",
            go_quote(json_type(value))
        ),
    )
}

/// JSON type names as the OpenAPI validator prints them.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Reads `metadata.<field>` as a string.
pub fn str_field<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

/// The finalizers of an object.
pub fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        assert!(validate_name("demo-1.example", false).is_empty());
        assert_eq!(
            validate_name("Demo", false)[0].to_string(),
            format!("metadata.name: Invalid value: \"Demo\": {SUBDOMAIN_MESSAGE}")
        );
        assert!(!validate_name("a.b", true).is_empty());
    }

    /// [API-17] empty collections are dropped and unknown fields reported.
    #[test]
    fn normalisation() {
        let mut metadata = json!({"name": "x", "labels": {}, "finalizers": [], "foo": 1})
            .as_object()
            .cloned()
            .unwrap();
        assert_eq!(normalize(&mut metadata), ["metadata.foo"]);
        assert_eq!(Value::Object(metadata), json!({"name": "x"}));
    }

    #[test]
    fn owner_references_allow_one_controller() {
        let metadata = json!({"ownerReferences": [
            {"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1", "controller": true},
            {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2", "controller": true}]});
        let errors = validate(metadata.as_object().unwrap());
        assert!(errors[0].to_string().contains("Only one reference can have Controller set to true. Found \"true\" in references for A/a and B/b"));
    }
}
