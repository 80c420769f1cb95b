//! Create: POST, and the apply that finds nothing. Decoding and admission run outside the store
//! lock; the namespace checks run before admission (as upstream orders them) and again at commit.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::admission::{WriteContext, check_type_meta, field_validation};
use super::{Engine, Outcome, State, Target, WriteOptions, is_deleting, metadata_mut};
use crate::meta;
use crate::registry::Kind;
use crate::ssa;
use crate::status::{ApiError, FieldError};
use crate::store::ObjectKey;

/// How many names a `generateName` create draws before it gives up (E04).
const NAME_ATTEMPTS: u32 = 8;

/// A create request on its way through the pipeline.
struct PreparedCreate {
    object: Value,
    warnings: Vec<String>,
    /// The generateName prefix, when the name is to be generated.
    generate_prefix: Option<String>,
    now: String,
}

impl Engine {
    /// POST: create an object. Admission runs outside the store lock; the namespace checks run
    /// before it (as upstream orders them) and again at commit.
    pub fn create(
        &self,
        target: &Target,
        body: Value,
        options: &WriteOptions,
    ) -> Result<Outcome, ApiError> {
        let prepared = self.prepare_create(target, body)?;
        check_namespace(&self.lock(), target, &prepared)?;
        let admitted = self.admit_create(target, prepared, options, None)?;
        let mut state = self.lock();
        self.commit_create(&mut state, target, admitted, options)
    }

    /// The whole create pipeline under an already held lock (for an apply that creates).
    /// `managed` carries the apply's managedFields.
    pub(super) fn create_locked(
        &self,
        state: &mut State,
        target: &Target,
        body: Value,
        options: &WriteOptions,
        managed: Option<Value>,
    ) -> Result<Outcome, ApiError> {
        let prepared = self.prepare_create(target, body)?;
        check_namespace(state, target, &prepared)?;
        let admitted = self.admit_create(target, prepared, options, managed)?;
        self.commit_create(state, target, admitted, options)
    }

