//! The request engine: every verb's storage semantics (create, update, patch, apply, delete),
//! run atomically against the locked registry and store.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::clock::Clock;
use crate::meta;
use crate::patch::{self, PatchError};
use crate::registry::{Kind, Registry, ResourceType};
use crate::schema;
use crate::selector::{FieldSelector, LabelSelector, labels_of};
use crate::ssa;
use crate::status::{ApiError, FieldError};
use crate::store::{ObjectKey, Store};

/// The finalizer a CRD carries while its custom resources are being removed.
pub const CRD_CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// How unknown and duplicate fields are reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Strict,
    #[default]
    Warn,
    Ignore,
}

/// Options of a write request.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    pub field_validation: FieldValidation,
    pub force: Option<bool>,
    /// Keys the request body repeats (reported like unknown fields).
    pub duplicate_fields: Vec<String>,
}

/// The kinds of PATCH.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

/// Options of a DELETE.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeleteOptions {
    pub propagation_policy: Option<String>,
    pub orphan_dependents: Option<bool>,
    pub dry_run: bool,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
}

/// A successful response: status code, body and `Warning` headers.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub code: u16,
    pub body: Value,
    pub warnings: Vec<String>,
}

/// Which resource, which version, where.
#[derive(Clone, Debug)]
pub struct Target {
    pub resource: Arc<ResourceType>,
    pub version: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

impl Target {
    /// The target of a stored object, addressed through the storage version.
    pub fn storage(resource: &Arc<ResourceType>, key: &ObjectKey) -> Self {
        Target {
            resource: resource.clone(),
            version: resource.storage_version.clone(),
            namespace: Some(key.namespace.clone()),
            name: Some(key.name.clone()),
            subresource: None,
        }
    }

    fn key(&self, name: &str) -> ObjectKey {
        let namespace = if self.resource.namespaced {
            self.namespace.clone().unwrap_or_default()
        } else {
            String::new()
        };
        ObjectKey::new(
            &self.resource.group,
            &self.resource.plural,
            &namespace,
            name,
        )
    }

    fn subresource(&self) -> &str {
        self.subresource.as_deref().unwrap_or("")
    }

    fn api_version(&self) -> String {
        self.resource.api_version(&self.version)
    }
}

/// Registry and store, changed together under one lock.
#[derive(Debug)]
pub struct State {
    pub registry: Registry,
    pub store: Store,
    /// Test hook: the next n generated names collide.
    pub forced_name_collisions: u32,
}

/// The server's engine.
#[derive(Debug)]
pub struct Engine {
    state: Mutex<State>,
    pub clock: Clock,
    /// The next Service cluster IP, as an offset into 10.96.0.0/12.
    next_cluster_ip: std::sync::atomic::AtomicU32,
}

fn lock(mutex: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave the store half-written: every write builds the
    // new object first and commits with one call.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Rewrites whole floats as integers (`1.0` → `1`), as the Go decoder's output does.
pub fn normalize_numbers(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                #[allow(clippy::cast_possible_truncation)]
                let i = f as i64;
                *value = Value::from(i);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_numbers),
        Value::Object(map) => map.values_mut().for_each(normalize_numbers),
        _ => {}
    }
}

fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    match object.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable!("metadata was just made an object"),
    }
}

