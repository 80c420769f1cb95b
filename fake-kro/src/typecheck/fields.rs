//! The `${…}` fields of a template, found the way kro's parser finds them: walking the template
//! beside the schema of its kind (each value must fit the schema's type there, and every field must
//! exist in it), or without a schema for CRD templates, external references and status. Also the
//! expected CEL type of a field path (kro's `expectedTypeForField`).

use serde_json::Value;

use super::decl;
use super::types::Type;
use crate::expr::{self, Scanned};

/// One expression field: its path in the template and the CEL it compiles to (a string template
/// becomes `"lit" + (e) + …`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub path: String,
    pub expression: String,
    /// The original text when the field is a string template.
    pub template: Option<String>,
}

impl Field {
    /// The expression as the author wrote it (kro's `UserExpression`).
    pub fn user_expression(&self) -> &str {
        self.template.as_deref().unwrap_or(&self.expression)
    }
}

/// kro's path join: `a.b`, `a["b.c"]` for keys with dots (or empty keys).
pub fn join(path: &str, field: &str) -> String {
    if field.is_empty() || field.contains('.') {
        format!("{path}[\"{field}\"]")
    } else if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

/// A string's `${…}` field, standalone or template; `None` for plain text.
fn string_field(text: &str, path: &str) -> Result<Option<Field>, String> {
    Ok(match expr::scan(text)? {
        Scanned::Literal => None,
        Scanned::Standalone(e) => Some(Field {
            path: path.into(),
            expression: e,
            template: None,
        }),
        Scanned::Template(parts) => Some(Field {
            path: path.into(),
            expression: expr::template_expression(&parts),
            template: Some(text.into()),
        }),
    })
}

/// Every `${…}` field of `value` without a schema, and the paths of values that hold none
/// (kro's `ParseSchemalessResource`).
pub fn schemaless(value: &Value, path: &str) -> Result<(Vec<Field>, Vec<String>), String> {
    let mut fields = Vec::new();
    let mut plain = Vec::new();
    walk_schemaless(value, path, &mut fields, &mut plain)?;
    Ok((fields, plain))
}

fn walk_schemaless(
    value: &Value,
    path: &str,
    fields: &mut Vec<Field>,
    plain: &mut Vec<String>,
) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                walk_schemaless(v, &join(path, k), fields, plain)?;
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk_schemaless(v, &format!("{path}[{i}]"), fields, plain)?;
            }
        }
        Value::String(s) => match string_field(s, path)? {
            Some(f) => fields.push(f),
            None => plain.push(path.to_string()),
        },
        _ => plain.push(path.to_string()),
    }
    Ok(())
}

/// The types a schema node admits, as kro's parser names them.
fn expected_types(schema: &Value) -> Result<Vec<String>, String> {
    if flag(schema, "x-kubernetes-preserve-unknown-fields") {
        return Ok(vec!["any".into()]);
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        return Ok(vec!["string".into(), "integer".into()]);
    }
    for composite in ["oneOf", "anyOf"] {
        if let Some(subs) = schema.get(composite).and_then(Value::as_array)
            && !subs.is_empty()
        {
            let mut types: Vec<String> = Vec::new();
            for sub in subs {
                if (sub
                    .get("required")
                    .is_some_and(|r| r.as_array().is_some_and(|a| !a.is_empty()))
                    || sub.get("not").is_some())
                    && !types.iter().any(|t| t == "object")
                {
                    types.push("object".into());
                }
                if let Some(t) = sub.get("type").and_then(Value::as_str)
                    && !t.is_empty()
                    && !types.iter().any(|x| x == t)
                {
                    types.push(t.into());
                }
            }
            if !types.is_empty() {
                return Ok(types);
            }
        }
    }
    if let Some(t) = schema
        .get("type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        return Ok(vec![t.into()]);
    }
    if additional_allows(schema) {
        return Ok(vec!["any".into()]);
    }
    Err("unknown schema type".into())
}

fn additional_allows(schema: &Value) -> bool {
    match schema.get("additionalProperties") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Object(_)) => true,
        _ => false,
    }
}

/// A property's schema: `properties[field]`, else the `additionalProperties` schema.
fn field_schema(schema: &Value, field: &str) -> Option<Value> {
    if let Some(s) = schema.get("properties").and_then(|p| p.get(field)) {
        return Some(s.clone());
    }
    match schema.get("additionalProperties") {
        Some(Value::Object(s)) => Some(Value::Object(s.clone())),
        Some(Value::Bool(true)) => Some(Value::Object(serde_json::Map::new())),
        _ => None,
    }
}

