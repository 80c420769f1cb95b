//! The custom-resource pipeline of a structural schema: pruning, null removal, defaulting,
//! OpenAPI validation and `x-kubernetes-validations` CEL rules.

use std::collections::HashSet;

use regex::Regex;
use serde_json::{Map, Value};

use crate::meta::json_type;
use crate::status::{FieldError, FieldErrorKind, go_quote, go_value};

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Removes every field the schema does not declare; returns their paths.
pub fn prune(value: &mut Value, schema: &Value) -> Vec<String> {
    let mut pruned = Vec::new();
    prune_at(value, schema, "", true, &mut pruned);
    pruned
}

fn prune_at(value: &mut Value, schema: &Value, path: &str, root: bool, pruned: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let embedded = flag(schema, "x-kubernetes-embedded-resource") || root;
            let keys: Vec<String> = object.keys().cloned().collect();
            for key in keys {
                let child_path = join(path, &key);
                if embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    // Type meta and metadata of (embedded) resources follow ObjectMeta's rules,
                    // not the schema's.
                    continue;
                }
                if let Some(child_schema) = properties.and_then(|p| p.get(&key)) {
                    if let Some(child) = object.get_mut(&key) {
                        prune_at(child, child_schema, &child_path, false, pruned);
                    }
                } else if let Some(additional) = additional {
                    if let Some(child) = object.get_mut(&key) {
                        prune_at(child, additional, &child_path, false, pruned);
                    }
                } else if !preserve {
                    object.remove(&key);
                    pruned.push(child_path);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_at(item, item_schema, &format!("{path}[{i}]"), false, pruned);
                }
            }
        }
        _ => {}
    }
}

/// Removes `null` fields whose schema is not nullable, and applies defaults to absent fields
/// whose parent exists.
pub fn default_and_drop_nulls(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(object) => {
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
                if let Some(additional) =
                    schema.get("additionalProperties").filter(|a| a.is_object())
                {
                    object.retain(|_, v| !v.is_null() || flag(additional, "nullable"));
                    object
                        .values_mut()
                        .for_each(|v| default_and_drop_nulls(v, additional));
                }
                return;
            };
            for (key, child_schema) in properties {
                if object.get(key).is_some_and(Value::is_null) && !flag(child_schema, "nullable") {
                    object.remove(key);
                }
                if !object.contains_key(key)
                    && let Some(default) = child_schema.get("default")
                {
                    object.insert(key.clone(), default.clone());
                }
                if let Some(child) = object.get_mut(key) {
                    default_and_drop_nulls(child, child_schema);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                items
                    .iter_mut()
                    .for_each(|item| default_and_drop_nulls(item, item_schema));
            }
        }
        _ => {}
    }
}

/// Validates `value` against the OpenAPI schema; `path` prefixes every field path.
pub fn validate(value: &Value, schema: &Value, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    validate_at(value, schema, path, &mut errors);
    errors
}

fn type_matches(value: &Value, expected: &str) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        "number" => value.is_number(),
        _ => true,
    }
}

fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

