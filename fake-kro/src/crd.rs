//! RGD → generated CustomResourceDefinition (kro.md §4): identity, the spec schema from
//! SimpleSchema, the status schema inferred from CEL, the built-in `state`/`conditions` fields and
//! printer columns.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::celtype::{self, CelType, Scope};
use crate::expr::{self, Scanned};
use crate::locate::child;
use crate::pluralize::pluralize;
use crate::simpleschema::{self, KroVersion};

/// Settings of the generation that do not come from the RGD.
#[derive(Clone, Debug)]
pub struct CrdOptions {
    pub version: KroVersion,
    /// The `kro.run/kro-version` label value.
    pub kro_version_label: String,
    /// The RGD's uid (for `kro.run/resource-graph-definition-id`).
    pub rgd_uid: String,
}

impl Default for CrdOptions {
    fn default() -> Self {
        Self {
            version: KroVersion::V0_9_3,
            kro_version_label: "v0.9.3".into(),
            rgd_uid: String::new(),
        }
    }
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn object_at(value: &Value, pointer: &str) -> Map<String, Value> {
    value
        .pointer(pointer)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// One status leaf: its path segments and expression.
struct StatusField {
    path: Vec<String>,
    display: String,
    expression: String,
    template: bool,
}

fn walk_status(
    value: &Value,
    path: &mut Vec<String>,
    display: &str,
    fields: &mut Vec<StatusField>,
    literals: &mut Vec<String>,
) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                path.push(key.clone());
                walk_status(value, path, &child(display, key), fields, literals)?;
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(format!("[{i}]"));
                walk_status(item, path, &format!("{display}[{i}]"), fields, literals)?;
                path.pop();
            }
        }
        Value::String(text) => match expr::scan(text)? {
            Scanned::Literal => literals.push(display.to_string()),
            Scanned::Standalone(e) => fields.push(StatusField {
                path: path.clone(),
                display: display.into(),
                expression: e,
                template: false,
            }),
            Scanned::Template(parts) => fields.push(StatusField {
                path: path.clone(),
                display: display.into(),
                expression: expr::template_expression(&parts),
                template: true,
            }),
        },
        _ => literals.push(display.to_string()),
    }
    Ok(())
}

/// Places a leaf schema at its path, creating intermediate objects/arrays.
fn place(root: &mut Map<String, Value>, path: &[String], leaf: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        root.insert(first.clone(), leaf);
        return;
    }
    let is_index = rest.first().is_some_and(|s| s.starts_with('['));
    let node = root.entry(first.clone()).or_insert_with(|| {
        if is_index {
            json!({"type": "array", "items": {"type": "object", "properties": {}}})
        } else {
            json!({"type": "object", "properties": {}})
        }
    });
    let mut target = node;
    let mut rest = rest;
    while let Some(segment) = rest.first().filter(|s| s.starts_with('[')) {
        let _ = segment;
        target = &mut target["items"];
        rest = &rest[1..];
    }
    if rest.is_empty() {
        *target = leaf;
        return;
    }
    if !target.get("properties").is_some_and(Value::is_object) {
        target["properties"] = json!({});
    }
    if let Some(properties) = target["properties"].as_object_mut() {
        place(properties, rest, leaf);
    }
}

/// The schema of `.status.conditions` kro adds.
pub fn conditions_schema() -> Value {
    json!({"type": "array", "items": {"type": "object", "properties": {
        "type": {"type": "string"}, "status": {"type": "string"}, "reason": {"type": "string"},
        "message": {"type": "string"}, "lastTransitionTime": {"type": "string"}, "observedGeneration": {"type": "integer"}
    }}})
}

/// The instance as `schema` sees it.
fn instance_scope_schema(spec: &Value) -> Value {
    json!({"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"},
        "metadata": celtype::metadata_schema(), "spec": spec
    }})
}

