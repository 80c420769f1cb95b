//! The I/O edges both controllers share: the owner Cluster lookup, RGD and kind resolution
//! through discovery, reading backend objects, suspending and resuming them (pause, move) and
//! publishing events.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::Scope;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::{Client, Resource};
use serde_json::{Value, json};

use crate::api::BackendReference;
use crate::capi::{self, Cluster, PAUSED_ANNOTATION};
use crate::controlplane::decide::Event;
use crate::rgd::{self, InstanceKind, RgdError};

/// Marks a backend object Kany8s suspended (§2.8).
pub const SUSPENDED_ANNOTATION: &str = "kany8s.io/suspended";
/// Identifies the owning object even while ownerReferences are detached (§2.8).
pub const OWNER_UID_ANNOTATION: &str = "kany8s.io/owner-uid";
/// kro's suspension annotation.
pub const KRO_RECONCILE_ANNOTATION: &str = "kro.run/reconcile";

/// Errors that back off and retry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("encoding: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Transient(String),
    #[error(transparent)]
    Panicked(#[from] crate::metrics::Panicked),
}

/// Locks a mutex, taking the data of a poisoned one (every critical section leaves it whole).
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The current time, at the second precision conditions carry on the wire.
pub fn now() -> Time {
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
    pub fn cluster(&self) -> Option<&Cluster> {
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

/// [CP-50], [IC-16]: only changes of generation, labels, annotations, owners, finalizers or deletion
/// trigger; status-only updates (the controller's own included) do not.
pub fn relevant<K: Resource>(object: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = object.meta();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    meta.labels.hash(&mut hasher);
    meta.annotations.hash(&mut hasher);
    meta.finalizers.hash(&mut hasher);
    meta.deletion_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .hash(&mut hasher);
    for owner in meta.owner_references.iter().flatten() {
        owner.uid.hash(&mut hasher);
    }
    Some(hasher.finish())
}

/// [CP-51], [IC-16]: the Cluster changes the providers react to: creation, `spec.paused`, the
/// references and deletion (status updates are not among them).
pub fn cluster_relevant(cluster: &Cluster) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    cluster.metadata.uid.hash(&mut hasher);
    cluster.spec.paused.hash(&mut hasher);
    serde_json::to_string(&cluster.spec.control_plane_ref)
        .unwrap_or_default()
        .hash(&mut hasher);
    serde_json::to_string(&cluster.spec.infrastructure_ref)
        .unwrap_or_default()
        .hash(&mut hasher);
    cluster
        .metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .hash(&mut hasher);
    Some(hasher.finish())
}

/// The Cluster events of [`cluster_relevant`].
pub fn cluster_events(
    api: Api<Cluster>,
) -> impl futures::Stream<Item = Result<Cluster, kube::runtime::watcher::Error>> + Send {
    use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
    watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .touched_objects()
        .predicate_filter(cluster_relevant, PredicateConfig::default())
}

/// kro's ResourceGraphDefinition kind.
pub fn rgd_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kro.run", "v1alpha1", "ResourceGraphDefinition"),
        "resourcegraphdefinitions",
    )
}

/// Whether `object` is controlled by, or annotated as owned by, the object with `uid`.
pub fn owned_by(object: &Value, uid: &str) -> bool {
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

/// Backend kinds through discovery, cached per (apiVersion, kind).
pub struct Backends {
    client: Client,
    kinds: Mutex<HashMap<(String, String), (ApiResource, bool)>>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends")
            .field("kinds", &lock(&self.kinds).len())
            .finish()
    }
}

