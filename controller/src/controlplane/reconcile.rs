//! The I/O edges of the Kany8sControlPlane reconcile (provider.md §4.4): observe the owner
//! Cluster, RGD, backend object and Secrets, call the pure decide step, then apply with SSA
//! under one field manager and write status once, only when it changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
    Preconditions, PropagationPolicy,
};
use kube::discovery::Scope;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};

use super::decide::{
    self, Backend, Decision, Event, Inputs, KubeconfigOutcome, Verdict, put, types,
};
use crate::api::{BackendReference, Kany8sControlPlane, Kany8sControlPlaneStatus};
use crate::backend_status::{self, BackendStatus};
use crate::capi::{
    self, ApiEndpoint, BLOCK_MOVE_ANNOTATION, CLUSTER_NAME_LABEL, Cluster,
    DELETE_FOR_MOVE_ANNOTATION, PAUSED_ANNOTATION, conditions_equivalent,
};
use crate::dynamic::DynamicWatches;
use crate::kubeconfig;
use crate::rgd::{self, InstanceKind, RgdError};

/// Field manager of every write of this controller ([CP-48]).
pub const FIELD_MANAGER: &str = "kany8s-controlplane";
/// The control plane's finalizer (§2.8).
pub const FINALIZER: &str = "kany8scontrolplane.controlplane.cluster.x-k8s.io";
/// Marks a backend object Kany8s suspended (§2.8).
pub const SUSPENDED_ANNOTATION: &str = "kany8s.io/suspended";
/// Identifies the owning object even while ownerReferences are detached (§2.8).
pub const OWNER_UID_ANNOTATION: &str = "kany8s.io/owner-uid";
/// kro's suspension annotation.
pub const KRO_RECONCILE_ANNOTATION: &str = "kro.run/reconcile";

/// Requeue when nothing would trigger ([CP-53]).
const SERVED_RETRY: Duration = Duration::from_secs(30);

/// Errors that back off and retry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("encoding: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Transient(String),
}

/// Which control planes read which Secret ([KC-13]).
#[derive(Debug, Default)]
pub struct SecretIndex {
    by_secret: HashMap<(String, String), BTreeSet<String>>,
    by_cp: HashMap<(String, String), Vec<(String, String)>>,
}

impl SecretIndex {
    /// Records that control plane `cp` (namespace, name) depends on `secrets`.
    pub fn record(&mut self, cp: (String, String), secrets: Vec<(String, String)>) {
        self.forget(&cp);
        for secret in &secrets {
            self.by_secret
                .entry(secret.clone())
                .or_default()
                .insert(cp.1.clone());
        }
        self.by_cp.insert(cp, secrets);
    }

    pub fn forget(&mut self, cp: &(String, String)) {
        for secret in self.by_cp.remove(cp).unwrap_or_default() {
            if let Some(set) = self.by_secret.get_mut(&secret) {
                set.remove(&cp.1);
                if set.is_empty() {
                    self.by_secret.remove(&secret);
                }
            }
        }
    }

