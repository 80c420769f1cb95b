//! The fidelity traps of the API server spec (§12), asserted over HTTP exactly as clients see
//! them.

use std::time::Duration;

use http::{Method, StatusCode};
use kany8s_apiserver::Server;
use serde_json::{Value, json};

use crate::common::*;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

async fn server() -> Server {
    Server::builder().build()
}

/// [API-17] [API-18] T06: generation rules for custom resources; none for ConfigMaps.
#[tokio::test]
async fn t06_generation_rules() {
    let s = server().await;
    install_widgets(&s).await;
    let created = post(&s, WIDGETS, widget("w", json!({"size": 1}))).await;
    assert_eq!(created.body["metadata"]["generation"], 1);
    let url = format!("{WIDGETS}/w");
    let labelled = merge_patch(&s, &url, json!({"metadata": {"labels": {"a": "b"}}})).await;
    assert_eq!(labelled.body["metadata"]["generation"], 1);
    let changed = merge_patch(&s, &url, json!({"spec": {"size": 2}})).await;
    assert_eq!(changed.body["metadata"]["generation"], 2);
    let status = merge_patch(
        &s,
        &format!("{url}/status"),
        json!({"status": {"ready": true}}),
    )
    .await;
    assert_eq!(status.body["metadata"]["generation"], 2);
    assert_eq!(status.body["status"]["ready"], true);
    merge_patch(
        &s,
        &url,
        json!({"metadata": {"finalizers": ["example.com/f"]}}),
    )
    .await;
    let deleted = delete(&s, &url).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body["metadata"]["generation"], 3);
    let cm = post(&s, CMS, configmap("c")).await;
    assert!(cm.body["metadata"].get("generation").is_none());
}

/// [API-19] T02 T03: status isolation between the main resource and `/status`.
#[tokio::test]
async fn t02_t03_status_isolation() {
    let s = server().await;
    install_widgets(&s).await;
    let mut body = widget("w", json!({"size": 1}));
    body["status"] = json!({"ready": true});
    let created = post(&s, WIDGETS, body).await;
    assert!(created.body.get("status").is_none(), "create drops status");
    let url = format!("{WIDGETS}/w");
    let patched = merge_patch(&s, &url, json!({"status": {"ready": true}})).await;
    assert!(patched.body.get("status").is_none());
    assert_eq!(
        patched.body["metadata"]["resourceVersion"], created.body["metadata"]["resourceVersion"],
        "no-op write"
    );
    let mut current = get(&s, &url).await.body;
    current["metadata"]["labels"] = json!({"x": "y"});
    current["status"] = json!({"ready": true});
    let put = put(&s, &format!("{url}/status"), current).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(put.body["status"]["ready"], true);
    assert!(
        put.body["metadata"].get("labels").is_none(),
        "/status ignores metadata"
    );
}

/// [API-17] [API-08] T04: optimistic concurrency, exact messages.
#[tokio::test]
async fn t04_optimistic_concurrency() {
    let s = server().await;
    install_widgets(&s).await;
    let created = post(&s, CMS, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}})).await;
    let mut stale = created.body.clone();
    merge_patch(&s, &format!("{CMS}/c"), json!({"data": {"a": "2"}})).await;
    stale["data"]["a"] = json!("3");
    let conflict = put(&s, &format!("{CMS}/c"), stale).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(
        conflict.body["message"],
        "Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(conflict.body["reason"], "Conflict");
    post(&s, WIDGETS, widget("w", json!({}))).await;
    let no_rv = put(&s, &format!("{WIDGETS}/w"), widget("w", json!({"size": 3}))).await;
    assert_eq!(no_rv.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        no_rv.body["message"],
        "widgets.example.com \"w\" is invalid: metadata.resourceVersion: Invalid value: 0: must be specified for an update"
    );
    assert_eq!(
        no_rv.body["details"]["causes"][0]["field"],
        "metadata.resourceVersion"
    );
}

/// [API-13] T05 T27: unknown fields are pruned with a Warning header, or rejected when Strict.
#[tokio::test]
async fn t05_pruning_and_field_validation() {
    let s = server().await;
    install_widgets(&s).await;
    let created = post(
        &s,
        WIDGETS,
        widget("w", json!({"foo": 1, "free": {"x": {}}})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert!(created.body["spec"].get("foo").is_none());
    assert_eq!(
        created.body["spec"]["free"],
        json!({"x": {}}),
        "T20: {{}} inside preserve-unknown is kept"
    );
    assert_eq!(created.body["spec"]["mode"], "fast", "defaulting");
    let warning = created.headers.get("warning").unwrap().to_str().unwrap();
    assert_eq!(warning, "299 - \"unknown field \\\"spec.foo\\\"\"");
    let strict = post(
        &s,
        &format!("{WIDGETS}?fieldValidation=Strict"),
        widget("v", json!({"foo": 1})),
    )
    .await;
    assert_eq!(strict.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        strict.body["message"],
        "Widget in version \"v1\" cannot be handled as a Widget: strict decoding error: unknown field \"spec.foo\""
    );
}

/// [API-15] T07 T19: finalizers hold deletion; removing the last one deletes with a single
/// DELETED event carrying the previous state and a new resourceVersion.
#[tokio::test]
async fn t07_t19_finalizers_and_last_finalizer_removal() {
    let s = server().await;
    install_widgets(&s).await;
    let mut body = widget("w", json!({}));
    body["metadata"]["finalizers"] = json!(["example.com/f"]);
    let created = post(&s, WIDGETS, body).await;
    let rv = created.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("{WIDGETS}/w");
    let deleted = delete(&s, &url).await;
    assert!(deleted.body["metadata"]["deletionTimestamp"].is_string());
    let added = merge_patch(
        &s,
        &url,
        json!({"metadata": {"finalizers": ["example.com/f", "example.com/g"]}}),
    )
    .await;
    assert_eq!(added.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        added.body["message"],
        "Widget.example.com \"w\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"example.com/g\"}"
    );
    let removed = call(
        &s,
        Method::PATCH,
        &url,
        "application/json-patch+json",
        json!([{"op": "remove", "path": "/metadata/finalizers/0"}]),
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    assert_eq!(get(&s, &url).await.status, StatusCode::NOT_FOUND);
    let events = watch_events(
        &s,
        &format!("{WIDGETS}?watch=true&resourceVersion={rv}"),
        10,
        Duration::from_millis(200),
    )
    .await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["MODIFIED", "DELETED"],
        "deletion mark, then one DELETED"
    );
    let last = &events[1]["object"];
    assert_eq!(
        last["metadata"]["finalizers"],
        json!(["example.com/f"]),
        "DELETED carries the stored state"
    );
    let mark_rv: u64 = events[0]["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let delete_rv: u64 = last["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(delete_rv > mark_rv);
}

/// [API-14] T08: a watch from compacted history answers 200 with one ERROR 410 event.
#[tokio::test]
async fn t08_expired_watch_is_an_in_stream_410() {
    let s = server().await;
    for i in 0..3 {
        post(&s, CMS, configmap(&format!("c{i}"))).await;
    }
    let current = s.engine().resource_version();
    s.compact(current);
    let events = watch_events(
        &s,
        &format!("{CMS}?watch=true&resourceVersion=2"),
        5,
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 410);
    assert_eq!(events[0]["object"]["reason"], "Expired");
    assert!(
        events[0]["object"]["message"]
            .as_str()
            .unwrap()
            .starts_with("too old resource version: 2 (")
    );
}

/// [API-15] T09: N writes give N ordered events; an identical PUT gives none.
#[tokio::test]
async fn t09_ordered_events_and_silent_no_ops() {
    let s = server().await;
    let created = post(&s, CMS, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"n": "0"}})).await;
    let start = created.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    for n in 1..=5 {
        merge_patch(
            &s,
            &format!("{CMS}/c"),
            json!({"data": {"n": n.to_string()}}),
        )
        .await;
    }
    let current = get(&s, &format!("{CMS}/c")).await.body;
    let same = put(&s, &format!("{CMS}/c"), current.clone()).await;
    assert_eq!(
        same.body["metadata"]["resourceVersion"],
        current["metadata"]["resourceVersion"]
    );
    let events = watch_events(
        &s,
        &format!("{CMS}?watch=true&resourceVersion={start}"),
        10,
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(events.len(), 5);
    let rvs: Vec<u64> = events
        .iter()
        .map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(rvs.windows(2).all(|w| w[0] < w[1]));
}

/// [API-16] T12: leaving a label selector is a DELETED with the old object and the new RV.
#[tokio::test]
async fn t12_selector_transitions() {
    let s = server().await;
    let created = post(&s, CMS, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "b"}}})).await;
    let rv = created.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    merge_patch(
        &s,
        &format!("{CMS}/c"),
        json!({"metadata": {"labels": {"a": "c"}}}),
    )
    .await;
    let events = watch_events(
        &s,
        &format!("{CMS}?watch=true&labelSelector=a%3Db&resourceVersion={rv}"),
        5,
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "DELETED");
    assert_eq!(events[0]["object"]["metadata"]["labels"]["a"], "b");
    assert_ne!(
        events[0]["object"]["metadata"]["resourceVersion"],
        json!(rv)
    );
}

