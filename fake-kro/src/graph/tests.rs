//! Unit tests of the graph engine: includeWhen and namespace rules as kro has them, and one
//! pass driven by hand.

use serde_json::{Value, json};

use super::*;

fn rgd(resources: Value) -> Value {
    json!({"spec": {"schema": {"status": {"name": "${cm.metadata.name}", "port": "${svc.spec.port}"}},
        "resources": resources}})
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
}

fn instance() -> Value {
    json!({"metadata": {"name": "demo", "namespace": "team-a"},
        "spec": {"name": "demo", "mode": "on", "extra": {"a": 1}}, "status": {"old": true}})
}

fn node_with(include_when: &[&str]) -> Node {
    let graph = Graph::of(&rgd(json!([
        {"id": "cm", "template": configmap("cm")},
        {"id": "gated", "includeWhen": include_when, "template": configmap("gated")}
    ])))
    .unwrap();
    graph.node("gated").unwrap().clone()
}

/// [KRO-20] includeWhen as kro's `IsIgnored` decides it: false and null exclude; a value that
/// is not a boolean, or an evaluation error, is the node's error (the simulator used to exclude
/// the node, `render` used to fail as a whole); missing data of a resource is pending, missing
/// data of `schema` is an error.
#[test]
fn kro20_include_when_decides_like_kro() {
    let scope = instance_scope(&instance());
    let decide = |conditions: &[&str]| inclusion(&node_with(conditions), &scope);
    assert_eq!(
        decide(&["${schema.spec.mode == 'on'}"]),
        Inclusion::Included
    );
    assert_eq!(
        decide(&["${true}", "${schema.spec.mode == 'off'}"]),
        Inclusion::Excluded
    );
    assert_eq!(decide(&["${schema.spec.?absent}"]), Inclusion::Excluded);
    assert_eq!(
        decide(&["${schema.spec.mode}"]),
        Inclusion::Failed(
            "includeWhen \"schema.spec.mode\": expression \"schema.spec.mode\" did not return bool"
                .into()
        )
    );
    assert!(matches!(
        decide(&["${schema.spec.name + 1}"]),
        Inclusion::Failed(why) if why.starts_with("includeWhen \"schema.spec.name + 1\": ")
    ));
    assert!(matches!(
        decide(&["${schema.spec.absent == 'x'}"]),
        Inclusion::Failed(why) if why.starts_with("includeWhen \"schema.spec.absent == 'x'\": ")
    ));
    let mut observed = scope.clone();
    observed.insert_resource("cm", configmap("cm"));
    assert!(matches!(
        inclusion(&node_with(&["${cm.data.ok == 'yes'}"]), &observed),
        Inclusion::Pending(why) if why.starts_with("includeWhen \"cm.data.ok == 'yes'\": ")
    ));
}

/// kro's `normalizeNamespaces`: namespaced kinds inherit the instance namespace when they
/// resolve none, cluster-scoped kinds never do, and a cluster-scoped instance has none to give.
#[test]
fn namespaces_are_inherited_like_kro() {
    let inherit = |object: Value, namespace: Option<&str>| {
        let mut object = object;
        inherit_namespace("n", &mut object, namespace).map(|()| object)
    };
    assert_eq!(
        inherit(configmap("a"), Some("team-a")).unwrap()["metadata"]["namespace"],
        "team-a"
    );
    let mut explicit = configmap("a");
    explicit["metadata"]["namespace"] = json!("other");
    assert_eq!(
        inherit(explicit, Some("team-a")).unwrap()["metadata"]["namespace"],
        "other"
    );
    let mut empty = configmap("a");
    empty["metadata"]["namespace"] = json!("");
    assert_eq!(
        inherit(empty, Some("team-a")).unwrap()["metadata"]["namespace"],
        "team-a"
    );
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}});
    assert!(
        inherit(namespace, Some("team-a")).unwrap()["metadata"]
            .get("namespace")
            .is_none()
    );
    assert_eq!(
        inherit(configmap("a"), None).unwrap_err(),
        "node \"n\" is namespaced and must resolve metadata.namespace when the instance is cluster-scoped"
    );
}

