//! Template rendering (kro.md §6.1, §6.4): `${…}` resolution in child templates and author
//! status fields, the variables a pass starts from, and kro's namespace inheritance.

use serde_json::{Map, Value, json};

use crate::eval::{EvalError, Variables};
use crate::expr::{self, Part, Scanned};
use crate::kinds;

/// The variables every expression of a pass sees first: `schema`, the instance without status.
pub fn instance_scope(instance: &Value) -> Variables {
    let mut schema = instance.clone();
    if let Some(o) = schema.as_object_mut() {
        o.remove("status");
    }
    let mut variables = Variables::default();
    variables.insert("schema", schema);
    variables
}

/// Renders a template: standalone expressions take any type; templates concatenate strings; a
/// field or list element whose expression gives kro's `omit()` is removed.
pub fn render_value(value: &Value, variables: &Variables) -> Result<Value, EvalError> {
    Ok(render_omittable(value, variables)?.unwrap_or(Value::Null))
}

/// [`render_value`]; `None` when the value is `omit()`.
fn render_omittable(value: &Value, variables: &Variables) -> Result<Option<Value>, EvalError> {
    Ok(Some(match value {
        Value::String(s) => match expr::scan(s).map_err(EvalError::Failed)? {
            Scanned::Literal => value.clone(),
            Scanned::Standalone(e) => return variables.evaluate_omittable(&e),
            Scanned::Template(parts) => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        Part::Literal(l) => out.push_str(&l),
                        Part::Expression(e) => match variables.evaluate(&e)? {
                            Value::String(v) => out.push_str(&v),
                            other => {
                                return Err(EvalError::Failed(format!(
                                    "expression \"{e}\" in a string template returned {other}, not a string"
                                )));
                            }
                        },
                    }
                }
                Value::String(out)
            }
        },
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if let Some(rendered) = render_omittable(v, variables)? {
                    out.insert(k.clone(), rendered);
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.extend(render_omittable(item, variables)?);
            }
            Value::Array(out)
        }
        other => other.clone(),
    }))
}

/// Deep merge (`overlay` wins; objects merge recursively).
pub fn merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Why author status fields stopped evaluating.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    /// A field failed; the fields after it are not evaluated in this pass.
    #[error("status.{field}: {message}")]
    Field { field: String, message: String },
    /// A field evaluated to bytes (a Secret's `data`, …): kro v0.9.3 panics deep-copying the
    /// resolved status, recovers, and writes no status at all in that reconcile.
    #[error(
        "status.{field}: the value holds bytes, which kro v0.9.3 cannot write: recovered from panic in reconcile: cannot deep copy []uint8 (no status is written)"
    )]
    Bytes { field: String },
}

/// Evaluates author status fields; a field whose expression is pending is left out.
pub fn evaluate_status(
    fields: &Map<String, Value>,
    variables: &Variables,
    out: &mut Map<String, Value>,
) -> Result<(), StatusError> {
    for (key, value) in fields {
        if key == "conditions" {
            continue;
        }
        match value {
            Value::Object(nested) => {
                let mut inner = Map::new();
                evaluate_status(nested, variables, &mut inner)?;
                if !inner.is_empty() {
                    out.insert(key.clone(), Value::Object(inner));
                }
            }
            other => {
                let standalone = match other {
                    Value::String(s) => match expr::scan(s) {
                        Ok(Scanned::Standalone(e)) => Some(e),
                        _ => None,
                    },
                    _ => None,
                };
                let result = match standalone {
                    Some(e) => match variables.evaluate_noting_bytes(&e) {
                        Ok((_, true)) => {
                            return Err(StatusError::Bytes { field: key.clone() });
                        }
                        Ok((value, false)) => Ok(value),
                        Err(e) => Err(e),
                    },
                    None => render_value(other, variables),
                };
                match result {
                    Ok(Value::Null) | Err(EvalError::Pending(_)) => {}
                    Ok(v) => {
                        out.insert(key.clone(), v);
                    }
                    Err(EvalError::Failed(message)) => {
                        return Err(StatusError::Field {
                            field: key.clone(),
                            message,
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// kro's `normalizeNamespaces` (kro.md §5.1): a rendered object of a namespaced kind that
/// resolved no `metadata.namespace` (absent, null or empty) takes the instance's namespace; a
/// cluster-scoped kind is left alone. `instance_namespace` is `None` for a cluster-scoped
/// instance, where such an object is an error, as in kro.
pub fn inherit_namespace(
    id: &str,
    object: &mut Value,
    instance_namespace: Option<&str>,
) -> Result<(), String> {
    let resolved = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let text = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    if resolved || kinds::cluster_scoped(text("/apiVersion"), text("/kind")) {
        return Ok(());
    }
    let Some(namespace) = instance_namespace else {
        return Err(format!(
            "node \"{id}\" is namespaced and must resolve metadata.namespace when the instance is cluster-scoped"
        ));
    };
    if let Some(map) = object.as_object_mut() {
        let metadata = map.entry("metadata").or_insert(Value::Null);
        if metadata.is_null() {
            *metadata = json!({});
        }
        if let Some(metadata) = metadata.as_object_mut() {
            metadata.insert("namespace".into(), json!(namespace));
        }
    }
    Ok(())
}
