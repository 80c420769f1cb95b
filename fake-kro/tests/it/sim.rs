//! The lifecycle simulator against the embedded API server: RGD acceptance, an instance driven
//! to ACTIVE, scripts, suspension, invalid graphs and deletion ([KRO-SIM-*]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::common::*;

use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use serde_json::{Value, json};

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
    let demos = demo_instances(&client, demo_rgd()).await;

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
                // kro reports the node waiting for readiness (an apply result) before the
                // service's unresolved data.
                .starts_with("resource reconciliation failed: apply results contain errors: waiting for node \"deployment\"")
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

/// [KRO-20] [KRO-26] an includeWhen that is not a boolean: kro v0.9.3 type-checks it when it
/// admits the RGD, so the RGD is Inactive and no instance is reconciled. (The engine's runtime
/// error for a non-boolean includeWhen is asserted in `graph::tests` and `render`.)
#[tokio::test]
async fn include_when_that_is_not_a_boolean_is_an_error() {
    let (_server, client) = start().await;
    let mut rgd = demo_rgd();
    rgd["spec"]["resources"][1]["includeWhen"] = json!(["${schema.spec.name}"]);
    let rgds = apply_rgd(&client, rgd).await;
    let inactive = wait_for(&rgds, "demo-control-plane.kro.run", "Inactive", |o| {
        o.pointer("/status/state") == Some(&json!("Inactive"))
    })
    .await;
    let accepted = condition(&inactive, "GraphAccepted").unwrap();
    assert_eq!(accepted["reason"], "InvalidResourceGraph");
    assert_eq!(
        accepted["message"],
        "failed to validate resource \"service\": includeWhen expression \"schema.spec.name\" in resource \"service\" must return bool or optional_type(bool), but returns \"string\""
    );
}

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

/// Applies `rgd`, waits until it is Active, and returns the API of its instances (`kind`,
/// `plural`) in `default`.
async fn active_instances(
    client: &kube::Client,
    rgd: Value,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let name = rgd["metadata"]["name"].as_str().unwrap().to_string();
    let rgds = apply_rgd(client, rgd).await;
    wait_for(&rgds, &name, "Active", |o| {
        o.pointer("/status/state") == Some(&json!("Active"))
    })
    .await;
    Api::namespaced_with(
        client.clone(),
        "default",
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("kro.run", "v1alpha1", kind),
            plural,
        ),
    )
}

fn fleet_rgd() -> Value {
    json!({"apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition", "metadata": {"name": "fleet"},
        "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "Fleet",
            "spec": {"regions": "[]string"},
            "status": {"names": "${workers.map(w, w.metadata.name)}", "count": "${size(workers)}"}},
        "resources": [{"id": "workers", "forEach": [{"region": "${schema.spec.regions}"}],
            "readyWhen": ["${each.metadata.name != ''}"],
            "template": {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "${schema.metadata.name}-${region}"},
                "data": {"region": "${region}"}}}]}})
}