    /// Decoding checks and system fields (no store access).
    fn prepare_create(&self, target: &Target, mut body: Value) -> Result<PreparedCreate, ApiError> {
        let now = self.clock.timestamp();
        check_type_meta(target, &body)?;
        let warnings = meta::normalize(metadata_mut(&mut body));
        let resource = &target.resource;
        let metadata = metadata_mut(&mut body);
        if resource.namespaced {
            let url_namespace = target.namespace.clone().unwrap_or_default();
            if metadata
                .get("namespace")
                .and_then(Value::as_str)
                .is_some_and(|ns| ns != url_namespace)
            {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            metadata.insert("namespace".into(), json!(url_namespace));
        } else {
            metadata.remove("namespace");
        }
        if metadata.contains_key("resourceVersion") {
            return Err(ApiError::internal(
                "",
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let generate_prefix = metadata
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let generated = metadata
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if generated {
            if generate_prefix.is_empty() {
                return Err(ApiError::invalid(
                    &resource.name(),
                    "",
                    &[FieldError::required("metadata.name")
                        .with_detail("name or generateName is required")],
                ));
            }
            // A provisional name, so admission validates what the prefix produces; the commit
            // re-draws it on a collision.
            metadata.insert("name".into(), json!(generate_name(&generate_prefix)));
        }
        metadata.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        metadata.insert("creationTimestamp".into(), json!(now));
        for field in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            metadata.remove(field);
        }
        if resource.kind.has_generation() {
            metadata.insert("generation".into(), json!(1));
        } else {
            metadata.remove("generation");
        }
        // Status is the controllers' to write: a create never sets it (Namespace and CRD
        // statuses are initialised by their own admission).
        if resource.status_subresource
            && !matches!(
                resource.kind,
                Kind::Namespace | Kind::CustomResourceDefinition
            )
            && let Some(object) = body.as_object_mut()
        {
            object.remove("status");
        }
        Ok(PreparedCreate {
            object: body,
            warnings,
            generate_prefix: generated.then_some(generate_prefix),
            now,
        })
    }

    /// Type-specific admission, field validation and managedFields (no store access).
    fn admit_create(
        &self,
        target: &Target,
        prepared: PreparedCreate,
        options: &WriteOptions,
        managed: Option<Value>,
    ) -> Result<PreparedCreate, ApiError> {
        let PreparedCreate {
            object,
            mut warnings,
            generate_prefix,
            now,
        } = prepared;
        let context = WriteContext {
            target,
            options,
            manager: options
                .field_manager
                .clone()
                .unwrap_or_else(|| "unknown".into()),
            now: now.clone(),
        };
        let resource = &target.resource;
        let (mut object, dropped) = self.admit(&context, None, object)?;
        warnings.extend(dropped);
        let warnings = field_validation(&context, warnings)?;
        metadata_mut(&mut object).remove("managedFields");
        match managed {
            Some(managed) => {
                metadata_mut(&mut object).insert("managedFields".into(), managed);
            }
            None => {
                let schema = ssa::management_schema(
                    resource
                        .version(&target.version)
                        .and_then(|v| v.schema.as_ref()),
                );
                let api_version = target.api_version();
                let writer = ssa::Writer {
                    manager: &context.manager,
                    api_version: &api_version,
                    subresource: "",
                    has_status_subresource: resource.status_subresource
                        && resource.kind == Kind::Custom,
                    now: &context.now,
                };
                // kube-apiserver's namespace strategy sets `spec.finalizers` and `status.phase`
                // after the field manager ran: nobody manages them. A CRD's status is reset on
                // create (its strategy's reset fields): its creator never owns it.
                let mut tracked = object.clone();
                if let Some(fields) = tracked.as_object_mut() {
                    match resource.kind {
                        Kind::Namespace => {
                            fields.remove("spec");
                            fields.remove("status");
                        }
                        Kind::CustomResourceDefinition => {
                            fields.remove("status");
                        }
                        _ => {}
                    }
                }
                ssa::record_update(None, &mut tracked, &schema, writer);
                if let Some(managed) = tracked.pointer("/metadata/managedFields").cloned() {
                    metadata_mut(&mut object).insert("managedFields".into(), managed);
                }
            }
        }
        object["apiVersion"] = json!(resource.api_version(&resource.storage_version));
        Ok(PreparedCreate {
            object,
            warnings,
            generate_prefix,
            now,
        })
    }

    /// Steps 9–10: the final checks under the lock, then persist.
    fn commit_create(
        &self,
        state: &mut State,
        target: &Target,
        prepared: PreparedCreate,
        options: &WriteOptions,
    ) -> Result<Outcome, ApiError> {
        check_namespace(state, target, &prepared)?;
        let resource = &target.resource;
        let PreparedCreate {
            mut object,
            warnings,
            generate_prefix,
            ..
        } = prepared;
        let mut name = meta::str_field(&object, "name")
            .unwrap_or_default()
            .to_string();
        if let Some(prefix) = generate_prefix {
            name = self.free_generated_name(state, target, &prefix, name)?;
            metadata_mut(&mut object).insert("name".into(), json!(name));
        } else if let Some(existing) = state.store.get(&target.key(&name)) {
            return Err(ApiError::already_exists(
                &resource.name(),
                &name,
                is_deleting(existing),
            ));
        }
        if options.dry_run {
            return Ok(Outcome {
                code: 201,
                body: Engine::present(resource, &target.version, &object),
                warnings,
            });
        }
        let object = crate::events::to_storage(resource, object);
        let stored = state.store.create(target.key(&name), object);
        Ok(Outcome {
            code: 201,
            body: Engine::present(resource, &target.version, &stored),
            warnings,
        })
    }

    /// The provisional generated name, or fresh draws while it is taken; E04 after
    /// [`NAME_ATTEMPTS`] draws.
    fn free_generated_name(
        &self,
        state: &State,
        target: &Target,
        prefix: &str,
        mut name: String,
    ) -> Result<String, ApiError> {
        let mut attempts = 0;
        loop {
            let forced = self.take_forced_collision();
            if !forced && state.store.get(&target.key(&name)).is_none() {
                return Ok(name);
            }
            attempts += 1;
            if attempts >= NAME_ATTEMPTS {
                return Err(ApiError::generate_name_exhausted(
                    &target.resource.name(),
                    prefix,
                ));
            }
            name = generate_name(prefix);
        }
    }

    /// Fault injection for tests (T34): the next `collisions` generated names count as taken,
    /// so the retries and their exhaustion (E04) can be exercised.
    pub fn force_name_collisions(&self, collisions: u32) {
        self.forced_name_collisions
            .store(collisions, Ordering::Relaxed);
    }

    /// Consumes one forced collision, if any is left.
    fn take_forced_collision(&self) -> bool {
        self.forced_name_collisions
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// Step 3 of the create pipeline: the namespace must exist and not be terminating, and the
/// CRD of a custom resource must not be terminating (E22, E23, E25).
fn check_namespace(
    state: &State,
    target: &Target,
    prepared: &PreparedCreate,
) -> Result<(), ApiError> {
    let resource = &target.resource;
    let name = match &prepared.generate_prefix {
        Some(prefix) => prefix.as_str(),
        None => meta::str_field(&prepared.object, "name").unwrap_or_default(),
    };
    if resource.namespaced {
        let namespace = meta::str_field(&prepared.object, "namespace").unwrap_or_default();
        match state
            .store
            .get(&ObjectKey::new("", "namespaces", "", namespace))
        {
            None => return Err(ApiError::namespace_not_found(namespace)),
            Some(ns) if is_deleting(ns) => {
                return Err(ApiError::namespace_terminating(
                    &resource.name(),
                    name,
                    namespace,
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(crd) = resource.crd_name.as_deref() {
        let key = ObjectKey::new("apiextensions.k8s.io", "customresourcedefinitions", "", crd);
        if state.store.get(&key).is_some_and(is_deleting) {
            return Err(ApiError::new(
                405,
                "MethodNotAllowed",
                "create not allowed while custom resource definition is terminating",
            ));
        }
    }
    Ok(())
}

fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let prefix: String = prefix.chars().take(58).collect();
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let suffix: String = bytes
        .iter()
        .take(5)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("{prefix}{suffix}")
}
