//! Component tests of the eks-karpenter-bootstrapper: the real controller against the embedded
//! API server in process (which is also the "workload cluster", through a `<cluster>-kubeconfig`
//! Secret pointing at it over loopback) and moto as EC2 (the VPCs, instances and ENIs are made
//! through the SDK). ACK, Flux and the Cluster API topology controller are played by the test.
//! The failure backoff is an hour: every step here is driven by a watch, not a timer. Negative
//! assertions wait for an event or a reconcile first, never for a fixed time.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{NS, cluster_crd, clusters, events, install_crd, wait, wait_event};
use crate::moto::{self, Moto, Network, REGION};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kany8s_eks::BOOTSTRAPPER;
use kany8s_eks::bootstrapper::apis::Api;
use kany8s_eks::bootstrapper::ec2::Ec2;
use kany8s_eks::bootstrapper::flags::Timing;
use kany8s_eks::bootstrapper::run::{Options, run};
use kany8s_eks::metrics::Metrics;
use kube::api::{Api as KubeApi, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

const FIXTURE_CRDS: &[&str] = &[
    "ack/eks.services.k8s.aws_clusters.yaml",
    "ack/eks.services.k8s.aws_accessentries.yaml",
    "ack/eks.services.k8s.aws_fargateprofiles.yaml",
    "ack/iam.services.k8s.aws_roles.yaml",
    "ack/iam.services.k8s.aws_policies.yaml",
    "ack/iam.services.k8s.aws_openidconnectproviders.yaml",
    "ack/iam.services.k8s.aws_instanceprofiles.yaml",
    "ack/ec2.services.k8s.aws_securitygroups.yaml",
    "flux/source.toolkit.fluxcd.io_ocirepositories.yaml",
    "flux/helm.toolkit.fluxcd.io_helmreleases.yaml",
    "capi/addons.cluster.x-k8s.io_clusterresourcesets.yaml",
    "karpenter/karpenter.sh_nodepools.yaml",
    "karpenter/karpenter.sh_nodeclaims.yaml",
    "karpenter/karpenter.k8s.aws_ec2nodeclasses.yaml",
];

fn fixture_crd(path: &str) -> Value {
    let path = format!("{}/../../fixtures/crds/{path}", env!("CARGO_MANIFEST_DIR"));
    yaml_serde::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

pub async fn install_fixture_crds(client: &Client) {
    for path in FIXTURE_CRDS {
        install_crd(client, fixture_crd(path)).await;
    }
}

/// A running bootstrapper against an embedded API server and moto.
struct Sandbox {
    client: Client,
    metrics: Arc<Metrics>,
    ec2: Ec2,
    net: Network,
    task: tokio::task::JoinHandle<()>,
    _serving: kany8s_apiserver::ServeHandle,
    _server: kany8s_apiserver::Server,
    _moto: Moto,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts moto, the API server (with the fixture CRDs when `with_crds`), the workload side
/// (kubeconfig Secret, CoreDNS and Karpenter Deployments) and the bootstrapper.
async fn start(with_crds: bool, api_recheck: Duration) -> Option<Sandbox> {
    let moto = Moto::start().await?;
    let ec2 = moto.ec2();
    let net = moto::network(&ec2, "10.10.0.0/16").await;
    let server = kany8s_apiserver::Server::builder().build();
    let client = server.client();
    install_crd(&client, cluster_crd()).await;
    if with_crds {
        install_fixture_crds(&client).await;
    }
    let (address, serving) = server.serve("127.0.0.1:0").await.unwrap();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "demo-kubeconfig", "namespace": NS,
            "labels": {"cluster.x-k8s.io/cluster-name": "demo"},
            "annotations": {"eks.kany8s.io/managed-by": "eks-kubeconfig-rotator", "eks.kany8s.io/region": REGION}},
        "type": "cluster.x-k8s.io/secret",
        "stringData": {"value": kany8s_apiserver::Server::kubeconfig(address)},
    }))
    .unwrap();
    KubeApi::<Secret>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    for (namespace, name) in [("kube-system", "coredns"), ("karpenter", "karpenter")] {
        let namespaces: KubeApi<Namespace> = KubeApi::all(client.clone());
        if namespaces.get_opt(namespace).await.unwrap().is_none() {
            namespaces
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap(),
                )
                .await
                .unwrap();
        }
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": name, "image": "example.test/x:1"}]}}},
        }))
        .unwrap();
        KubeApi::<Deployment>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &deployment)
            .await
            .unwrap();
    }
    let metrics = Arc::new(Metrics::new(BOOTSTRAPPER, 1, None));
    let options = Options {
        timing: Timing {
            failure_backoff: Duration::from_secs(3600),
            steady_state: Duration::from_secs(7200),
        },
        api_recheck,
        metrics: metrics.clone(),
        ..Options::default()
    };
    let task = tokio::spawn(run(server.client(), options, ec2.clone()));
    Some(Sandbox {
        client,
        metrics,
        ec2,
        net,
        task,
        _serving: serving,
        _server: server,
        _moto: moto,
    })
}

