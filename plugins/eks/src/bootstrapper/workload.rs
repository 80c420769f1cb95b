//! The workload-cluster steps ([KB-05], [KB-06]) through the `<capi>-kubeconfig` Secret: the
//! one-shot rollout restarts of `kube-system/coredns` and `karpenter/karpenter`, and, on
//! deletion, Karpenter scaled to 0 and its NodePools, NodeClaims and EC2NodeClasses deleted.
//! The Secret is read with `get` only; its content is never logged.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::{Client, ResourceExt};
use serde_json::json;

/// A workload-cluster step that failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("reading secret {0}: {1}")]
    Secret(String, kube::Error),
    #[error("secret {0} has no kubeconfig in data.value: {1}")]
    Kubeconfig(String, String),
    #[error("workload cluster: {0}")]
    Api(#[from] kube::Error),
}

/// `kubectl.kubernetes.io/restartedAt`, the annotation `kubectl rollout restart` sets.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// The workload cluster's client from `<capi>-kubeconfig`, or `None` when the Secret does not
/// exist (yet).
pub async fn client(
    management: &Client,
    namespace: &str,
    capi: &str,
) -> Result<Option<Client>, WorkloadError> {
    let name = format!("{capi}-kubeconfig");
    let secrets: Api<Secret> = Api::namespaced(management.clone(), namespace);
    let Some(secret) = secrets
        .get_opt(&name)
        .await
        .map_err(|e| WorkloadError::Secret(format!("{namespace}/{name}"), e))?
    else {
        return Ok(None);
    };
    let invalid = |why: String| WorkloadError::Kubeconfig(format!("{namespace}/{name}"), why);
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get("value"))
        .ok_or_else(|| invalid("no value".into()))?;
    let text = std::str::from_utf8(&bytes.0).map_err(|e| invalid(e.to_string()))?;
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(text).map_err(|e| invalid(e.to_string()))?;
    let mut config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .map_err(|e| invalid(e.to_string()))?;
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(20));
    Client::try_from(config)
        .map(Some)
        .map_err(|e| invalid(e.to_string()))
}

/// [KB-05]: `kubectl rollout restart` of `namespace/name`; false when the Deployment does not
/// exist.
pub async fn rollout_restart(
    workload: &Client,
    namespace: &str,
    name: &str,
    at: &str,
) -> Result<bool, WorkloadError> {
    let deployments: Api<Deployment> = Api::namespaced(workload.clone(), namespace);
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}});
    match deployments
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// The Karpenter kinds deleted on cleanup, NodePools first so no new NodeClaim is made.
const KARPENTER_KINDS: [(&str, &str, &str, &str); 3] = [
    ("karpenter.sh", "v1", "NodePool", "nodepools"),
    ("karpenter.sh", "v1", "NodeClaim", "nodeclaims"),
    ("karpenter.k8s.aws", "v1", "EC2NodeClass", "ec2nodeclasses"),
];

/// What [`stop_provisioning`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stopped {
    pub scaled_down: bool,
    /// `Kind/name` of every object a delete was sent for.
    pub deleted: Vec<String>,
}

/// [KB-06]: scales `karpenter/karpenter` to 0 and deletes every NodePool, NodeClaim and
/// EC2NodeClass. Kinds the cluster does not serve are skipped.
pub async fn stop_provisioning(workload: &Client) -> Result<Stopped, WorkloadError> {
    let mut stopped = Stopped::default();
    let deployments: Api<Deployment> = Api::namespaced(workload.clone(), "karpenter");
    match deployments
        .patch(
            "karpenter",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
    {
        Ok(_) => stopped.scaled_down = true,
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(error) => return Err(error.into()),
    }
    for (group, version, kind, plural) in KARPENTER_KINDS {
        let resource =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        let api: Api<DynamicObject> = Api::all_with(workload.clone(), &resource);
        let objects = match api.list_metadata(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(kube::Error::Api(status)) if status.code == 404 => continue,
            Err(error) => return Err(error.into()),
        };
        for object in objects {
            let name = object.name_any();
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => stopped.deleted.push(format!("{kind}/{name}")),
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(error.into()),
            }
        }
    }
    Ok(stopped)
}
