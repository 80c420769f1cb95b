//! Component tests of the Kany8sControlPlane controller: the real controller, fake-kro's
//! simulator (Applied mode) and the embedded API server, in process.

use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kany8s::api::Kany8sControlPlane;
use kany8s::capi::Cluster;
use kube::ResourceExt;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};

use crate::common::*;

fn control_plane(name: &str, cluster: &Cluster, rgd: &str, kro_spec: Value) -> Kany8sControlPlane {
    serde_json::from_value(json!({"apiVersion": "controlplane.cluster.x-k8s.io/v1alpha1", "kind": "Kany8sControlPlane",
        "metadata": {"name": name, "namespace": "default", "ownerReferences": [{
            "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "name": cluster.name_any(), "uid": cluster.uid().unwrap()}]},
        "spec": {"version": "v1.30.0", "resourceGraphDefinitionRef": {"name": rgd}, "kroSpec": kro_spec}}))
    .unwrap()
}

fn kubeconfig_secret(name: &str, content: &str) -> Secret {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "default"},
        "data": {"value": base64::engine::general_purpose::STANDARD.encode(content)}}))
    .unwrap()
}

/// [CP-20]–[CP-25], [KC-10], [KC-13], [CT-29], [CT-03], [CP-47], [CT-25]: a kro control plane
/// from nothing to Available, kubeconfig rotation, a quiet steady state, and deletion.
#[tokio::test]
async fn kro_control_plane_lifecycle() {
    let (_server, client, metrics) = start_observed().await;
    apply_rgd(
        &client,
        fixture("control-plane/demo-control-plane-kubeconfig.yaml"),
    )
    .await;
    let cluster = create_cluster(&client, "c1").await;
    let cps: Api<Kany8sControlPlane> = Api::namespaced(client.clone(), "default");
    cps.create(
        &PostParams::default(),
        &control_plane(
            "c1-cp",
            &cluster,
            "demo-control-plane-kubeconfig.kro.run",
            json!({"name": "demo"}),
        ),
    )
    .await
    .unwrap();

    // Ready needs the source kubeconfig (Option B gate, [KC-12]).
    let waiting = wait_for(&cps, "c1-cp", "waiting for the source secret", |cp| {
        condition(cp, "KubeconfigSecretReconciled")
            .is_some_and(|c| c.1 == "KubeconfigSourceSecretNotFound")
    })
    .await;
    assert_eq!(
        condition(&waiting, "KubeconfigSecretReconciled").unwrap().2,
        "waiting for source secret default/demo-admin-kubeconfig to be created"
    );
    assert!(waiting.status.as_ref().unwrap().initialization.is_none());
    assert_eq!(
        waiting
            .status
            .as_ref()
            .unwrap()
            .external_managed_control_plane,
        Some(true)
    );

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &kubeconfig_secret("demo-admin-kubeconfig", KUBECONFIG),
        )
        .await
        .unwrap();
    let ready = wait_for(&cps, "c1-cp", "Available", |cp| {
        condition(cp, "Available").is_some_and(|c| c.0 == "True")
    })
    .await;
    let status = ready.status.clone().unwrap();
    assert_eq!(
        condition(&ready, "Ready").unwrap(),
        (
            "True".into(),
            "Ready".into(),
            "control plane is ready".into()
        )
    );
    assert_eq!(
        status.initialization.unwrap().control_plane_initialized,
        Some(true)
    );
    assert_eq!(status.version.as_deref(), Some("v1.30.0"));
    assert_eq!(status.versions[0].version, "v1.30.0");
    assert_eq!(
        ready
            .spec
            .control_plane_endpoint
            .as_ref()
            .and_then(|e| e.host.as_deref()),
        Some("demo-svc.default.svc.cluster.local")
    );
    assert_eq!(
        ready
            .spec
            .control_plane_endpoint
            .as_ref()
            .and_then(|e| e.port),
        Some(6443)
    );
    assert!(
        ready
            .finalizers()
            .iter()
            .any(|f| f == "kany8scontrolplane.controlplane.cluster.x-k8s.io")
    );
    assert_eq!(
        ready.annotations()["clusterctl.cluster.x-k8s.io/block-move"],
        "true"
    );
    assert_eq!(
        condition(&ready, "ResourceGraphDefinitionResolved")
            .unwrap()
            .2,
        "ResourceGraphDefinition \"demo-control-plane-kubeconfig.kro.run\" resolved to kro.run/v1alpha1, Kind=DemoControlPlaneKubeconfig"
    );
    let backend_ref = status.backend_ref.unwrap();
    assert_eq!(
        (backend_ref.kind.as_str(), backend_ref.name.as_str()),
        ("DemoControlPlaneKubeconfig", "c1-cp")
    );

    // [CP-21], [CP-22]: the instance, 1:1 named, with owners, label, annotation and version.
    let instances: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("kro.run", "v1alpha1", "DemoControlPlaneKubeconfig"),
            "democontrolplanekubeconfigs",
        ),
    );
    let instance = instances.get("c1-cp").await.unwrap();
    assert_eq!(instance.data["spec"]["version"], "v1.30.0");
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
            ("Kany8sControlPlane".into(), Some(true)),
            ("Cluster".into(), None)
        ]
    );

    // [KC-10] the target Secret.
    let target = secrets.get("c1-kubeconfig").await.unwrap();
    assert_eq!(target.type_.as_deref(), Some("cluster.x-k8s.io/secret"));
    assert_eq!(target.labels()["cluster.x-k8s.io/cluster-name"], "c1");
    assert_eq!(
        target.data.as_ref().unwrap()["value"].0,
        KUBECONFIG.as_bytes()
    );
    assert_eq!(target.owner_references()[0].uid, ready.uid().unwrap());

    // [CP-47] a settled control plane causes no writes, even when reconciled.
    assert_quiet(&cps, "c1-cp", &metrics, kany8s::metrics::CONTROL_PLANE).await;

    // [KC-13] a rotated source propagates through the Secret watch.
    let rotated = KUBECONFIG.replace("token: t", "token: rotated");
    secrets
        .replace(
            "demo-admin-kubeconfig",
            &PostParams::default(),
            &kubeconfig_secret("demo-admin-kubeconfig", &rotated),
        )
        .await
        .unwrap();
    for _ in 0..100 {
        if secrets.get("c1-kubeconfig").await.unwrap().data.unwrap()["value"].0
            == rotated.as_bytes()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        secrets.get("c1-kubeconfig").await.unwrap().data.unwrap()["value"].0,
        rotated.as_bytes()
    );

    // [CT-16]–[CT-19], [CT-21]: the pause annotation suspends and detaches the instance and
    // drops block-move; removing it resumes and re-attaches.
    cps.patch(
        "c1-cp",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"cluster.x-k8s.io/paused": ""}}})),
    )
    .await
    .unwrap();
    let paused = wait_for(&cps, "c1-cp", "safely paused", |cp| {
        condition(cp, "Paused").is_some_and(|c| c.0 == "True")
            && !cp
                .annotations()
                .contains_key("clusterctl.cluster.x-k8s.io/block-move")
    })
    .await;
    assert_eq!(
        condition(&paused, "Paused").unwrap().2,
        "Kany8sControlPlane has the cluster.x-k8s.io/paused annotation"
    );
    let suspended = instances.get("c1-cp").await.unwrap();
    assert_eq!(suspended.annotations()["kro.run/reconcile"], "suspended");
    assert_eq!(suspended.annotations()["kany8s.io/suspended"], "true");
    assert!(
        suspended.owner_references().is_empty(),
        "{:?}",
        suspended.owner_references()
    );
    assert!(
        paused
            .finalizers()
            .iter()
            .any(|f| f == "kany8scontrolplane.controlplane.cluster.x-k8s.io")
    );
    cps.patch(
        "c1-cp",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"cluster.x-k8s.io/paused": null}}})),
    )
    .await
    .unwrap();
    let resumed = wait_for(&cps, "c1-cp", "resumed", |cp| {
        condition(cp, "Paused").is_some_and(|c| c.0 == "False")
            && cp
                .annotations()
                .get("clusterctl.cluster.x-k8s.io/block-move")
                .map(String::as_str)
                == Some("true")
    })
    .await;
    assert_eq!(condition(&resumed, "Paused").unwrap().1, "NotPaused");
    let mut instance = instances.get("c1-cp").await.unwrap();
    for _ in 0..100 {
        if !instance.annotations().contains_key("kany8s.io/suspended") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        instance = instances.get("c1-cp").await.unwrap();
    }
    assert!(!instance.annotations().contains_key("kro.run/reconcile"));
    assert!(!instance.annotations().contains_key("kany8s.io/suspended"));
    assert_eq!(instance.owner_references().len(), 2);

    // [CT-25] deletion: the instance goes first (kro tears its children down), then the CP.
    cps.delete("c1-cp", &DeleteParams::default()).await.unwrap();
    for _ in 0..200 {
        if cps.get_opt("c1-cp").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        cps.get_opt("c1-cp").await.unwrap().is_none(),
        "the control plane was never released"
    );
    assert!(instances.get_opt("c1-cp").await.unwrap().is_none());
}

