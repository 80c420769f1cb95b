//! Just enough of ACK's eks-controller for the `eks-rotator` scenario: every ACK EKS `Cluster`
//! of one namespace becomes `ACTIVE` with an endpoint, the CA data, the version it asked for and
//! the resource metadata ACK publishes (region, owner account, ARN). Nothing reaches AWS; the
//! endpoint is what the scenario publishes: on the upstream target the target's own API
//! server, elsewhere an unresolvable `.test` name. Shaped like every reconciler here: observe
//! (the watched object), [`active_status`] decides (pure), the status merge patch applies.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::sim_common::{Error, resource, write_status};

/// The AWS account every simulated EKS cluster belongs to (AWS's documentation example).
pub const ACCOUNT: &str = "111122223333";
/// The annotation ACK reads the region from.
const REGION_ANNOTATION: &str = "services.k8s.aws/region";

/// The ACK EKS `Cluster` kind.
pub fn cluster_kind() -> ApiResource {
    resource("eks.services.k8s.aws", "v1alpha1", "Cluster", "clusters")
}

/// What the simulated controller publishes for every cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// `status.endpoint`.
    pub endpoint: String,
    /// `status.certificateAuthority.data`: the base64 of the CA's PEM, as EKS publishes it.
    pub certificate_authority: String,
}

/// The status ACK reports for `cluster` (its JSON) once EKS has created it: `ACTIVE`, the
/// published endpoint and CA, the version the spec asks for, and the region (from ACK's region
/// annotation), account and ARN in `ackResourceMetadata`.
pub fn active_status(cluster: &Value, published: &Published) -> Value {
    let region = cluster["metadata"]["annotations"][REGION_ANNOTATION]
        .as_str()
        .unwrap_or_default();
    let name = cluster["spec"]["name"].as_str().unwrap_or_default();
    json!({
        "status": "ACTIVE",
        "endpoint": published.endpoint,
        "version": cluster["spec"]["version"],
        "certificateAuthority": {"data": published.certificate_authority},
        "ackResourceMetadata": {
            "region": region,
            "ownerAccountID": ACCOUNT,
            "arn": format!("arn:aws:eks:{region}:{ACCOUNT}:cluster/{name}"),
        },
    })
}

struct Context {
    client: Client,
    published: Published,
}

async fn reconcile(cluster: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    if cluster.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let observed = serde_json::to_value(cluster.as_ref())?;
    let status = active_status(&observed, &ctx.published);
    let api: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        &cluster.namespace().unwrap_or_default(),
        &cluster_kind(),
    );
    write_status(&api, &cluster.name_any(), &observed["status"], status).await?;
    Ok(Action::await_change())
}

fn error_policy(_: Arc<DynamicObject>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(%error, "simulated ACK eks-controller");
    Action::requeue(Duration::from_millis(500))
}

/// Runs the simulated eks-controller over the ACK Clusters of `namespace` until dropped.
pub async fn run(client: Client, namespace: String, published: Published) {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &cluster_kind());
    let ctx = Arc::new(Context { client, published });
    Controller::new_with(api, watcher::Config::default(), cluster_kind())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ack_cluster_becomes_active_with_what_is_published() {
        let published = Published {
            endpoint: "https://eks.kany8s.test".into(),
            certificate_authority: "Q0E=".into(),
        };
        let cluster = json!({
            "metadata": {"name": "demo", "annotations": {"services.k8s.aws/region": "eu-west-1"}},
            "spec": {"name": "demo-eks", "version": "1.34"},
        });
        assert_eq!(
            active_status(&cluster, &published),
            json!({
                "status": "ACTIVE",
                "endpoint": "https://eks.kany8s.test",
                "version": "1.34",
                "certificateAuthority": {"data": "Q0E="},
                "ackResourceMetadata": {
                    "region": "eu-west-1",
                    "ownerAccountID": "111122223333",
                    "arn": "arn:aws:eks:eu-west-1:111122223333:cluster/demo-eks",
                },
            })
        );
    }
}
