//! The instance lifecycle simulator (kro.md §5, Virtual child mode; §8 RGD controller): acts as
//! kro's controllers against any Kubernetes API. RGDs get their CRD and kro's status; instances
//! get kro's finalizer, labels, `state`, conditions and author status fields. Children are kept
//! in memory (kro.md §5.11 "Virtual"), with simulated status and per-instance scripts.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::check::{CheckOptions, Severity, check};
use crate::conditions::{self, Condition, Conditions};
use crate::crd::{CrdOptions, generate};
use crate::eval::EvalError;
use crate::expr::{self, Scanned};
use crate::render::{self, evaluate_status, merge, render_value};

/// The finalizer kro puts on instances and RGDs.
pub const FINALIZER: &str = "kro.run/finalizer";
/// Annotation holding a per-instance simulation script (JSON).
pub const SCRIPT_ANNOTATION: &str = "fake-kro/script";

/// Errors of one reconcile (retried).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Invalid(String),
}

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub kro_version_label: String,
    /// kro's `--instance-requeue-interval`.
    pub requeue: Duration,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            kro_version_label: "v0.9.3".into(),
            requeue: Duration::from_secs(3),
        }
    }
}

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

fn rgd_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kro.run", "v1alpha1", "ResourceGraphDefinition"),
        "resourcegraphdefinitions",
    )
}

/// A simulation script (kro.md §5.11), from the `fake-kro/script` annotation.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Script {
    /// Observed-state overlays per resource id, applied after `after`.
    #[serde(default)]
    pub overlays: BTreeMap<String, Overlay>,
    /// Readiness of every node is forced false until this long after the first pass.
    #[serde(default)]
    pub ready_after: Option<String>,
    /// Author status fields replaced after evaluation (`null` removes one).
    #[serde(default)]
    pub status_overrides: Map<String, Value>,
    /// An injected failure.
    #[serde(default)]
    pub fail: Option<Failure>,
    /// Hold the finalizer this long after deletion starts.
    #[serde(default)]
    pub deletion: Option<Deletion>,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Overlay {
    #[serde(default)]
    pub after: Option<String>,
    pub object: Value,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    #[serde(default)]
    pub after: Option<String>,
    #[serde(default)]
    pub node: Option<String>,
    /// `apply`, `cel`, `graph` or `manage`.
    pub kind: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deletion {
    #[serde(default)]
    pub hold_for: Option<String>,
}

/// A Go duration (`500ms`, `3s`, `1m30s`).
pub fn duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        total += value
            * match &rest[..u] {
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return None,
            };
        rest = &rest[u..];
    }
    Some(Duration::from_secs_f64(total))
}

/// Per-instance memory of the simulator: virtual children and the first-pass time.
#[derive(Debug, Default)]
struct InstanceMemory {
    children: BTreeMap<String, Value>,
    first_pass: Option<Instant>,
    deletion_started: Option<Instant>,
}

#[derive(Debug, Default)]
struct Shared {
    controllers: HashMap<String, JoinHandle<()>>,
    instances: HashMap<String, InstanceMemory>,
}

struct RgdContext {
    client: Client,
    options: SimOptions,
    shared: Arc<Mutex<Shared>>,
}

struct InstanceContext {
    client: Client,
    options: SimOptions,
    resource: ApiResource,
    namespaced: bool,
    rgd_name: String,
    shared: Arc<Mutex<Shared>>,
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Installs kro's RGD CRD (if needed) and runs the RGD controller until the future is dropped.
pub async fn run(client: Client, options: SimOptions) -> Result<(), SimError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition =
        serde_json::from_value(rgd_crd()).map_err(|e| SimError::Invalid(e.to_string()))?;
    crds.patch(
        "resourcegraphdefinitions.kro.run",
        &PatchParams::apply("fake-kro").force(),
        &Patch::Apply(&crd),
    )
    .await?;
    wait_established(&crds, "resourcegraphdefinitions.kro.run").await?;
    let shared = Arc::new(Mutex::new(Shared::default()));
    let context = Arc::new(RgdContext {
        client: client.clone(),
        options,
        shared: shared.clone(),
    });
    let rgds: Api<DynamicObject> = Api::all_with(client, &rgd_resource());
    Controller::new_with(rgds, watcher::Config::default(), rgd_resource())
        .run(
            reconcile_rgd,
            |_, _, _| Action::requeue(Duration::from_secs(1)),
            context,
        )
        .for_each(|_| async {})
        .await;
    for (_, handle) in lock(&shared).controllers.drain() {
        handle.abort();
    }
    Ok(())
}