/// Every `${…}` field of a template, checked against the schema of its kind (kro's
/// `ParseResource`); `Err` is kro's text.
pub fn with_schema(value: &Value, schema: &Value) -> Result<Vec<Field>, String> {
    let mut fields = Vec::new();
    walk(value, schema, "", &mut fields)?;
    Ok(fields)
}

fn walk(value: &Value, schema: &Value, path: &str, fields: &mut Vec<Field>) -> Result<(), String> {
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
    let has_type = schema
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty());
    let composite = |k: &str| {
        schema
            .get(k)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    if !preserve
        && !flag(schema, "x-kubernetes-int-or-string")
        && !has_type
        && !composite("oneOf")
        && !composite("anyOf")
        && schema.get("additionalProperties").is_none()
    {
        return Err(format!(
            "schema at path {path} has no valid type, OneOf, AnyOf, or AdditionalProperties"
        ));
    }
    let expected = expected_types(schema)?;
    let expected_text = expected.join(" or ");
    let admits = |t: &str| expected.iter().any(|e| e == t);
    match value {
        Value::Object(map) => {
            if preserve {
                let (found, _) = schemaless(value, path)?;
                fields.extend(found);
                return Ok(());
            }
            if !admits("object") && !additional_allows(schema) {
                return Err(format!(
                    "expected {expected_text} type for path {path}, got object"
                ));
            }
            for (k, v) in map {
                let Some(child) = field_schema(schema, k) else {
                    return Err(format!(
                        "error getting field schema for path {path}.{k}: schema not found for field {k}"
                    ));
                };
                walk(v, &child, &join(path, k), fields)?;
            }
            Ok(())
        }
        Value::Array(items) => {
            if preserve {
                let (found, _) = schemaless(value, path)?;
                fields.extend(found);
                return Ok(());
            }
            if !admits("array") {
                return Err(format!(
                    "expected {expected_text} type for path {path}, got array"
                ));
            }
            let Some(item_schema) = schema.get("items").filter(|i| i.is_object()) else {
                return Err(format!(
                    "invalid array schema for path {path}: neither Items.Schema nor Properties are defined"
                ));
            };
            for (i, v) in items.iter().enumerate() {
                walk(v, item_schema, &format!("{path}[{i}]"), fields)?;
            }
            Ok(())
        }
        Value::String(s) => {
            if let Ok(Scanned::Standalone(e)) = expr::scan(s) {
                fields.push(Field {
                    path: path.into(),
                    expression: e,
                    template: None,
                });
                return Ok(());
            }
            expr::scan(s)?;
            if !admits("string") && !admits("any") {
                return Err(format!(
                    "expected {expected_text} type for path {path}, got string"
                ));
            }
            if let Some(f) = string_field(s, path)? {
                fields.push(f);
            }
            Ok(())
        }
        Value::Null => Ok(()),
        scalar => {
            if admits("any") {
                return Ok(());
            }
            let fits = expected.iter().any(|e| match e.as_str() {
                "number" => scalar.is_number(),
                "int" | "integer" => scalar.is_i64() || scalar.is_u64(),
                "boolean" | "bool" => scalar.is_boolean(),
                _ => false,
            });
            if fits {
                return Ok(());
            }
            let actual = match scalar {
                Value::Bool(_) => "boolean",
                Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
                _ => "float64",
            };
            Err(format!(
                "expected {expected_text} type for path {path}, got {actual}"
            ))
        }
    }
}

/// One step of a field path: a name or a list index.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Name(String),
    Index,
}

/// Parses `spec.containers[0].name` and `metadata.labels["a.b"]` (kro's `fieldpath.Parse`).
fn segments(path: &str) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    let chars: Vec<char> = path.chars().collect();
    let mut i = 0;
    let mut name = String::new();
    while i < chars.len() {
        match chars[i] {
            '.' => {
                if !name.is_empty() {
                    out.push(Segment::Name(std::mem::take(&mut name)));
                }
                i += 1;
            }
            '[' => {
                if !name.is_empty() {
                    out.push(Segment::Name(std::mem::take(&mut name)));
                }
                if chars.get(i + 1) == Some(&'"') {
                    let close = (i + 2..chars.len()).find(|&j| chars[j] == '"')?;
                    out.push(Segment::Name(chars[i + 2..close].iter().collect()));
                    i = close + 2;
                } else {
                    let close = (i + 1..chars.len()).find(|&j| chars[j] == ']')?;
                    chars[i + 1..close]
                        .iter()
                        .collect::<String>()
                        .parse::<usize>()
                        .ok()?;
                    out.push(Segment::Index);
                    i = close + 1;
                }
            }
            c => {
                name.push(c);
                i += 1;
            }
        }
    }
    if !name.is_empty() {
        out.push(Segment::Name(name));
    }
    Some(out)
}