impl Backends {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            kinds: Mutex::default(),
        }
    }

    /// [RG-06]: the resource of a kind and whether it is namespaced (a miss is asked again
    /// next time).
    pub async fn resource_of(&self, api_version: &str, kind: &str) -> Option<(ApiResource, bool)> {
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

    /// The API of a backend kind, in `namespace` when it is namespaced.
    pub fn api(
        &self,
        namespace: &str,
        resource: &ApiResource,
        namespaced: bool,
    ) -> Api<DynamicObject> {
        if namespaced {
            Api::namespaced_with(self.client.clone(), namespace, resource)
        } else {
            Api::all_with(self.client.clone(), resource)
        }
    }

    /// The object `reference` names, with its kind's resource; `None` when the kind is not
    /// served or the object does not exist.
    pub async fn get(
        &self,
        namespace: &str,
        reference: &BackendReference,
    ) -> Result<Option<(Value, ApiResource, bool)>, Error> {
        let Some((resource, namespaced)) = self
            .resource_of(&reference.api_version, &reference.kind)
            .await
        else {
            return Ok(None);
        };
        let api = self.api(namespace, &resource, namespaced);
        Ok(match api.get_opt(&reference.name).await? {
            Some(o) => Some((serde_json::to_value(o)?, resource, namespaced)),
            None => None,
        })
    }

    /// [RG-01]–[RG-05]: the instance kind of the RGD `reference` names, and the RGD.
    pub async fn resolve_rgd(&self, reference: &str) -> Result<(InstanceKind, Value), RgdError> {
        let name = rgd::name(reference)?;
        let rgds: Api<DynamicObject> = Api::all_with(self.client.clone(), &rgd_resource());
        let object = match rgds.get_opt(&name).await {
            Ok(Some(o)) => serde_json::to_value(o)
                .map_err(|e| RgdError::GetFailed(name.clone(), e.to_string()))?,
            Ok(None) => return Err(RgdError::NotFound(name)),
            Err(e) => return Err(RgdError::GetFailed(name, e.to_string())),
        };
        Ok((rgd::resolve(&name, &object)?, object))
    }
}

/// How a backend is suspended: kro instances by `kro.run/reconcile: suspended`, other
/// backends by Cluster API's paused annotation; writes carry the controller's field manager.
#[derive(Clone, Copy, Debug)]
pub struct Suspension {
    pub kro: bool,
    pub field_manager: &'static str,
}

impl Suspension {
    /// Merge and JSON patches of backend objects carry the controller's field manager ([CP-48]).
    fn params(&self) -> PatchParams {
        PatchParams {
            field_manager: Some(self.field_manager.to_string()),
            ..PatchParams::default()
        }
    }

    /// [CT-19] step 2: lift Kany8s's suspension of `object` (a backend just read or applied).
    /// A `kro.run/reconcile` without Kany8s's marker was set by someone else and stays.
    pub async fn resume(&self, backend: &Api<DynamicObject>, object: &Value) -> Result<(), Error> {
        if object["metadata"]["annotations"][SUSPENDED_ANNOTATION] != "true" {
            return Ok(());
        }
        let mut patch = json!({SUSPENDED_ANNOTATION: null});
        if self.kro {
            patch[KRO_RECONCILE_ANNOTATION] = Value::Null;
        } else {
            patch[PAUSED_ANNOTATION] = Value::Null;
        }
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        backend
            .patch(
                name,
                &self.params(),
                &Patch::Merge(json!({"metadata": {"annotations": patch}})),
            )
            .await?;
        Ok(())
    }

    /// [CT-17]: suspends `object` and removes the ownerReferences of `detach` (uids), guarded
    /// by its resourceVersion so a concurrent writer is never overwritten.
    pub async fn suspend(
        &self,
        backend: &Api<DynamicObject>,
        object: &Value,
        detach: &[String],
    ) -> Result<(), Error> {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let annotations = if self.kro {
            json!({KRO_RECONCILE_ANNOTATION: "suspended", SUSPENDED_ANNOTATION: "true"})
        } else {
            json!({PAUSED_ANNOTATION: "", SUSPENDED_ANNOTATION: "true"})
        };
        let current = &object["metadata"]["annotations"];
        let annotated = annotations
            .as_object()
            .is_some_and(|a| a.iter().all(|(k, v)| current.get(k) == Some(v)));
        if !annotated {
            backend
                .patch(
                    &name,
                    &self.params(),
                    &Patch::Merge(json!({"metadata": {"annotations": annotations}})),
                )
                .await?;
        }
        let fresh = serde_json::to_value(backend.get(&name).await?)?;
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
            backend
                .patch(&name, &self.params(), &Patch::<()>::Json(patch))
                .await?;
        }
        Ok(())
    }
}