/// The ConfigMaps of the `workers` collection, by name, with their labels.
async fn workers(client: &kube::Client) -> Vec<(String, Value)> {
    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), "default");
    let listed = configmaps
        .list(&kube::api::ListParams::default().labels("kro.run/node-id=workers"))
        .await
        .unwrap();
    let mut found: Vec<(String, Value)> = listed
        .items
        .into_iter()
        .map(|cm| {
            let labels = json!(cm.metadata.labels.unwrap_or_default());
            (cm.metadata.name.unwrap_or_default(), labels)
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// [KRO-20] [KRO-SIM-01] a forEach collection in the simulator: one child per item with
/// kro's node and collection labels, the status reading the collection, items pruned when the
/// collection shrinks, and every item deleted with the instance.
#[tokio::test]
async fn collections_expand_shrink_and_delete() {
    let (_server, client) = start_with(fake_kro::sim::SimOptions {
        requeue: Duration::from_millis(100),
        mode: fake_kro::sim::ChildMode::Applied,
        ..fake_kro::sim::SimOptions::default()
    })
    .await;
    let fleets = active_instances(&client, fleet_rgd(), "Fleet", "fleets").await;
    let fleet = json!({"apiVersion": "kro.run/v1alpha1", "kind": "Fleet",
        "metadata": {"name": "f", "namespace": "default"}, "spec": {"regions": ["eu", "us"]}});
    fleets
        .create(
            &PostParams::default(),
            &serde_json::from_value(fleet).unwrap(),
        )
        .await
        .unwrap();
    let active = wait_for(&fleets, "f", "ACTIVE with two workers", |o| {
        o.pointer("/status/state") == Some(&json!("ACTIVE"))
            && o.pointer("/status/count") == Some(&json!(2))
    })
    .await;
    assert_eq!(active["status"]["names"], json!(["f-eu", "f-us"]));
    let found = workers(&client).await;
    assert_eq!(found.len(), 2);
    for (index, (name, labels)) in found.iter().enumerate() {
        assert_eq!(name, ["f-eu", "f-us"][index]);
        assert_eq!(labels["kro.run/collection-index"], index.to_string());
        assert_eq!(labels["kro.run/collection-size"], "2");
        assert_eq!(labels["kro.run/instance-name"], "f");
    }

    // The collection shrinks: the item it no longer expands to is pruned.
    fleets
        .patch(
            "f",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"regions": ["us"]}})),
        )
        .await
        .unwrap();
    wait_for(&fleets, "f", "one worker", |o| {
        o.pointer("/status/count") == Some(&json!(1))
    })
    .await;
    for _ in 0..200 {
        if workers(&client).await.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let found = workers(&client).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "f-us");
    assert_eq!(found[0].1["kro.run/collection-index"], "0");
    assert_eq!(found[0].1["kro.run/collection-size"], "1");

    // Deletion takes every item, then the finalizer.
    fleets.delete("f", &DeleteParams::default()).await.unwrap();
    for _ in 0..200 {
        if fleets.get_opt("f").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fleets.get_opt("f").await.unwrap().is_none());
    assert!(workers(&client).await.is_empty());
}

fn gauge_rgd() -> Value {
    json!({"apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition", "metadata": {"name": "gauge"},
        "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "Gauge",
            "spec": {"ok": "string | default=\"no\""},
            "status": {"ok": "${cm.data.ok}", "conditions": [
                "${runtime.newCondition({type: 'ConfigReady', status: cm.data.ok == 'yes' ? 'True' : 'False', reason: 'Checked', message: ''})}",
                "${[runtime.newCondition({type: 'Echo', status: runtime.condition(schema, 'GraphResolved').status, reason: runtime.condition(schema, 'GraphResolved').reason, message: 'seen'})]}"
            ]}},
        "resources": [{"id": "cm", "template": {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "${schema.metadata.name}"}, "data": {"ok": "${schema.spec.ok}"}}}]}})
}

/// [KRO-32] author conditions in the simulator: only they are written to
/// `.status.conditions` (kro's built-ins stay readable through `runtime.condition`), stamped
/// with the generation, and a condition keeps its transition time while its status holds.
#[tokio::test]
async fn author_conditions_replace_the_built_ins() {
    let (_server, client) = start().await;
    let gauges = active_instances(&client, gauge_rgd(), "Gauge", "gauges").await;
    let gauge = json!({"apiVersion": "kro.run/v1alpha1", "kind": "Gauge",
        "metadata": {"name": "g", "namespace": "default"}, "spec": {}});
    gauges
        .create(
            &PostParams::default(),
            &serde_json::from_value(gauge).unwrap(),
        )
        .await
        .unwrap();
    let first = wait_for(&gauges, "g", "ACTIVE with author conditions", |o| {
        o.pointer("/status/state") == Some(&json!("ACTIVE"))
            && condition(o, "ConfigReady").is_some()
    })
    .await;
    let types: Vec<&str> = first["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["ConfigReady", "Echo"], "no built-in on the wire");
    let config = condition(&first, "ConfigReady").unwrap();
    assert_eq!(config["status"], "False");
    assert_eq!(config["reason"], "Checked");
    assert!(config.get("message").is_none(), "empty message left out");
    assert_eq!(config["observedGeneration"], 1);
    let echo = condition(&first, "Echo").unwrap().clone();
    assert_eq!(
        (&echo["status"], &echo["reason"], &echo["message"]),
        (&json!("True"), &json!("Resolved"), &json!("seen"))
    );

    gauges
        .patch(
            "g",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"ok": "yes"}})),
        )
        .await
        .unwrap();
    let second = wait_for(&gauges, "g", "ConfigReady True", |o| {
        condition(o, "ConfigReady").is_some_and(|c| c["status"] == "True")
    })
    .await;
    assert_eq!(
        condition(&second, "ConfigReady").unwrap()["observedGeneration"],
        2
    );
    assert_eq!(
        condition(&second, "Echo").unwrap()["lastTransitionTime"],
        echo["lastTransitionTime"],
        "unchanged status keeps its transition time"
    );
    assert_eq!(second["status"]["ok"], "yes");
}

