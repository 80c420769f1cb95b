//! Output in kro's key order (kro.md §2.6): schema nodes in apiextensions/v1 `JSONSchemaProps`
//! field order, `properties` and every other map sorted by key.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// The field order of `JSONSchemaProps`.
const SCHEMA_ORDER: &[&str] = &[
    "id",
    "$schema",
    "$ref",
    "description",
    "type",
    "format",
    "title",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "properties",
    "additionalProperties",
    "patternProperties",
    "dependencies",
    "additionalItems",
    "definitions",
    "externalDocs",
    "example",
    "nullable",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
];

/// What a value is, for ordering its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Plain,
    Schema,
    Properties,
}

/// Serializes a JSON value in kro's order; `openAPIV3Schema` subtrees are schema nodes.
#[derive(Debug)]
pub struct Canonical<'a>(pub &'a Value);

struct Node<'a>(&'a Value, Role);

impl Serialize for Canonical<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Node(self.0, Role::Plain).serialize(serializer)
    }
}

fn child_role(parent: Role, key: &str) -> Role {
    match (parent, key) {
        (Role::Plain, "openAPIV3Schema") => Role::Schema,
        (Role::Properties, _) => Role::Schema,
        (Role::Schema, "properties" | "patternProperties" | "definitions") => Role::Properties,
        (Role::Schema, "items" | "additionalProperties" | "not" | "additionalItems") => {
            Role::Schema
        }
        (Role::Schema, _) => Role::Plain,
        (Role::Plain, _) => Role::Plain,
    }
}

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Node(value, role) = *self;
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                if role == Role::Schema {
                    keys.sort_by_key(|k| {
                        (
                            SCHEMA_ORDER
                                .iter()
                                .position(|o| o == k)
                                .unwrap_or(SCHEMA_ORDER.len()),
                            (*k).clone(),
                        )
                    });
                }
                let mut out = serializer.serialize_map(Some(keys.len()))?;
                for key in keys {
                    out.serialize_entry(key, &Node(&map[key], child_role(role, key)))?;
                }
                out.end()
            }
            Value::Array(items) => {
                let item_role = match role {
                    Role::Schema => Role::Schema,
                    _ => Role::Plain,
                };
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&Node(item, item_role))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

/// YAML in kro's key order.
pub fn to_yaml(value: &Value) -> Result<String, yaml_serde::Error> {
    yaml_serde::to_string(&Canonical(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_nodes_follow_struct_order() {
        let value = json!({"openAPIV3Schema": {"type": "object", "description": "d", "properties": {"type": {"type": "string", "default": "x", "description": "y"}, "a": {"type": "integer"}}}});
        let yaml = to_yaml(&value).unwrap();
        let expected = "openAPIV3Schema:\n  description: d\n  type: object\n  properties:\n    a:\n      type: integer\n    type:\n      description: y\n      type: string\n      default: x\n";
        assert_eq!(yaml, expected);
    }
}
