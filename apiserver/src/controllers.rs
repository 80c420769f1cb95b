//! The built-in controllers the API contract depends on: CRD naming and establishing, CRD
//! instance cleanup, the namespace lifecycle and the garbage collector.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::crd;
use crate::engine::{CRD_CLEANUP_FINALIZER, DeleteOptions, Engine, Target, Transaction};
use crate::meta;
use crate::registry::{Kind, ResourceType};
use crate::ssa;
use crate::store::{EventType, ObjectKey, Store, StoreEvent};

const CRD_GROUP: &str = "apiextensions.k8s.io";
const CRD_PLURAL: &str = "customresourcedefinitions";

/// Timing knobs of the controllers.
#[derive(Clone, Debug, Default)]
pub struct ControllerDelays {
    pub crd_names: Duration,
    pub crd_establish: Duration,
    pub gc: Duration,
}

fn crd_key(name: &str) -> ObjectKey {
    ObjectKey::new(CRD_GROUP, CRD_PLURAL, "", name)
}

/// Runs every built-in controller until the engine is dropped.
pub async fn run(engine: Arc<Engine>, delays: ControllerDelays) {
    let mut feed = engine.subscribe();
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
    let (crds, namespaces) = engine.with_store(|store| {
        let crds: Vec<String> = store
            .list(CRD_GROUP, CRD_PLURAL, None)
            .map(|(k, _)| k.name.clone())
            .collect();
        let namespaces: Vec<String> = store
            .list("", "namespaces", None)
            .map(|(k, _)| k.name.clone())
            .collect();
        (crds, namespaces)
    });
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
        let terminating = engine.with_store(|store| {
            store
                .get(&crd_key(&crd_name))
                .is_some_and(|c| c.pointer("/metadata/deletionTimestamp").is_some())
        });
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
    let Some(current) = engine.with_store(|store| store.get(&crd_key(name)).cloned()) else {
        engine.transaction().sync_registry();
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
        let mut txn = engine.transaction();
        let Some(mut crd_object) = txn.store().get(&crd_key(name)).cloned() else {
            return;
        };
        let now = engine.clock().timestamp();
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
        // kube-apiserver sets storedVersions when the CRD is created, before any manager.
        if crd_object.pointer("/status/storedVersions").is_none() {
            crd_object["status"]["storedVersions"] = json!(storage);
        }
        let before = crd_object.clone();
        match name_conflict(txn.store(), &crd_object) {
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
        record_status_write(&before, &mut crd_object, &now);
        txn.update(crd_key(name), crd_object);
        txn.sync_registry();
        return;
    }
    if crd::condition_status(&current, "NamesAccepted").as_deref() == Some("True")
        && crd::condition_status(&current, "Established").as_deref() != Some("True")
    {
        if !delays.crd_establish.is_zero() {
            tokio::time::sleep(delays.crd_establish).await;
        }
        let mut txn = engine.transaction();
        let Some(mut crd_object) = txn.store().get(&crd_key(name)).cloned() else {
            return;
        };
        let now = engine.clock().timestamp();
        let before = crd_object.clone();
        crd::set_condition(
            &mut crd_object,
            "Established",
            "True",
            "InitialNamesAccepted",
            "the initial names have been accepted",
            &now,
        );
        record_status_write(&before, &mut crd_object, &now);
        txn.update(crd_key(name), crd_object);
        txn.sync_registry();
        return;
    }
    // A spec change (new schema, versions) takes effect at once.
    engine.transaction().sync_registry();
}

/// Records a status write of the CRD controllers in managedFields, as kube-apiserver's own
/// manager (what `kubectl get crd -o yaml --show-managed-fields` shows after a CRD is created).
fn record_status_write(before: &Value, crd_object: &mut Value, now: &str) {
    let schema = ssa::management_schema(Some(&crd::status_management_schema()));
    let writer = ssa::Writer {
        manager: crd::STATUS_MANAGER,
        api_version: "apiextensions.k8s.io/v1",
        subresource: "status",
        has_status_subresource: true,
        now,
    };
    ssa::record_update(Some(before), crd_object, &schema, writer);
}

fn name_conflict(store: &Store, crd_object: &Value) -> Option<(String, String)> {
    let group = crd_object.pointer("/spec/group").and_then(Value::as_str)?;
    let names = crd_object.pointer("/spec/names")?;
    let me = crd_object
        .pointer("/metadata/name")
        .and_then(Value::as_str)?;
    for (key, other) in store.list(CRD_GROUP, CRD_PLURAL, None) {
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
    txn: &mut Transaction<'_>,
    resource: &Arc<ResourceType>,
    namespace: Option<&str>,
) -> usize {
    let keys: Vec<ObjectKey> = txn
        .store()
        .list(
            crate::events::storage_group(resource),
            &resource.plural,
            namespace,
        )
        .map(|(k, _)| k.clone())
        .collect();
    for key in keys {
        let deleting = txn
            .store()
            .get(&key)
            .is_some_and(|o| o.pointer("/metadata/deletionTimestamp").is_some());
        if !deleting {
            let target = Target::storage(resource, &key);
            let _ = txn.delete(&target, &key, &DeleteOptions::default());
        }
    }
    txn.store()
        .list(
            crate::events::storage_group(resource),
            &resource.plural,
            namespace,
        )
        .count()
}

fn cleanup_crd(engine: &Engine, name: &str) {
    let mut txn = engine.transaction();
    let Some(crd_object) = txn.store().get(&crd_key(name)).cloned() else {
        return;
    };
    if !meta::finalizers(&crd_object)
        .iter()
        .any(|f| f == CRD_CLEANUP_FINALIZER)
    {
        return;
    }
    let remaining = crd::resource_type(&crd_object).map_or(0, |resource| {
        delete_all(&mut txn, &Arc::new(resource), None)
    });
    let now = engine.clock().timestamp();
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
            txn.update(crd_key(name), updated);
        }
        return;
    }
    let finalizers: Vec<String> = meta::finalizers(&crd_object)
        .into_iter()
        .filter(|f| f != CRD_CLEANUP_FINALIZER)
        .collect();
    if finalizers.is_empty() {
        txn.remove(&crd_key(name));
    } else {
        updated["metadata"]["finalizers"] = json!(finalizers);
        txn.update(crd_key(name), updated);
    }
    txn.sync_registry();
}

