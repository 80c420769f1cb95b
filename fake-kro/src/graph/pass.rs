//! One pass over the graph as a state machine without I/O (kro.md §5.4): the engine settles
//! every node it can decide alone (skipped, pending, in error) and hands the caller each node
//! it must observe, with its rendered desired object; the caller reads or applies it and
//! reports back. `IdentityWalk` is deletion's walk (kro.md §5.8).

use std::collections::BTreeMap;

use serde_json::Value;

use super::gate::{Inclusion, inclusion, readiness};
use super::template::{inherit_namespace, instance_scope, render_value};
use super::{Graph, Node};
use crate::eval::{EvalError, Variables};
use crate::pluralize::pluralize;

/// Outcome of one node in a pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Observed and ready.
    Synced,
    /// Excluded by includeWhen, or depending on an excluded node.
    Skipped,
    /// Expected but not (yet) ready: kro's readiness text.
    Waiting(String),
    /// Its data is not there yet.
    Pending(String),
    Error(String),
}

/// How a pass judges the readiness of an observed node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Readiness {
    /// readyWhen on the observed object, as kro does.
    #[default]
    Evaluate,
    /// Every node waits with "no observed state" (a script's `readyAfter` not yet elapsed).
    Held,
    /// Offline rendering: a node whose object rendered counts as observed and ready.
    Assumed,
}

/// A CEL evaluation failure forced onto one node, or onto every node (a script's `fail`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFault {
    pub node: Option<String>,
    pub message: String,
}

impl NodeFault {
    pub fn hits(&self, id: &str) -> bool {
        self.node.as_deref().is_none_or(|n| n == id)
    }
}

/// What a pass needs besides the graph and the instance.
#[derive(Clone, Debug, Default)]
pub struct PassOptions {
    /// The instance's namespace, inherited by namespaced children without one (`None`: the
    /// instance is cluster-scoped).
    pub namespace: Option<String>,
    pub readiness: Readiness,
    pub cel_fault: Option<NodeFault>,
}

/// A node the caller must observe, with its rendered desired object (namespace inherited).
#[derive(Clone, Debug)]
pub struct Visit<'g> {
    pub node: &'g Node,
    pub desired: Value,
}

impl Visit<'_> {
    /// An external reference: read, never applied, pruned or deleted.
    pub fn is_external(&self) -> bool {
        self.node.template.is_none()
    }
}

/// One reconcile pass: node states, the variables expressions see, and what blocked the pass.
#[derive(Debug)]
pub struct Pass<'g> {
    graph: &'g Graph,
    options: PassOptions,
    /// Position of the next node in topological order.
    cursor: usize,
    /// A child being deleted by someone else stops the walk (kro's `ResourceDeleting`).
    resource_deleting: Option<String>,
    states: BTreeMap<String, NodeState>,
    variables: Variables,
    /// The first pending node's message, as kro surfaces it.
    first_pending: Option<String>,
}

impl<'g> Pass<'g> {
    pub fn new(graph: &'g Graph, instance: &Value, options: PassOptions) -> Self {
        Self {
            graph,
            options,
            cursor: 0,
            resource_deleting: None,
            states: BTreeMap::new(),
            variables: instance_scope(instance),
            first_pending: None,
        }
    }

