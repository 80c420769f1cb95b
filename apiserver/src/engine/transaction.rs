//! The built-in controllers' transactions: a pass reads and writes under one lock, so it sees
//! the store and leaves it consistent. Reads see everything; writes are the few a controller
//! makes (a status or finalizer change, a removal, a DELETE with its full semantics, a registry
//! rebuilt from the stored CRDs).

use std::sync::{Arc, MutexGuard};

use serde_json::Value;

use super::{DeleteOptions, Engine, Outcome, State, Target};
use crate::crd;
use crate::registry::Registry;
use crate::status::ApiError;
use crate::store::{ObjectKey, Store};

const CRD_GROUP: &str = "apiextensions.k8s.io";
const CRD_PLURAL: &str = "customresourcedefinitions";

/// Reads and writes under the engine's lock; the lock is released on drop.
pub(crate) struct Transaction<'a> {
    engine: &'a Engine,
    state: MutexGuard<'a, State>,
}

impl<'a> Transaction<'a> {
    pub(super) fn new(engine: &'a Engine, state: MutexGuard<'a, State>) -> Self {
        Self { engine, state }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.state.store
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.state.registry
    }

    /// Stores a controller's change of an object as is (no admission), at a new
    /// resourceVersion.
    pub(crate) fn update(&mut self, key: ObjectKey, object: Value) -> Arc<Value> {
        self.state.store.update(key, object)
    }

    /// Removes an object whose last finalizer is gone.
    pub(crate) fn remove(&mut self, key: &ObjectKey) -> Option<Arc<Value>> {
        self.state.store.delete(key)
    }

    /// A DELETE with the verb's full semantics (finalizers, propagation, preconditions).
    pub(crate) fn delete(
        &mut self,
        target: &Target,
        key: &ObjectKey,
        options: &DeleteOptions,
    ) -> Result<Outcome, ApiError> {
        self.engine
            .delete_locked(&mut self.state, target, key, options)
    }

    /// Rebuilds the CRD-defined types of the registry from the stored CRDs: a CRD serves once its
    /// names are accepted and is listed in discovery once Established.
    pub(crate) fn sync_registry(&mut self) {
        let State { registry, store } = &mut *self.state;
        let crds: Vec<Value> = store
            .list(CRD_GROUP, CRD_PLURAL, None)
            .map(|(_, v)| v.clone())
            .collect();
        registry.clear_custom();
        for crd in crds {
            if crd::condition_status(&crd, "NamesAccepted").as_deref() != Some("True") {
                continue;
            }
            if let Some(resource) = crd::resource_type(&crd) {
                registry.insert(resource);
            }
        }
    }
}
