//! The I/O edges of the Kany8sControlPlane reconcile (provider.md §4.4): observe the owner
//! Cluster, RGD, backend object and Secrets, call the pure decide step, then apply with SSA
//! under one field manager and write status once, only when it changed.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::reconciler::Action;
use crate::reconciler::events::Recorder;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::decide::{self, Backend, Decision, Inputs, KubeconfigOutcome};
use super::kubeconfig;
use crate::api::{BackendReference, Kany8sControlPlane, Kany8sControlPlaneStatus};
use crate::backend_status::{self, BackendStatus};
use crate::backends::Deletion;
use crate::dynamic::DynamicWatches;
use crate::metrics::Metrics;
use crate::owner::{Owner, owner_cluster, paused_message};
use crate::reconciler::conditions::{Event, reasons, types, waiting_for_deletion};
use crate::reconciler::lifecycle::{self, Dependents, Kany8sObject};
use crate::reconciler::runtime::Shared;
use crate::reconciler::{Error, lock, now};
use crate::rgd::{self, InstanceKind, RgdError};
use crate::suspension::Suspension;

/// Field manager of every write of this controller ([CP-48]).
pub const FIELD_MANAGER: &str = "kany8s-controlplane";
/// The control plane's finalizer (§2.8).
pub const FINALIZER: &str = "kany8scontrolplane.controlplane.cluster.x-k8s.io";

/// Requeue when nothing would trigger ([CP-53]).
const SERVED_RETRY: Duration = Duration::from_secs(30);

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

crate::kany8s_object!(
    Kany8sControlPlane,
    Kany8sControlPlaneStatus,
    kind: "Kany8sControlPlane",
    finalizer: FINALIZER,
    field_manager: FIELD_MANAGER,
    block_move: true,
    deleting_also: &[types::AVAILABLE],
    deleting_message: "control plane is being deleted",
);

/// The controller's context: what every controller holds, plus the Secret index of the
/// kubeconfig step ([KC-13]), the metrics and the one-off warnings already reported.
#[derive(Debug)]
pub struct Context {
    shared: Shared<Kany8sControlPlane>,
    pub secrets: Arc<Mutex<SecretIndex>>,
    /// The resourceVersions of the Secrets in reach (metadata only, trimmed), once listed.
    pub secret_versions: SecretVersions,
    /// The last kubeconfig step of each control plane, reused while its inputs are unchanged.
    kubeconfig_memo: Mutex<HashMap<(String, String), kubeconfig::Memo>>,
    pub metrics: Arc<Metrics>,
    /// The last one-off warning per control plane, so a repeated one is not re-emitted.
    last_warning: Mutex<HashMap<(String, String), String>>,
}

impl std::ops::Deref for Context {
    type Target = Shared<Kany8sControlPlane>;

    fn deref(&self) -> &Self::Target {
        &self.shared
    }
}

impl Context {
    pub fn new(
        client: Client,
        clusters: kube::runtime::reflector::Store<crate::capi::Cluster>,
        rgds: Option<kube::runtime::reflector::Store<kube::api::DynamicObject>>,
        recorder: Recorder,
        watches: Arc<DynamicWatches<Kany8sControlPlane>>,
        metrics: Arc<Metrics>,
        secret_versions: SecretVersions,
    ) -> Self {
        Self {
            shared: Shared::new(client, clusters, rgds, recorder, watches),
            metrics,
            secrets: Arc::default(),
            secret_versions,
            kubeconfig_memo: Mutex::default(),
            last_warning: Mutex::default(),
        }
    }
}

/// The resourceVersions of Secrets as the metadata watch last saw them; `None` until the first
/// list completed (absent then means unknown, not missing).
#[derive(Clone)]
pub struct SecretVersions {
    pub store: kube::runtime::reflector::Store<kube::core::PartialObjectMeta<Secret>>,
    pub listed: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for SecretVersions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretVersions").finish_non_exhaustive()
    }
}

