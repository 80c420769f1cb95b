//! Updates: PUT and the non-apply PATCHes, and the update pipeline they share with apply.

use serde_json::{Value, json};

use super::admission::{WriteContext, check_type_meta, field_validation};
use super::{Engine, Outcome, PatchType, State, Target, WriteOptions, is_deleting, metadata_mut};
use crate::meta;
use crate::patch::{self, PatchError};
use crate::registry::{Kind, ResourceType};
use crate::ssa;
use crate::status::{ApiError, FieldError};
use crate::store::ObjectKey;

/// Metadata an update never changes: it is taken from the stored object.
const SYSTEM_FIELDS: [&str; 7] = [
    "name",
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "namespace",
];

/// How an update's managedFields come about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ManagedFields {
    /// PUT and PATCH: the body's managedFields, else the stored ones; then the update is
    /// recorded for the request's manager.
    Record,
    /// Server-side apply: `ssa::apply` has already merged them.
    Applied,
}

impl Engine {
    /// PUT: replace an object (main resource or `/status`).
    pub fn replace(
        &self,
        target: &Target,
        body: Value,
        options: &WriteOptions,
    ) -> Result<Outcome, ApiError> {
        let mut state = self.lock();
        check_type_meta(target, &body)?;
        let name = target.name.clone().unwrap_or_default();
        let key = target.key(&name);
        let old = state
            .store
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&target.resource.name(), &name))?;
        let body_rv = meta::str_field(&body, "resourceVersion")
            .unwrap_or_default()
            .to_string();
        let old_rv = meta::str_field(&old, "resourceVersion")
            .unwrap_or_default()
            .to_string();
        if body_rv.is_empty() {
            if !target.resource.kind.allows_unconditional_update() {
                return Err(ApiError::resource_version_required(
                    &target.resource.name(),
                    &name,
                ));
            }
        } else if body_rv != old_rv {
            return Err(ApiError::conflict(&target.resource.name(), &name));
        }
        self.write_recorded(&mut state, target, options, &key, &old, body)
    }

    /// PATCH of any type; an apply that finds nothing creates.
    pub fn patch(
        &self,
        target: &Target,
        patch_type: PatchType,
        body: &[u8],
        options: &WriteOptions,
    ) -> Result<Outcome, ApiError> {
        if options.force.is_some() && patch_type != PatchType::Apply {
            return Err(ApiError::invalid_options(
                "PatchOptions",
                &FieldError::forbidden("force", "may not be specified for non-apply patch"),
            ));
        }
        if patch_type == PatchType::Strategic && !target.resource.kind.accepts_strategic_merge() {
            return Err(ApiError::unsupported_media_type(&[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
            ]));
        }
        let name = target.name.clone().unwrap_or_default();
        let key = target.key(&name);
        let patch_value: Value = match patch_type {
            PatchType::Apply => yaml_serde::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
            _ => serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
        };
        if patch_type == PatchType::Apply {
            return self.apply(target, &key, patch_value, options);
        }
        let mut state = self.lock();
        let old = state
            .store
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&target.resource.name(), &name))?;
        let presented = Self::present(&target.resource, &target.version, &old);
        let patched = match patch_type {
            PatchType::Merge => {
                let mut doc = presented.clone();
                patch::merge_patch(&mut doc, &patch_value);
                doc
            }
            PatchType::Strategic => {
                let mut doc = presented.clone();
                patch::strategic_merge(&mut doc, &patch_value);
                doc
            }
            PatchType::Json => match patch::json_patch(&presented, &patch_value) {
                Ok(doc) => doc,
                Err(PatchError::Malformed(m)) => return Err(ApiError::bad_request(m)),
                Err(PatchError::Failed(_)) => return Err(ApiError::patch_rejected()),
            },
            PatchType::Apply => unreachable!("handled above"),
        };
        // A resourceVersion in the patch is a precondition; otherwise the patch applies to the
        // latest object.
        let patch_rv = match patch_type {
            PatchType::Json => patched
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .filter(|rv| {
                    Some(*rv)
                        != presented
                            .pointer("/metadata/resourceVersion")
                            .and_then(Value::as_str)
                })
                .map(str::to_string),
            _ => patch_value
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        if let Some(rv) = patch_rv
            && Some(rv.as_str()) != meta::str_field(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(&target.resource.name(), &name));
        }
        self.write_recorded(&mut state, target, options, &key, &old, patched)
    }

    /// The update pipeline for a PUT or a non-apply PATCH, by the request's field manager
    /// (`unknown` without one).
    fn write_recorded(
        &self,
        state: &mut State,
        target: &Target,
        options: &WriteOptions,
        key: &ObjectKey,
        old: &Value,
        new: Value,
    ) -> Result<Outcome, ApiError> {
        let context = WriteContext::new(target, options, "unknown", self.clock.timestamp());
        self.write_update(state, &context, key, old, new, ManagedFields::Record)
    }

    /// The shared update pipeline of PUT, PATCH and apply: system fields, status isolation,
    /// admission, the deletion and generation rules, managedFields, then the commit.
    pub(super) fn write_update(
        &self,
        state: &mut State,
        context: &WriteContext<'_>,
        key: &ObjectKey,
        old: &Value,
        mut new: Value,
        managed: ManagedFields,
    ) -> Result<Outcome, ApiError> {
        let mut warnings = keep_system_fields(context, key, old, &mut new, managed)?;
        let new = isolate_status(context, old, new);
        let (mut new, dropped) = self.admit(context, Some(old), new)?;
        warnings.extend(dropped);
        let warnings = field_validation(context, warnings)?;
        refuse_new_finalizers_while_deleting(context, key, old, &new)?;
        set_generation(context, old, &mut new);
        if managed == ManagedFields::Record {
            record_update(context, old, &mut new);
        }
        stamp_for_storage(&context.target.resource, old, &mut new);
        Ok(commit_update(state, context, key, old, new, warnings))
    }
}

