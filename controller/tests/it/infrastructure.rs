//! Component tests of the Kany8sCluster controller: the real manager, fake-kro's simulator
//! (Applied mode) and the embedded API server, in process.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kany8s::api::Kany8sCluster;
use kany8s::capi::Cluster;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::common::*;

const FINALIZER: &str = "kany8scluster.infrastructure.cluster.x-k8s.io";

fn kany8s_cluster(name: &str, owner: Option<&Cluster>, rgd: Option<&str>) -> Kany8sCluster {
    let mut object = json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1alpha1", "kind": "Kany8sCluster",
        "metadata": {"name": name, "namespace": "default"}, "spec": {}});
    if let Some(cluster) = owner {
        object["metadata"]["ownerReferences"] = json!([{"apiVersion": "cluster.x-k8s.io/v1beta2",
            "kind": "Cluster", "name": cluster.name_any(), "uid": cluster.uid().unwrap()}]);
    }
    if let Some(rgd) = rgd {
        object["spec"] =
            json!({"resourceGraphDefinitionRef": {"name": rgd}, "kroSpec": {"size": "small"}});
    }
    serde_json::from_value(object).unwrap()
}

fn provisioned(ic: &Kany8sCluster) -> bool {
    ic.status
        .as_ref()
        .and_then(|s| s.initialization.as_ref())
        .and_then(|i| i.provisioned)
        == Some(true)
}

async fn set_owner(api: &Api<Kany8sCluster>, name: &str, cluster: &Cluster) {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"ownerReferences": [{"apiVersion": "cluster.x-k8s.io/v1beta2",
            "kind": "Cluster", "name": cluster.name_any(), "uid": cluster.uid().unwrap()}]}}),
        ),
    )
    .await
    .unwrap();
}

/// [IC-04], [IC-02], [IC-18], [CT-21], [CT-24], [ICC-01]: stub mode is provisioned at once, with the
/// finalizer and block-move, no RGD condition and no endpoint; deletion just releases.
#[tokio::test]
async fn stub_mode() {
    let (_server, client, metrics) = start_observed().await;
    let cluster = create_cluster(&client, "s1").await;
    let ics: Api<Kany8sCluster> = Api::namespaced(client.clone(), "default");
    ics.create(
        &PostParams::default(),
        &kany8s_cluster("s1", Some(&cluster), None),
    )
    .await
    .unwrap();
    let ready = wait_for(&ics, "s1", "provisioned", provisioned).await;
    assert_eq!(
        condition(&ready, "Ready").unwrap(),
        (
            "True".into(),
            "Ready".into(),
            "infrastructure is ready".into()
        )
    );
    assert!(condition(&ready, "ResourceGraphDefinitionResolved").is_none());
    assert!(ready.finalizers().iter().any(|f| f == FINALIZER));
    assert_eq!(
        ready.annotations()["clusterctl.cluster.x-k8s.io/block-move"],
        "true"
    );
    assert!(ready.spec.control_plane_endpoint.is_none());
    insta::assert_yaml_snapshot!("stub_mode", redacted(&ready));
    assert_quiet(&ics, "s1", &metrics, kany8s::metrics::INFRASTRUCTURE).await;
    ics.delete("s1", &DeleteParams::default()).await.unwrap();
    wait_gone(&ics, "s1").await;
}