/// [API-20] T10: background GC by uid, foreground with blockOwnerDeletion, orphan.
#[tokio::test]
async fn t10_garbage_collection() {
    let s = server().await;
    let owner = post(&s, CMS, configmap("owner")).await;
    let uid = owner.body["metadata"]["uid"].as_str().unwrap().to_string();
    let reference = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid, "blockOwnerDeletion": true}]);
    for name in ["dep", "stale"] {
        let mut refs = reference.clone();
        if name == "stale" {
            refs[0]["uid"] = json!("not-the-owner");
        }
        post(&s, CMS, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "ownerReferences": refs}})).await;
    }
    let gone = |name: &'static str| {
        let s = &s;
        async move {
            get_until(s, &format!("{CMS}/{name}"), |r| {
                r.status == StatusCode::NOT_FOUND
            })
            .await
            .status
                == StatusCode::NOT_FOUND
        }
    };
    assert!(
        gone("stale").await,
        "a dependent whose owner uid does not exist is collected"
    );
    assert_eq!(get(&s, &format!("{CMS}/dep")).await.status, StatusCode::OK);
    call(
        &s,
        Method::DELETE,
        &format!("{CMS}/owner"),
        "application/json",
        json!({"propagationPolicy": "Background"}),
    )
    .await;
    assert!(
        gone("dep").await,
        "background deletion collects the dependent"
    );

    // Orphan: the dependent stays and loses the reference.
    let owner = post(&s, CMS, configmap("owner2")).await;
    let uid = owner.body["metadata"]["uid"].as_str().unwrap().to_string();
    post(&s, CMS, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner2", "uid": uid}]}})).await;
    call(
        &s,
        Method::DELETE,
        &format!("{CMS}/owner2"),
        "application/json",
        json!({"propagationPolicy": "Orphan"}),
    )
    .await;
    assert!(gone("owner2").await);
    let kept = get(&s, &format!("{CMS}/kept")).await;
    assert_eq!(kept.status, StatusCode::OK);
    assert!(kept.body["metadata"].get("ownerReferences").is_none());

    // Foreground: the owner waits for its blocking dependent.
    let owner = post(&s, CMS, configmap("owner3")).await;
    let uid = owner.body["metadata"]["uid"].as_str().unwrap().to_string();
    post(&s, CMS, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "blocker", "finalizers": ["example.com/hold"], "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner3", "uid": uid, "blockOwnerDeletion": true}]}})).await;
    let deleting = call(
        &s,
        Method::DELETE,
        &format!("{CMS}/owner3"),
        "application/json",
        json!({"propagationPolicy": "Foreground"}),
    )
    .await;
    assert_eq!(
        deleting.body["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    // The collector has handled the foreground deletion once it marked the dependent.
    let blocker = get_until(&s, &format!("{CMS}/blocker"), |r| {
        r.body["metadata"]["deletionTimestamp"].is_string()
    })
    .await;
    assert!(
        blocker.body["metadata"]["deletionTimestamp"].is_string(),
        "the dependent is deleted in the foreground: {}",
        blocker.text
    );
    assert_eq!(
        get(&s, &format!("{CMS}/owner3")).await.status,
        StatusCode::OK,
        "owner held by the blocking dependent"
    );
    merge_patch(
        &s,
        &format!("{CMS}/blocker"),
        json!({"metadata": {"finalizers": null}}),
    )
    .await;
    assert!(gone("blocker").await);
    assert!(
        gone("owner3").await,
        "owner released once the blocking dependent is gone"
    );
}

/// [API-08] T13: DELETE response shapes.
#[tokio::test]
async fn t13_delete_response_shapes() {
    let s = server().await;
    install_widgets(&s).await;
    post(&s, CMS, configmap("c")).await;
    let cm = delete(&s, &format!("{CMS}/c")).await;
    assert_eq!(cm.body["kind"], "Status");
    assert_eq!(cm.body["status"], "Success");
    assert_eq!(cm.body["details"]["kind"], "configmaps");
    assert!(cm.body["details"].get("group").is_none());
    post(&s, WIDGETS, widget("w", json!({}))).await;
    let w = delete(&s, &format!("{WIDGETS}/w")).await;
    assert_eq!(
        w.body["details"],
        json!({"name": "w", "group": "example.com", "kind": "widgets", "uid": w.body["details"]["uid"]})
    );
    post(
        &s,
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gone"}}),
    )
    .await;
    let ns = delete(&s, "/api/v1/namespaces/gone").await;
    assert_eq!(ns.body["kind"], "Namespace");
    assert_eq!(ns.body["status"]["phase"], "Terminating");
}

/// [API-08] E01 E02 E03 E22 E32: the basic error catalogue.
#[tokio::test]
async fn error_catalogue_basics() {
    let s = server().await;
    let missing = get(&s, &format!("{CMS}/nope")).await;
    assert_eq!(missing.body["message"], "configmaps \"nope\" not found");
    let unknown = get(&s, "/apis/nope.io/v1/things").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.body["message"],
        "the server could not find the requested resource"
    );
    let cm = configmap("c");
    post(&s, CMS, cm.clone()).await;
    let exists = post(&s, CMS, cm.clone()).await;
    assert_eq!(exists.status, StatusCode::CONFLICT);
    assert_eq!(exists.body["message"], "configmaps \"c\" already exists");
    let no_ns = post(&s, "/api/v1/namespaces/missing/configmaps", cm.clone()).await;
    assert_eq!(no_ns.body["message"], "namespaces \"missing\" not found");
    let mut with_rv = cm.clone();
    with_rv["metadata"]["name"] = json!("d");
    with_rv["metadata"]["resourceVersion"] = json!("5");
    let rv = post(&s, CMS, with_rv).await;
    assert_eq!(rv.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        rv.body["message"],
        "resourceVersion should not be set on objects to be created"
    );
    let malformed = call_with(
        &s,
        Method::POST,
        CMS,
        &[("content-type", "application/json")],
        json!("not an object"),
    )
    .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let method = post(&s, &format!("{CMS}/c"), cm).await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// [API-10] T18: strategic merge is refused for custom resources.
#[tokio::test]
async fn t18_strategic_merge_refused_for_custom_resources() {
    let s = server().await;
    install_widgets(&s).await;
    post(&s, WIDGETS, widget("w", json!({}))).await;
    let r = call(
        &s,
        Method::PATCH,
        &format!("{WIDGETS}/w"),
        "application/strategic-merge-patch+json",
        json!({"spec": {"size": 2}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

/// [API-17] T25: pagination with a stable list resourceVersion.
#[tokio::test]
async fn t25_pagination() {
    let s = server().await;
    for i in 0..5 {
        post(&s, CMS, configmap(&format!("c{i}"))).await;
    }
    let mut names = Vec::new();
    let mut uri = format!("{CMS}?limit=2");
    let mut pages = 0;
    let mut rvs = Vec::new();
    loop {
        let page = get(&s, &uri).await.body;
        pages += 1;
        rvs.push(page["metadata"]["resourceVersion"].clone());
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string()),
        );
        match page["metadata"]["continue"].as_str() {
            Some(token) => uri = format!("{CMS}?limit=2&continue={token}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["c0", "c1", "c2", "c3", "c4"]);
    assert!(rvs.iter().all(|rv| *rv == rvs[0]));
}

/// [API-21] T01: apply removes fields no longer applied, conflicts between managers, force.
#[tokio::test]
async fn t01_server_side_apply() {
    let s = server().await;
    install_widgets(&s).await;
    let url = format!("{WIDGETS}/w");
    let apply = |manager: &str, force: bool| {
        format!(
            "{url}?fieldManager={manager}{}",
            if force { "&force=true" } else { "" }
        )
    };
    let first = call(
        &s,
        Method::PATCH,
        &apply("m", false),
        "application/apply-patch+yaml",
        widget("w", json!({"a": 1, "b": 2})),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let second = call(
        &s,
        Method::PATCH,
        &apply("m", false),
        "application/apply-patch+yaml",
        widget("w", json!({"a": 1})),
    )
    .await;
    assert!(second.body["spec"].get("b").is_none(), "{}", second.text);
    let conflict = call(
        &s,
        Method::PATCH,
        &apply("n", false),
        "application/apply-patch+yaml",
        widget("w", json!({"a": 2})),
    )
    .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(
        conflict.body["message"],
        "Apply failed with 1 conflict: conflict with \"m\": .spec.a"
    );
    assert_eq!(
        conflict.body["details"]["causes"][0],
        json!({"reason": "FieldManagerConflict", "message": "conflict with \"m\"", "field": ".spec.a"})
    );
    let forced = call(
        &s,
        Method::PATCH,
        &apply("n", true),
        "application/apply-patch+yaml",
        widget("w", json!({"a": 2})),
    )
    .await;
    assert_eq!(forced.body["spec"]["a"], 2);
    let managers: Vec<&str> = forced.body["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert!(!managers.contains(&"m"), "{managers:?}");
    let no_manager = call(
        &s,
        Method::PATCH,
        &url,
        "application/apply-patch+yaml",
        widget("w", json!({})),
    )
    .await;
    assert_eq!(
        no_manager.body["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
}

/// [API-08] T37: a CEL transition rule rejects an update, with the field's value as kube-apiserver
/// 1.36 prints it.
#[tokio::test]
async fn t37_cel_transition_rule() {
    let s = server().await;
    install_widgets(&s).await;
    post(&s, WIDGETS, widget("w", json!({"id": "a"}))).await;
    let r = merge_patch(&s, &format!("{WIDGETS}/w"), json!({"spec": {"id": "b"}})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.body["message"],
        "Widget.example.com \"w\" is invalid: spec.id: Invalid value: \"b\": field is immutable"
    );
}

/// [API-12] T16: a Table for the CRD's printer columns.
#[tokio::test]
async fn t16_tables() {
    let s = server().await;
    install_widgets(&s).await;
    post(&s, WIDGETS, widget("w", json!({"size": 3}))).await;
    let r = call_with(
        &s,
        Method::GET,
        &format!("{WIDGETS}/w"),
        &[(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )],
        Value::Null,
    )
    .await;
    assert_eq!(r.body["kind"], "Table");
    let names: Vec<&str> = r.body["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Name", "Size"]);
    assert_eq!(r.body["rows"][0]["cells"], json!(["w", 3]));
}

/// [API-17] T21: integers stay integers; a whole float in an integer field is stored as one.
#[tokio::test]
async fn t21_integers() {
    let s = server().await;
    install_widgets(&s).await;
    let r = post(&s, WIDGETS, widget("w", json!({"size": 2.0}))).await;
    assert!(
        r.text.contains("\"size\":2,") || r.text.contains("\"size\":2}"),
        "{}",
        r.text
    );
    let bad = post(&s, WIDGETS, widget("v", json!({"size": 1.5}))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = bad.body["message"].as_str().unwrap();
    assert!(message.starts_with("Widget.example.com \"v\" is invalid: [spec.size: Invalid value: \"number\": spec.size in body must be of type integer: \"number\", "), "{message}");
    assert!(message.ends_with("<nil>: Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation]"), "{message}");
}

/// [API-03] [API-04] CRD discovery appears once Established; aggregated discovery has its own
/// Content-Type.
#[tokio::test]
async fn discovery_follows_established() {
    let s = Server::builder()
        .crd_establish_delay(Duration::from_millis(300))
        .build();
    let r = post(
        &s,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        widget_crd(),
    )
    .await;
    assert_eq!(
        r.body.pointer("/status/conditions"),
        Some(&Value::Null),
        "T17: no conditions in the create response (`null`, as kube-apiserver answers)"
    );
    let crd_url = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com";
    let accepted = get_until(&s, crd_url, |r| {
        condition_status(&r.body, "NamesAccepted") == Some("True")
    })
    .await;
    assert_eq!(
        condition_status(&accepted.body, "NamesAccepted"),
        Some("True"),
        "{}",
        accepted.text
    );
    let before = get(&s, "/apis").await;
    assert!(!before.text.contains("example.com"));
    let served = post(&s, WIDGETS, widget("w", json!({}))).await;
    assert_eq!(
        served.status,
        StatusCode::CREATED,
        "served once names are accepted"
    );
    let after = get_until(&s, "/apis", |r| r.text.contains("example.com/v1")).await;
    assert!(after.text.contains("example.com/v1"));
    let aggregated = call_with(
        &s,
        Method::GET,
        "/apis",
        &[(
            "accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        )],
        Value::Null,
    )
    .await;
    assert_eq!(
        aggregated.headers.get("content-type").unwrap(),
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    assert_eq!(aggregated.body["kind"], "APIGroupDiscoveryList");
}

/// [API-14] T31: watch-list: ADDED for each object, then the initial-events-end bookmark.
#[tokio::test]
async fn t31_watch_list() {
    let s = server().await;
    for i in 0..2 {
        post(&s, CMS, configmap(&format!("c{i}"))).await;
    }
    let events = watch_events(&s, &format!("{CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion=0"), 3, Duration::from_millis(300)).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ADDED", "ADDED", "BOOKMARK"]);
    assert_eq!(
        events[2]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    let off = Server::builder().watch_list(false).build();
    let refused = get(&off, &format!("{CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0")).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// [API-22] T23: deleting a namespace removes its contents, then the namespace; creates in a
/// terminating namespace are refused.
#[tokio::test]
async fn t23_namespace_deletion() {
    let s = server().await;
    post(
        &s,
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}),
    )
    .await;
    let cms = "/api/v1/namespaces/x/configmaps";
    post(&s, cms, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "held", "finalizers": ["example.com/hold"]}})).await;
    delete(&s, "/api/v1/namespaces/x").await;
    // The namespace controller has run once it deleted the contents.
    let held = get_until(&s, &format!("{cms}/held"), |r| {
        r.body["metadata"]["deletionTimestamp"].is_string()
    })
    .await;
    assert!(
        held.body["metadata"]["deletionTimestamp"].is_string(),
        "the namespace's contents are deleted: {}",
        held.text
    );
    let ns = get(&s, "/api/v1/namespaces/x").await;
    assert_eq!(ns.body["status"]["phase"], "Terminating");
    let refused = post(&s, cms, configmap("new")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused.body["message"],
        "configmaps \"new\" is forbidden: unable to create new content in namespace x because it is being terminated"
    );
    merge_patch(
        &s,
        &format!("{cms}/held"),
        json!({"metadata": {"finalizers": null}}),
    )
    .await;
    let removed = get_until(&s, "/api/v1/namespaces/x", |r| {
        r.status == StatusCode::NOT_FOUND
    })
    .await;
    assert_eq!(
        removed.status,
        StatusCode::NOT_FOUND,
        "namespace x was never removed"
    );
}

/// [API-13] fault injection: the n-th write fails with the chosen status.
#[tokio::test]
async fn fault_injection_fails_the_nth_write() {
    let s = server().await;
    s.faults().fail_nth_write(2, 500);
    assert_eq!(
        post(&s, CMS, configmap("a")).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        post(&s, CMS, configmap("b")).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        post(&s, CMS, configmap("b")).await.status,
        StatusCode::CREATED
    );
}

/// [API-19] metadata is never pruned by a CRD schema that declares `metadata: {type: object}`.
#[tokio::test]
async fn crd_schema_never_prunes_metadata() {
    let s = server().await;
    let mut crd = widget_crd();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["metadata"] =
        json!({"type": "object"});
    install(&s, crd, "/apis/example.com/v1").await;
    let mut body = widget("w", json!({}));
    body["metadata"]["labels"] = json!({"a": "b"});
    let created = post(&s, &format!("{WIDGETS}?fieldValidation=Strict"), body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["metadata"]["labels"], json!({"a": "b"}));
}

/// [API-19] `/scale` maps to the CRD's replica paths.
#[tokio::test]
async fn scale_subresource() {
    let s = server().await;
    let mut crd = widget_crd();
    crd["spec"]["versions"][0]["subresources"]["scale"] = json!({"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.observedGeneration"});
    install(&s, crd, "/apis/example.com/v1").await;
    post(&s, WIDGETS, widget("w", json!({"size": 2}))).await;
    let scale = get(&s, &format!("{WIDGETS}/w/scale")).await;
    assert_eq!(scale.body["kind"], "Scale");
    assert_eq!(scale.body["spec"]["replicas"], 2);
    let patched = merge_patch(
        &s,
        &format!("{WIDGETS}/w/scale"),
        json!({"spec": {"replicas": 4}}),
    )
    .await;
    assert_eq!(patched.body["spec"]["replicas"], 4, "{}", patched.text);
    let widget = get(&s, &format!("{WIDGETS}/w")).await;
    assert_eq!(widget.body["spec"]["size"], 4);
}

/// [API-22] T22: a default added to the CRD later shows on reads of old objects.
#[tokio::test]
async fn t22_defaults_on_read() {
    let s = server().await;
    install_widgets(&s).await;
    post(&s, WIDGETS, widget("w", json!({}))).await;
    let mut crd = get(
        &s,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
    )
    .await
    .body;
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["size"]
        ["default"] = json!(9);
    let updated = put(
        &s,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
        crd,
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    let read = get_until(&s, &format!("{WIDGETS}/w"), |r| r.body["spec"]["size"] == 9).await;
    assert_eq!(read.body["spec"]["size"], 9);
}

/// [API-05] T38: the OpenAPI document of a group-version is listed with a hash that changes
/// with the schema, and a stale hash redirects.
#[tokio::test]
async fn t38_openapi_hashes() {
    let s = server().await;
    install_widgets(&s).await;
    let root = get(&s, "/openapi/v3").await.body;
    let url = root["paths"]["apis/example.com/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let document = get(&s, &url).await;
    assert_eq!(
        document.headers.get("cache-control").unwrap(),
        "public, immutable"
    );
    assert!(
        document.body["components"]["schemas"]["com.example.v1.Widget"]["properties"]["spec"]
            .is_object()
    );
    let mut crd = get(
        &s,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
    )
    .await
    .body;
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["extra"] =
        json!({"type": "string"});
    put(
        &s,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
        crd,
    )
    .await;
    let stale = get_until(&s, &url, |r| r.status == StatusCode::MOVED_PERMANENTLY).await;
    assert_eq!(stale.status, StatusCode::MOVED_PERMANENTLY);
    assert_ne!(
        stale.headers.get("location").unwrap().to_str().unwrap(),
        url
    );
}

/// [API-08] E33: a request that outlives its `timeout` answers 504.
#[tokio::test]
async fn e33_request_timeout() {
    let s = server().await;
    s.faults().latency(Duration::from_millis(300));
    let r = get(&s, &format!("{CMS}?timeout=50ms")).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        r.body["message"],
        "Timeout: request did not complete within requested timeout - context deadline exceeded"
    );
}

/// [API-20] T17: the CRD create response has no conditions (`conditions: null`, as
/// kube-apiserver answers); a watch sees ADDED, then the names-accepted write, then Established.
#[tokio::test]
async fn t17_crd_condition_sequence() {
    let s = server().await;
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let rv = s.engine().resource_version();
    let created = post(&s, crds, widget_crd()).await;
    assert_eq!(
        created.body.pointer("/status/conditions"),
        Some(&Value::Null)
    );
    let events = watch_events(
        &s,
        &format!("{crds}?watch=true&resourceVersion={rv}"),
        3,
        Duration::from_secs(2),
    )
    .await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ADDED", "MODIFIED", "MODIFIED"]);
    let condition = |e: &Value, t: &str| {
        e["object"]["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == t)
            .map(|c| (c["status"].clone(), c["reason"].clone()))
    };
    assert_eq!(
        condition(&events[1], "NamesAccepted"),
        Some((json!("True"), json!("NoConflicts")))
    );
    assert_eq!(
        condition(&events[1], "Established"),
        Some((json!("False"), json!("Installing")))
    );
    assert_eq!(
        condition(&events[2], "Established"),
        Some((json!("True"), json!("InitialNamesAccepted")))
    );
}

/// [API-17] T20: empty metadata collections are dropped.
#[tokio::test]
async fn t20_empty_metadata_collections_dropped() {
    let s = server().await;
    let r = post(&s, CMS, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {}, "finalizers": [], "annotations": {}}})).await;
    let metadata = r.body["metadata"].as_object().unwrap();
    assert!(
        !metadata.contains_key("labels")
            && !metadata.contains_key("finalizers")
            && !metadata.contains_key("annotations")
    );
}

/// [API-15] T32: bookmarks only when asked, never behind the last event.
#[tokio::test]
async fn t32_bookmarks() {
    let s = Server::builder()
        .bookmark_interval(Duration::from_millis(50))
        .build();
    let created = post(&s, CMS, configmap("c")).await;
    let rv: u64 = created.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let events = watch_events(
        &s,
        &format!(
            "{CMS}?watch=true&allowWatchBookmarks=true&resourceVersion={}",
            rv - 1
        ),
        2,
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[1]["type"], "BOOKMARK");
    let bookmark_rv: u64 = events[1]["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(bookmark_rv >= rv);
    let without = watch_events(
        &s,
        &format!("{CMS}?watch=true&resourceVersion={rv}"),
        1,
        Duration::from_millis(200),
    )
    .await;
    assert!(without.is_empty());
}

/// [API-17] T33: a list at resourceVersion 0 ignores `limit` (1.32 behaviour).
#[tokio::test]
async fn t33_rv_zero_ignores_limit() {
    let s = server().await;
    for i in 0..3 {
        post(&s, CMS, configmap(&format!("c{i}"))).await;
    }
    let list = get(&s, &format!("{CMS}?resourceVersion=0&limit=1")).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 3);
    assert!(list.body["metadata"].get("continue").is_none());
}

/// [API-17] T34: generated names are retried on collision; eight collisions give E04.
#[tokio::test]
async fn t34_generate_name_collisions() {
    let s = server().await;
    let body =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}});
    s.engine().force_name_collisions(3);
    let ok = post(&s, CMS, body.clone()).await;
    assert_eq!(ok.status, StatusCode::CREATED);
    assert!(
        ok.body["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("gen-")
    );
    s.engine().force_name_collisions(8);
    let exhausted = post(&s, CMS, body).await;
    assert_eq!(exhausted.status, StatusCode::CONFLICT);
    assert_eq!(exhausted.body["details"]["retryAfterSeconds"], 1);
}

/// [API-13] T35: unknown metadata fields warn, or fail under Strict.
#[tokio::test]
async fn t35_unknown_metadata_fields() {
    let s = server().await;
    let body = |n: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n, "foo": 1}});
    let warned = post(&s, CMS, body("a")).await;
    assert_eq!(
        warned.headers.get("warning").unwrap(),
        "299 - \"unknown field \\\"metadata.foo\\\"\""
    );
    let strict = post(&s, &format!("{CMS}?fieldValidation=Strict"), body("b")).await;
    assert_eq!(strict.status, StatusCode::BAD_REQUEST);
    assert!(
        strict.body["message"]
            .as_str()
            .unwrap()
            .ends_with("strict decoding error: unknown field \"metadata.foo\"")
    );
}

/// [API-20] T40: a dependent whose namespaced owner lives in another namespace is collected.
#[tokio::test]
async fn t40_cross_namespace_owner_is_absent() {
    let s = server().await;
    post(
        &s,
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}),
    )
    .await;
    let owner = post(
        &s,
        "/api/v1/namespaces/other/configmaps",
        configmap("owner"),
    )
    .await;
    let uid = owner.body["metadata"]["uid"].clone();
    post(&s, CMS, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dep", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}})).await;
    let dependent = get_until(&s, &format!("{CMS}/dep"), |r| {
        r.status == StatusCode::NOT_FOUND
    })
    .await;
    assert_eq!(
        dependent.status,
        StatusCode::NOT_FOUND,
        "the dependent of a cross-namespace owner was not collected"
    );
}

/// [API-06] deletecollection deletes what the selector matches and lists the objects it deleted.
#[tokio::test]
async fn delete_collection_by_selector() {
    let s = server().await;
    for (name, tier) in [("a", "x"), ("b", "x"), ("c", "y")] {
        post(&s, CMS, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"tier": tier}}})).await;
    }
    let deleted = delete(&s, &format!("{CMS}?labelSelector=tier%3Dx")).await;
    // The deleted objects themselves, as kube-apiserver lists them (not per-object Statuses).
    let mut deleted_names: Vec<&str> = deleted.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert_ne!(i["kind"], "Status", "{i}");
            assert!(i["metadata"]["uid"].is_string(), "{i}");
            i["metadata"]["name"].as_str().unwrap()
        })
        .collect();
    deleted_names.sort_unstable();
    assert_eq!(deleted_names, ["a", "b"]);
    let left = get(&s, CMS).await;
    let names: Vec<&str> = left.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["c"]);
}