/// Normalises the new metadata, checks it names the stored object, and takes the system fields
/// (and, for PUT and PATCH, absent managedFields) from the stored object. Returns the
/// normalisation warnings.
fn keep_system_fields(
    context: &WriteContext<'_>,
    key: &ObjectKey,
    old: &Value,
    new: &mut Value,
    managed: ManagedFields,
) -> Result<Vec<String>, ApiError> {
    let metadata = metadata_mut(new);
    let warnings = meta::normalize(metadata);
    check_identity(&context.target.resource, key, old, metadata)?;
    for field in SYSTEM_FIELDS {
        match old.pointer(&format!("/metadata/{field}")) {
            Some(v) => {
                metadata.insert(field.into(), v.clone());
            }
            None => {
                metadata.remove(field);
            }
        }
    }
    if managed == ManagedFields::Record
        && !metadata.contains_key("managedFields")
        && let Some(stored) = old.pointer("/metadata/managedFields")
    {
        metadata.insert("managedFields".into(), stored.clone());
    }
    Ok(warnings)
}

/// The body's name, namespace and uid must be the stored object's, and an update cannot start a
/// deletion.
fn check_identity(
    resource: &ResourceType,
    key: &ObjectKey,
    old: &Value,
    metadata: &serde_json::Map<String, Value>,
) -> Result<(), ApiError> {
    let name = key.name.as_str();
    if let Some(body_name) = metadata.get("name").and_then(Value::as_str)
        && body_name != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if let Some(ns) = metadata.get("namespace").and_then(Value::as_str)
        && resource.namespaced
        && ns != key.namespace
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let old_uid = meta::str_field(old, "uid").unwrap_or_default();
    if let Some(uid) = metadata.get("uid").and_then(Value::as_str)
        && uid != old_uid
    {
        return Err(ApiError::conflict_with(
            &resource.name(),
            name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {old_uid}"
            ),
        ));
    }
    if old.pointer("/metadata/deletionTimestamp").is_none()
        && metadata
            .get("deletionTimestamp")
            .is_some_and(|v| !v.is_null())
    {
        let value = metadata
            .get("deletionTimestamp")
            .cloned()
            .unwrap_or(Value::Null);
        return Err(ApiError::invalid(
            &resource.name(),
            name,
            &[FieldError::invalid(
                "metadata.deletionTimestamp",
                &value,
                "field is immutable",
            )],
        ));
    }
    Ok(())
}

