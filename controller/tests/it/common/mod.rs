//! Shared setup of the controller component tests: the embedded API server with the CRDs,
//! fake-kro's simulator and the manager, plus polling helpers with explicit timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::Arc;
use std::time::Duration;

use fake_kro::sim::{ChildMode, SimOptions};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kany8s::capi::Cluster;
use kany8s::metrics::Metrics;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: demo\n  cluster: {server: https://demo.example:6443}\ncontexts:\n- name: demo\n  context: {cluster: demo, user: admin}\ncurrent-context: demo\nusers:\n- name: admin\n  user: {token: t}\n";

pub fn cluster_crd() -> Value {
    let open = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "clusters.cluster.x-k8s.io"},
        "spec": {"group": "cluster.x-k8s.io", "scope": "Namespaced",
            "names": {"kind": "Cluster", "plural": "clusters", "singular": "cluster", "listKind": "ClusterList"},
            "versions": [{"name": "v1beta2", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": open, "status": open}}}}]}})
}

pub async fn wait_established(client: &Client, name: &str) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for _ in 0..200 {
        if let Some(crd) = crds.get_opt(name).await.unwrap()
            && crd.status.and_then(|s| s.conditions).is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            })
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("CRD {name} never established");
}

/// The embedded API server with Kany8s's and Cluster API's CRDs and fake-kro.
pub async fn start_without_manager() -> (kany8s_apiserver::Server, Client) {
    let server = kany8s_apiserver::Server::builder().build();
    let client = server.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    for crd in kany8s::crds::all().unwrap() {
        names.push(crd.name_any());
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    crds.create(
        &PostParams::default(),
        &serde_json::from_value(cluster_crd()).unwrap(),
    )
    .await
    .unwrap();
    names.push("clusters.cluster.x-k8s.io".into());
    for name in &names {
        wait_established(&client, name).await;
    }
    tokio::spawn(fake_kro::sim::run(
        client.clone(),
        SimOptions {
            requeue: Duration::from_millis(100),
            mode: ChildMode::Applied,
            ..SimOptions::default()
        },
    ));
    (server, client)
}

pub fn fixture(path: &str) -> Value {
    let path = format!("{}/../fixtures/rgds/{path}", env!("CARGO_MANIFEST_DIR"));
    yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub async fn apply_rgd(client: &Client, rgd: Value) {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kro.run", "v1alpha1", "ResourceGraphDefinition"),
        "resourcegraphdefinitions",
    );
    let rgds: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    for _ in 0..200 {
        if rgds
            .create(
                &PostParams::default(),
                &serde_json::from_value(rgd.clone()).unwrap(),
            )
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("RGD never created");
}

pub async fn create_cluster(client: &Client, name: &str) -> Cluster {
    let clusters: Api<Cluster> = Api::namespaced(client.clone(), "default");
    let cluster: Cluster = serde_json::from_value(
        json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
        "metadata": {"name": name, "namespace": "default"}, "spec": {}}),
    )
    .unwrap();
    clusters
        .create(&PostParams::default(), &cluster)
        .await
        .unwrap()
}

/// A condition of any object with `status.conditions`: (status, reason, message).
pub fn condition(object: &impl Serialize, type_: &str) -> Option<(String, String, String)> {
    let value = serde_json::to_value(object).unwrap();
    value["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (text("status"), text("reason"), text("message"))
        })
}

/// Polls `name` for up to 15 s until `done`; the panic shows the last status seen.
pub async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, done: impl Fn(&K) -> bool) -> K
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let mut last = None;
    for _ in 0..300 {
        if let Some(object) = api.get_opt(name).await.unwrap() {
            if done(&object) {
                return object;
            }
            last = Some(object);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = last.map(|o| serde_json::to_value(o).unwrap()["status"].clone());
    panic!("{name} never reached {what}: {status:#?}");
}

/// Polls until `name` is gone.
pub async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    for _ in 0..300 {
        if api.get_opt(name).await.unwrap().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} was never deleted");
}

/// The API of a kro instance kind in `default`.
pub fn instances(client: &Client, kind: &str, plural: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("kro.run", "v1alpha1", kind),
            plural,
        ),
    )
}

/// How many reconciles of `controller` the manager has finished (every result).
pub fn reconciles(metrics: &Metrics, controller: &str) -> u64 {
    let label = format!("controller=\"{controller}\"");
    metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("controller_runtime_reconcile_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// [CP-47]: a settled object is not written even when it is reconciled. A label change (which
/// passes the primary watch's predicate, [CP-50]) triggers a reconcile; once the manager has
/// finished a reconcile of `controller` after it, the object's resourceVersion is still the
/// one the label change wrote — proof of a reconcile, not a fixed wait.
pub async fn assert_quiet<K>(api: &Api<K>, name: &str, metrics: &Metrics, controller: &str)
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let before = reconciles(metrics, controller);
    let touched = api
        .patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"metadata": {"labels": {"quiet-check": before.to_string()}}}),
            ),
        )
        .await
        .unwrap()
        .resource_version();
    for _ in 0..500 {
        if reconciles(metrics, controller) > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        reconciles(metrics, controller) > before,
        "{controller} never reconciled {name} after the label change"
    );
    assert_eq!(
        api.get(name).await.unwrap().resource_version(),
        touched,
        "{name} was written while settled"
    );
}

/// `object` as JSON with the volatile fields (uids, resourceVersions, timestamps, managed
/// fields) replaced by placeholders, for snapshots.
pub fn redacted(object: &impl Serialize) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("managedFields");
                for (key, v) in map.iter_mut() {
                    let volatile = matches!(
                        key.as_str(),
                        "uid"
                            | "resourceVersion"
                            | "creationTimestamp"
                            | "lastTransitionTime"
                            | "deletionTimestamp"
                            | "kany8s.io/owner-uid"
                            | "clusterUID"
                            | "kro.run/resource-graph-definition-id"
                            | "kany8s.io/applied-hash"
                    );
                    if volatile && v.is_string() {
                        *v = json!(format!("[{key}]"));
                    } else {
                        walk(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(object).unwrap();
    walk(&mut value);
    value
}

/// [`start_without_manager`] plus the manager running both controller groups.
pub async fn start() -> (kany8s_apiserver::Server, Client) {
    let (server, client, _) = start_observed().await;
    (server, client)
}

/// [`start`], returning the manager's metrics too (its reconcile counters are the proof a
/// negative assertion waits for).
pub async fn start_observed() -> (kany8s_apiserver::Server, Client, Arc<Metrics>) {
    let (server, client) = start_without_manager().await;
    let options = kany8s::manager::Options::default();
    let metrics = options.metrics.clone();
    tokio::spawn(kany8s::manager::run(
        client.clone(),
        kany8s::manager::Config {
            groups: Vec::new(),
            options,
            leader_election: None,
            health_address: None,
            metrics_address: None,
        },
        std::future::pending(),
        None,
    ));
    (server, client, metrics)
}