/// Publishes `event` about `object`; a failure is logged, never fatal.
pub async fn publish<K: Resource<DynamicType = ()>>(
    recorder: &Recorder,
    object: &K,
    event: &Event,
) {
    let result = recorder
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
            &object.object_ref(&()),
        )
        .await;
    if let Err(error) = result {
        tracing::warn!(%error, reason = %event.reason, "publishing an event failed");
    }
}

/// Where the deletion of an owned backend stands ([CT-25] steps 5–7).
#[derive(Debug)]
pub enum Deletion {
    /// Gone, never created, of an unserved kind, or not owned: the finalizer may go.
    Released,
    /// DELETE was sent (now or earlier); waiting for the object of `resource` to disappear.
    Waiting(ApiResource),
}

impl Backends {
    /// [CT-25] steps 5–6, [CT-26]: deletes the backend `reference` names when `owner_uid` owns
    /// it (lifting Kany8s's suspension first), with a UID precondition.
    pub async fn delete_owned(
        &self,
        suspension: Suspension,
        namespace: &str,
        reference: &BackendReference,
        owner_uid: &str,
    ) -> Result<Deletion, Error> {
        let Some((object, resource, namespaced)) = self.get(namespace, reference).await? else {
            return Ok(Deletion::Released);
        };
        if !owned_by(&object, owner_uid) {
            return Ok(Deletion::Released);
        }
        if object
            .pointer("/metadata/deletionTimestamp")
            .is_none_or(Value::is_null)
        {
            let backend = self.api(namespace, &resource, namespaced);
            suspension.resume(&backend, &object).await?;
            let params = kube::api::DeleteParams {
                propagation_policy: Some(kube::api::PropagationPolicy::Background),
                preconditions: Some(kube::api::Preconditions {
                    uid: object["metadata"]["uid"].as_str().map(str::to_string),
                    resource_version: None,
                }),
                ..kube::api::DeleteParams::default()
            };
            match backend.delete(&reference.name, &params).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => return Ok(Deletion::Released),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Deletion::Waiting(resource))
    }

    /// [CP-12], [IC-03]: the `BackendChanged` message when the previous backend `old` differs
    /// in group or kind from `desired` (`None`: no backend, a stub) and still exists, owned by
    /// `owner_uid`; `None` when the desired backend may be written.
    pub async fn changed(
        &self,
        namespace: &str,
        owner_uid: &str,
        old: &BackendReference,
        desired: Option<&ApiResource>,
    ) -> Result<Option<String>, Error> {
        if let Some(desired) = desired
            && capi::api_group_of(&old.api_version) == desired.group
            && old.kind == desired.kind
        {
            return Ok(None);
        }
        let target = desired.map_or_else(
            || "none (stub mode)".to_string(),
            |d| format!("{}/{}", d.api_version, d.kind),
        );
        Ok(match self.get(namespace, old).await? {
            Some((object, _, _)) if owned_by(&object, owner_uid) => Some(format!(
                "backend changed from {}/{} to {target}; delete {} {namespace}/{} or revert the spec",
                old.api_version, old.kind, old.kind, old.name
            )),
            _ => None,
        })
    }

    /// [CT-17] step 2: suspends and detaches the backend `reference` names, if it exists.
    pub async fn suspend_referenced(
        &self,
        suspension: Suspension,
        namespace: &str,
        reference: &BackendReference,
        detach: &[String],
    ) -> Result<(), Error> {
        if let Some((object, resource, namespaced)) = self.get(namespace, reference).await? {
            let backend = self.api(namespace, &resource, namespaced);
            suspension.suspend(&backend, &object, detach).await?;
        }
        Ok(())
    }
}

/// [CP-54]: per-object error backoff, 1 s doubling to 300 s, reset by a successful reconcile.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<HashMap<(String, String), u32>>,
}

