//! The instance lifecycle simulator (kro.md §5 instances, §8 RGD controller): acts as kro's
//! controllers against any Kubernetes API. RGDs get their CRD and kro's status; instances get
//! kro's finalizer, labels, `state`, conditions and author status fields; children are applied
//! to the API or kept in memory (`children`), with simulated status and per-instance scripts.

mod children;

pub use children::{ChildMode, applyset_id, simulate_status};

use std::collections::{BTreeMap, BTreeSet, HashMap};

use base64::Engine as _;
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
use crate::render::{self, evaluate_status, render_value};

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
    pub mode: ChildMode,
    /// Applied mode: play the controllers of child kinds (Deployment, Service, Job, ...) and
    /// write their status. Off against real clusters, whose controllers own child status.
    pub child_simulators: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            kro_version_label: "v0.9.3".into(),
            requeue: Duration::from_secs(3),
            mode: ChildMode::Virtual,
            child_simulators: true,
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
    /// Requeue interval while not ready (default: the simulator's).
    #[serde(default)]
    pub requeue: Option<String>,
    /// Hold the finalizer this long after deletion starts.
    #[serde(default)]
    pub deletion: Option<Deletion>,
    /// A kubeconfig Secret the "cloud" publishes for the instance.
    #[serde(default)]
    pub kubeconfig_secret: Option<KubeconfigSecret>,
}

/// A kubeconfig Secret published in the instance's namespace, owned by the instance (so the
/// garbage collector removes it with the instance), as a managed-Kubernetes operator would.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeconfigSecret {
    pub name: String,
    /// Published this long after the instance's first pass.
    #[serde(default)]
    pub after: Option<String>,
    /// The data key (default `value`, as Cluster API uses).
    #[serde(default)]
    pub key: Option<String>,
    /// The API server URL (default `https://` + the instance's `status.endpoint`).
    #[serde(default)]
    pub server: Option<String>,
    /// Verbatim content instead of a generated kubeconfig (to script invalid ones).
    #[serde(default)]
    pub content: Option<String>,
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
    /// The failure ends this long after the first pass.
    #[serde(default)]
    pub recover_after: Option<String>,
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
    /// While held: `InstanceManaged=False` with `failed removing finalizer: <message>`.
    #[serde(default)]
    pub message: Option<String>,
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
pub(crate) struct InstanceMemory {
    children: BTreeMap<String, Value>,
    first_pass: Option<Instant>,
    deletion_started: Option<Instant>,
}

#[derive(Debug, Default)]
pub(crate) struct Shared {
    controllers: HashMap<String, JoinHandle<()>>,
    instances: HashMap<String, InstanceMemory>,
    kinds: children::KindCache,
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

impl InstanceContext {
    fn children<'a>(
        &'a self,
        instance_uid: &'a str,
        first_pass: Instant,
        script: &'a Script,
    ) -> children::Children<'a> {
        children::Children {
            mode: self.options.mode,
            simulators: self.options.child_simulators,
            client: &self.client,
            shared: &self.shared,
            instance_uid,
            first_pass,
            script,
        }
    }
}

pub(crate) fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub(crate) fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
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
    // Dropping this future (or returning) stops every per-kind instance controller too.
    let _stop = StopInstances(shared.clone());
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
    Ok(())
}

/// Aborts the instance controllers when the simulator stops.
struct StopInstances(Arc<Mutex<Shared>>);