/// [RG-02], [RG-08], [CP-51]: a missing RGD is a condition, and its creation resolves it
/// through the RGD watch; [CP-20] a non-object kroSpec is terminal.
#[tokio::test]
async fn missing_rgd_and_bad_spec() {
    let (_server, client) = start().await;
    let cluster = create_cluster(&client, "c2").await;
    let cps: Api<Kany8sControlPlane> = Api::namespaced(client.clone(), "default");
    cps.create(
        &PostParams::default(),
        &control_plane(
            "c2-cp",
            &cluster,
            "demo-control-plane.kro.run",
            json!({"name": "demo2"}),
        ),
    )
    .await
    .unwrap();
    let missing = wait_for(&cps, "c2-cp", "RGD not found", |cp| {
        condition(cp, "Ready").is_some_and(|c| c.1 == "ResourceGraphDefinitionNotFound")
    })
    .await;
    assert_eq!(
        condition(&missing, "ResourceGraphDefinitionResolved").unwrap(),
        (
            "False".into(),
            "ResourceGraphDefinitionNotFound".into(),
            "ResourceGraphDefinition \"demo-control-plane.kro.run\" not found".into()
        )
    );
    assert_eq!(
        condition(&missing, "Creating").unwrap().1,
        "ResourceGraphDefinitionNotFound"
    );
    apply_rgd(&client, fixture("control-plane/demo-control-plane.yaml")).await;
    wait_for(&cps, "c2-cp", "RGD resolved", |cp| {
        condition(cp, "ResourceGraphDefinitionResolved").is_some_and(|c| c.0 == "True")
    })
    .await;

    cps.patch(
        "c2-cp",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"kroSpec": null}})),
    )
    .await
    .unwrap();
    let cp3: Kany8sControlPlane = serde_json::from_value(
        json!({"apiVersion": "controlplane.cluster.x-k8s.io/v1alpha1", "kind": "Kany8sControlPlane",
        "metadata": {"name": "c3-cp", "namespace": "default"},
        "spec": {"version": "v1.30.0", "externalBackend": {"apiVersion": "a/b/c", "kind": "X"}}}),
    )
    .unwrap();
    cps.create(&PostParams::default(), &cp3).await.unwrap();
    let invalid = wait_for(&cps, "c3-cp", "InvalidExternalBackend", |cp| {
        condition(cp, "Ready").is_some_and(|c| c.1 == "InvalidExternalBackend")
    })
    .await;
    let status = invalid.status.unwrap();
    assert_eq!(
        status.failure_reason.as_deref(),
        Some("InvalidExternalBackend")
    );
    assert_eq!(
        status.failure_message.as_deref(),
        Some("parse spec.externalBackend.apiVersion: unexpected GroupVersion string: a/b/c")
    );
}
