//! Offline rendering (`fake-kro render`): an instance is defaulted against the generated CRD, the
//! child resources are rendered in dependency order, and the instance status is evaluated from
//! observed-state fixtures — "RGD + instance in, expansion and status out".

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use serde_json::{Map, Value, json};

use crate::celtype;
use crate::crd::{self, CrdOptions};
use crate::eval::{self, EvalError};
use crate::expr::{self, Part, Scanned};

/// One resource node of an RGD.
#[derive(Clone, Debug)]
pub struct Node {
    pub id: String,
    pub index: usize,
    pub template: Option<Value>,
    pub external: Option<Value>,
    pub ready_when: Vec<String>,
    pub include_when: Vec<String>,
    pub dependencies: BTreeSet<String>,
}

pub(crate) fn strings_of(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn expressions_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => match expr::scan(s) {
            Ok(Scanned::Standalone(e)) => out.push(e),
            Ok(Scanned::Template(parts)) => out.extend(parts.into_iter().filter_map(|p| match p {
                Part::Expression(e) => Some(e),
                Part::Literal(_) => None,
            })),
            _ => {}
        },
        Value::Object(m) => m.values().for_each(|v| expressions_in(v, out)),
        Value::Array(a) => a.iter().for_each(|v| expressions_in(v, out)),
        _ => {}
    }
}