/// [IC-05]–[IC-14], [IC-16], [ICC-06], [ICC-11], [ICC-13]: a kro-mode Kany8sCluster whose RGD declares
/// clusterUID waits for its owner Cluster, then gets an instance carrying the cluster
/// identity, becomes provisioned through the instance watch (no polling: [IC-10]), stays quiet, pauses, and is deleted instance first.
#[tokio::test]
async fn kro_mode_cluster_identity() {
    let (_server, client, metrics) = start_observed().await;
    apply_rgd(&client, fixture("infrastructure/demo-infra-ownerref.yaml")).await;
    let ics: Api<Kany8sCluster> = Api::namespaced(client.clone(), "default");
    ics.create(
        &PostParams::default(),
        &kany8s_cluster("c1-infra", None, Some("demo-infra-ownerref.kro.run")),
    )
    .await
    .unwrap();
    let waiting = wait_for(&ics, "c1-infra", "waiting for the owner", |ic| {
        condition(ic, "Ready").is_some_and(|c| c.1 == "WaitingForOwnerCluster")
    })
    .await;
    assert_eq!(
        condition(&waiting, "Ready").unwrap().2,
        "waiting for owner Cluster reference to be set"
    );
    let instances = instances(
        &client,
        "DemoInfrastructureOwned",
        "demoinfrastructureowneds",
    );
    assert!(instances.get_opt("c1-infra").await.unwrap().is_none());

    // [IC-07]: the owner's name is injected, not the Kany8sCluster's.
    let cluster = create_cluster(&client, "c1").await;
    set_owner(&ics, "c1-infra", &cluster).await;
    let ready = wait_for(&ics, "c1-infra", "provisioned", provisioned).await;
    assert_eq!(
        condition(&ready, "Ready").unwrap(),
        (
            "True".into(),
            "Ready".into(),
            "infrastructure is ready".into()
        )
    );
    assert_eq!(
        condition(&ready, "ResourceGraphDefinitionResolved")
            .unwrap()
            .2,
        "ResourceGraphDefinition \"demo-infra-ownerref.kro.run\" resolved to kro.run/v1alpha1, Kind=DemoInfrastructureOwned"
    );
    let instance = instances.get("c1-infra").await.unwrap();
    assert_eq!(
        instance.data["spec"],
        // `size` is not in the RGD's schema: the instance CRD prunes it.
        json!({"clusterName": "c1", "clusterNamespace": "default", "clusterUID": cluster.uid().unwrap()})
    );
    assert_eq!(instance.labels()["cluster.x-k8s.io/cluster-name"], "c1");
    assert_eq!(
        instance.annotations()["kany8s.io/owner-uid"],
        ready.uid().unwrap()
    );
    let owners: Vec<(String, Option<bool>)> = instance
        .owner_references()
        .iter()
        .map(|o| (o.kind.clone(), o.controller))
        .collect();
    assert_eq!(
        owners,
        [
            ("Kany8sCluster".into(), Some(true)),
            ("Cluster".into(), None)
        ]
    );
    // The RGD's child that needs the UID exists, owned by the Cluster.
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let owned = configmaps.get("c1-infra-owned").await.unwrap();
    assert_eq!(owned.owner_references()[0].uid, cluster.uid().unwrap());
    insta::assert_yaml_snapshot!("kro_mode_kany8scluster", redacted(&ready));
    let mut instance_view = redacted(&instance);
    instance_view["metadata"]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| {
            [
                "name",
                "namespace",
                "labels",
                "annotations",
                "ownerReferences",
            ]
            .contains(&k.as_str())
        });
    instance_view.as_object_mut().unwrap().remove("status");
    insta::assert_yaml_snapshot!("kro_mode_instance", instance_view);

    // [CP-47] as for the CP: settled means no writes, to the object or the instance.
    let settled_instance = instances.get("c1-infra").await.unwrap().resource_version();
    assert_quiet(&ics, "c1-infra", &metrics, kany8s::metrics::INFRASTRUCTURE).await;
    assert_eq!(
        instances.get("c1-infra").await.unwrap().resource_version(),
        settled_instance
    );

    // [IC-02], [CT-16]–[CT-19]: Cluster.spec.paused suspends and detaches the instance.
    let clusters: Api<Cluster> = Api::namespaced(client.clone(), "default");
    clusters
        .patch(
            "c1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": true}})),
        )
        .await
        .unwrap();
    let paused = wait_for(&ics, "c1-infra", "safely paused", |ic| {
        condition(ic, "Paused").is_some_and(|c| c.0 == "True")
            && !ic
                .annotations()
                .contains_key("clusterctl.cluster.x-k8s.io/block-move")
    })
    .await;
    assert_eq!(
        condition(&paused, "Paused").unwrap().2,
        "Cluster spec.paused is set to true"
    );
    let suspended = instances.get("c1-infra").await.unwrap();
    assert_eq!(suspended.annotations()["kro.run/reconcile"], "suspended");
    assert!(suspended.owner_references().is_empty());
    clusters
        .patch(
            "c1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": false}})),
        )
        .await
        .unwrap();
    wait_for(&ics, "c1-infra", "resumed", |ic| {
        condition(ic, "Paused").is_some_and(|c| c.0 == "False")
    })
    .await;
    for _ in 0..100 {
        let instance = instances.get("c1-infra").await.unwrap();
        if instance.owner_references().len() == 2
            && !instance.annotations().contains_key("kro.run/reconcile")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resumed = instances.get("c1-infra").await.unwrap();
    assert_eq!(resumed.owner_references().len(), 2);
    assert!(!resumed.annotations().contains_key("kany8s.io/suspended"));

    // [IC-02] with [CT-25]: the instance goes first, then the finalizer.
    ics.delete("c1-infra", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&ics, "c1-infra").await;
    assert!(instances.get_opt("c1-infra").await.unwrap().is_none());
}

