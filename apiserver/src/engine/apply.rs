//! Server-side apply: PATCH with `application/apply-patch+yaml`. The merge and its conflicts are
//! `ssa`'s; an apply of an existing object ends in the update pipeline, of a new one in create.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::admission::{WriteContext, check_type_meta, normalize_numbers};
use super::update::ManagedFields;
use super::{Engine, Outcome, Target, WriteOptions};
use crate::meta;
use crate::registry::ResourceType;
use crate::ssa;
use crate::status::{ApiError, FieldError};
use crate::store::ObjectKey;

impl Engine {
    /// An apply: checks the request, merges it into the live object as the manager's, then
    /// updates or creates under one lock.
    pub(super) fn apply(
        &self,
        target: &Target,
        key: &ObjectKey,
        applied: Value,
        options: &WriteOptions,
    ) -> Result<Outcome, ApiError> {
        let manager = check_apply_request(target, options, &applied)?;
        let name = target.name.clone().unwrap_or_default();
        let resource = &target.resource;
        let subresource = target.subresource();
        let mut applied = applied;
        normalize_numbers(&mut applied);
        reset_fields(resource, subresource, &mut applied);
        let mut state = self.lock();
        let old = state.store.get(key).cloned();
        if let (Some(old), Some(rv)) = (&old, meta::str_field(&applied, "resourceVersion"))
            && Some(rv) != meta::str_field(old, "resourceVersion")
        {
            return Err(ApiError::conflict(&resource.name(), &name));
        }
        let now = self.clock.timestamp();
        let schema_value = ssa::management_schema(
            resource
                .version(&target.version)
                .and_then(|v| v.schema.as_ref()),
        );
        let live = old
            .as_ref()
            .map(|o| Self::present(resource, &target.version, o));
        let force = options.force.unwrap_or(false);
        let api_version = target.api_version();
        let writer = ssa::Writer {
            manager: &manager,
            api_version: &api_version,
            subresource,
            has_status_subresource: resource.status_subresource,
            now: &now,
        };
        let merged = ssa::apply(live.as_ref(), &applied, &schema_value, writer, force)
            .map_err(|conflicts| conflict_error(&conflicts))?;
        let context = WriteContext {
            target,
            options,
            manager,
            now,
        };
        match old {
            Some(old) => self.write_update(
                &mut state,
                &context,
                key,
                &old,
                merged,
                ManagedFields::Applied,
            ),
            None => {
                let mut body = merged;
                let managed = body
                    .get_mut("metadata")
                    .and_then(Value::as_object_mut)
                    .and_then(|m| {
                        m.remove("resourceVersion");
                        m.remove("managedFields")
                    });
                self.create_locked(&mut state, target, body, options, managed)
            }
        }
    }
}

/// The checks of an apply request before any store access; returns its field manager.
fn check_apply_request(
    target: &Target,
    options: &WriteOptions,
    applied: &Value,
) -> Result<String, ApiError> {
    let Some(manager) = options.field_manager.clone().filter(|m| !m.is_empty()) else {
        return Err(ApiError::invalid_options(
            "PatchOptions",
            &FieldError::required("fieldManager").with_detail("is required for apply patch"),
        ));
    };
    let name = target.name.clone().unwrap_or_default();
    if applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
        || applied
            .get("kind")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        return Err(ApiError::bad_request("invalid object type: /, Kind="));
    }
    check_type_meta(target, applied)?;
    if let Some(body_name) = meta::str_field(applied, "name")
        && body_name != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if applied.pointer("/metadata/managedFields").is_some() {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    Ok(manager)
}

/// Reset fields: with a status subresource, the main resource never owns status and `/status`
/// never owns anything else.
fn reset_fields(resource: &ResourceType, subresource: &str, applied: &mut Value) {
    if resource.status_subresource
        && let Some(object) = applied.as_object_mut()
    {
        if subresource == "status" {
            object
                .retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status"));
        } else {
            object.remove("status");
        }
    }
}

fn conflict_error(conflicts: &[(ssa::Conflict, String)]) -> ApiError {
    let mut by_manager: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (conflict, who) in conflicts {
        by_manager
            .entry(who.clone())
            .or_default()
            .push(conflict.path.clone());
    }
    let message = if conflicts.len() == 1 {
        let (conflict, who) = &conflicts[0];
        format!(
            "Apply failed with 1 conflict: conflict with {who}: {}",
            conflict.path
        )
    } else {
        let mut text = format!("Apply failed with {} conflicts: ", conflicts.len());
        let parts: Vec<String> = by_manager
            .iter()
            .map(|(who, paths)| {
                let lines: Vec<String> = paths.iter().map(|p| format!("- {p}")).collect();
                format!("conflicts with {who}:\n{}", lines.join("\n"))
            })
            .collect();
        text.push_str(&parts.join("\n"));
        text
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(c, who)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {who}"), "field": c.path}))
        .collect();
    // kube-apiserver's apply conflict names no object in its details: causes only.
    let mut details = Map::new();
    details.insert("causes".into(), Value::Array(causes));
    ApiError {
        code: 409,
        reason: "Conflict".into(),
        message,
        details: Some(details),
    }
}