fn objects(client: &Client, api: Api) -> KubeApi<DynamicObject> {
    KubeApi::namespaced_with(client.clone(), NS, &api.resource())
}

async fn wait_object(client: &Client, api: Api, name: &str) -> DynamicObject {
    let objects = objects(client, api);
    wait(&format!("{} {name}", api.kind()), || async {
        objects.get_opt(name).await.unwrap().is_some()
    })
    .await;
    objects.get(name).await.unwrap()
}

const ISSUER: &str = "https://oidc.eks.eu-west-1.amazonaws.com/id/0123456789ABCDEF";

/// Plays the eks-ack RGD and ACK: the ACK Cluster, ACTIVE in `vpc`, API_AND_CONFIG_MAP.
async fn create_ack_cluster(client: &Client, vpc: &str) {
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "eks.services.k8s.aws/v1alpha1", "kind": "Cluster",
        "metadata": {"name": "demo", "namespace": NS},
        "spec": {"name": "demo", "version": "1.34", "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP"}},
    }))
    .unwrap();
    let api = objects(client, Api::AckCluster);
    api.create(&PostParams::default(), &object).await.unwrap();
    api.patch_status(
        "demo",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {
            "status": "ACTIVE", "endpoint": "https://0123456789ABCDEF.gr7.eu-west-1.eks.amazonaws.com",
            "identity": {"oidc": {"issuer": ISSUER}},
            "resourcesVPCConfig": {"vpcID": vpc},
            "ackResourceMetadata": {"region": REGION, "ownerAccountID": "111122223333"},
        }})),
    )
    .await
    .unwrap();
}

/// Plays the ClusterClass RGD and ACK: the two FargateProfiles, ACTIVE.
async fn create_fargate_profiles(client: &Client) {
    let api = objects(client, Api::FargateProfile);
    for name in ["demo-karpenter", "demo-coredns"] {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "eks.services.k8s.aws/v1alpha1", "kind": "FargateProfile",
            "metadata": {"name": name, "namespace": NS}, "spec": {"name": name},
        }))
        .unwrap();
        api.create(&PostParams::default(), &object).await.unwrap();
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"status": "ACTIVE"}})),
        )
        .await
        .unwrap();
    }
}

/// Creates Cluster `name` (its control plane, hence its EKS and ACK name: `demo`), labelled for
/// the bootstrapper, with `variables` (no topology when `None`) and `annotations`.
async fn create_cluster(
    client: &Client,
    name: &str,
    variables: Option<Value>,
    annotations: Value,
) -> DynamicObject {
    let mut spec = json!({"controlPlaneRef": {"apiGroup": "controlplane.cluster.x-k8s.io",
        "kind": "Kany8sControlPlane", "name": "demo"}});
    if let Some(variables) = variables {
        spec["topology"] =
            json!({"classRef": {"name": "eks"}, "version": "v1.34.0", "variables": variables});
    }
    let cluster: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
        "metadata": {"name": name, "namespace": NS,
            "labels": {"eks.kany8s.io/karpenter": "enabled"}, "annotations": annotations},
        "spec": spec,
    }))
    .unwrap();
    clusters(client)
        .create(&PostParams::default(), &cluster)
        .await
        .unwrap()
}

fn subnet_variable(ids: &[String]) -> Value {
    json!([{"name": "vpc-node-subnet-ids", "value": ids}])
}