/// [API-13] T36: duplicate keys warn, or fail under Strict.
#[tokio::test]
async fn t36_duplicate_fields() {
    let s = server().await;
    install_widgets(&s).await;
    let raw = |name: &str| {
        format!(
            r#"{{"apiVersion":"example.com/v1","kind":"Widget","metadata":{{"name":"{name}"}},"spec":{{"size":1,"size":2}}}}"#
        )
    };
    let send = |uri: String, body: String| {
        let s = &s;
        async move {
            let request = http::Request::builder()
                .method(Method::POST)
                .uri(uri)
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body))
                .unwrap();
            let response = tower::ServiceExt::oneshot(s.router(), request)
                .await
                .unwrap();
            let status = response.status();
            let warning = response
                .headers()
                .get("warning")
                .map(|w| w.to_str().unwrap().to_string());
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (
                status,
                warning,
                serde_json::from_slice::<Value>(&bytes).unwrap(),
            )
        }
    };
    let (status, warning, body) = send(WIDGETS.to_string(), raw("a")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        warning.as_deref(),
        Some("299 - \"duplicate field \\\"spec.size\\\"\"")
    );
    assert_eq!(body["spec"]["size"], 2, "the last value wins");
    let (status, _, body) = send(format!("{WIDGETS}?fieldValidation=Strict"), raw("b")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "Widget in version \"v1\" cannot be handled as a Widget: strict decoding error: duplicate field \"spec.size\""
    );
}

