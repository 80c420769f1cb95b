//! Component tests of the Kany8sControlPlane controller beyond the kro happy path: an external
//! backend with kubeconfig Option A, an invalid kubeconfig, a backend change, clusterctl's
//! delete-for-move and `--watch-filter`.

use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kany8s::api::Kany8sControlPlane;
use kany8s::capi::Cluster;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::common::*;

/// A CRD for an external backend kind of group `example.com`.
async fn external_crd(client: &Client, kind: &str) -> Api<DynamicObject> {
    let plural = format!("{}s", kind.to_lowercase());
    let open = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.example.com")},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List")},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": open, "status": open}}}}]}});
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(
        &PostParams::default(),
        &serde_json::from_value(crd).unwrap(),
    )
    .await
    .unwrap();
    wait_established(client, &format!("{plural}.example.com")).await;
    Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("example.com", "v1", kind),
            &plural,
        ),
    )
}

fn external_cp(name: &str, cluster: &Cluster, kind: &str) -> Kany8sControlPlane {
    serde_json::from_value(json!({"apiVersion": "controlplane.cluster.x-k8s.io/v1alpha1", "kind": "Kany8sControlPlane",
        "metadata": {"name": name, "namespace": "default", "ownerReferences": [{
            "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "name": cluster.name_any(), "uid": cluster.uid().unwrap()}]},
        "spec": {"version": "v1.32.1", "externalBackend": {"apiVersion": "example.com/v1", "kind": kind, "spec": {"region": "eu-west-1"}}}}))
    .unwrap()
}

fn cluster_secret(name: &str, cluster: &str, content: &str) -> Secret {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret", "type": "cluster.x-k8s.io/secret",
        "metadata": {"name": name, "namespace": "default", "labels": {"cluster.x-k8s.io/cluster-name": cluster}},
        "data": {"value": base64::engine::general_purpose::STANDARD.encode(content)}}))
    .unwrap()
}

async fn set_status(api: &Api<DynamicObject>, name: &str, status: Value) {
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .unwrap();
}