impl Drop for StopInstances {
    fn drop(&mut self) {
        for (_, handle) in lock(&self.0).controllers.drain() {
            handle.abort();
        }
    }
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
        .find(|d| d.severity == Severity::Error)
        .map(|d| d.message);
    // kro resolves every template's schema from the cluster; an unserved kind is V4's error.
    let first_error = match first_error {
        Some(e) => Some(e),
        None => unserved_template(&ctx.client, &value).await,
    };
    let retry_later = first_error.is_some();
    let mut status = json!({});
    match (first_error, generated) {
        (Some(error), _) => {
            conditions.set(&Condition {
                type_: "GraphAccepted",
                status: "False",
                reason: "InvalidResourceGraph",
                message: &error,
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
    // A kind served later (a CRD installed after the RGD) is picked up by a later pass.
    Ok(if retry_later {
        Action::requeue(Duration::from_secs(5))
    } else {
        Action::await_change()
    })
}

/// V4's `failed to get schema` for the first template whose kind the API does not serve.
async fn unserved_template(client: &Client, rgd: &Value) -> Option<String> {
    for resource in rgd["spec"]["resources"].as_array().into_iter().flatten() {
        let template = &resource["template"];
        let (Some(api_version), Some(kind)) =
            (template["apiVersion"].as_str(), template["kind"].as_str())
        else {
            continue;
        };
        if api_version.contains("${") || kind.contains("${") {
            continue;
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        if kube::discovery::pinned_kind(client, &gvk).await.is_err() {
            let id = resource["id"].as_str().unwrap_or_default();
            return Some(format!(
                "failed to build resource \"{id}\": failed to get schema for resource {id}: schema not found for {api_version}, Kind={kind}"
            ));
        }
    }
    None
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

pub(crate) fn elapsed(since: Option<Instant>, text: &Option<String>) -> bool {
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

impl NodeState {
    fn from_readiness(readiness: Result<(), String>) -> Self {
        match readiness {
            Ok(()) => NodeState::Synced,
            Err(why) => NodeState::Waiting(why),
        }
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
        crate::pluralize::pluralize(&field("/kind").to_lowercase())
    )
}

/// Whether every includeWhen condition holds (an error or non-bool excludes the node).
fn included(include_when: &[String], variables: &BTreeMap<String, Value>) -> bool {
    include_when
        .iter()
        .all(|condition| match expr::scan(condition) {
            Ok(Scanned::Standalone(e)) => {
                matches!(crate::eval::evaluate(&e, variables), Ok(Value::Bool(true)))
            }
            _ => true,
        })
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
    let failure = script.fail.clone().filter(|f| {
        elapsed(Some(first_pass), &f.after)
            && (f.recover_after.is_none() || !elapsed(Some(first_pass), &f.recover_after))
    });
    let requeue = script
        .requeue
        .as_deref()
        .and_then(duration)
        .unwrap_or(ctx.options.requeue);

    if deleting {
        return delete_pass(
            &api, &fresh, &instance, &rgd, &ctx, conditions, first_pass, &script, requeue,
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
        return write_status(&api, &name, conditions, "IN_PROGRESS", Map::new(), requeue).await;
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
        return write_status(&api, &name, conditions, "ERROR", Map::new(), requeue).await;
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
        return write_status(&api, &name, conditions, "ACTIVE", author, requeue).await;
    }

    let graph = render::nodes(&rgd);
    let order = render::topological_order(&graph).map_err(SimError::Invalid)?;
    let owner = children::Owner {
        uid: &uid,
        name: &name,
        namespace: if ctx.namespaced { &namespace } else { "" },
        resource: &ctx.resource,
        kro_version: &ctx.options.kro_version_label,
    };
    let children = ctx.children(&uid, first_pass, &script);
    let mut states: BTreeMap<String, NodeState> = BTreeMap::new();
    let mut pending: Option<String> = None;
    let mut child_deleting: Option<String> = None;
    // Nodes to apply after the walk: id, desired object, object read before the apply.
    let mut queued: Vec<(String, Value, Option<Value>)> = Vec::new();
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
                "waiting for unresolved resource: {}: node \"{id}\": dependent node \"{dep}\" not ready: {why} (data pending)",
                gvr_of(node.template.as_ref().or(node.external.as_ref()))
            );
            pending.get_or_insert(message.clone());
            states.insert(id.clone(), NodeState::Pending(message));
            continue;
        }
        if !included(&node.include_when, &variables) {
            states.insert(id.clone(), NodeState::Skipped);
            continue;
        }
        let Some(template) = node.template.as_ref().or(node.external.as_ref()) else {
            continue;
        };
        if let Some(f) = failure
            .as_ref()
            .filter(|f| f.kind == "cel" && f.node.as_deref().is_none_or(|n| n == id))
        {
            states.insert(id.clone(), NodeState::Error(f.message.clone()));
            continue;
        }
        let mut desired = match render_value(template, &variables) {
            Ok(r) => r,
            Err(EvalError::Pending(p)) => {
                let message = format!("node \"{id}\": failed to evaluate expression: {p}");
                pending.get_or_insert(format!(
                    "waiting for unresolved resource: {}: {message} (data pending)",
                    gvr_of(Some(template))
                ));
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
        if let Some(f) = failure
            .as_ref()
            .filter(|f| f.kind == "apply" && f.node.as_deref().is_none_or(|n| n == id))
        {
            let message = format!("apply results contain errors: {}", f.message);
            states.insert(id.clone(), NodeState::Error(message));
            continue;
        }
        if ctx.namespaced && desired.pointer("/metadata/namespace").is_none() {
            desired["metadata"]["namespace"] = json!(namespace);
        }
        let external = node.template.is_none();
        if !external {
            owner.label(id, &mut desired);
        }
        let current = if external {
            children.get_external(id, &desired).await
        } else {
            children.get(id, &desired).await
        };
        match current {
            Err(e) => {
                states.insert(
                    id.clone(),
                    NodeState::Error(format!("apply results contain errors: {e}")),
                );
            }
            Ok(Some(current)) if !external && children::is_terminating(&current) => {
                child_deleting = Some(format!(
                    "resource \"{}\" for node \"{id}\" is currently being deleted; waiting for deletion to complete before continuing reconciliation",
                    children::display_name(&current)
                ));
                states.insert(
                    id.clone(),
                    NodeState::Waiting(format!("node \"{id}\": being deleted")),
                );
                break;
            }
            Ok(Some(current)) => {
                let ready = readiness(id, &node.ready_when, &current, ready_forced_false);
                variables.insert(id.clone(), current.clone());
                states.insert(id.clone(), NodeState::from_readiness(ready));
                if !external {
                    queued.push((id.clone(), desired, Some(current)));
                }
            }
            Ok(None) => {
                states.insert(
                    id.clone(),
                    NodeState::Waiting(format!(
                        "node \"{id}\": no observed state: waiting for readiness"
                    )),
                );
                if !external {
                    queued.push((id.clone(), desired, None));
                }
            }
        }
    }
    if let Some(message) = child_deleting {
        conditions.set(&Condition {
            type_: "ResourcesReady",
            status: "False",
            reason: "ResourceDeleting",
            message: &message,
        });
        let author = author_status(&rgd, &variables, &script);
        return write_status(&api, &name, conditions, "IN_PROGRESS", author, requeue).await;
    }
    let mut mutated = false;
    if !queued.is_empty() {
        let desired: Vec<&Value> = queued.iter().map(|(_, d, _)| d).collect();
        api.patch(
            &name,
            &PatchParams::apply("kro.run/applyset-parent").force(),
            &Patch::Apply(&owner.applyset_parent(&desired)),
        )
        .await?;
    }
    for (id, desired, before) in queued {
        let ready_when = graph
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.ready_when.as_slice())
            .unwrap_or_default();
        match children.apply(&id, &desired, before.as_ref()).await {
            Ok((observed, changed)) => {
                mutated |= changed;
                let ready = readiness(&id, ready_when, &observed, ready_forced_false);
                variables.insert(id.clone(), observed);
                states.insert(id, NodeState::from_readiness(ready));
            }
            Err(e) => {
                states.insert(
                    id,
                    NodeState::Error(format!("apply results contain errors: {e}")),
                );
            }
        }
    }
    let clean = pending.is_none() && !states.values().any(|s| matches!(s, NodeState::Error(_)));
    if clean {
        // Prune: children of nodes that are no longer included.
        for id in order
            .iter()
            .filter(|id| matches!(states.get(*id), Some(NodeState::Skipped)))
        {
            if let Some(previous) = children.remembered(id) {
                children
                    .delete(id, &previous)
                    .await
                    .map_err(SimError::Invalid)?;
                mutated = true;
            }
        }
    }
    if let Some(secret) = script
        .kubeconfig_secret
        .as_ref()
        .filter(|k| elapsed(Some(first_pass), &k.after))
    {
        let endpoint = author_status(&rgd, &variables, &script)
            .get("endpoint")
            .and_then(Value::as_str)
            .map(str::to_string);
        publish_kubeconfig(&ctx.client, &fresh, secret, endpoint).await?;
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
    write_status(&api, &name, conditions, state, author, requeue).await
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

/// Writes `{conditions, state, author fields}` when it differs from the stored status: GET the
/// instance, replace `.status`, PUT `/status`, retrying on 409 with a fresh GET (kro.md §5.1).
async fn write_status(
    api: &Api<DynamicObject>,
    name: &str,
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
    let mut attempts = 0;
    loop {
        let Some(mut latest) = api.get_opt(name).await? else {
            return Ok(Action::await_change());
        };
        if latest.data.get("status") == Some(&status) {
            break;
        }
        latest.data["status"] = status.clone();
        match api
            .replace_status(name, &PostParams::default(), &latest)
            .await
        {
            Ok(_) => break,
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(Action::await_change()),
            Err(kube::Error::Api(e)) if e.code == 409 && attempts < 5 => attempts += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(if ready {
        Action::requeue(requeue * 10)
    } else {
        Action::requeue(requeue)
    })
}

/// kro.md §5.8: the last existing child in topological order is deleted, one per pass; when
/// none is left, the finalizer goes.
#[allow(clippy::too_many_arguments)]
async fn delete_pass(
    api: &Api<DynamicObject>,
    fresh: &DynamicObject,
    instance: &Value,
    rgd: &Value,
    ctx: &InstanceContext,
    mut conditions: Conditions,
    first_pass: Instant,
    script: &Script,
    requeue: Duration,
) -> Result<Action, SimError> {
    let name = fresh.name_any();
    let uid = fresh.uid().unwrap_or_default();
    conditions.set(&Condition {
        type_: "ResourcesReady",
        status: "Unknown",
        reason: "UnderDeletion",
        message: "deleting resources",
    });
    let graph = render::nodes(rgd);
    let order = render::topological_order(&graph).unwrap_or_default();
    let children = ctx.children(&uid, first_pass, script);
    let mut schema = instance.clone();
    if let Some(o) = schema.as_object_mut() {
        o.remove("status");
    }
    let mut variables: BTreeMap<String, Value> = BTreeMap::from([("schema".to_string(), schema)]);
    let mut target: Option<(String, Value)> = None;
    for id in &order {
        let Some(node) = graph.iter().find(|n| &n.id == id) else {
            continue;
        };
        // External references are observed, never deleted; a pending identity counts as gone.
        let Some(template) = node.template.as_ref() else {
            continue;
        };
        if !included(&node.include_when, &variables) {
            continue;
        }
        let Ok(mut desired) = render_value(template, &variables) else {
            continue;
        };
        if ctx.namespaced && desired.pointer("/metadata/namespace").is_none() {
            desired["metadata"]["namespace"] = json!(fresh.namespace().unwrap_or_default());
        }
        if let Some(current) = children
            .get(id, &desired)
            .await
            .map_err(SimError::Invalid)?
        {
            variables.insert(id.clone(), current.clone());
            target = Some((id.clone(), current));
        }
    }
    let held_message = {
        let mut shared = lock(&ctx.shared);
        let memory = shared.instances.entry(uid.clone()).or_default();
        let started = *memory.deletion_started.get_or_insert_with(Instant::now);
        script
            .deletion
            .as_ref()
            .filter(|d| !elapsed(Some(started), &d.hold_for))
            .map(|d| d.message.clone())
    };
    if let Some(Some(message)) = &held_message {
        conditions.set(&Condition {
            type_: "InstanceManaged",
            status: "False",
            reason: "ManagementFailed",
            message: &format!("failed removing finalizer: {message}"),
        });
    }
    if let Some((id, current)) = &target
        && !children::is_terminating(current)
    {
        children
            .delete(id, current)
            .await
            .map_err(SimError::Invalid)?;
    }
    let author = author_status(rgd, &variables, script);
    let action = write_status(api, &name, conditions, "DELETING", author, requeue).await?;
    if held_message.is_some() {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    if target.is_some() {
        return Ok(action);
    }
    // Remove the finalizer with a resourceVersion precondition on the latest object (§5.1).
    if let Some(current) = api.get_opt(&name).await? {
        let remaining: Vec<String> = current
            .finalizers()
            .iter()
            .filter(|f| *f != FINALIZER)
            .cloned()
            .collect();
        let patch = json!({"metadata": {"resourceVersion": current.resource_version(), "finalizers": remaining}});
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    lock(&ctx.shared).instances.remove(&uid);
    Ok(Action::await_change())
}
