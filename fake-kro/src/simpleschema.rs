//! SimpleSchema → OpenAPI v3, as kro v0.9.3 converts `spec.schema.spec` and `spec.schema.types`
//! (kro.md §2): the type grammar, the marker tokenizer, marker effects and the object rules.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use serde_json::{Map, Value, json};

/// Which kro release to mimic where releases differ (kro.md §10).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum KroVersion {
    V0_9_1,
    #[default]
    V0_9_3,
}

const MAX_NESTING: usize = 16;

const KNOWN_MARKERS: &[&str] = &[
    "required",
    "default",
    "description",
    "minimum",
    "maximum",
    "validation",
    "enum",
    "immutable",
    "pattern",
    "uniqueItems",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "listType",
    "listMapKey",
];

/// One `key=value` marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    pub key: String,
    pub value: String,
}

/// Go's `strconv.ParseBool`.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn bool_error(value: &str) -> String {
    format!("strconv.ParseBool: parsing \"{value}\": invalid syntax")
}

/// Removes the quotes of a quoted marker value: `\"` → `"`, `\\` → `\`, other escapes kept.
fn unquote(raw: &str) -> String {
    let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return raw.to_string();
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Tokenizes the text after `|` into markers (kro.md §2.2).
pub fn parse_markers(text: &str) -> Result<Vec<Marker>, String> {
    let mut markers = Vec::new();
    let mut buffer = String::new();
    let mut key: Option<String> = None;
    let mut in_quotes = false;
    let mut escaped = false;
    let mut depth: i32 = 0;
    let close = |key: &mut Option<String>, buffer: &mut String, markers: &mut Vec<Marker>| {
        if let Some(k) = key.take() {
            let value = unquote(buffer.trim());
            markers.push(Marker { key: k, value });
            buffer.clear();
        }
    };
    for c in text.chars() {
        if in_quotes {
            buffer.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quotes = false;
            }
            continue;
        }
        match c {
            '=' if key.is_none() && depth == 0 => {
                let k = buffer.trim().to_string();
                if k.is_empty() {
                    return Err("empty marker key".into());
                }
                if !KNOWN_MARKERS.contains(&k.as_str()) {
                    return Err(format!("invalid marker key \"{k}\": unknown marker: {k}"));
                }
                key = Some(k);
                buffer.clear();
            }
            '"' => {
                in_quotes = true;
                buffer.push(c);
            }
            '{' | '[' => {
                depth += 1;
                buffer.push(c);
            }
            '}' | ']' => {
                depth -= 1;
                if depth < 0 {
                    return Err("unmatched closing bracket/brace".into());
                }
                buffer.push(c);
            }
            c if c.is_whitespace() && depth == 0 => {
                if key.is_some() {
                    close(&mut key, &mut buffer, &mut markers);
                } else if !buffer.trim().is_empty() {
                    // A bare word followed by whitespace: it becomes the key text of the next `=`.
                    buffer.push(c);
                }
            }
            c => buffer.push(c),
        }
    }
    if key.is_none() {
        let rest = buffer.trim();
        if !rest.is_empty() {
            return Err(format!("marker key '{rest}' without a value"));
        }
    }
    if in_quotes {
        return Err("unclosed quote".into());
    }
    if depth > 0 {
        return Err("unclosed bracket/brace".into());
    }
    close(&mut key, &mut buffer, &mut markers);
    Ok(markers)
}

/// A built custom type: its schema, and whether its alias markers make users required.
#[derive(Clone, Debug)]
struct CustomType {
    schema: Value,
    required: bool,
}

/// The schema converter for one RGD: its built custom types and target version.
#[derive(Debug)]
pub struct Converter {
    version: KroVersion,
    types: BTreeMap<String, CustomType>,
}

fn type_name(schema: &Value) -> String {
    schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Type names a type string refers to (for the custom-type dependency graph).
fn referenced_types(type_string: &str, out: &mut BTreeSet<String>) {
    let expr = type_string
        .split_once('|')
        .map_or(type_string, |(t, _)| t)
        .trim();
    let mut expr = expr;
    loop {
        if let Some(rest) = expr.strip_prefix("[]") {
            expr = rest;
        } else if let Some(rest) = expr.strip_prefix("map[string]") {
            expr = rest;
        } else {
            break;
        }
    }
    if !expr.is_empty()
        && !matches!(expr, "string" | "integer" | "boolean" | "float" | "object")
        && !expr.starts_with("map[")
    {
        out.insert(expr.to_string());
    }
}

fn collect_references(definition: &Value, out: &mut BTreeSet<String>) {
    match definition {
        Value::String(s) => referenced_types(s, out),
        Value::Object(map) => map.values().for_each(|v| collect_references(v, out)),
        _ => {}
    }
}

fn unexpected(value: &Value) -> String {
    let name = match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int",
        Value::Number(_) => "float64",
        Value::Array(_) => "sequence",
        Value::String(_) => "string",
        Value::Object(_) => "map",
    };
    format!("unexpected type: {name}")
}

