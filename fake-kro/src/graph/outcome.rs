//! What a pass yields for the instance (kro.md §5.4–§5.6): its `state`, the ResourcesReady
//! condition and the author status fields.

use serde_json::{Map, Value};

use super::pass::{NodeState, Pass};
use super::template::{StatusError, evaluate_status};
use crate::conditions::Condition;
use crate::eval::Variables;

/// The instance's `status.state` (kro.md §5.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceState {
    Active,
    InProgress,
    Error,
    Deleting,
}

impl InstanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::InProgress => "IN_PROGRESS",
            Self::Error => "ERROR",
            Self::Deleting => "DELETING",
        }
    }
}

/// The ResourcesReady condition of a pass (kro.md §5.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourcesReady {
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
}

impl ResourcesReady {
    fn not_ready(message: String) -> Self {
        Self {
            status: "False",
            reason: "NotReady",
            message,
        }
    }

    /// Suspended (v0.9.x): no node is processed, so nothing is reported (quirk Q2).
    pub fn suspended() -> Self {
        Self::not_ready("awaiting resource readiness: <nil>".into())
    }

    /// Every pass of a deleting instance (kro.md §5.8).
    pub fn under_deletion() -> Self {
        Self {
            status: "Unknown",
            reason: "UnderDeletion",
            message: "deleting resources".into(),
        }
    }

    pub fn condition(&self) -> Condition<'_> {
        Condition {
            type_: "ResourcesReady",
            status: self.status,
            reason: self.reason,
            message: &self.message,
        }
    }
}

/// The instance-level result of a pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub state: InstanceState,
    pub resources_ready: ResourcesReady,
}

impl Outcome {
    /// kro.md §5.4: `state` from the node states; ResourcesReady from the pass's error (node
    /// errors, else the nodes waiting for readiness, else the first pending node, else
    /// `cluster mutated` when this pass changed the cluster), else from readiness.
    pub fn of(pass: &Pass<'_>, mutated: bool) -> Self {
        if let Some(message) = pass.resource_deleting() {
            return Self {
                state: InstanceState::InProgress,
                resources_ready: ResourcesReady {
                    status: "False",
                    reason: "ResourceDeleting",
                    message: message.to_string(),
                },
            };
        }
        let errors = in_order(pass, |s| match s {
            NodeState::Error(e) => Some(e),
            _ => None,
        });
        let state = if !errors.is_empty() {
            InstanceState::Error
        } else if pass
            .states()
            .values()
            .all(|s| matches!(s, NodeState::Synced | NodeState::Skipped))
        {
            InstanceState::Active
        } else {
            InstanceState::InProgress
        };
        let waiting: Vec<String> = in_order(pass, |s| match s {
            NodeState::Waiting(w) => Some(w),
            _ => None,
        })
        .into_iter()
        .map(|(id, w)| format!("waiting for node \"{id}\": {w}"))
        .collect();
        // kro counts a node waiting for readiness among the apply results' errors, and checks
        // those before unresolved data and before `cluster mutated`.
        let reconcile_error = if !errors.is_empty() {
            let errors: Vec<&str> = errors.iter().map(|(_, e)| e.as_str()).collect();
            Some(errors.join("\n"))
        } else if !waiting.is_empty() {
            Some(format!(
                "apply results contain errors: {}",
                waiting.join("\n")
            ))
        } else if let Some(pending) = pass.first_pending() {
            Some(pending.to_string())
        } else if mutated {
            Some("cluster mutated".to_string())
        } else {
            None
        };
        let resources_ready = match reconcile_error {
            Some(error) => {
                ResourcesReady::not_ready(format!("resource reconciliation failed: {error}"))
            }
            None if state == InstanceState::Active => ResourcesReady {
                status: "True",
                reason: "AllResourcesReady",
                message: "all resources are created and ready".into(),
            },
            // In progress with no node waiting (a pending node's data is an error above).
            None => ResourcesReady::not_ready("awaiting resource readiness: <nil>".into()),
        };
        Self {
            state,
            resources_ready,
        }
    }
}

/// The messages `pick` takes from the node states, with their node ids, in topological order.
fn in_order<'p>(
    pass: &'p Pass<'_>,
    pick: fn(&NodeState) -> Option<&String>,
) -> Vec<(&'p str, &'p String)> {
    pass.graph()
        .order()
        .iter()
        .filter_map(|id| pass.state(id).and_then(pick).map(|m| (id.as_str(), m)))
        .collect()
}

/// The author status fields of `rgd` over `variables` (kro.md §5.4): a field whose data is
/// pending is absent, and a field that fails leaves it and the fields after it out of this
/// pass; `state` and `conditions` are kro's own.
/// A field that evaluates to bytes is an error: kro writes no status at all then.
pub fn author_status(
    rgd: &Value,
    variables: &Variables,
) -> Result<Map<String, Value>, StatusError> {
    let mut out = Map::new();
    if let Some(fields) = rgd
        .pointer("/spec/schema/status")
        .and_then(Value::as_object)
    {
        match evaluate_status(fields, variables, &mut out) {
            // A failing field only ends this pass's evaluation early, as kro's does.
            Ok(()) | Err(StatusError::Field { .. }) => {}
            Err(bytes @ StatusError::Bytes { .. }) => return Err(bytes),
        }
    }
    out.remove("state");
    out.remove("conditions");
    Ok(out)
}
