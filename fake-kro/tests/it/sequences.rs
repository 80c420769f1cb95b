//! kro's instance status write sequences in Applied mode (kro.md §5.6 SEQ-1…SEQ-4), the child
//! labels and ApplySet metadata of §5.1, ResourceDeleting, and Virtual/Applied equivalence
//! (KRO-18, KRO-21, KRO-23).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use fake_kro::sim::{ChildMode, SimOptions};
use futures::StreamExt;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::runtime::watcher;
use serde_json::{Value, json};

fn applied(simulators: bool) -> SimOptions {
    SimOptions {
        requeue: Duration::from_millis(100),
        mode: ChildMode::Applied,
        child_simulators: simulators,
        ..SimOptions::default()
    }
}

/// SEQ-1's RGD: one ConfigMap, status `name: ${cm.metadata.name}`, plus optional readyWhen.
fn configmap_rgd(ready_when: Option<&str>) -> Value {
    let mut cm = json!({"id": "cm", "template": {"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "${schema.spec.name}-cm"}, "data": {"v": "1"}}});
    if let Some(condition) = ready_when {
        cm["readyWhen"] = json!([condition]);
    }
    json!({"apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
        "metadata": {"name": "seq.kro.run"},
        "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "Seq",
            "spec": {"name": "string | required=true"},
            "status": {"name": "${cm.metadata.name}"}},
        "resources": [cm]}})
}

/// An API of a built-in kind in the `default` namespace.
fn default_api(client: &kube::Client, group: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural),
    )
}

fn seq_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("kro.run", "v1alpha1", "Seq"), "seqs")
}

/// Records every distinct `.status` the instance `name` takes, in order.
struct Recorder(Arc<Mutex<Vec<Value>>>);

impl Recorder {
    fn start(api: Api<DynamicObject>, name: &'static str) -> Self {
        let seen = Arc::new(Mutex::new(Vec::<Value>::new()));
        let sink = seen.clone();
        tokio::spawn(async move {
            let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
            let mut stream = watcher::watcher(api, config).boxed();
            while let Some(event) = stream.next().await {
                if let Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) = event
                    && let Some(status) = o.data.get("status")
                {
                    let mut seen = sink.lock().unwrap();
                    if seen.last() != Some(status) {
                        seen.push(status.clone());
                    }
                }
            }
        });
        Self(seen)
    }

    /// Waits until at least `n` writes were seen and nothing changed for 500 ms.
    async fn settle(&self, n: usize) -> Vec<Value> {
        let mut stable = 0;
        let mut last_len = 0;
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let len = self.0.lock().unwrap().len();
            if len == last_len && len >= n {
                stable += 1;
                if stable >= 10 {
                    return self.0.lock().unwrap().clone();
                }
            } else {
                stable = 0;
                last_len = len;
            }
        }
        panic!(
            "status never settled after {n} writes: {:#}",
            json!(*self.0.lock().unwrap())
        );
    }
}

fn resources_ready(status: &Value) -> (String, String, String) {
    let c = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "ResourcesReady")
        .unwrap();
    (
        c["status"].as_str().unwrap().to_string(),
        c["reason"].as_str().unwrap().to_string(),
        c["message"].as_str().unwrap().to_string(),
    )
}

fn author_keys(status: &Value) -> Vec<String> {
    status
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "conditions" && *k != "state")
        .cloned()
        .collect()
}

async fn seq_setup(
    options: SimOptions,
    rgd: Value,
) -> (kany8s_apiserver::Server, kube::Client, Api<DynamicObject>) {
    let (server, client) = start_with(options).await;
    let rgds = apply_rgd(&client, rgd).await;
    wait_for(&rgds, "seq.kro.run", "Active", |o| {
        o.pointer("/status/state") == Some(&json!("Active"))
    })
    .await;
    let seqs = Api::namespaced_with(client.clone(), "default", &seq_resource());
    (server, client, seqs)
}

async fn create_seq(seqs: &Api<DynamicObject>) {
    let object = serde_json::from_value(json!({"apiVersion": "kro.run/v1alpha1", "kind": "Seq",
        "metadata": {"name": "s", "namespace": "default"}, "spec": {"name": "s"}}))
    .unwrap();
    seqs.create(&PostParams::default(), &object).await.unwrap();
}

