//! The two per-node conditions of kro.md §5.7: includeWhen (is the node part of this pass?) and
//! readyWhen (is its observed object ready?).

use serde_json::Value;

use super::Node;
use crate::celtype;
use crate::eval::{EvalError, Variables};
use crate::expr::{self, Scanned};

/// What a node's includeWhen conditions decide (kro's `IsIgnored`, kro.md §5.7 [KRO-20]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inclusion {
    Included,
    /// A condition is false or null: the node, and every node depending on it, is skipped.
    Excluded,
    /// A condition reads a resource whose data is not there yet: the node waits.
    Pending(String),
    /// A condition fails to evaluate or is not a boolean: the node is in error. A condition
    /// that reads only `schema` is never pending: missing data there is an error too.
    Failed(String),
}

/// Evaluates `node`'s includeWhen conditions in order; the first false, pending or failed one
/// decides, as in kro.
pub fn inclusion(node: &Node, variables: &Variables) -> Inclusion {
    for condition in &node.include_when {
        // The checker refuses a condition that is not one standalone expression (V4).
        let Ok(Scanned::Standalone(e)) = expr::scan(condition) else {
            continue;
        };
        // kro quotes expressions with Go's %q.
        let q = expr::go_quote(&e);
        match variables.evaluate(&e) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false) | Value::Null) => return Inclusion::Excluded,
            Ok(_) => {
                return Inclusion::Failed(format!(
                    "includeWhen {q}: expression {q} did not return bool"
                ));
            }
            Err(EvalError::Pending(why)) if reads_a_resource(node, &e) => {
                return Inclusion::Pending(format!("includeWhen {q}: {why}"));
            }
            Err(EvalError::Pending(why) | EvalError::Failed(why)) => {
                return Inclusion::Failed(format!("includeWhen {q}: {why}"));
            }
        }
    }
    Inclusion::Included
}

/// Whether `expression` references another node of the graph (not only `schema`).
fn reads_a_resource(node: &Node, expression: &str) -> bool {
    celtype::parse(expression).is_ok_and(|parsed| {
        celtype::identifiers(&parsed)
            .iter()
            .any(|id| node.dependencies.contains(id))
    })
}

/// One readyWhen condition's verdict on one object, before kro words it.
enum Verdict {
    True,
    /// false, or null (which single resources treat as false).
    False {
        null: bool,
    },
    NotBool,
    Pending,
    Failed(String),
}

/// The first readyWhen condition that is not true over `variables`, with its Go-quoted text.
fn first_unmet(ready_when: &[String], variables: &Variables) -> Option<(String, Verdict)> {
    ready_when.iter().find_map(|condition| {
        let Ok(Scanned::Standalone(e)) = expr::scan(condition) else {
            return None;
        };
        let verdict = match variables.evaluate(&e) {
            Ok(Value::Bool(true)) => Verdict::True,
            Ok(Value::Bool(false)) => Verdict::False { null: false },
            Ok(Value::Null) => Verdict::False { null: true },
            Ok(_) => Verdict::NotBool,
            Err(EvalError::Pending(_)) => Verdict::Pending,
            Err(EvalError::Failed(why)) => Verdict::Failed(why),
        };
        // kro quotes expressions with Go's %q.
        (!matches!(verdict, Verdict::True)).then(|| (expr::go_quote(&e), verdict))
    })
}

/// Whether `observed` meets node `id`'s readyWhen conditions (kro.md §5.7); `held` forces
/// "no observed state" (a script's `readyAfter`). The error is kro's readiness text.
pub fn readiness(
    id: &str,
    ready_when: &[String],
    observed: &Value,
    held: bool,
) -> Result<(), String> {
    if held {
        return Err(format!(
            "node \"{id}\": no observed state: waiting for readiness"
        ));
    }
    let mut variables = Variables::default();
    variables.insert_resource(id, observed.clone());
    match first_unmet(ready_when, &variables) {
        None | Some((_, Verdict::True)) => Ok(()),
        Some((q, Verdict::False { .. } | Verdict::Pending)) => Err(format!(
            "readyWhen condition evaluated to false: {q} (waiting for readiness)"
        )),
        Some((q, Verdict::NotBool)) => Err(format!("expression {q} did not return bool")),
        Some((q, Verdict::Failed(_))) => Err(format!(
            "node \"{id}\": failed to evaluate readyWhen expression: {q} (waiting for readiness)"
        )),
    }
}

/// Whether a collection's observed items meet its readyWhen conditions (kro.md §5.11): every
/// desired item observed, then each condition true for every item, seen as `each`. The error
/// is kro's readiness text.
pub fn collection_readiness(
    id: &str,
    ready_when: &[String],
    observed: &[Value],
    desired: usize,
) -> Result<(), String> {
    if observed.len() < desired {
        return Err(format!(
            "node \"{id}\": collection not ready: observed {} but desired {desired} (waiting for readiness)",
            observed.len()
        ));
    }
    for (index, item) in observed.iter().enumerate() {
        let mut variables = Variables::default();
        variables.insert_resource("each", item.clone());
        match first_unmet(ready_when, &variables) {
            None | Some((_, Verdict::True)) => {}
            Some((q, Verdict::False { null: false })) => {
                return Err(format!(
                    "readyWhen condition evaluated to false: {q} (waiting for readiness)"
                ));
            }
            // kro's collections take only a bool: null is not one.
            Some((q, Verdict::False { null: true } | Verdict::NotBool)) => {
                return Err(format!("readyWhen {q} did not return bool"));
            }
            Some((q, Verdict::Pending)) => {
                return Err(format!(
                    "node \"{id}\": failed to evaluate readyWhen {q} (item {index}) (waiting for readiness)"
                ));
            }
            Some((q, Verdict::Failed(why))) => {
                return Err(format!(
                    "node \"{id}\": failed to evaluate readyWhen {q} (item {index}): {why}"
                ));
            }
        }
    }
    Ok(())
}