    /// The control planes (in the Secret's namespace) that read Secret `namespace/name`.
    pub fn dependents(&self, namespace: &str, name: &str) -> Vec<String> {
        self.by_secret
            .get(&(namespace.to_string(), name.to_string()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Shared state of the controller.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub watches: Arc<DynamicWatches<Kany8sControlPlane>>,
    pub secrets: Arc<Mutex<SecretIndex>>,
    /// Discovered kinds: (apiVersion, kind) → (resource, namespaced).
    kinds: Mutex<HashMap<(String, String), (ApiResource, bool)>>,
    /// The last one-off warning per control plane, so a repeated one is not re-emitted.
    last_warning: Mutex<HashMap<(String, String), String>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("watches", &self.watches)
            .finish_non_exhaustive()
    }
}

impl Context {
    pub fn new(
        client: Client,
        recorder: Recorder,
        watches: Arc<DynamicWatches<Kany8sControlPlane>>,
    ) -> Self {
        Self {
            client,
            recorder,
            watches,
            secrets: Arc::default(),
            kinds: Mutex::default(),
            last_warning: Mutex::default(),
        }
    }

    /// [RG-06]: the resource of a kind, from discovery (a miss is asked again next time).
    async fn resource_of(&self, api_version: &str, kind: &str) -> Option<(ApiResource, bool)> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(found) = lock(&self.kinds).get(&key) {
            return Some(found.clone());
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, capabilities) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .ok()?;
        let found = (resource, capabilities.scope == Scope::Namespaced);
        lock(&self.kinds).insert(key, found.clone());
        Some(found)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now() -> Time {
    // Conditions carry second precision on the wire.
    let seconds = k8s_openapi::jiff::Timestamp::now().as_second();
    Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap_or_default())
}

/// The owner Cluster lookup ([CT-13]–[CT-15]).
#[derive(Clone, Debug)]
pub enum Owner {
    NotSet,
    NotFound(String),
    GetFailed(String),
    Found(Box<Cluster>),
}

impl Owner {
    fn cluster(&self) -> Option<&Cluster> {
        match self {
            Owner::Found(c) => Some(c),
            _ => None,
        }
    }
}

/// Finds the owner Cluster of `object` in its namespace.
pub async fn owner_cluster<K: Resource>(client: &Client, object: &K) -> Owner {
    let Some(reference) = object.meta().owner_references.iter().flatten().find(|o| {
        o.kind == "Cluster" && capi::api_group_of(&o.api_version) == capi::CLUSTER_API_GROUP
    }) else {
        return Owner::NotSet;
    };
    let namespace = object.meta().namespace.clone().unwrap_or_default();
    let clusters: Api<Cluster> = Api::namespaced(client.clone(), &namespace);
    match clusters.get_opt(&reference.name).await {
        Ok(Some(cluster)) if cluster.metadata.uid.as_deref() == Some(reference.uid.as_str()) => {
            Owner::Found(Box::new(cluster))
        }
        Ok(_) => Owner::NotFound(format!("Cluster {namespace}/{} not found", reference.name)),
        Err(e) => Owner::GetFailed(e.to_string()),
    }
}

/// [CT-09]/[CT-16]: the `Paused` message when paused.
pub fn paused_message(
    kind: &str,
    annotations: &BTreeMap<String, String>,
    owner: &Owner,
) -> Option<String> {
    let mut reasons = Vec::new();
    if owner.cluster().is_some_and(|c| c.spec.paused == Some(true)) {
        reasons.push("Cluster spec.paused is set to true".to_string());
    }
    if annotations.contains_key(PAUSED_ANNOTATION) {
        reasons.push(format!("{kind} has the {PAUSED_ANNOTATION} annotation"));
    }
    (!reasons.is_empty()).then(|| reasons.join(", "))
}

/// The backend object the spec describes.
struct Desired {
    backend: Backend,
    api_version: String,
    kind: String,
    spec: Value,
}

/// Reconciles one control plane.
pub async fn reconcile(cp: Arc<Kany8sControlPlane>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = cp.namespace().unwrap_or_default();
    let name = cp.name_any();
    let api: Api<Kany8sControlPlane> = Api::namespaced(ctx.client.clone(), &namespace);
    let owner = owner_cluster(&ctx.client, cp.as_ref()).await;
    if cp.metadata.deletion_timestamp.is_some() {
        lock(&ctx.secrets).forget(&(namespace.clone(), name.clone()));
        lock(&ctx.last_warning).remove(&(namespace.clone(), name.clone()));
        return delete(&cp, &ctx, &api, owner).await;
    }
    if let Some(message) = paused_message("Kany8sControlPlane", cp.annotations(), &owner) {
        return pause(&cp, &ctx, &api, &owner, message).await;
    }
    ensure_own(&cp, &api, true, cp.spec.control_plane_endpoint.clone()).await?;

    let mut inputs = inputs_of(&cp);
    let mut requeue = None;
    match desired_backend(&cp, &owner) {
        Err((reason, message)) => inputs.spec_error = Some((reason, message)),
        Ok(desired) => {
            inputs.backend = Some(desired.backend);
            let resolved = resolve(&ctx, &cp, &desired, &mut inputs).await?;
            match resolved {
                Some((resource, namespaced)) => {
                    inputs.backend_changed = backend_changed(&ctx, &cp, &resource).await?;
                    if inputs.backend_changed.is_none() {
                        let object =
                            apply_backend(&ctx, &cp, &owner, &desired, &resource, namespaced).await;
                        let object = match object {
                            Ok(o) => o,
                            Err(e) => {
                                write_status(&api, &cp, decide::decide(&inputs).status).await?;
                                return Err(e);
                            }
                        };
                        let backend = backend_api(&ctx, &namespace, &resource, namespaced);
                        resume(&cp, &backend, &object).await?;
                        inputs.backend_ref = Some(BackendReference {
                            api_version: resource.api_version.clone(),
                            kind: resource.kind.clone(),
                            name: name.clone(),
                        });
                        ctx.watches.ensure(&resource);
                        inputs.observed = Some(backend_status::read(&object));
                    }
                }
                None => {
                    if matches!(inputs.resolution, Some(Err(RgdError::NotServed(..)))) {
                        requeue = Some(SERVED_RETRY);
                    }
                    // [CP-16]: reflect the object named by status.backendRef, if any.
                    if let Some(object) = reflect(&ctx, &cp).await? {
                        inputs.observed = Some(backend_status::read(&object));
                    }
                }
            }
            if inputs.backend_changed.is_none() {
                let status = inputs.observed.clone().and_then(Result::ok);
                inputs.kubeconfig =
                    Some(reconcile_kubeconfig(&ctx, &cp, &owner, status.as_ref()).await?);
            }
        }
    }
    let decision = decide::decide(&inputs);
    apply_decision(&ctx, &cp, &api, decision).await?;
    // [CP-52]: a failed RGD read is written as a condition, then backs off.
    if let Some(Err(e @ RgdError::GetFailed(..))) = &inputs.resolution {
        return Err(Error::Transient(e.to_string()));
    }
    Ok(match requeue {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// The decide step's inputs before anything but the control plane itself was observed.
fn inputs_of(cp: &Kany8sControlPlane) -> Inputs {
    Inputs {
        generation: cp.metadata.generation.unwrap_or(0),
        spec_version: cp.spec.version.clone(),
        spec_endpoint: cp.spec.control_plane_endpoint.clone(),
        previous: cp.status.clone().unwrap_or_default(),
        backend: None,
        spec_error: None,
        rgd_name: String::new(),
        resolution: None,
        backend_changed: None,
        observed: None,
        backend_ref: None,
        kubeconfig: None,
        now: now(),
    }
}

/// [CP-06], [CP-20], [CP-30], [CP-31]: the desired backend object, or a spec error.
fn desired_backend(cp: &Kany8sControlPlane, owner: &Owner) -> Result<Desired, (String, String)> {
    let backend = &cp.spec.backend;
    let selected = [
        backend.resource_graph_definition_ref.is_some(),
        backend.kubeadm.is_some(),
        backend.external_backend.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    let exactly_one = "exactly one backend must be selected".to_string();
    match selected {
        0 => return Err(("BackendNotSelected".into(), exactly_one)),
        1 => {}
        _ => return Err(("MultipleBackendsSelected".into(), exactly_one)),
    }
    if backend.kubeadm.is_some() {
        return Err((
            "BackendNotSupported".into(),
            "the kubeadm backend is not available in this build".into(),
        ));
    }
    let object_spec = |value: Option<&Value>, reason: &str, field: &str| match value
        .cloned()
        .unwrap_or_else(|| json!({}))
    {
        Value::Object(map) => Ok(map),
        other => Err((
            reason.to_string(),
            format!(
                "{field} must be a JSON object, got {}",
                backend_status::json_type(&other)
            ),
        )),
    };
    if backend.resource_graph_definition_ref.is_some() {
        let mut spec = object_spec(backend.kro_spec.as_ref(), "InvalidKroSpec", "spec.kroSpec")?;
        spec.insert("version".into(), json!(cp.spec.version));
        return Ok(Desired {
            backend: Backend::Kro,
            api_version: String::new(),
            kind: String::new(),
            spec: Value::Object(spec),
        });
    }
    let Some(external) = backend.external_backend.as_ref() else {
        return Err(("BackendNotSelected".into(), exactly_one));
    };
    let parts: Vec<&str> = external.api_version.split('/').collect();
    if parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
        return Err((
            "InvalidExternalBackend".into(),
            format!(
                "parse spec.externalBackend.apiVersion: unexpected GroupVersion string: {}",
                external.api_version
            ),
        ));
    }
    if external.kind.trim().is_empty() {
        return Err((
            "InvalidExternalBackend".into(),
            "spec.externalBackend.kind is required".into(),
        ));
    }
    if external.kind == "Kany8sControlPlane"
        && parts.len() == 2
        && parts[0] == crate::api::CONTROL_PLANE_GROUP
    {
        return Err((
            "InvalidExternalBackend".into(),
            "spec.externalBackend must not reference a Kany8sControlPlane".into(),
        ));
    }
    let mut spec = object_spec(
        external.spec.as_ref(),
        "InvalidExternalBackendSpec",
        "spec.externalBackend.spec",
    )?;
    spec.insert("version".into(), json!(cp.spec.version));
    if let Some(cluster) = owner.cluster() {
        spec.insert("clusterName".into(), json!(cluster.name_any()));
        spec.insert("clusterNamespace".into(), json!(cluster.namespace()));
        spec.insert("clusterUID".into(), json!(cluster.uid()));
    }
    Ok(Desired {
        backend: Backend::External,
        api_version: external.api_version.clone(),
        kind: external.kind.clone(),
        spec: Value::Object(spec),
    })
}

/// Resolves the backend kind (RGD for kro, discovery for both); records the resolution in
/// `inputs`. `None` when instance writes are blocked.
async fn resolve(
    ctx: &Context,
    cp: &Kany8sControlPlane,
    desired: &Desired,
    inputs: &mut Inputs,
) -> Result<Option<(ApiResource, bool)>, Error> {
    let kind = match desired.backend {
        Backend::Kro => {
            let reference = cp
                .spec
                .backend
                .resource_graph_definition_ref
                .as_ref()
                .map(|r| r.name.clone())
                .unwrap_or_default();
            let resolution = resolve_rgd(ctx, &reference).await;
            inputs.rgd_name = reference.trim().to_string();
            if let Ok((_, rgd)) = &resolution
                && !rgd::declares_version(rgd)
            {
                publish(ctx, cp, &Event {
                    warning: true,
                    reason: "ResourceGraphDefinitionMissingVersionField".into(),
                    note: format!("ResourceGraphDefinition \"{}\" does not declare spec.version; the injected version will be pruned by the API server", inputs.rgd_name),
                }).await;
            }
            match resolution {
                Ok((kind, _)) => kind,
                Err(e) => {
                    inputs.resolution = Some(Err(e));
                    return Ok(None);
                }
            }
        }
        Backend::External => {
            let (group, version) = desired
                .api_version
                .rsplit_once('/')
                .unwrap_or(("", desired.api_version.as_str()));
            InstanceKind {
                group: group.into(),
                version: version.into(),
                kind: desired.kind.clone(),
            }
        }
    };
    match ctx.resource_of(&kind.api_version(), &kind.kind).await {
        Some(found) => {
            inputs.resolution = Some(Ok(kind));
            Ok(Some(found))
        }
        None => {
            inputs.resolution = Some(Err(RgdError::NotServed(
                kind.group,
                kind.version,
                kind.kind,
            )));
            Ok(None)
        }
    }
}

async fn resolve_rgd(ctx: &Context, reference: &str) -> Result<(InstanceKind, Value), RgdError> {
    let name = rgd::name(reference)?;
    let rgds: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &rgd_resource());
    let object = match rgds.get_opt(&name).await {
        Ok(Some(o)) => {
            serde_json::to_value(o).map_err(|e| RgdError::GetFailed(name.clone(), e.to_string()))?
        }
        Ok(None) => return Err(RgdError::NotFound(name)),
        Err(e) => return Err(RgdError::GetFailed(name, e.to_string())),
    };
    Ok((rgd::resolve(&name, &object)?, object))
}

/// kro's ResourceGraphDefinition kind.
pub fn rgd_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kro.run", "v1alpha1", "ResourceGraphDefinition"),
        "resourcegraphdefinitions",
    )
}

fn owned_by(object: &Value, uid: &str) -> bool {
    let controller = object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r["uid"] == uid && r["controller"] == true)
        });
    controller
        || object
            .pointer(&format!(
                "/metadata/annotations/{}",
                OWNER_UID_ANNOTATION.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            == Some(uid)
}

async fn get_backend(
    ctx: &Context,
    namespace: &str,
    reference: &BackendReference,
) -> Result<Option<(Value, ApiResource, bool)>, Error> {
    let Some((resource, namespaced)) = ctx
        .resource_of(&reference.api_version, &reference.kind)
        .await
    else {
        return Ok(None);
    };
    let api: Api<DynamicObject> = if namespaced {
        Api::namespaced_with(ctx.client.clone(), namespace, &resource)
    } else {
        Api::all_with(ctx.client.clone(), &resource)
    };
    Ok(match api.get_opt(&reference.name).await? {
        Some(o) => Some((serde_json::to_value(o)?, resource, namespaced)),
        None => None,
    })
}

/// [CP-12]: a backend of another group or kind that still exists and is owned blocks writes.
async fn backend_changed(
    ctx: &Context,
    cp: &Kany8sControlPlane,
    desired: &ApiResource,
) -> Result<Option<String>, Error> {
    let Some(old) = cp.status.as_ref().and_then(|s| s.backend_ref.clone()) else {
        return Ok(None);
    };
    let same = capi::api_group_of(&old.api_version) == desired.group && old.kind == desired.kind;
    if same {
        return Ok(None);
    }
    let namespace = cp.namespace().unwrap_or_default();
    let uid = cp.uid().unwrap_or_default();
    match get_backend(ctx, &namespace, &old).await? {
        Some((object, _, _)) if owned_by(&object, &uid) => Ok(Some(format!(
            "backend changed from {}/{} to {}/{}; delete {} {namespace}/{} or revert the spec",
            old.api_version, old.kind, desired.api_version, desired.kind, old.kind, old.name
        ))),
        _ => Ok(None),
    }
}

/// [CP-21]–[CP-23], [CP-33]: SSA of the backend object; returns the applied object.
async fn apply_backend(
    ctx: &Context,
    cp: &Kany8sControlPlane,
    owner: &Owner,
    desired: &Desired,
    resource: &ApiResource,
    namespaced: bool,
) -> Result<Value, Error> {
    let namespace = cp.namespace().unwrap_or_default();
    let name = cp.name_any();
    let uid = cp.uid().unwrap_or_default();
    let mut owner_references = vec![json!({
        "apiVersion": "controlplane.cluster.x-k8s.io/v1alpha1", "kind": "Kany8sControlPlane",
        "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true})];
    let mut labels = json!({});
    if let Some(cluster) = owner.cluster() {
        owner_references.push(
            json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
            "name": cluster.name_any(), "uid": cluster.uid()}),
        );
        labels[CLUSTER_NAME_LABEL] = json!(cluster.name_any());
    }
    let mut metadata = json!({"name": name, "labels": labels,
        "annotations": {OWNER_UID_ANNOTATION: uid}, "ownerReferences": owner_references});
    if namespaced {
        metadata["namespace"] = json!(namespace);
    }
    let body = json!({"apiVersion": resource.api_version, "kind": resource.kind,
        "metadata": metadata, "spec": desired.spec});
    let api: Api<DynamicObject> = if namespaced {
        Api::namespaced_with(ctx.client.clone(), &namespace, resource)
    } else {
        Api::all_with(ctx.client.clone(), resource)
    };
    let applied = api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
    Ok(serde_json::to_value(applied)?)
}

/// [CP-16]: the object named by `status.backendRef`, when the RGD blocks writes.
async fn reflect(ctx: &Context, cp: &Kany8sControlPlane) -> Result<Option<Value>, Error> {
    let Some(reference) = cp.status.as_ref().and_then(|s| s.backend_ref.clone()) else {
        return Ok(None);
    };
    let namespace = cp.namespace().unwrap_or_default();
    let Some((object, resource, namespaced)) = get_backend(ctx, &namespace, &reference).await?
    else {
        return Ok(None);
    };
    ctx.watches.ensure(&resource);
    resume(
        cp,
        &backend_api(ctx, &namespace, &resource, namespaced),
        &object,
    )
    .await?;
    Ok(Some(object))
}

/// §4.5: Option B copies `status.kubeconfigSecretRef` into `<cluster>-kubeconfig`; Option A
/// verifies the Secret the backend provides.
async fn reconcile_kubeconfig(
    ctx: &Context,
    cp: &Kany8sControlPlane,
    owner: &Owner,
    status: Option<&BackendStatus>,
) -> Result<KubeconfigOutcome, Error> {
    let cp_namespace = cp.namespace().unwrap_or_default();
    let reference = status.and_then(|s| s.kubeconfig_ref.clone());
    let copied = reference.is_some();
    let outcome = |condition: Verdict| KubeconfigOutcome { condition, copied };
    let cluster = match owner {
        Owner::NotSet => {
            return Ok(outcome(Verdict::new(
                "False",
                "OwnerClusterNotSet",
                "waiting for owner Cluster reference to be set",
            )));
        }
        Owner::NotFound(e) => {
            return Ok(outcome(Verdict::new(
                "False",
                "OwnerClusterNotFound",
                format!("owner Cluster not found: {e}"),
            )));
        }
        Owner::GetFailed(e) => {
            return Ok(outcome(Verdict::new(
                "False",
                "OwnerClusterGetFailed",
                format!("get owner Cluster: {e}"),
            )));
        }
        Owner::Found(cluster) => cluster,
    };
    let cluster_name = cluster.name_any();
    let target_name = format!("{cluster_name}-kubeconfig");
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &cp_namespace);
    let mut dependencies = vec![(cp_namespace.clone(), target_name.clone())];
    let result = async {
        let option_a = |secret: Option<Secret>| match secret {
            None => Verdict::new("False", "KubeconfigSecretNotFound", format!("waiting for secret {cp_namespace}/{target_name} to be provided by the backend")),
            Some(s) if !kubeconfig::compliant(&s, &cluster_name) => Verdict::new("False", "KubeconfigSecretNotCompliant", format!("secret {cp_namespace}/{target_name} must have type {} and label {CLUSTER_NAME_LABEL}={cluster_name}", kubeconfig::CLUSTER_SECRET_TYPE)),
            Some(s) => match kubeconfig::value_of(&s).map(kubeconfig::validate) {
                None => Verdict::new("False", "InvalidKubeconfig", format!("secret {cp_namespace}/{target_name} contains invalid kubeconfig: kubeconfig is empty")),
                Some(Err(detail)) => Verdict::new("False", "InvalidKubeconfig", format!("secret {cp_namespace}/{target_name} contains invalid kubeconfig: {detail}")),
                Some(Ok(())) => Verdict::new("True", "ProvidedByBackend", format!("kubeconfig secret {cp_namespace}/{target_name} is provided by the backend")),
            },
        };
        let Some((source_name, source_namespace)) = reference.clone() else {
            return Ok::<Verdict, Error>(option_a(secrets.get_opt(&target_name).await?));
        };
        let source_namespace = source_namespace.unwrap_or_else(|| cp_namespace.clone());
        let source_key = format!("{source_namespace}/{source_name}");
        if source_namespace != cp_namespace {
            return Ok(Verdict::new("False", "KubeconfigSourceSecretCrossNamespace", format!("cross-namespace source secret {source_key} is not allowed (control plane namespace: {cp_namespace})")));
        }
        dependencies.push((source_namespace.clone(), source_name.clone()));
        if source_name == target_name {
            return Ok(option_a(secrets.get_opt(&target_name).await?));
        }
        let source = match secrets.get_opt(&source_name).await {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(Verdict::new("False", "KubeconfigSourceSecretNotFound", format!("waiting for source secret {source_key} to be created"))),
            Err(e) => return Ok(Verdict::new("False", "KubeconfigSourceSecretGetFailed", format!("get source secret {source_key}: {e}"))),
        };
        let Some(value) = kubeconfig::value_of(&source) else {
            return Ok(Verdict::new("False", "KubeconfigSourceSecretDataMissing", format!("source secret {source_key} missing data[\"value\"]")));
        };
        if let Err(detail) = kubeconfig::validate(value) {
            return Ok(Verdict::new("False", "InvalidKubeconfig", format!("source secret {source_key} contains invalid kubeconfig: {detail}")));
        }
        let uid = cp.uid().unwrap_or_default();
        let target = secrets.get_opt(&target_name).await?;
        if let Some(target) = &target
            && let Some(detail) = kubeconfig::ownership_conflict(target, &uid)
        {
            return Ok(Verdict::new("False", "KubeconfigSecretOwnershipConflict", format!("secret {cp_namespace}/{target_name} {detail}; refusing to overwrite")));
        }
        let in_place = target.as_ref().is_some_and(|t| {
            kubeconfig::value_of(t) == Some(value)
                && kubeconfig::compliant(t, &cluster_name)
                && t.metadata.owner_references.iter().flatten().any(|o| o.uid == uid && o.controller == Some(true))
        });
        if !in_place {
            let body = json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": target_name, "namespace": cp_namespace,
                    "labels": {CLUSTER_NAME_LABEL: cluster_name},
                    "ownerReferences": [{"apiVersion": "controlplane.cluster.x-k8s.io/v1alpha1", "kind": "Kany8sControlPlane",
                        "name": cp.name_any(), "uid": uid, "controller": true, "blockOwnerDeletion": true}]},
                "type": kubeconfig::CLUSTER_SECRET_TYPE,
                "data": {"value": k8s_openapi::ByteString(value.to_vec())}});
            secrets
                .patch(&target_name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&body))
                .await?;
            tracing::info!(secret = %format!("{cp_namespace}/{target_name}"), "kubeconfig secret written");
        }
        Ok(Verdict::new("True", "Reconciled", "kubeconfig secret reconciled"))
    }
    .await;
    lock(&ctx.secrets).record((cp_namespace.clone(), cp.name_any()), dependencies);
    Ok(outcome(result?))
}

