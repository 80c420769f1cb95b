//! The instance controller (kro.md §5.4): observe the instance, its RGD and its script; manage
//! kro's finalizer and labels; drive the graph engine's pass — read every node it renders,
//! then apply the children and prune — and write kro's status. Deletion is `deletion`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::children::{self, Children, Owner};
use super::rgd::rgd_resource;
use super::script::{Failure, FailureKind, KubeconfigSecret, Script};
use super::status::{StatusParts, write_status};
use super::{FINALIZER, Shared, SimError, SimOptions, deletion, lock, now};
use crate::conditions::{self, Condition, Conditions};
use crate::eval::Variables;
use crate::graph::{
    AuthoredConditions, Graph, InstanceState, Item, Outcome, Pass, PassOptions, ResourcesReady,
    Stamp, StatusError, Visit, author_condition_expressions, author_conditions, author_status,
    instance_scope,
};

/// One instance controller: the kind it reconciles and the RGD that defines it.
pub(super) struct InstanceContext {
    pub(super) client: Client,
    pub(super) options: SimOptions,
    pub(super) resource: ApiResource,
    pub(super) namespaced: bool,
    pub(super) rgd_name: String,
    pub(super) shared: Arc<Mutex<Shared>>,
    /// The RGDs, cached by the RGD controller.
    pub(super) rgds: kube::runtime::reflector::Store<DynamicObject>,
}

impl InstanceContext {
    pub(super) fn children<'a>(&'a self, seen: &'a Observation) -> Children<'a> {
        Children {
            mode: self.options.mode,
            simulators: self.options.child_simulators,
            client: &self.client,
            shared: &self.shared,
            instance_uid: &seen.uid,
            first_pass: seen.first_pass,
            script: &seen.script,
        }
    }

    /// The namespace children inherit (`None` for cluster-scoped instances).
    pub(super) fn child_namespace(&self, seen: &Observation) -> Option<String> {
        self.namespaced.then(|| seen.namespace.clone())
    }
}

/// What a pass observed before acting: the instance, its RGD, its script and the pass's clock.
pub(super) struct Observation {
    pub(super) api: Api<DynamicObject>,
    pub(super) name: String,
    pub(super) namespace: String,
    pub(super) uid: String,
    pub(super) object: DynamicObject,
    pub(super) instance: Value,
    pub(super) rgd: Value,
    pub(super) script: Script,
    /// When the simulator first saw this instance (scripts count from here).
    pub(super) first_pass: Instant,
    pub(super) requeue: Duration,
}

impl Observation {
    /// The author conditions of this pass over `variables`, with kro's built-in `conditions`
    /// readable to them (`None`: the RGD declares none).
    pub(super) fn authored(
        &self,
        variables: &Variables,
        conditions: &Conditions,
    ) -> Option<AuthoredConditions> {
        let expressions = author_condition_expressions(&self.rgd)?;
        let previous = self.stored_conditions();
        let stamp = Stamp {
            previous: &previous,
            built_in: &conditions.list,
            set: conditions.set,
            generation: conditions.generation,
            now: &conditions.now,
        };
        Some(author_conditions(
            &expressions,
            variables,
            &self.instance,
            stamp,
        ))
    }

    /// The stored conditions, unchanged, when the RGD declares author conditions.
    pub(super) fn kept_author_conditions(&self) -> Option<AuthoredConditions> {
        author_condition_expressions(&self.rgd)?;
        Some(AuthoredConditions {
            conditions: self.stored_conditions(),
            degraded: None,
        })
    }

