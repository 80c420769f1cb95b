//! The built-in controllers the API contract depends on: CRD naming and establishing, CRD
//! instance cleanup, the namespace lifecycle and the garbage collector.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::crd;
use crate::engine::{CRD_CLEANUP_FINALIZER, DeleteOptions, Engine, State, Target};
use crate::meta;
use crate::registry::{Kind, ResourceType};
use crate::store::{EventType, ObjectKey, StoreEvent};

const CRD_GROUP: &str = "apiextensions.k8s.io";
const CRD_PLURAL: &str = "customresourcedefinitions";

/// Timing knobs of the controllers.
#[derive(Clone, Debug, Default)]
pub struct ControllerDelays {
    pub crd_names: Duration,
    pub crd_establish: Duration,
    pub gc: Duration,
}

/// Rebuilds the CRD-defined types of the registry from the stored CRDs: a CRD serves once its
/// names are accepted and is listed in discovery once Established.
pub fn sync_registry(state: &mut State) {
    let crds: Vec<Value> = state
        .store
        .list(CRD_GROUP, CRD_PLURAL, None)
        .map(|(_, v)| v.clone())
        .collect();
    state.registry.clear_custom();
    for crd in crds {
        if crd::condition_status(&crd, "NamesAccepted").as_deref() != Some("True") {
            continue;
        }
        if let Some(resource) = crd::resource_type(&crd) {
            state.registry.insert(resource);
        }
    }
}

fn crd_key(name: &str) -> ObjectKey {
    ObjectKey::new(CRD_GROUP, CRD_PLURAL, "", name)
}

/// Runs every built-in controller until the engine is dropped.
pub async fn run(engine: Arc<Engine>, delays: ControllerDelays) {
    let mut feed = engine.lock().store.subscribe();
    resync(&engine, &delays).await;
    loop {
        match feed.recv().await {
            Ok(event) => handle(&engine, &delays, &event).await,
            Err(RecvError::Lagged(_)) => resync(&engine, &delays).await,
            Err(RecvError::Closed) => return,
        }
    }
}

async fn resync(engine: &Engine, delays: &ControllerDelays) {
    let (crds, namespaces) = {
        let state = engine.lock();
        let crds: Vec<String> = state
            .store
            .list(CRD_GROUP, CRD_PLURAL, None)
            .map(|(k, _)| k.name.clone())
            .collect();
        let namespaces: Vec<String> = state
            .store
            .list("", "namespaces", None)
            .map(|(k, _)| k.name.clone())
            .collect();
        (crds, namespaces)
    };
    for name in crds {
        reconcile_crd(engine, delays, &name).await;
    }
    for name in namespaces {
        reconcile_namespace(engine, &name);
    }
    collect_garbage(engine, delays, None).await;
}

async fn handle(engine: &Engine, delays: &ControllerDelays, event: &StoreEvent) {
    let key = &event.key;
    if key.group == CRD_GROUP && key.plural == CRD_PLURAL {
        reconcile_crd(engine, delays, &key.name).await;
    }
    if key.group.is_empty() && key.plural == "namespaces" {
        reconcile_namespace(engine, &key.name);
    } else if !key.namespace.is_empty() && event.type_ == EventType::Deleted {
        reconcile_namespace(engine, &key.namespace);
    }
    if event.type_ == EventType::Deleted {
        // Instances of a terminating CRD going away may let the CRD finish.
        let crd_name = format!("{}.{}", key.plural, key.group);
        let terminating = engine
            .lock()
            .store
            .get(&crd_key(&crd_name))
            .is_some_and(|c| c.pointer("/metadata/deletionTimestamp").is_some());
        if terminating {
            reconcile_crd(engine, delays, &crd_name).await;
        }
    }
    let relevant = match event.type_ {
        EventType::Deleted => true,
        _ => {
            event.object.pointer("/metadata/ownerReferences").is_some()
                || meta::finalizers(&event.object)
                    .iter()
                    .any(|f| f == "foregroundDeletion" || f == "orphan")
        }
    };
    if relevant {
        collect_garbage(engine, delays, Some(event)).await;
    }
}

