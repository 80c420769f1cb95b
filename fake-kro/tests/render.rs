//! Offline rendering (issue: RGD + instance in, expansion and status out) ([KRO-RENDER]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use fake_kro::render::{nodes, render, topological_order};
use serde_json::{Value, json};

fn demo() -> Value {
    let path = format!(
        "{}/../fixtures/rgds/control-plane/demo-control-plane.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn instance() -> Value {
    json!({"apiVersion": "kro.run/v1alpha1", "kind": "DemoControlPlane", "metadata": {"name": "demo", "namespace": "team-a"},
           "spec": {"name": "demo", "version": "v1.30.0"}})
}

/// Topological order and dependencies of the demo RGD (kro.md §4.5).
#[test]
fn demo_graph() {
    let graph = nodes(&demo());
    assert_eq!(
        topological_order(&graph).unwrap(),
        ["deployment", "service"]
    );
    assert_eq!(
        graph[1].dependencies.iter().collect::<Vec<_>>(),
        ["deployment"]
    );
}

/// Children are rendered with defaults applied and `${…}` resolved in dependency order.
#[test]
fn renders_children_with_defaults() {
    let rendered = render(&demo(), &instance(), &BTreeMap::new()).unwrap();
    assert_eq!(
        rendered.instance["spec"]["replicas"], 1,
        "defaulted from the SimpleSchema"
    );
    assert_eq!(rendered.instance["spec"]["port"], 6443);
    let (id, deployment) = &rendered.resources[0];
    assert_eq!(id, "deployment");
    assert_eq!(
        deployment["metadata"],
        json!({"name": "demo", "namespace": "team-a", "labels": {"app.kubernetes.io/name": "demo"}})
    );
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        6443
    );
    let (_, service) = &rendered.resources[1];
    assert_eq!(service["metadata"]["name"], "demo-svc");
    assert_eq!(
        service["spec"]["selector"],
        json!({"app.kubernetes.io/name": "demo"}),
        "a value from the deployment"
    );
    // No observed state: every status field is pending, so none is written.
    assert_eq!(rendered.instance["status"], json!({}));
}

/// Status comes from observed-state fixtures; missing resources leave their fields out.
#[test]
fn status_from_observed_fixtures() {
    let observed = BTreeMap::from([(
        "deployment".to_string(),
        json!({"status": {"availableReplicas": 1}}),
    )]);
    let rendered = render(&demo(), &instance(), &observed).unwrap();
    assert_eq!(
        rendered.instance["status"],
        json!({"ready": true}),
        "endpoint needs the service, which has no fixture"
    );
    let observed = BTreeMap::from([
        ("deployment".to_string(), json!({"status": {}})),
        (
            "service".to_string(),
            json!({"spec": {"clusterIP": "10.0.0.1"}}),
        ),
    ]);
    let rendered = render(&demo(), &instance(), &observed).unwrap();
    assert_eq!(
        rendered.instance["status"],
        json!({"ready": false, "endpoint": "demo-svc.team-a.svc.cluster.local:6443"})
    );
}

/// An instance missing a required field is refused with the field named.
#[test]
fn invalid_instances_are_refused() {
    let mut bad = instance();
    bad["spec"].as_object_mut().unwrap().remove("version");
    assert_eq!(
        render(&demo(), &bad, &BTreeMap::new()).unwrap_err(),
        "instance is invalid: spec.version: Required value"
    );
}