/// With a status subresource, `/status` changes only status (and managedFields), and the main
/// resource never changes status.
fn isolate_status(context: &WriteContext<'_>, old: &Value, mut new: Value) -> Value {
    if !context.target.resource.status_subresource {
        return new;
    }
    if context.target.subresource() == "status" {
        let status = new.get("status").cloned();
        let managed = new.pointer("/metadata/managedFields").cloned();
        let mut rebuilt = old.clone();
        match status {
            Some(s) => rebuilt["status"] = s,
            None => {
                if let Some(o) = rebuilt.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        if let Some(managed) = managed {
            metadata_mut(&mut rebuilt).insert("managedFields".into(), managed);
        }
        rebuilt
    } else {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        new
    }
}

/// Finalizers may not be added while the object is being deleted.
fn refuse_new_finalizers_while_deleting(
    context: &WriteContext<'_>,
    key: &ObjectKey,
    old: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    if !is_deleting(old) {
        return Ok(());
    }
    let before = meta::finalizers(old);
    let added: Vec<String> = meta::finalizers(new)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    if added.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = added.iter().map(|f| format!("\"{f}\"")).collect();
    Err(ApiError::invalid(
        &context.target.resource.name(),
        &key.name,
        &[FieldError::forbidden(
            "metadata.finalizers",
            format!(
                "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                list.join(", ")
            ),
        )],
    ))
}

/// The generation moves on when anything but metadata (and status, when it is a
/// subresource) changed, never through `/status`.
fn set_generation(context: &WriteContext<'_>, old: &Value, new: &mut Value) {
    let resource = &context.target.resource;
    if !resource.kind.has_generation() {
        return;
    }
    let has_status = resource.status_subresource;
    let generation = old
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let strip = |o: &Value| {
        let mut o = o.clone();
        if let Some(map) = o.as_object_mut() {
            map.remove("metadata");
            map.remove("apiVersion");
            if has_status {
                map.remove("status");
            }
        }
        o
    };
    let bump = context.target.subresource() != "status" && strip(old) != strip(new);
    metadata_mut(new).insert(
        "generation".into(),
        json!(if bump { generation + 1 } else { generation }),
    );
}

/// Records a PUT or PATCH in managedFields for the request's manager.
fn record_update(context: &WriteContext<'_>, old: &Value, new: &mut Value) {
    let target = context.target;
    let resource = &target.resource;
    let schema = ssa::management_schema(
        resource
            .version(&target.version)
            .and_then(|v| v.schema.as_ref()),
    );
    let old_presented = Engine::present(resource, &target.version, old);
    let api_version = target.api_version();
    let writer = ssa::Writer {
        manager: &context.manager,
        api_version: &api_version,
        subresource: target.subresource(),
        has_status_subresource: resource.status_subresource,
        now: &context.now,
    };
    ssa::record_update(Some(&old_presented), new, &schema, writer);
}

/// The storage apiVersion, and the stored resourceVersion (the store sets the next one).
fn stamp_for_storage(resource: &ResourceType, old: &Value, new: &mut Value) {
    new["apiVersion"] = json!(resource.api_version(&resource.storage_version));
    if let Some(metadata) = new.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert(
            "resourceVersion".into(),
            old.pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null),
        );
    }
}