    fn stored_conditions(&self) -> Vec<Value> {
        self.instance
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// The author status fields over `variables`, with the script's overrides; an error when
    /// kro could not write them (a field holding bytes).
    pub(super) fn author(&self, variables: &Variables) -> Result<Map<String, Value>, StatusError> {
        let mut author = author_status(&self.rgd, variables)?;
        self.script.override_status(&mut author);
        Ok(author)
    }
}

/// Takes the instance as the watch cached it (as kro reads its informer's) and its RGD (`None`
/// when the RGD is gone) and starts the instance's clock.
async fn observe(
    obj: &DynamicObject,
    ctx: &InstanceContext,
) -> Result<Option<Observation>, SimError> {
    let name = obj.name_any();
    let namespace = obj.namespace().unwrap_or_default();
    let api: Api<DynamicObject> = if ctx.namespaced {
        Api::namespaced_with(ctx.client.clone(), &namespace, &ctx.resource)
    } else {
        Api::all_with(ctx.client.clone(), &ctx.resource)
    };
    let object = obj.clone();
    let cached = ctx
        .rgds
        .get(&ObjectRef::new_with(&ctx.rgd_name, rgd_resource()));
    let rgd = match cached {
        Some(rgd) => rgd,
        None => {
            // Not in the cache (yet): the server decides.
            let rgds: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &rgd_resource());
            let Some(rgd) = rgds.get_opt(&ctx.rgd_name).await? else {
                return Ok(None);
            };
            Arc::new(rgd)
        }
    };
    let to_value =
        |o: &DynamicObject| serde_json::to_value(o).map_err(|e| SimError::Invalid(e.to_string()));
    let uid = object.uid().unwrap_or_default();
    let first_pass = {
        let mut shared = lock(&ctx.shared);
        let memory = shared.instances.entry(uid.clone()).or_default();
        *memory.first_pass.get_or_insert_with(Instant::now)
    };
    let script = Script::of(&object);
    Ok(Some(Observation {
        rgd: to_value(&rgd)?,
        instance: to_value(&object)?,
        requeue: script.requeue_or(ctx.options.requeue),
        api,
        name,
        namespace,
        uid,
        object,
        script,
        first_pass,
    }))
}

pub(super) async fn reconcile_instance(
    obj: Arc<DynamicObject>,
    ctx: Arc<InstanceContext>,
) -> Result<Action, SimError> {
    let Some(seen) = observe(&obj, &ctx).await? else {
        return Ok(Action::await_change());
    };
    let mut conditions = Conditions::of(conditions::INSTANCE, &seen.instance, now());
    if seen.object.metadata.deletion_timestamp.is_some() {
        return deletion::delete_pass(&ctx, &seen, conditions).await;
    }
    let failure = seen.script.failure(seen.first_pass);
    let write = |conditions: Conditions, state, author, variables: &Variables| {
        let authored = seen.authored(variables, &conditions);
        let parts = StatusParts {
            conditions,
            state,
            author,
            authored,
        };
        write_status(&seen.api, &seen.object, parts, seen.requeue)
    };
    let scope = instance_scope(&seen.instance);
    if let Some(failure) = failure.filter(|f| f.kind == FailureKind::Manage) {
        let message = format!("finalizer/labeling failed: {}", failure.message);
        conditions.set(&Condition {
            type_: "InstanceManaged",
            status: "False",
            reason: "ManagementFailed",
            message: &message,
        });
        return write(
            conditions,
            InstanceState::InProgress,
            Ok(Map::new()),
            &scope,
        )
        .await;
    }
    ensure_managed(&ctx, &seen).await?;
    conditions.set(&Condition {
        type_: "InstanceManaged",
        status: "True",
        reason: "Managed",
        message: "instance is properly managed with finalizers and labels",
    });
    if failure.is_some_and(|f| f.kind == FailureKind::Graph) {
        conditions.set(&Condition {
            type_: "GraphResolved",
            status: "False",
            reason: "ResolutionFailed",
            message: "latest issued graph revision 1 failed",
        });
        // kro's early exit leaves the stored conditions alone when the author declares some.
        let parts = StatusParts {
            authored: seen.kept_author_conditions(),
            conditions,
            state: InstanceState::Error,
            author: Ok(Map::new()),
        };
        return write_status(&seen.api, &seen.object, parts, seen.requeue).await;
    }
    conditions.set(&Condition {
        type_: "GraphResolved",
        status: "True",
        reason: "Resolved",
        message: "runtime graph created and all resources resolved",
    });
    if is_suspended(&seen.object) {
        // v0.9.x: nodes are not processed; state stays ACTIVE with Ready False (quirks Q2, Q4).
        conditions.set(&ResourcesReady::suspended().condition());
        let author = seen.author(&scope);
        return write(conditions, InstanceState::Active, author, &scope).await;
    }
    let graph = Graph::of(&seen.rgd).map_err(SimError::Invalid)?;
    let (outcome, author, observed) = run_pass(&ctx, &seen, &graph, failure).await?;
    conditions.set(&outcome.resources_ready.condition());
    write(conditions, outcome.state, author, &observed).await
}