/// [API-17] T39: deleting an object without finalizers removes it at once; an update cannot
/// set deletionTimestamp.
#[tokio::test]
async fn t39_deletion_timestamp_rules() {
    let s = server().await;
    let created = post(&s, CMS, configmap("c")).await;
    let mut body = created.body.clone();
    body["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    let put = put(&s, &format!("{CMS}/c"), body).await;
    assert_eq!(put.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(put.body["message"].as_str().unwrap().ends_with(
        "metadata.deletionTimestamp: Invalid value: \"2026-01-01T00:00:00Z\": field is immutable"
    ));
    let rv = created.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    delete(&s, &format!("{CMS}/c")).await;
    let events = watch_events(
        &s,
        &format!("{CMS}?watch=true&resourceVersion={rv}"),
        2,
        Duration::from_millis(200),
    )
    .await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["DELETED"]);
    assert!(
        events[0]["object"]["metadata"]
            .get("deletionTimestamp")
            .is_none()
    );
}

/// [API-20] versions are served from one storage: an object written as one version reads as
/// another with its apiVersion rewritten; forced expiry answers the next resume with 410.
#[tokio::test]
async fn versions_share_storage_and_forced_expiry() {
    let s = server().await;
    let mut crd = widget_crd();
    let v1 = crd["spec"]["versions"][0].clone();
    let mut v2 = v1.clone();
    v2["name"] = json!("v2");
    v2["storage"] = json!(false);
    crd["spec"]["versions"] = json!([v1, v2]);
    install(&s, crd, "/apis/example.com/v2").await;
    post(&s, WIDGETS, widget("w", json!({"size": 1}))).await;
    let read = get(&s, "/apis/example.com/v2/namespaces/default/widgets/w").await;
    assert_eq!(read.body["apiVersion"], "example.com/v2");
    assert_eq!(read.body["spec"]["size"], 1);
    let rv = read.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    s.faults().expire_next_watch("widgets");
    let events = watch_events(
        &s,
        &format!("{WIDGETS}?watch=true&resourceVersion={rv}"),
        2,
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["object"]["code"], 410);
}

/// [API-22] T41: built-in admission defaults — the namespace name label, Secret `Opaque`, and
/// `stringData` merged into `data` and never stored.
#[tokio::test]
async fn t41_builtin_admission_defaults() {
    let s = server().await;
    let ns = post(
        &s,
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n1"}}),
    )
    .await;
    assert_eq!(
        ns.body["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "n1"
    );
    assert_eq!(ns.body["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(ns.body["status"]["phase"], "Active");
    let secret = post(&s, "/api/v1/namespaces/default/secrets", json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"a": "YQ=="}, "stringData": {"b": "bee"}})).await;
    assert_eq!(secret.body["type"], "Opaque");
    assert_eq!(secret.body["data"], json!({"a": "YQ==", "b": "YmVl"}));
    assert!(secret.body.get("stringData").is_none());
}

/// [API-35] Schema-only built-ins (§11): a Deployment has generation rules, status only through
/// `/status`, pruning of unknown fields; a Service gets an immutable cluster IP at create.
#[tokio::test]
async fn schema_only_builtins() {
    let s = server().await;
    let deployments = "/apis/apps/v1/namespaces/default/deployments";
    let created = post(&s, deployments, json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
               "spec": {"selector": {"matchLabels": {"app": "d"}}, "bogus": 1,
                        "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
               "status": {"availableReplicas": 3}}))
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["metadata"]["generation"], 1);
    assert!(
        created
            .body
            .get("status")
            .is_none_or(|s| s.get("availableReplicas").is_none())
    );
    assert!(created.body["spec"].get("bogus").is_none());
    assert!(
        created.body["spec"].get("replicas").is_none(),
        "no built-in defaulting"
    );
    let url = format!("{deployments}/d");
    let status = merge_patch(
        &s,
        &format!("{url}/status"),
        json!({"status": {"availableReplicas": 1}, "spec": {"replicas": 5}}),
    )
    .await;
    assert_eq!(status.body["status"]["availableReplicas"], 1);
    assert!(status.body["spec"].get("replicas").is_none());
    assert_eq!(status.body["metadata"]["generation"], 1);
    let scaled = call(
        &s,
        Method::PATCH,
        &url,
        "application/strategic-merge-patch+json",
        json!({"spec": {"replicas": 2}, "status": {"availableReplicas": 9}}),
    )
    .await;
    assert_eq!(scaled.body["metadata"]["generation"], 2);
    assert_eq!(scaled.body["status"]["availableReplicas"], 1);

    let services = "/api/v1/namespaces/default/services";
    let service = |name: &str, spec: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec});
    let a = post(&s, services, service("a", json!({"ports": [{"port": 80}]}))).await;
    let b = post(&s, services, service("b", json!({"ports": [{"port": 80}]}))).await;
    let ip_a = a.body["spec"]["clusterIP"].as_str().unwrap().to_string();
    assert!(ip_a.starts_with("10.96."), "{ip_a}");
    assert_eq!(a.body["spec"]["clusterIPs"], json!([ip_a]));
    assert_ne!(b.body["spec"]["clusterIP"], a.body["spec"]["clusterIP"]);
    assert!(a.body.get("metadata").unwrap().get("generation").is_none());
    let headless = post(&s, services, service("h", json!({"clusterIP": "None"}))).await;
    assert_eq!(headless.body["spec"]["clusterIP"], "None");
    // An update that leaves the IP out keeps it; one that changes it is refused.
    let kept = put(
        &s,
        &format!("{services}/a"),
        service("a", json!({"ports": [{"port": 81}]})),
    )
    .await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.body);
    assert_eq!(kept.body["spec"]["clusterIP"], ip_a.as_str());
    let changed = merge_patch(
        &s,
        &format!("{services}/a"),
        json!({"spec": {"clusterIP": "10.0.0.1"}}),
    )
    .await;
    assert_eq!(changed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        changed.body["message"],
        "Service \"a\" is invalid: spec.clusterIPs[0]: Invalid value: [\"10.0.0.1\"]: may not change once set"
    );
}