fn variable(cluster: &DynamicObject, name: &str) -> Value {
    cluster.data["spec"]["topology"]["variables"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == name))
        .map(|v| v["value"].clone())
        .unwrap_or(Value::Null)
}

fn annotation(object: &DynamicObject, key: &str) -> String {
    object.annotations().get(key).cloned().unwrap_or_default()
}

fn assert_managed(object: &DynamicObject, cluster: &DynamicObject, region: bool) {
    let what = format!("{:?} {}", object.types, object.name_any());
    assert_eq!(
        annotation(object, "eks.kany8s.io/managed-by"),
        BOOTSTRAPPER,
        "{what}"
    );
    assert_eq!(
        object
            .labels()
            .get("cluster.x-k8s.io/cluster-name")
            .map(String::as_str),
        Some("demo"),
        "{what}"
    );
    assert_eq!(
        annotation(object, "services.k8s.aws/region"),
        if region { REGION } else { "" },
        "{what}"
    );
    let owners = object.owner_references();
    assert_eq!(owners.len(), 1, "{what}");
    assert_eq!(owners[0].kind, "Cluster");
    assert_eq!(owners[0].name, "demo");
    assert_eq!(Some(owners[0].uid.clone()), cluster.metadata.uid, "{what}");
    assert_ne!(owners[0].controller, Some(true), "{what}");
}