/// A name in a schema: a property, else the additional-properties schema, else (through a list)
/// the items' property, as kro's `lookupSchemaAtField`.
fn lookup(schema: &Value, field: &str) -> Option<Value> {
    if let Some(s) = schema.get("properties").and_then(|p| p.get(field)) {
        return Some(s.clone());
    }
    if let Some(Value::Object(s)) = schema.get("additionalProperties") {
        return Some(Value::Object(s.clone()));
    }
    if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
        return lookup(items, field);
    }
    None
}

/// The CEL type kro expects at `path` of a template of resource `id` (`dyn` when the path does
/// not resolve).
pub fn expected_type(schema: &Value, path: &str, id: &str) -> Type {
    let Some(segments) = segments(path) else {
        return Type::Dyn;
    };
    let mut name = format!("{}{id}", decl::TYPE_NAME_PREFIX);
    let mut node = schema.clone();
    for segment in segments {
        match segment {
            Segment::Name(field) => {
                name = format!("{name}.{field}");
                match lookup(&node, &field) {
                    Some(next) => node = next,
                    None => return Type::Dyn,
                }
            }
            Segment::Index => match node.get("items").filter(|i| i.is_object()) {
                Some(items) => {
                    node = items.clone();
                    name = format!("{name}.@idx");
                }
                None => return Type::Dyn,
            },
        }
    }
    decl::declare(&node, &name).unwrap_or(Type::Dyn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vpc() -> Value {
        json!({"type": "object", "properties": {
            "metadata": {"type": "object", "properties": {"name": {"type": "string"}, "labels": {"type": "object", "additionalProperties": {"type": "string"}}}},
            "spec": {"type": "object", "properties": {
                "cidrBlocks": {"type": "array", "items": {"type": "string"}},
                "replicas": {"type": "integer"},
                "port": {"format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}]}
            }}
        }})
    }

    #[test]
    fn kros_parser_errors() {
        let err = |t: Value| with_schema(&t, &vpc()).unwrap_err();
        assert_eq!(
            err(json!({"spec": {"cidrBlocks": "10.0.0.0/16"}})),
            "expected array type for path spec.cidrBlocks, got string"
        );
        assert_eq!(
            err(json!({"spec": {"unknownField": "${schema.spec.name}"}})),
            "error getting field schema for path spec.unknownField: schema not found for field unknownField"
        );
        assert_eq!(
            err(json!({"spec": {"replicas": 1.5}})),
            "expected integer type for path spec.replicas, got float64"
        );
        assert_eq!(
            err(json!({"spec": {"port": true}})),
            "expected integer or string type for path spec.port, got boolean"
        );
        let fields = with_schema(
            &json!({"metadata": {"name": "x-${schema.spec.name}", "labels": {"a.b": "${schema.spec.x}"}}, "spec": {"replicas": "${schema.spec.n}"}}),
            &vpc(),
        )
        .unwrap();
        let paths: Vec<&str> = fields.iter().map(|f| f.path.as_str()).collect();
        // Keys are walked in sorted order (kro walks Go maps, whose order is unspecified).
        assert_eq!(
            paths,
            ["metadata.labels[\"a.b\"]", "metadata.name", "spec.replicas"]
        );
        assert_eq!(fields[1].expression, "\"x-\" + (schema.spec.name)");
    }

    #[test]
    fn expected_types_follow_the_path() {
        assert_eq!(expected_type(&vpc(), "spec.replicas", "vpc"), Type::Int);
        assert_eq!(
            expected_type(&vpc(), "spec.cidrBlocks[0]", "vpc"),
            Type::String
        );
        assert_eq!(expected_type(&vpc(), "spec.port", "vpc"), Type::Dyn);
        assert_eq!(
            expected_type(&vpc(), "metadata.labels[\"a.b\"]", "vpc"),
            Type::String
        );
        assert_eq!(expected_type(&vpc(), "spec.missing", "vpc"), Type::Dyn);
    }
}
