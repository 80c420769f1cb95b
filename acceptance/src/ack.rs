//! Just enough of ACK's eks, iam and ec2 controllers for the EKS scenarios: every ACK EKS
//! `Cluster` of one namespace becomes `ACTIVE` with an endpoint, the CA data, the version it
//! asked for and the resource metadata ACK publishes (region, owner account, ARN). Nothing
//! reaches AWS; the endpoint is what the scenario publishes: on the upstream target the
//! target's own API server, elsewhere an unresolvable `.test` name. For the `eks-karpenter`
//! scenario ([`run_with_aws`]) the Cluster also reports its OIDC issuer and the VPC of its
//! subnets (asked of EC2, i.e. moto on loopback), and the other ACK kinds the bootstrapper writes
//! become synced: ARN, `ACK.ResourceSynced`, FargateProfiles `ACTIVE`, SecurityGroups created in
//! EC2 with their id. Shaped like every reconciler here: observe (the watched object, EC2),
//! [`active_status`] / [`synced_status`] decide (pure), the status merge patch applies.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use kany8s_eks::bootstrapper::ec2::Ec2;

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
    write_cluster_status(&ctx.client, &cluster, &observed, status).await?;
    Ok(Action::await_change())
}

/// Merge-patches `status` into the ACK EKS Cluster `cluster` (read as `observed`) when it
/// differs.
async fn write_cluster_status(
    client: &Client,
    cluster: &DynamicObject,
    observed: &Value,
    status: Value,
) -> Result<(), Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &cluster.namespace().unwrap_or_default(),
        &cluster_kind(),
    );
    write_status(&api, &cluster.name_any(), &observed["status"], status).await
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

/// What the simulated controllers publish beyond the EKS endpoint (the `eks-karpenter`
/// scenario).
#[derive(Clone, Debug)]
pub struct Aws {
    /// `status.identity.oidc.issuer` of every EKS Cluster.
    pub issuer: String,
    /// EC2 (moto on loopback): the VPC of a Cluster's subnets, the SecurityGroups created.
    pub ec2: Ec2,
}

/// An ACK kind the `eks-karpenter` scenario needs synced: (group, kind, plural).
pub const SYNCED_KINDS: [(&str, &str, &str); 7] = [
    ("iam.services.k8s.aws", "Role", "roles"),
    ("iam.services.k8s.aws", "Policy", "policies"),
    (
        "iam.services.k8s.aws",
        "OpenIDConnectProvider",
        "openidconnectproviders",
    ),
    (
        "iam.services.k8s.aws",
        "InstanceProfile",
        "instanceprofiles",
    ),
    ("eks.services.k8s.aws", "AccessEntry", "accessentries"),
    ("eks.services.k8s.aws", "FargateProfile", "fargateprofiles"),
    ("ec2.services.k8s.aws", "SecurityGroup", "securitygroups"),
];

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The status ACK reports once AWS holds `object` (its JSON) of `kind`: its ARN (built the way
/// AWS builds it, from the region annotation and the spec's names), `ACK.ResourceSynced`, and
/// per kind: a FargateProfile `ACTIVE`, a SecurityGroup the `id` EC2 gave it.
pub fn synced_status(kind: &str, object: &Value, security_group_id: Option<&str>) -> Value {
    let region = text(object, "/metadata/annotations/services.k8s.aws~1region");
    let name = text(object, "/spec/name");
    let cluster = text(object, "/spec/clusterName");
    let arn = match kind {
        "Role" => format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
        "Policy" => format!("arn:aws:iam::{ACCOUNT}:policy/{name}"),
        "InstanceProfile" => format!("arn:aws:iam::{ACCOUNT}:instance-profile/{name}"),
        "OpenIDConnectProvider" => format!(
            "arn:aws:iam::{ACCOUNT}:oidc-provider/{}",
            text(object, "/spec/url").trim_start_matches("https://")
        ),
        "AccessEntry" => format!(
            "arn:aws:eks:{region}:{ACCOUNT}:access-entry/{cluster}/{}",
            text(object, "/metadata/name")
        ),
        "FargateProfile" => {
            format!("arn:aws:eks:{region}:{ACCOUNT}:fargateprofile/{cluster}/{name}")
        }
        _ => format!(
            "arn:aws:ec2:{region}:{ACCOUNT}:security-group/{}",
            security_group_id.unwrap_or_default()
        ),
    };
    let mut status = json!({
        "ackResourceMetadata": {"region": region, "ownerAccountID": ACCOUNT, "arn": arn},
        "conditions": [{"type": "ACK.ResourceSynced", "status": "True",
            "message": "Resource synced successfully"}],
    });
    match kind {
        "FargateProfile" => status["status"] = json!("ACTIVE"),
        "SecurityGroup" => status["id"] = json!(security_group_id.unwrap_or_default()),
        _ => {}
    }
    status
}

struct AwsContext {
    client: Client,
    published: Published,
    aws: Aws,
}

/// The VPC EKS reports for `cluster` (its JSON): the one of its subnets, asked of EC2.
async fn cluster_vpc(ec2: &Ec2, cluster: &Value) -> Result<String, Error> {
    let region = text(cluster, "/metadata/annotations/services.k8s.aws~1region");
    let subnets: Vec<String> = cluster
        .pointer("/spec/resourcesVPCConfig/subnetIDs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    let report = ec2
        .subnets(region, &subnets)
        .await
        .map_err(|e| Error::Invalid(format!("describing the subnets of an EKS cluster: {e}")))?;
    report
        .subnets
        .first()
        .map(|s| s.vpc_id.clone())
        .ok_or_else(|| Error::Invalid(format!("EC2 knows none of the subnets {subnets:?}")))
}

async fn reconcile_cluster(
    cluster: Arc<DynamicObject>,
    ctx: Arc<AwsContext>,
) -> Result<Action, Error> {
    if cluster.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let observed = serde_json::to_value(cluster.as_ref())?;
    let vpc = cluster_vpc(&ctx.aws.ec2, &observed).await?;
    let mut status = active_status(&observed, &ctx.published);
    status["identity"] = json!({"oidc": {"issuer": ctx.aws.issuer}});
    status["resourcesVPCConfig"] = json!({"vpcID": vpc});
    write_cluster_status(&ctx.client, &cluster, &observed, status).await?;
    Ok(Action::await_change())
}

async fn reconcile_synced(
    object: Arc<DynamicObject>,
    ctx: Arc<(AwsContext, ApiResource)>,
) -> Result<Action, Error> {
    let (ctx, kind) = (&ctx.0, &ctx.1);
    if object.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let observed = serde_json::to_value(object.as_ref())?;
    let mut id = None;
    if kind.kind == "SecurityGroup" {
        id = Some(match text(&observed, "/status/id") {
            "" => {
                let tags: Vec<(&str, &str)> = observed
                    .pointer("/spec/tags")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| Some((t["key"].as_str()?, t["value"].as_str()?)))
                    .collect();
                kany8s_eks::testing::moto::security_group(
                    &ctx.aws.ec2,
                    text(&observed, "/metadata/annotations/services.k8s.aws~1region"),
                    text(&observed, "/spec/vpcID"),
                    text(&observed, "/spec/name"),
                    text(&observed, "/spec/description"),
                    &tags,
                )
                .await
                .map_err(Error::Invalid)?
            }
            existing => existing.to_string(),
        });
    }
    let status = synced_status(&kind.kind, &observed, id.as_deref());
    let api: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        &object.namespace().unwrap_or_default(),
        kind,
    );
    write_status(&api, &object.name_any(), &observed["status"], status).await?;
    Ok(Action::await_change())
}