/// [KRO-18] SEQ-1: the pass that creates the ConfigMap writes ACTIVE with `cluster mutated`
/// (quirk Q1); the next writes AllResourcesReady and Ready True.
#[tokio::test]
async fn seq1_one_configmap() {
    let (_server, client, seqs) = seq_setup(applied(false), configmap_rgd(None)).await;
    let recorder = Recorder::start(seqs.clone(), "s");
    create_seq(&seqs).await;
    let writes = recorder.settle(2).await;
    assert_eq!(writes.len(), 2, "{:#}", json!(writes));
    assert_eq!(writes[0]["state"], "ACTIVE");
    assert_eq!(
        resources_ready(&writes[0]),
        (
            "False".into(),
            "NotReady".into(),
            "resource reconciliation failed: cluster mutated".into()
        )
    );
    assert_eq!(author_keys(&writes[0]), ["name"]);
    assert_eq!(writes[1]["state"], "ACTIVE");
    assert_eq!(resources_ready(&writes[1]).1, "AllResourcesReady");
    let ready = writes[1]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(
        (ready["status"].as_str(), ready["message"].as_str()),
        (Some("True"), Some(""))
    );
    assert_eq!(writes[1]["name"], "s-cm");

    // §5.1: the child is really applied, with kro's labels, and no owner references.
    let cms = default_api(&client, "", "ConfigMap", "configmaps");
    let cm = serde_json::to_value(cms.get("s-cm").await.unwrap()).unwrap();
    let instance = serde_json::to_value(seqs.get("s").await.unwrap()).unwrap();
    let labels = &cm["metadata"]["labels"];
    assert_eq!(labels["kro.run/node-id"], "cm");
    assert_eq!(labels["kro.run/instance-id"], instance["metadata"]["uid"]);
    assert_eq!(labels["kro.run/instance-kind"], "Seq");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "kro");
    assert_eq!(
        labels["applyset.kubernetes.io/part-of"],
        instance["metadata"]["labels"]["applyset.kubernetes.io/id"]
    );
    assert_eq!(
        labels["applyset.kubernetes.io/part-of"],
        fake_kro::sim::applyset_id("s", "default", "Seq", "kro.run").as_str()
    );
    assert!(cm["metadata"].get("ownerReferences").is_none());
    let managers: Vec<&str> = cm["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["kro.run/applyset"]);
    assert_eq!(
        instance["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"],
        "ConfigMap"
    );
    assert_eq!(
        instance["metadata"]["annotations"]["applyset.kubernetes.io/tooling"],
        "kro/v0.9.3"
    );
}

/// [KRO-18] SEQ-2: the CRD-01 demo with child simulators off.
#[tokio::test]
async fn seq2_demo_control_plane() {
    let (server, client, demos, writes) = demo_writes(applied(false)).await;
    assert_eq!(writes.len(), 3, "{:#}", json!(writes));
    assert_eq!(writes[0]["state"], "IN_PROGRESS");
    assert_eq!(
        resources_ready(&writes[0]).2,
        "resource reconciliation failed: waiting for unresolved resource: gvr \"/v1, Resource=services\": node \"service\": dependent node \"deployment\" not ready: node \"deployment\": no observed state: waiting for readiness (data pending)"
    );
    assert_eq!(author_keys(&writes[0]), ["ready"]);
    assert_eq!(writes[0]["ready"], false);
    assert_eq!(writes[1]["state"], "ACTIVE");
    assert_eq!(
        resources_ready(&writes[1]).2,
        "resource reconciliation failed: cluster mutated"
    );
    assert_eq!(
        writes[1]["endpoint"],
        "demo-svc.default.svc.cluster.local:6443"
    );
    assert_eq!(writes[1]["ready"], false);
    assert_eq!(resources_ready(&writes[2]).1, "AllResourcesReady");
    assert_eq!(writes[2]["ready"], false);

    // The Service got a cluster IP from the server; the Deployment has no status (no simulator).
    let services = default_api(&client, "", "Service", "services");
    let service = services.get("demo-svc").await.unwrap();
    assert!(
        service.data["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .starts_with("10.96.")
    );

    // A controller reports availability → ready: true.
    let deployments = default_api(&client, "apps", "Deployment", "deployments");
    deployments
        .patch_status(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"availableReplicas": 1}})),
        )
        .await
        .unwrap();
    wait_for(&demos, "demo", "ready: true", |o| {
        o["status"]["ready"] == true
    })
    .await;
    drop(server);
}

