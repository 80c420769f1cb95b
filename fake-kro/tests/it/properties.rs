//! Property tests of the SimpleSchema conversion ([KRO-SS-PROP]): every generated schema is
//! structural, and a field model printed as SimpleSchema parses back to the schema the model
//! describes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fake_kro::simpleschema::{KroVersion, spec_schema};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

#[derive(Clone, Debug)]
struct Field {
    base: &'static str,
    arrays: usize,
    map: bool,
    description: Option<String>,
    required: bool,
    bounds: Option<(i64, i64)>,
}

fn field() -> impl Strategy<Value = Field> {
    (
        prop::sample::select(vec!["string", "integer", "boolean", "float", "object"]),
        0usize..3,
        any::<bool>(),
        proptest::option::of("[a-zA-Z0-9 \"\\\\:,.]{0,12}"),
        any::<bool>(),
        proptest::option::of((-50i64..50, 50i64..500)),
    )
        .prop_map(|(base, arrays, map, description, required, bounds)| Field {
            base,
            arrays,
            map,
            description,
            required,
            bounds,
        })
}

fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Field {
    fn print(&self) -> String {
        let mut type_expr = String::new();
        for _ in 0..self.arrays {
            type_expr.push_str("[]");
        }
        if self.map {
            type_expr.push_str("map[string]");
        }
        type_expr.push_str(self.base);
        let mut markers = Vec::new();
        if let Some(d) = &self.description {
            markers.push(format!("description={}", quote(d)));
        }
        if self.required {
            markers.push("required=true".into());
        }
        if let Some((min, max)) = self.bounds {
            markers.push(format!("minimum={min} maximum={max}"));
        }
        if markers.is_empty() {
            type_expr
        } else {
            format!("{type_expr} | {}", markers.join(" "))
        }
    }

    fn expected(&self) -> Value {
        let mut schema = match self.base {
            "string" => json!({"type": "string"}),
            "integer" => json!({"type": "integer"}),
            "boolean" => json!({"type": "boolean"}),
            "float" => json!({"type": "number"}),
            _ => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        };
        if self.map {
            schema = json!({"type": "object", "additionalProperties": schema});
        }
        for _ in 0..self.arrays {
            schema = json!({"type": "array", "items": schema});
        }
        if let Some(d) = &self.description {
            schema["description"] = json!(d);
        }
        if let Some((min, max)) = self.bounds {
            schema["minimum"] = json!(min);
            schema["maximum"] = json!(max);
        }
        schema
    }
}

/// Structural: every node has a type or keeps unknown fields; no references or unions.
fn assert_structural(node: &Value, path: &str) {
    let Some(map) = node.as_object() else { return };
    assert!(
        map.contains_key("type")
            || map.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true)),
        "{path} has no type"
    );
    for forbidden in ["$ref", "anyOf", "oneOf", "allOf"] {
        assert!(!map.contains_key(forbidden), "{path} has {forbidden}");
    }
    if let Some(properties) = map.get("properties").and_then(Value::as_object) {
        for (k, v) in properties {
            assert_structural(v, &format!("{path}.{k}"));
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = map.get(key).filter(|c| c.is_object()) {
            assert_structural(child, &format!("{path}.{key}"));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn printed_models_round_trip(fields in proptest::collection::btree_map("[a-z][a-zA-Z0-9]{0,6}", field(), 1..6)) {
        let spec: Map<String, Value> = fields.iter().map(|(name, f)| (name.clone(), json!(f.print()))).collect();
        let schema = spec_schema(&spec, &Map::new(), KroVersion::V0_9_3).unwrap();
        assert_structural(&schema, "spec");
        for (name, f) in &fields {
            prop_assert_eq!(&schema["properties"][name], &f.expected(), "field {} printed as {:?}", name, f.print());
        }
        let required: Vec<&String> = fields.iter().filter(|(_, f)| f.required).map(|(n, _)| n).collect();
        if required.is_empty() {
            prop_assert!(schema.get("required").is_none());
        } else {
            prop_assert_eq!(schema["required"].clone(), json!(required));
        }
    }
}