/// The nodes of an RGD with their dependencies (resource ids referenced by templates and
/// includeWhen).
pub fn nodes(rgd: &Value) -> Vec<Node> {
    let resources = rgd
        .pointer("/spec/resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let ids: BTreeSet<String> = resources
        .iter()
        .filter_map(|r| r.get("id")?.as_str().map(str::to_string))
        .collect();
    resources
        .iter()
        .enumerate()
        .filter_map(|(index, r)| {
            let id = r.get("id")?.as_str()?.to_string();
            let mut expressions = Vec::new();
            if let Some(t) = r.get("template") {
                expressions_in(t, &mut expressions);
            }
            let include_when = strings_of(r.get("includeWhen"));
            include_when
                .iter()
                .for_each(|s| expressions_in(&json!(s), &mut expressions));
            let dependencies = expressions
                .iter()
                .filter_map(|e| celtype::parse(e).ok())
                .flat_map(|p| celtype::identifiers(&p))
                .filter(|x| ids.contains(x) && *x != id)
                .collect();
            Some(Node {
                id,
                index,
                template: r.get("template").cloned(),
                external: r.get("externalRef").cloned(),
                ready_when: strings_of(r.get("readyWhen")),
                include_when,
                dependencies,
            })
        })
        .collect()
}

/// Kahn's algorithm with a min-heap on (position in `spec.resources`, id) (kro.md §6.6).
pub fn topological_order(nodes: &[Node]) -> Result<Vec<String>, String> {
    let mut remaining: BTreeMap<&str, BTreeSet<&str>> = nodes
        .iter()
        .map(|n| {
            (
                n.id.as_str(),
                n.dependencies.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let index: BTreeMap<&str, usize> = nodes.iter().map(|n| (n.id.as_str(), n.index)).collect();
    let mut heap: BinaryHeap<Reverse<(usize, &str)>> = remaining
        .iter()
        .filter(|(_, d)| d.is_empty())
        .map(|(id, _)| Reverse((index[id], *id)))
        .collect();
    let mut order = Vec::new();
    while let Some(Reverse((_, id))) = heap.pop() {
        remaining.remove(id);
        order.push(id.to_string());
        for (other, deps) in remaining.iter_mut() {
            if deps.remove(id) && deps.is_empty() {
                heap.push(Reverse((index[other], *other)));
            }
        }
    }
    if !remaining.is_empty() {
        return Err("graph contains a cycle".into());
    }
    Ok(order)
}

/// Renders a template: standalone expressions take any type; templates concatenate strings.
pub fn render_value(
    value: &Value,
    variables: &BTreeMap<String, Value>,
) -> Result<Value, EvalError> {
    Ok(match value {
        Value::String(s) => match expr::scan(s).map_err(EvalError::Failed)? {
            Scanned::Literal => value.clone(),
            Scanned::Standalone(e) => eval::evaluate(&e, variables)?,
            Scanned::Template(parts) => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        Part::Literal(l) => out.push_str(&l),
                        Part::Expression(e) => match eval::evaluate(&e, variables)? {
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
                out.insert(k.clone(), render_value(v, variables)?);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_value(v, variables))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
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

/// The result of a render.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rendered {
    /// The instance with defaults and the evaluated status.
    pub instance: Value,
    /// Rendered children in topological order (skipped and pending nodes absent).
    pub resources: Vec<(String, Value)>,
    /// Node id → why it was not rendered (`skipped`, or the pending/error text).
    pub not_rendered: BTreeMap<String, String>,
}

/// Renders `instance` of `rgd`; `observed` maps resource ids to observed-state fixtures.
pub fn render(
    rgd: &Value,
    instance: &Value,
    observed: &BTreeMap<String, Value>,
) -> Result<Rendered, String> {
    let generated = crd::generate(rgd, &CrdOptions::default())?;
    let schema = generated
        .pointer("/spec/versions/0/schema/openAPIV3Schema")
        .cloned()
        .unwrap_or_default();
    let mut instance = instance.clone();
    if let Some(o) = instance.as_object_mut() {
        o.remove("status");
    }
    instance = kube_cel::apply_defaults(&schema, &instance);
    if let Err(errors) = kube_cel::Validator::new().validate(&schema, &instance, None) {
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(format!("instance is invalid: {}", messages.join("; ")));
    }
    for field in schema
        .pointer("/properties/spec/required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if instance.pointer(&format!("/spec/{field}")).is_none() {
            return Err(format!("instance is invalid: spec.{field}: Required value"));
        }
    }
    let nodes = nodes(rgd);
    let order = topological_order(&nodes)?;
    let by_id: BTreeMap<&str, &Node> = nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let mut variables: BTreeMap<String, Value> = BTreeMap::new();
    let mut scope_instance = instance.clone();
    if let Some(o) = scope_instance.as_object_mut() {
        o.remove("status");
    }
    variables.insert("schema".into(), scope_instance);
    let mut rendered = Rendered::default();
    let mut skipped: BTreeSet<String> = BTreeSet::new();
    let namespace = instance
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    for id in &order {
        let node = by_id[id.as_str()];
        if node.dependencies.iter().any(|d| skipped.contains(d)) {
            skipped.insert(id.clone());
            rendered.not_rendered.insert(id.clone(), "skipped".into());
            continue;
        }
        let mut include = true;
        for condition in &node.include_when {
            let Ok(Scanned::Standalone(e)) = expr::scan(condition) else {
                continue;
            };
            match eval::evaluate(&e, &variables) {
                Ok(Value::Bool(b)) => include &= b,
                Ok(other) => {
                    return Err(format!(
                        "includeWhen of {id} returned {other}, not a boolean"
                    ));
                }
                Err(e) => return Err(format!("includeWhen of {id}: {e}")),
            }
        }
        if !include {
            skipped.insert(id.clone());
            rendered.not_rendered.insert(id.clone(), "skipped".into());
            continue;
        }
        let Some(template) = node.template.as_ref().or(node.external.as_ref()) else {
            continue;
        };
        match render_value(template, &variables) {
            Ok(mut object) => {
                if object.pointer("/metadata/namespace").is_none() && node.template.is_some() {
                    object["metadata"]["namespace"] = json!(namespace);
                }
                let mut seen = object.clone();
                if let Some(fixture) = observed.get(id) {
                    merge(&mut seen, fixture);
                }
                // Dependents see the observed object when there is a fixture for it.
                variables.insert(id.clone(), seen);
                if node.template.is_some() {
                    rendered.resources.push((id.clone(), object));
                }
            }
            Err(e) => {
                rendered.not_rendered.insert(id.clone(), e.to_string());
            }
        }
    }
    // Status sees only resources with observed-state fixtures (kro reads the cluster).
    let mut status_variables: BTreeMap<String, Value> = BTreeMap::new();
    status_variables.insert("schema".into(), variables["schema"].clone());
    for id in observed.keys() {
        if let Some(v) = variables.get(id) {
            status_variables.insert(id.clone(), v.clone());
        }
    }
    let mut status = Map::new();
    if let Some(fields) = rgd
        .pointer("/spec/schema/status")
        .and_then(Value::as_object)
    {
        evaluate_status(fields, &status_variables, &mut status)?;
    }
    instance["status"] = Value::Object(status);
    rendered.instance = instance;
    Ok(rendered)
}

/// Evaluates author status fields; a field whose expression is pending is left out.
pub fn evaluate_status(
    fields: &Map<String, Value>,
    variables: &BTreeMap<String, Value>,
    out: &mut Map<String, Value>,
) -> Result<(), String> {
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
            other => match render_value(other, variables) {
                Ok(Value::Null) | Err(EvalError::Pending(_)) => {}
                Ok(v) => {
                    out.insert(key.clone(), v);
                }
                Err(EvalError::Failed(e)) => return Err(format!("status.{key}: {e}")),
            },
        }
    }
    Ok(())
}