fn tag_map(tags: &Value) -> std::collections::BTreeMap<String, String> {
    match tags {
        Value::Array(list) => list
            .iter()
            .map(|t| {
                (
                    t["key"].as_str().unwrap().to_string(),
                    t["value"].as_str().unwrap().to_string(),
                )
            })
            .collect(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect(),
        _ => panic!("tags: {tags}"),
    }
}

fn assert_standard_tags(tags: &Value) {
    let tags = tag_map(tags);
    assert_eq!(tags["kany8s.io/managed-by"], BOOTSTRAPPER);
    assert_eq!(tags["kany8s.io/cluster-name"], "demo");
    assert_eq!(tags["kany8s.io/cluster-namespace"], NS);
    assert_eq!(tags["kany8s.io/eks-cluster-name"], "demo");
}

/// [KB-01]–[KB-07], [PLG-06]: opt in → finalizer and label; the managed node SecurityGroup in
/// the subnets' VPC (its id, once ACK reports it, patched into the topology variables); every
/// ACK, Flux and ClusterResourceSet object with its names, labels, annotations, owner and tags;
/// the one-shot rollout restarts in the workload cluster; the steady event. Then deletion:
/// Flux suspended, Karpenter scaled to 0 and its objects deleted in the workload cluster, the
/// tagged instances terminated and the orphan ENIs deleted in moto — exactly those — and the
/// finalizer released.
#[tokio::test]
async fn kb04_opt_in_objects_then_deletion_cleanup() {
    let Some(sandbox) = start(true, Duration::from_secs(300)).await else {
        return;
    };
    let client = &sandbox.client;
    let net = &sandbox.net;
    create_ack_cluster(client, &net.vpc).await;
    create_fargate_profiles(client).await;
    let cluster = create_cluster(
        client,
        "demo",
        Some(subnet_variable(&net.private)),
        json!({}),
    )
    .await;

    // [KB-04]: the node SecurityGroup, waiting for ACK's status.id.
    let sg = wait_object(client, Api::SecurityGroup, "demo-karpenter-node-sg").await;
    assert_managed(&sg, &cluster, true);
    assert_eq!(sg.data["spec"]["vpcID"], net.vpc);
    assert_eq!(sg.data["spec"]["name"], "demo-karpenter-node");
    assert_eq!(
        sg.data["spec"]["ingressRules"],
        json!([{"ipProtocol": "-1", "ipRanges": [{"cidrIP": "10.10.0.0/16", "description": "VPC traffic"}]}])
    );
    let sg_tags = tag_map(&sg.data["spec"]["tags"]);
    assert_eq!(sg_tags["karpenter.sh/discovery"], "demo");
    assert_eq!(sg_tags["kubernetes.io/cluster/demo"], "owned");
    assert_standard_tags(&sg.data["spec"]["tags"]);
    let (type_, _) = wait_event(client, "demo", "NodeSecurityGroupNotReady").await;
    assert_eq!(type_, "Normal");
    // [KB-02], [KB-03]: finalizer, label, region and EKS name on the Cluster.
    let current = clusters(client).get("demo").await.unwrap();
    assert!(
        current
            .finalizers()
            .contains(&"eks.kany8s.io/karpenter-cleanup".to_string())
    );
    assert_eq!(current.labels()["cluster.x-k8s.io/cluster-name"], "demo");
    assert_eq!(annotation(&current, "eks.kany8s.io/region"), REGION);
    assert_eq!(annotation(&current, "eks.kany8s.io/cluster-name"), "demo");

    // Play ACK: the SecurityGroup exists in EC2 (moto) and reports its id.
    objects(client, Api::SecurityGroup)
        .patch_status(
            "demo-karpenter-node-sg",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"id": net.security_group}})),
        )
        .await
        .unwrap();
    wait("the SG id in the topology variables", || async {
        let c = clusters(client).get("demo").await.unwrap();
        variable(&c, "vpc-node-security-group-ids") == json!([net.security_group])
            && variable(&c, "vpc-security-group-ids") == json!([net.security_group])
    })
    .await;
    let patched = clusters(client).get("demo").await.unwrap();
    assert_eq!(
        variable(&patched, "vpc-node-subnet-ids"),
        json!(net.private)
    );
    wait_event(client, "demo", "TopologyVariablePatched").await;

    // [KB-04]: the ACK objects.
    let oidc = wait_object(client, Api::OidcProvider, "demo-oidc-provider").await;
    assert_eq!(oidc.data["spec"]["url"], ISSUER);
    assert_eq!(oidc.data["spec"]["clientIDs"], json!(["sts.amazonaws.com"]));
    let policy = wait_object(client, Api::Policy, "demo-karpenter-controller-policy").await;
    assert_eq!(policy.data["spec"]["name"], "demo-karpenter-controller");
    let document: Value =
        serde_json::from_str(policy.data["spec"]["policyDocument"].as_str().unwrap()).unwrap();
    assert_eq!(document["Version"], "2012-10-17");
    let controller = wait_object(client, Api::Role, "demo-karpenter-controller").await;
    let trust: Value = serde_json::from_str(
        controller.data["spec"]["assumeRolePolicyDocument"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        trust["Statement"][0]["Principal"]["Federated"],
        "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/0123456789ABCDEF"
    );
    let node = wait_object(client, Api::Role, "demo-karpenter-node").await;
    assert_eq!(node.data["spec"]["name"], "demo-node");
    let profile = wait_object(
        client,
        Api::InstanceProfile,
        "demo-karpenter-node-instance-profile",
    )
    .await;
    assert_eq!(
        profile.data["spec"]["roleRef"]["from"]["name"],
        "demo-karpenter-node"
    );
    let entry = wait_object(client, Api::AccessEntry, "demo-karpenter-node").await;
    assert_eq!(
        entry.data["spec"]["principalARN"],
        "arn:aws:iam::111122223333:role/demo-node"
    );
    assert_eq!(entry.data["spec"]["type"], "EC2_LINUX");
    for object in [&oidc, &policy, &controller, &node, &profile, &entry] {
        assert_managed(object, &cluster, true);
        assert_standard_tags(&object.data["spec"]["tags"]);
    }
    // [KB-05]: Flux, the NodePool ConfigMap and the ClusterResourceSet.
    let oci = wait_object(client, Api::OciRepository, "demo-karpenter").await;
    assert_eq!(oci.data["spec"]["ref"]["tag"], "1.0.8");
    let release = wait_object(client, Api::HelmRelease, "demo-karpenter").await;
    assert_eq!(
        release.data["spec"]["kubeConfig"]["secretRef"]["name"],
        "demo-kubeconfig"
    );
    assert_eq!(
        release.data["spec"]["values"]["settings"]["clusterName"],
        "demo"
    );
    assert_eq!(
        release.data["spec"]["values"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::111122223333:role/demo-karpenter-controller"
    );
    let crs = wait_object(client, Api::ClusterResourceSet, "demo-karpenter-nodepool").await;
    assert_eq!(crs.data["spec"]["strategy"], "Reconcile");
    let config_map = wait_object(client, Api::ConfigMap, "demo-karpenter-nodepool").await;
    let resources = config_map.data["data"]["resources.yaml"].as_str().unwrap();
    assert!(resources.contains(&net.security_group), "{resources}");
    assert!(resources.contains(&net.private[0]) && resources.contains(&net.private[1]));
    for object in [&oci, &release, &crs, &config_map] {
        assert_managed(object, &cluster, false);
    }
    // [KB-05]: the one-shot rollout restarts, recorded on the Cluster.
    wait("both rollout restarts recorded", || async {
        let c = clusters(client).get("demo").await.unwrap();
        !annotation(
            &c,
            "eks.kany8s.io/karpenter-bootstrapper.coredns-restarted-at",
        )
        .is_empty()
            && !annotation(
                &c,
                "eks.kany8s.io/karpenter-bootstrapper.karpenter-restarted-at",
            )
            .is_empty()
    })
    .await;
    for (namespace, name) in [("kube-system", "coredns"), ("karpenter", "karpenter")] {
        let deployment = KubeApi::<Deployment>::namespaced(client.clone(), namespace)
            .get(name)
            .await
            .unwrap();
        let annotations = deployment
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .annotations
            .unwrap();
        assert!(
            annotations.contains_key("kubectl.kubernetes.io/restartedAt"),
            "{name}"
        );
    }
    let (type_, note) = wait_event(client, "demo", "BootstrapperReconciled").await;
    assert_eq!(
        (type_.as_str(), note.as_str()),
        ("Normal", "karpenter bootstrap resources reconciled")
    );
    assert!(sandbox.metrics.sample("kany8s_eks_plugin_last_successful_sync_unix_seconds{controller=\"eks-karpenter-bootstrapper\"}").unwrap() > 0.0);

    // [KB-06]: what the deletion must clean up, in the "workload cluster" and in EC2.
    for (api_version, kind, plural) in [
        ("karpenter.sh/v1", "NodePool", "nodepools"),
        ("karpenter.sh/v1", "NodeClaim", "nodeclaims"),
        ("karpenter.k8s.aws/v1", "EC2NodeClass", "ec2nodeclasses"),
    ] {
        let (group, version) = api_version.split_once('/').unwrap();
        let resource = kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk(group, version, kind),
            plural,
        );
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": api_version, "kind": kind, "metadata": {"name": "default"}, "spec": {},
        }))
        .unwrap();
        KubeApi::<DynamicObject>::all_with(client.clone(), &resource)
            .create(&PostParams::default(), &object)
            .await
            .unwrap();
    }
    let ec2 = &sandbox.ec2;
    let tagged = moto::instances(ec2, &net.private[0], 3, Some("demo")).await;
    let other = moto::instances(ec2, &net.private[1], 1, Some("another-cluster")).await;
    let orphan = moto::eni(ec2, &net.private[0], &net.security_group, true).await;
    let attached = moto::eni(ec2, &net.private[0], &net.security_group, true).await;
    moto::attach(ec2, &attached, &other[0]).await;

    clusters(client)
        .delete("demo", &DeleteParams::default())
        .await
        .unwrap();
    let (_, note) = wait_event(client, "demo", "FluxSuspendedForDeletion").await;
    assert_eq!(
        note,
        "suspended Flux OCIRepository/HelmRelease for cluster deletion"
    );
    wait("the Cluster gone (finalizer released)", || async {
        clusters(client).get_opt("demo").await.unwrap().is_none()
    })
    .await;
    let karpenter = KubeApi::<Deployment>::namespaced(client.clone(), "karpenter")
        .get("karpenter")
        .await
        .unwrap();
    assert_eq!(karpenter.spec.unwrap().replicas, Some(0));
    let nodepools = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("karpenter.sh", "v1", "NodePool"),
        "nodepools",
    );
    assert!(
        KubeApi::<DynamicObject>::all_with(client.clone(), &nodepools)
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        moto::states(ec2, &tagged)
            .await
            .iter()
            .all(|s| s == "terminated")
    );
    assert_eq!(moto::states(ec2, &other).await, ["running"]);
    assert_eq!(moto::enis(ec2, &net.security_group).await, [attached]);
    let _ = orphan;
}