/// The end of an update: nothing stored for a no-op or a dry run; removing the last finalizer
/// of a deleting object deletes it; otherwise the store takes the new object.
fn commit_update(
    state: &mut State,
    context: &WriteContext<'_>,
    key: &ObjectKey,
    old: &Value,
    new: Value,
    warnings: Vec<String>,
) -> Outcome {
    let target = context.target;
    let resource = &target.resource;
    let new = crate::events::to_storage(resource, new);
    let answer = |body: &Value, warnings: Vec<String>| Outcome {
        code: 200,
        body: Engine::present(resource, &target.version, body),
        warnings,
    };
    // No-op: nothing but managedFields timestamps changed.
    if same_but_managed_times(&new, old) {
        return answer(old, warnings);
    }
    if context.options.dry_run {
        return answer(&new, warnings);
    }
    if is_deleting(&new)
        && meta::finalizers(&new).is_empty()
        && namespace_finalizers_empty(resource, &new)
    {
        state.store.delete(key);
        return answer(&new, warnings);
    }
    let stored = state.store.update(key.clone(), new);
    answer(&stored, warnings)
}

fn namespace_finalizers_empty(resource: &ResourceType, object: &Value) -> bool {
    resource.kind != Kind::Namespace
        || object
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
}

/// Whether two objects are equal apart from the `time` of their managedFields entries; compared
/// in place, as every update of the server asks it (a copy of both objects per update before).
fn same_but_managed_times(new: &Value, old: &Value) -> bool {
    let (Value::Object(new), Value::Object(old)) = (new, old) else {
        return new == old;
    };
    new.len() == old.len()
        && new.iter().all(|(key, value)| {
            old.get(key).is_some_and(|other| match key.as_str() {
                "metadata" => same_metadata(value, other),
                _ => value == other,
            })
        })
}

fn same_metadata(new: &Value, old: &Value) -> bool {
    let (Value::Object(new), Value::Object(old)) = (new, old) else {
        return new == old;
    };
    new.len() == old.len()
        && new.iter().all(|(key, value)| {
            old.get(key)
                .is_some_and(|other| match (key.as_str(), value, other) {
                    ("managedFields", Value::Array(new), Value::Array(old)) => {
                        new.len() == old.len()
                            && new.iter().zip(old).all(|(a, b)| same_but_time(a, b))
                    }
                    _ => value == other,
                })
        })
}

/// One managedFields entry against another, `time` left out.
fn same_but_time(new: &Value, old: &Value) -> bool {
    let (Value::Object(new), Value::Object(old)) = (new, old) else {
        return new == old;
    };
    let fields =
        |entry: &serde_json::Map<String, Value>| entry.keys().filter(|k| *k != "time").count();
    fields(new) == fields(old)
        && new
            .iter()
            .filter(|(key, _)| *key != "time")
            .all(|(key, value)| old.get(key) == Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(time: &str, manager: &str, replicas: u32) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "resourceVersion": "7", "managedFields": [
                {"manager": manager, "operation": "Update", "time": time, "fieldsType": "FieldsV1"}]},
            "data": {"replicas": replicas.to_string()}})
    }

    /// An update that changes only managedFields times is a no-op; any other difference,
    /// including in an entry or the number of entries, is not.
    #[test]
    fn only_managed_field_times_make_a_no_op() {
        let old = object("2026-12-07T01:00:00Z", "a", 1);
        assert!(same_but_managed_times(
            &object("2026-12-07T02:00:00Z", "a", 1),
            &old
        ));
        assert!(!same_but_managed_times(
            &object("2026-12-07T02:00:00Z", "b", 1),
            &old
        ));
        assert!(!same_but_managed_times(
            &object("2026-12-07T01:00:00Z", "a", 2),
            &old
        ));
        let mut without_time = old.clone();
        without_time["metadata"]["managedFields"][0]
            .as_object_mut()
            .unwrap()
            .remove("time");
        assert!(same_but_managed_times(&without_time, &old));
        let mut two_entries = old.clone();
        two_entries["metadata"]["managedFields"]
            .as_array_mut()
            .unwrap()
            .push(json!({"manager": "c", "operation": "Update"}));
        assert!(!same_but_managed_times(&two_entries, &old));
        let mut relabelled = old.clone();
        relabelled["metadata"]["labels"] = json!({"x": "y"});
        assert!(!same_but_managed_times(&relabelled, &old));
    }
}