impl SecretVersions {
    /// The current resourceVersion of each Secret (`None`: absent), if the cache is listed.
    fn of(&self, secrets: &[(String, String)]) -> Option<Vec<Option<String>>> {
        if !self.listed.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        Some(
            secrets
                .iter()
                .map(|(namespace, name)| {
                    self.store
                        .get(&ObjectRef::new(name).within(namespace))
                        .and_then(|s| s.metadata.resource_version.clone())
                })
                .collect(),
        )
    }
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
    let owner = owner_cluster(&ctx.clusters, cp.as_ref()).await;
    if cp.metadata.deletion_timestamp.is_some() {
        lock(&ctx.secrets).forget(&(namespace.clone(), name.clone()));
        lock(&ctx.kubeconfig_memo).remove(&(namespace.clone(), name.clone()));
        lock(&ctx.last_warning).remove(&(namespace.clone(), name.clone()));
        return lifecycle::delete(&api, &ctx.recorder, cp.as_ref(), &owner, &now(), || {
            delete_backend(&ctx, &cp, &owner)
        })
        .await;
    }
    if let Some(message) = paused_message(Kany8sControlPlane::KIND, cp.annotations(), &owner) {
        return lifecycle::pause(
            &api,
            cp.as_ref(),
            message,
            &now(),
            suspend_backend(&ctx, &cp, &owner),
        )
        .await;
    }
    lifecycle::ensure_own(&api, cp.as_ref()).await?;