/// kro's two-phase walk (kro.md §5.4): read every node the engine renders, then apply the
/// ApplySet parent and the children, prune on a clean pass, and publish the script's kubeconfig.
/// The engine's outcome, the author status fields and the variables the pass observed.
async fn run_pass(
    ctx: &InstanceContext,
    seen: &Observation,
    graph: &Graph,
    failure: Option<&Failure>,
) -> Result<(Outcome, Result<Map<String, Value>, StatusError>, Variables), SimError> {
    let options = PassOptions {
        namespace: ctx.child_namespace(seen),
        readiness: seen.script.readiness(seen.first_pass),
        cel_fault: failure.and_then(Failure::cel_fault),
    };
    let mut pass = Pass::new(graph, &seen.instance, options);
    let owner = Owner {
        uid: &seen.uid,
        name: &seen.name,
        namespace: if ctx.namespaced { &seen.namespace } else { "" },
        resource: &ctx.resource,
        kro_version: &ctx.options.kro_version_label,
    };
    let children = ctx.children(seen);
    let queued = read_children(&mut pass, &children, &owner, failure).await;
    let mut mutated = false;
    if pass.resource_deleting().is_none() {
        let applied_items: BTreeSet<String> = queued
            .iter()
            .filter(|q| q.item.is_some())
            .map(Queued::key)
            .collect();
        mutated = apply_children(seen, &mut pass, &children, &owner, queued).await?;
        if pass.is_clean() {
            mutated |= prune(&pass, &children, &applied_items).await?;
        }
        if let Some(secret) = seen.script.kubeconfig_due(seen.first_pass) {
            let endpoint = seen.author(pass.variables()).ok().and_then(|author| {
                author
                    .get("endpoint")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
            publish_kubeconfig(&ctx.client, &seen.object, secret, endpoint).await?;
        }
    }
    let observed = pass.observed_variables();
    Ok((
        Outcome::of(&pass, mutated),
        seen.author(&observed),
        observed,
    ))
}

/// A child to apply after the reads: its node, its place in a collection, its desired object
/// and what was read before.
struct Queued {
    id: String,
    item: Option<Item>,
    desired: Value,
    before: Option<Value>,
}

impl Queued {
    fn key(&self) -> String {
        children::child_key(&self.id, self.item, &self.desired)
    }
}

/// Phase one: every node the engine renders is read (external references are only read); a
/// scripted apply failure replaces the read. The children to apply, in topological order.
async fn read_children(
    pass: &mut Pass<'_>,
    children: &Children<'_>,
    owner: &Owner<'_>,
    failure: Option<&Failure>,
) -> Vec<Queued> {
    let mut queued = Vec::new();
    while let Some(visit) = pass.next_visit() {
        let external = visit.is_external();
        let Visit {
            node,
            mut desired,
            item,
        } = visit;
        let id = node.id.as_str();
        let key = children::child_key(id, item, &desired);
        if let Some(message) = failure.and_then(|f| f.apply_fault(id)) {
            let message = format!("apply results contain errors: {message}");
            match item {
                Some(item) => pass.failed_item(id, item.index, message),
                None => pass.failed(id, message),
            }
            continue;
        }
        match item {
            Some(item) => owner.label_item(id, item, &mut desired),
            None if !external => owner.label(id, &mut desired),
            None => {}
        }
        let current = if external {
            children.get_external(id, &desired).await
        } else {
            children.get(&key, &desired).await
        };
        let before = match current {
            Err(e) => {
                let message = format!("apply results contain errors: {e}");
                match item {
                    Some(item) => pass.failed_item(id, item.index, message),
                    None => pass.failed(id, message),
                }
                continue;
            }
            Ok(Some(current)) if !external && children::is_terminating(&current) => {
                pass.resource_is_deleting(id, &current);
                continue;
            }
            Ok(Some(current)) => {
                match item {
                    Some(item) => pass.observed_item(id, item.index, Some(current.clone())),
                    None => pass.observed(id, current.clone()),
                }
                Some(current)
            }
            Ok(None) => {
                match item {
                    Some(item) => pass.observed_item(id, item.index, None),
                    None => pass.not_found(id),
                }
                None
            }
        };
        if !external {
            queued.push(Queued {
                id: id.to_string(),
                item,
                desired,
                before,
            });
        }
    }
    queued
}

/// Phase two: the ApplySet parent metadata, then every queued child, server-side applied; the
/// apply results are the nodes' observations. Whether the cluster changed.
async fn apply_children(
    seen: &Observation,
    pass: &mut Pass<'_>,
    children: &Children<'_>,
    owner: &Owner<'_>,
    queued: Vec<Queued>,
) -> Result<bool, SimError> {
    if queued.is_empty() {
        return Ok(false);
    }
    let desired: Vec<&Value> = queued.iter().map(|q| &q.desired).collect();
    seen.api
        .patch(
            &seen.name,
            &PatchParams::apply("kro.run/applyset-parent").force(),
            &Patch::Apply(&owner.applyset_parent(&desired)),
        )
        .await?;
    let mut mutated = false;
    // A collection's apply results are gathered and reported together once its last queued
    // item is applied, as kro does.
    let mut remaining: BTreeMap<String, usize> = BTreeMap::new();
    for q in queued.iter().filter(|q| q.item.is_some()) {
        *remaining.entry(q.id.clone()).or_default() += 1;
    }
    let mut collection: Option<(String, Vec<Value>, usize, Option<String>)> = None;
    for queued in queued {
        let key = queued.key();
        let result = children
            .apply(&key, &queued.desired, queued.before.as_ref())
            .await;
        let Some(item) = queued.item else {
            match result {
                Ok((observed, changed)) => {
                    mutated |= changed;
                    pass.observed(&queued.id, observed);
                }
                Err(e) => pass.failed(&queued.id, format!("apply results contain errors: {e}")),
            }
            continue;
        };
        let (_, items, _, failed) = collection.get_or_insert_with(|| {
            (
                queued.id.clone(),
                Vec::with_capacity(item.size),
                item.size,
                None,
            )
        });
        match result {
            Ok((observed, changed)) => {
                mutated |= changed;
                items.push(observed);
            }
            Err(e) => {
                failed.get_or_insert(format!(
                    "collection item {}: apply results contain errors: {e}",
                    item.index
                ));
            }
        }
        let left = remaining.entry(queued.id.clone()).or_default();
        *left = left.saturating_sub(1);
        if *left == 0
            && let Some((id, items, size, failed)) = collection.take()
        {
            match failed {
                Some(message) => pass.failed(&id, message),
                None => pass.observed_collection(&id, items, size),
            }
        }
    }
    Ok(mutated)
}

/// Prune: the children of nodes that are no longer included. Whether any went.
async fn prune(
    pass: &Pass<'_>,
    children: &Children<'_>,
    applied_items: &BTreeSet<String>,
) -> Result<bool, SimError> {
    let mut pruned = false;
    for id in pass.skipped() {
        if let Some(previous) = children.remembered(id) {
            children
                .delete(id, &previous)
                .await
                .map_err(SimError::Invalid)?;
            pruned = true;
        }
    }
    // Items a collection no longer expands to (or all of a skipped one's), as kro's ApplySet
    // prunes them.
    for node in pass.graph().ordered().filter(|n| n.is_collection()) {
        for (key, previous) in children.remembered_items(&node.id) {
            if !applied_items.contains(&key) {
                children
                    .delete(&key, &previous)
                    .await
                    .map_err(SimError::Invalid)?;
                pruned = true;
            }
        }
    }
    Ok(pruned)
}

/// `kro.run/reconcile: suspended` (or `disabled`), case-insensitively (kro.md §5.9).
fn is_suspended(instance: &DynamicObject) -> bool {
    instance
        .annotations()
        .get("kro.run/reconcile")
        .is_some_and(|v| v.eq_ignore_ascii_case("suspended") || v.eq_ignore_ascii_case("disabled"))
}

fn instance_labels(ctx: &InstanceContext, rgd: &Value) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("kro.run/owned".to_string(), "true".to_string()),
        (
            "kro.run/kro-version".to_string(),
            ctx.options.kro_version_label.replace('+', "-"),
        ),
        (
            "kro.run/resource-graph-definition-id".to_string(),
            rgd.pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        ),
        (
            "kro.run/resource-graph-definition-name".to_string(),
            ctx.rgd_name.clone(),
        ),
    ])
}