fn is_deleting(object: &Value) -> bool {
    object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// Fields removed by a typed round trip (unknown to the built-in type).
fn dropped_fields(input: &Value, output: &Value, path: &str, out: &mut Vec<String>) {
    let (Value::Object(i), Value::Object(o)) = (input, output) else {
        return;
    };
    for (key, value) in i {
        let child = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        match o.get(key) {
            Some(kept) => dropped_fields(value, kept, &child, out),
            None => {
                let empty = value.is_null()
                    || value.as_object().is_some_and(Map::is_empty)
                    || value.as_array().is_some_and(Vec::is_empty);
                if !empty {
                    out.push(child);
                }
            }
        }
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(
    object: &Value,
    kind: &str,
    version: &str,
) -> Result<Value, ApiError> {
    let typed: T = serde_json::from_value(object.clone()).map_err(|e| {
        ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {e}"
        ))
    })?;
    serde_json::to_value(typed).map_err(|e| ApiError::internal("InternalError", e.to_string()))
}

/// Decodes a built-in object through its k8s-openapi type: unknown fields are dropped and
/// returned.
fn typed_builtin(
    resource: &ResourceType,
    version: &str,
    object: &Value,
) -> Result<(Value, Vec<String>), ApiError> {
    use k8s_openapi::api::{apps, batch, coordination, core, events, rbac};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let kind = resource.kind_name.as_str();
    let out = match (resource.kind, resource.group.as_str()) {
        (Kind::Namespace, _) => round_trip::<core::v1::Namespace>(object, kind, version)?,
        (Kind::ConfigMap, _) => round_trip::<core::v1::ConfigMap>(object, kind, version)?,
        (Kind::Secret, _) => round_trip::<core::v1::Secret>(object, kind, version)?,
        (Kind::Event, "") => round_trip::<core::v1::Event>(object, kind, version)?,
        (Kind::Event, _) => round_trip::<events::v1::Event>(object, kind, version)?,
        (Kind::Lease, _) => round_trip::<coordination::v1::Lease>(object, kind, version)?,
        (Kind::Deployment, _) => round_trip::<apps::v1::Deployment>(object, kind, version)?,
        (Kind::StatefulSet, _) => round_trip::<apps::v1::StatefulSet>(object, kind, version)?,
        (Kind::ReplicaSet, _) => round_trip::<apps::v1::ReplicaSet>(object, kind, version)?,
        (Kind::Job, _) => round_trip::<batch::v1::Job>(object, kind, version)?,
        (Kind::Service, _) => round_trip::<core::v1::Service>(object, kind, version)?,
        (Kind::ServiceAccount, _) => round_trip::<core::v1::ServiceAccount>(object, kind, version)?,
        (Kind::DaemonSet, _) => round_trip::<apps::v1::DaemonSet>(object, kind, version)?,
        (Kind::PodTemplate, _) => round_trip::<core::v1::PodTemplate>(object, kind, version)?,
        (Kind::Role, _) => round_trip::<rbac::v1::Role>(object, kind, version)?,
        (Kind::ClusterRole, _) => round_trip::<rbac::v1::ClusterRole>(object, kind, version)?,
        (Kind::RoleBinding, _) => round_trip::<rbac::v1::RoleBinding>(object, kind, version)?,
        (Kind::ClusterRoleBinding, _) => {
            round_trip::<rbac::v1::ClusterRoleBinding>(object, kind, version)?
        }
        (Kind::CustomResourceDefinition, _) => {
            round_trip::<CustomResourceDefinition>(object, kind, version)?
        }
        (Kind::Custom, _) => return Ok((object.clone(), Vec::new())),
    };
    let mut dropped = Vec::new();
    dropped_fields(object, &out, "", &mut dropped);
    let mut out = out;
    normalize_numbers(&mut out);
    Ok((out, dropped))
}

/// What the write pipeline needs to know about the request.
struct WriteContext<'a> {
    target: &'a Target,
    options: &'a WriteOptions,
    manager: String,
    now: String,
}

impl<'a> WriteContext<'a> {
    fn new(
        target: &'a Target,
        options: &'a WriteOptions,
        default_manager: &str,
        now: String,
    ) -> Self {
        let manager = options
            .field_manager
            .clone()
            .unwrap_or_else(|| default_manager.to_string());
        Self {
            target,
            options,
            manager,
            now,
        }
    }
}