    let mut inputs = inputs_of(&cp);
    let mut requeue = None;
    match desired_backend(&cp, &owner) {
        Err((reason, message)) => inputs.spec_error = Some((reason, message)),
        Ok(desired) => {
            inputs.backend = Some(desired.backend);
            let resolved = resolve(&ctx, &cp, &desired, &mut inputs).await?;
            match resolved {
                Some((resource, namespaced)) => {
                    if let Some(old) = cp.status.as_ref().and_then(|s| s.backend_ref.as_ref()) {
                        let uid = cp.uid().unwrap_or_default();
                        inputs.backend_changed = ctx
                            .backends
                            .changed(&namespace, &uid, old, Some(&resource))
                            .await?;
                    }
                    if inputs.backend_changed.is_none() {
                        let object =
                            apply_backend(&ctx, &cp, &owner, &desired, &resource, namespaced).await;
                        let object = match object {
                            Ok(o) => o,
                            Err(e) => {
                                inputs.apply_error = Some(format!(
                                    "apply {} {namespace}/{name}: {}",
                                    resource.kind,
                                    e.condition_message()
                                ));
                                apply_decision(&ctx, &cp, &api, decide::decide(&inputs)).await?;
                                return Err(e);
                            }
                        };
                        inputs.backend_ref = Some(BackendReference {
                            api_version: resource.api_version.clone(),
                            kind: resource.kind.clone(),
                            name: name.clone(),
                        });
                        if desired.backend == Backend::Kubeadm {
                            // [CP-41]: the facade kind has its own static watch.
                            inputs.kubeadm = Some(backend_status::kubeadm_report(&object));
                            inputs.observed = Some(Ok(backend_status::read_kubeadm(&object)));
                        } else {
                            let backend = ctx.backends.api(&namespace, &resource, namespaced);
                            suspension(&cp).resume(&backend, &object).await?;
                            ctx.watches.ensure(&resource);
                            inputs.observed = Some(backend_status::read(&object));
                        }
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
            // [CP-43]: the facade writes its kubeconfig itself.
            if inputs.backend_changed.is_none() && inputs.backend != Some(Backend::Kubeadm) {
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
        apply_error: None,
        observed: None,
        backend_ref: None,
        kubeconfig: None,
        kubeadm: None,
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
        0 => return Err((reasons::BACKEND_NOT_SELECTED.into(), exactly_one)),
        1 => {}
        _ => return Err((reasons::MULTIPLE_BACKENDS_SELECTED.into(), exactly_one)),
    }
    if let Some(kubeadm) = &backend.kubeadm {
        // [CP-40]
        let mut spec =
            json!({"version": cp.spec.version, "machineTemplate": kubeadm.machine_template});
        if let Some(replicas) = kubeadm.replicas {
            spec["replicas"] = json!(replicas);
        }
        if let Some(config) = &kubeadm.kubeadm_config_spec {
            spec["kubeadmConfigSpec"] = config.clone();
        }
        return Ok(Desired {
            backend: Backend::Kubeadm,
            api_version: format!("{}/v1alpha1", crate::api::CONTROL_PLANE_GROUP),
            kind: "Kany8sKubeadmControlPlane".into(),
            spec,
        });
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
        let mut spec = object_spec(
            backend.kro_spec.as_ref(),
            reasons::INVALID_KRO_SPEC,
            "spec.kroSpec",
        )?;
        spec.insert("version".into(), json!(cp.spec.version));
        return Ok(Desired {
            backend: Backend::Kro,
            api_version: String::new(),
            kind: String::new(),
            spec: Value::Object(spec),
        });
    }
    let Some(external) = backend.external_backend.as_ref() else {
        return Err((reasons::BACKEND_NOT_SELECTED.into(), exactly_one));
    };
    let parts: Vec<&str> = external.api_version.split('/').collect();
    if parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
        return Err((
            reasons::INVALID_EXTERNAL_BACKEND.into(),
            format!(
                "parse spec.externalBackend.apiVersion: unexpected GroupVersion string: {}",
                external.api_version
            ),
        ));
    }
    if external.kind.trim().is_empty() {
        return Err((
            reasons::INVALID_EXTERNAL_BACKEND.into(),
            "spec.externalBackend.kind is required".into(),
        ));
    }
    if external.kind == "Kany8sControlPlane"
        && parts.len() == 2
        && parts[0] == crate::api::CONTROL_PLANE_GROUP
    {
        return Err((
            reasons::INVALID_EXTERNAL_BACKEND.into(),
            "spec.externalBackend must not reference a Kany8sControlPlane".into(),
        ));
    }
    let mut spec = object_spec(
        external.spec.as_ref(),
        reasons::INVALID_EXTERNAL_BACKEND_SPEC,
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
            let resolution = ctx.backends.resolve_rgd(&reference).await;
            inputs.rgd_name = reference.trim().to_string();
            if let Ok((_, rgd)) = &resolution
                && !rgd::declares_version(rgd)
            {
                lifecycle::publish(&ctx.recorder, cp, &Event {
                    warning: true,
                    reason: reasons::RGD_MISSING_VERSION_FIELD.into(),
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
        Backend::External | Backend::Kubeadm => {
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
    match ctx
        .backends
        .resource_of(&kind.api_version(), &kind.kind)
        .await
    {
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

/// [CP-21]–[CP-23], [CP-33]: SSA of the backend object; returns the applied object.
async fn apply_backend(
    ctx: &Context,
    cp: &Kany8sControlPlane,
    owner: &Owner,
    desired: &Desired,
    resource: &ApiResource,
    namespaced: bool,
) -> Result<Value, Error> {
    ctx.backends
        .apply_backend(
            cp,
            owner.cluster(),
            resource,
            namespaced,
            desired.spec.clone(),
            FIELD_MANAGER,
        )
        .await
}

/// [CP-16]: the object named by `status.backendRef`, when the RGD blocks writes.
async fn reflect(ctx: &Context, cp: &Kany8sControlPlane) -> Result<Option<Value>, Error> {
    let Some(reference) = cp.status.as_ref().and_then(|s| s.backend_ref.clone()) else {
        return Ok(None);
    };
    let namespace = cp.namespace().unwrap_or_default();
    let Some((object, resource, namespaced)) = ctx.backends.get(&namespace, &reference).await?
    else {
        return Ok(None);
    };
    ctx.watches.ensure(&resource);
    suspension(cp)
        .resume(
            &ctx.backends.api(&namespace, &resource, namespaced),
            &object,
        )
        .await?;
    Ok(Some(object))
}

/// §4.5: the kubeconfig step: read what [`kubeconfig::plan`] asks for, write what the pure
/// decide functions return (Option B's copy into `<cluster>-kubeconfig`).
async fn reconcile_kubeconfig(
    ctx: &Context,
    cp: &Kany8sControlPlane,
    owner: &Owner,
    status: Option<&BackendStatus>,
) -> Result<KubeconfigOutcome, Error> {
    let who = kubeconfig::ControlPlane {
        namespace: cp.namespace().unwrap_or_default(),
        name: cp.name_any(),
        uid: cp.uid().unwrap_or_default(),
    };
    let reference = status.and_then(|s| s.kubeconfig_ref.clone());
    let plan = kubeconfig::plan(&who, owner, reference.as_ref());
    if let Some(dependencies) = kubeconfig::dependencies(&plan, &who, owner) {
        lock(&ctx.secrets).record((who.namespace.clone(), who.name.clone()), dependencies);
    }
    let cluster = owner
        .cluster()
        .map(ResourceExt::name_any)
        .unwrap_or_default();
    let key = (who.namespace.clone(), who.name.clone());
    let reads = plan.reads(&who.namespace);
    let current = ctx.secret_versions.of(&reads);
    if let Some(versions) = &current {
        let memo = lock(&ctx.kubeconfig_memo);
        if let Some(verdict) = memo
            .get(&key)
            .and_then(|m| m.verdict_for(&who.uid, &plan, &cluster, versions))
        {
            return Ok(kubeconfig::outcome(verdict.clone(), reference.is_some()));
        }
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &who.namespace);
    let version =
        |secret: Option<&Secret>| secret.and_then(|s| s.metadata.resource_version.clone());
    // The resourceVersions as this pass learnt them, in the order of `reads` (target first).
    // A failed read is not remembered: the next pass reads again.
    let mut remember = true;
    let (verdict, versions) = match &plan {
        kubeconfig::Plan::Done(verdict) => (verdict.clone(), Vec::new()),
        kubeconfig::Plan::Provided { target } => {
            let secret = secrets.get_opt(target).await?;
            let verdict = kubeconfig::provided(&who, &cluster, target, secret.as_ref());
            (verdict, vec![version(secret.as_ref())])
        }
        kubeconfig::Plan::Copy { source, target } => {
            let read = secrets.get_opt(source).await.map_err(|e| e.to_string());
            remember = read.is_ok();
            let source_version = read.as_ref().ok().and_then(|s| version(s.as_ref()));
            match kubeconfig::usable_source(&who, source, &read) {
                Err(verdict) => {
                    // The target was not read: its version is what the cache says.
                    let target_version =
                        current.as_ref().and_then(|c| c.first().cloned().flatten());
                    (verdict, vec![target_version, source_version])
                }
                Ok(value) => {
                    let existing = secrets.get_opt(target).await?;
                    let (verdict, write) =
                        kubeconfig::copy(&who, &cluster, target, &value, existing.as_ref());
                    let mut target_version = version(existing.as_ref());
                    if let Some(body) = write {
                        let written = secrets
                            .patch(
                                target,
                                &PatchParams::apply(FIELD_MANAGER).force(),
                                &Patch::Apply(&body),
                            )
                            .await?;
                        target_version = version(Some(&written));
                        ctx.metrics
                            .kubeconfig_secret_written(crate::metrics::CONTROL_PLANE);
                        tracing::info!(secret = %format!("{}/{target}", who.namespace), "kubeconfig secret written");
                    }
                    (verdict, vec![target_version, source_version])
                }
            }
        }
    };
    if remember
        && ctx
            .secret_versions
            .listed
            .load(std::sync::atomic::Ordering::Acquire)
    {
        lock(&ctx.kubeconfig_memo).insert(
            key,
            kubeconfig::Memo {
                uid: who.uid.clone(),
                plan,
                cluster,
                versions,
                verdict: verdict.clone(),
            },
        );
    }
    Ok(kubeconfig::outcome(verdict, reference.is_some()))
}

/// Applies a decision through the shared lifecycle; an unparseable backend version is reported
/// on change only ([CT-02] rule 2).
async fn apply_decision(
    ctx: &Context,
    cp: &Kany8sControlPlane,
    api: &Api<Kany8sControlPlane>,
    decision: Decision,
) -> Result<(), Error> {
    let key = (cp.namespace().unwrap_or_default(), cp.name_any());
    let events: Vec<Event> = decision
        .events
        .into_iter()
        .filter(|event| {
            if event.reason != reasons::INVALID_BACKEND_VERSION {
                return true;
            }
            let mut last = lock(&ctx.last_warning);
            if last.get(&key) == Some(&event.note) {
                return false;
            }
            last.insert(key.clone(), event.note.clone());
            true
        })
        .collect();
    lifecycle::apply_decision(
        api,
        &ctx.recorder,
        cp,
        decision.endpoint,
        decision.status,
        &events,
    )
    .await
}

/// [CT-17], [CT-18]: suspends and detaches the backend `status.backendRef` names; a facade is
/// not suspended (it honours the Cluster's pause itself).
async fn suspend_backend(
    ctx: &Context,
    cp: &Kany8sControlPlane,
    owner: &Owner,
) -> Result<(), Error> {
    if let Some(reference) = cp
        .status
        .as_ref()
        .and_then(|s| s.backend_ref.clone())
        .filter(|_| cp.spec.backend.kubeadm.is_none())
    {
        let namespace = cp.namespace().unwrap_or_default();
        let detach: Vec<String> = [cp.uid(), owner.cluster().and_then(|c| c.uid())]
            .into_iter()
            .flatten()
            .collect();
        ctx.backends
            .suspend_referenced(suspension(cp), &namespace, &reference, &detach)
            .await?;
    }
    Ok(())
}

/// kro instances are suspended with kro's annotation, external backends with Cluster API's.
fn suspension(cp: &Kany8sControlPlane) -> Suspension {
    Suspension {
        kro: cp.spec.backend.resource_graph_definition_ref.is_some(),
        field_manager: FIELD_MANAGER,
    }
}

/// [CT-25]: deletes the owned backend and says where that stands.
async fn delete_backend(
    ctx: &Context,
    cp: &Kany8sControlPlane,
    owner: &Owner,
) -> Result<Dependents, Error> {
    // [CT-27]: owner errors during deletion leave only the annotation to decide.
    let owner = match owner {
        Owner::Found(c) => Owner::Found(c.clone()),
        _ => Owner::NotSet,
    };
    let namespace = cp.namespace().unwrap_or_default();
    let reference = match cp.status.as_ref().and_then(|s| s.backend_ref.clone()) {
        Some(r) => Some(r),
        None => desired_reference(ctx, cp, &owner).await,
    };
    let Some(reference) = reference else {
        return Ok(Dependents::Unresolvable(Event {
            warning: true,
            reason: reasons::BACKEND_UNRESOLVABLE.into(),
            note: "cannot determine the backend to delete; relying on garbage collection".into(),
        }));
    };
    let uid = cp.uid().unwrap_or_default();
    let resource = match ctx
        .backends
        .delete_owned(suspension(cp), &namespace, &reference, &uid)
        .await?
    {
        Deletion::Released => return Ok(Dependents::Released),
        Deletion::Waiting(resource) => resource,
    };
    ctx.watches.ensure(&resource);
    let waiting = waiting_for_deletion(
        reasons::WAITING_FOR_BACKEND_DELETION,
        &reference.kind,
        &namespace,
        &reference.name,
    );
    let requeue = (!ctx.watches.is_running(&resource)).then_some(SERVED_RETRY);
    Ok(Dependents::Waiting(waiting, requeue))
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

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn cp(spec: Value) -> Kany8sControlPlane {
        let mut spec = spec;
        spec["version"] = json!("v1.34.0");
        serde_json::from_value(json!({"apiVersion": "controlplane.cluster.x-k8s.io/v1alpha1",
            "kind": "Kany8sControlPlane", "metadata": {"name": "c", "namespace": "ns"}, "spec": spec}))
        .unwrap()
    }

    const TEMPLATE: &str = r#"{"infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DockerMachineTemplate", "name": "t"}}"#;

    /// [CP-06], [CP-20], [CP-30], [CP-31] and the Ready rows they feed: [CPC-03], [CPC-04],
    /// [CPC-05], [CPC-06], [CPC-07].
    #[rstest]
    #[case::cpc03_none(json!({}), "BackendNotSelected", "exactly one backend must be selected")]
    #[case::cpc04_two(json!({"resourceGraphDefinitionRef": {"name": "r"}, "externalBackend": {"apiVersion": "x.io/v1", "kind": "X"}}), "MultipleBackendsSelected", "exactly one backend must be selected")]
    #[case::cpc05_kro_spec(json!({"resourceGraphDefinitionRef": {"name": "r"}, "kroSpec": [1]}), "InvalidKroSpec", "spec.kroSpec must be a JSON object, got array")]
    #[case::cpc06_api_version(json!({"externalBackend": {"apiVersion": "a/b/c", "kind": "X"}}), "InvalidExternalBackend", "parse spec.externalBackend.apiVersion: unexpected GroupVersion string: a/b/c")]
    #[case::cpc06_kind(json!({"externalBackend": {"apiVersion": "x.io/v1", "kind": " "}}), "InvalidExternalBackend", "spec.externalBackend.kind is required")]
    #[case::cpc06_self(json!({"externalBackend": {"apiVersion": "controlplane.cluster.x-k8s.io/v1alpha1", "kind": "Kany8sControlPlane"}}), "InvalidExternalBackend", "spec.externalBackend must not reference a Kany8sControlPlane")]
    #[case::cpc07_spec(json!({"externalBackend": {"apiVersion": "x.io/v1", "kind": "X", "spec": "text"}}), "InvalidExternalBackendSpec", "spec.externalBackend.spec must be a JSON object, got string")]
    fn cp06_backend_selection_errors(
        #[case] spec: Value,
        #[case] reason: &str,
        #[case] message: &str,
    ) {
        let error = desired_backend(&cp(spec), &Owner::NotSet).err().unwrap();
        assert_eq!((error.0.as_str(), error.1.as_str()), (reason, message));
    }

    /// [CP-40]: the facade's spec copies version, replicas, machine template and kubeadm config;
    /// absent optional fields stay absent.
    #[test]
    fn cp40_kubeadm_desired_spec() {
        let template: Value = serde_json::from_str(TEMPLATE).unwrap();
        let full = cp(
            json!({"kubeadm": {"replicas": 1, "machineTemplate": template,
            "kubeadmConfigSpec": {"clusterConfiguration": {"certificatesDir": "/pki"}}}}),
        );
        let desired = desired_backend(&full, &Owner::NotSet).unwrap();
        assert_eq!(desired.backend, Backend::Kubeadm);
        assert_eq!(desired.kind, "Kany8sKubeadmControlPlane");
        assert_eq!(
            desired.api_version,
            "controlplane.cluster.x-k8s.io/v1alpha1"
        );
        assert_eq!(
            desired.spec,
            json!({"version": "v1.34.0", "replicas": 1, "machineTemplate": template,
                "kubeadmConfigSpec": {"clusterConfiguration": {"certificatesDir": "/pki"}}})
        );
        let minimal = cp(json!({"kubeadm": {"machineTemplate": template}}));
        let desired = desired_backend(&minimal, &Owner::NotSet).unwrap();
        assert_eq!(
            desired.spec,
            json!({"version": "v1.34.0", "machineTemplate": template})
        );
    }
}