/// [CP-05], [CP-49]: the own-object apply (finalizer, block-move, endpoint), skipped when in place.
async fn ensure_own(
    cp: &Kany8sControlPlane,
    api: &Api<Kany8sControlPlane>,
    block_move: bool,
    endpoint: Option<ApiEndpoint>,
) -> Result<(), Error> {
    let has_finalizer = cp.finalizers().iter().any(|f| f == FINALIZER);
    let has_block = cp
        .annotations()
        .get(BLOCK_MOVE_ANNOTATION)
        .map(String::as_str)
        == Some("true");
    if has_finalizer && has_block == block_move && cp.spec.control_plane_endpoint == endpoint {
        return Ok(());
    }
    own_apply(cp, api, true, block_move, endpoint).await
}

async fn own_apply(
    cp: &Kany8sControlPlane,
    api: &Api<Kany8sControlPlane>,
    finalizer: bool,
    block_move: bool,
    endpoint: Option<ApiEndpoint>,
) -> Result<(), Error> {
    let mut metadata = json!({"name": cp.name_any(), "namespace": cp.namespace()});
    if finalizer {
        metadata["finalizers"] = json!([FINALIZER]);
    }
    if block_move {
        metadata["annotations"] = json!({BLOCK_MOVE_ANNOTATION: "true"});
    }
    let mut body = json!({"apiVersion": "controlplane.cluster.x-k8s.io/v1alpha1", "kind": "Kany8sControlPlane", "metadata": metadata});
    if let Some(endpoint) = endpoint {
        body["spec"] = json!({"controlPlaneEndpoint": endpoint});
    }
    api.patch(
        &cp.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

/// [CP-14], [CP-47]: SSA of the complete status, skipped when nothing changed.
async fn write_status(
    api: &Api<Kany8sControlPlane>,
    cp: &Kany8sControlPlane,
    status: Kany8sControlPlaneStatus,
) -> Result<bool, Error> {
    let previous = cp.status.clone().unwrap_or_default();
    let same = conditions_equivalent(&previous.conditions, &status.conditions) && {
        let strip = |s: &Kany8sControlPlaneStatus| Kany8sControlPlaneStatus {
            conditions: Vec::new(),
            ..s.clone()
        };
        strip(&previous) == strip(&status)
    };
    if same {
        return Ok(false);
    }
    let body = json!({"apiVersion": "controlplane.cluster.x-k8s.io/v1alpha1", "kind": "Kany8sControlPlane",
        "metadata": {"name": cp.name_any(), "namespace": cp.namespace()}, "status": status});
    api.patch_status(
        &cp.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(true)
}

async fn publish(ctx: &Context, cp: &Kany8sControlPlane, event: &Event) {
    let reference = cp.object_ref(&());
    let result = ctx
        .recorder
        .publish(
            &KubeEvent {
                type_: if event.warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: event.reason.clone(),
                note: Some(event.note.clone()),
                action: "Reconcile".into(),
                secondary: None,
            },
            &reference,
        )
        .await;
    if let Err(error) = result {
        tracing::warn!(%error, reason = %event.reason, "publishing an event failed");
    }
}

/// Applies a decision: the endpoint first (it must land before initialized, [CT-29]), then
/// the status, then the events.
async fn apply_decision(
    ctx: &Context,
    cp: &Kany8sControlPlane,
    api: &Api<Kany8sControlPlane>,
    decision: Decision,
) -> Result<(), Error> {
    if let Some(endpoint) = decision.endpoint.clone() {
        own_apply(cp, api, true, true, Some(endpoint)).await?;
    }
    write_status(api, cp, decision.status).await?;
    let key = (cp.namespace().unwrap_or_default(), cp.name_any());
    for event in &decision.events {
        // [CT-02] rule 2: an unparseable backend version is reported on change only.
        if event.reason == "InvalidBackendVersion" {
            let mut last = lock(&ctx.last_warning);
            if last.get(&key) == Some(&event.note) {
                continue;
            }
            last.insert(key.clone(), event.note.clone());
        }
        publish(ctx, cp, event).await;
    }
    Ok(())
}

/// [CT-19] step 2: lift Kany8s's suspension of `object` (a backend just read or applied).
/// A `kro.run/reconcile` without Kany8s's marker was set by someone else and stays.
async fn resume(
    cp: &Kany8sControlPlane,
    backend: &Api<DynamicObject>,
    object: &Value,
) -> Result<(), Error> {
    let annotations = &object["metadata"]["annotations"];
    if annotations[SUSPENDED_ANNOTATION] != "true" {
        return Ok(());
    }
    let mut patch = json!({SUSPENDED_ANNOTATION: null});
    if rgd_backend(cp) {
        patch[KRO_RECONCILE_ANNOTATION] = Value::Null;
    } else {
        patch[PAUSED_ANNOTATION] = Value::Null;
    }
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    backend
        .patch(
            name,
            &annotation_patch_params(),
            &Patch::Merge(json!({"metadata": {"annotations": patch}})),
        )
        .await?;
    Ok(())
}

/// Merge and JSON patches of backend objects carry the controller's field manager ([CP-48]).
fn annotation_patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    }
}

fn backend_api(
    ctx: &Context,
    namespace: &str,
    resource: &ApiResource,
    namespaced: bool,
) -> Api<DynamicObject> {
    if namespaced {
        Api::namespaced_with(ctx.client.clone(), namespace, resource)
    } else {
        Api::all_with(ctx.client.clone(), resource)
    }
}

/// [CT-17], [CT-18]: the paused path.
async fn pause(
    cp: &Kany8sControlPlane,
    ctx: &Context,
    api: &Api<Kany8sControlPlane>,
    owner: &Owner,
    message: String,
) -> Result<Action, Error> {
    let generation = cp.metadata.generation.unwrap_or(0);
    let mut status = cp.status.clone().unwrap_or_default();
    put(
        &mut status.conditions,
        types::PAUSED,
        &Verdict::new("True", "Paused", message),
        generation,
        &now(),
    );
    write_status(api, cp, status).await?;
    let mut safely_paused = true;
    if let Some(reference) = cp.status.as_ref().and_then(|s| s.backend_ref.clone()) {
        let namespace = cp.namespace().unwrap_or_default();
        if let Some((object, resource, namespaced)) =
            get_backend(ctx, &namespace, &reference).await?
        {
            safely_paused = suspend(ctx, cp, owner, &object, &resource, namespaced).await?;
        }
    }
    if safely_paused && cp.annotations().contains_key(BLOCK_MOVE_ANNOTATION) {
        let finalizer = cp.finalizers().iter().any(|f| f == FINALIZER);
        own_apply(
            cp,
            api,
            finalizer,
            false,
            cp.spec.control_plane_endpoint.clone(),
        )
        .await?;
    }
    Ok(Action::await_change())
}

/// Suspends and detaches the backend; returns whether it is safely paused.
async fn suspend(
    ctx: &Context,
    cp: &Kany8sControlPlane,
    owner: &Owner,
    object: &Value,
    resource: &ApiResource,
    namespaced: bool,
) -> Result<bool, Error> {
    let namespace = cp.namespace().unwrap_or_default();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let api = backend_api(ctx, &namespace, resource, namespaced);
    let annotations = if rgd_backend(cp) {
        json!({KRO_RECONCILE_ANNOTATION: "suspended", SUSPENDED_ANNOTATION: "true"})
    } else {
        json!({PAUSED_ANNOTATION: "", SUSPENDED_ANNOTATION: "true"})
    };
    let current = &object["metadata"]["annotations"];
    let annotated = annotations
        .as_object()
        .is_some_and(|a| a.iter().all(|(k, v)| current.get(k) == Some(v)));
    if !annotated {
        api.patch(
            &name,
            &annotation_patch_params(),
            &Patch::Merge(json!({"metadata": {"annotations": annotations}})),
        )
        .await?;
    }
    let detach: Vec<String> = [cp.uid(), owner.cluster().and_then(|c| c.uid())]
        .into_iter()
        .flatten()
        .collect();
    let fresh = serde_json::to_value(api.get(&name).await?)?;
    let references = fresh["metadata"]["ownerReferences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut operations = vec![
        json!({"op": "test", "path": "/metadata/resourceVersion", "value": fresh["metadata"]["resourceVersion"]}),
    ];
    for (index, reference) in references.iter().enumerate().rev() {
        if detach.iter().any(|uid| reference["uid"] == uid.as_str()) {
            operations.push(
                json!({"op": "remove", "path": format!("/metadata/ownerReferences/{index}")}),
            );
        }
    }
    if operations.len() > 1 {
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(operations))?;
        api.patch(&name, &annotation_patch_params(), &Patch::<()>::Json(patch))
            .await?;
    }
    Ok(true)
}