/// [CP-30]–[CP-34], [RGA-12], [KC-01]–[KC-07], [CPC-35], [CPC-43], [CPC-45]: an external
/// backend object gets the version and the cluster identity; its status drives Ready; kubeconfig
/// Option A is verified, an invalid one reported; then Available with versions.
#[tokio::test]
async fn external_backend_with_option_a() {
    let (_server, client) = start().await;
    let backends = external_crd(&client, "ManagedControlPlane").await;
    let cluster = create_cluster(&client, "e1").await;
    let cps: Api<Kany8sControlPlane> = Api::namespaced(client.clone(), "default");
    cps.create(
        &PostParams::default(),
        &external_cp("e1", &cluster, "ManagedControlPlane"),
    )
    .await
    .unwrap();
    wait_for(&cps, "e1", "the backend written", |cp| {
        cp.status.as_ref().is_some_and(|s| s.backend_ref.is_some())
    })
    .await;
    let object = backends.get("e1").await.unwrap();
    assert_eq!(
        object.data["spec"],
        json!({"region": "eu-west-1", "version": "v1.32.1", "clusterName": "e1",
            "clusterNamespace": "default", "clusterUID": cluster.uid().unwrap()})
    );
    let creating = cps.get("e1").await.unwrap();
    assert_eq!(
        condition(&creating, "Ready").unwrap(),
        (
            "False".into(),
            "Creating".into(),
            "waiting for control plane to become ready".into()
        )
    );
    assert!(condition(&creating, "ResourceGraphDefinitionResolved").is_none());

    set_status(
        &backends,
        "e1",
        json!({"ready": true, "endpoint": "https://[2001:db8::10]:8443", "version": "1.32"}),
    )
    .await;
    let waiting = wait_for(&cps, "e1", "Option A wait", |cp| {
        condition(cp, "KubeconfigSecretReconciled")
            .is_some_and(|c| c.1 == "KubeconfigSecretNotFound")
            && cp.spec.control_plane_endpoint.is_some()
    })
    .await;
    assert_eq!(
        condition(&waiting, "KubeconfigSecretReconciled").unwrap().2,
        "waiting for secret default/e1-kubeconfig to be provided by the backend"
    );
    let endpoint = waiting.spec.control_plane_endpoint.clone().unwrap();
    assert_eq!(
        (endpoint.host.as_deref(), endpoint.port),
        (Some("2001:db8::10"), Some(8443))
    );
    assert!(waiting.status.as_ref().unwrap().initialization.is_none());

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &cluster_secret("e1-kubeconfig", "e1", "clusters: ["),
        )
        .await
        .unwrap();
    let invalid = wait_for(&cps, "e1", "InvalidKubeconfig", |cp| {
        condition(cp, "KubeconfigSecretReconciled").is_some_and(|c| c.1 == "InvalidKubeconfig")
    })
    .await;
    let message = condition(&invalid, "KubeconfigSecretReconciled").unwrap().2;
    assert!(
        message.starts_with("secret default/e1-kubeconfig contains invalid kubeconfig: "),
        "{message}"
    );
    assert!(
        !message.contains("clusters: ["),
        "the kubeconfig text leaked: {message}"
    );

    secrets
        .replace(
            "e1-kubeconfig",
            &PostParams::default(),
            &cluster_secret("e1-kubeconfig", "e1", KUBECONFIG),
        )
        .await
        .unwrap();
    let available = wait_for(&cps, "e1", "Available", |cp| {
        condition(cp, "Available").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(
        condition(&available, "KubeconfigSecretReconciled")
            .unwrap()
            .1,
        "ProvidedByBackend"
    );
    let status = available.status.unwrap();
    assert_eq!(status.version.as_deref(), Some("v1.32.1"));
    assert_eq!(
        status.initialization.unwrap().control_plane_initialized,
        Some(true)
    );
    // Option A: the provider never writes the backend's Secret.
    let secret = secrets.get("e1-kubeconfig").await.unwrap();
    assert!(secret.owner_references().is_empty());
}

/// [KC-08]–[KC-11], [CPC-39], [CPC-42], [CPC-46]: the kubeconfig step's refusals: a
/// cross-namespace source, a source without `value`, and an Option A Secret without the Cluster
/// API type and label. Nothing is written in any of them.
#[tokio::test]
async fn kubeconfig_refusals() {
    let (_server, client) = start().await;
    let backends = external_crd(&client, "RefusedControlPlane").await;
    let cluster = create_cluster(&client, "r1").await;
    let cps: Api<Kany8sControlPlane> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let kubeconfig_condition =
        |cp: &Kany8sControlPlane| condition(cp, "KubeconfigSecretReconciled");
    cps.create(
        &PostParams::default(),
        &external_cp("r1", &cluster, "RefusedControlPlane"),
    )
    .await
    .unwrap();
    wait_for(&cps, "r1", "the backend written", |cp| {
        cp.status.as_ref().is_some_and(|s| s.backend_ref.is_some())
    })
    .await;
    let ready = json!({"ready": true, "endpoint": "https://cp.example:6443"});
    let mut status = ready.clone();
    status["kubeconfigSecretRef"] = json!({"name": "src", "namespace": "other"});
    set_status(&backends, "r1", status).await;
    let cp = wait_for(&cps, "r1", "cross-namespace refusal", |cp| {
        kubeconfig_condition(cp).is_some_and(|c| c.1 == "KubeconfigSourceSecretCrossNamespace")
    })
    .await;
    assert_eq!(
        kubeconfig_condition(&cp).unwrap().2,
        "cross-namespace source secret other/src is not allowed (control plane namespace: default)"
    );

    let mut empty = cluster_secret("src", "r1", "unused");
    empty.data = Some(std::collections::BTreeMap::from([(
        "other".to_string(),
        k8s_openapi::ByteString(b"x".to_vec()),
    )]));
    secrets
        .create(&PostParams::default(), &empty)
        .await
        .unwrap();
    set_status(
        &backends,
        "r1",
        json!({"kubeconfigSecretRef": {"name": "src", "namespace": null}}),
    )
    .await;
    let cp = wait_for(&cps, "r1", "data missing", |cp| {
        kubeconfig_condition(cp).is_some_and(|c| c.1 == "KubeconfigSourceSecretDataMissing")
    })
    .await;
    assert_eq!(
        kubeconfig_condition(&cp).unwrap().2,
        "source secret default/src missing data[\"value\"]"
    );
    assert_eq!(
        condition(&cp, "Ready").unwrap().1,
        "KubeconfigSourceSecretDataMissing"
    );
    assert!(secrets.get_opt("r1-kubeconfig").await.unwrap().is_none());

    // Option A with a Secret lacking the Cluster API type and label.
    let plain: Secret = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "r1-kubeconfig", "namespace": "default"},
        "data": {"value": base64::engine::general_purpose::STANDARD.encode(KUBECONFIG)}}))
    .unwrap();
    secrets
        .create(&PostParams::default(), &plain)
        .await
        .unwrap();
    set_status(&backends, "r1", json!({"kubeconfigSecretRef": null})).await;
    let cp = wait_for(&cps, "r1", "not compliant", |cp| {
        kubeconfig_condition(cp).is_some_and(|c| c.1 == "KubeconfigSecretNotCompliant")
    })
    .await;
    assert_eq!(
        kubeconfig_condition(&cp).unwrap().2,
        "secret default/r1-kubeconfig must have type cluster.x-k8s.io/secret and label cluster.x-k8s.io/cluster-name=r1"
    );
    assert!(cp.status.unwrap().initialization.is_none());
}