async fn reconcile_crd(engine: &Engine, delays: &ControllerDelays, name: &str) {
    let Some(current) = engine.lock().store.get(&crd_key(name)).cloned() else {
        sync_registry(&mut engine.lock());
        return;
    };
    if current.pointer("/metadata/deletionTimestamp").is_some() {
        cleanup_crd(engine, name);
        return;
    }
    if crd::condition_status(&current, "NamesAccepted").is_none() {
        if !delays.crd_names.is_zero() {
            tokio::time::sleep(delays.crd_names).await;
        }
        let mut state = engine.lock();
        let Some(mut crd_object) = state.store.get(&crd_key(name)).cloned() else {
            return;
        };
        let now = engine.clock.timestamp();
        match name_conflict(&state, &crd_object) {
            Some((reason, message)) => {
                crd::set_condition(
                    &mut crd_object,
                    "NamesAccepted",
                    "False",
                    &reason,
                    &message,
                    &now,
                );
                crd::set_condition(
                    &mut crd_object,
                    "Established",
                    "False",
                    "NotAccepted",
                    "not all names are accepted",
                    &now,
                );
            }
            None => {
                crd_object["status"]["acceptedNames"] = crd_object["spec"]["names"].clone();
                crd::set_condition(
                    &mut crd_object,
                    "NamesAccepted",
                    "True",
                    "NoConflicts",
                    "no conflicts found",
                    &now,
                );
                crd::set_condition(
                    &mut crd_object,
                    "Established",
                    "False",
                    "Installing",
                    "the initial names have been accepted",
                    &now,
                );
            }
        }
        let storage: Vec<Value> = crd_object
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                    .filter_map(|v| v.get("name").cloned())
                    .collect()
            })
            .unwrap_or_default();
        if crd_object.pointer("/status/storedVersions").is_none() {
            crd_object["status"]["storedVersions"] = json!(storage);
        }
        state.store.update(crd_key(name), crd_object);
        sync_registry(&mut state);
        return;
    }
    if crd::condition_status(&current, "NamesAccepted").as_deref() == Some("True")
        && crd::condition_status(&current, "Established").as_deref() != Some("True")
    {
        if !delays.crd_establish.is_zero() {
            tokio::time::sleep(delays.crd_establish).await;
        }
        let mut state = engine.lock();
        let Some(mut crd_object) = state.store.get(&crd_key(name)).cloned() else {
            return;
        };
        let now = engine.clock.timestamp();
        crd::set_condition(
            &mut crd_object,
            "Established",
            "True",
            "InitialNamesAccepted",
            "the initial names have been accepted",
            &now,
        );
        state.store.update(crd_key(name), crd_object);
        sync_registry(&mut state);
        return;
    }
    // A spec change (new schema, versions) takes effect at once.
    sync_registry(&mut engine.lock());
}

fn name_conflict(state: &State, crd_object: &Value) -> Option<(String, String)> {
    let group = crd_object.pointer("/spec/group").and_then(Value::as_str)?;
    let names = crd_object.pointer("/spec/names")?;
    let me = crd_object
        .pointer("/metadata/name")
        .and_then(Value::as_str)?;
    for (key, other) in state.store.list(CRD_GROUP, CRD_PLURAL, None) {
        if key.name == me || other.pointer("/spec/group").and_then(Value::as_str) != Some(group) {
            continue;
        }
        let accepted = other
            .pointer("/status/acceptedNames")
            .unwrap_or(&Value::Null);
        for (field, reason) in [
            ("plural", "PluralConflict"),
            ("singular", "SingularConflict"),
            ("kind", "KindConflict"),
            ("listKind", "ListKindConflict"),
        ] {
            let mine = names.get(field).and_then(Value::as_str);
            if mine.is_some() && mine == accepted.get(field).and_then(Value::as_str) {
                return Some((
                    reason.into(),
                    format!("\"{}\" is already in use", mine.unwrap_or_default()),
                ));
            }
        }
    }
    None
}

/// Issues a DELETE (default options) for every object of `resource` (in `namespace`, if given)
/// not already being deleted; returns how many objects remain.
fn delete_all(
    engine: &Engine,
    state: &mut State,
    resource: &Arc<ResourceType>,
    namespace: Option<&str>,
) -> usize {
    let keys: Vec<ObjectKey> = state
        .store
        .list(&resource.group, &resource.plural, namespace)
        .map(|(k, _)| k.clone())
        .collect();
    for key in keys {
        let deleting = state
            .store
            .get(&key)
            .is_some_and(|o| o.pointer("/metadata/deletionTimestamp").is_some());
        if !deleting {
            let target = Target::storage(resource, &key);
            let _ = engine.delete_locked(state, &target, &key, &DeleteOptions::default());
        }
    }
    state
        .store
        .list(&resource.group, &resource.plural, namespace)
        .count()
}