impl Engine {
    pub fn new(clock: Clock, history: usize) -> Self {
        let mut state = State {
            registry: Registry::with_builtins(),
            store: Store::new(history),
            forced_name_collisions: 0,
        };
        let now = clock.timestamp();
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let namespace = json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "uid": uuid::Uuid::new_v4().to_string(), "creationTimestamp": now,
                             "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"}
            });
            state
                .store
                .create(ObjectKey::new("", "namespaces", "", name), namespace);
        }
        Self {
            state: Mutex::new(state),
            clock,
            // 10.96.0.1 is the `kubernetes` Service's in a real cluster.
            next_cluster_ip: std::sync::atomic::AtomicU32::new(2),
        }
    }

    /// Service admission, the one piece of built-in defaulting schema-only kinds get: a cluster
    /// IP is allocated at create (unless the Service is headless or an ExternalName) and may
    /// not change afterwards.
    fn service_ip(&self, old: Option<&Value>, object: &mut Value) -> Vec<FieldError> {
        let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
            return Vec::new();
        };
        if spec.get("type").and_then(Value::as_str) == Some("ExternalName") {
            return Vec::new();
        }
        let requested = spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .filter(|ip| !ip.is_empty())
            .map(str::to_string);
        let previous = old
            .and_then(|o| o.pointer("/spec/clusterIP"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let ip = match (previous, requested) {
            (Some(previous), Some(requested)) if previous != requested => {
                return vec![FieldError::invalid(
                    "spec.clusterIPs[0]",
                    &json!([requested]),
                    "may not change once set",
                )];
            }
            (Some(previous), _) => previous,
            (None, Some(requested)) => requested,
            (None, None) => {
                let n = self
                    .next_cluster_ip
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                format!(
                    "10.{}.{}.{}",
                    96 + (n >> 16 & 0x0f),
                    n >> 8 & 0xff,
                    n & 0xff
                )
            }
        };
        spec.insert("clusterIP".into(), json!(ip));
        spec.insert("clusterIPs".into(), json!([ip]));
        Vec::new()
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The object as a client of `version` sees it: apiVersion rewritten, schema defaults
    /// applied on read.
    pub fn present(resource: &ResourceType, version: &str, object: &Value) -> Value {
        let mut out = object.clone();
        out["apiVersion"] = json!(resource.api_version(version));
        if let Some(schema) = resource.version(version).and_then(|v| v.schema.as_ref()) {
            schema::default_and_drop_nulls(&mut out, schema);
        }
        out
    }

    pub fn get(&self, target: &Target) -> Result<Value, ApiError> {
        let state = self.lock();
        let name = target.name.as_deref().unwrap_or_default();
        let object = state
            .store
            .get(&target.key(name))
            .ok_or_else(|| ApiError::not_found(&target.resource.name(), name))?;
        Ok(Self::present(&target.resource, &target.version, object))
    }

    /// A list of the objects matching the selectors, paginated with `limit`/`continue`.
    pub fn list(&self, target: &Target, options: &ListOptions) -> Result<Value, ApiError> {
        let state = self.lock();
        let current = state.store.resource_version();
        let (start_after, snapshot_rv) = match &options.continue_token {
            Some(token) => decode_continue(token)?,
            None => (String::new(), current),
        };
        let labels = LabelSelector::parse(options.label_selector.as_deref().unwrap_or(""))?;
        let fields = parse_field_selector(
            &target.resource,
            options.field_selector.as_deref().unwrap_or(""),
        )?;
        let namespace = if target.resource.namespaced {
            target.namespace.as_deref()
        } else {
            None
        };
        let limit = if options.resource_version.as_deref() == Some("0") {
            None
        } else {
            options.limit.filter(|l| *l > 0)
        };
        let mut items = Vec::new();
        let mut remaining = 0u64;
        let mut next = None;
        for (key, object) in
            state
                .store
                .list(&target.resource.group, &target.resource.plural, namespace)
        {
            let position = format!("{}/{}", key.namespace, key.name);
            if !start_after.is_empty() && position <= start_after {
                continue;
            }
            if !labels.matches(&labels_of(object))
                || !fields.matches(&|f| field_value(&target.resource, object, f))
            {
                continue;
            }
            if let Some(limit) = limit {
                if items.len() as u64 >= limit {
                    remaining += 1;
                    continue;
                }
                if items.len() as u64 + 1 == limit {
                    next = Some(position.clone());
                }
            }
            items.push(Self::present(&target.resource, &target.version, object));
        }
        let mut metadata = json!({"resourceVersion": snapshot_rv.to_string()});
        if remaining > 0
            && let Some(position) = next
        {
            metadata["continue"] = json!(encode_continue(&position, snapshot_rv));
            metadata["remainingItemCount"] = json!(remaining);
        }
        Ok(json!({
            "apiVersion": target.api_version(),
            "kind": target.resource.list_kind,
            "metadata": metadata,
            "items": items,
        }))
    }

    /// POST: create an object.
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
        commit_create(&mut state, target, admitted, options)
    }

    /// The whole create pipeline under an already held lock (for an apply that creates).
    /// `managed` carries the apply's managedFields.
    fn create_locked(
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
        commit_create(state, target, admitted, options)
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
                ssa::record_update(None, &mut object, &schema, writer);
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

    /// Type-specific admission: defaults, the custom-resource schema pipeline, validation.
    /// Returns the object and the fields dropped as unknown.
    fn admit(
        &self,
        context: &WriteContext<'_>,
        old: Option<&Value>,
        mut object: Value,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let target = context.target;
        let resource = &target.resource;
        let name = meta::str_field(&object, "name")
            .unwrap_or_default()
            .to_string();
        normalize_numbers(&mut object);
        let (mut object, mut dropped) = typed_builtin(resource, &target.version, &object)?;
        let mut errors = Vec::new();
        match resource.kind {
            Kind::Custom => {
                if let Some(schema) = resource
                    .version(&target.version)
                    .and_then(|v| v.schema.as_ref())
                {
                    let only_status = target.subresource() == "status";
                    let old_presented = old.map(|o| Self::present(resource, &target.version, o));
                    let (pruned, schema_errors) =
                        schema::admit(&mut object, schema, old_presented.as_ref(), only_status);
                    dropped.extend(pruned);
                    errors.extend(schema_errors);
                }
            }
            Kind::Namespace => {
                let metadata = metadata_mut(&mut object);
                let labels = metadata.entry("labels").or_insert_with(|| json!({}));
                labels["kubernetes.io/metadata.name"] = json!(name);
                if old.is_none() {
                    if object.pointer("/spec/finalizers").is_none() {
                        object["spec"] = json!({"finalizers": ["kubernetes"]});
                    }
                    object["status"] = json!({"phase": "Active"});
                }
            }
            Kind::Secret => {
                if object
                    .get("type")
                    .is_none_or(|t| t.is_null() || t.as_str() == Some(""))
                {
                    object["type"] = json!("Opaque");
                }
                if let Some(Value::Object(string_data)) =
                    object.as_object_mut().and_then(|o| o.remove("stringData"))
                {
                    let data = object
                        .as_object_mut()
                        .map(|o| o.entry("data").or_insert_with(|| json!({})));
                    if let Some(Value::Object(data)) = data {
                        for (k, v) in string_data {
                            let encoded = base64::engine::general_purpose::STANDARD
                                .encode(v.as_str().unwrap_or_default());
                            data.insert(k, json!(encoded));
                        }
                    }
                }
                errors.extend(validate_data_keys(&object));
                errors.extend(immutable_data(old, &object));
            }
            Kind::ConfigMap => {
                errors.extend(validate_data_keys(&object));
                errors.extend(immutable_data(old, &object));
            }
            Kind::CustomResourceDefinition => errors.extend(crate::crd::validate(&object)),
            Kind::Service => errors.extend(self.service_ip(old, &mut object)),
            Kind::Event
            | Kind::Lease
            | Kind::Job
            | Kind::ServiceAccount
            | Kind::Deployment
            | Kind::StatefulSet
            | Kind::ReplicaSet
            | Kind::DaemonSet
            | Kind::PodTemplate
            | Kind::Role
            | Kind::ClusterRole
            | Kind::RoleBinding
            | Kind::ClusterRoleBinding => {}
        }
        if let Some(metadata) = object.get("metadata").and_then(Value::as_object) {
            let label_only = resource.kind == Kind::Namespace;
            if old.is_none() && !name.is_empty() {
                errors.extend(meta::validate_name(&name, label_only));
            }
            errors.extend(meta::validate(metadata));
        }
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta::normalize(metadata);
        }
        if !errors.is_empty() {
            return Err(ApiError::invalid(&resource.name(), &name, &errors));
        }
        Ok((object, dropped))
    }

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
                return Err(ApiError::invalid_message(format!(
                    "{} \"{name}\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                    target.resource.name().resource()
                )));
            }
        } else if body_rv != old_rv {
            return Err(ApiError::conflict(&target.resource.name(), &name));
        }
        let context = WriteContext::new(target, options, "unknown", self.clock.timestamp());
        self.write_update(&mut state, &context, &key, &old, body, None)
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
            return Err(ApiError::invalid_message(
                "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch",
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
        let context = WriteContext::new(target, options, "unknown", self.clock.timestamp());
        self.write_update(&mut state, &context, &key, &old, patched, None)
    }

    fn apply(
        &self,
        target: &Target,
        key: &ObjectKey,
        applied: Value,
        options: &WriteOptions,
    ) -> Result<Outcome, ApiError> {
        let Some(manager) = options.field_manager.clone().filter(|m| !m.is_empty()) else {
            return Err(ApiError::invalid_message(
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
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
        check_type_meta(target, &applied)?;
        if let Some(body_name) = meta::str_field(&applied, "name")
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if applied.pointer("/metadata/managedFields").is_some() {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        let resource = &target.resource;
        let has_status = resource.status_subresource;
        let subresource = target.subresource().to_string();
        let mut applied = applied;
        normalize_numbers(&mut applied);
        // Reset fields: the main resource never owns status, /status never owns anything else.
        if has_status && let Some(object) = applied.as_object_mut() {
            if subresource == "status" {
                object.retain(|k, _| {
                    matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status")
                });
            } else {
                object.remove("status");
            }
        }
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
            subresource: &subresource,
            has_status_subresource: has_status,
            now: &now,
        };
        let merged = ssa::apply(live.as_ref(), &applied, &schema_value, writer, force)
            .map_err(|conflicts| conflict_error(resource, &name, &conflicts))?;
        let context = WriteContext {
            target,
            options,
            manager,
            now,
        };
        match old {
            Some(old) => self.write_update(&mut state, &context, key, &old, merged, Some(())),
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

    /// The shared update pipeline of PUT, PATCH and apply. `applied` marks an apply (managed
    /// fields already computed).
    fn write_update(
        &self,
        state: &mut State,
        context: &WriteContext<'_>,
        key: &ObjectKey,
        old: &Value,
        mut new: Value,
        applied: Option<()>,
    ) -> Result<Outcome, ApiError> {
        let target = context.target;
        let resource = &target.resource;
        let name = key.name.clone();
        let subresource = target.subresource().to_string();
        let mut warnings = Vec::new();
        {
            let metadata = metadata_mut(&mut new);
            warnings.extend(meta::normalize(metadata));
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
                    &name,
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
                    &name,
                    &[FieldError::invalid(
                        "metadata.deletionTimestamp",
                        &value,
                        "field is immutable",
                    )],
                ));
            }
            // System fields come from the stored object.
            for field in [
                "name",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
            ] {
                match old.pointer(&format!("/metadata/{field}")) {
                    Some(v) => {
                        metadata.insert(field.into(), v.clone());
                    }
                    None => {
                        metadata.remove(field);
                    }
                }
            }
            if applied.is_none()
                && !metadata.contains_key("managedFields")
                && let Some(managed) = old.pointer("/metadata/managedFields")
            {
                metadata.insert("managedFields".into(), managed.clone());
            }
        }
        // Status isolation.
        let has_status = resource.status_subresource;
        if has_status {
            if subresource == "status" {
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
                new = rebuilt;
            } else {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(o) = new.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
        }
        let (mut new, dropped) = self.admit(context, Some(old), new)?;
        warnings.extend(dropped);
        let warnings = field_validation(context, warnings)?;
        // Finalizers may not be added while deleting.
        if is_deleting(old) {
            let before = meta::finalizers(old);
            let added: Vec<String> = meta::finalizers(&new)
                .into_iter()
                .filter(|f| !before.contains(f))
                .collect();
            if !added.is_empty() {
                let list: Vec<String> = added.iter().map(|f| format!("\"{f}\"")).collect();
                return Err(ApiError::invalid(
                    &resource.name(),
                    &name,
                    &[FieldError::forbidden(
                        "metadata.finalizers",
                        format!(
                            "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                            list.join(", ")
                        ),
                    )],
                ));
            }
        }
        // Generation.
        if resource.kind.has_generation() {
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
            let bump = subresource != "status" && strip(old) != strip(&new);
            metadata_mut(&mut new).insert(
                "generation".into(),
                json!(if bump { generation + 1 } else { generation }),
            );
        }
        if applied.is_none() {
            let schema = ssa::management_schema(
                resource
                    .version(&target.version)
                    .and_then(|v| v.schema.as_ref()),
            );
            let old_presented = Self::present(resource, &target.version, old);
            let api_version = target.api_version();
            let writer = ssa::Writer {
                manager: &context.manager,
                api_version: &api_version,
                subresource: &subresource,
                has_status_subresource: has_status,
                now: &context.now,
            };
            ssa::record_update(Some(&old_presented), &mut new, &schema, writer);
        }
        new["apiVersion"] = json!(resource.api_version(&resource.storage_version));
        if let Some(metadata) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert(
                "resourceVersion".into(),
                old.pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or(Value::Null),
            );
        }
        // No-op: nothing but managedFields timestamps changed.
        if without_managed_times(&new) == without_managed_times(old) {
            return Ok(Outcome {
                code: 200,
                body: Self::present(resource, &target.version, old),
                warnings,
            });
        }
        if context.options.dry_run {
            return Ok(Outcome {
                code: 200,
                body: Self::present(resource, &target.version, &new),
                warnings,
            });
        }
        // Removing the last finalizer of a deleting object deletes it.
        if is_deleting(&new)
            && meta::finalizers(&new).is_empty()
            && namespace_finalizers_empty(resource, &new)
        {
            state.store.delete(key);
            return Ok(Outcome {
                code: 200,
                body: Self::present(resource, &target.version, &new),
                warnings,
            });
        }
        let stored = state.store.update(key.clone(), new);
        Ok(Outcome {
            code: 200,
            body: Self::present(resource, &target.version, &stored),
            warnings,
        })
    }

    /// DELETE of one object.
    pub fn delete(&self, target: &Target, options: &DeleteOptions) -> Result<Outcome, ApiError> {
        let mut state = self.lock();
        let name = target.name.clone().unwrap_or_default();
        let key = target.key(&name);
        self.delete_locked(&mut state, target, &key, options)
    }

    pub(crate) fn delete_locked(
        &self,
        state: &mut State,
        target: &Target,
        key: &ObjectKey,
        options: &DeleteOptions,
    ) -> Result<Outcome, ApiError> {
        let resource = &target.resource;
        let name = key.name.clone();
        let old = state
            .store
            .get(key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&resource.name(), &name))?;
        if resource.kind == Kind::Namespace
            && matches!(name.as_str(), "default" | "kube-system" | "kube-public")
        {
            return Err(ApiError::forbidden(
                format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
                None,
            ));
        }
        if let Some(policy) = &options.propagation_policy {
            if !matches!(policy.as_str(), "Foreground" | "Background" | "Orphan") {
                return Err(ApiError::invalid(
                    &resource.name(),
                    &name,
                    &[FieldError::new(
                        "propagationPolicy",
                        crate::status::FieldErrorKind::NotSupported,
                        Some(crate::status::go_quote(policy)),
                        "supported values: \"Foreground\", \"Background\", \"Orphan\"",
                    )],
                ));
            }
            if options.orphan_dependents.is_some() {
                return Err(ApiError::invalid_message(
                    "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Invalid value: \"\": orphanDependents and deletionPropagation cannot be both set",
                ));
            }
        }
        let old_uid = meta::str_field(&old, "uid").unwrap_or_default();
        if let Some(uid) = &options.precondition_uid
            && uid != old_uid
        {
            return Err(ApiError::delete_precondition(
                &resource.name(),
                &name,
                &format!(
                    "the UID in the precondition ({uid}) does not match the UID in record ({old_uid}). The object might have been deleted and then recreated"
                ),
            ));
        }
        let old_rv = meta::str_field(&old, "resourceVersion").unwrap_or_default();
        if let Some(rv) = &options.precondition_resource_version
            && rv != old_rv
        {
            return Err(ApiError::delete_precondition(
                &resource.name(),
                &name,
                &format!(
                    "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({old_rv}). The object might have been modified"
                ),
            ));
        }
        let mut finalizers = meta::finalizers(&old);
        let policy =
            options
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
            && !is_deleting(&old)
            && !finalizers.iter().any(|f| f == CRD_CLEANUP_FINALIZER)
        {
            finalizers.push(CRD_CLEANUP_FINALIZER.into());
        }
        let namespace_pending = resource.kind == Kind::Namespace
            && old
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
        if finalizers.is_empty() && !namespace_pending {
            if options.dry_run {
                return Ok(Outcome {
                    code: 200,
                    body: delete_success(resource, &name, old_uid),
                    warnings: Vec::new(),
                });
            }
            let last = state
                .store
                .delete(key)
                .unwrap_or_else(|| std::sync::Arc::new(old));
            let body = if resource.kind.delete_returns_object() {
                Self::present(resource, &target.version, &last)
            } else {
                delete_success(
                    resource,
                    &name,
                    meta::str_field(&last, "uid").unwrap_or_default(),
                )
            };
            return Ok(Outcome {
                code: 200,
                body,
                warnings: Vec::new(),
            });
        }
        let mut new = old.clone();
        {
            let now = self.clock.timestamp();
            let deleting = is_deleting(&old);
            let metadata = metadata_mut(&mut new);
            if finalizers.is_empty() {
                metadata.remove("finalizers");
            } else {
                metadata.insert("finalizers".into(), json!(finalizers));
            }
            if !deleting {
                metadata.insert("deletionTimestamp".into(), json!(now));
                metadata.insert("deletionGracePeriodSeconds".into(), json!(0));
                if let Some(generation) = metadata.get("generation").and_then(Value::as_i64) {
                    metadata.insert("generation".into(), json!(generation + 1));
                }
            }
        }
        if resource.kind == Kind::Namespace {
            new["status"] = json!({"phase": "Terminating"});
        }
        if resource.kind == Kind::CustomResourceDefinition && !is_deleting(&old) {
            crate::crd::set_terminating(&mut new, &self.clock.timestamp());
        }
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

    /// DELETE of a collection: each matching object is deleted as by a single DELETE.
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
            match self.delete_locked(&mut state, &item_target, &key, options) {
                Ok(outcome) => items.push(outcome.body),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let rv = state.store.resource_version().to_string();
        Ok(Outcome {
            code: 200,
            body: json!({"apiVersion": target.api_version(), "kind": target.resource.list_kind, "metadata": {"resourceVersion": rv}, "items": items}),
            warnings: Vec::new(),
        })
    }
}

/// A create request on its way through the pipeline.
struct PreparedCreate {
    object: Value,
    warnings: Vec<String>,
    /// The generateName prefix, when the name is to be generated.
    generate_prefix: Option<String>,
    now: String,
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

/// Steps 9–10: the final checks under the lock, then persist.
fn commit_create(
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
        let mut attempts = 0;
        loop {
            let forced = state.forced_name_collisions > 0;
            if forced {
                state.forced_name_collisions -= 1;
            }
            if !forced && state.store.get(&target.key(&name)).is_none() {
                break;
            }
            attempts += 1;
            if attempts >= 8 {
                return Err(ApiError::generate_name_exhausted(&resource.name(), &prefix));
            }
            name = generate_name(&prefix);
        }
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
    let stored = state.store.create(target.key(&name), object);
    Ok(Outcome {
        code: 201,
        body: Engine::present(resource, &target.version, &stored),
        warnings,
    })
}

fn namespace_finalizers_empty(resource: &ResourceType, object: &Value) -> bool {
    resource.kind != Kind::Namespace
        || object
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
}

fn without_managed_times(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(Value::Array(entries)) = copy.pointer_mut("/metadata/managedFields") {
        for entry in entries {
            if let Some(e) = entry.as_object_mut() {
                e.remove("time");
            }
        }
    }
    copy
}

fn delete_success(resource: &ResourceType, name: &str, uid: &str) -> Value {
    let mut details = json!({"name": name, "kind": resource.plural, "uid": uid});
    if !resource.group.is_empty() {
        details["group"] = json!(resource.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

fn conflict_error(
    resource: &ResourceType,
    name: &str,
    conflicts: &[(ssa::Conflict, String)],
) -> ApiError {
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
    let mut details = Map::new();
    details.insert("name".into(), json!(name));
    if !resource.group.is_empty() {
        details.insert("group".into(), json!(resource.group));
    }
    details.insert("kind".into(), json!(resource.plural));
    details.insert("causes".into(), Value::Array(causes));
    ApiError {
        code: 409,
        reason: "Conflict".into(),
        message,
        details: Some(details),
    }
}

/// Reports or rejects unknown fields per `fieldValidation`.
fn field_validation(
    context: &WriteContext<'_>,
    unknown: Vec<String>,
) -> Result<Vec<String>, ApiError> {
    let problems: Vec<String> = context
        .options
        .duplicate_fields
        .iter()
        .map(|f| format!("duplicate field \"{f}\""))
        .chain(unknown.iter().map(|f| format!("unknown field \"{f}\"")))
        .collect();
    match context.options.field_validation {
        FieldValidation::Ignore => Ok(Vec::new()),
        FieldValidation::Warn => Ok(problems),
        FieldValidation::Strict if problems.is_empty() => Ok(Vec::new()),
        FieldValidation::Strict => {
            let kind = &context.target.resource.kind_name;
            let list = problems;
            Err(ApiError::bad_request(format!(
                "{kind} in version \"{}\" cannot be handled as a {kind}: strict decoding error: {}",
                context.target.version,
                list.join(", ")
            )))
        }
    }
}

fn check_type_meta(target: &Target, body: &Value) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be an object",
        ));
    }
    let expected = target.api_version();
    let api_version = body
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or_default();
    if !api_version.is_empty() && api_version != expected {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({expected})"
        )));
    }
    if !kind.is_empty() && kind != target.resource.kind_name {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            target.resource.kind_name
        )));
    }
    Ok(())
}