async fn wait_established(
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

async fn reconcile_rgd(rgd: Arc<DynamicObject>, ctx: Arc<RgdContext>) -> Result<Action, SimError> {
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
    let crd_name = generated.as_ref().ok().and_then(|c| {
        c.pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    if rgd.metadata.deletion_timestamp.is_some() {
        if let Some(crd_name) = &crd_name
            && let Some(handle) = lock(&ctx.shared).controllers.remove(crd_name)
        {
            handle.abort();
        }
        let remaining: Vec<String> = rgd
            .finalizers()
            .iter()
            .filter(|f| *f != FINALIZER)
            .cloned()
            .collect();
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": remaining}})),
        )
        .await?;
        return Ok(Action::await_change());
    }
    if !rgd.finalizers().iter().any(|f| f == FINALIZER) {
        let mut finalizers = rgd.finalizers().to_vec();
        finalizers.push(FINALIZER.into());
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": finalizers}})),
        )
        .await?;
    }
    let mut conditions = Conditions::of(conditions::RGD, &value, now());
    let first_error = check(&value, &CheckOptions::default())
        .into_iter()
        .find(|d| d.severity == Severity::Error);
    let mut status = json!({});
    match (first_error, generated) {
        (Some(error), _) => {
            conditions.set(&Condition {
                type_: "GraphAccepted",
                status: "False",
                reason: "InvalidResourceGraph",
                message: &error.message,
            });
            status["state"] = json!("Inactive");
        }
        (None, Err(message)) => {
            conditions.set(&Condition {
                type_: "GraphAccepted",
                status: "False",
                reason: "InvalidResourceGraph",
                message: &message,
            });
            status["state"] = json!("Inactive");
        }
        (None, Ok(crd)) => {
            conditions.set(&Condition {
                type_: "GraphAccepted",
                status: "True",
                reason: "Valid",
                message: "resource graph and schema are valid",
            });
            conditions.set(&Condition {
                type_: "GraphRevisionsResolved",
                status: "True",
                reason: "Resolved",
                message: "revision 1 compiled and active",
            });
            let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
            let crd_name = crd
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let typed: CustomResourceDefinition = serde_json::from_value(crd.clone())
                .map_err(|e| SimError::Invalid(e.to_string()))?;
            crds.patch(
                &crd_name,
                &PatchParams::apply("kro.run/resourcegraphdefinition-controller").force(),
                &Patch::Apply(&typed),
            )
            .await?;
            wait_established(&crds, &crd_name).await?;
            let kind = crd
                .pointer("/spec/names/kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            conditions.set(&Condition {
                type_: "KindReady",
                status: "True",
                reason: "Ready",
                message: &format!("kind {kind} has been accepted and ready"),
            });
            start_instances(&ctx, &crd_name, &crd, &name);
            conditions.set(&Condition {
                type_: "ControllerReady",
                status: "True",
                reason: "Running",
                message: "controller is running",
            });
            status["state"] = json!("Active");
            let graph = render::nodes(&value);
            let order = render::topological_order(&graph).unwrap_or_default();
            status["topologicalOrder"] = json!(order);
            let resources: Vec<Value> = order
                .iter()
                .filter_map(|id| graph.iter().find(|n| &n.id == id))
                .filter(|n| !n.dependencies.is_empty())
                .map(|n| json!({"id": n.id, "dependencies": n.dependencies.iter().map(|d| json!({"id": d})).collect::<Vec<_>>()}))
                .collect();
            if !resources.is_empty() {
                status["resources"] = json!(resources);
            }
        }
    }
    status["conditions"] = Value::Array(conditions.list.clone());
    if value.get("status") != Some(&status) {
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await?;
    }
    Ok(Action::await_change())
}

