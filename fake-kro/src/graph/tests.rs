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
        "resource reconciliation failed: apply results contain errors: waiting for node \"cm\": readyWhen condition evaluated to false: \"cm.data.?ok.orValue('') == 'yes'\" (waiting for readiness)",
        "kro checks the apply results (cm waiting) before unresolved data (svc)"
    );
    assert_eq!(
        author_status(&rgd(json!([])), &pass.observed_variables()),
        Ok(serde_json::Map::from_iter([(
            "name".to_string(),
            json!("demo")
        )]))
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

fn fleet(for_each: Value, ready_when: Value) -> Graph {
    Graph::of(&rgd(json!([
        {"id": "workers", "forEach": for_each, "readyWhen": ready_when,
         "template": {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "${schema.metadata.name}-${region}-${tier}"}}},
        {"id": "summary", "template": {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "${workers[1].metadata.name}"}}}
    ])))
    .unwrap()
}

fn fleet_instance(regions: Value) -> Value {
    json!({"metadata": {"name": "f"}, "spec": {"regions": regions, "tiers": ["web", "db"]}})
}

/// [KRO-20] A collection expands to the cartesian product of its dimensions (the last
/// varying fastest), one visit per item with kro's index label; its readiness is each item's
/// readyWhen on `each`, every desired item observed; dependents wait for it, then see its
/// items as a list in expansion order.
#[test]
fn a_collection_expands_and_is_ready_when_every_item_is() {
    let graph = fleet(
        json!([{"region": "${schema.spec.regions}"}, {"tier": "${schema.spec.tiers}"}]),
        json!(["${each.data.?ready.orValue('') == 'yes'}"]),
    );
    assert!(
        graph
            .node("summary")
            .unwrap()
            .dependencies
            .contains("workers")
    );
    let options = PassOptions {
        namespace: Some("ns".into()),
        ..PassOptions::default()
    };
    let instance = fleet_instance(json!(["eu", "us"]));
    let mut pass = Pass::new(&graph, &instance, options.clone());
    let mut names = Vec::new();
    while let Some(visit) = pass.next_visit() {
        let item = visit.item.expect("collection items only");
        assert_eq!(item.size, 4);
        assert_eq!(
            visit.desired["metadata"]["labels"]["kro.run/collection-index"],
            json!(item.index.to_string())
        );
        names.push(
            visit.desired["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        let ready = if item.index == 2 { "no" } else { "yes" };
        let mut observed = visit.desired.clone();
        observed["data"] = json!({"ready": ready});
        pass.observed_item("workers", item.index, Some(observed));
    }
    assert_eq!(names, ["f-eu-web", "f-eu-db", "f-us-web", "f-us-db"]);
    assert_eq!(
        pass.state("workers"),
        Some(&NodeState::Waiting(
            "readyWhen condition evaluated to false: \"each.data.?ready.orValue('') == 'yes'\" (waiting for readiness)".into()
        ))
    );
    assert!(matches!(pass.state("summary"), Some(NodeState::Pending(_))));

    // An item not there yet: the collection is not ready.
    let mut pass = Pass::new(&graph, &instance, options.clone());
    while let Some(visit) = pass.next_visit() {
        let index = visit.item.unwrap().index;
        let observed = (index != 3).then(|| {
            let mut o = visit.desired.clone();
            o["data"] = json!({"ready": "yes"});
            o
        });
        pass.observed_item("workers", index, observed);
    }
    assert_eq!(
        pass.state("workers"),
        Some(&NodeState::Waiting(
            "node \"workers\": collection not ready: observed 3 but desired 4 (waiting for readiness)".into()
        ))
    );

    // Every item ready: dependents render from the list.
    let mut pass = Pass::new(&graph, &instance, options.clone());
    let mut summary = None;
    while let Some(visit) = pass.next_visit() {
        match visit.item {
            Some(item) => {
                let mut o = visit.desired.clone();
                o["data"] = json!({"ready": "yes"});
                pass.observed_item("workers", item.index, Some(o));
            }
            None => {
                summary = Some(visit.desired.clone());
                pass.observed("summary", visit.desired);
            }
        }
    }
    assert_eq!(pass.state("workers"), Some(&NodeState::Synced));
    assert_eq!(summary.unwrap()["metadata"]["name"], "f-eu-db");
    assert_eq!(pass.collection_size("workers"), Some(4));

    // An empty dimension: an empty collection, ready at once, with no visit.
    let mut pass = Pass::new(&graph, &fleet_instance(json!([])), options);
    assert!(pass.next_visit().is_none());
    assert_eq!(pass.state("workers"), Some(&NodeState::Synced));
    assert!(
        matches!(pass.state("summary"), Some(NodeState::Pending(p)) if p.contains("Index out of bounds")),
        "{:?}",
        pass.state("summary")
    );
    assert_eq!(pass.collection_size("workers"), Some(0));
}

/// [KRO-20] kro's errors: a dimension that is not a list, duplicate identities, and a
/// collection over kro's maximum size.
#[test]
fn collection_errors_are_kros() {
    let error_of = |for_each: Value, regions: Value| {
        let graph = fleet(for_each, json!([]));
        let options = PassOptions {
            namespace: Some("ns".into()),
            ..PassOptions::default()
        };
        let mut pass = Pass::new(&graph, &fleet_instance(regions), options);
        assert!(pass.next_visit().is_none());
        match pass.state("workers") {
            Some(NodeState::Error(e)) => e.clone(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        error_of(
            json!([{"region": "${schema.metadata.name}"}, {"tier": "${schema.spec.tiers}"}]),
            json!([])
        ),
        "forEach \"region\": expression \"${schema.metadata.name}\" did not return a list"
    );
    assert_eq!(
        error_of(
            json!([{"region": "${schema.spec.regions}"}, {"tier": "${schema.spec.tiers}"}]),
            json!(["eu", "eu"])
        ),
        "node \"workers\" identity collision: duplicate identity: /v1/ConfigMap/ns/f-eu-web"
    );
    let many: Vec<i64> = (0..501).collect();
    assert_eq!(
        error_of(
            json!([{"region": "${schema.spec.regions}"}, {"tier": "${schema.spec.tiers}"}]),
            json!(many)
        ),
        "collection size of 1002 is over the maximum collection size of 1000"
    );
}

fn stamp<'a>(previous: &'a [Value], built_in: &'a [Value]) -> Stamp<'a> {
    Stamp {
        previous,
        built_in,
        set: crate::conditions::INSTANCE,
        generation: 3,
        now: "2026-01-02T00:00:00Z",
    }
}

/// [KRO-32] author conditions as kro v0.9.3 evaluates and stamps them: built-ins readable
/// through `runtime.condition(schema, …)`, observedGeneration stamped, the transition time
/// kept while the status holds, empty reason and message left out; a pending expression keeps
/// the previous condition of its type; a failing or malformed one and duplicate types degrade
/// the result.
#[test]
fn author_conditions_are_evaluated_and_stamped() {
    let built_in = [
        json!({"type": "GraphResolved", "status": "True", "reason": "Resolved", "message": "ok"}),
        json!({"type": "Custom", "status": "True"}),
    ];
    let previous = [
        json!({"type": "Echo", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}),
        json!({"type": "Later", "status": "False", "lastTransitionTime": "2025-01-01T00:00:00Z"}),
    ];
    let mut variables = instance_scope(&instance());
    variables.insert_resource(
        "cm",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"ok": "yes"}}),
    );
    let expressions: Vec<String> = [
        "${runtime.newCondition({type: 'Echo', status: runtime.condition(schema, 'GraphResolved').status, reason: runtime.condition(schema, 'GraphResolved').reason, message: ''})}",
        "${[runtime.newCondition({type: 'Config', status: cm.data.ok == 'yes' ? 'True' : 'False', reason: 'Checked', message: schema.spec.name})]}",
        "${runtime.newCondition({type: 'Later', status: svc.spec.ready, reason: '', message: ''})}",
    ]
    .map(String::from)
    .to_vec();
    let authored = author_conditions(
        &expressions,
        &variables,
        &instance(),
        stamp(&previous, &built_in),
    );
    assert_eq!(authored.degraded, None);
    assert_eq!(
        authored.conditions,
        [
            json!({"type": "Echo", "status": "True", "reason": "Resolved", "observedGeneration": 3,
                   "lastTransitionTime": "2025-01-01T00:00:00Z"}),
            json!({"type": "Config", "status": "True", "reason": "Checked", "message": "demo",
                   "observedGeneration": 3, "lastTransitionTime": "2026-01-02T00:00:00Z"}),
            previous[1].clone(),
        ]
    );

    let bad: Vec<String> = [
        "${'not a condition'}",
        "${runtime.newCondition({type: 'Dup', status: 'True'})}",
        "${runtime.newCondition({type: 'Dup', status: 'False'})}",
        "${runtime.newCondition({type: 'Kept', status: 'True'})}",
    ]
    .map(String::from)
    .to_vec();
    let authored = author_conditions(&bad, &variables, &instance(), stamp(&[], &built_in));
    assert_eq!(
        authored.degraded.as_deref(),
        Some(
            "author condition evaluation degraded: \"'not a condition'\": condition \"'not a condition'\" must return a Condition or list(Condition), got string; duplicate condition type(s) [Dup] dropped"
        )
    );
    assert_eq!(
        authored.conditions,
        [
            json!({"type": "Kept", "status": "True", "observedGeneration": 3,
                "lastTransitionTime": "2026-01-02T00:00:00Z"})
        ]
    );
    assert_eq!(author_condition_expressions(&rgd(json!([]))), None);
}

/// [KRO-14] an author status field holding bytes (here inside a list) stops the whole status
/// write, as kro v0.9.3's recovered panic does; other fields fail alone.
#[test]
fn a_status_field_holding_bytes_writes_no_status() {
    let rgd = json!({"spec": {"schema": {"status": {
        "name": "${schema.spec.name}", "secrets": "${[s.data.key]}"}}}});
    let mut variables = instance_scope(&instance());
    variables.insert_resource(
        "s",
        json!({"apiVersion": "v1", "kind": "Secret", "data": {"key": "AAE="}}),
    );
    assert_eq!(
        author_status(&rgd, &variables),
        Err(StatusError::Bytes {
            field: "secrets".into()
        })
    );
    variables.insert("s", json!({"data": {"key": "AAE="}}));
    assert_eq!(
        author_status(&rgd, &variables).unwrap()["secrets"],
        json!(["AAE="])
    );
}

/// [KRO-20] a collection item whose readyWhen data is missing waits with kro's text, the
/// expression quoted as Go's %q (as kro v0.9.3 printed it on the upstream target).
#[test]
fn collection_readiness_texts_are_kros() {
    let item = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {}});
    assert_eq!(
        gate::collection_readiness("workers", &["${each.data.ready == \"yes\"}".into()], &[item], 1),
        Err(r#"node "workers": failed to evaluate readyWhen "each.data.ready == \"yes\"" (item 0) (waiting for readiness)"#.to_string())
    );
    assert_eq!(gate::collection_readiness("workers", &[], &[], 0), Ok(()));
}

/// [KRO-21] deletion's walk expands a collection into its items, and a dependent's identity
/// reads the items found, in expansion order.
#[test]
fn identity_walk_visits_collection_items() {
    let graph = fleet(
        json!([{"region": "${schema.spec.regions}"}, {"tier": "${schema.spec.tiers}"}]),
        json!([]),
    );
    let instance = fleet_instance(json!(["eu"]));
    let mut walk = IdentityWalk::new(&graph, &instance, Some("ns".into()));
    for expected in ["f-eu-web", "f-eu-db"] {
        let visit = walk.next_visit().unwrap().unwrap();
        assert_eq!(visit.desired["metadata"]["name"], expected);
        assert!(visit.item.is_some());
        walk.observed("workers", visit.desired);
    }
    let summary = walk.next_visit().unwrap().unwrap();
    assert_eq!(summary.node.id, "summary");
    assert_eq!(summary.desired["metadata"]["name"], "f-eu-db");
    assert!(walk.next_visit().unwrap().is_none());
}