fn validate_at(value: &Value, schema: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if value.is_null() {
        if !flag(schema, "nullable")
            && let Some(expected) = schema.get("type").and_then(Value::as_str)
        {
            errors.push(FieldError::new(
                path,
                FieldErrorKind::TypeInvalid,
                Some("\"null\"".into()),
                format!("{path} in body must be of type {expected}: \"null\""),
            ));
        }
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !(value.is_string() || type_matches(value, "integer")) {
            errors.push(FieldError::new(
                path,
                FieldErrorKind::TypeInvalid,
                Some(go_quote(json_type(value))),
                format!(
                    "{path} in body must be of type integer,string: {}",
                    go_quote(json_type(value))
                ),
            ));
            return;
        }
    } else if let Some(expected) = schema.get("type").and_then(Value::as_str)
        && !type_matches(value, expected)
    {
        errors.push(crate::meta::type_error(path, value, expected));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(go_value).collect();
        errors.push(FieldError::new(
            path,
            FieldErrorKind::NotSupported,
            Some(go_value(value)),
            format!("supported values: {}", list.join(", ")),
        ));
    }
    match value {
        Value::Number(n) => {
            let Some(x) = n.as_f64() else { return };
            let exclusive_min = flag(schema, "exclusiveMinimum");
            let exclusive_max = flag(schema, "exclusiveMaximum");
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && (x < min || (exclusive_min && x == min))
            {
                let relation = if exclusive_min {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                errors.push(FieldError::invalid(
                    path,
                    value,
                    format!("{path} in body should be {relation} {}", number_text(min)),
                ));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && (x > max || (exclusive_max && x == max))
            {
                let relation = if exclusive_max {
                    "less than"
                } else {
                    "less than or equal to"
                };
                errors.push(FieldError::invalid(
                    path,
                    value,
                    format!("{path} in body should be {relation} {}", number_text(max)),
                ));
            }
            if let Some(multiple) = schema.get("multipleOf").and_then(Value::as_f64)
                && multiple > 0.0
                && (x / multiple).fract() != 0.0
            {
                errors.push(FieldError::invalid(
                    path,
                    value,
                    format!(
                        "{path} in body should be a multiple of {}",
                        number_text(multiple)
                    ),
                ));
            }
        }
        Value::String(s) => {
            let length = s.chars().count();
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && length as u64 > max
            {
                errors.push(FieldError::new(
                    path,
                    FieldErrorKind::TooLong,
                    None,
                    format!("may not be more than {max} bytes"),
                ));
            }
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && (length as u64) < min
            {
                errors.push(FieldError::invalid(
                    path,
                    value,
                    format!("{path} in body should be at least {min} chars long"),
                ));
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                match Regex::new(pattern) {
                    Ok(re) if !re.is_match(s) => errors.push(FieldError::invalid(
                        path,
                        value,
                        format!("{path} in body should match '{pattern}'"),
                    )),
                    _ => {}
                }
            }
            if let Some(format) = schema.get("format").and_then(Value::as_str)
                && !format_matches(format, s)
            {
                errors.push(FieldError::invalid(
                    path,
                    value,
                    format!("{path} in body must be of type {format}: {}", go_quote(s)),
                ));
            }
        }
        Value::Array(items) => {
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                errors.push(FieldError::new(
                    path,
                    FieldErrorKind::TooMany,
                    Some(items.len().to_string()),
                    format!("must have at most {max} items"),
                ));
            }
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                errors.push(FieldError::new(
                    path,
                    FieldErrorKind::Invalid,
                    Some(items.len().to_string()),
                    format!("{path} in body should have at least {min} items"),
                ));
            }
            let list_type = schema.get("x-kubernetes-list-type").and_then(Value::as_str);
            if flag(schema, "uniqueItems") || list_type == Some("set") {
                let mut seen = HashSet::new();
                for (i, item) in items.iter().enumerate() {
                    if !seen.insert(item.to_string()) {
                        errors.push(FieldError::new(
                            format!("{path}[{i}]"),
                            FieldErrorKind::Duplicate,
                            Some(go_value(item)),
                            "",
                        ));
                    }
                }
            }
            if list_type == Some("map") {
                let keys: Vec<&str> = schema
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|k| k.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let mut seen = HashSet::new();
                for (i, item) in items.iter().enumerate() {
                    let key: Vec<String> = keys
                        .iter()
                        .map(|k| item.get(*k).map(Value::to_string).unwrap_or_default())
                        .collect();
                    if !seen.insert(key.clone()) {
                        let rendered: Vec<String> = keys
                            .iter()
                            .zip(&key)
                            .map(|(k, v)| format!("\"{k}\":{v}"))
                            .collect();
                        errors.push(FieldError::new(
                            format!("{path}[{i}]"),
                            FieldErrorKind::Duplicate,
                            Some(format!(
                                "map[string]interface {{}}{{{}}}",
                                rendered.join(", ")
                            )),
                            "",
                        ));
                    }
                }
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate_at(item, item_schema, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Object(object) => {
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for field in required.iter().filter_map(Value::as_str) {
                    if !object.contains_key(field) {
                        errors.push(FieldError::required(join(path, field)));
                    }
                }
            }
            if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
                && object.len() as u64 > max
            {
                errors.push(FieldError::new(
                    path,
                    FieldErrorKind::TooMany,
                    Some(object.len().to_string()),
                    format!("must have at most {max} items"),
                ));
            }
            if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
                && (object.len() as u64) < min
            {
                errors.push(FieldError::new(
                    path,
                    FieldErrorKind::Invalid,
                    Some(object.len().to_string()),
                    format!("{path} in body should have at least {min} properties"),
                ));
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, child) in object {
                let child_path = join(path, key);
                if let Some(child_schema) = properties.and_then(|p| p.get(key)) {
                    validate_at(child, child_schema, &child_path, errors);
                } else if let Some(additional) = additional {
                    validate_at(child, additional, &child_path, errors);
                }
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

fn format_matches(format: &str, s: &str) -> bool {
    match format {
        "date-time" => s.parse::<k8s_openapi::jiff::Timestamp>().is_ok(),
        "byte" => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(s).is_ok()
        }
        "int-or-string" => true,
        _ => true,
    }
}

/// Whether any node of the schema carries CEL rules.
pub fn has_cel_rules(schema: &Value) -> bool {
    match schema {
        Value::Object(object) => {
            object.contains_key("x-kubernetes-validations") || object.values().any(has_cel_rules)
        }
        Value::Array(items) => items.iter().any(has_cel_rules),
        _ => false,
    }
}

/// The value at a field path of an error (`spec.ports[1].name`), if the object has one.
fn value_at_path<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = object;
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        let mut parts = segment.split('[');
        let name = parts.next().unwrap_or(segment);
        if !name.is_empty() {
            node = node.get(name)?;
        }
        for index in parts {
            let index: usize = index.trim_end_matches(']').parse().ok()?;
            node = node.get(index)?;
        }
    }
    Some(node)
}

/// Evaluates the schema's CEL rules (transition rules against `old`). A failed rule is reported
/// as kube-apiserver 1.36 does: with the field's value when it is a scalar
/// (`spec.id: Invalid value: "two": id is immutable`), without one for an object or a list
/// (`spec: Invalid value: low must not exceed high`).
pub fn validate_cel(schema: &Value, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    cel_failures(schema, CelScope::AsGiven, object, old)
}

/// Which part of a schema the CEL rules of a write are evaluated over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum CelScope {
    AsGiven,
    /// `/status` writes: only `status`, without the root's rules.
    Status,
    /// Writes of the main resource: everything but `status`.
    AllButStatus,
}

/// How many compiled schemas a thread keeps before it starts over (a server serves a few
/// dozen CRD versions; the bound only guards against a stream of distinct schemas).
const COMPILED_SCHEMAS_PER_THREAD: usize = 256;

/// A schema as given and its rules compiled for one scope.
type CompiledEntry = (Value, std::rc::Rc<kube_cel::CompiledSchema>);

/// CEL rules compiled once per (schema, scope) and kept per thread: a `kube_cel::Validator`
/// registers every Kubernetes CEL function when built, and compiling the rules of a schema
/// walks and parses all of them — done for every write, that was most of a write's validation
/// cost. Entries are found by a hash of the schema and confirmed by comparing it, so a changed
/// CRD schema compiles anew.
struct CelCache {
    validator: kube_cel::Validator,
    compiled: std::collections::HashMap<(u64, CelScope), Vec<CompiledEntry>>,
    entries: usize,
}

thread_local! {
    static CEL_CACHE: std::cell::RefCell<Option<CelCache>> = const { std::cell::RefCell::new(None) };
}

fn cel_failures(
    schema: &Value,
    scope: CelScope,
    object: &Value,
    old: Option<&Value>,
) -> Vec<FieldError> {
    let result = CEL_CACHE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let cache = slot.get_or_insert_with(|| CelCache {
            validator: kube_cel::Validator::new(),
            compiled: std::collections::HashMap::new(),
            entries: 0,
        });
        let key = (schema_hash(schema), scope);
        let found = cache
            .compiled
            .get(&key)
            .and_then(|entries| entries.iter().find(|(s, _)| s == schema))
            .map(|(_, compiled)| compiled.clone());
        let compiled = match found {
            Some(compiled) => compiled,
            None => {
                if cache.entries >= COMPILED_SCHEMAS_PER_THREAD {
                    cache.compiled.clear();
                    cache.entries = 0;
                }
                let scoped = match scope {
                    CelScope::AsGiven => schema.clone(),
                    CelScope::Status => scope_schema(schema, true),
                    CelScope::AllButStatus => scope_schema(schema, false),
                };
                let compiled = std::rc::Rc::new(kube_cel::compile_schema(&scoped));
                cache
                    .compiled
                    .entry(key)
                    .or_default()
                    .push((schema.clone(), compiled.clone()));
                cache.entries += 1;
                compiled
            }
        };
        cache.validator.validate_compiled(&compiled, object, old)
    });
    let Err(failures) = result else {
        return Vec::new();
    };
    failures
        .iter()
        .map(|failure| {
            let value = value_at_path(object, &failure.field_path)
                .filter(|v| !v.is_object() && !v.is_array())
                .map(go_value);
            let mut error = FieldError::new(
                failure.field_path.clone(),
                FieldErrorKind::Invalid,
                value,
                failure.message.clone(),
            );
            if failure.reason.as_deref() == Some("FieldValueForbidden") {
                error.kind = FieldErrorKind::Forbidden;
            } else if failure.reason.as_deref() == Some("FieldValueRequired") {
                error.kind = FieldErrorKind::Required;
            }
            error
        })
        .collect()
}

