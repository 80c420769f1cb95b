//! The RGD controller (kro.md §8): kro's RGD CRD, acceptance of each RGD (the checker's first
//! error, or an unserved template kind, makes it `Inactive`), its generated CRD, and one
//! instance controller per accepted kind.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::instance::{InstanceContext, reconcile_instance};
use super::{
    FINALIZER, Shared, SimError, SimOptions, finalizers_without_kro, kro_patch, kro_post, lock, now,
};
use crate::catalog::Catalog;
use crate::check::{CheckOptions, Severity, check};
use crate::compat::{ALLOW_BREAKING_CHANGES, compare_crds};
use crate::conditions::{self, Condition, Conditions};
use crate::crd::{CrdOptions, generate};
use crate::graph::Graph;

/// The `kro.run/v1alpha1` ResourceGraphDefinition CRD (kro.md §1.1–§1.2).
pub fn rgd_crd() -> Value {
    let schema = json!({"type": "object", "required": ["apiVersion", "kind"], "properties": {
        "apiVersion": {"type": "string", "pattern": "^v[0-9]+(alpha[0-9]+|beta[0-9]+)?$"},
        "kind": {"type": "string", "pattern": "^[A-Z][a-zA-Z0-9]{0,62}$"},
        "group": {"type": "string", "default": "kro.run"},
        "scope": {"type": "string", "default": "Namespaced", "enum": ["Namespaced", "Cluster"]},
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        "types": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        "additionalPrinterColumns": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
        "metadata": {"type": "object", "properties": {
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}}}}
    }});
    let resource = json!({"type": "object", "required": ["id"], "properties": {
        "id": {"type": "string"},
        "template": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        "externalRef": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        "readyWhen": {"type": "array", "items": {"type": "string"}},
        "includeWhen": {"type": "array", "items": {"type": "string"}},
        "forEach": {"type": "array", "items": {"type": "object", "additionalProperties": {"type": "string"}}}
    }});
    let spec = json!({"type": "object", "required": ["schema"], "properties": {
        "schema": schema,
        "resources": {"type": "array", "items": resource}
    }});
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "resourcegraphdefinitions.kro.run"},
        "spec": {
            "group": "kro.run", "scope": "Cluster",
            "names": {"kind": "ResourceGraphDefinition", "listKind": "ResourceGraphDefinitionList", "plural": "resourcegraphdefinitions", "singular": "resourcegraphdefinition", "shortNames": ["rgd"]},
            "versions": [{
                "name": "v1alpha1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "APIVERSION", "type": "string", "jsonPath": ".spec.schema.apiVersion"},
                    {"name": "KIND", "type": "string", "jsonPath": ".spec.schema.kind"},
                    {"name": "STATE", "type": "string", "jsonPath": ".status.state"},
                    {"name": "READY", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                    {"name": "TOPOLOGICALORDER", "type": "string", "jsonPath": ".status.topologicalOrder", "priority": 1},
                    {"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ],
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                    "spec": spec,
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }}}
            }]
        }
    })
}

pub(super) fn rgd_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kro.run", "v1alpha1", "ResourceGraphDefinition"),
        "resourcegraphdefinitions",
    )
}

pub(super) struct RgdContext {
    pub(super) client: Client,
    pub(super) options: SimOptions,
    pub(super) shared: Arc<Mutex<Shared>>,
    /// The RGD controller's cache, which the instance passes read their RGD from (as kro keeps
    /// its graphs in memory).
    pub(super) rgds: Store<DynamicObject>,
}