impl Backoff {
    /// The delay before retrying `object` after one more failure.
    pub fn next<K: Resource>(&self, object: &K) -> std::time::Duration {
        let mut failures = lock(&self.failures);
        let count = failures.entry(key(object)).or_insert(0);
        let delay = 1u64 << (*count).min(9);
        *count = count.saturating_add(1);
        std::time::Duration::from_secs(delay.min(300))
    }

    pub fn reset<K: Resource>(&self, object: &K) {
        lock(&self.failures).remove(&key(object));
    }
}

/// One reconcile of `object`, instrumented ([`crate::metrics::Metrics::reconcile`]), resetting
/// its error backoff when it succeeds.
pub async fn instrumented<K: Resource>(
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    controller: &'static str,
    sync_period: std::time::Duration,
    backoff: &Backoff,
    object: &K,
    reconcile: impl std::future::Future<Output = Result<kube::runtime::controller::Action, Error>>,
) -> Result<kube::runtime::controller::Action, Error> {
    let result = metrics
        .reconcile(
            controller,
            sync_period,
            ObjectName(object.meta()),
            reconcile,
        )
        .await;
    if result.is_ok() {
        backoff.reset(object);
    }
    result
}

/// `namespace/name` of an object, formatted only when a log line is written.
struct ObjectName<'a>(&'a kube::api::ObjectMeta);

impl std::fmt::Display for ObjectName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let namespace = self.0.namespace.as_deref().unwrap_or_default();
        let name = self.0.name.as_deref().unwrap_or_default();
        write!(f, "{namespace}/{name}")
    }
}

/// [CP-54]: the error policy of both controllers.
pub fn retry_later<K: Resource>(
    object: &K,
    error: &Error,
    backoff: &Backoff,
) -> kube::runtime::controller::Action {
    let (namespace, name) = key(object);
    tracing::warn!(%error, %namespace, %name, "reconcile failed");
    kube::runtime::controller::Action::requeue(backoff.next(object))
}

fn key<K: Resource>(object: &K) -> (String, String) {
    let meta = object.meta();
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// [CP-14], [CP-47]: server-side apply of an object's complete status under `field_manager`,
/// skipped when it says the same as the stored one. Returns whether it wrote.
pub async fn apply_status<K, S>(
    api: &Api<K>,
    object: &K,
    stored: Option<&S>,
    status: S,
    field_manager: &str,
) -> Result<bool, Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    S: capi::ConditionedStatus + Default,
{
    if stored.cloned().unwrap_or_default().same_as(&status) {
        return Ok(false);
    }
    let meta = object.meta();
    let body = json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()),
        "metadata": {"name": meta.name, "namespace": meta.namespace}, "status": status});
    api.patch_status(
        meta.name.as_deref().unwrap_or_default(),
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(true)
}