fn cleanup_crd(engine: &Engine, name: &str) {
    let mut state = engine.lock();
    let Some(crd_object) = state.store.get(&crd_key(name)).cloned() else {
        return;
    };
    if !meta::finalizers(&crd_object)
        .iter()
        .any(|f| f == CRD_CLEANUP_FINALIZER)
    {
        return;
    }
    let remaining = crd::resource_type(&crd_object).map_or(0, |resource| {
        delete_all(engine, &mut state, &Arc::new(resource), None)
    });
    let now = engine.clock.timestamp();
    let mut updated = crd_object.clone();
    if remaining > 0 {
        crd::set_condition(
            &mut updated,
            "Terminating",
            "True",
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
            &now,
        );
        if updated != crd_object {
            state.store.update(crd_key(name), updated);
        }
        return;
    }
    let finalizers: Vec<String> = meta::finalizers(&crd_object)
        .into_iter()
        .filter(|f| f != CRD_CLEANUP_FINALIZER)
        .collect();
    if finalizers.is_empty() {
        state.store.delete(&crd_key(name));
    } else {
        updated["metadata"]["finalizers"] = json!(finalizers);
        state.store.update(crd_key(name), updated);
    }
    sync_registry(&mut state);
}

/// Deletes the contents of a terminating namespace, then finalizes it.
fn reconcile_namespace(engine: &Engine, name: &str) {
    let mut state = engine.lock();
    let key = ObjectKey::new("", "namespaces", "", name);
    let Some(namespace) = state.store.get(&key).cloned() else {
        return;
    };
    if namespace.pointer("/metadata/deletionTimestamp").is_none() {
        return;
    }
    let types: Vec<_> = state
        .registry
        .all()
        .filter(|t| t.namespaced)
        .cloned()
        .collect();
    let remaining: usize = types
        .iter()
        .map(|resource| delete_all(engine, &mut state, resource, Some(name)))
        .sum();
    if remaining > 0 {
        return;
    }
    let mut finalized = namespace.clone();
    let spec_finalizers: Vec<Value> = namespace
        .pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter(|x| x.as_str() != Some("kubernetes"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    finalized["spec"]["finalizers"] = json!(spec_finalizers);
    if spec_finalizers.is_empty()
        && let Some(spec) = finalized.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.remove("finalizers");
    }
    if spec_finalizers.is_empty() && meta::finalizers(&finalized).is_empty() {
        state.store.delete(&key);
    } else if finalized != namespace {
        state.store.update(key, finalized);
    }
}

/// Whether the owner a reference names is present (by uid, in the dependent's namespace for
/// namespaced owners).
fn owner_present(state: &State, dependent: &ObjectKey, reference: &Value) -> bool {
    let Some(uid) = reference.get("uid").and_then(Value::as_str) else {
        return false;
    };
    let Some((owner_key, owner)) = state.store.by_uid(uid) else {
        return false;
    };
    let name_matches =
        reference.get("name").and_then(Value::as_str) == meta::str_field(owner, "name");
    let scope_ok = owner_key.namespace.is_empty() || owner_key.namespace == dependent.namespace;
    name_matches && scope_ok
}

/// One garbage-collection pass. With an event, only objects related to it are examined.
async fn collect_garbage(engine: &Engine, delays: &ControllerDelays, event: Option<&StoreEvent>) {
    if !delays.gc.is_zero() {
        tokio::time::sleep(delays.gc).await;
    }
    let mut state = engine.lock();
    let mut candidates: BTreeSet<ObjectKey> = BTreeSet::new();
    let mut owners: Vec<(ObjectKey, Value)> = Vec::new();
    match event {
        Some(e) if e.type_ == EventType::Deleted => {
            let uid = meta::str_field(&e.object, "uid")
                .unwrap_or_default()
                .to_string();
            candidates.extend(state.store.dependents_of(&uid));
            // Owners waiting in the foreground for this dependent may now finish.
            for reference in e
                .object
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let owner = reference
                    .get("uid")
                    .and_then(Value::as_str)
                    .and_then(|u| state.store.by_uid(u));
                if let Some((owner_key, owner)) = owner {
                    owners.push((owner_key.clone(), owner.clone()));
                }
            }
        }
        Some(e) => {
            candidates.insert(e.key.clone());
            if let Some(current) = state.store.get(&e.key) {
                owners.push((e.key.clone(), current.clone()));
            }
        }
        None => {
            for (key, object) in state.store.iter() {
                if object.pointer("/metadata/ownerReferences").is_some() {
                    candidates.insert(key.clone());
                }
                owners.push((key.clone(), object.clone()));
            }
        }
    }
    // Dependents whose owners are all gone are deleted in the background.
    for key in candidates {
        let Some(object) = state.store.get(&key).cloned() else {
            continue;
        };
        let references: Vec<Value> = object
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if references.is_empty() || object.pointer("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        if references.iter().all(|r| !owner_present(&state, &key, r)) {
            delete_dependent(engine, &mut state, &key, "Background");
        }
    }
    // Owners being deleted in the foreground or with orphaning.
    for (owner_key, owner) in owners {
        if owner.pointer("/metadata/deletionTimestamp").is_none() {
            continue;
        }
        let finalizers = meta::finalizers(&owner);
        let uid = meta::str_field(&owner, "uid")
            .unwrap_or_default()
            .to_string();
        if finalizers.iter().any(|f| f == "orphan") {
            for key in state.store.dependents_of(&uid) {
                if let Some(mut object) = state.store.get(&key).cloned() {
                    remove_reference(&mut object, &uid);
                    state.store.update(key, object);
                }
            }
            remove_finalizer(&mut state, &owner_key, "orphan");
        } else if finalizers.iter().any(|f| f == "foregroundDeletion") {
            let dependents: Vec<(ObjectKey, Value)> = state
                .store
                .dependents_of(&uid)
                .into_iter()
                .filter_map(|k| state.store.get(&k).cloned().map(|o| (k, o)))
                .collect();
            let mut blocking = false;
            for (key, object) in dependents {
                let reference = object
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .and_then(|refs| {
                        refs.iter()
                            .find(|r| r.get("uid").and_then(Value::as_str) == Some(uid.as_str()))
                            .cloned()
                    })
                    .unwrap_or(Value::Null);
                let others_alive = object
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| {
                        refs.iter().any(|r| {
                            r.get("uid").and_then(Value::as_str) != Some(uid.as_str())
                                && owner_present(&state, &key, r)
                        })
                    });
                if others_alive {
                    let mut updated = object.clone();
                    remove_reference(&mut updated, &uid);
                    state.store.update(key, updated);
                    continue;
                }
                if reference.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true) {
                    blocking = true;
                }
                if object.pointer("/metadata/deletionTimestamp").is_none() {
                    delete_dependent(engine, &mut state, &key, "Foreground");
                }
            }
            if !blocking {
                remove_finalizer(&mut state, &owner_key, "foregroundDeletion");
            }
        }
    }
}