pub(super) async fn wait_established(
    crds: &Api<CustomResourceDefinition>,
    name: &str,
) -> Result<(), SimError> {
    for _ in 0..200 {
        if let Some(crd) = crds.get_opt(name).await? {
            let established = crd
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                });
            if established {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(SimError::Invalid(format!(
        "CRD {name} did not become established"
    )))
}

/// Whether kro accepts an RGD this pass.
enum Verdict {
    /// `GraphAccepted=False` with kro's message; the RGD is `Inactive`.
    Invalid(String),
    /// The CRD of `kind` is served and its instance controller runs.
    Accepted { kind: String },
    /// The graph is valid but its CRD could not be updated (kro's `KindReady=False Failed`,
    /// e.g. breaking changes, kro.md §7.6); the RGD is `Inactive` and the stored CRD stays.
    KindUnready { message: String },
}

pub(super) async fn reconcile_rgd(
    rgd: Arc<DynamicObject>,
    ctx: Arc<RgdContext>,
) -> Result<Action, SimError> {
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &rgd_resource());
    let name = rgd.name_any();
    let value = serde_json::to_value(&*rgd).map_err(|e| SimError::Invalid(e.to_string()))?;
    let generated = generate(
        &value,
        &CrdOptions {
            rgd_uid: rgd.uid().unwrap_or_default(),
            kro_version_label: ctx.options.kro_version_label.clone(),
            ..CrdOptions::default()
        },
    );
    if rgd.metadata.deletion_timestamp.is_some() {
        let crd_name = generated.as_ref().ok().map(|c| text(c, "/metadata/name"));
        return release(&api, &ctx, &rgd, crd_name).await;
    }
    if !rgd.finalizers().iter().any(|f| f == FINALIZER) {
        let mut finalizers = rgd.finalizers().to_vec();
        finalizers.push(FINALIZER.into());
        set_finalizers(&api, &name, finalizers).await?;
    }
    let conditions = Conditions::of(conditions::RGD, &value, now());
    let options = CheckOptions {
        catalog: Arc::new(cluster_catalog(&ctx.client).await),
        ..CheckOptions::default()
    };
    let first_error = check(&value, &options)
        .into_iter()
        .find(|d| d.severity == Severity::Error)
        .map(|d| d.message);
    // kro resolves every template's schema from the cluster; an unserved kind is V4's error.
    let first_error = match first_error {
        Some(e) => Some(e),
        None => unserved_template(&ctx.client, &value).await,
    };
    let mut retry_later = first_error.is_some();
    let verdict = match (first_error, generated) {
        (Some(error), _) | (None, Err(error)) => Verdict::Invalid(error),
        (None, Ok(crd)) => {
            let allow_breaking = rgd
                .annotations()
                .get(ALLOW_BREAKING_CHANGES)
                .is_some_and(|v| v == "true");
            match install(&ctx, &crd, &value, allow_breaking).await? {
                Ok(kind) => Verdict::Accepted { kind },
                Err(message) => {
                    retry_later = true;
                    Verdict::KindUnready { message }
                }
            }
        }
    };
    let status = rgd_status(&value, conditions, &verdict);
    if value.get("status") != Some(&status) {
        api.patch_status(
            &name,
            &kro_patch(),
            &Patch::Merge(json!({"status": status})),
        )
        .await?;
    }
    // A kind served later (a CRD installed after the RGD) is picked up by a later pass.
    Ok(if retry_later {
        Action::requeue(Duration::from_secs(5))
    } else {
        Action::await_change()
    })
}

fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

async fn set_finalizers(
    api: &Api<DynamicObject>,
    name: &str,
    finalizers: Vec<String>,
) -> Result<(), SimError> {
    api.patch(
        name,
        &kro_patch(),
        &Patch::Merge(json!({"metadata": {"finalizers": finalizers}})),
    )
    .await?;
    Ok(())
}

/// A deleted RGD: its instance controller stops and kro's finalizer goes (kro never deletes
/// the instances).
async fn release(
    api: &Api<DynamicObject>,
    ctx: &RgdContext,
    rgd: &DynamicObject,
    crd_name: Option<String>,
) -> Result<Action, SimError> {
    if let Some(crd_name) = crd_name
        && let Some(handle) = lock(&ctx.shared).controllers.remove(&crd_name)
    {
        handle.abort();
    }
    set_finalizers(api, &rgd.name_any(), finalizers_without_kro(rgd)).await?;
    Ok(Action::await_change())
}