/// [API-35] Both Event APIs are one store (as in kube-apiserver): an Event written through
/// `events.k8s.io/v1` (kube-rs's Recorder) is read, listed, selected, watched and deleted
/// through core `v1` (`kubectl describe`), and the other way round.
#[tokio::test]
async fn events_share_one_store_across_both_apis() {
    let s = server().await;
    let new = "/apis/events.k8s.io/v1/namespaces/default/events";
    let core = "/api/v1/namespaces/default/events";
    let watch_rv = get(&s, core).await.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let created = post(
        &s,
        new,
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "demo.1"},
            "eventTime": "2026-12-06T10:00:00.000000Z", "reportingController": "kany8s.io/controller",
            "reportingInstance": "kany8s-0", "action": "Reconcile", "reason": "Created", "type": "Normal",
            "note": "created the instance",
            "regarding": {"apiVersion": "v1", "kind": "ConfigMap", "name": "demo", "namespace": "default"}}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["note"], "created the instance");
    assert_eq!(created.body["deprecatedSource"], json!({}));
    let patched = merge_patch(
        &s,
        &format!("{new}/demo.1"),
        json!({"series": {"count": 2, "lastObservedTime": "2026-12-06T10:01:00.000000Z"}}),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let through_core = get(&s, &format!("{core}/demo.1")).await;
    assert_eq!(through_core.status, StatusCode::OK, "{}", through_core.text);
    assert_eq!(through_core.body["apiVersion"], "v1");
    assert_eq!(through_core.body["message"], "created the instance");
    assert_eq!(through_core.body["involvedObject"]["name"], "demo");
    assert_eq!(
        through_core.body["reportingComponent"],
        "kany8s.io/controller"
    );
    assert_eq!(through_core.body["series"]["count"], 2);
    assert_eq!(through_core.body["firstTimestamp"], Value::Null);
    assert_eq!(
        through_core.body["metadata"]["resourceVersion"],
        patched.body["metadata"]["resourceVersion"],
        "one object, one resourceVersion"
    );
    let selected = get(
        &s,
        &format!("{core}?fieldSelector=involvedObject.name%3Ddemo"),
    )
    .await;
    assert_eq!(selected.body["items"].as_array().unwrap().len(), 1);
    let old = post(
        &s,
        core,
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "old.1"},
            "involvedObject": {"kind": "ConfigMap", "name": "demo", "namespace": "default"},
            "reason": "Legacy", "message": "written through v1", "type": "Warning"}),
    )
    .await;
    assert_eq!(old.status, StatusCode::CREATED, "{}", old.text);
    let through_new = get(&s, &format!("{new}/old.1")).await;
    assert_eq!(through_new.body["apiVersion"], "events.k8s.io/v1");
    assert_eq!(through_new.body["note"], "written through v1");
    assert_eq!(through_new.body["regarding"]["kind"], "ConfigMap");
    assert_eq!(
        get(&s, new).await.body["items"].as_array().unwrap().len(),
        2
    );
    let events = watch_events(
        &s,
        &format!("{core}?watch=true&resourceVersion={watch_rv}"),
        3,
        Duration::from_secs(2),
    )
    .await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ADDED", "MODIFIED", "ADDED"]);
    assert_eq!(events[0]["object"]["message"], "created the instance");
    assert_eq!(
        delete(&s, &format!("{core}/demo.1")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&s, &format!("{new}/demo.1")).await.status,
        StatusCode::NOT_FOUND
    );
}

