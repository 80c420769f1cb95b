//! The request engine: every verb's storage semantics, run atomically against the registry and
//! the store, which it keeps private behind one lock.
//!
//! | file | verb or stage |
//! |---|---|
//! | `request` | what a request asks (target, options) and gets (outcome) |
//! | `list` | GET and LIST: selectors, pagination |
//! | `create` | POST (and the apply that creates): system fields, generated names |
//! | `update` | PUT and PATCH, and the update pipeline apply shares |
//! | `apply` | server-side apply |
//! | `delete` | DELETE of one object or a collection: finalizers, propagation |
//! | `admission` | typed decoding, built-in defaults, the custom-resource schema, `fieldValidation` |
//! | `transaction` | the built-in controllers' locked reads and writes |

mod admission;
mod apply;
mod create;
mod delete;
mod list;
mod request;
mod transaction;
mod update;

use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

pub use self::admission::normalize_numbers;
pub use self::list::{field_value, parse_field_selector};
pub use self::request::{
    DeleteOptions, FieldValidation, ListOptions, Outcome, PatchType, Target, WriteOptions,
};
pub(crate) use self::transaction::Transaction;
use crate::clock::Clock;
use crate::registry::{Registry, ResourceType};
use crate::schema;
use crate::store::{ObjectKey, Store, StoreEvent};

/// The finalizer a CRD carries while its custom resources are being removed.
pub const CRD_CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Registry and store, changed together under one lock. Only the engine's verbs and the
/// built-in controllers' [`Transaction`]s write them.
#[derive(Debug)]
struct State {
    registry: Registry,
    store: Store,
}

/// The server's engine.
#[derive(Debug)]
pub struct Engine {
    state: Mutex<State>,
    clock: Clock,
    /// The next Service cluster IP, as an offset into 10.96.0.0/12.
    next_cluster_ip: AtomicU32,
    /// Fault injection for tests: how many generated names still count as taken.
    forced_name_collisions: AtomicU32,
}

impl Engine {
    pub fn new(clock: Clock, history: usize) -> Self {
        let mut state = State {
            registry: Registry::with_builtins(),
            store: Store::new(history),
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
            next_cluster_ip: AtomicU32::new(2),
            forced_name_collisions: AtomicU32::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the store half-written: every write builds
        // the new object first and commits with one call.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The clock every timestamp of the server comes from.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Reads the registry under the lock (discovery, OpenAPI, routing).
    pub fn with_registry<R>(&self, read: impl FnOnce(&Registry) -> R) -> R {
        read(&self.lock().registry)
    }

    /// Reads the store under the lock, for reads that must be consistent with each other (a
    /// watch's initial list and its subscription).
    pub fn with_store<R>(&self, read: impl FnOnce(&Store) -> R) -> R {
        read(&self.lock().store)
    }

    /// The store's current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().store.resource_version()
    }

    /// Discards watch history up to `resource_version` (so 410 paths can be exercised).
    pub fn compact(&self, resource_version: u64) {
        self.lock().store.compact(resource_version);
    }

    /// Every committed change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoreEvent>> {
        self.lock().store.subscribe()
    }

    /// Several reads and writes under one lock, for the built-in controllers.
    pub(crate) fn transaction(&self) -> Transaction<'_> {
        Transaction::new(self, self.lock())
    }

    /// The object as a client of `version` sees it: apiVersion rewritten, schema defaults
    /// applied on read.
    pub fn present(resource: &ResourceType, version: &str, object: &Value) -> Value {
        let mut out = object.clone();
        crate::events::present(resource, &mut out);
        out["apiVersion"] = json!(resource.api_version(version));
        if let Some(schema) = resource.version(version).and_then(|v| v.schema.as_ref()) {
            schema::default_and_drop_nulls(&mut out, schema);
        }
        out
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