/// [KRO-20] SEQ-3: readyWhen false holds the instance IN_PROGRESS until the data appears.
#[tokio::test]
async fn seq3_ready_when() {
    let (_server, client, seqs) = seq_setup(
        applied(false),
        configmap_rgd(Some("${cm.data.?ok.orValue('') == 'yes'}")),
    )
    .await;
    let recorder = Recorder::start(seqs.clone(), "s");
    create_seq(&seqs).await;
    // kro v0.9.3 (the fake-kro differential, kro-seq3): the pass that creates the ConfigMap
    // already reports it waiting, as an apply result (before `cluster mutated`), and every
    // later pass says the same, so there is one write.
    let writes = recorder.settle(1).await;
    assert_eq!(writes.len(), 1, "{:#}", json!(writes));
    assert_eq!(writes[0]["state"], "IN_PROGRESS");
    assert_eq!(
        resources_ready(&writes[0]).2,
        "resource reconciliation failed: apply results contain errors: waiting for node \"cm\": readyWhen condition evaluated to false: \"cm.data.?ok.orValue('') == 'yes'\" (waiting for readiness)"
    );
    let cms = default_api(&client, "", "ConfigMap", "configmaps");
    cms.patch(
        "s-cm",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"ok": "yes"}})),
    )
    .await
    .unwrap();
    let done = wait_for(&seqs, "s", "ACTIVE and ready", |o| {
        o["status"]["state"] == "ACTIVE" && resources_ready(&o["status"]).1 == "AllResourcesReady"
    })
    .await;
    // kro's own apply does not take the field another manager set.
    assert_eq!(done["status"]["name"], "s-cm");
    assert_eq!(cms.get("s-cm").await.unwrap().data["data"]["ok"], "yes");
}