/// Finds a cycle with a depth-first search in sorted order; returns its path.
pub(crate) fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(position) = stack.iter().position(|n| n == node) {
            let mut cycle: Vec<String> = stack[position..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, edges, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

impl Converter {
    /// Builds the custom types of `spec.schema.types` (dependencies first).
    pub fn new(types: &Map<String, Value>, version: KroVersion) -> Result<Self, String> {
        let mut edges: BTreeMap<String, BTreeSet<String>> =
            types.keys().map(|k| (k.clone(), BTreeSet::new())).collect();
        for (name, definition) in types {
            let mut references = BTreeSet::new();
            collect_references(definition, &mut references);
            for reference in references {
                if reference == *name {
                    return Err("self references are not allowed".into());
                }
                if !types.contains_key(&reference) {
                    return Err(format!("node {reference} does not exist"));
                }
                if let Some(e) = edges.get_mut(name) {
                    e.insert(reference);
                }
                if let Some(cycle) = find_cycle(&edges) {
                    return Err(format!(
                        "cyclic dependency in type {name}: graph contains a cycle: {}",
                        cycle.join(" -> ")
                    ));
                }
            }
        }
        // Build in dependency order: repeatedly take the sorted types whose dependencies are built.
        let mut converter = Self {
            version,
            types: BTreeMap::new(),
        };
        let mut remaining: BTreeSet<String> = types.keys().cloned().collect();
        while !remaining.is_empty() {
            let ready: Vec<String> = remaining
                .iter()
                .filter(|n| {
                    edges
                        .get(*n)
                        .is_none_or(|deps| deps.iter().all(|d| converter.types.contains_key(d)))
                })
                .cloned()
                .collect();
            if ready.is_empty() {
                return Err("graph contains a cycle".into());
            }
            for name in ready {
                remaining.remove(&name);
                let definition = &types[&name];
                let built = match definition {
                    Value::String(type_string) => {
                        let mut required = false;
                        let schema = converter
                            .field(&name, type_string, &mut |_| required = true)
                            .map_err(|e| format!("building schema for {name}: {e}"))?;
                        CustomType { schema, required }
                    }
                    Value::Object(fields) => {
                        let schema = converter
                            .object(fields)
                            .map_err(|e| format!("building schema for {name}: {e}"))?;
                        CustomType {
                            schema,
                            required: false,
                        }
                    }
                    other => return Err(format!("parsing type {name}: {}", unexpected(other))),
                };
                converter.types.insert(name, built);
            }
        }
        Ok(converter)
    }

    /// The schema of an inline object (a map of fields): kro's `buildSchema`.
    pub fn object(&self, fields: &Map<String, Value>) -> Result<Value, String> {
        let mut properties = Map::new();
        let mut required: BTreeSet<String> = BTreeSet::new();
        for (name, definition) in fields {
            let schema = match definition {
                Value::String(type_string) => {
                    let mut make_required = false;
                    let schema = self
                        .field(name, type_string, &mut |_| make_required = true)
                        .map_err(|e| format!("field {name}: {e}"))?;
                    if make_required {
                        required.insert(name.clone());
                    }
                    schema
                }
                Value::Object(nested) => self
                    .object(nested)
                    .map_err(|e| format!("field {name}: {e}"))?,
                other => return Err(format!("field {name}: {}", unexpected(other))),
            };
            properties.insert(name.clone(), schema);
        }
        let mut schema = json!({"type": "object"});
        if !properties.is_empty() {
            let any_default = properties.values().any(|p| p.get("default").is_some());
            if required.is_empty() && any_default {
                schema["default"] = json!({});
            }
            schema["properties"] = Value::Object(properties);
        }
        if !required.is_empty() {
            schema["required"] = json!(required.into_iter().collect::<Vec<_>>());
        }
        Ok(schema)
    }

    /// The schema of one field from its type string; `require` is called when the field is
    /// required in its parent.
    fn field(
        &self,
        _name: &str,
        type_string: &str,
        require: &mut dyn FnMut(&str),
    ) -> Result<Value, String> {
        let (expr, markers) = match type_string.split_once('|') {
            Some((t, m)) => (t.trim(), Some(m)),
            None => (type_string.trim(), None),
        };
        let (mut schema, alias_required) = self.type_expr(expr, type_string, 0)?;
        if alias_required {
            require(_name);
        }
        if let Some(markers) = markers {
            for marker in parse_markers(markers)? {
                self.apply_marker(&mut schema, &marker, require, _name)?;
            }
        }
        let list_type = schema
            .get("x-kubernetes-list-type")
            .and_then(Value::as_str)
            .map(str::to_string);
        if schema.get("x-kubernetes-list-map-keys").is_some() {
            match list_type.as_deref() {
                None => {
                    return Err(
                        "listMapKey set while listType is unset, listType must be set to map"
                            .into(),
                    );
                }
                Some("map") => {}
                Some(other) => {
                    return Err(format!(
                        "listMapKey set while listType is set to {other}, listType must be set to map"
                    ));
                }
            }
        }
        Ok(schema)
    }

    fn type_expr(&self, expr: &str, whole: &str, depth: usize) -> Result<(Value, bool), String> {
        if depth > MAX_NESTING {
            return Err(format!(
                "type nesting too deep (max {MAX_NESTING}): {whole}"
            ));
        }
        if expr.is_empty() {
            return Err(if depth == 0 {
                "empty type".into()
            } else {
                "empty slice element type".into()
            });
        }
        if let Some(element) = expr.strip_prefix("[]") {
            if element.trim().is_empty() {
                return Err("empty slice element type".into());
            }
            let (items, _) = self.type_expr(element.trim(), whole, depth + 1)?;
            return Ok((json!({"type": "array", "items": items}), false));
        }
        if let Some(rest) = expr.strip_prefix("map[") {
            let Some(value) = rest.strip_prefix("string]") else {
                return Err("map key must be string".into());
            };
            if value.trim().is_empty() {
                return Err("map value type is required".into());
            }
            let (values, _) = self.type_expr(value.trim(), whole, depth + 1)?;
            return Ok((
                json!({"type": "object", "additionalProperties": values}),
                false,
            ));
        }
        let schema = match expr {
            "string" => json!({"type": "string"}),
            "integer" => json!({"type": "integer"}),
            "boolean" => json!({"type": "boolean"}),
            "float" if self.version >= KroVersion::V0_9_3 => json!({"type": "number"}),
            "float" => json!({"type": "float"}),
            "object" => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
            custom => {
                let built = self
                    .types
                    .get(custom)
                    .ok_or_else(|| format!("unknown type: {custom}"))?;
                return Ok((built.schema.clone(), built.required));
            }
        };
        Ok((schema, false))
    }

    fn apply_marker(
        &self,
        schema: &mut Value,
        marker: &Marker,
        require: &mut dyn FnMut(&str),
        name: &str,
    ) -> Result<(), String> {
        let value = marker.value.as_str();
        let kind = type_name(schema);
        match marker.key.as_str() {
            "required" => {
                let required = parse_bool(value).ok_or_else(|| {
                    format!(
                        "failed to parse required marker value: {}",
                        bool_error(value)
                    )
                })?;
                if required {
                    require(name);
                }
            }
            "default" => {
                let default = match kind.as_str() {
                    "string" => Value::String(value.to_string()),
                    "integer" => json!(value.parse::<i64>().map_err(|_| format!(
                        "default value must be a valid integer, got: {value}"
                    ))?),
                    "number" | "float" => number(value.parse::<f64>().map_err(|_| {
                        format!("default value must be a valid number, got: {value}")
                    })?),
                    "boolean" => json!(parse_bool(value).ok_or_else(|| format!(
                        "default value must be a valid boolean, got: {value}"
                    ))?),
                    _ => serde_json::from_str(value)
                        .map_err(|e| format!("failed to unmarshal default value: {e}"))?,
                };
                schema["default"] = default;
            }
            "description" => schema["description"] = json!(value),
            "minimum" | "maximum" => {
                let n: f64 = value.parse().map_err(|_| format!("failed to parse {} enum value: strconv.ParseFloat: parsing \"{value}\": invalid syntax", marker.key))?;
                schema[marker.key.as_str()] = number(n);
            }
            "enum" => {
                let mut values = Vec::new();
                for item in value.split(',') {
                    let item = item.trim();
                    if item.is_empty() {
                        return Err("empty enum values are not allowed".into());
                    }
                    match kind.as_str() {
                        "string" => values.push(json!(item)),
                        "integer" => values.push(json!(item.parse::<i64>().map_err(|_| format!("failed to parse integer enum value: strconv.ParseInt: parsing \"{item}\": invalid syntax"))?)),
                        other => return Err(format!("enum values only supported for string and integer types, got type: {other}")),
                    }
                }
                schema["enum"] = Value::Array(values);
            }
            "pattern" => {
                if value.is_empty() {
                    return Err("pattern marker value cannot be empty".into());
                }
                if kind != "string" {
                    return Err(format!(
                        "pattern marker is only valid for string types, got type: {kind}"
                    ));
                }
                Regex::new(value).map_err(|e| format!("invalid pattern regex: {e}"))?;
                schema["pattern"] = json!(value);
            }
            "minLength" | "maxLength" => {
                if kind != "string" {
                    return Err(format!(
                        "{} marker is only valid for string types, got type: {kind}",
                        marker.key
                    ));
                }
                let n: i64 = value.parse().map_err(|_| format!("failed to parse {} value: strconv.ParseInt: parsing \"{value}\": invalid syntax", marker.key))?;
                schema[marker.key.as_str()] = json!(n);
            }
            "minItems" | "maxItems" => {
                if kind != "array" {
                    return Err(format!(
                        "{} marker is only valid for array types, got type: {kind}",
                        marker.key
                    ));
                }
                let n: i64 = value.parse().map_err(|_| format!("failed to parse {} value: strconv.ParseInt: parsing \"{value}\": invalid syntax", marker.key))?;
                schema[marker.key.as_str()] = json!(n);
            }
            "uniqueItems" => {
                if kind != "array" {
                    return Err(format!(
                        "uniqueItems marker is only valid for array types, got type: {kind}"
                    ));
                }
                let unique = parse_bool(value).ok_or_else(|| {
                    format!(
                        "failed to parse uniqueItems marker value: {}",
                        bool_error(value)
                    )
                })?;
                if unique {
                    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
                        Some(t) if t != "set" => {
                            return Err(format!("cannot set unique when listType is set to {t}"));
                        }
                        _ => schema["x-kubernetes-list-type"] = json!("set"),
                    }
                }
            }
            "listType" => {
                if kind != "array" {
                    return Err("listType marker only applies to array types".into());
                }
                if !matches!(value, "atomic" | "set" | "map") {
                    return Err(format!(
                        "unsupported value for listType {value}, needs to be one of atomic, set, or map"
                    ));
                }
                if let Some(old) = schema.get("x-kubernetes-list-type").and_then(Value::as_str)
                    && old != value
                {
                    return Err(format!(
                        "listType attempting to overwrite set type of {old}, this can happen if you set contradictory markers like unique=true | listType=map"
                    ));
                }
                schema["x-kubernetes-list-type"] = json!(value);
            }
            "listMapKey" => {
                if kind != "array" {
                    return Err("listMapKey marker only applies to array types".into());
                }
                let keys = schema.as_object_mut().map(|o| {
                    o.entry("x-kubernetes-list-map-keys")
                        .or_insert_with(|| json!([]))
                });
                if let Some(Value::Array(keys)) = keys {
                    if keys.iter().any(|k| k == value) {
                        return Err(format!("duplicate listMapKey marker, value {value}"));
                    }
                    keys.push(json!(value));
                }
            }
            "immutable" => {
                let immutable = parse_bool(value).ok_or_else(|| {
                    format!(
                        "failed to parse immutable marker value: {}",
                        bool_error(value)
                    )
                })?;
                if immutable {
                    push_rule(
                        schema,
                        json!({"rule": "self == oldSelf", "message": "field is immutable"}),
                        false,
                    );
                }
            }
            "validation" => {
                if value.trim().is_empty() {
                    return Err("validation failed".into());
                }
                let replace = self.version < KroVersion::V0_9_3;
                push_rule(
                    schema,
                    json!({"rule": value, "message": "validation failed"}),
                    replace,
                );
            }
            other => {
                return Err(format!(
                    "invalid marker key \"{other}\": unknown marker: {other}"
                ));
            }
        }
        Ok(())
    }
}

/// A JSON number, written without a fraction when whole (as Go marshals float64).
pub fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        #[allow(clippy::cast_possible_truncation)]
        let i = n as i64;
        json!(i)
    } else {
        json!(n)
    }
}

fn push_rule(schema: &mut Value, rule: Value, replace: bool) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if replace {
        object.insert("x-kubernetes-validations".into(), json!([rule]));
        return;
    }
    let rules = object
        .entry("x-kubernetes-validations")
        .or_insert_with(|| json!([]));
    if let Value::Array(rules) = rules {
        rules.push(rule);
    }
}

/// Converts `spec.schema.spec` (with `spec.schema.types`) to the instance's spec schema. Errors
/// are the text after `failed to build OpenAPI schema for instance: `.
pub fn spec_schema(
    spec: &Map<String, Value>,
    types: &Map<String, Value>,
    version: KroVersion,
) -> Result<Value, String> {
    Converter::new(types, version)?.object(spec)
}
