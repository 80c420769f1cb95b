//! OpenAPI schema → CEL type, as the API server's CEL library declares it for kro
//! (`SchemaDeclTypeWithMetadata`, then `MaybeAssignTypeName`): objects with properties are object
//! types named after their path (`__type_deployment.spec.template`), list element and map value
//! types after `.@idx` / `.@elem`, int-or-string is `dyn`, a node without a type has no CEL type
//! (the property is left out of its object), and property names are escaped as CEL field names.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::types::{ObjectType, Type};

/// The prefix kro gives the type of each declared variable.
pub const TYPE_NAME_PREFIX: &str = "__type_";

/// CEL's reserved words, which the API server escapes as `__word__` in field names.
pub const CEL_RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

fn flag(node: &Value, key: &str) -> bool {
    node.get(key).and_then(Value::as_bool) == Some(true)
}

/// The API server's escaping of a property name into a CEL field name (`None`: not expressible).
pub fn escape(name: &str) -> Option<String> {
    if CEL_RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut out = String::new();
    let mut rest = name;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("__") {
            out.push_str("__underscores__");
            rest = r;
            continue;
        }
        let Some(c) = rest.chars().next() else {
            break;
        };
        match c {
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            _ => return None,
        }
        rest = &rest[c.len_utf8()..];
    }
    Some(out)
}

/// The CEL type of a schema node named `name` (`None` when the node has no CEL type).
pub fn declare(node: &Value, name: &str) -> Option<Type> {
    if flag(node, "x-kubernetes-int-or-string")
        || node.get("format").and_then(Value::as_str) == Some("int-or-string")
    {
        return Some(Type::Dyn);
    }
    match node.get("type").and_then(Value::as_str) {
        Some("array") => {
            let items = node.get("items").filter(|i| i.is_object())?;
            Some(Type::list(declare(items, &format!("{name}.@idx"))?))
        }
        Some("object") => {
            if let Some(additional) = node.get("additionalProperties").filter(|a| a.is_object()) {
                let value = declare(additional, &format!("{name}.@elem")).unwrap_or(Type::Dyn);
                return Some(Type::map(Type::String, value));
            }
            let mut fields = BTreeMap::new();
            for (property, schema) in node
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let Some(field) = escape(property) else {
                    continue;
                };
                if let Some(t) = declare(schema, &format!("{name}.{property}")) {
                    fields.insert(field, t);
                }
            }
            Some(Type::Object(Arc::new(ObjectType {
                name: name.to_string(),
                fields,
                preserve_unknown: flag(node, "x-kubernetes-preserve-unknown-fields"),
            })))
        }
        Some("string") => Some(match node.get("format").and_then(Value::as_str) {
            Some("byte") => Type::Bytes,
            Some("duration") => Type::Duration,
            Some("date" | "date-time") => Type::Timestamp,
            _ => Type::String,
        }),
        Some("boolean") => Some(Type::Bool),
        Some("number") => Some(Type::Double),
        Some("integer") => Some(Type::Int),
        _ => None,
    }
}

/// The type of a declared variable (`__type_<variable>`), `dyn` when its schema has no type.
pub fn variable(schema: &Value, variable: &str) -> Type {
    declare(schema, &format!("{TYPE_NAME_PREFIX}{variable}")).unwrap_or(Type::Dyn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_follow_the_schema_path() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "ports": {"type": "array", "items": {"type": "object", "properties": {"port": {"type": "integer"}}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "target": {"format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}]},
                "quantity": {"oneOf": [{"type": "string"}, {"type": "number"}]},
                "namespace": {"type": "string"}
            }}
        }});
        let Type::Object(root) = variable(&schema, "svc") else {
            panic!("an object")
        };
        assert_eq!(root.name, "__type_svc");
        let Type::Object(spec) = &root.fields["spec"] else {
            panic!("an object")
        };
        assert_eq!(spec.name, "__type_svc.spec");
        assert_eq!(spec.fields["target"], Type::Dyn);
        assert!(!spec.fields.contains_key("quantity"));
        assert!(spec.fields.contains_key("__namespace__"));
        let Type::List(port) = &spec.fields["ports"] else {
            panic!("a list")
        };
        assert_eq!(port.display(), "__type_svc.spec.ports.@idx");
        assert_eq!(spec.fields["labels"].display(), "map(string, string)");
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a-b.c").as_deref(), Some("a__dash__b__dot__c"));
        assert_eq!(escape("1a"), None);
        assert_eq!(escape("if").as_deref(), Some("__if__"));
    }
}