fn rgd_backend(cp: &Kany8sControlPlane) -> bool {
    cp.spec.backend.resource_graph_definition_ref.is_some()
}

/// [CT-25]: deletion with the finalizer.
async fn delete(
    cp: &Kany8sControlPlane,
    ctx: &Context,
    api: &Api<Kany8sControlPlane>,
    owner: Owner,
) -> Result<Action, Error> {
    if !cp.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let release = || {
        own_apply(
            cp,
            api,
            false,
            false,
            cp.spec.control_plane_endpoint.clone(),
        )
    };
    if cp.annotations().contains_key(DELETE_FOR_MOVE_ANNOTATION) {
        release().await?;
        return Ok(Action::await_change());
    }
    // [CT-27]: owner errors during deletion leave only the annotation to decide.
    let owner = match owner {
        Owner::Found(c) => Owner::Found(c),
        _ => Owner::NotSet,
    };
    let generation = cp.metadata.generation.unwrap_or(0);
    let now = now();
    let mut status = cp.status.clone().unwrap_or_default();
    if let Some(message) = paused_message("Kany8sControlPlane", cp.annotations(), &owner) {
        put(
            &mut status.conditions,
            types::PAUSED,
            &Verdict::new("True", "Paused", message),
            generation,
            &now,
        );
        put(
            &mut status.conditions,
            types::DELETING,
            &Verdict::new(
                "True",
                "WaitingForUnpause",
                "deletion is blocked while paused",
            ),
            generation,
            &now,
        );
        write_status(api, cp, status).await?;
        return Ok(Action::await_change());
    }
    let namespace = cp.namespace().unwrap_or_default();
    let reference = match cp.status.as_ref().and_then(|s| s.backend_ref.clone()) {
        Some(r) => Some(r),
        None => desired_reference(ctx, cp, &owner).await,
    };
    let Some(reference) = reference else {
        publish(
            ctx,
            cp,
            &Event {
                warning: true,
                reason: "BackendUnresolvable".into(),
                note: "cannot determine the backend to delete; relying on garbage collection"
                    .into(),
            },
        )
        .await;
        release().await?;
        return Ok(Action::await_change());
    };
    let uid = cp.uid().unwrap_or_default();
    let Some((object, resource, namespaced)) = get_backend(ctx, &namespace, &reference).await?
    else {
        release().await?;
        return Ok(Action::await_change());
    };
    if !owned_by(&object, &uid) {
        release().await?;
        return Ok(Action::await_change());
    }
    let backend = backend_api(ctx, &namespace, &resource, namespaced);
    if object
        .pointer("/metadata/deletionTimestamp")
        .is_none_or(Value::is_null)
    {
        resume(cp, &backend, &object).await?;
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            preconditions: Some(Preconditions {
                uid: object["metadata"]["uid"].as_str().map(str::to_string),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match backend.delete(&reference.name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    ctx.watches.ensure(&resource);
    let waiting = format!(
        "waiting for {} {namespace}/{} to be deleted",
        reference.kind, reference.name
    );
    let deleting = Verdict::new("False", "Deleting", "control plane is being deleted");
    put(
        &mut status.conditions,
        types::DELETING,
        &Verdict::new("True", "WaitingForBackendDeletion", waiting),
        generation,
        &now,
    );
    put(
        &mut status.conditions,
        types::READY,
        &deleting,
        generation,
        &now,
    );
    put(
        &mut status.conditions,
        types::AVAILABLE,
        &deleting,
        generation,
        &now,
    );
    put(
        &mut status.conditions,
        types::PAUSED,
        &Verdict::new("False", "NotPaused", ""),
        generation,
        &now,
    );
    capi::remove_condition(&mut status.conditions, types::CREATING);
    status.observed_generation = Some(generation);
    let before = cp.status.clone().unwrap_or_default().conditions;
    if write_status(api, cp, status.clone()).await? {
        for event in decide::condition_events(&before, &status.conditions, &[types::DELETING]) {
            publish(ctx, cp, &event).await;
        }
    }
    Ok(if ctx.watches.is_running(&resource) {
        Action::await_change()
    } else {
        Action::requeue(SERVED_RETRY)
    })
}

/// The backend the spec would create, when `status.backendRef` is not set.
async fn desired_reference(
    ctx: &Context,
    cp: &Kany8sControlPlane,
    owner: &Owner,
) -> Option<BackendReference> {
    let desired = desired_backend(cp, owner).ok()?;
    let mut inputs = inputs_of(cp);
    let (resource, _) = resolve(ctx, cp, &desired, &mut inputs).await.ok()??;
    Some(BackendReference {
        api_version: resource.api_version,
        kind: resource.kind,
        name: cp.name_any(),
    })
}

/// Maps an object to the control planes it concerns, for secondary watches.
pub fn by_name(namespace: &str, name: &str) -> ObjectRef<Kany8sControlPlane> {
    ObjectRef::new(name).within(namespace)
}

/// The Secret index, locked.
pub fn lock_index(index: &Mutex<SecretIndex>) -> std::sync::MutexGuard<'_, SecretIndex> {
    lock(index)
}