/// Deletes the contents of a terminating namespace, then finalizes it.
fn reconcile_namespace(engine: &Engine, name: &str) {
    let mut txn = engine.transaction();
    let key = ObjectKey::new("", "namespaces", "", name);
    let Some(namespace) = txn.store().get(&key).cloned() else {
        return;
    };
    if namespace.pointer("/metadata/deletionTimestamp").is_none() {
        return;
    }
    // One resource type per store group: the events.k8s.io view shares the core Event store.
    let types: Vec<_> = txn
        .registry()
        .all()
        .filter(|t| t.namespaced && !crate::events::is_events_api(t))
        .cloned()
        .collect();
    let remaining: usize = types
        .iter()
        .map(|resource| delete_all(&mut txn, resource, Some(name)))
        .sum();
    let now = engine.clock().timestamp();
    let mut with_conditions = namespace.clone();
    set_deletion_conditions(
        &mut with_conditions,
        &content_left(&txn, &types, name),
        &now,
    );
    if remaining > 0 {
        if with_conditions != namespace {
            txn.update(key, with_conditions);
        }
        return;
    }
    let namespace = with_conditions;
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
        txn.remove(&key);
    } else if finalized != namespace {
        txn.update(key, finalized);
    }
}

/// What is left in a terminating namespace: resource instances per resource (`configmaps.`,
/// `widgets.example.com`) and per finalizer.
#[derive(Debug, Default)]
struct ContentLeft {
    resources: std::collections::BTreeMap<String, usize>,
    finalizers: std::collections::BTreeMap<String, usize>,
}