fn start_instances(ctx: &RgdContext, crd_name: &str, crd: &Value, rgd_name: &str) {
    let mut shared = lock(&ctx.shared);
    if shared
        .controllers
        .get(crd_name)
        .is_some_and(|h| !h.is_finished())
    {
        return;
    }
    let text = |p: &str| {
        crd.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let gvk = GroupVersionKind::gvk(
        &text("/spec/group"),
        &text("/spec/versions/0/name"),
        &text("/spec/names/kind"),
    );
    let resource = ApiResource::from_gvk_with_plural(&gvk, &text("/spec/names/plural"));
    let context = Arc::new(InstanceContext {
        client: ctx.client.clone(),
        options: ctx.options.clone(),
        namespaced: text("/spec/scope") != "Cluster",
        resource: resource.clone(),
        rgd_name: rgd_name.to_string(),
        shared: ctx.shared.clone(),
    });
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &resource);
    let handle = tokio::spawn(async move {
        Controller::new_with(api, watcher::Config::default(), resource)
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

/// What the simulated controller of a kind writes into a child's observed status.
fn simulate_status(object: &mut Value) {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match kind.as_str() {
        "Deployment" | "StatefulSet" | "ReplicaSet" => {
            let replicas = object
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let mut status = json!({"observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas, "updatedReplicas": replicas});
            if kind == "Deployment" {
                status["conditions"] = json!([
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
                ]);
            }
            object["status"] = status;
        }
        "Service" => {
            if object.pointer("/spec/clusterIP").is_none() {
                object["spec"]["clusterIP"] = json!("10.96.0.10");
            }
            if object.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer") {
                let name = object
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let namespace = object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                object["status"] = json!({"loadBalancer": {"ingress": [{"hostname": format!("{name}.{namespace}.lb.local")}]}});
            }
        }
        "Job" => {
            object["status"] =
                json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})
        }
        _ => {}
    }
}

fn elapsed(since: Option<Instant>, text: &Option<String>) -> bool {
    match (since, text.as_deref().and_then(duration)) {
        (Some(start), Some(wait)) => start.elapsed() >= wait,
        (_, None) => true,
        (None, Some(_)) => false,
    }
}

/// Outcome of one node in a pass.
enum NodeState {
    Synced,
    Skipped,
    Waiting(String),
    Pending(String),
    Error(String),
}

async fn reconcile_instance(
    obj: Arc<DynamicObject>,
    ctx: Arc<InstanceContext>,
) -> Result<Action, SimError> {
    let name = obj.name_any();
    let namespace = obj.namespace().unwrap_or_default();
    let api: Api<DynamicObject> = if ctx.namespaced {
        Api::namespaced_with(ctx.client.clone(), &namespace, &ctx.resource)
    } else {
        Api::all_with(ctx.client.clone(), &ctx.resource)
    };
    let Some(fresh) = api.get_opt(&name).await? else {
        return Ok(Action::await_change());
    };
    let uid = fresh.uid().unwrap_or_default();
    let rgds: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &rgd_resource());
    let Some(rgd) = rgds.get_opt(&ctx.rgd_name).await? else {
        return Ok(Action::await_change());
    };
    let rgd = serde_json::to_value(&rgd).map_err(|e| SimError::Invalid(e.to_string()))?;
    let instance = serde_json::to_value(&fresh).map_err(|e| SimError::Invalid(e.to_string()))?;
    let script: Script = fresh
        .annotations()
        .get(SCRIPT_ANNOTATION)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let deleting = fresh.metadata.deletion_timestamp.is_some();
    let mut conditions = Conditions::of(conditions::INSTANCE, &instance, now());
    let first_pass = {
        let mut shared = lock(&ctx.shared);
        let memory = shared.instances.entry(uid.clone()).or_default();
        *memory.first_pass.get_or_insert_with(Instant::now)
    };
    let failure = script
        .fail
        .clone()
        .filter(|f| elapsed(Some(first_pass), &f.after));

    if deleting {
        return delete_pass(
            &api, &fresh, &instance, &rgd, &ctx, conditions, &uid, &script,
        )
        .await;
    }

    // Management: kro's labels and finalizer (server-side apply as kro.run/labeller).
    if failure.as_ref().is_some_and(|f| f.kind == "manage") {
        let message = format!(
            "finalizer/labeling failed: {}",
            failure
                .as_ref()
                .map(|f| f.message.as_str())
                .unwrap_or_default()
        );
        conditions.set(&Condition {
            type_: "InstanceManaged",
            status: "False",
            reason: "ManagementFailed",
            message: &message,
        });
        return write_status(
            &api,
            &fresh,
            &instance,
            conditions,
            "IN_PROGRESS",
            Map::new(),
            ctx.options.requeue,
        )
        .await;
    }
    let labels = instance_labels(&ctx, &rgd);
    let managed = labels.iter().all(|(k, v)| fresh.labels().get(k) == Some(v))
        && fresh.finalizers().iter().any(|f| f == FINALIZER);
    if !managed {
        let mut metadata = json!({"name": name, "labels": labels, "finalizers": [FINALIZER]});
        if ctx.namespaced {
            metadata["namespace"] = json!(namespace);
        }
        let body = json!({"apiVersion": ctx.resource.api_version, "kind": ctx.resource.kind, "metadata": metadata});
        api.patch(
            &name,
            &PatchParams::apply("kro.run/labeller").force(),
            &Patch::Apply(&body),
        )
        .await?;
    }
    conditions.set(&Condition {
        type_: "InstanceManaged",
        status: "True",
        reason: "Managed",
        message: "instance is properly managed with finalizers and labels",
    });
    if failure.as_ref().is_some_and(|f| f.kind == "graph") {
        conditions.set(&Condition {
            type_: "GraphResolved",
            status: "False",
            reason: "ResolutionFailed",
            message: "latest issued graph revision 1 failed",
        });
        return write_status(
            &api,
            &fresh,
            &instance,
            conditions,
            "ERROR",
            Map::new(),
            ctx.options.requeue,
        )
        .await;
    }
    conditions.set(&Condition {
        type_: "GraphResolved",
        status: "True",
        reason: "Resolved",
        message: "runtime graph created and all resources resolved",
    });

    let suspended = fresh
        .annotations()
        .get("kro.run/reconcile")
        .is_some_and(|v| v.eq_ignore_ascii_case("suspended") || v.eq_ignore_ascii_case("disabled"));
    let mut schema = instance.clone();
    if let Some(o) = schema.as_object_mut() {
        o.remove("status");
    }
    let mut variables: BTreeMap<String, Value> = BTreeMap::from([("schema".to_string(), schema)]);
    if suspended {
        // v0.9.x: nodes are not processed; state stays ACTIVE with Ready False (quirks Q2, Q4).
        conditions.set(&Condition {
            type_: "ResourcesReady",
            status: "False",
            reason: "NotReady",
            message: "awaiting resource readiness: <nil>",
        });
        let author = author_status(&rgd, &variables, &script);
        return write_status(
            &api,
            &fresh,
            &instance,
            conditions,
            "ACTIVE",
            author,
            ctx.options.requeue,
        )
        .await;
    }

    let graph = render::nodes(&rgd);
    let order = render::topological_order(&graph).map_err(SimError::Invalid)?;
    let mut states: BTreeMap<String, NodeState> = BTreeMap::new();
    let mut mutated = false;
    let mut pending: Option<String> = None;
    let ready_forced_false = !elapsed(Some(first_pass), &script.ready_after);
    for id in &order {
        let Some(node) = graph.iter().find(|n| &n.id == id) else {
            continue;
        };
        if node
            .dependencies
            .iter()
            .any(|d| matches!(states.get(d), Some(NodeState::Skipped)))
        {
            states.insert(id.clone(), NodeState::Skipped);
            continue;
        }
        if let Some(dep) = node
            .dependencies
            .iter()
            .find(|d| !matches!(states.get(*d), Some(NodeState::Synced)))
        {
            let why = match states.get(dep) {
                Some(NodeState::Waiting(w)) | Some(NodeState::Pending(w)) => w.clone(),
                _ => format!("node \"{dep}\": no observed state: waiting for readiness"),
            };
            let message = format!(
                "waiting for unresolved resource: node \"{id}\": dependent node \"{dep}\" not ready: {why} (data pending)"
            );
            pending.get_or_insert(message.clone());
            states.insert(id.clone(), NodeState::Pending(message));
            continue;
        }
        let mut include = true;
        for condition in &node.include_when {
            if let Ok(Scanned::Standalone(e)) = expr::scan(condition) {
                match crate::eval::evaluate(&e, &variables) {
                    Ok(Value::Bool(b)) => include &= b,
                    _ => include = false,
                }
            }
        }
        if !include {
            states.insert(id.clone(), NodeState::Skipped);
            lock(&ctx.shared)
                .instances
                .entry(uid.clone())
                .or_default()
                .children
                .remove(id);
            continue;
        }
        let Some(template) = node.template.as_ref().or(node.external.as_ref()) else {
            continue;
        };
        if failure
            .as_ref()
            .is_some_and(|f| f.kind == "cel" && f.node.as_deref().is_none_or(|n| n == id))
        {
            states.insert(
                id.clone(),
                NodeState::Error(
                    failure
                        .as_ref()
                        .map(|f| f.message.clone())
                        .unwrap_or_default(),
                ),
            );
            continue;
        }
        let rendered = match render_value(template, &variables) {
            Ok(r) => r,
            Err(EvalError::Pending(p)) => {
                let message = format!("node \"{id}\": failed to evaluate expression: {p}");
                pending.get_or_insert(format!("waiting for unresolved resource: {message}"));
                states.insert(id.clone(), NodeState::Pending(message));
                continue;
            }
            Err(EvalError::Failed(e)) => {
                states.insert(
                    id.clone(),
                    NodeState::Error(format!("node \"{id}\": failed to evaluate expression: {e}")),
                );
                continue;
            }
        };
        if failure
            .as_ref()
            .is_some_and(|f| f.kind == "apply" && f.node.as_deref().is_none_or(|n| n == id))
        {
            let message = format!(
                "apply results contain errors: {}",
                failure
                    .as_ref()
                    .map(|f| f.message.as_str())
                    .unwrap_or_default()
            );
            states.insert(id.clone(), NodeState::Error(message));
            continue;
        }
        let mut desired = rendered;
        if node.template.is_some()
            && ctx.namespaced
            && desired.pointer("/metadata/namespace").is_none()
        {
            desired["metadata"]["namespace"] = json!(namespace);
        }
        {
            let mut shared = lock(&ctx.shared);
            let memory = shared.instances.entry(uid.clone()).or_default();
            if memory.children.get(id) != Some(&desired) {
                memory.children.insert(id.clone(), desired.clone());
                mutated = true;
            }
        }
        let mut observed = desired;
        observed["metadata"]["uid"] = json!(format!("{uid}-{id}"));
        observed["metadata"]["resourceVersion"] = json!("1");
        observed["metadata"]["generation"] = json!(1);
        observed["metadata"]["creationTimestamp"] = json!(now());
        simulate_status(&mut observed);
        if let Some(overlay) = script
            .overlays
            .get(id)
            .filter(|o| elapsed(Some(first_pass), &o.after))
        {
            merge(&mut observed, &overlay.object);
        }
        let readiness = readiness(id, &node.ready_when, &observed, ready_forced_false);
        variables.insert(id.clone(), observed);
        states.insert(
            id.clone(),
            match readiness {
                Ok(()) => NodeState::Synced,
                Err(why) => NodeState::Waiting(why),
            },
        );
    }
    let errors: Vec<String> = order
        .iter()
        .filter_map(|id| match states.get(id) {
            Some(NodeState::Error(e)) => Some(e.clone()),
            _ => None,
        })
        .collect();
    let state = if !errors.is_empty() {
        "ERROR"
    } else if states
        .values()
        .all(|s| matches!(s, NodeState::Synced | NodeState::Skipped))
    {
        "ACTIVE"
    } else {
        "IN_PROGRESS"
    };
    let observed_ids: BTreeSet<String> = states
        .iter()
        .filter(|(_, s)| matches!(s, NodeState::Synced | NodeState::Waiting(_)))
        .map(|(id, _)| id.clone())
        .collect();
    variables.retain(|k, _| k == "schema" || observed_ids.contains(k));
    let author = author_status(&rgd, &variables, &script);
    let reconcile_error = if !errors.is_empty() {
        Some(errors.join("\n"))
    } else if let Some(p) = pending {
        Some(p)
    } else if mutated {
        Some("cluster mutated".to_string())
    } else {
        None
    };
    if let Some(error) = reconcile_error {
        let message = format!("resource reconciliation failed: {error}");
        conditions.set(&Condition {
            type_: "ResourcesReady",
            status: "False",
            reason: "NotReady",
            message: &message,
        });
    } else if state == "ACTIVE" {
        conditions.set(&Condition {
            type_: "ResourcesReady",
            status: "True",
            reason: "AllResourcesReady",
            message: "all resources are created and ready",
        });
    } else {
        let waiting: Vec<String> = order
            .iter()
            .filter_map(|id| match states.get(id) {
                Some(NodeState::Waiting(w)) => Some(format!("waiting for node \"{id}\": {w}")),
                _ => None,
            })
            .collect();
        let message = format!(
            "awaiting resource readiness: {}",
            if waiting.is_empty() {
                "<nil>".to_string()
            } else {
                waiting.join("\n")
            }
        );
        conditions.set(&Condition {
            type_: "ResourcesReady",
            status: "False",
            reason: "NotReady",
            message: &message,
        });
    }
    write_status(
        &api,
        &fresh,
        &instance,
        conditions,
        state,
        author,
        ctx.options.requeue,
    )
    .await
}

fn readiness(
    id: &str,
    ready_when: &[String],
    observed: &Value,
    forced_false: bool,
) -> Result<(), String> {
    if forced_false {
        return Err(format!(
            "node \"{id}\": no observed state: waiting for readiness"
        ));
    }
    let variables = BTreeMap::from([(id.to_string(), observed.clone())]);
    for condition in ready_when {
        let Ok(Scanned::Standalone(e)) = expr::scan(condition) else {
            continue;
        };
        match crate::eval::evaluate(&e, &variables) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) | Ok(Value::Null) | Err(EvalError::Pending(_)) => {
                return Err(format!(
                    "readyWhen condition evaluated to false: \"{e}\" (waiting for readiness)"
                ));
            }
            Ok(_) => return Err(format!("expression \"{e}\" did not return bool")),
            Err(EvalError::Failed(_)) => {
                return Err(format!(
                    "node \"{id}\": failed to evaluate readyWhen expression: \"{e}\" (waiting for readiness)"
                ));
            }
        }
    }
    Ok(())
}

