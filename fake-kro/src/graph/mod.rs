//! The graph engine: one pure model of kro's walk over an RGD for one instance (kro.md §5.4,
//! §5.7, §6.6), shared by `fake-kro render` and the simulator. It orders the nodes, gates each
//! one (dependencies, includeWhen), renders its template, judges its readiness and evaluates
//! the instance status; the caller brings the observations (fixtures offline, API reads in the
//! simulator), so nothing here does I/O.
//!
//! - `mod.rs`: the nodes of an RGD, their dependencies and kro's topological order.
//! - `template`: `${…}` rendering of templates and author status fields, namespace inheritance.
//! - `gate`: includeWhen and readyWhen.
//! - `pass`: one reconcile pass as a state machine (`Pass`), and deletion's identity walk.
//! - `outcome`: the instance `state`, the ResourcesReady condition and the author status.
//! - `authored`: author conditions (`status.conditions` expressions) evaluated and stamped.

mod authored;
mod gate;
mod outcome;
mod pass;
mod template;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use serde_json::{Value, json};

use crate::celtype;
use crate::expr::{self, Part, Scanned};

pub use authored::{AuthoredConditions, Stamp, author_condition_expressions, author_conditions};
pub use gate::{Inclusion, inclusion, readiness};
pub use outcome::{InstanceState, Outcome, ResourcesReady, author_status};
pub use pass::{
    COLLECTION_INDEX_LABEL, IdentityWalk, Item, MAX_COLLECTION_SIZE, NodeFault, NodeState, Pass,
    PassOptions, Readiness, Visit, expand_collection,
};
pub use template::{
    StatusError, evaluate_status, inherit_namespace, instance_scope, merge, render_value,
};

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
    /// forEach dimensions in order: iterator name and its `${…}` list expression; a node with
    /// any is a collection (kro.md §5.11).
    pub for_each: Vec<(String, String)>,
}

impl Node {
    /// A forEach collection: one object per combination of its dimensions' items.
    pub fn is_collection(&self) -> bool {
        !self.for_each.is_empty()
    }

    /// The object kro renders for this node: its template, or its external reference.
    pub fn object(&self) -> Option<&Value> {
        self.template.as_ref().or(self.external.as_ref())
    }
}

/// The strings of a JSON array (other items and other values give nothing).
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

/// The nodes of an RGD with their dependencies (resource ids referenced by templates, forEach
/// dimensions and includeWhen, as kro's dependency graph counts them).
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
            let mut for_each = Vec::new();
            for dimension in r
                .get("forEach")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
            {
                for (name, list) in dimension {
                    expressions_in(list, &mut expressions);
                    if let Some(list) = list.as_str() {
                        for_each.push((name.clone(), list.to_string()));
                    }
                }
            }
            // Iterators are variables of the node's own items, not dependencies.
            let iterators: BTreeSet<&str> = for_each.iter().map(|(n, _)| n.as_str()).collect();
            let include_when = strings_of(r.get("includeWhen"));
            include_when
                .iter()
                .for_each(|s| expressions_in(&json!(s), &mut expressions));
            let dependencies = expressions
                .iter()
                .filter_map(|e| celtype::parse(e).ok())
                .flat_map(|p| celtype::identifiers(&p))
                .filter(|x| ids.contains(x) && *x != id && !iterators.contains(x.as_str()))
                .collect();
            Some(Node {
                id,
                index,
                template: r.get("template").cloned(),
                external: r.get("externalRef").cloned(),
                ready_when: strings_of(r.get("readyWhen")),
                include_when,
                dependencies,
                for_each,
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

/// An RGD's nodes with kro's processing order.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    nodes: Vec<Node>,
    order: Vec<String>,
}

impl Graph {
    /// The graph of `rgd`; a cycle is an error.
    pub fn of(rgd: &Value) -> Result<Self, String> {
        let nodes = nodes(rgd);
        let order = topological_order(&nodes)?;
        Ok(Self { nodes, order })
    }

    /// Node ids in topological order.
    pub fn order(&self) -> &[String] {
        &self.order
    }

    /// The node with this id (the first one, should the RGD repeat an id).
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The nodes in topological order.
    pub fn ordered(&self) -> impl Iterator<Item = &Node> {
        self.order.iter().filter_map(|id| self.node(id))
    }
}
