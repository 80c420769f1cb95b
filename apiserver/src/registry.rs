//! The resource types the server serves: the built-in kinds and those defined by established CRDs.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::status::ResourceName;

/// Behaviour that differs between kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Namespace,
    ConfigMap,
    Secret,
    Event,
    Lease,
    /// Workload and networking kinds stored with their schema and no controller; the
    /// simulator (or a test) plays their controllers through `/status`.
    Deployment,
    StatefulSet,
    ReplicaSet,
    Job,
    DaemonSet,
    Service,
    ServiceAccount,
    PodTemplate,
    Role,
    ClusterRole,
    RoleBinding,
    ClusterRoleBinding,
    CustomResourceDefinition,
    /// An object of a kind a CRD defines.
    Custom,
}

impl Kind {
    /// Kinds with a `metadata.generation` ([API-18]).
    pub fn has_generation(self) -> bool {
        matches!(
            self,
            Kind::Custom
                | Kind::CustomResourceDefinition
                | Kind::Deployment
                | Kind::StatefulSet
                | Kind::ReplicaSet
                | Kind::Job
                | Kind::DaemonSet
        )
    }

    /// Kinds that accept a PUT without `metadata.resourceVersion` (E11).
    pub fn allows_unconditional_update(self) -> bool {
        !matches!(
            self,
            Kind::Lease | Kind::CustomResourceDefinition | Kind::Custom
        )
    }

    /// Kinds whose DELETE answers with the object instead of a Status.
    pub fn delete_returns_object(self) -> bool {
        matches!(self, Kind::Namespace)
    }

    /// Built-in kinds accept strategic merge patches; custom resources do not (E26).
    pub fn accepts_strategic_merge(self) -> bool {
        self != Kind::Custom
    }
}

/// A printer column of a CRD version.
#[derive(Clone, Debug, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

/// A served version of a resource type.
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    pub name: String,
    /// The structural schema (custom resources only).
    pub schema: Option<Value>,
    pub printer_columns: Vec<PrinterColumn>,
    /// The `selectableFields` JSON paths a field selector may use.
    pub selectable_fields: Vec<String>,
}

/// Where the replica counts of a `/scale` subresource live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleSubresource {
    pub spec_replicas_path: String,
    pub status_replicas_path: String,
    pub label_selector_path: Option<String>,
}

/// One resource type.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceType {
    pub group: String,
    /// Served versions, preferred first.
    pub versions: Vec<Version>,
    /// The version objects are stored in.
    pub storage_version: String,
    pub plural: String,
    pub singular: String,
    pub kind_name: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    pub scale: Option<ScaleSubresource>,
    pub kind: Kind,
    /// The CRD that defines this type, if any.
    pub crd_name: Option<String>,
    /// Discovery and OpenAPI list the type only once its CRD is Established.
    pub established: bool,
}

impl ResourceType {
    pub fn name(&self) -> ResourceName {
        ResourceName {
            group: self.group.clone(),
            plural: self.plural.clone(),
            kind: self.kind_name.clone(),
        }
    }

    pub fn version(&self, name: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.name == name)
    }

    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// The verbs of the main resource, as discovery lists them.
    pub fn verbs(&self) -> Vec<&'static str> {
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

/// One built-in kind: group, version, plural, kind, namespaced, short names, status
/// subresource, behaviour.
type BuiltinRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    bool,
    Kind,
);

const BUILTINS: &[BuiltinRow] = &[
    (
        "",
        "v1",
        "namespaces",
        "Namespace",
        false,
        &["ns"],
        true,
        Kind::Namespace,
    ),
    (
        "",
        "v1",
        "configmaps",
        "ConfigMap",
        true,
        &["cm"],
        false,
        Kind::ConfigMap,
    ),
    (
        "",
        "v1",
        "secrets",
        "Secret",
        true,
        &[],
        false,
        Kind::Secret,
    ),
    (
        "",
        "v1",
        "events",
        "Event",
        true,
        &["ev"],
        false,
        Kind::Event,
    ),
    (
        "events.k8s.io",
        "v1",
        "events",
        "Event",
        true,
        &["ev"],
        false,
        Kind::Event,
    ),
    (
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        true,
        &[],
        false,
        Kind::Lease,
    ),
    (
        "",
        "v1",
        "services",
        "Service",
        true,
        &["svc"],
        true,
        Kind::Service,
    ),
    (
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        true,
        &["sa"],
        false,
        Kind::ServiceAccount,
    ),
    (
        "apps",
        "v1",
        "deployments",
        "Deployment",
        true,
        &["deploy"],
        true,
        Kind::Deployment,
    ),
    (
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        true,
        &["sts"],
        true,
        Kind::StatefulSet,
    ),
    (
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        true,
        &["rs"],
        true,
        Kind::ReplicaSet,
    ),
    ("batch", "v1", "jobs", "Job", true, &[], true, Kind::Job),
    (
        "apps",
        "v1",
        "daemonsets",
        "DaemonSet",
        true,
        &["ds"],
        true,
        Kind::DaemonSet,
    ),
    (
        "",
        "v1",
        "podtemplates",
        "PodTemplate",
        true,
        &[],
        false,
        Kind::PodTemplate,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        true,
        &[],
        false,
        Kind::Role,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
        &[],
        false,
        Kind::ClusterRole,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
        &[],
        false,
        Kind::RoleBinding,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        &[],
        false,
        Kind::ClusterRoleBinding,
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        true,
        Kind::CustomResourceDefinition,
    ),
];