fn content_left(
    txn: &Transaction<'_>,
    types: &[Arc<ResourceType>],
    namespace: &str,
) -> ContentLeft {
    let mut left = ContentLeft::default();
    for resource in types {
        for (_, object) in txn.store().list(
            crate::events::storage_group(resource),
            &resource.plural,
            Some(namespace),
        ) {
            *left
                .resources
                .entry(format!("{}.{}", resource.plural, resource.group))
                .or_default() += 1;
            for finalizer in meta::finalizers(object) {
                *left.finalizers.entry(finalizer).or_default() += 1;
            }
        }
    }
    left
}

/// The conditions kube-controller-manager's namespace controller keeps on a terminating
/// namespace (its types, reasons and messages); a condition keeps its lastTransitionTime while
/// its status does not change.
fn set_deletion_conditions(namespace: &mut Value, left: &ContentLeft, now: &str) {
    let join = |map: &std::collections::BTreeMap<String, usize>, word: &str| {
        map.iter()
            .map(|(name, count)| format!("{name} {word} {count} resource instances"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let remaining = if left.resources.is_empty() {
        (
            "False",
            "ContentRemoved",
            "All content successfully removed".to_string(),
        )
    } else {
        (
            "True",
            "SomeResourcesRemain",
            format!(
                "Some resources are remaining: {}",
                join(&left.resources, "has")
            ),
        )
    };
    let finalizers = if left.finalizers.is_empty() {
        (
            "False",
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished".to_string(),
        )
    } else {
        (
            "True",
            "SomeFinalizersRemain",
            format!(
                "Some content in the namespace has finalizers remaining: {}",
                join(&left.finalizers, "in")
            ),
        )
    };
    let wanted = [
        (
            "NamespaceDeletionDiscoveryFailure",
            (
                "False",
                "ResourcesDiscovered",
                "All resources successfully discovered".to_string(),
            ),
        ),
        (
            "NamespaceDeletionGroupVersionParsingFailure",
            (
                "False",
                "ParsedGroupVersions",
                "All legacy kube types successfully parsed".to_string(),
            ),
        ),
        (
            "NamespaceDeletionContentFailure",
            (
                "False",
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization".to_string(),
            ),
        ),
        ("NamespaceContentRemaining", remaining),
        ("NamespaceFinalizersRemaining", finalizers),
    ];
    let old: Vec<Value> = namespace
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let conditions: Vec<Value> = wanted
        .into_iter()
        .map(|(type_, (status, reason, message))| {
            let since = old
                .iter()
                .find(|c| c["type"] == type_ && c["status"] == status)
                .and_then(|c| c.get("lastTransitionTime").cloned())
                .unwrap_or_else(|| json!(now));
            json!({"type": type_, "status": status, "lastTransitionTime": since, "reason": reason, "message": message})
        })
        .collect();
    namespace["status"]["conditions"] = json!(conditions);
}

/// Whether the owner a reference names is present (by uid, in the dependent's namespace for
/// namespaced owners).
fn owner_present(store: &Store, dependent: &ObjectKey, reference: &Value) -> bool {
    let Some(uid) = reference.get("uid").and_then(Value::as_str) else {
        return false;
    };
    let Some((owner_key, owner)) = store.by_uid(uid) else {
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
    let mut txn = engine.transaction();
    let mut candidates: BTreeSet<ObjectKey> = BTreeSet::new();
    let mut owners: Vec<(ObjectKey, Value)> = Vec::new();
    match event {
        Some(e) if e.type_ == EventType::Deleted => {
            let uid = meta::str_field(&e.object, "uid")
                .unwrap_or_default()
                .to_string();
            candidates.extend(txn.store().dependents_of(&uid));
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
                    .and_then(|u| txn.store().by_uid(u));
                if let Some((owner_key, owner)) = owner {
                    owners.push((owner_key.clone(), owner.clone()));
                }
            }
        }
        Some(e) => {
            candidates.insert(e.key.clone());
            if let Some(current) = txn.store().get(&e.key) {
                owners.push((e.key.clone(), current.clone()));
            }
        }
        None => {
            // The full pass (at start, and after the feed lagged) runs under the engine's
            // lock over every object: it copies only the owners `finish_owner` acts on (being
            // deleted with `orphan` or `foregroundDeletion`), not every object — at 10,000
            // clusters the copies were gigabytes and held every request for seconds.
            for (key, object) in txn.store().iter() {
                if object.pointer("/metadata/ownerReferences").is_some() {
                    candidates.insert(key.clone());
                }
                if object.pointer("/metadata/deletionTimestamp").is_some()
                    && meta::finalizers(object)
                        .iter()
                        .any(|f| f == "orphan" || f == "foregroundDeletion")
                {
                    owners.push((key.clone(), object.clone()));
                }
            }
        }
    }
    for key in candidates {
        collect_if_orphaned(&mut txn, &key);
    }
    for (owner_key, owner) in owners {
        finish_owner(&mut txn, &owner_key, &owner);
    }
}

/// A dependent whose owners are all gone is deleted in the background.
fn collect_if_orphaned(txn: &mut Transaction<'_>, key: &ObjectKey) {
    let Some(object) = txn.store().get(key) else {
        return;
    };
    if object.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    // Only the references are copied (the transaction is borrowed again below).
    let references: Vec<Value> = object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if references.is_empty() {
        return;
    }
    if references
        .iter()
        .all(|r| !owner_present(txn.store(), key, r))
    {
        delete_dependent(txn, key, "Background");
    }
}

/// An owner being deleted with orphaning releases its dependents; one being deleted in the
/// foreground deletes them and finishes once no blocking dependent is left.
fn finish_owner(txn: &mut Transaction<'_>, owner_key: &ObjectKey, owner: &Value) {
    if owner.pointer("/metadata/deletionTimestamp").is_none() {
        return;
    }
    let finalizers = meta::finalizers(owner);
    let uid = meta::str_field(owner, "uid")
        .unwrap_or_default()
        .to_string();
    if finalizers.iter().any(|f| f == "orphan") {
        for key in txn.store().dependents_of(&uid) {
            if let Some(mut object) = txn.store().get(&key).cloned() {
                remove_reference(&mut object, &uid);
                txn.update(key, object);
            }
        }
        remove_finalizer(txn, owner_key, "orphan");
    } else if finalizers.iter().any(|f| f == "foregroundDeletion") {
        let dependents: Vec<(ObjectKey, Value)> = txn
            .store()
            .dependents_of(&uid)
            .into_iter()
            .filter_map(|k| txn.store().get(&k).cloned().map(|o| (k, o)))
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
                            && owner_present(txn.store(), &key, r)
                    })
                });
            if others_alive {
                let mut updated = object.clone();
                remove_reference(&mut updated, &uid);
                txn.update(key, updated);
                continue;
            }
            if reference.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true) {
                blocking = true;
            }
            if object.pointer("/metadata/deletionTimestamp").is_none() {
                delete_dependent(txn, &key, "Foreground");
            }
        }
        if !blocking {
            remove_finalizer(txn, owner_key, "foregroundDeletion");
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

fn remove_finalizer(txn: &mut Transaction<'_>, key: &ObjectKey, finalizer: &str) {
    let Some(mut object) = txn.store().get(key).cloned() else {
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
        txn.remove(key);
        return;
    }
    if remaining.is_empty() {
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("finalizers");
        }
    } else {
        object["metadata"]["finalizers"] = json!(remaining);
    }
    txn.update(key.clone(), object);
}

fn delete_dependent(txn: &mut Transaction<'_>, key: &ObjectKey, policy: &str) {
    let Some(resource) = txn.registry().get(&key.group, &key.plural) else {
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
    let _ = txn.delete(&target, key, &options);
}