    /// Settles nodes in topological order until one must be observed; `None` when the walk is
    /// over.
    pub fn next_visit(&mut self) -> Option<Visit<'g>> {
        let graph = self.graph;
        while self.resource_deleting.is_none() {
            let id = graph.order.get(self.cursor)?;
            self.cursor += 1;
            let Some(node) = graph.node(id) else {
                continue;
            };
            if let Some(desired) = self.prepare(node) {
                return Some(Visit { node, desired });
            }
        }
        None
    }

    /// Gates and renders one node: its desired object, or `None` once it settled without one.
    fn prepare(&mut self, node: &Node) -> Option<Value> {
        let id = node.id.as_str();
        let skipped = |d: &String| matches!(self.states.get(d), Some(NodeState::Skipped));
        if node.dependencies.iter().any(skipped) {
            return self.settle(id, NodeState::Skipped);
        }
        if let Some(dep) = node
            .dependencies
            .iter()
            .find(|d| !matches!(self.states.get(*d), Some(NodeState::Synced)))
        {
            let why = match self.states.get(dep) {
                Some(NodeState::Waiting(w) | NodeState::Pending(w)) => w.clone(),
                _ => format!("node \"{dep}\": no observed state: waiting for readiness"),
            };
            let message = format!(
                "waiting for unresolved resource: {}: node \"{id}\": dependent node \"{dep}\" not ready: {why} (data pending)",
                gvr_of(node.object())
            );
            self.first_pending.get_or_insert(message.clone());
            return self.settle(id, NodeState::Pending(message));
        }
        match inclusion(node, &self.variables) {
            Inclusion::Included => {}
            Inclusion::Excluded => return self.settle(id, NodeState::Skipped),
            Inclusion::Pending(why) => return self.pending(node, why),
            Inclusion::Failed(why) => return self.settle(id, NodeState::Error(why)),
        }
        let object = node.object()?;
        if let Some(fault) = self.options.cel_fault.as_ref().filter(|f| f.hits(id)) {
            let message = fault.message.clone();
            return self.settle(id, NodeState::Error(message));
        }
        let mut desired = match render_value(object, &self.variables) {
            Ok(rendered) => rendered,
            Err(EvalError::Pending(p)) => {
                return self.pending(
                    node,
                    format!("node \"{id}\": failed to evaluate expression: {p}"),
                );
            }
            Err(EvalError::Failed(e)) => {
                let message = format!("node \"{id}\": failed to evaluate expression: {e}");
                return self.settle(id, NodeState::Error(message));
            }
        };
        if let Err(e) = inherit_namespace(id, &mut desired, self.options.namespace.as_deref()) {
            return self.settle(id, NodeState::Error(e));
        }
        Some(desired)
    }

    fn settle(&mut self, id: &str, state: NodeState) -> Option<Value> {
        self.states.insert(id.to_string(), state);
        None
    }

    /// A node whose own data is pending; the pass reports the first one with its gvr.
    fn pending(&mut self, node: &Node, why: String) -> Option<Value> {
        self.first_pending.get_or_insert_with(|| {
            format!(
                "waiting for unresolved resource: {}: {why} (data pending)",
                gvr_of(node.object())
            )
        });
        self.settle(&node.id, NodeState::Pending(why))
    }

    /// Node `id`'s object as read or applied: its readiness sets its state, and dependents see
    /// it from now on.
    pub fn observed(&mut self, id: &str, object: Value) {
        let ready_when = self
            .graph
            .node(id)
            .map(|n| n.ready_when.as_slice())
            .unwrap_or_default();
        let state = match self.options.readiness {
            Readiness::Assumed => Ok(()),
            Readiness::Held => readiness(id, ready_when, &object, true),
            Readiness::Evaluate => readiness(id, ready_when, &object, false),
        };
        self.variables.insert_resource(id, object);
        self.states.insert(
            id.to_string(),
            state.map_or_else(NodeState::Waiting, |()| NodeState::Synced),
        );
    }

    /// Node `id`'s object does not exist (yet).
    pub fn not_found(&mut self, id: &str) {
        let why = format!("node \"{id}\": no observed state: waiting for readiness");
        self.states.insert(id.to_string(), NodeState::Waiting(why));
    }

    /// Reading or applying node `id` failed.
    pub fn failed(&mut self, id: &str, message: String) {
        self.states
            .insert(id.to_string(), NodeState::Error(message));
    }

    /// Node `id`'s child is being deleted by someone else: the walk stops (kro.md §5.6).
    pub fn resource_is_deleting(&mut self, id: &str, object: &Value) {
        self.resource_deleting = Some(format!(
            "resource \"{}\" for node \"{id}\" is currently being deleted; waiting for deletion to complete before continuing reconciliation",
            display_name(object)
        ));
        let why = format!("node \"{id}\": being deleted");
        self.states.insert(id.to_string(), NodeState::Waiting(why));
    }

    pub fn graph(&self) -> &'g Graph {
        self.graph
    }

    pub fn state(&self, id: &str) -> Option<&NodeState> {
        self.states.get(id)
    }

    pub fn states(&self) -> &BTreeMap<String, NodeState> {
        &self.states
    }

    /// Every variable so far: `schema` and each node observed in this pass.
    pub fn variables(&self) -> &Variables {
        &self.variables
    }

    pub fn first_pending(&self) -> Option<&str> {
        self.first_pending.as_deref()
    }

    pub fn resource_deleting(&self) -> Option<&str> {
        self.resource_deleting.as_deref()
    }

    /// Nothing pending and no node in error: kro prunes only then.
    pub fn is_clean(&self) -> bool {
        self.first_pending.is_none()
            && !self
                .states
                .values()
                .any(|s| matches!(s, NodeState::Error(_)))
    }

    /// Ids of the skipped nodes, in topological order (what pruning removes).
    pub fn skipped(&self) -> impl Iterator<Item = &'g str> + '_ {
        let graph = self.graph;
        graph
            .order
            .iter()
            .filter(|id| matches!(self.states.get(*id), Some(NodeState::Skipped)))
            .map(String::as_str)
    }

    /// The variables status expressions see: `schema` and the nodes whose object this pass
    /// observed (synced or waiting), not those that ended in error.
    pub fn observed_variables(&self) -> Variables {
        let mut observed = self.variables.clone();
        observed.retain(|id| {
            id == "schema"
                || matches!(
                    self.states.get(id),
                    Some(NodeState::Synced | NodeState::Waiting(_))
                )
        });
        observed
    }
}

