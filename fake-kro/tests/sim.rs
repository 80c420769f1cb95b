//! The lifecycle simulator against the embedded API server: RGD acceptance, an instance driven
//! to ACTIVE, scripts, suspension, invalid graphs and deletion ([KRO-SIM-*]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use fake_kro::sim::{SimOptions, run};
use kany8s_apiserver::Server;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};

fn rgd_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kro.run", "v1alpha1", "ResourceGraphDefinition"),
        "resourcegraphdefinitions",
    )
}

fn demo_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kro.run", "v1alpha1", "DemoControlPlane"),
        "democontrolplanes",
    )
}

fn demo_rgd() -> Value {
    let path = format!(
        "{}/../fixtures/rgds/control-plane/demo-control-plane.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Polls `get` until `done` holds (10 s).
async fn wait_for(
    api: &Api<DynamicObject>,
    name: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        if let Some(object) = api.get_opt(name).await.unwrap() {
            last = serde_json::to_value(&object).unwrap();
            if done(&last) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} never reached {what}; last seen: {last:#}");
}

async fn start() -> (Server, kube::Client) {
    let server = Server::builder().build();
    let client = server.client();
    let options = SimOptions {
        requeue: Duration::from_millis(100),
        ..SimOptions::default()
    };
    tokio::spawn(run(client.clone(), options));
    (server, client)
}

async fn apply_rgd(client: &kube::Client, rgd: Value) -> Api<DynamicObject> {
    let rgds: Api<DynamicObject> = Api::all_with(client.clone(), &rgd_resource());
    for _ in 0..100 {
        match rgds
            .create(
                &PostParams::default(),
                &serde_json::from_value(rgd.clone()).unwrap(),
            )
            .await
        {
            Ok(_) => return rgds,
            // The RGD CRD is installed by the simulator as it starts.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("the RGD CRD was never served");
}

fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn instance(name: &str, annotations: Value) -> DynamicObject {
    serde_json::from_value(
        json!({"apiVersion": "kro.run/v1alpha1", "kind": "DemoControlPlane",
        "metadata": {"name": name, "namespace": "default", "annotations": annotations},
        "spec": {"name": name, "version": "v1.30.0"}}),
    )
    .unwrap()
}

/// [KRO-SIM-01] [ACC-04] an accepted RGD and an instance driven to ACTIVE with kro's
/// finalizer, labels, conditions and author status fields.
#[tokio::test]
async fn instance_reaches_active() {
    let (_server, client) = start().await;
    let rgds = apply_rgd(&client, demo_rgd()).await;
    let rgd = wait_for(&rgds, "demo-control-plane.kro.run", "Active", |o| {
        o.pointer("/status/state") == Some(&json!("Active"))
    })
    .await;
    assert_eq!(condition(&rgd, "GraphAccepted").unwrap()["reason"], "Valid");
    assert_eq!(
        condition(&rgd, "KindReady").unwrap()["message"],
        "kind DemoControlPlane has been accepted and ready"
    );
    assert_eq!(
        rgd["status"]["topologicalOrder"],
        json!(["deployment", "service"])
    );

    let demos: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &demo_resource());
    demos
        .create(&PostParams::default(), &instance("demo", json!({})))
        .await
        .unwrap();
    let active = wait_for(&demos, "demo", "ACTIVE and Ready", |o| {
        o.pointer("/status/state") == Some(&json!("ACTIVE"))
            && condition(o, "Ready").is_some_and(|c| c["status"] == "True")
    })
    .await;
    assert_eq!(
        active["status"]["ready"], true,
        "the simulated Deployment became available"
    );
    assert_eq!(
        active["status"]["endpoint"],
        "demo-svc.default.svc.cluster.local:6443"
    );
    assert_eq!(
        active["metadata"]["finalizers"],
        json!(["kro.run/finalizer"])
    );
    assert_eq!(
        active["metadata"]["labels"]["kro.run/resource-graph-definition-name"],
        "demo-control-plane.kro.run"
    );
    assert_eq!(
        condition(&active, "ResourcesReady").unwrap()["reason"],
        "AllResourcesReady"
    );
    assert_eq!(condition(&active, "Ready").unwrap()["message"], "");

    // [KRO-SIM-04] deletion: children go one per pass, then the finalizer; the instance disappears.
    demos
        .delete("demo", &DeleteParams::default())
        .await
        .unwrap();
    for _ in 0..200 {
        if demos.get_opt("demo").await.unwrap().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the instance was never deleted");
}

/// [KRO-SIM-02] scripts: status overrides, held readiness, injected failures; suspension.
#[tokio::test]
async fn scripts_and_suspension() {
    let (_server, client) = start().await;
    let rgds = apply_rgd(&client, demo_rgd()).await;
    wait_for(&rgds, "demo-control-plane.kro.run", "Active", |o| {
        o.pointer("/status/state") == Some(&json!("Active"))
    })
    .await;
    let demos: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &demo_resource());

    let overrides =
        json!({"fake-kro/script": r#"{"statusOverrides": {"endpoint": "https://10.0.0.1:6443"}}"#});
    demos
        .create(&PostParams::default(), &instance("over", overrides))
        .await
        .unwrap();
    wait_for(&demos, "over", "the overridden endpoint", |o| {
        o.pointer("/status/endpoint") == Some(&json!("https://10.0.0.1:6443"))
    })
    .await;

    let failing = json!({"fake-kro/script": r#"{"fail": {"kind": "apply", "node": "service", "message": "quota exceeded"}}"#});
    demos
        .create(&PostParams::default(), &instance("fails", failing))
        .await
        .unwrap();
    let failed = wait_for(&demos, "fails", "ERROR", |o| {
        o.pointer("/status/state") == Some(&json!("ERROR"))
    })
    .await;
    assert_eq!(
        condition(&failed, "ResourcesReady").unwrap()["message"],
        "resource reconciliation failed: apply results contain errors: quota exceeded"
    );
    assert_eq!(condition(&failed, "Ready").unwrap()["status"], "False");

    let held = json!({"fake-kro/script": r#"{"readyAfter": "1h"}"#});
    demos
        .create(&PostParams::default(), &instance("held", held))
        .await
        .unwrap();
    let waiting = wait_for(&demos, "held", "IN_PROGRESS", |o| {
        condition(o, "ResourcesReady").is_some_and(|c| {
            c["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("resource reconciliation failed: waiting for unresolved resource")
        })
    })
    .await;
    assert_eq!(waiting["status"]["state"], "IN_PROGRESS");
    assert!(
        waiting["status"].get("endpoint").is_none(),
        "the service waits for the deployment, so its field is absent"
    );
    assert!(
        waiting["status"].get("ready").is_some(),
        "a node waiting for readiness is observed: its fields are written"
    );

    let suspended = json!({"kro.run/reconcile": "suspended"});
    demos
        .create(&PostParams::default(), &instance("paused", suspended))
        .await
        .unwrap();
    let paused = wait_for(&demos, "paused", "suspended status", |o| {
        condition(o, "ResourcesReady")
            .is_some_and(|c| c["message"] == "awaiting resource readiness: <nil>")
    })
    .await;
    assert_eq!(paused["status"]["state"], "ACTIVE", "quirk Q2");
    assert!(
        paused["status"].get("endpoint").is_none(),
        "quirk Q4: resource fields disappear"
    );
}

/// [KRO-SIM-03] an invalid RGD is Inactive with kro's message; no CRD is created.
#[tokio::test]
async fn invalid_rgd_is_inactive() {
    let (_server, client) = start().await;
    let mut rgd = demo_rgd();
    rgd["spec"]["schema"]["spec"]["name"] = json!("string | required");
    let rgds = apply_rgd(&client, rgd).await;
    let inactive = wait_for(&rgds, "demo-control-plane.kro.run", "Inactive", |o| {
        o.pointer("/status/state") == Some(&json!("Inactive"))
    })
    .await;
    let accepted = condition(&inactive, "GraphAccepted").unwrap();
    assert_eq!(accepted["reason"], "InvalidResourceGraph");
    assert_eq!(
        accepted["message"],
        "failed to build resourcegraphdefinition \"demo-control-plane.kro.run\": failed to build OpenAPI schema for instance: field name: marker key 'required' without a value"
    );
    assert_eq!(condition(&inactive, "Ready").unwrap()["status"], "False");
}