/// The message added when CEL rules were skipped because of blocking errors.
pub const CEL_SKIPPED: &str = "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

/// Prune, drop nulls, default, validate and evaluate CEL: the whole write pipeline of a custom
/// resource. Returns the pruned paths (for field-validation warnings) and the errors.
pub fn admit(
    object: &mut Value,
    schema: &Value,
    old: Option<&Value>,
    only_status: bool,
) -> (Vec<String>, Vec<FieldError>) {
    let pruned = prune(object, schema);
    default_and_drop_nulls(object, schema);
    let mut errors = Vec::new();
    let root = schema.get("properties").and_then(Value::as_object);
    for (key, child_schema) in root.into_iter().flatten() {
        if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if only_status != (key == "status") {
            continue;
        }
        if let Some(child) = object.get(key) {
            validate_at(child, child_schema, key, &mut errors);
        }
    }
    if !only_status && let Some(required) = schema.get("required").and_then(Value::as_array) {
        for field in required.iter().filter_map(Value::as_str) {
            if object.get(field).is_none() {
                errors.push(FieldError::required(field));
            }
        }
    }
    if has_cel_rules(schema) {
        if errors.iter().any(|e| e.kind.blocks_cel()) {
            errors.push(FieldError::new(
                "<nil>",
                FieldErrorKind::Invalid,
                Some("\"null\"".into()),
                CEL_SKIPPED,
            ));
        } else {
            let scope = if only_status {
                CelScope::Status
            } else {
                CelScope::AllButStatus
            };
            errors.extend(cel_failures(schema, scope, object, old));
        }
    }
    (pruned, errors)
}