/// The built-in kinds.
pub fn builtins() -> Vec<ResourceType> {
    BUILTINS
        .iter()
        .map(
            |&(
                group,
                version,
                plural,
                kind_name,
                namespaced,
                short_names,
                status_subresource,
                kind,
            )| ResourceType {
                group: group.into(),
                versions: vec![Version {
                    name: version.into(),
                    schema: None,
                    printer_columns: Vec::new(),
                    selectable_fields: Vec::new(),
                }],
                storage_version: version.into(),
                plural: plural.into(),
                singular: kind_name.to_lowercase(),
                kind_name: kind_name.into(),
                list_kind: format!("{kind_name}List"),
                namespaced,
                short_names: short_names.iter().map(|s| s.to_string()).collect(),
                categories: Vec::new(),
                status_subresource,
                scale: None,
                kind,
                crd_name: None,
                established: true,
            },
        )
        .collect()
}

/// Every served resource type, by (group, plural).
#[derive(Clone, Debug, Default)]
pub struct Registry {
    types: BTreeMap<(String, String), Arc<ResourceType>>,
}

impl Registry {
    pub fn with_builtins() -> Self {
        let mut registry = Self::default();
        for t in builtins() {
            registry.insert(t);
        }
        registry
    }

    pub fn insert(&mut self, resource: ResourceType) {
        self.types.insert(
            (resource.group.clone(), resource.plural.clone()),
            Arc::new(resource),
        );
    }

    pub fn remove(&mut self, group: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types.remove(&(group.to_string(), plural.to_string()))
    }

    pub fn get(&self, group: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .get(&(group.to_string(), plural.to_string()))
            .cloned()
    }

    /// The type served at `group/version` under `plural`.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.get(group, plural)
            .filter(|t| t.version(version).is_some())
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceType>> {
        self.types.values()
    }

    /// The established types served at `group/version` (what discovery and OpenAPI list).
    pub fn served(&self, group: &str, version: &str) -> Vec<&Arc<ResourceType>> {
        self.types
            .values()
            .filter(|t| t.group == group && t.established && t.version(version).is_some())
            .collect()
    }

    /// The type of objects of `apiVersion`/`kind` (used to resolve owner references).
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        self.types
            .values()
            .find(|t| t.group == group && t.kind_name == kind && t.version(version).is_some())
            .cloned()
    }

    /// Drops every CRD-defined type (before re-adding those the CRDs currently serve).
    pub fn clear_custom(&mut self) {
        self.types.retain(|_, t| t.crd_name.is_none());
    }

    /// Groups in discovery order: built-in groups first (core, then as registered), then CRD
    /// groups sorted.
    pub fn groups(&self) -> Vec<String> {
        let mut builtin_groups: Vec<String> = Vec::new();
        for t in builtins() {
            if !t.group.is_empty() && !builtin_groups.contains(&t.group) {
                builtin_groups.push(t.group);
            }
        }
        let mut custom: Vec<String> = self
            .types
            .values()
            .filter(|t| t.crd_name.is_some() && t.established && !builtin_groups.contains(&t.group))
            .map(|t| t.group.clone())
            .collect();
        custom.sort();
        custom.dedup();
        builtin_groups
            .into_iter()
            .filter(|g| self.types.values().any(|t| &t.group == g))
            .chain(custom)
            .collect()
    }

    /// Versions of a group, preferred first (the order of the CRD's versions, or built-in order).
    pub fn group_versions(&self, group: &str) -> Vec<String> {
        let mut versions: Vec<String> = Vec::new();
        for t in self
            .types
            .values()
            .filter(|t| t.group == group && t.established)
        {
            for v in &t.versions {
                if !versions.contains(&v.name) {
                    versions.push(v.name.clone());
                }
            }
        }
        versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        versions
    }
}

/// Kubernetes' version ordering: GA > beta > alpha, higher numbers first.
pub fn version_priority(version: &str) -> (u8, u32, u32) {
    let Some(rest) = version.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let suffix = &rest[digits.len()..];
    if suffix.is_empty() {
        return (3, major, 0);
    }
    let (level, number) = if let Some(n) = suffix.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = suffix.strip_prefix("alpha") {
        (1, n)
    } else {
        return (0, 0, 0);
    };
    match number.parse::<u32>() {
        Ok(n) => (level, major, n),
        Err(_) => (0, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ordering_follows_kubernetes() {
        let mut versions = vec!["v1alpha1", "v1", "v2beta1", "v1beta2", "v2"];
        versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        assert_eq!(versions, ["v2", "v1", "v2beta1", "v1beta2", "v1alpha1"]);
    }
}