/// Deletion's walk (kro.md §5.8): in topological order, the identity of every managed node
/// (external references are never deleted); a pending identity counts as deleted, and a
/// failing includeWhen stops the deletion, as in kro.
#[derive(Debug)]
pub struct IdentityWalk<'g> {
    graph: &'g Graph,
    namespace: Option<String>,
    cursor: usize,
    variables: Variables,
}

impl<'g> IdentityWalk<'g> {
    pub fn new(graph: &'g Graph, instance: &Value, namespace: Option<String>) -> Self {
        Self {
            graph,
            namespace,
            cursor: 0,
            variables: instance_scope(instance),
        }
    }

    /// The next managed node whose identity resolves, with its desired object; `Err` with
    /// kro's reason when an includeWhen condition fails.
    pub fn next_visit(&mut self) -> Result<Option<Visit<'g>>, String> {
        let graph = self.graph;
        while let Some(id) = graph.order.get(self.cursor) {
            self.cursor += 1;
            let Some(node) = graph.node(id) else {
                continue;
            };
            let Some(template) = node.template.as_ref() else {
                continue;
            };
            match inclusion(node, &self.variables) {
                Inclusion::Included => {}
                Inclusion::Excluded | Inclusion::Pending(_) => continue,
                Inclusion::Failed(why) => return Err(why),
            }
            let Ok(mut desired) = render_value(template, &self.variables) else {
                continue;
            };
            if inherit_namespace(id, &mut desired, self.namespace.as_deref()).is_err() {
                continue;
            }
            return Ok(Some(Visit { node, desired }));
        }
        Ok(None)
    }

    /// Node `id`'s object exists: dependents' identities may read it.
    pub fn observed(&mut self, id: &str, object: Value) {
        self.variables.insert_resource(id, object);
    }

    /// `schema` and every node observed so far.
    pub fn variables(&self) -> &Variables {
        &self.variables
    }
}

/// kro's `gvr "<group>/<version>, Resource=<plural>"` for a node's template.
fn gvr_of(template: Option<&Value>) -> String {
    let field = |p: &str| {
        template
            .and_then(|t| t.pointer(p))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let (group, version) = field("/apiVersion")
        .rsplit_once('/')
        .unwrap_or(("", field("/apiVersion")));
    format!(
        "gvr \"{group}/{version}, Resource={}\"",
        pluralize(&field("/kind").to_lowercase())
    )
}

/// The `"<ns>/<name>"` (or `"<name>"`) kro names a child by in its messages.
fn display_name(object: &Value) -> String {
    let text = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    match text("/metadata/namespace") {
        "" => text("/metadata/name").to_string(),
        namespace => format!("{namespace}/{}", text("/metadata/name")),
    }
}