fn author_status(
    rgd: &Value,
    variables: &BTreeMap<String, Value>,
    script: &Script,
) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(fields) = rgd
        .pointer("/spec/schema/status")
        .and_then(Value::as_object)
    {
        // A field that errors is left out of this pass, as kro does.
        let _ = evaluate_status(fields, variables, &mut out);
    }
    for (key, value) in &script.status_overrides {
        if value.is_null() {
            out.remove(key);
        } else {
            out.insert(key.clone(), value.clone());
        }
    }
    out.remove("state");
    out.remove("conditions");
    out
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

/// Writes `{conditions, state, author fields}` when it differs from the stored status (PUT
/// /status on the object just read; a conflict retries the pass).
async fn write_status(
    api: &Api<DynamicObject>,
    fresh: &DynamicObject,
    instance: &Value,
    conditions: Conditions,
    state: &str,
    author: Map<String, Value>,
    requeue: Duration,
) -> Result<Action, SimError> {
    let ready = conditions.is_root_ready();
    let mut status = author;
    status.insert("conditions".into(), Value::Array(conditions.list));
    status.insert("state".into(), json!(if ready { "ACTIVE" } else { state }));
    let status = Value::Object(status);
    if instance.get("status") != Some(&status) {
        let mut updated = fresh.clone();
        updated.data["status"] = status;
        match api
            .replace_status(&fresh.name_any(), &PostParams::default(), &updated)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(if ready {
        Action::requeue(requeue * 10)
    } else {
        Action::requeue(requeue)
    })
}

/// kro.md §5.8: one child removed per pass (reverse topological order), then the finalizer.
#[allow(clippy::too_many_arguments)]
async fn delete_pass(
    api: &Api<DynamicObject>,
    fresh: &DynamicObject,
    instance: &Value,
    rgd: &Value,
    ctx: &InstanceContext,
    mut conditions: Conditions,
    uid: &str,
    script: &Script,
) -> Result<Action, SimError> {
    conditions.set(&Condition {
        type_: "ResourcesReady",
        status: "Unknown",
        reason: "UnderDeletion",
        message: "deleting resources",
    });
    let order = render::topological_order(&render::nodes(rgd)).unwrap_or_default();
    let (removed, held) = {
        let mut shared = lock(&ctx.shared);
        let memory = shared.instances.entry(uid.to_string()).or_default();
        let started = *memory.deletion_started.get_or_insert_with(Instant::now);
        let held = script
            .deletion
            .as_ref()
            .is_some_and(|d| !elapsed(Some(started), &d.hold_for));
        let target = order
            .iter()
            .rev()
            .find(|id| memory.children.contains_key(*id))
            .cloned();
        if let Some(id) = &target {
            memory.children.remove(id);
        }
        (target, held)
    };
    let action = write_status(
        api,
        fresh,
        instance,
        conditions,
        "DELETING",
        Map::new(),
        ctx.options.requeue,
    )
    .await?;
    if held {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    if removed.is_some() {
        return Ok(action);
    }
    // Remove the finalizer with a resourceVersion precondition on the latest object (§5.1).
    if let Some(current) = api.get_opt(&fresh.name_any()).await? {
        let remaining: Vec<String> = current
            .finalizers()
            .iter()
            .filter(|f| *f != FINALIZER)
            .cloned()
            .collect();
        let patch = json!({"metadata": {"resourceVersion": current.resource_version(), "finalizers": remaining}});
        match api
            .patch(
                &fresh.name_any(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    lock(&ctx.shared).instances.remove(uid);
    Ok(Action::await_change())
}
