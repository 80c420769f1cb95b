//! One pass over the graph as a state machine without I/O (kro.md §5.4): the engine settles
//! every node it can decide alone (skipped, pending, in error) and hands the caller each node
//! it must observe, with its rendered desired object; the caller reads or applies it and
//! reports back. `IdentityWalk` is deletion's walk (kro.md §5.8).

use std::collections::BTreeMap;

use serde_json::Value;

use super::gate::{Inclusion, collection_readiness, inclusion, readiness};
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

/// A node the caller must observe, with its rendered desired object (namespace inherited);
/// for a forEach collection, one visit per item.
#[derive(Clone, Debug)]
pub struct Visit<'g> {
    pub node: &'g Node,
    pub desired: Value,
    /// The item's place in its collection (`None` for a single resource).
    pub item: Option<Item>,
}

impl Visit<'_> {
    /// An external reference: read, never applied, pruned or deleted.
    pub fn is_external(&self) -> bool {
        self.node.template.is_none()
    }
}

/// An item of a forEach collection: its index in kro's expansion order and the collection's
/// size (kro's `collection-index` and `collection-size` labels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item {
    pub index: usize,
    pub size: usize,
}

impl Item {
    /// kro's id of the expanded item in apply results: `<node>-<index>`.
    pub fn expanded_id(&self, node: &str) -> String {
        format!("{node}-{}", self.index)
    }
}

/// kro's `--rgd-max-collection-size` default.
pub const MAX_COLLECTION_SIZE: usize = 1000;

/// The label kro puts on every desired item of a collection.
pub const COLLECTION_INDEX_LABEL: &str = "kro.run/collection-index";