/// [KRO-30] [KRO-31] an RGD update whose CRD would break existing instances is refused as kro
/// refuses it: `KindReady=False Failed` with kro's message, the RGD `Inactive`, the stored CRD
/// unchanged; `kro.run/allow-breaking-changes: "true"` lets it through.
#[tokio::test]
async fn breaking_rgd_updates_are_refused() {
    let (_server, client) = start().await;
    let rgds = apply_rgd(&client, gauge_rgd()).await;
    wait_for(&rgds, "gauge", "Active", |o| {
        o.pointer("/status/state") == Some(&json!("Active"))
    })
    .await;
    let mut changed = gauge_rgd();
    changed["spec"]["schema"]["spec"] = json!({"ok": "string | default=\"no\" maxLength=3"});
    let patch = json!({"spec": changed["spec"]});
    rgds.patch(
        "gauge",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(patch),
    )
    .await
    .unwrap();
    let refused = wait_for(&rgds, "gauge", "Inactive", |o| {
        o.pointer("/status/state") == Some(&json!("Inactive"))
    })
    .await;
    let kind_ready = condition(&refused, "KindReady").unwrap();
    assert_eq!(kind_ready["status"], "False");
    assert_eq!(kind_ready["reason"], "Failed");
    assert_eq!(
        kind_ready["message"],
        "cannot update CRD gauges.kro.run: breaking changes detected: MaxLength constraint 3 was added"
    );
    assert_eq!(
        condition(&refused, "GraphAccepted").unwrap()["status"],
        "True"
    );
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let stored = serde_json::to_value(crds.get("gauges.kro.run").await.unwrap()).unwrap();
    assert_eq!(
        stored.pointer(
            "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/ok/maxLength"
        ),
        None
    );

    rgds.patch(
        "gauge",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(
            json!({"metadata": {"annotations": {"kro.run/allow-breaking-changes": "true"}}}),
        ),
    )
    .await
    .unwrap();
    wait_for(&rgds, "gauge", "Active again", |o| {
        o.pointer("/status/state") == Some(&json!("Active"))
    })
    .await;
    let stored = serde_json::to_value(crds.get("gauges.kro.run").await.unwrap()).unwrap();
    assert_eq!(
        stored.pointer(
            "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/ok/maxLength"
        ),
        Some(&json!(3))
    );
}

/// [KRO-23] the same collection in Virtual mode: the same status as Applied, shrinking too.
#[tokio::test]
async fn collections_in_virtual_mode() {
    let (_server, client) = start().await;
    let fleets = active_instances(&client, fleet_rgd(), "Fleet", "fleets").await;
    let fleet = json!({"apiVersion": "kro.run/v1alpha1", "kind": "Fleet",
        "metadata": {"name": "v", "namespace": "default"}, "spec": {"regions": ["eu", "us"]}});
    fleets
        .create(
            &PostParams::default(),
            &serde_json::from_value(fleet).unwrap(),
        )
        .await
        .unwrap();
    let active = wait_for(&fleets, "v", "ACTIVE with two workers", |o| {
        o.pointer("/status/state") == Some(&json!("ACTIVE"))
            && o.pointer("/status/count") == Some(&json!(2))
    })
    .await;
    assert_eq!(active["status"]["names"], json!(["v-eu", "v-us"]));
    assert!(
        workers(&client).await.is_empty(),
        "virtual children are not applied"
    );
    fleets
        .patch(
            "v",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"regions": ["us"]}})),
        )
        .await
        .unwrap();
    let shrunk = wait_for(&fleets, "v", "one worker", |o| {
        o.pointer("/status/count") == Some(&json!(1))
    })
    .await;
    assert_eq!(shrunk["status"]["names"], json!(["v-us"]));
}