/// [KB-02], [KB-03], [PLG-05]: no topology → TopologyMissing; no subnet variable →
/// TopologyVariableMissing; the ACK APIs missing → PrerequisiteAPIMissing, and when their
/// CRDs appear (re-checked by discovery) the bootstrap goes on without any Cluster change;
/// nothing is written before. The finalizer and label are there from the first pass.
#[tokio::test]
async fn kb02_kb03_bad_topology_then_apis_appear() {
    let Some(sandbox) = start(false, Duration::from_millis(200)).await else {
        return;
    };
    let client = &sandbox.client;
    let net = &sandbox.net;
    create_cluster(client, "demo", None, json!({})).await;
    let (type_, note) = wait_event(client, "demo", "TopologyMissing").await;
    assert_eq!(type_, "Warning");
    assert!(
        note.starts_with("Cluster.spec.topology is required"),
        "{note}"
    );
    let current = clusters(client).get("demo").await.unwrap();
    assert!(
        current
            .finalizers()
            .contains(&"eks.kany8s.io/karpenter-cleanup".to_string())
    );
    assert_eq!(current.labels()["cluster.x-k8s.io/cluster-name"], "demo");

    clusters(client)
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"topology": {"classRef": {"name": "eks"}, "version": "v1.34.0",
                "variables": [{"name": "vpc-security-group-ids", "value": ["sg-cp"]}]}}}),
            ),
        )
        .await
        .unwrap();
    let (type_, note) = wait_event(client, "demo", "TopologyVariableMissing").await;
    assert_eq!(type_, "Warning");
    assert!(note.contains("\"vpc-node-subnet-ids\""), "{note}");

    clusters(client)
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"topology": {"variables": [
                {"name": "vpc-security-group-ids", "value": [net.security_group]},
                {"name": "vpc-node-subnet-ids", "value": net.private}]}}})),
        )
        .await
        .unwrap();
    let (type_, note) = wait_event(client, "demo", "PrerequisiteAPIMissing").await;
    assert_eq!(type_, "Warning");
    assert!(
        note.contains("Cluster (eks.services.k8s.aws/v1alpha1)"),
        "{note}"
    );
    // Nothing was written while the APIs were missing.
    assert!(
        KubeApi::<ConfigMap>::namespaced(client.clone(), NS)
            .get_opt("demo-karpenter-nodepool")
            .await
            .unwrap()
            .is_none()
    );

    install_fixture_crds(client).await;
    create_ack_cluster(client, &net.vpc).await;
    create_fargate_profiles(client).await;
    // The control-plane SG is the node SG: no SecurityGroup object, the ConfigMap names it.
    let config_map = wait_object(client, Api::ConfigMap, "demo-karpenter-nodepool").await;
    assert!(
        config_map.data["data"]["resources.yaml"]
            .as_str()
            .unwrap()
            .contains(&net.security_group)
    );
    wait_object(client, Api::HelmRelease, "demo-karpenter").await;
    wait_event(client, "demo", "BootstrapperReconciled").await;
    assert!(
        objects(client, Api::SecurityGroup)
            .get_opt("demo-karpenter-node-sg")
            .await
            .unwrap()
            .is_none()
    );
}