/// [CP-05], [CT-21], [CT-24], [CP-49]: the own-object apply of a controller: its finalizer,
/// `block-move` and `spec.controlPlaneEndpoint`. The apply carries every field the controller
/// owns there, so a field left out is removed.
pub async fn apply_own<K>(
    api: &Api<K>,
    object: &K,
    finalizer: Option<&str>,
    block_move: bool,
    endpoint: Option<capi::ApiEndpoint>,
    field_manager: &str,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let meta = object.meta();
    let mut body = json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()),
        "metadata": {"name": meta.name, "namespace": meta.namespace}});
    if let Some(finalizer) = finalizer {
        body["metadata"]["finalizers"] = json!([finalizer]);
    }
    if block_move {
        body["metadata"]["annotations"] = json!({capi::BLOCK_MOVE_ANNOTATION: "true"});
    }
    if let Some(endpoint) = endpoint {
        body["spec"] = json!({ "controlPlaneEndpoint": endpoint });
    }
    api.patch(
        meta.name.as_deref().unwrap_or_default(),
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

/// Records which body a controller last applied to a backend object, so an unchanged one is
/// not applied again (§4.10: no write when nothing changed).
pub const APPLIED_HASH_ANNOTATION: &str = "kany8s.io/applied-hash";

/// A hash of an apply body (without the hash annotation itself).
pub fn applied_hash(body: &Value) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.to_string().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Whether every field of `part` is in `whole` with the same value (lists: equal).
pub fn json_contains(whole: &Value, part: &Value) -> bool {
    match (whole, part) {
        (Value::Object(w), Value::Object(p)) => p
            .iter()
            .all(|(k, v)| w.get(k).is_some_and(|wv| json_contains(wv, v))),
        _ => whole == part,
    }
}

/// Whether `existing` already carries `body` as last applied with `hash`: same hash (nothing
/// was dropped from the body since) and every applied field still holds its value (no drift).
/// Owner references are compared by uid.
pub fn applied_in_place(existing: &Value, body: &Value, hash: &str) -> bool {
    let recorded = existing
        .pointer(&format!(
            "/metadata/annotations/{}",
            APPLIED_HASH_ANNOTATION.replace('/', "~1")
        ))
        .and_then(Value::as_str);
    if recorded != Some(hash) {
        return false;
    }
    let owners_present = body["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|wanted| {
            existing["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["uid"] == wanted["uid"] && r["controller"] == wanted["controller"])
        });
    owners_present
        && json_contains(&existing["spec"], &body["spec"])
        && json_contains(&existing["metadata"]["labels"], &body["metadata"]["labels"])
        && json_contains(
            &existing["metadata"]["annotations"],
            &body["metadata"]["annotations"],
        )
}

impl Backends {
    /// Server-side applies `body` to the backend object, unless it is already in place;
    /// returns the object either way.
    pub async fn apply_if_changed(
        &self,
        api: &Api<DynamicObject>,
        name: &str,
        mut body: Value,
        field_manager: &str,
    ) -> Result<Value, Error> {
        let hash = applied_hash(&body);
        if let Some(existing) = api.get_opt(name).await? {
            let existing = serde_json::to_value(existing)?;
            if applied_in_place(&existing, &body, &hash) {
                return Ok(existing);
            }
        }
        body["metadata"]["annotations"][APPLIED_HASH_ANNOTATION] = Value::String(hash);
        let applied = api
            .patch(
                name,
                &PatchParams::apply(field_manager).force(),
                &Patch::Apply(&body),
            )
            .await?;
        Ok(serde_json::to_value(applied)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Kany8sCluster;

    /// §4.10: an unchanged, undrifted backend is not applied again; drift or a changed body is.
    #[test]
    fn applied_in_place_detects_drift_and_changes() {
        let body = serde_json::json!({"metadata": {"labels": {"a": "1"}, "annotations": {"o": "u"},
            "ownerReferences": [{"uid": "u1", "controller": true}]}, "spec": {"version": "1.34", "name": "x"}});
        let hash = applied_hash(&body);
        let mut existing = body.clone();
        existing["metadata"]["annotations"][APPLIED_HASH_ANNOTATION] = serde_json::json!(hash);
        existing["spec"]["defaulted"] = serde_json::json!(3);
        existing["status"] = serde_json::json!({"ready": true});
        assert!(applied_in_place(&existing, &body, &hash));
        let mut drifted = existing.clone();
        drifted["spec"]["version"] = serde_json::json!("0.0");
        assert!(!applied_in_place(&drifted, &body, &hash));
        let mut detached = existing.clone();
        detached["metadata"]["ownerReferences"] = serde_json::json!([]);
        assert!(!applied_in_place(&detached, &body, &hash));
        let mut smaller = body.clone();
        smaller["spec"].as_object_mut().unwrap().remove("name");
        assert!(!applied_in_place(
            &existing,
            &smaller,
            &applied_hash(&smaller)
        ));
    }

    /// [CP-54]
    #[test]
    fn cp54_backoff_doubles_caps_and_resets() {
        let backoff = Backoff::default();
        let object = Kany8sCluster::new("c1", Default::default());
        let delays: Vec<u64> = (0..11).map(|_| backoff.next(&object).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        backoff.reset(&object);
        assert_eq!(backoff.next(&object).as_secs(), 1);
    }
}