/// [IC-05], [ICC-05], [IC-16]: a missing RGD is a condition and its creation resolves it
/// through the RGD watch; [IC-07] without an owner the label, then the object name, is
/// injected; [IC-12] an instance endpoint lands in spec.controlPlaneEndpoint.
#[tokio::test]
async fn missing_rgd_then_endpoint() {
    let (_server, client) = start().await;
    let ics: Api<Kany8sCluster> = Api::namespaced(client.clone(), "default");
    let mut labelled = kany8s_cluster("t1-infra-x7", None, Some("demo-infra-endpoint.kro.run"));
    labelled
        .labels_mut()
        .insert("cluster.x-k8s.io/cluster-name".into(), "t1".into());
    ics.create(&PostParams::default(), &labelled).await.unwrap();
    let missing = wait_for(&ics, "t1-infra-x7", "RGD not found", |ic| {
        condition(ic, "Ready").is_some_and(|c| c.1 == "ResourceGraphDefinitionNotFound")
    })
    .await;
    assert_eq!(
        condition(&missing, "ResourceGraphDefinitionResolved").unwrap(),
        (
            "False".into(),
            "ResourceGraphDefinitionNotFound".into(),
            "ResourceGraphDefinition \"demo-infra-endpoint.kro.run\" not found".into()
        )
    );
    assert!(!provisioned(&missing));
    apply_rgd(&client, endpoint_rgd()).await;
    let ready = wait_for(&ics, "t1-infra-x7", "provisioned", provisioned).await;
    let endpoint = ready.spec.control_plane_endpoint.clone().unwrap();
    assert_eq!(
        (endpoint.host.as_deref(), endpoint.port),
        (Some("lb.t1.example.com"), Some(443))
    );
    let instances = instances(&client, "DemoInfraEndpoint", "demoinfraendpoints");
    let instance = instances.get("t1-infra-x7").await.unwrap();
    assert_eq!(instance.data["spec"]["clusterName"], "t1");
    assert!(instance.data["spec"].get("clusterUID").is_none());
}

/// An infrastructure RGD that owns the API endpoint (a load balancer, [IC-12]).
fn endpoint_rgd() -> Value {
    json!({"apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
        "metadata": {"name": "demo-infra-endpoint.kro.run"},
        "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "DemoInfraEndpoint",
            "spec": {"clusterName": "string | required=true", "clusterNamespace": "string | required=true"},
            "status": {"ready": "${lb.metadata.name != \"\"}", "endpoint": "${lb.data.endpoint}"}},
        "resources": [{"id": "lb", "template": {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "${schema.spec.clusterName}-lb", "namespace": "${schema.spec.clusterNamespace}"},
            "data": {"endpoint": "https://lb.${schema.spec.clusterName}.example.com"}}}]}})
}

/// [IC-01]: a Kany8sCluster managed by someone else is never written.
#[tokio::test]
async fn externally_managed_is_never_written() {
    let (_server, client) = start().await;
    let ics: Api<Kany8sCluster> = Api::namespaced(client.clone(), "default");
    let mut external = kany8s_cluster("m1", None, None);
    external
        .annotations_mut()
        .insert("cluster.x-k8s.io/managed-by".into(), "other".into());
    let created = ics.create(&PostParams::default(), &external).await.unwrap();
    // A stub next to it proves the controller is running meanwhile.
    ics.create(&PostParams::default(), &kany8s_cluster("m2", None, None))
        .await
        .unwrap();
    wait_for(&ics, "m2", "provisioned", provisioned).await;
    let after = ics.get("m1").await.unwrap();
    assert_eq!(after.resource_version(), created.resource_version());
    assert!(after.status.is_none());
    assert!(after.finalizers().is_empty());
}