/// A collection being visited: its desired items and what the caller reported for each.
#[derive(Debug)]
struct Expansion {
    id: String,
    desired: Vec<Value>,
    observed: Vec<Option<Value>>,
    /// Items handed to the caller so far.
    handed: usize,
    /// Items the caller reported (observed, not found or failed).
    reported: usize,
    failed: Option<String>,
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
    /// The collection whose items are being visited.
    expansion: Option<Expansion>,
    /// Collections expanded in this pass and their sizes.
    sizes: BTreeMap<String, usize>,
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
            expansion: None,
            sizes: BTreeMap::new(),
        }
    }

    /// Settles nodes in topological order until one must be observed; `None` when the walk is
    /// over. A collection is handed out one item at a time; the caller reports each visit
    /// (`observed`, `not_found`, `failed`, or their `_item` forms) before asking for the next.
    pub fn next_visit(&mut self) -> Option<Visit<'g>> {
        let graph = self.graph;
        while self.resource_deleting.is_none() {
            if let Some(visit) = self.next_item() {
                return Some(visit);
            }
            let id = graph.order.get(self.cursor)?;
            self.cursor += 1;
            let Some(node) = graph.node(id) else {
                continue;
            };
            if let Some(desired) = self.prepare(node) {
                return Some(Visit {
                    node,
                    desired,
                    item: None,
                });
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
        if node.is_collection() {
            return self.expand(node, object);
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

    /// Expands a collection (kro's forEach, kro.md §5.11) and starts handing out its items; an
    /// empty collection is observed (and ready) at once.
    fn expand(&mut self, node: &Node, template: &Value) -> Option<Value> {
        let id = node.id.as_str();
        let namespace = self.options.namespace.clone();
        match expand_collection(node, template, &self.variables, namespace.as_deref()) {
            Err(EvalError::Pending(why)) => self.pending(node, why),
            Err(EvalError::Failed(why)) => self.settle(id, NodeState::Error(why)),
            Ok(desired) if desired.is_empty() => self.collection_observed(id, Vec::new(), 0),
            Ok(desired) => {
                self.expansion = Some(Expansion {
                    id: id.to_string(),
                    observed: vec![None; desired.len()],
                    desired,
                    handed: 0,
                    reported: 0,
                    failed: None,
                });
                None
            }
        }
    }

    /// The next item of the collection being visited, if any is left to hand out.
    fn next_item(&mut self) -> Option<Visit<'g>> {
        let graph = self.graph;
        let expansion = self.expansion.as_mut()?;
        let index = expansion.handed;
        let desired = expansion.desired.get(index)?.clone();
        expansion.handed += 1;
        let size = expansion.desired.len();
        let node = graph.node(&expansion.id)?;
        Some(Visit {
            node,
            desired,
            item: Some(Item { index, size }),
        })
    }

    /// Item `index` of collection `id` as read or applied (`None`: it does not exist yet).
    /// Once every item is reported, the collection's readiness sets its state and dependents
    /// see its observed items, in expansion order.
    pub fn observed_item(&mut self, id: &str, index: usize, object: Option<Value>) {
        let Some(expansion) = self.expansion.as_mut().filter(|e| e.id == id) else {
            return;
        };
        if let Some(slot) = expansion.observed.get_mut(index) {
            *slot = object;
            expansion.reported += 1;
        }
        self.finish_collection();
    }

    /// Reading or applying item `index` of collection `id` failed.
    pub fn failed_item(&mut self, id: &str, index: usize, message: String) {
        let Some(expansion) = self.expansion.as_mut().filter(|e| e.id == id) else {
            return;
        };
        expansion
            .failed
            .get_or_insert_with(|| format!("collection item {index}: {message}"));
        expansion.reported += 1;
        self.finish_collection();
    }

    fn finish_collection(&mut self) {
        let done = self
            .expansion
            .as_ref()
            .is_some_and(|e| e.reported >= e.desired.len());
        if !done {
            return;
        }
        let Some(expansion) = self.expansion.take() else {
            return;
        };
        if let Some(message) = expansion.failed {
            self.states.insert(expansion.id, NodeState::Error(message));
            return;
        }
        let size = expansion.desired.len();
        let observed: Vec<Value> = expansion.observed.into_iter().flatten().collect();
        self.collection_observed(&expansion.id, observed, size);
    }

    /// Collection `id`'s observed items (in expansion order) against its desired size: its
    /// readiness sets its state, and dependents see the items from now on.
    pub fn observed_collection(&mut self, id: &str, observed: Vec<Value>, desired: usize) {
        self.collection_observed(id, observed, desired);
    }

    /// The number of items collection `id` expanded to in this pass (`None`: not expanded).
    pub fn collection_size(&self, id: &str) -> Option<usize> {
        self.sizes.get(id).copied()
    }

    fn collection_observed(
        &mut self,
        id: &str,
        observed: Vec<Value>,
        desired: usize,
    ) -> Option<Value> {
        self.sizes.insert(id.to_string(), desired);
        let ready_when = self.ready_when(id);
        let state = match self.options.readiness {
            _ if desired == 0 => Ok(()),
            Readiness::Assumed => Ok(()),
            Readiness::Held => readiness(id, &[], &Value::Null, true),
            Readiness::Evaluate => collection_readiness(id, ready_when, &observed, desired),
        };
        self.variables.insert_collection(id, observed);
        self.set_readiness(id, state);
        None
    }

    /// Node `id`'s readyWhen conditions.
    fn ready_when(&self, id: &str) -> &'g [String] {
        let graph = self.graph;
        graph
            .node(id)
            .map(|n| n.ready_when.as_slice())
            .unwrap_or_default()
    }

    /// Synced when ready, else waiting with the readiness text.
    fn set_readiness(&mut self, id: &str, readiness: Result<(), String>) {
        self.states.insert(
            id.to_string(),
            readiness.map_or_else(NodeState::Waiting, |()| NodeState::Synced),
        );
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
        let ready_when = self.ready_when(id);
        let state = match self.options.readiness {
            Readiness::Assumed => Ok(()),
            Readiness::Held => readiness(id, ready_when, &object, true),
            Readiness::Evaluate => readiness(id, ready_when, &object, false),
        };
        self.variables.insert_resource(id, object);
        self.set_readiness(id, state);
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
    /// The remaining items of the collection being walked.
    items: std::collections::VecDeque<Visit<'g>>,
    /// The collection being walked and its items found so far, which dependents see once
    /// its last item is visited.
    collection: Option<(String, Vec<Value>)>,
}

impl<'g> IdentityWalk<'g> {
    pub fn new(graph: &'g Graph, instance: &Value, namespace: Option<String>) -> Self {
        Self {
            graph,
            namespace,
            cursor: 0,
            variables: instance_scope(instance),
            items: std::collections::VecDeque::new(),
            collection: None,
        }
    }

    /// The next managed node whose identity resolves, with its desired object; `Err` with
    /// kro's reason when an includeWhen condition fails.
    pub fn next_visit(&mut self) -> Result<Option<Visit<'g>>, String> {
        let graph = self.graph;
        if let Some(visit) = self.items.pop_front() {
            return Ok(Some(visit));
        }
        if let Some((id, found)) = self.collection.take() {
            self.variables.insert_collection(id, found);
        }
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
            if node.is_collection() {
                let namespace = self.namespace.as_deref();
                let Ok(items) = expand_collection(node, template, &self.variables, namespace)
                else {
                    continue;
                };
                let size = items.len();
                if size == 0 {
                    self.variables.insert_collection(id.clone(), Vec::new());
                    continue;
                }
                self.collection = Some((id.clone(), Vec::new()));
                self.items = items
                    .into_iter()
                    .enumerate()
                    .map(|(index, desired)| Visit {
                        node,
                        desired,
                        item: Some(Item { index, size }),
                    })
                    .collect();
                match self.items.pop_front() {
                    Some(visit) => return Ok(Some(visit)),
                    None => continue,
                }
            }
            let Ok(mut desired) = render_value(template, &self.variables) else {
                continue;
            };
            if inherit_namespace(id, &mut desired, self.namespace.as_deref()).is_err() {
                continue;
            }
            return Ok(Some(Visit {
                node,
                desired,
                item: None,
            }));
        }
        Ok(None)
    }

    /// Node `id`'s object exists: dependents' identities may read it (a collection's items
    /// once its last one is visited, in expansion order).
    pub fn observed(&mut self, id: &str, object: Value) {
        match &mut self.collection {
            Some((collection, found)) if collection == id => found.push(object),
            _ => self.variables.insert_resource(id, object),
        }
    }

    /// `schema` and every node observed so far.
    pub fn variables(&self) -> &Variables {
        &self.variables
    }
}