/// [KB-03]: a public subnet and a VPC mismatch stop the bootstrap with the subnet verdict;
/// nothing is written. [PLG-06]: an unmanaged Role of the same name is left as it is (Warning,
/// metric) while the rest is written; with takeover it is taken over. On deletion the
/// unmanaged objects stay.
#[tokio::test]
async fn kb03_plg06_bad_subnets_and_unmanaged_objects() {
    let Some(sandbox) = start(true, Duration::from_secs(300)).await else {
        return;
    };
    let client = &sandbox.client;
    let net = &sandbox.net;
    create_ack_cluster(client, &net.vpc).await;
    create_fargate_profiles(client).await;
    let foreign: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "iam.services.k8s.aws/v1alpha1", "kind": "Role",
        "metadata": {"name": "demo-karpenter-node", "namespace": NS},
        "spec": {"name": "someone-elses-role", "assumeRolePolicyDocument": "{}"},
    }))
    .unwrap();
    objects(client, Api::Role)
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();

    // A public subnet (Cluster `public`, same EKS cluster).
    create_cluster(
        client,
        "public",
        Some(json!([
            {"name": "vpc-node-subnet-ids", "value": [net.private[0], net.public]},
            {"name": "vpc-node-security-group-ids", "value": [net.security_group]},
        ])),
        json!({}),
    )
    .await;
    let (type_, note) = wait_event(client, "public", "AWSPrerequisitesNotReady").await;
    assert_eq!(type_, "Warning");
    assert!(
        note.contains(&format!("{} (via igw-", net.public)),
        "{note}"
    );
    assert!(
        objects(client, Api::Policy)
            .get_opt("demo-karpenter-controller-policy")
            .await
            .unwrap()
            .is_none()
    );

    // A VPC mismatch: the ACK Cluster reports another VPC than the subnets'.
    objects(client, Api::AckCluster)
        .patch_status(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"resourcesVPCConfig": {"vpcID": "vpc-0000aaaa"}}})),
        )
        .await
        .unwrap();
    create_cluster(
        client,
        "demo",
        Some(json!([
            {"name": "vpc-node-subnet-ids", "value": net.private},
            {"name": "vpc-node-security-group-ids", "value": [net.security_group]},
        ])),
        json!({}),
    )
    .await;
    let (_, note) = wait_event(client, "demo", "AWSPrerequisitesNotReady").await;
    assert!(
        note.contains(&format!(
            "subnets are in VPC {}, the EKS cluster is in VPC vpc-0000aaaa",
            net.vpc
        )),
        "{note}"
    );
    assert!(
        objects(client, Api::Policy)
            .get_opt("demo-karpenter-controller-policy")
            .await
            .unwrap()
            .is_none()
    );
    // ACK reports the right VPC: the ACK watch moves the bootstrap on.
    objects(client, Api::AckCluster)
        .patch_status(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"resourcesVPCConfig": {"vpcID": net.vpc}}})),
        )
        .await
        .unwrap();

    // [PLG-06]: the unmanaged Role is reported, not touched; the rest is written.
    let (type_, note) = wait_event(client, "demo", "ResourceOwnershipConflict").await;
    assert_eq!(type_, "Warning");
    assert_eq!(
        note,
        "Role default/demo-karpenter-node exists and is not managed by eks-karpenter-bootstrapper"
    );
    wait_object(
        client,
        Api::InstanceProfile,
        "demo-karpenter-node-instance-profile",
    )
    .await;
    let untouched = objects(client, Api::Role)
        .get("demo-karpenter-node")
        .await
        .unwrap();
    assert_eq!(untouched.data["spec"]["name"], "someone-elses-role");
    assert!(untouched.owner_references().is_empty());
    assert_eq!(annotation(&untouched, "eks.kany8s.io/managed-by"), "");
    assert!(sandbox.metrics.sample("kany8s_eks_plugin_ownership_conflicts_total{controller=\"eks-karpenter-bootstrapper\",resource=\"Role\"}").unwrap() >= 1.0);
    assert!(
        events(client, "demo", "BootstrapperReconciled")
            .await
            .is_empty()
    );

    // Takeover allowed: the Role becomes the bootstrapper's.
    clusters(client)
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"eks.kany8s.io/allow-unmanaged-takeover": "true"}}})),
        )
        .await
        .unwrap();
    wait_event(client, "demo", "ResourceTakeoverApplied").await;
    let taken = objects(client, Api::Role)
        .get("demo-karpenter-node")
        .await
        .unwrap();
    assert_eq!(taken.data["spec"]["name"], "demo-node");
    assert_eq!(annotation(&taken, "eks.kany8s.io/managed-by"), BOOTSTRAPPER);

    // An unmanaged HelmRelease of another owner in the namespace is not suspended on deletion.
    let unmanaged: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "someone-else", "namespace": NS}, "spec": {"interval": "5m"},
    }))
    .unwrap();
    objects(client, Api::HelmRelease)
        .create(&PostParams::default(), &unmanaged)
        .await
        .unwrap();
    clusters(client)
        .delete("demo", &DeleteParams::default())
        .await
        .unwrap();
    wait("the Cluster gone", || async {
        clusters(client).get_opt("demo").await.unwrap().is_none()
    })
    .await;
    let still = objects(client, Api::HelmRelease)
        .get("someone-else")
        .await
        .unwrap();
    assert!(still.data["spec"].get("suspend").is_none());
}
