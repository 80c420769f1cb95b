//! Watches: from a resourceVersion, RV=0 replay, selectors and their transitions,
//! `sendInitialEvents`, expiry (200 + ERROR 410). Every collection stops on an event it waits
//! for (a marker object written last), never on a timeout.

use serde_json::{Value, json};

use super::configmap;
use crate::{Area, Ctx, FidelityError, Req, Sequence, sequence};

pub fn sequences() -> Vec<Sequence> {
    vec![
        sequence!(Area::Watch, "watch-from-rv", ["API-14", "API-15"], from_rv),
        sequence!(Area::Watch, "watch-selectors", ["API-16"], selectors),
        sequence!(
            Area::Watch,
            "watch-initial-events",
            ["API-14"],
            initial_events
        ),
        sequence!(Area::Watch, "watch-expired", ["API-14"], expired),
    ]
}

fn named(name: &'static str) -> impl Fn(&Value) -> bool {
    move |e| e["object"]["metadata"]["name"] == name
}

/// [API-14] [API-15] events after an RV: ADDED, MODIFIED, no event for a no-op, DELETED with
/// the last state; RV=0 replays the current state.
async fn from_rv(c: &mut Ctx) -> Result<(), FidelityError> {
    let cms = c.core("configmaps");
    let first = c
        .send(&Req::post(&cms, configmap("a", json!({"k": "1"}))))
        .await?;
    let mut watch = c
        .watch(&Req::get(format!(
            "{cms}?watch=true&resourceVersion={}",
            first.rv()
        )))
        .await?;
    c.send(&Req::post(&cms, configmap("b", json!({})))).await?;
    c.send(&Req::merge(format!("{cms}/a"), json!({"data": {"k": "2"}})))
        .await?;
    c.send(&Req::merge(format!("{cms}/a"), json!({"data": {"k": "2"}})))
        .await?;
    c.send(&Req::delete(format!("{cms}/a"))).await?;
    c.send(&Req::post(&cms, configmap("marker", json!({}))))
        .await?;
    c.collect("events after rv", &mut watch, named("marker"), vec![])
        .await;
    let mut replay = c
        .watch(&Req::get(format!("{cms}?watch=true&resourceVersion=0")))
        .await?;
    c.collect("rv=0 replay", &mut replay, named("marker"), vec![])
        .await;
    let mut single = c
        .watch(&Req::get(format!(
            "/api/v1/watch/namespaces/{}/configmaps/b?resourceVersion=0",
            c.ns
        )))
        .await?;
    c.collect("deprecated watch path", &mut single, named("b"), vec![])
        .await;
    Ok(())
}

/// [API-16] label and field selector watches: objects entering (ADDED) and leaving (DELETED)
/// the selection.
async fn selectors(c: &mut Ctx) -> Result<(), FidelityError> {
    let cms = c.core("configmaps");
    let start = c.send(&Req::get(&cms)).await?;
    let rv = start.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut labelled = c
        .watch(&Req::get(format!(
            "{cms}?watch=true&labelSelector=tier%3Dgold&resourceVersion={rv}"
        )))
        .await?;
    let mut by_name = c
        .watch(&Req::get(format!(
            "{cms}?watch=true&fieldSelector=metadata.name%3Dx&resourceVersion={rv}"
        )))
        .await?;
    c.send(&Req::post(&cms, configmap("x", json!({})))).await?;
    c.send(&Req::merge(
        format!("{cms}/x"),
        json!({"metadata": {"labels": {"tier": "gold"}}}),
    ))
    .await?;
    c.send(&Req::merge(
        format!("{cms}/x"),
        json!({"metadata": {"labels": {"tier": "silver"}}}),
    ))
    .await?;
    let mut marker = configmap("marker", json!({}));
    marker["metadata"]["labels"] = json!({"tier": "gold"});
    c.send(&Req::post(&cms, marker)).await?;
    c.collect(
        "label selector transitions",
        &mut labelled,
        named("marker"),
        vec![],
    )
    .await;
    c.send(&Req::delete(format!("{cms}/x"))).await?;
    c.collect(
        "field selector",
        &mut by_name,
        |e| e["type"] == "DELETED",
        vec![],
    )
    .await;
    Ok(())
}

/// [API-14] `sendInitialEvents`: synthetic ADDED, the initial-events-end bookmark, then changes.
async fn initial_events(c: &mut Ctx) -> Result<(), FidelityError> {
    let cms = c.core("configmaps");
    for name in ["a", "b"] {
        c.send(&Req::post(&cms, configmap(name, json!({})))).await?;
    }
    let mut watch = c
        .watch(&Req::get(format!("{cms}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")))
        .await?;
    c.collect(
        "initial events",
        &mut watch,
        |e| e["type"] == "BOOKMARK",
        vec![],
    )
    .await;
    c.send(&Req::post(&cms, configmap("marker", json!({}))))
        .await?;
    c.collect("after the bookmark", &mut watch, named("marker"), vec![])
        .await;
    // Requests a server may refuse (a Status) or serve (a stream): both are recorded as the
    // events read up to the end-of-initial-events bookmark or the first marker.
    let done = |e: &Value| e["type"] == "BOOKMARK" || e["object"]["metadata"]["name"] == "marker";
    let mut w = c
        .watch(&Req::get(format!(
            "{cms}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        )))
        .await?;
    c.collect("without bookmarks", &mut w, done, vec![]).await;
    let mut w = c
        .watch(&Req::get(format!(
            "{cms}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true"
        )))
        .await?;
    c.collect("without match", &mut w, done, vec![]).await;
    c.check(
        "on a list",
        Req::get(format!("{cms}?sendInitialEvents=true")),
    )
    .await?;
    Ok(())
}

/// [API-14] a watch from a compacted resourceVersion: HTTP 200, one ERROR event (410 Expired).
/// kube-apiserver's watch cache starts after RV 1; the embedded server keeps history, so it is
/// compacted first (its test hook).
async fn expired(c: &mut Ctx) -> Result<(), FidelityError> {
    let cms = c.core("configmaps");
    let created = c.send(&Req::post(&cms, configmap("a", json!({})))).await?;
    if let (Some(server), Ok(rv)) = (c.embedded(), created.rv().parse::<u64>()) {
        server.compact(rv);
    }
    let mut watch = c
        .watch(&Req::get(format!("{cms}?watch=true&resourceVersion=1")))
        .await?;
    c.collect("expired", &mut watch, |e| e["type"] == "ERROR", vec![])
        .await;
    c.check(
        "list too old exact",
        Req::get(format!(
            "{cms}?resourceVersion=1&resourceVersionMatch=Exact"
        )),
    )
    .await?;
    Ok(())
}
