//! The EKS pack without the Kany8s manager: fake-kro runs the `eks-ack` RGD over the project's
//! minimal ACK CRDs, the test plays Kany8s (the `EksControlPlane` instance named like the
//! Kany8sControlPlane, `spec.version` injected in semver) and ACK (the ACK Cluster's status),
//! and the rotator finds the ACK Cluster through the Cluster's `controlPlaneRef` ([PLG-02])
//! and writes the Secret. Checks the RGD's version mapping, its readiness (ACTIVE and an
//! endpoint) and that it publishes no `kubeconfigSecretRef` ([ROT-09]).

use std::time::Duration;

use crate::common::*;
use fake_kro::sim::{ChildMode, SimOptions};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};

fn fixture(path: &str) -> Value {
    let path = format!("{}/../../fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn instances(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        NS,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("eks.kany8s.io", "v1alpha1", "EksControlPlane"),
            "ekscontrolplanes",
        ),
    )
}

/// [ROT-09], [PLG-02], [RGA-01], [RGA-02], [RGA-07]: the eks-ack RGD and the rotator together.
#[tokio::test]
async fn rot09_eks_pack_with_fake_kro() {
    let sandbox = start(Setup::default()).await;
    let client = &sandbox.client;
    install_crd(client, fixture("crds/ack/iam.services.k8s.aws_roles.yaml")).await;
    tokio::spawn(fake_kro::sim::run(
        client.clone(),
        SimOptions {
            requeue: Duration::from_millis(100),
            mode: ChildMode::Applied,
            ..SimOptions::default()
        },
    ));
    let rgds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("kro.run", "v1alpha1", "ResourceGraphDefinition"),
            "resourcegraphdefinitions",
        ),
    );
    let rgd: DynamicObject =
        serde_json::from_value(fixture("rgds/control-plane/eks-ack.yaml")).unwrap();
    wait("the RGD created", || async {
        rgds.create(&PostParams::default(), &rgd).await.is_ok()
    })
    .await;
    wait("the RGD active", || async {
        rgds.get("eks-ack.kro.run").await.unwrap().data["status"]["state"] == "Active"
    })
    .await;

    // Cluster API's Cluster, opted in, pointing at the control plane `demo-cp`.
    let cluster: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
        "metadata": {"name": "demo", "namespace": NS,
            "annotations": {"eks.kany8s.io/kubeconfig-rotator": "enabled"}},
        "spec": {"controlPlaneRef": {"apiGroup": "controlplane.cluster.x-k8s.io",
            "kind": "Kany8sControlPlane", "name": "demo-cp"}},
    }))
    .unwrap();
    clusters(client)
        .create(&PostParams::default(), &cluster)
        .await
        .unwrap();
    // Kany8s's instance: named like the control plane, version injected as the Cluster has it.
    let instance: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "eks.kany8s.io/v1alpha1", "kind": "EksControlPlane",
        "metadata": {"name": "demo-cp", "namespace": NS},
        "spec": {"version": "v1.34.2", "region": "eu-west-1", "subnetIDs": ["subnet-a", "subnet-b"]},
    }))
    .unwrap();
    let instances = instances(client);
    wait("the instance created", || async {
        instances
            .create(&PostParams::default(), &instance)
            .await
            .is_ok()
    })
    .await;

    // kro's children: the ACK Cluster named like the instance, EKS version major.minor.
    let acks = ack_clusters(client);
    wait("the ACK Cluster", || async {
        acks.get_opt("demo-cp").await.unwrap().is_some()
    })
    .await;
    let ack = acks.get("demo-cp").await.unwrap();
    assert_eq!(ack.data["spec"]["version"], "1.34");
    assert_eq!(ack.data["spec"]["name"], "demo-cp");
    assert_eq!(
        ack.data["spec"]["roleRef"]["from"]["name"],
        "demo-cp-control-plane"
    );
    assert_eq!(
        ack.metadata.annotations.as_ref().unwrap()["services.k8s.aws/region"],
        "eu-west-1"
    );
    let (_, note) = wait_event(client, "demo", "ACKClusterNotReady").await;
    assert_eq!(
        note,
        "waiting for ACK status fields endpoint/CA on default/demo-cp"
    );
    let status = |o: &DynamicObject| o.data["status"].clone();
    assert_ne!(
        status(&instances.get("demo-cp").await.unwrap())["ready"],
        true
    );

    // ACK: creating with an endpoint is not ready; ACTIVE is.
    set_ack_status(
        client,
        "demo-cp",
        json!({"status": "CREATING", "endpoint": ENDPOINT}),
    )
    .await;
    wait("the endpoint reflected", || async {
        status(&instances.get("demo-cp").await.unwrap())["endpoint"] == ENDPOINT
    })
    .await;
    let creating = status(&instances.get("demo-cp").await.unwrap());
    assert_eq!(creating["ready"], false, "{creating}");
    assert_eq!(creating["reason"], "Creating");
    assert_eq!(creating["version"], "", "no version before ACTIVE");
    set_ack_status(client, "demo-cp", active()).await;
    wait("the instance ready", || async {
        status(&instances.get("demo-cp").await.unwrap())["ready"] == true
    })
    .await;
    let instance_status = status(&instances.get("demo-cp").await.unwrap());
    assert_eq!(instance_status["endpoint"], ENDPOINT);
    assert_eq!(instance_status["version"], "1.34");
    assert!(
        instance_status.get("kubeconfigSecretRef").is_none(),
        "Option A: {instance_status}"
    );

    // The rotator: the EKS name is the control plane's, the Secret the Cluster's.
    let probe = wait_secret(client, "demo-kubeconfig").await;
    assert_eq!(annotation(&probe, "eks.kany8s.io/cluster-name"), "demo-cp");
    assert_eq!(annotation(&probe, "eks.kany8s.io/region"), "eu-west-1");
    let exec = wait_secret(client, "demo-kubeconfig-exec").await;
    assert_eq!(
        kubeconfig_of(&exec)["users"][0]["user"]["exec"]["args"],
        json!([
            "eks",
            "get-token",
            "--region",
            "eu-west-1",
            "--cluster-name",
            "demo-cp"
        ])
    );
}