/// [API-26] [API-08] The namespace lifecycle as kube-apiserver and kube-controller-manager run
/// it: `spec.finalizers: [kubernetes]` at create; a deleted namespace stays Terminating (no
/// grace period) with the namespace controller's conditions while content with finalizers
/// remains; creates in it get E23; it vanishes once the content is gone.
#[tokio::test]
async fn namespace_terminates_with_conditions_then_vanishes() {
    let s = server().await;
    let created = post(
        &s,
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}}),
    )
    .await;
    assert_eq!(created.body["spec"]["finalizers"], json!(["kubernetes"]));
    let cms = "/api/v1/namespaces/doomed/configmaps";
    let mut held = configmap("held");
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    assert_eq!(post(&s, cms, held).await.status, StatusCode::CREATED);
    let deleted = delete(&s, "/api/v1/namespaces/doomed").await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body["status"]["phase"], "Terminating");
    assert!(deleted.body["metadata"]["deletionTimestamp"].is_string());
    assert!(
        deleted.body["metadata"]
            .get("deletionGracePeriodSeconds")
            .is_none()
    );
    let terminating = get_until(&s, "/api/v1/namespaces/doomed", |r| {
        condition_status(&r.body, "NamespaceFinalizersRemaining") == Some("True")
    })
    .await;
    let conditions = terminating.body["status"]["conditions"].as_array().unwrap();
    let by_type = |t: &str| conditions.iter().find(|c| c["type"] == t).unwrap().clone();
    assert_eq!(
        by_type("NamespaceContentRemaining")["message"],
        "Some resources are remaining: configmaps. has 1 resource instances"
    );
    assert_eq!(
        by_type("NamespaceFinalizersRemaining")["message"],
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    );
    assert_eq!(
        by_type("NamespaceDeletionDiscoveryFailure")["reason"],
        "ResourcesDiscovered"
    );
    assert_eq!(conditions.len(), 5);
    let refused = post(&s, cms, configmap("late")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused.body["message"],
        "configmaps \"late\" is forbidden: unable to create new content in namespace doomed because it is being terminated"
    );
    assert_eq!(
        refused.body["details"]["causes"],
        json!([{"reason": "NamespaceTerminating", "message": "namespace doomed is being terminated", "field": "metadata.namespace"}])
    );
    let released = call(
        &s,
        Method::PATCH,
        &format!("{cms}/held"),
        "application/json-patch+json",
        json!([{"op": "remove", "path": "/metadata/finalizers"}]),
    )
    .await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.text);
    let gone = get_until(&s, "/api/v1/namespaces/doomed", |r| {
        r.status == StatusCode::NOT_FOUND
    })
    .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

