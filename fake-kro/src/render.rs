//! Offline rendering (`fake-kro render`): an instance is defaulted against the generated CRD, the
//! graph engine renders the child resources in dependency order (a node whose object renders
//! counts as observed, through its observed-state fixture if there is one), and the instance
//! status is evaluated from the fixtures — "RGD + instance in, expansion and status out".

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Map, Value};

use kany8s_apiserver::status::{ApiError, ResourceName};

use crate::catalog::Catalog;
use crate::check::{CheckOptions, Severity, check};
use crate::crd::{self, CrdOptions};
use crate::graph::{Graph, NodeState, Pass, PassOptions, Readiness, Visit, evaluate_status, merge};

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

/// How an RGD is rendered.
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    /// Admit the RGD first, typed against these kinds (built-in kinds plus CRDs given with
    /// `--crds`), as `fake-kro render` does; `None` renders any graph, to study the engine's
    /// runtime behaviour on graphs kro's admission would stop.
    pub admission: Option<Arc<Catalog>>,
}

/// Renders `instance` of `rgd` without admission; `observed` maps resource ids to
/// observed-state fixtures.
pub fn render(
    rgd: &Value,
    instance: &Value,
    observed: &BTreeMap<String, Value>,
) -> Result<Rendered, String> {
    render_with(rgd, instance, observed, &RenderOptions::default())
}

/// [`render`] with `options`: with admission, an RGD kro would not accept (its first admission
/// error, typed against the given kinds) is refused before any instance is rendered, as kro
/// never serves an instance of an RGD it did not accept.
pub fn render_with(
    rgd: &Value,
    instance: &Value,
    observed: &BTreeMap<String, Value>,
    options: &RenderOptions,
) -> Result<Rendered, String> {
    if let Some(catalog) = &options.admission
        && let Some(refused) = check(
            rgd,
            &CheckOptions {
                catalog: catalog.clone(),
                ..CheckOptions::default()
            },
        )
        .into_iter()
        .find(|d| d.severity == Severity::Error)
    {
        return Err(format!(
            "kro does not accept the RGD: error[{}]: {}",
            refused.id, refused.message
        ));
    }
    let generated = crd::generate(rgd, &CrdOptions::default())?;
    let mut instance = defaulted_instance(&generated, instance)?;
    let graph = Graph::of(rgd)?;
    // An instance file without a namespace is rendered as if created in `default`, where
    // kubectl would put it; a cluster-scoped instance has none to give its children.
    let namespace = (generated.pointer("/spec/scope").and_then(Value::as_str) != Some("Cluster"))
        .then(|| {
            instance
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .unwrap_or("default")
                .to_string()
        });
    let options = PassOptions {
        namespace,
        readiness: Readiness::Assumed,
        cel_fault: None,
    };
    let mut pass = Pass::new(&graph, &instance, options);
    let mut rendered = Rendered::default();
    // Nodes the status may read: a resource with a fixture, a collection with one for every
    // item (an empty collection is observed as such).
    let mut with_fixtures: BTreeSet<String> = BTreeSet::new();
    let mut items_without_fixture: BTreeSet<String> = BTreeSet::new();
    while let Some(Visit {
        node,
        desired,
        item,
    }) = pass.next_visit()
    {
        // Dependents see the observed object when there is a fixture for it (a collection
        // item's fixture is named by kro's expanded id, `<id>-<index>`).
        let key = item.map_or_else(|| node.id.clone(), |i| i.expanded_id(&node.id));
        let mut seen = desired.clone();
        match observed.get(&key) {
            Some(fixture) => merge(&mut seen, fixture),
            None if item.is_some() => {
                items_without_fixture.insert(node.id.clone());
            }
            None => {}
        }
        if observed.contains_key(&key) && item.is_none() {
            with_fixtures.insert(node.id.clone());
        }
        match item {
            Some(item) => pass.observed_item(&node.id, item.index, Some(seen)),
            None => pass.observed(&node.id, seen),
        }
        if node.template.is_some() {
            rendered.resources.push((key, desired));
        }
    }
    for node in graph.ordered().filter(|n| n.is_collection()) {
        if pass.collection_size(&node.id).is_some() && !items_without_fixture.contains(&node.id) {
            with_fixtures.insert(node.id.clone());
        }
    }
    for id in graph.order() {
        let why = match pass.state(id) {
            Some(NodeState::Skipped) => "skipped",
            Some(NodeState::Pending(why) | NodeState::Error(why)) => why.as_str(),
            _ => continue,
        };
        rendered.not_rendered.insert(id.clone(), why.to_string());
    }
    // Status sees only resources with observed-state fixtures (kro reads the cluster).
    let mut status_variables = pass.variables().clone();
    status_variables.retain(|id| id == "schema" || with_fixtures.contains(id));
    let mut status = Map::new();
    if let Some(fields) = rgd
        .pointer("/spec/schema/status")
        .and_then(Value::as_object)
    {
        evaluate_status(fields, &status_variables, &mut status).map_err(|e| e.to_string())?;
    }
    instance["status"] = Value::Object(status);
    rendered.instance = instance;
    Ok(rendered)
}

/// The instance without status, as the API server would store it (pruned, defaulted — inside
/// defaulted objects too — and validated against the generated CRD's schema: value constraints
/// and CEL rules); a refusal is the API server's message.
fn defaulted_instance(generated: &Value, instance: &Value) -> Result<Value, String> {
    let schema = generated
        .pointer("/spec/versions/0/schema/openAPIV3Schema")
        .cloned()
        .unwrap_or_default();
    let mut instance = instance.clone();
    if let Some(o) = instance.as_object_mut() {
        o.remove("status");
    }
    let (_pruned, errors) = kany8s_apiserver::schema::admit(&mut instance, &schema, None, false);
    if errors.is_empty() {
        return Ok(instance);
    }
    let text = |value: Option<&Value>| {
        value
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let resource = ResourceName {
        group: text(generated.pointer("/spec/group")),
        plural: text(generated.pointer("/spec/names/plural")),
        kind: text(generated.pointer("/spec/names/kind")),
    };
    let name = text(instance.pointer("/metadata/name"));
    Err(ApiError::invalid(&resource, &name, &errors).message)
}