fn remove_reference(object: &mut Value, uid: &str) {
    if let Some(refs) = object
        .pointer_mut("/metadata/ownerReferences")
        .and_then(Value::as_array_mut)
    {
        refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
        if refs.is_empty()
            && let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut)
        {
            metadata.remove("ownerReferences");
        }
    }
}

fn remove_finalizer(state: &mut State, key: &ObjectKey, finalizer: &str) {
    let Some(mut object) = state.store.get(key).cloned() else {
        return;
    };
    let remaining: Vec<String> = meta::finalizers(&object)
        .into_iter()
        .filter(|f| f != finalizer)
        .collect();
    let namespace_pending = key.plural == "namespaces"
        && key.group.is_empty()
        && object
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
    if remaining.is_empty() && !namespace_pending {
        state.store.delete(key);
        return;
    }
    if remaining.is_empty() {
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("finalizers");
        }
    } else {
        object["metadata"]["finalizers"] = json!(remaining);
    }
    state.store.update(key.clone(), object);
}

fn delete_dependent(engine: &Engine, state: &mut State, key: &ObjectKey, policy: &str) {
    let Some(resource) = state.registry.get(&key.group, &key.plural) else {
        return;
    };
    if resource.kind == Kind::Namespace {
        return;
    }
    let target = Target::storage(&resource, key);
    let options = DeleteOptions {
        propagation_policy: Some(policy.into()),
        ..Default::default()
    };
    let _ = engine.delete_locked(state, &target, key, &options);
}