/// [API-26] [API-08] E24 carries kube-apiserver's details.
#[tokio::test]
async fn protected_namespace_delete_details() {
    let s = server().await;
    let refused = delete(&s, "/api/v1/namespaces/default").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused.body["details"],
        json!({"name": "default", "kind": "namespaces"})
    );
}

/// [API-07] [API-14] Found by the differential suite: lists of built-ins are typed (items carry
/// no apiVersion/kind, custom resources' do), and a watch-list request may leave
/// resourceVersion unset (a consistent read).
#[tokio::test]
async fn typed_builtin_lists_and_watch_list_without_resource_version() {
    let s = server().await;
    post(&s, CMS, configmap("c")).await;
    let list = get(&s, CMS).await;
    assert!(list.body["items"][0].get("kind").is_none());
    assert!(list.body["items"][0].get("apiVersion").is_none());
    let events = watch_events(
        &s,
        &format!("{CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"),
        2,
        Duration::from_secs(2),
    )
    .await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ADDED", "BOOKMARK"]);
    let refused = get(&s, &format!("{CMS}?sendInitialEvents=true")).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused.body["message"],
        "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list"
    );
    install_widgets(&s).await;
    let custom = get(&s, WIDGETS).await;
    assert_eq!(
        custom.body["metadata"]["continue"], "",
        "unstructured lists carry it"
    );
}