/// Management: kro's labels and finalizer, server-side applied as `kro.run/labeller` when one
/// is missing (kro.md §5.1).
async fn ensure_managed(ctx: &InstanceContext, seen: &Observation) -> Result<(), SimError> {
    let labels = instance_labels(ctx, &seen.rgd);
    let managed = labels
        .iter()
        .all(|(k, v)| seen.object.labels().get(k) == Some(v))
        && seen.object.finalizers().iter().any(|f| f == FINALIZER);
    if managed {
        return Ok(());
    }
    let mut metadata = json!({"name": seen.name, "labels": labels, "finalizers": [FINALIZER]});
    if ctx.namespaced {
        metadata["namespace"] = json!(seen.namespace);
    }
    let body = json!({"apiVersion": ctx.resource.api_version, "kind": ctx.resource.kind, "metadata": metadata});
    seen.api
        .patch(
            &seen.name,
            &PatchParams::apply("kro.run/labeller").force(),
            &Patch::Apply(&body),
        )
        .await?;
    Ok(())
}

/// Applies the scripted kubeconfig Secret (a no-op once it is in place).
async fn publish_kubeconfig(
    client: &Client,
    instance: &DynamicObject,
    secret: &KubeconfigSecret,
    endpoint: Option<String>,
) -> Result<(), SimError> {
    let name = instance.name_any();
    let namespace = instance.namespace().unwrap_or_default();
    let server = secret.server.clone().unwrap_or_else(|| {
        let endpoint = endpoint.unwrap_or_else(|| format!("{name}.{namespace}.example:6443"));
        if endpoint.contains("://") {
            endpoint
        } else {
            format!("https://{endpoint}")
        }
    });
    let content = secret.content.clone().unwrap_or_else(|| {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}-admin\ncurrent-context: {name}\nusers:\n- name: {name}-admin\n  user:\n    token: fake-kro-{}\n",
            instance.uid().unwrap_or_default()
        )
    });
    let key = secret.key.clone().unwrap_or_else(|| "value".to_string());
    let owner = json!({"apiVersion": instance.types.as_ref().map(|t| t.api_version.clone()).unwrap_or_default(),
        "kind": instance.types.as_ref().map(|t| t.kind.clone()).unwrap_or_default(),
        "name": name, "uid": instance.uid().unwrap_or_default()});
    let body = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": secret.name, "namespace": namespace, "ownerReferences": [owner]},
        "type": "Opaque",
        "data": {key: base64::engine::general_purpose::STANDARD.encode(content)}});
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), &namespace);
    let typed: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(body).map_err(|e| SimError::Invalid(e.to_string()))?;
    secrets
        .patch(
            &secret.name,
            &PatchParams::apply("fake-kro/script").force(),
            &Patch::Apply(&typed),
        )
        .await?;
    Ok(())
}