/// Writes the generated CRD, waits until it is served and starts its instance controller;
/// the kind it serves. An existing CRD is compared first, as kro does (kro.md §7.6): no change
/// skips the write, breaking changes refuse it with kro's message unless `allow_breaking`.
async fn install(
    ctx: &RgdContext,
    crd: &Value,
    rgd: &Value,
    allow_breaking: bool,
) -> Result<Result<String, String>, SimError> {
    let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    let crd_name = text(crd, "/metadata/name");
    let existing = match crds.get_opt(&crd_name).await? {
        Some(existing) => {
            Some(serde_json::to_value(&existing).map_err(|e| SimError::Invalid(e.to_string()))?)
        }
        None => None,
    };
    let report = match existing.as_ref().map(|e| compare_crds(e, crd)).transpose() {
        Ok(report) => report,
        Err(e) => return Ok(Err(format!("failed to check schema compatibility: {e}"))),
    };
    if let Some(report) = &report
        && !report.breaking.is_empty()
        && !allow_breaking
    {
        return Ok(Err(format!(
            "cannot update CRD {crd_name}: breaking changes detected: {}",
            report.summary()
        )));
    }
    // As kro: a create when the CRD is absent, a merge patch of the whole CRD when it changed.
    let typed: CustomResourceDefinition =
        serde_json::from_value(crd.clone()).map_err(|e| SimError::Invalid(e.to_string()))?;
    match report {
        None => {
            crds.create(&kro_post(), &typed).await?;
        }
        Some(report) if report.has_changes() => {
            crds.patch(&crd_name, &kro_patch(), &Patch::Merge(&typed))
                .await?;
        }
        Some(_) => {}
    }
    wait_established(&crds, &crd_name).await?;
    start_instances(ctx, &crd_name, crd, rgd);
    Ok(Ok(text(crd, "/spec/names/kind")))
}

/// kro's condition of a graph that builds.
const GRAPH_ACCEPTED: Condition<'static> = Condition {
    type_: "GraphAccepted",
    status: "True",
    reason: "Valid",
    message: "resource graph and schema are valid",
};

/// kro's RGD status for a verdict (kro.md §8): conditions, `state`, and for an accepted graph
/// its topological order and each node's dependencies.
fn rgd_status(rgd: &Value, mut conditions: Conditions, verdict: &Verdict) -> Value {
    let mut status = json!({});
    let last_issued = last_issued_revision(rgd);
    // A graph that builds has a revision: kro issues a new one for a spec it has not compiled
    // yet (a new generation) and keeps the number otherwise; a rejected spec issues none.
    let revision = match verdict {
        Verdict::Invalid(_) => last_issued,
        Verdict::KindUnready { .. } | Verdict::Accepted { .. } => {
            if last_issued > 0 && accepted_generation(rgd) == Some(conditions.generation) {
                last_issued
            } else {
                last_issued + 1
            }
        }
    };
    if revision > 0 {
        status["lastIssuedRevision"] = json!(revision);
    }
    match verdict {
        Verdict::Invalid(error) => {
            conditions.set(&Condition {
                type_: "GraphAccepted",
                status: "False",
                reason: "InvalidResourceGraph",
                message: error,
            });
            status["state"] = json!("Inactive");
        }
        Verdict::KindUnready { message } => {
            conditions.set(&GRAPH_ACCEPTED);
            conditions.set(&Condition {
                type_: "KindReady",
                status: "False",
                reason: "Failed",
                message,
            });
            status["state"] = json!("Inactive");
            graph_status(rgd, &mut status);
        }
        Verdict::Accepted { kind } => {
            conditions.set(&GRAPH_ACCEPTED);
            conditions.set(&Condition {
                type_: "GraphRevisionsResolved",
                status: "True",
                reason: "Resolved",
                message: &format!("revision {revision} compiled and active"),
            });
            conditions.set(&Condition {
                type_: "KindReady",
                status: "True",
                reason: "Ready",
                message: &format!("kind {kind} has been accepted and ready"),
            });
            conditions.set(&Condition {
                type_: "ControllerReady",
                status: "True",
                reason: "Running",
                message: "controller is running",
            });
            status["state"] = json!("Active");
            graph_status(rgd, &mut status);
        }
    }
    status["conditions"] = Value::Array(conditions.list);
    status
}