/// [API-13] An unsupported fieldValidation value is kube-apiserver 1.36's 422 on the request's
/// options kind (CreateOptions for a POST), with the field error as a cause.
#[tokio::test]
async fn unsupported_field_validation_names_the_options_kind() {
    let s = server().await;
    let r = post(
        &s,
        "/api/v1/namespaces/default/configmaps?fieldValidation=Bogus",
        configmap("c"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["reason"], "Invalid");
    assert_eq!(
        r.body["message"],
        r#"CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Bogus": supported values: "", "Ignore", "Strict", "Warn""#
    );
    assert_eq!(r.body["details"]["group"], "meta.k8s.io");
    assert_eq!(r.body["details"]["kind"], "CreateOptions");
    assert_eq!(
        r.body["details"]["causes"][0]["reason"],
        "FieldValueNotSupported"
    );
}

/// [API-29] A conflict with an Update manager names its apiVersion but no time, and the
/// details of an apply conflict carry only the causes (kube-apiserver 1.36); managedFields
/// list Apply entries before Update entries.
#[tokio::test]
async fn apply_conflict_with_an_update_manager() {
    let s = server().await;
    let url = "/api/v1/namespaces/default/configmaps";
    let created = post(&s, &format!("{url}?fieldManager=creator"), {
        let mut c = configmap("c");
        c["data"] = json!({"a": "1"});
        c
    })
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let applied = call(
        &s,
        Method::PATCH,
        &format!("{url}/c?fieldManager=applier"),
        "application/apply-patch+yaml",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"b": "2"}}),
    )
    .await;
    let operations: Vec<&str> = applied.body["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["operation"].as_str().unwrap())
        .collect();
    assert_eq!(operations, ["Apply", "Update"]);
    let conflict = call(
        &s,
        Method::PATCH,
        &format!("{url}/c?fieldManager=applier"),
        "application/apply-patch+yaml",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "9"}}),
    )
    .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(
        conflict.body["message"],
        "Apply failed with 1 conflict: conflict with \"creator\" using v1: .data.a"
    );
    assert_eq!(
        conflict.body["details"],
        json!({"causes": [{"reason": "FieldManagerConflict", "message": "conflict with \"creator\" using v1", "field": ".data.a"}]})
    );
}

/// [API-20] A CRD's conversion defaults to `None`, and the status its controllers write is
/// owned by `kube-apiserver` (an Update of the status subresource), not by its creator.
#[tokio::test]
async fn crd_status_is_owned_by_kube_apiserver() {
    let s = server().await;
    install_widgets(&s).await;
    let crd = get(
        &s,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
    )
    .await;
    assert_eq!(crd.body["spec"]["conversion"], json!({"strategy": "None"}));
    let entries = crd.body["metadata"]["managedFields"].as_array().unwrap();
    let status = entries
        .iter()
        .find(|e| e["manager"] == "kube-apiserver")
        .expect("an entry of kube-apiserver");
    assert_eq!(status["operation"], "Update");
    assert_eq!(status["subresource"], "status");
    let owned = &status["fieldsV1"]["f:status"];
    assert!(owned["f:acceptedNames"].get("f:kind").is_some(), "{owned}");
    assert!(
        owned["f:conditions"]
            .get(r#"k:{"type":"Established"}"#)
            .is_some(),
        "{owned}"
    );
    assert!(owned["f:conditions"].get(".").is_none(), "{owned}");
    assert!(
        entries
            .iter()
            .filter(|e| e["manager"] != "kube-apiserver")
            .all(|e| e["fieldsV1"].get("f:status").is_none()),
        "the creator owns no status: {entries:?}"
    );
}

/// [API-32] A custom resource whose data claims another kind is kube-apiserver's 422 on the
/// `kind` field, named after the claimed kind.
#[tokio::test]
async fn custom_resource_of_another_kind_is_invalid() {
    let s = server().await;
    install_widgets(&s).await;
    let mut gadget = widget("w2", json!({}));
    gadget["kind"] = json!("Gadget");
    let r = post(&s, WIDGETS, gadget).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        r.body["message"],
        r#"Gadget.example.com "w2" is invalid: kind: Invalid value: "Gadget": must be Widget"#
    );
    assert_eq!(r.body["details"]["kind"], "Gadget");
    assert_eq!(r.body["details"]["causes"][0]["field"], "kind");
}

/// [API-10] E26: a PATCH whose Content-Type is no patch type is refused before any handler,
/// with kube-apiserver's bare 415 text and empty details.
#[tokio::test]
async fn unknown_patch_content_type_is_a_bare_415() {
    let s = server().await;
    post(&s, "/api/v1/namespaces/default/configmaps", configmap("c")).await;
    let r = call(
        &s,
        Method::PATCH,
        "/api/v1/namespaces/default/configmaps/c",
        "application/x-unknown",
        json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.body["reason"], "UnsupportedMediaType");
    assert_eq!(r.body["message"], "415: Unsupported Media Type");
    assert_eq!(r.body["details"], json!({}));
}

/// [API-22] An unknown propagationPolicy is an error of the request's DeleteOptions, answered
/// before the object is looked up (a 422 even when it does not exist).
#[tokio::test]
async fn unknown_propagation_policy_is_invalid_before_lookup() {
    let s = server().await;
    let r = call(
        &s,
        Method::DELETE,
        "/api/v1/namespaces/default/configmaps/missing?propagationPolicy=Sideways",
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        r.body["message"],
        r#"DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Sideways": supported values: "Foreground", "Background", "Orphan", "nil""#
    );
    assert_eq!(r.body["details"]["kind"], "DeleteOptions");
}

/// [API-23] An owner reference without uid is reported at `metadata.ownerReferences.uid` (no
/// index), as kube-apiserver 1.36 words it.
#[tokio::test]
async fn owner_reference_without_uid() {
    let s = server().await;
    let mut bad = configmap("bad");
    bad["metadata"]["ownerReferences"] =
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "a", "uid": ""}]);
    let r = post(&s, "/api/v1/namespaces/default/configmaps", bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        r.body["message"],
        r#"ConfigMap "bad" is invalid: metadata.ownerReferences.uid: Invalid value: "": must not be empty"#
    );
}

/// [API-25] The writer of a generateName owns it, as kube-apiserver's field manager records it.
#[tokio::test]
async fn generate_name_is_managed() {
    let s = server().await;
    let r = post(
        &s,
        "/api/v1/namespaces/default/configmaps?fieldManager=maker",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.body["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:metadata": {"f:generateName": {}}})
    );
}