/// One pass driven by hand: the engine hands out what to observe, gates dependents on
/// readiness, and yields kro's state and ResourcesReady.
#[test]
fn a_pass_gates_dependents_on_readiness() {
    let graph = Graph::of(&rgd(json!([
        {"id": "cm", "readyWhen": ["${cm.data.?ok.orValue('') == 'yes'}"],
         "template": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "${schema.spec.name}"}}},
        {"id": "svc", "template": {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "${cm.metadata.name + '-svc'}"}, "spec": {"port": 80}}},
        {"id": "off", "includeWhen": ["${schema.spec.mode == 'off'}"], "template": configmap("off")}
    ])))
    .unwrap();
    let options = PassOptions {
        namespace: Some("team-a".into()),
        ..PassOptions::default()
    };
    let mut pass = Pass::new(&graph, &instance(), options.clone());
    let visit = pass.next_visit().unwrap();
    assert_eq!(visit.node.id, "cm");
    assert_eq!(
        visit.desired["metadata"],
        json!({"name": "demo", "namespace": "team-a"})
    );
    pass.observed("cm", visit.desired);
    assert!(
        pass.next_visit().is_none(),
        "svc waits for cm; off is skipped"
    );
    assert_eq!(pass.state("off"), Some(&NodeState::Skipped));
    assert_eq!(pass.skipped().collect::<Vec<_>>(), ["off"]);
    assert!(!pass.is_clean());
    let outcome = Outcome::of(&pass, false);
    assert_eq!(outcome.state, InstanceState::InProgress);
    assert_eq!(
        outcome.resources_ready.message,
        "resource reconciliation failed: waiting for unresolved resource: gvr \"/v1, Resource=services\": node \"svc\": dependent node \"cm\" not ready: readyWhen condition evaluated to false: \"cm.data.?ok.orValue('') == 'yes'\" (waiting for readiness) (data pending)"
    );
    assert_eq!(
        author_status(&rgd(json!([])), &pass.observed_variables()),
        serde_json::Map::from_iter([("name".to_string(), json!("demo"))])
    );

    // Once cm is ready, svc renders from it; both synced: ACTIVE, and `cluster mutated` wins.
    let mut pass = Pass::new(&graph, &instance(), options);
    let cm = pass.next_visit().unwrap().desired;
    let mut ready = cm.clone();
    ready["data"] = json!({"ok": "yes"});
    pass.observed("cm", ready);
    let svc = pass.next_visit().unwrap();
    assert_eq!(svc.desired["metadata"]["name"], "demo-svc");
    pass.observed("svc", svc.desired);
    assert!(pass.next_visit().is_none());
    assert!(pass.is_clean());
    let outcome = Outcome::of(&pass, true);
    assert_eq!(outcome.state, InstanceState::Active);
    assert_eq!(
        outcome.resources_ready.message,
        "resource reconciliation failed: cluster mutated"
    );
    assert_eq!(
        Outcome::of(&pass, false).resources_ready.reason,
        "AllResourcesReady"
    );
}

/// Deletion's walk skips external references and excluded nodes, and stops at a failing
/// includeWhen.
#[test]
fn identity_walk_stops_at_a_failing_include_when() {
    let graph = Graph::of(&rgd(json!([
        {"id": "ext", "externalRef": configmap("ext")},
        {"id": "cm", "template": configmap("cm")},
        {"id": "off", "includeWhen": ["${schema.spec.mode == 'off'}"], "template": configmap("off")},
        {"id": "bad", "includeWhen": ["${schema.spec.extra}"], "template": configmap("bad")}
    ])))
    .unwrap();
    let mut walk = IdentityWalk::new(&graph, &instance(), Some("team-a".into()));
    let visit = walk.next_visit().unwrap().unwrap();
    assert_eq!(visit.node.id, "cm");
    assert_eq!(visit.desired["metadata"]["namespace"], "team-a");
    assert_eq!(
        walk.next_visit().unwrap_err(),
        "includeWhen \"schema.spec.extra\": expression \"schema.spec.extra\" did not return bool"
    );
}
