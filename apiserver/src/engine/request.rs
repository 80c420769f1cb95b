//! What a request asks of the engine (its target and options) and what it gets back.

use std::sync::Arc;

use serde_json::Value;

use crate::registry::ResourceType;
use crate::store::ObjectKey;

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

    pub(super) fn key(&self, name: &str) -> ObjectKey {
        let namespace = if self.resource.namespaced {
            self.namespace.clone().unwrap_or_default()
        } else {
            String::new()
        };
        ObjectKey::new(
            crate::events::storage_group(&self.resource),
            &self.resource.plural,
            &namespace,
            name,
        )
    }

    pub(super) fn subresource(&self) -> &str {
        self.subresource.as_deref().unwrap_or("")
    }

    pub(super) fn api_version(&self) -> String {
        self.resource.api_version(&self.version)
    }
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
