//! Helpers shared by the simulator tests: the embedded API server with the simulator running,
//! RGD installation and polling.
#![allow(dead_code)]

use std::time::Duration;

use fake_kro::sim::{SimOptions, run};
use kany8s_apiserver::Server;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};

pub fn rgd_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kro.run", "v1alpha1", "ResourceGraphDefinition"),
        "resourcegraphdefinitions",
    )
}

pub fn demo_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kro.run", "v1alpha1", "DemoControlPlane"),
        "democontrolplanes",
    )
}

pub fn demo_rgd() -> Value {
    let path = format!(
        "{}/../fixtures/rgds/control-plane/demo-control-plane.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Polls `get` until `done` holds (10 s).
pub async fn wait_for(
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

/// The embedded API server with the simulator running (`requeue` 100 ms unless set).
pub async fn start_with(options: SimOptions) -> (Server, kube::Client) {
    let server = Server::builder().build();
    let client = server.client();
    tokio::spawn(run(client.clone(), options));
    (server, client)
}

pub async fn apply_rgd(client: &kube::Client, rgd: Value) -> Api<DynamicObject> {
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

/// Applies `rgd` (the demo RGD, maybe edited), waits until it is Active, and returns the API of
/// its `DemoControlPlane` instances in `default`.
pub async fn demo_instances(client: &kube::Client, rgd: Value) -> Api<DynamicObject> {
    let rgds = apply_rgd(client, rgd).await;
    wait_for(&rgds, "demo-control-plane.kro.run", "Active", |o| {
        o.pointer("/status/state") == Some(&json!("Active"))
    })
    .await;
    Api::namespaced_with(client.clone(), "default", &demo_resource())
}

pub fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

pub async fn start() -> (Server, kube::Client) {
    start_with(SimOptions {
        requeue: Duration::from_millis(100),
        ..SimOptions::default()
    })
    .await
}

/// A fixture RGD by path under `fixtures/rgds`.
pub fn fixture(path: &str) -> Value {
    let path = format!("{}/../fixtures/rgds/{path}", env!("CARGO_MANIFEST_DIR"));
    yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