/// [KRO-21] SEQ-4: deletion writes DELETING/UnderDeletion, deletes the child, then releases
/// the finalizer and the instance disappears.
#[tokio::test]
async fn seq4_deletion() {
    let (_server, client, seqs) = seq_setup(applied(false), configmap_rgd(None)).await;
    create_seq(&seqs).await;
    wait_for(&seqs, "s", "Ready", |o| {
        o["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
    })
    .await;
    let recorder = Recorder::start(seqs.clone(), "s");
    seqs.delete("s", &DeleteParams::default()).await.unwrap();
    for _ in 0..200 {
        if seqs.get_opt("s").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        seqs.get_opt("s").await.unwrap().is_none(),
        "instance never went away"
    );
    let writes = recorder.0.lock().unwrap().clone();
    let deleting = writes
        .iter()
        .find(|s| s["state"] == "DELETING")
        .expect("a DELETING write");
    assert_eq!(
        resources_ready(deleting),
        (
            "Unknown".into(),
            "UnderDeletion".into(),
            "deleting resources".into()
        )
    );
    let cms = default_api(&client, "", "ConfigMap", "configmaps");
    assert!(cms.get_opt("s-cm").await.unwrap().is_none());
}

/// [KRO-18] a child that is being deleted by someone else: ResourcesReady False
/// `ResourceDeleting` naming it.
#[tokio::test]
async fn terminating_child_reports_resource_deleting() {
    let (_server, client, seqs) = seq_setup(applied(false), configmap_rgd(None)).await;
    create_seq(&seqs).await;
    wait_for(&seqs, "s", "AllResourcesReady", |o| {
        o.get("status")
            .is_some_and(|s| resources_ready(s).1 == "AllResourcesReady")
    })
    .await;
    let cms = default_api(&client, "", "ConfigMap", "configmaps");
    cms.patch(
        "s-cm",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold"]}})),
    )
    .await
    .unwrap();
    cms.delete("s-cm", &DeleteParams::default()).await.unwrap();
    let blocked = wait_for(&seqs, "s", "ResourceDeleting", |o| {
        resources_ready(&o["status"]).1 == "ResourceDeleting"
    })
    .await;
    assert_eq!(
        resources_ready(&blocked["status"]).2,
        "resource \"default/s-cm\" for node \"cm\" is currently being deleted; waiting for deletion to complete before continuing reconciliation"
    );
    assert_eq!(blocked["status"]["state"], "IN_PROGRESS");
    // Once the finalizer goes, kro creates the child again.
    cms.patch(
        "s-cm",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    wait_for(&seqs, "s", "AllResourcesReady again", |o| {
        resources_ready(&o["status"]).1 == "AllResourcesReady"
    })
    .await;
    assert!(cms.get_opt("s-cm").await.unwrap().is_some());
}

/// The status sequence with volatile fields (times) removed.
fn comparable(writes: &[Value]) -> Vec<Value> {
    writes
        .iter()
        .map(|s| {
            let mut s = s.clone();
            for c in s["conditions"].as_array_mut().unwrap() {
                c.as_object_mut().unwrap().remove("lastTransitionTime");
            }
            s
        })
        .collect()
}

/// The CRD-01 demo RGD and one instance `demo`: the status writes until they settle.
async fn demo_writes(
    options: SimOptions,
) -> (
    kany8s_apiserver::Server,
    kube::Client,
    Api<DynamicObject>,
    Vec<Value>,
) {
    let (server, client) = start_with(options).await;
    let demos = demo_instances(&client, demo_rgd()).await;
    let recorder = Recorder::start(demos.clone(), "demo");
    let object = serde_json::from_value(json!({"apiVersion": "kro.run/v1alpha1", "kind": "DemoControlPlane",
        "metadata": {"name": "demo", "namespace": "default"}, "spec": {"name": "demo", "version": "v1.30.0"}}))
    .unwrap();
    demos.create(&PostParams::default(), &object).await.unwrap();
    let writes = recorder.settle(3).await;
    (server, client, demos, writes)
}

async fn demo_sequence(options: SimOptions) -> Vec<Value> {
    let (_server, _client, _demos, writes) = demo_writes(options).await;
    comparable(&writes)
}

/// [KRO-23] the same RGD yields the same instance status sequence in Virtual and Applied mode
/// (child simulators on).
#[tokio::test]
async fn virtual_and_applied_modes_agree() {
    let applied = demo_sequence(applied(true)).await;
    let virtual_ = demo_sequence(SimOptions {
        requeue: Duration::from_millis(100),
        ..SimOptions::default()
    })
    .await;
    assert_eq!(applied, virtual_);
    assert_eq!(applied.last().unwrap()["ready"], true);
}

/// [KRO-24] a script publishes the instance's kubeconfig Secret (owned by the instance) once
/// `after` has elapsed; its server is the instance's endpoint.
#[tokio::test]
async fn script_publishes_kubeconfig_secret() {
    let (_server, client) = start_with(applied(true)).await;
    let rgds = apply_rgd(
        &client,
        fixture("control-plane/demo-control-plane-kubeconfig.yaml"),
    )
    .await;
    wait_for(
        &rgds,
        "demo-control-plane-kubeconfig.kro.run",
        "Active",
        |o| o.pointer("/status/state") == Some(&json!("Active")),
    )
    .await;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kro.run", "v1alpha1", "DemoControlPlaneKubeconfig"),
        "democontrolplanekubeconfigs",
    );
    let instances: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
    let script = json!({"kubeconfigSecret": {"name": "demo-admin-kubeconfig", "after": "300ms"}});
    let object = serde_json::from_value(json!({"apiVersion": "kro.run/v1alpha1", "kind": "DemoControlPlaneKubeconfig",
        "metadata": {"name": "demo", "namespace": "default", "annotations": {"fake-kro/script": script.to_string()}},
        "spec": {"name": "demo", "version": "v1.30.0"}}))
    .unwrap();
    instances
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), "default");
    let mut found = None;
    for _ in 0..100 {
        if let Some(secret) = secrets.get_opt("demo-admin-kubeconfig").await.unwrap() {
            found = Some(secret);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secret = found.expect("the kubeconfig Secret was published");
    let instance = instances.get("demo").await.unwrap();
    let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(Some(&owner.uid), instance.metadata.uid.as_ref());
    let value = &secret.data.as_ref().unwrap()["value"].0;
    let kubeconfig: Value = yaml_serde::from_slice(value).unwrap();
    assert_eq!(
        kubeconfig["clusters"][0]["cluster"]["server"],
        "https://demo-svc.default.svc.cluster.local:6443"
    );
    assert_eq!(
        instance.data["status"]["kubeconfigSecretRef"]["name"],
        "demo-admin-kubeconfig"
    );
}
