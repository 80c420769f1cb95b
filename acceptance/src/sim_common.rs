//! What the simulated Cluster API core (`capi.rs`) and the simulated providers (`capd.rs`)
//! share: their error type, the kinds each of them names of the other, condition writing and
//! the status merge patch.

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

/// Errors of one reconcile of a simulated controller; the controller retries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("encoding: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
}

/// A kind served under `group/version` with its plural.
pub(crate) fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// The Cluster kind.
pub fn cluster_resource() -> ApiResource {
    resource("cluster.x-k8s.io", "v1beta2", "Cluster", "clusters")
}

/// The DockerCluster kind (CAPD).
pub fn docker_cluster() -> ApiResource {
    resource(
        "infrastructure.cluster.x-k8s.io",
        "v1beta2",
        "DockerCluster",
        "dockerclusters",
    )
}

/// Whether `endpoint` is a Cluster API endpoint with a host and a positive port.
pub(crate) fn valid_endpoint(endpoint: &Value) -> bool {
    endpoint["host"].as_str().is_some_and(|h| !h.is_empty())
        && endpoint["port"].as_i64().is_some_and(|p| p > 0)
}

/// Sets a condition, keeping `lastTransitionTime` when the status did not change.
pub(crate) fn put(
    conditions: &mut Vec<Value>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: i64,
) {
    let status = if status { "True" } else { "False" };
    let now =
        k8s_openapi::jiff::Timestamp::from_second(k8s_openapi::jiff::Timestamp::now().as_second())
            .map(|t| t.to_string())
            .unwrap_or_default();
    let previous = conditions.iter().position(|c| c["type"] == type_);
    let transition = previous
        .and_then(|i| {
            (conditions[i]["status"] == status).then(|| conditions[i]["lastTransitionTime"].clone())
        })
        .unwrap_or_else(|| json!(now));
    let new = json!({"type": type_, "status": status, "reason": reason, "message": message,
        "observedGeneration": generation, "lastTransitionTime": transition});
    match previous {
        Some(i) => conditions[i] = new,
        None => conditions.push(new),
    }
}

/// Merge-patches `status` into object `name` when any of its keys differs from `current`
/// (the object's status as last read), so an unchanged status is never written.
pub(crate) async fn write_status(
    api: &Api<DynamicObject>,
    name: &str,
    current: &Value,
    status: Value,
) -> Result<(), Error> {
    let same = status
        .as_object()
        .is_some_and(|s| s.iter().all(|(k, v)| &current[k] == v));
    if !same {
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await?;
    }
    Ok(())
}
