//! The owner Cluster of a Kany8s object and what the controllers react to in it: the lookup
//! ([CT-13]–[CT-15]), the pause it imposes ([CT-09], [CT-16]) and the watch predicates that keep
//! the controllers from reconciling on status-only updates ([CP-50], [CP-51], [IC-16]).

use std::collections::BTreeMap;

use kube::Resource;
use kube::api::Api;

use crate::cache::ClusterLookup;
use crate::capi::{self, Cluster, PAUSED_ANNOTATION};

/// The owner Cluster lookup ([CT-13]–[CT-15]).
#[derive(Clone, Debug)]
pub enum Owner {
    NotSet,
    NotFound(String),
    GetFailed(String),
    Found(Box<Cluster>),
}

impl Owner {
    pub fn cluster(&self) -> Option<&Cluster> {
        match self {
            Owner::Found(c) => Some(c),
            _ => None,
        }
    }
}

/// Finds the owner Cluster of `object` in its namespace: in the shared cache when it holds the
/// Cluster the ownerReference names, else from the API server.
pub async fn owner_cluster<K: Resource>(clusters: &ClusterLookup, object: &K) -> Owner {
    let Some(reference) = object.meta().owner_references.iter().flatten().find(|o| {
        o.kind == "Cluster" && capi::api_group_of(&o.api_version) == capi::CLUSTER_API_GROUP
    }) else {
        return Owner::NotSet;
    };
    let namespace = object.meta().namespace.clone().unwrap_or_default();
    if let Some(cluster) = clusters.cached(&namespace, &reference.name, &reference.uid) {
        return Owner::Found(Box::new(Cluster::clone(&cluster)));
    }
    let api: Api<Cluster> = Api::namespaced(clusters.client.clone(), &namespace);
    match api.get_opt(&reference.name).await {
        Ok(Some(cluster)) if cluster.metadata.uid.as_deref() == Some(reference.uid.as_str()) => {
            Owner::Found(Box::new(cluster))
        }
        Ok(_) => Owner::NotFound(format!("Cluster {namespace}/{} not found", reference.name)),
        Err(e) => Owner::GetFailed(e.to_string()),
    }
}

/// [CT-09]/[CT-16]: the `Paused` message when paused.
pub fn paused_message(
    kind: &str,
    annotations: &BTreeMap<String, String>,
    owner: &Owner,
) -> Option<String> {
    let mut reasons = Vec::new();
    if owner.cluster().is_some_and(|c| c.spec.paused == Some(true)) {
        reasons.push("Cluster spec.paused is set to true".to_string());
    }
    if annotations.contains_key(PAUSED_ANNOTATION) {
        reasons.push(format!("{kind} has the {PAUSED_ANNOTATION} annotation"));
    }
    (!reasons.is_empty()).then(|| reasons.join(", "))
}

/// [CP-50], [IC-16]: only changes of generation, labels, annotations, owners, finalizers or deletion
/// trigger; status-only updates (the controller's own included) do not.
pub fn relevant<K: Resource>(object: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = object.meta();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    meta.labels.hash(&mut hasher);
    meta.annotations.hash(&mut hasher);
    meta.finalizers.hash(&mut hasher);
    meta.deletion_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .hash(&mut hasher);
    for owner in meta.owner_references.iter().flatten() {
        owner.uid.hash(&mut hasher);
    }
    Some(hasher.finish())
}

/// [CP-51], [IC-16]: the Cluster changes the providers react to: creation, `spec.paused`, the
/// references and deletion (status updates are not among them).
pub fn cluster_relevant(cluster: &Cluster) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    cluster.metadata.uid.hash(&mut hasher);
    cluster.spec.paused.hash(&mut hasher);
    serde_json::to_string(&cluster.spec.control_plane_ref)
        .unwrap_or_default()
        .hash(&mut hasher);
    serde_json::to_string(&cluster.spec.infrastructure_ref)
        .unwrap_or_default()
        .hash(&mut hasher);
    cluster
        .metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .hash(&mut hasher);
    Some(hasher.finish())
}
