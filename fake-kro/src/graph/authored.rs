//! Author conditions (kro.md §5.10): the `status.conditions` expressions of an RGD, evaluated
//! over the pass's variables with kro's built-in conditions readable through `schema`, stamped
//! as kro stamps them and written in place of the built-ins.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::conditions::ConditionSet;
use crate::eval::{EvalError, Variables};
use crate::expr::{self, Scanned};

/// The conditions written to an instance whose RGD declares author conditions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuthoredConditions {
    /// What `.status.conditions` holds: the author's conditions only.
    pub conditions: Vec<Value>,
    /// kro's "author condition evaluation degraded: …" text when an expression failed, returned
    /// something else than conditions, or two produced the same type; the instance's `state`
    /// is then `ERROR`.
    pub degraded: Option<String>,
}

/// The inputs of one evaluation besides the expressions and the variables.
#[derive(Clone, Copy, Debug)]
pub struct Stamp<'a> {
    /// The conditions on the wire before this pass (for transition times and for the types an
    /// expression could not produce yet).
    pub previous: &'a [Value],
    /// kro's built-in conditions as this pass computed them.
    pub built_in: &'a [Value],
    pub set: ConditionSet,
    pub generation: i64,
    pub now: &'a str,
}

/// The author condition expressions of `rgd` (`None`: it declares none, and kro writes its
/// built-in conditions).
pub fn author_condition_expressions(rgd: &Value) -> Option<Vec<String>> {
    let entries = rgd.pointer("/spec/schema/status/conditions")?.as_array()?;
    Some(
        entries
            .iter()
            .filter_map(|e| e.as_str().map(str::to_string))
            .collect(),
    )
}

/// Evaluates `expressions` as kro v0.9.3 does: an expression whose data is pending produces
/// nothing (the previous conditions of the types missing are kept); one that fails or returns
/// something else than a condition or a list of conditions is dropped and degrades the result;
/// conditions sharing a type are all dropped.
pub fn author_conditions(
    expressions: &[String],
    variables: &Variables,
    instance: &Value,
    stamp: Stamp<'_>,
) -> AuthoredConditions {
    let mut scope = variables.clone();
    scope.insert("schema", schema_with_built_ins(instance, stamp));
    let mut produced: Vec<Map<String, Value>> = Vec::new();
    let mut failures = Vec::new();
    let mut incomplete = false;
    for raw in expressions {
        let Ok(Scanned::Standalone(e)) = expr::scan(raw) else {
            continue;
        };
        match scope.evaluate(&e) {
            Err(EvalError::Pending(_)) => incomplete = true,
            Err(EvalError::Failed(why)) => failures.push(format!("\"{e}\": {why}")),
            Ok(value) => match conditions_of(&value, &e) {
                Ok(conditions) => produced.extend(conditions),
                Err(why) => failures.push(format!("\"{e}\": {why}")),
            },
        }
    }
    let type_of =
        |c: &Map<String, Value>| c.get("type").and_then(Value::as_str).map(str::to_string);
    let mut seen = BTreeSet::new();
    let mut duplicates = BTreeSet::new();
    for t in produced.iter().filter_map(type_of) {
        if !seen.insert(t.clone()) {
            duplicates.insert(t);
        }
    }
    if !duplicates.is_empty() {
        let list: Vec<String> = duplicates.iter().cloned().collect();
        failures.push(format!(
            "duplicate condition type(s) [{}] dropped",
            list.join(" ")
        ));
    }
    let mut conditions: Vec<Value> = produced
        .iter()
        .filter(|c| type_of(c).is_none_or(|t| !duplicates.contains(&t)))
        .map(|c| stamped(c, stamp))
        .collect();
    if incomplete || !failures.is_empty() {
        let have: BTreeSet<String> = conditions
            .iter()
            .filter_map(|c| c.get("type").and_then(Value::as_str).map(str::to_string))
            .collect();
        conditions.extend(
            stamp
                .previous
                .iter()
                .filter(|p| {
                    p.get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|t| !have.contains(t))
                })
                .cloned(),
        );
    }
    AuthoredConditions {
        conditions,
        degraded: (!failures.is_empty()).then(|| {
            format!(
                "author condition evaluation degraded: {}",
                failures.join("; ")
            )
        }),
    }
}

/// `schema` as author conditions see it: the instance without status, plus kro's built-in
/// conditions as `status.conditions` (type, status, reason, message; absent text as "").
fn schema_with_built_ins(instance: &Value, stamp: Stamp<'_>) -> Value {
    let mut schema = instance.clone();
    let built_in: Vec<Value> = stamp
        .built_in
        .iter()
        .filter(|c| {
            c.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t == stamp.set.root || stamp.set.dependents.contains(&t))
        })
        .map(|c| {
            let text = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default();
            json!({"type": text("type"), "status": text("status"),
                   "reason": text("reason"), "message": text("message")})
        })
        .collect();
    if let Some(object) = schema.as_object_mut() {
        object.insert("status".into(), json!({"conditions": built_in}));
    }
    schema
}

/// The conditions an expression returned: one condition or a list of them.
fn conditions_of(value: &Value, expression: &str) -> Result<Vec<Map<String, Value>>, String> {
    let as_condition = |v: &Value| {
        v.as_object()
            .filter(|m| m.contains_key("type") && m.contains_key("status"))
            .cloned()
    };
    match value {
        Value::Null => Err(format!("condition \"{expression}\" returned null")),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                as_condition(item).ok_or_else(|| {
                    format!("condition \"{expression}\" list element is not a Condition")
                })
            })
            .collect(),
        other => as_condition(other).map(|c| vec![c]).ok_or_else(|| {
            format!(
                "condition \"{expression}\" must return a Condition or list(Condition), got {}",
                cel_type_name(other)
            )
        }),
    }
}

fn cel_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null_type",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int",
        Value::Number(_) => "double",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

/// kro's wire shape of an author condition: observedGeneration stamped, the transition time
/// kept while the status is unchanged, empty reason and message left out.
fn stamped(condition: &Map<String, Value>, stamp: Stamp<'_>) -> Value {
    let text = |k: &str| {
        condition
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (type_, status) = (text("type"), text("status"));
    let previous_time = stamp
        .previous
        .iter()
        .find(|p| p.get("type").and_then(Value::as_str) == Some(type_.as_str()))
        .filter(|p| p.get("status").and_then(Value::as_str) == Some(status.as_str()))
        .and_then(|p| p.get("lastTransitionTime"))
        .filter(|t| !t.is_null())
        .cloned();
    let mut out = Map::new();
    out.insert("type".into(), json!(type_));
    out.insert("status".into(), json!(status));
    out.insert("observedGeneration".into(), json!(stamp.generation));
    out.insert(
        "lastTransitionTime".into(),
        previous_time.unwrap_or_else(|| json!(stamp.now)),
    );
    for key in ["reason", "message"] {
        let value = text(key);
        if !value.is_empty() {
            out.insert(key.into(), json!(value));
        }
    }
    Value::Object(out)
}