fn warn_and_retry<T, C>(_: Arc<T>, error: &Error, _: Arc<C>) -> Action {
    tracing::warn!(%error, "simulated ACK controller");
    Action::requeue(Duration::from_millis(500))
}

/// Runs the simulated eks, iam and ec2 controllers of the `eks-karpenter` scenario over the ACK
/// objects of `namespace` until dropped. Every kind's CRD must be installed.
pub async fn run_with_aws(client: Client, namespace: String, published: Published, aws: Aws) {
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &namespace, &cluster_kind());
    let context = || AwsContext {
        client: client.clone(),
        published: published.clone(),
        aws: aws.clone(),
    };
    let eks = Controller::new_with(clusters, watcher::Config::default(), cluster_kind())
        .run(reconcile_cluster, warn_and_retry, Arc::new(context()))
        .for_each(|_| async {});
    let others = futures::future::join_all(SYNCED_KINDS.map(|(group, kind, plural)| {
        let resource = resource(group, "v1alpha1", kind, plural);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
        Controller::new_with(api, watcher::Config::default(), resource.clone())
            .run(
                reconcile_synced,
                warn_and_retry,
                Arc::new((context(), resource)),
            )
            .for_each(|_| async {})
    }));
    futures::future::join(eks, others).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_objects_become_synced_with_the_arns_aws_gives() {
        let object = |spec: Value| {
            json!({"metadata": {"name": "demo-karpenter-node",
                "annotations": {"services.k8s.aws/region": "eu-west-1"}}, "spec": spec})
        };
        let role = synced_status("Role", &object(json!({"name": "demo-node"})), None);
        assert_eq!(
            role["ackResourceMetadata"]["arn"],
            "arn:aws:iam::111122223333:role/demo-node"
        );
        assert_eq!(role["conditions"][0]["type"], "ACK.ResourceSynced");
        assert_eq!(role["conditions"][0]["status"], "True");
        assert!(role.get("id").is_none() && role.get("status").is_none());
        let provider = synced_status(
            "OpenIDConnectProvider",
            &object(json!({"url": "https://127.0.0.1:9/id/X"})),
            None,
        );
        assert_eq!(
            provider["ackResourceMetadata"]["arn"],
            "arn:aws:iam::111122223333:oidc-provider/127.0.0.1:9/id/X"
        );
        let profile = synced_status(
            "FargateProfile",
            &object(json!({"name": "demo-coredns", "clusterName": "demo-eks"})),
            None,
        );
        assert_eq!(profile["status"], "ACTIVE");
        assert_eq!(
            profile["ackResourceMetadata"]["arn"],
            "arn:aws:eks:eu-west-1:111122223333:fargateprofile/demo-eks/demo-coredns"
        );
        let group = synced_status("SecurityGroup", &object(json!({})), Some("sg-0123"));
        assert_eq!(group["id"], "sg-0123");
        assert_eq!(
            group["ackResourceMetadata"]["arn"],
            "arn:aws:ec2:eu-west-1:111122223333:security-group/sg-0123"
        );
    }

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