/// A collection's desired items (kro's `hardResolveCollection`): the cartesian product of its
/// dimensions (the last one varying fastest), each item rendered with its iterators, its
/// namespace inherited and kro's index label set; identities must be unique. An empty
/// dimension gives no items. Errors carry kro's texts.
pub fn expand_collection(
    node: &Node,
    template: &Value,
    variables: &Variables,
    namespace: Option<&str>,
) -> Result<Vec<Value>, EvalError> {
    let id = node.id.as_str();
    let mut dimensions = Vec::new();
    for (name, list) in &node.for_each {
        let value = match crate::expr::scan(list) {
            Ok(crate::expr::Scanned::Standalone(e)) => variables.evaluate(&e),
            _ => Ok(Value::String(list.clone())),
        };
        let items = match value {
            Ok(Value::Array(items)) => items,
            Ok(Value::Null) => {
                return Err(EvalError::Failed(format!(
                    "forEach \"{name}\": expression \"{list}\" returned null, expected list"
                )));
            }
            Ok(_) => {
                return Err(EvalError::Failed(format!(
                    "forEach \"{name}\": expression \"{list}\" did not return a list"
                )));
            }
            Err(EvalError::Pending(p)) => {
                return Err(EvalError::Pending(format!(
                    "node \"{id}\": forEach \"{name}\": {p}"
                )));
            }
            Err(EvalError::Failed(e)) => {
                return Err(EvalError::Failed(format!("forEach \"{name}\": {e}")));
            }
        };
        if items.is_empty() {
            return Ok(Vec::new());
        }
        dimensions.push((name.as_str(), items));
    }
    let mut total = 1usize;
    for (_, items) in &dimensions {
        total = total.saturating_mul(items.len());
        if total > MAX_COLLECTION_SIZE {
            return Err(EvalError::Failed(format!(
                "collection size of {total} is over the maximum collection size of {MAX_COLLECTION_SIZE}"
            )));
        }
    }
    let mut desired = Vec::with_capacity(total);
    let mut identities = std::collections::BTreeSet::new();
    for index in 0..total {
        let mut scope = variables.clone();
        let mut rest = index;
        for (name, items) in dimensions.iter().rev() {
            scope.insert(*name, items[rest % items.len()].clone());
            rest /= items.len();
        }
        let mut item = render_value(template, &scope).map_err(|e| match e {
            EvalError::Pending(p) => {
                EvalError::Pending(format!("node \"{id}\": failed to evaluate expression: {p}"))
            }
            EvalError::Failed(e) => {
                EvalError::Failed(format!("node \"{id}\": collection iteration eval: {e}"))
            }
        })?;
        inherit_namespace(id, &mut item, namespace).map_err(EvalError::Failed)?;
        let identity = identity_of(&item);
        if !identities.insert(identity.clone()) {
            return Err(EvalError::Failed(format!(
                "node \"{id}\" identity collision: duplicate identity: {identity}"
            )));
        }
        set_label(&mut item, COLLECTION_INDEX_LABEL, &index.to_string());
        desired.push(item);
    }
    Ok(desired)
}

/// The group and version of an apiVersion (`v1` is the core group's).
fn group_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// kro's identity key of an object: `<group>/<version>/<kind>/<namespace>/<name>`.
fn identity_of(object: &Value) -> String {
    let text = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let (group, version) = group_version(text("/apiVersion"));
    format!(
        "{group}/{version}/{}/{}/{}",
        text("/kind"),
        text("/metadata/namespace"),
        text("/metadata/name")
    )
}

/// Sets one label on an object, creating `metadata.labels` as needed.
pub fn set_label(object: &mut Value, key: &str, value: &str) {
    if let Some(labels) = object_entry(object, "metadata")
        .and_then(|m| object_entry(m, "labels"))
        .and_then(Value::as_object_mut)
    {
        labels.insert(key.to_string(), Value::String(value.to_string()));
    }
}

/// The value under `key` of `parent` (an object), made an empty object when absent or not an
/// object; `None` when `parent` is not an object.
fn object_entry<'v>(parent: &'v mut Value, key: &str) -> Option<&'v mut Value> {
    let child = parent.as_object_mut()?.entry(key).or_insert(Value::Null);
    if !child.is_object() {
        *child = Value::Object(Default::default());
    }
    Some(child)
}

/// kro's `gvr "<group>/<version>, Resource=<plural>"` for a node's template.
fn gvr_of(template: Option<&Value>) -> String {
    let field = |p: &str| {
        template
            .and_then(|t| t.pointer(p))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let (group, version) = group_version(field("/apiVersion"));
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