/// The RGD's `status.lastIssuedRevision` (0: none issued yet).
fn last_issued_revision(rgd: &Value) -> i64 {
    rgd.pointer("/status/lastIssuedRevision")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// The generation whose graph was last accepted (`GraphAccepted` True), if any.
fn accepted_generation(rgd: &Value) -> Option<i64> {
    rgd.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == "GraphAccepted" && c["status"] == "True")?
        .get("observedGeneration")
        .and_then(Value::as_i64)
}

/// An accepted graph's topological order and each node's dependencies in the RGD status.
fn graph_status(rgd: &Value, status: &mut Value) {
    // The checker refused cycles already; an empty order would only hide one.
    let graph = Graph::of(rgd).unwrap_or_default();
    status["topologicalOrder"] = json!(graph.order());
    let resources: Vec<Value> = graph
        .ordered()
        .filter(|n| !n.dependencies.is_empty())
        .map(|n| json!({"id": n.id, "dependencies": n.dependencies.iter().map(|d| json!({"id": d})).collect::<Vec<_>>()}))
        .collect();
    if !resources.is_empty() {
        status["resources"] = json!(resources);
    }
}

/// V4's `failed to get schema` for the first template whose kind the API does not serve.
/// The kinds the cluster serves, as kro's schema resolver sees them: the built-in kinds and every
/// CRD the API server lists (only the built-in kinds when it cannot list them).
async fn cluster_catalog(client: &Client) -> Catalog {
    let mut catalog = Catalog::default();
    match Api::<CustomResourceDefinition>::all(client.clone())
        .list(&Default::default())
        .await
    {
        Ok(crds) => {
            for crd in crds {
                if let Ok(value) = serde_json::to_value(&crd) {
                    catalog.add_crd(&value);
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot list CRDs; typed checks see only built-in kinds")
        }
    }
    catalog
}

/// The kind of a template or external reference whose apiVersion and kind are fixed (no
/// `${…}`).
fn fixed_kind(object: &Value) -> Option<GroupVersionKind> {
    let api_version = object["apiVersion"].as_str()?;
    let kind = object["kind"].as_str()?;
    if api_version.contains("${") || kind.contains("${") {
        return None;
    }
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    Some(GroupVersionKind::gvk(group, version, kind))
}

async fn unserved_template(client: &Client, rgd: &Value) -> Option<String> {
    for resource in rgd["spec"]["resources"].as_array().into_iter().flatten() {
        let Some(gvk) = fixed_kind(&resource["template"]) else {
            continue;
        };
        let (group, version, kind) = (gvk.group.as_str(), gvk.version.as_str(), &gvk.kind);
        let api_version = gvk.api_version();
        if kube::discovery::pinned_kind(client, &gvk).await.is_err() {
            let id = resource["id"].as_str().unwrap_or_default();
            let group_version_served = if group.is_empty() {
                client.list_core_api_resources(version).await.is_ok()
            } else {
                client.list_api_group_resources(&api_version).await.is_ok()
            };
            return Some(format!(
                "failed to build resource \"{id}\": {}",
                crate::catalog::unserved_kind(id, &api_version, kind, group_version_served)
            ));
        }
    }
    None
}

/// The kinds of an RGD's children whose apiVersion and kind are fixed (templates and external
/// references), once each.
fn child_kinds(rgd: &Value) -> Vec<GroupVersionKind> {
    let mut kinds: Vec<GroupVersionKind> = Vec::new();
    for resource in rgd["spec"]["resources"].as_array().into_iter().flatten() {
        let object = if resource.get("template").is_some() {
            &resource["template"]
        } else {
            &resource["externalRef"]
        };
        let Some(gvk) = fixed_kind(object) else {
            continue;
        };
        if !kinds.contains(&gvk) {
            kinds.push(gvk);
        }
    }
    kinds
}

/// The instance a child belongs to, from kro's child labels (kro.md §5.1).
fn owning_instance(
    child: &DynamicObject,
    instances: &ApiResource,
) -> Option<ObjectRef<DynamicObject>> {
    let labels = child.labels();
    let name = labels.get("kro.run/instance-name")?;
    let reference = ObjectRef::new_with(name, instances.clone());
    Some(match labels.get("kro.run/instance-namespace") {
        Some(namespace) => reference.within(namespace),
        None => reference,
    })
}

/// Starts the instance controller of an accepted kind, unless it already runs.
fn start_instances(ctx: &RgdContext, crd_name: &str, crd: &Value, rgd: &Value) {
    let rgd_name = rgd["metadata"]["name"].as_str().unwrap_or_default();
    let mut shared = lock(&ctx.shared);
    if shared
        .controllers
        .get(crd_name)
        .is_some_and(|h| !h.is_finished())
    {
        return;
    }
    let gvk = GroupVersionKind::gvk(
        &text(crd, "/spec/group"),
        &text(crd, "/spec/versions/0/name"),
        &text(crd, "/spec/names/kind"),
    );
    let resource = ApiResource::from_gvk_with_plural(&gvk, &text(crd, "/spec/names/plural"));
    let context = Arc::new(InstanceContext {
        client: ctx.client.clone(),
        options: ctx.options.clone(),
        namespaced: text(crd, "/spec/scope") != "Cluster",
        resource: resource.clone(),
        rgd_name: rgd_name.to_string(),
        shared: ctx.shared.clone(),
        rgds: ctx.rgds.clone(),
    });
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &resource);
    let client = ctx.client.clone();
    let children = child_kinds(rgd);
    let handle = tokio::spawn(async move {
        let mut controller =
            Controller::new_with(api, watcher::Config::default(), resource.clone());
        // As kro, a change of a child reconciles its instance at once: one watch per child
        // kind, of the objects kro labelled for an instance of this kind.
        let selector = format!(
            "kro.run/instance-group={},kro.run/instance-kind={}",
            resource.group, resource.kind
        );
        for gvk in children {
            match kube::discovery::pinned_kind(&client, &gvk).await {
                Ok((child_resource, _)) => {
                    let instances = resource.clone();
                    controller = controller.watches_with(
                        Api::<DynamicObject>::all_with(client.clone(), &child_resource),
                        child_resource,
                        watcher::Config::default().labels(&selector),
                        move |child| owning_instance(&child, &instances),
                    );
                }
                Err(e) => {
                    tracing::warn!(kind = %gvk.kind, error = %e, "child kind not served; its changes are seen on the periodic requeue only");
                }
            }
        }
        controller
            .run(
                reconcile_instance,
                |_, _, _| Action::requeue(Duration::from_millis(500)),
                context,
            )
            .for_each(|_| async {})
            .await;
    });
    shared.controllers.insert(crd_name.to_string(), handle);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(rgd: &Value, verdict: &Verdict) -> Value {
        let conditions = Conditions::of(conditions::RGD, rgd, "2026-01-01T00:00:05Z".into());
        rgd_status(rgd, conditions, verdict)
    }

    /// kro issues a revision per accepted generation and keeps its number otherwise; a rejected
    /// spec issues none.
    #[test]
    fn last_issued_revision_follows_accepted_generations() {
        let accepted = Verdict::Accepted {
            kind: "Demo".into(),
        };
        let mut rgd = json!({"metadata": {"name": "demo.kro.run", "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "Demo"}, "resources": []}});
        let first = status_of(&rgd, &accepted);
        assert_eq!(first["lastIssuedRevision"], 1);
        rgd["status"] = first;
        assert_eq!(
            status_of(&rgd, &accepted)["lastIssuedRevision"],
            1,
            "same generation"
        );
        rgd["metadata"]["generation"] = json!(2);
        let rejected = status_of(&rgd, &Verdict::Invalid("bad".into()));
        assert_eq!(
            rejected["lastIssuedRevision"], 1,
            "a rejected spec issues none"
        );
        let second = status_of(&rgd, &accepted);
        assert_eq!(second["lastIssuedRevision"], 2);
        let resolved = second["conditions"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["type"] == "GraphRevisionsResolved"))
            .map(|c| c["message"].clone());
        assert_eq!(resolved, Some(json!("revision 2 compiled and active")));
        let fresh = json!({"metadata": {"name": "x", "generation": 1}});
        assert!(
            status_of(&fresh, &Verdict::Invalid("bad".into()))
                .get("lastIssuedRevision")
                .is_none()
        );
    }
}