/// A hash of a JSON value's content, without serializing it.
fn schema_hash(value: &Value) -> u64 {
    use std::hash::{Hash, Hasher};
    fn feed(value: &Value, hasher: &mut std::hash::DefaultHasher) {
        match value {
            Value::Null => 0u8.hash(hasher),
            Value::Bool(b) => (1u8, b).hash(hasher),
            Value::Number(n) => (2u8, n.as_f64().map(f64::to_bits)).hash(hasher),
            Value::String(s) => (3u8, s).hash(hasher),
            Value::Array(items) => {
                (4u8, items.len()).hash(hasher);
                for item in items {
                    feed(item, hasher);
                }
            }
            Value::Object(map) => {
                (5u8, map.len()).hash(hasher);
                for (key, item) in map {
                    key.hash(hasher);
                    feed(item, hasher);
                }
            }
        }
    }
    let mut hasher = std::hash::DefaultHasher::new();
    feed(value, &mut hasher);
    hasher.finish()
}

/// The schema restricted to `status` (for `/status` writes) or to everything but `status`.
fn scope_schema(schema: &Value, only_status: bool) -> Value {
    let mut scoped = schema.clone();
    if let Some(properties) = scoped.get_mut("properties").and_then(Value::as_object_mut) {
        let filtered: Map<String, Value> = properties
            .iter()
            .filter(|(k, _)| (k.as_str() == "status") == only_status)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        *properties = filtered;
    }
    if only_status && let Some(object) = scoped.as_object_mut() {
        object.remove("x-kubernetes-validations");
    }
    scoped
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn widget_schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string", "minLength": 3, "maxLength": 5},
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "level": {"type": "string", "enum": ["debug", "info"]},
                "v": {"type": "string", "pattern": "^v[0-9]+$"},
                "list": {"type": "array", "maxItems": 3, "minItems": 1, "items": {"type": "string"}},
                "set": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "withDefault": {"type": "string", "default": "d"},
                "parent": {"type": "object", "default": {}, "properties": {"child": {"type": "integer", "default": 7}}},
                "nullable": {"type": "string", "nullable": true, "default": "x"},
                "id": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "field is immutable"}]}
            }},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
        }})
    }

    fn messages(errors: &[FieldError]) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    /// [API-19] T05 T22: pruning keeps preserve-unknown subtrees, defaults cascade, nullable
    /// nulls are kept.
    #[test]
    fn prune_and_default() {
        let mut object = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "w"},
            "spec": {"name": "abc", "foo": 1, "free": {"a": {}}, "nullable": null, "size": null}});
        let pruned = prune(&mut object, &widget_schema());
        assert_eq!(pruned, ["spec.foo"]);
        default_and_drop_nulls(&mut object, &widget_schema());
        assert_eq!(
            object["spec"],
            json!({"name": "abc", "free": {"a": {}}, "nullable": null,
            "withDefault": "d", "parent": {"child": 7}})
        );
    }

    /// [API-08] E10 schema messages, byte for byte.
    #[test]
    fn validation_messages() {
        let spec = json!({"size": "string", "level": "x", "v": "x", "name": "a", "list": []});
        let errors = validate(&spec, &widget_schema()["properties"]["spec"], "spec");
        assert_eq!(
            messages(&errors),
            [
                "spec.level: Unsupported value: \"x\": supported values: \"debug\", \"info\"",
                "spec.list: Invalid value: 0: spec.list in body should have at least 1 items",
                "spec.name: Invalid value: \"a\": spec.name in body should be at least 3 chars long",
                "spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\"",
                "spec.v: Invalid value: \"x\": spec.v in body should match '^v[0-9]+$'",
            ]
        );
        let spec = json!({"size": 0, "name": "abcdef", "list": ["a", "b", "c", "d", "e"], "set": ["a", "b", "a"]});
        assert_eq!(
            messages(&validate(
                &spec,
                &widget_schema()["properties"]["spec"],
                "spec"
            )),
            [
                "spec.list: Too many: 5: must have at most 3 items",
                "spec.name: Too long: may not be more than 5 bytes",
                "spec.set[2]: Duplicate value: \"a\"",
                "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1",
            ]
        );
        assert_eq!(
            messages(&validate(
                &json!({}),
                &widget_schema()["properties"]["spec"],
                "spec"
            )),
            ["spec.name: Required value"]
        );
        // T21: an integer field accepts 1.0 but not 1.5.
        assert!(
            validate(
                &json!({"name": "abc", "size": 1.0}),
                &widget_schema()["properties"]["spec"],
                "spec"
            )
            .is_empty()
        );
        assert_eq!(
            messages(&validate(
                &json!({"name": "abc", "size": 1.5}),
                &widget_schema()["properties"]["spec"],
                "spec"
            )),
            [
                "spec.size: Invalid value: \"number\": spec.size in body must be of type integer: \"number\""
            ]
        );
    }

    /// [API-08] T37: a transition rule rejects a change with the field's value (kube-apiserver
    /// 1.36; 1.32 printed the schema type).
    #[test]
    fn cel_transition_rule() {
        let schema = widget_schema();
        let old = json!({"spec": {"name": "abc", "id": "a"}});
        let mut new = json!({"spec": {"name": "abc", "id": "b"}});
        let (_, errors) = admit(&mut new, &schema, Some(&old), false);
        assert_eq!(
            messages(&errors),
            ["spec.id: Invalid value: \"b\": field is immutable"]
        );
        let mut created = json!({"spec": {"name": "abc", "id": "b"}});
        assert!(admit(&mut created, &schema, None, false).1.is_empty());
    }

    /// [API-08] The compiled rules are kept per schema: a CRD whose rule changed is validated
    /// by the new rule, not the one compiled for the old schema; the scope of a `/status`
    /// write and of a main write are kept apart.
    #[test]
    fn cel_rules_compiled_once_follow_a_changed_schema_and_the_scope() {
        let with_rule = |rule: &str| {
            json!({"type": "object", "properties": {
                "spec": {"type": "object", "properties": {"size": {"type": "integer"}},
                    "x-kubernetes-validations": [{"rule": rule, "message": "size out of range"}]},
                "status": {"type": "object", "properties": {"size": {"type": "integer"}},
                    "x-kubernetes-validations": [{"rule": "self.size < 10", "message": "status size too big"}]}
            }})
        };
        let object = json!({"spec": {"size": 1}, "status": {"size": 20}});
        let strict = with_rule("self.size > 1");
        let loose = with_rule("self.size > 0");
        for _ in 0..2 {
            let (_, errors) = admit(&mut object.clone(), &strict, None, false);
            assert_eq!(
                messages(&errors),
                ["spec: Invalid value: size out of range"]
            );
            let (_, errors) = admit(&mut object.clone(), &loose, None, false);
            assert!(errors.is_empty(), "{:?}", messages(&errors));
            let (_, errors) = admit(&mut object.clone(), &loose, None, true);
            assert_eq!(
                messages(&errors),
                ["status: Invalid value: status size too big"]
            );
        }
    }
}