/// [CP-12], [CEL-04]: another external kind while the old object exists and is owned blocks
/// writes with BackendChanged; deleting the old object lets the new one be created.
#[tokio::test]
async fn backend_change_waits_for_the_old_object() {
    let (_server, client) = start().await;
    let old = external_crd(&client, "OldControlPlane").await;
    let new = external_crd(&client, "NewControlPlane").await;
    let cluster = create_cluster(&client, "b1").await;
    let cps: Api<Kany8sControlPlane> = Api::namespaced(client.clone(), "default");
    cps.create(
        &PostParams::default(),
        &external_cp("b1", &cluster, "OldControlPlane"),
    )
    .await
    .unwrap();
    wait_for(&cps, "b1", "the old backend", |cp| {
        cp.status
            .as_ref()
            .and_then(|s| s.backend_ref.as_ref())
            .is_some_and(|r| r.kind == "OldControlPlane")
    })
    .await;
    cps.patch(
        "b1",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"externalBackend": {"kind": "NewControlPlane"}}})),
    )
    .await
    .unwrap();
    let changed = wait_for(&cps, "b1", "BackendChanged", |cp| {
        condition(cp, "Ready").is_some_and(|c| c.1 == "BackendChanged")
    })
    .await;
    assert_eq!(
        condition(&changed, "Ready").unwrap().2,
        "backend changed from example.com/v1/OldControlPlane to example.com/v1/NewControlPlane; delete OldControlPlane default/b1 or revert the spec"
    );
    assert!(new.get_opt("b1").await.unwrap().is_none());
    old.delete("b1", &DeleteParams::default()).await.unwrap();
    wait_for(&cps, "b1", "the new backend", |cp| {
        cp.status
            .as_ref()
            .and_then(|s| s.backend_ref.as_ref())
            .is_some_and(|r| r.kind == "NewControlPlane")
    })
    .await;
    assert!(new.get_opt("b1").await.unwrap().is_some());
}

/// [CT-22]: with delete-for-move the finalizer goes and the backend stays.
#[tokio::test]
async fn delete_for_move_keeps_the_backend() {
    let (_server, client) = start().await;
    let backends = external_crd(&client, "MovedControlPlane").await;
    let cluster = create_cluster(&client, "d1").await;
    let cps: Api<Kany8sControlPlane> = Api::namespaced(client.clone(), "default");
    cps.create(
        &PostParams::default(),
        &external_cp("d1", &cluster, "MovedControlPlane"),
    )
    .await
    .unwrap();
    wait_for(&cps, "d1", "the backend", |cp| {
        cp.status.as_ref().is_some_and(|s| s.backend_ref.is_some())
    })
    .await;
    cps.patch("d1", &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"clusterctl.cluster.x-k8s.io/delete-for-move": ""}}})))
        .await
        .unwrap();
    cps.delete("d1", &DeleteParams::default()).await.unwrap();
    wait_gone(&cps, "d1").await;
    let kept = backends.get("d1").await.unwrap();
    assert!(kept.metadata.deletion_timestamp.is_none());
}

/// [MGR-01] `--watch-filter`: only labelled objects are reconciled.
#[tokio::test]
async fn watch_filter_limits_the_primary_objects() {
    let (_server, client) = start_without_manager().await;
    tokio::spawn(kany8s::manager::run(
        client.clone(),
        kany8s::manager::Config {
            groups: vec![kany8s::manager::Group::ControlPlane],
            options: kany8s::manager::Options {
                watch_filter: Some("team-a".into()),
                ..kany8s::manager::Options::default()
            },
            leader_election: None,
            health_address: None,
            metrics_address: None,
        },
        std::future::pending(),
        None,
    ));
    let backends = external_crd(&client, "FilteredControlPlane").await;
    let cluster = create_cluster(&client, "w1").await;
    let cps: Api<Kany8sControlPlane> = Api::namespaced(client.clone(), "default");
    let mut labelled = external_cp("w-labelled", &cluster, "FilteredControlPlane");
    labelled
        .labels_mut()
        .insert("cluster.x-k8s.io/watch-filter".into(), "team-a".into());
    cps.create(
        &PostParams::default(),
        &external_cp("w-other", &cluster, "FilteredControlPlane"),
    )
    .await
    .unwrap();
    cps.create(&PostParams::default(), &labelled).await.unwrap();
    wait_for(&cps, "w-labelled", "reconciled", |cp| cp.status.is_some()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let other = cps.get("w-other").await.unwrap();
    assert!(other.status.is_none() && other.finalizers().is_empty());
    assert!(backends.get_opt("w-other").await.unwrap().is_none());
}