/// The resource ids of an RGD and the schema of each resource's kind, when known.
pub fn resource_schemas(rgd: &Value) -> BTreeMap<String, Option<Value>> {
    rgd.pointer("/spec/resources")
        .and_then(Value::as_array)
        .map(|resources| {
            resources
                .iter()
                .filter_map(|r| {
                    let id = r.get("id")?.as_str()?.to_string();
                    let object = r.get("template").or_else(|| r.get("externalRef"))?;
                    let schema = crate::kinds::schema(
                        object.get("apiVersion")?.as_str()?,
                        object.get("kind")?.as_str()?,
                    );
                    Some((id, schema))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The status schema (kro.md §4.3) and the inferred type of each field.
pub fn status_schema(
    rgd: &Value,
    spec_schema: &Value,
    version: KroVersion,
) -> Result<(Value, Vec<(String, CelType)>), String> {
    let mut status = object_at(rgd, "/spec/schema/status");
    if let Some(conditions) = status.remove("conditions") {
        match &conditions {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if !item.is_string() {
                        return Err(format!(
                            "failed to build instance status schema: failed to extract conditions block: status.conditions[{i}] must be a CEL expression string, got {}",
                            go_type(item)
                        ));
                    }
                }
            }
            other => {
                return Err(format!(
                    "failed to build instance status schema: failed to extract conditions block: status.conditions must be a list, got {}",
                    go_type(other)
                ));
            }
        }
    }
    let mut fields = Vec::new();
    let mut literals = Vec::new();
    walk_status(
        &Value::Object(status.clone()),
        &mut Vec::new(),
        "",
        &mut fields,
        &mut literals,
    )
    .map_err(|e| {
        format!(
            "failed to build instance status schema: failed to extract CEL expressions from status: {e}"
        )
    })?;
    if !literals.is_empty() {
        return Err(format!(
            "failed to build instance status schema: status fields without expressions are not supported: [{}]",
            literals.join(" ")
        ));
    }
    let resources = resource_schemas(rgd);
    let scope = Scope {
        schema: instance_scope_schema(spec_schema),
        resources: resources.clone(),
    };
    let mut properties = Map::new();
    let mut types = Vec::new();
    for field in &fields {
        // kro inspects every status expression before it type-checks any: a parse error is
        // the inspection's, with cel-go's display of it.
        let parsed = celtype::parse(&field.expression).map_err(|e| {
            let shown = crate::typecheck::source::parse_errors(&field.expression).unwrap_or(e);
            format!("failed to build instance status schema: status field \"{}\" expression \"{}\": parse error: {shown}", field.display, field.expression)
        })?;
        let identifiers = celtype::identifiers(&parsed);
        let unknown: Vec<&String> = identifiers
            .iter()
            .filter(|id| {
                let schema_allowed = *id == "schema" && version >= KroVersion::V0_9_3;
                !(resources.contains_key(*id) || schema_allowed)
            })
            .collect();
        if !unknown.is_empty() {
            let list: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
            return Err(format!(
                "failed to build instance status schema: status field \"{}\" expression \"{}\": references unknown identifiers: [{}]",
                field.display,
                field.expression,
                list.join(" ")
            ));
        }
        if identifiers.is_empty() {
            let what = if version >= KroVersion::V0_9_3 {
                "a resource or schema"
            } else {
                "a resource"
            };
            return Err(format!(
                "failed to create instance node: instance status field must refer to {what}: status.{}",
                field.display
            ));
        }
        let inferred = if field.template {
            CelType::String
        } else {
            celtype::infer(&parsed, &scope)
        };
        place(&mut properties, &field.path, celtype::to_openapi(&inferred));
        types.push((field.display.clone(), inferred));
    }
    properties
        .entry("conditions")
        .or_insert_with(conditions_schema);
    properties
        .entry("state")
        .or_insert_with(|| json!({"type": "string"}));
    Ok((json!({"type": "object", "properties": properties}), types))
}

fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// A valid label value (kro replaces `+` in its version label).
fn label_value(version: &str) -> String {
    version.replace('+', "-")
}

/// The CRD kro generates for an RGD.
pub fn generate(rgd: &Value, options: &CrdOptions) -> Result<Value, String> {
    let rgd_name = str_at(rgd, "/metadata/name").unwrap_or_default();
    let kind = str_at(rgd, "/spec/schema/kind").unwrap_or_default();
    let api_version = str_at(rgd, "/spec/schema/apiVersion").unwrap_or_default();
    let group = str_at(rgd, "/spec/schema/group")
        .filter(|g| !g.is_empty())
        .unwrap_or("kro.run");
    let scope = str_at(rgd, "/spec/schema/scope")
        .filter(|s| !s.is_empty())
        .unwrap_or("Namespaced");
    let spec = object_at(rgd, "/spec/schema/spec");
    let types = object_at(rgd, "/spec/schema/types");
    let spec_schema = simpleschema::spec_schema(&spec, &types, options.version).map_err(|e| {
        format!("failed to build resourcegraphdefinition \"{rgd_name}\": failed to build OpenAPI schema for instance: {e}")
    })?;
    let (status, _) = status_schema(rgd, &spec_schema, options.version)?;
    let plural = pluralize(&kind.to_lowercase());
    let mut labels: Map<String, Value> = object_at(rgd, "/spec/schema/metadata/labels");
    labels.insert("kro.run/owned".into(), json!("true"));
    labels.insert(
        "kro.run/kro-version".into(),
        json!(label_value(&options.kro_version_label)),
    );
    labels.insert(
        "kro.run/resource-graph-definition-id".into(),
        json!(options.rgd_uid),
    );
    labels.insert(
        "kro.run/resource-graph-definition-name".into(),
        json!(rgd_name),
    );
    let mut metadata = json!({"name": format!("{plural}.{group}"), "labels": labels});
    let annotations = object_at(rgd, "/spec/schema/metadata/annotations");
    if !annotations.is_empty() {
        metadata["annotations"] = Value::Object(annotations);
    }
    let columns = match rgd
        .pointer("/spec/schema/additionalPrinterColumns")
        .and_then(Value::as_array)
    {
        Some(custom) if !custom.is_empty() => Value::Array(custom.clone()),
        _ => json!([
            {"name": "State", "type": "string", "description": "The state of a ResourceGraphDefinition instance", "jsonPath": ".status.state"},
            {"name": "Ready", "type": "string", "description": "Whether a ResourceGraphDefinition instance is ready", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
            {"name": "Age", "type": "date", "description": "Age of the resource", "jsonPath": ".metadata.creationTimestamp"}
        ]),
    };
    Ok(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": metadata,
        "spec": {
            "group": group,
            "names": {"kind": kind, "listKind": format!("{kind}List"), "plural": plural, "singular": kind.to_lowercase()},
            "scope": scope,
            "versions": [{
                "name": api_version,
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                    "spec": spec_schema, "status": status
                }}},
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns
            }]
        }
    }))
}