fn validate_data_keys(object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let data = object.get("data").and_then(Value::as_object);
    let binary = object.get("binaryData").and_then(Value::as_object);
    for (field, map) in [("data", data), ("binaryData", binary)] {
        for key in map.into_iter().flat_map(|m| m.keys()) {
            let valid = !key.is_empty()
                && key.len() <= 253
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
            if !valid {
                errors.push(FieldError::invalid(format!("{field}[{key}]"), &json!(key), "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
            }
        }
    }
    if let (Some(data), Some(binary)) = (data, binary) {
        for key in data.keys().filter(|k| binary.contains_key(*k)) {
            errors.push(FieldError::invalid(
                format!("data[{key}]"),
                &json!(key),
                "duplicate of key present in binaryData",
            ));
        }
    }
    errors
}

fn immutable_data(old: Option<&Value>, new: &Value) -> Vec<FieldError> {
    let Some(old) = old else { return Vec::new() };
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return Vec::new();
    }
    let mut errors = Vec::new();
    for field in ["data", "binaryData", "stringData"] {
        if old.get(field) != new.get(field) {
            errors.push(FieldError::forbidden(
                field,
                "field is immutable when `immutable` is set",
            ));
        }
    }
    if new.get("immutable").and_then(Value::as_bool) != Some(true) {
        errors.push(FieldError::forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
    errors
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

/// Options of a list or watch.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<u64>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

fn encode_continue(position: &str, rv: u64) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{position}\u{0}")});
    base64::engine::general_purpose::STANDARD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(String, u64), ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| invalid())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let start = value
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    let rv = value
        .get("rv")
        .and_then(Value::as_u64)
        .ok_or_else(invalid)?;
    Ok((start.trim_end_matches('\u{0}').to_string(), rv))
}

/// Field-selector support per resource (§6.4).
pub fn parse_field_selector(
    resource: &ResourceType,
    selector: &str,
) -> Result<FieldSelector, ApiError> {
    let supported = |field: &str| -> bool {
        if matches!(field, "metadata.name" | "metadata.namespace") {
            return true;
        }
        match resource.kind {
            Kind::Secret => field == "type",
            Kind::Namespace => field == "status.phase",
            Kind::Event => {
                field.starts_with("involvedObject.")
                    || matches!(
                        field,
                        "reason"
                            | "reportingComponent"
                            | "source"
                            | "type"
                            | "regarding.name"
                            | "regarding.namespace"
                            | "regarding.kind"
                            | "regarding.uid"
                    )
            }
            Kind::Custom => resource.versions.iter().any(|v| {
                v.selectable_fields
                    .iter()
                    .any(|f| f.trim_start_matches('.') == field)
            }),
            _ => false,
        }
    };
    FieldSelector::parse(selector, &supported)
}

/// The value of a selectable field of an object.
pub fn field_value(resource: &ResourceType, object: &Value, field: &str) -> Option<String> {
    let pointer = match field {
        "metadata.name" => "/metadata/name".to_string(),
        "metadata.namespace" => "/metadata/namespace".to_string(),
        "source" => "/source/component".to_string(),
        other => format!("/{}", other.replace('.', "/")),
    };
    let _ = resource;
    match object.pointer(&pointer) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => Some(String::new()),
        Some(other) => Some(other.to_string()),
    }
}

impl FieldError {
    /// Replaces the detail (for `Required value: name or generateName is required`).
    pub fn with_detail(mut self, detail: &str) -> Self {
        self.detail = detail.into();
        self
    }
}
