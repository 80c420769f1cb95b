//! Delete: DELETE of one object and of a collection. Finalizers and propagation policies turn a
//! DELETE into a deletion mark; only an object with nothing left to finalize is removed at once.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{
    CRD_CLEANUP_FINALIZER, DeleteOptions, Engine, ListOptions, Outcome, State, Target, is_deleting,
    metadata_mut,
};
use crate::meta;
use crate::registry::{Kind, ResourceType};
use crate::status::{ApiError, FieldError, FieldErrorKind, go_quote};
use crate::store::ObjectKey;

impl Engine {
    /// DELETE of one object.
    pub fn delete(&self, target: &Target, options: &DeleteOptions) -> Result<Outcome, ApiError> {
        let mut state = self.lock();
        let name = target.name.clone().unwrap_or_default();
        let key = target.key(&name);
        self.delete_locked(&mut state, target, &key, options)
    }

    /// A DELETE under an already held lock (for collections and the built-in controllers).
    pub(super) fn delete_locked(
        &self,
        state: &mut State,
        target: &Target,
        key: &ObjectKey,
        options: &DeleteOptions,
    ) -> Result<Outcome, ApiError> {
        let resource = &target.resource;
        let name = key.name.as_str();
        // Options are validated before the object is looked up (a 422 even for a missing one).
        check_propagation(options)?;
        let old = state
            .store
            .get(key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&resource.name(), name))?;
        refuse_system_namespace(resource, name)?;
        check_preconditions(resource, name, &old, options)?;
        let finalizers = finalizers_after_delete(resource, &old, options);
        if finalizers.is_empty() && !namespace_finalizers_pending(resource, &old) {
            return Ok(remove_now(state, target, key, old, options));
        }
        let new = self.mark_deleting(resource, &old, &finalizers);
        if options.dry_run || new == old {
            return Ok(Outcome {
                code: 200,
                body: Self::present(resource, &target.version, &new),
                warnings: Vec::new(),
            });
        }
        let stored = state.store.update(key.clone(), new);
        Ok(Outcome {
            code: 200,
            body: Self::present(resource, &target.version, &stored),
            warnings: Vec::new(),
        })
    }

    /// The object with its deletion mark: finalizers as computed, deletionTimestamp and the
    /// generation bump the first time, namespace and CRD terminating states.
    fn mark_deleting(&self, resource: &ResourceType, old: &Value, finalizers: &[String]) -> Value {
        let mut new = old.clone();
        {
            let now = self.clock.timestamp();
            let deleting = is_deleting(old);
            let metadata = metadata_mut(&mut new);
            if finalizers.is_empty() {
                metadata.remove("finalizers");
            } else {
                metadata.insert("finalizers".into(), json!(finalizers));
            }
            if !deleting {
                metadata.insert("deletionTimestamp".into(), json!(now));
                // kube-apiserver's namespace storage sets only the timestamp.
                if resource.kind != Kind::Namespace {
                    metadata.insert("deletionGracePeriodSeconds".into(), json!(0));
                }
                if let Some(generation) = metadata.get("generation").and_then(Value::as_i64) {
                    metadata.insert("generation".into(), json!(generation + 1));
                }
            }
        }
        if resource.kind == Kind::Namespace {
            new["status"] = json!({"phase": "Terminating"});
        }
        if resource.kind == Kind::CustomResourceDefinition && !is_deleting(old) {
            crate::crd::set_terminating(&mut new, &self.clock.timestamp());
        }
        new
    }

    /// DELETE of a collection: each matching object is deleted as by a single DELETE; the answer
    /// lists the deleted objects as they were before ([API-06]).
    pub fn delete_collection(
        &self,
        target: &Target,
        list: &ListOptions,
        options: &DeleteOptions,
    ) -> Result<Outcome, ApiError> {
        let matching = self.list(
            target,
            &ListOptions {
                limit: None,
                continue_token: None,
                ..list.clone()
            },
        )?;
        let mut state = self.lock();
        let mut items = Vec::new();
        for item in matching["items"].as_array().cloned().unwrap_or_default() {
            let name = meta::str_field(&item, "name")
                .unwrap_or_default()
                .to_string();
            let namespace = meta::str_field(&item, "namespace")
                .unwrap_or_default()
                .to_string();
            let item_target = Target {
                name: Some(name.clone()),
                namespace: Some(namespace),
                ..target.clone()
            };
            let key = item_target.key(&name);
            // kube-apiserver answers with the objects as listed before the deletes, not the
            // per-object Status each single DELETE returns.
            match self.delete_locked(&mut state, &item_target, &key, options) {
                Ok(_) => items.push(item),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let rv = state.store.resource_version().to_string();
        let mut list_meta = json!({"resourceVersion": rv});
        if target.resource.kind == Kind::Custom {
            // kube-apiserver's answer for custom resources (an unstructured list) carries an
            // empty `continue` (the differential suite's `del-shapes`); a typed list of a
            // built-in kind omits the empty field.
            list_meta["continue"] = json!("");
        }
        Ok(Outcome {
            code: 200,
            body: json!({"apiVersion": target.api_version(), "kind": target.resource.list_kind, "metadata": list_meta, "items": items}),
            warnings: Vec::new(),
        })
    }
}

/// `default`, `kube-system` and `kube-public` may not be deleted.
fn refuse_system_namespace(resource: &ResourceType, name: &str) -> Result<(), ApiError> {
    if resource.kind == Kind::Namespace && matches!(name, "default" | "kube-system" | "kube-public")
    {
        let mut details = serde_json::Map::new();
        details.insert("name".into(), json!(name));
        details.insert("kind".into(), json!("namespaces"));
        return Err(ApiError::forbidden(
            format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
            Some(details),
        ));
    }
    Ok(())
}

/// A propagation policy must be a known one, and not come with `orphanDependents`: errors of
/// the request's DeleteOptions, as kube-apiserver words them.
fn check_propagation(options: &DeleteOptions) -> Result<(), ApiError> {
    let Some(policy) = &options.propagation_policy else {
        return Ok(());
    };
    if !matches!(policy.as_str(), "Foreground" | "Background" | "Orphan") {
        return Err(ApiError::invalid_options(
            "DeleteOptions",
            &FieldError::new(
                "propagationPolicy",
                FieldErrorKind::NotSupported,
                Some(go_quote(policy)),
                "supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"",
            ),
        ));
    }
    if options.orphan_dependents.is_some() {
        return Err(ApiError::invalid_options(
            "DeleteOptions",
            &FieldError::invalid(
                "propagationPolicy",
                &json!(""),
                "orphanDependents and deletionPropagation cannot be both set",
            ),
        ));
    }
    Ok(())
}

/// The uid and resourceVersion preconditions of the request.
fn check_preconditions(
    resource: &ResourceType,
    name: &str,
    old: &Value,
    options: &DeleteOptions,
) -> Result<(), ApiError> {
    let old_uid = meta::str_field(old, "uid").unwrap_or_default();
    if let Some(uid) = &options.precondition_uid
        && uid != old_uid
    {
        return Err(ApiError::delete_precondition(
            &resource.name(),
            name,
            &format!(
                "the UID in the precondition ({uid}) does not match the UID in record ({old_uid}). The object might have been deleted and then recreated"
            ),
        ));
    }
    let old_rv = meta::str_field(old, "resourceVersion").unwrap_or_default();
    if let Some(rv) = &options.precondition_resource_version
        && rv != old_rv
    {
        return Err(ApiError::delete_precondition(
            &resource.name(),
            name,
            &format!(
                "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({old_rv}). The object might have been modified"
            ),
        ));
    }
    Ok(())
}

/// The finalizers the object carries after the DELETE: the propagation policy's
/// (`foregroundDeletion` or `orphan`) and, for a CRD, the instance cleanup.
fn finalizers_after_delete(
    resource: &ResourceType,
    old: &Value,
    options: &DeleteOptions,
) -> Vec<String> {
    let mut finalizers = meta::finalizers(old);
    let policy = options
        .propagation_policy
        .clone()
        .or_else(|| match options.orphan_dependents {
            Some(true) => Some("Orphan".into()),
            Some(false) => Some("Background".into()),
            None => None,
        });
    match policy.as_deref() {
        Some("Foreground") => {
            finalizers.retain(|f| f != "orphan");
            if !finalizers.iter().any(|f| f == "foregroundDeletion") {
                finalizers.push("foregroundDeletion".into());
            }
        }
        Some("Orphan") => {
            finalizers.retain(|f| f != "foregroundDeletion");
            if !finalizers.iter().any(|f| f == "orphan") {
                finalizers.push("orphan".into());
            }
        }
        Some(_) => finalizers.retain(|f| f != "orphan" && f != "foregroundDeletion"),
        None => {}
    }
    if resource.kind == Kind::CustomResourceDefinition
        && !is_deleting(old)
        && !finalizers.iter().any(|f| f == CRD_CLEANUP_FINALIZER)
    {
        finalizers.push(CRD_CLEANUP_FINALIZER.into());
    }
    finalizers
}

/// A namespace with `spec.finalizers` left waits for the namespace controller.
fn namespace_finalizers_pending(resource: &ResourceType, old: &Value) -> bool {
    resource.kind == Kind::Namespace
        && old
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
}

/// Removes an object with nothing left to finalize (or answers as if, for a dry run).
fn remove_now(
    state: &mut State,
    target: &Target,
    key: &ObjectKey,
    old: Value,
    options: &DeleteOptions,
) -> Outcome {
    let resource = &target.resource;
    let name = key.name.as_str();
    if options.dry_run {
        let old_uid = meta::str_field(&old, "uid").unwrap_or_default();
        return Outcome {
            code: 200,
            body: delete_success(resource, name, old_uid),
            warnings: Vec::new(),
        };
    }
    let last = state.store.delete(key).unwrap_or_else(|| Arc::new(old));
    let body = if resource.kind.delete_returns_object() {
        Engine::present(resource, &target.version, &last)
    } else {
        delete_success(
            resource,
            name,
            meta::str_field(&last, "uid").unwrap_or_default(),
        )
    };
    Outcome {
        code: 200,
        body,
        warnings: Vec::new(),
    }
}

fn delete_success(resource: &ResourceType, name: &str, uid: &str) -> Value {
    let mut details = json!({"name": name, "kind": resource.plural, "uid": uid});
    if !resource.group.is_empty() {
        details["group"] = json!(resource.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}
