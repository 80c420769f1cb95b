//! Backend objects through discovery: the kind of an RGD or external backend (cached per
//! apiVersion and kind, [RG-06]), reading the object a reference names, applying a backend only
//! when its body changed or drifted (§4.10), detecting a backend change ([CP-12], [IC-03]),
//! suspending a referenced backend and deleting an owned one ([CT-25], [CT-26]).

use std::collections::HashMap;
use std::sync::Mutex;

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::Scope;
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::{Value, json};

use crate::api::BackendReference;
use crate::capi;
use crate::reconciler::{Error, lock};
use crate::rgd::{self, InstanceKind, RgdError, rgd_resource};
use crate::suspension::Suspension;

/// Identifies the owning object even while ownerReferences are detached (§2.8).
pub const OWNER_UID_ANNOTATION: &str = "kany8s.io/owner-uid";

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

/// Backend kinds through discovery, cached per (apiVersion, kind); RGDs from the controller's
/// RGD cache when it holds them.
pub struct Backends {
    client: Client,
    kinds: Mutex<HashMap<(String, String), (ApiResource, bool)>>,
    rgds: Option<Store<DynamicObject>>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends")
            .field("kinds", &lock(&self.kinds).len())
            .finish()
    }
}

impl Backends {
    /// `rgds`: the controller's cache of ResourceGraphDefinitions, if it watches them.
    pub fn new(client: Client, rgds: Option<Store<DynamicObject>>) -> Self {
        Self {
            client,
            kinds: Mutex::default(),
            rgds,
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

    /// [RG-01]–[RG-05]: the instance kind of the RGD `reference` names, and the RGD (from the
    /// cache when it holds it: the RGD's own events re-trigger the objects that name it).
    pub async fn resolve_rgd(&self, reference: &str) -> Result<(InstanceKind, Value), RgdError> {
        let name = rgd::name(reference)?;
        let cached = self
            .rgds
            .as_ref()
            .and_then(|store| store.get(&ObjectRef::new_with(&name, rgd_resource())));
        if let Some(cached) = cached {
            let object = serde_json::to_value(cached.as_ref())
                .map_err(|e| RgdError::GetFailed(name.clone(), e.to_string()))?;
            return Ok((rgd::resolve(&name, &object)?, object));
        }
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

/// [CP-21]–[CP-23], [IC-09]: the body applied to the backend object of `owner`: the same name,
/// controlled by `owner` (blocking its deletion), also owned by the Cluster (with the
/// cluster-name label) once there is one, the owner-uid annotation (§2.8), and `spec`.
pub fn backend_body<K: kube::Resource<DynamicType = ()>>(
    owner: &K,
    cluster: Option<&capi::Cluster>,
    resource: &ApiResource,
    namespaced: bool,
    spec: Value,
) -> Value {
    use kube::ResourceExt;
    let name = owner.name_any();
    let uid = owner.uid().unwrap_or_default();
    let mut owner_references = vec![
        json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()),
        "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}),
    ];
    let mut labels = json!({});
    if let Some(cluster) = cluster {
        owner_references.push(
            json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
            "name": cluster.name_any(), "uid": cluster.uid()}),
        );
        labels[capi::CLUSTER_NAME_LABEL] = json!(cluster.name_any());
    }
    let mut metadata = json!({"name": name, "labels": labels,
        "annotations": {OWNER_UID_ANNOTATION: uid}, "ownerReferences": owner_references});
    if namespaced {
        metadata["namespace"] = json!(owner.namespace().unwrap_or_default());
    }
    json!({"apiVersion": resource.api_version, "kind": resource.kind, "metadata": metadata, "spec": spec})
}

impl Backends {
    /// Applies the backend object of `owner` ([`backend_body`]) unless it is already in place;
    /// returns the object either way.
    pub async fn apply_backend<K: kube::Resource<DynamicType = ()>>(
        &self,
        owner: &K,
        cluster: Option<&capi::Cluster>,
        resource: &ApiResource,
        namespaced: bool,
        spec: Value,
        field_manager: &str,
    ) -> Result<Value, Error> {
        use kube::ResourceExt;
        let body = backend_body(owner, cluster, resource, namespaced, spec);
        let api = self.api(&owner.namespace().unwrap_or_default(), resource, namespaced);
        self.apply_if_changed(&api, &owner.name_any(), body, field_manager)
            .await
    }

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
}
