//! Finalizers and deletion shapes, garbage collection, the namespace lifecycle.

use serde_json::{Value, json};

use super::{configmap, gone, install_widgets, widget, widgets};
use crate::{Area, Ctx, FidelityError, Reply, Req, Sequence, sequence};

pub fn sequences() -> Vec<Sequence> {
    vec![
        sequence!(
            Area::Deletion,
            "del-finalizers",
            ["API-22", "API-08"],
            finalizers
        ),
        sequence!(
            Area::Deletion,
            "del-preconditions",
            ["API-22", "API-08"],
            preconditions
        ),
        sequence!(Area::Deletion, "del-shapes", ["API-22"], shapes),
        sequence!(
            Area::GarbageCollection,
            "gc-background",
            ["API-23"],
            gc_background
        ),
        sequence!(
            Area::GarbageCollection,
            "gc-foreground",
            ["API-23"],
            gc_foreground
        ),
        sequence!(Area::GarbageCollection, "gc-orphan", ["API-23"], gc_orphan),
        sequence!(
            Area::Namespaces,
            "ns-lifecycle",
            ["API-26", "API-08"],
            namespace_lifecycle
        ),
        sequence!(
            Area::Namespaces,
            "ns-protected",
            ["API-26", "API-08"],
            namespace_protected
        ),
    ]
}

/// [API-22] a finalizer holds deletion; no new finalizer while deleting (E12); the last removal
/// deletes (a watch sees one DELETED).
async fn finalizers(c: &mut Ctx) -> Result<(), FidelityError> {
    install_widgets(c).await?;
    let url = widgets(c);
    let mut body = widget(c, "w", json!({"size": 1}));
    body["metadata"]["finalizers"] = json!(["example.com/f"]);
    let created = c.check("create", Req::post(&url, body)).await?;
    let mut watch = c
        .watch(&Req::get(format!(
            "{url}?watch=true&resourceVersion={}",
            created.rv()
        )))
        .await?;
    c.check("delete marks", Req::delete(format!("{url}/w")))
        .await?;
    c.check("delete again", Req::delete(format!("{url}/w")))
        .await?;
    c.check(
        "new finalizer refused",
        Req::merge(
            format!("{url}/w"),
            json!({"metadata": {"finalizers": ["example.com/f", "example.com/g"]}}),
        ),
    )
    .await?;
    c.check(
        "spec change while deleting",
        Req::merge(format!("{url}/w"), json!({"spec": {"size": 2}})),
    )
    .await?;
    c.check(
        "create while deleting",
        Req::post(&url, widget(c, "w", json!({}))),
    )
    .await?;
    c.check(
        "remove last finalizer",
        Req::json_patch(
            format!("{url}/w"),
            json!([{"op": "remove", "path": "/metadata/finalizers/0"}]),
        ),
    )
    .await?;
    c.collect("events", &mut watch, |e| e["type"] == "DELETED", vec![])
        .await;
    c.check("gone", Req::get(format!("{url}/w"))).await?;
    Ok(())
}

/// [API-22] [API-08] delete preconditions (E06, E07) and dry run.
async fn preconditions(c: &mut Ctx) -> Result<(), FidelityError> {
    let cms = c.core("configmaps");
    let created = c.send(&Req::post(&cms, configmap("c", json!({})))).await?;
    let url = format!("{cms}/c");
    let options =
        |pre: Value| json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": pre});
    let mut req = Req::delete(&url).json(options(
        json!({"uid": "00000000-0000-4000-8000-000000000000"}),
    ));
    c.check("uid mismatch", req.clone()).await?;
    req = Req::delete(&url).json(options(json!({"resourceVersion": "1"})));
    c.check("rv mismatch", req).await?;
    c.check("dry run", Req::delete(format!("{url}?dryRun=All")))
        .await?;
    c.check("still there", Req::get(&url)).await?;
    c.check(
        "matching",
        Req::delete(&url).json(options(
            json!({"uid": created.uid(), "resourceVersion": created.rv()}),
        )),
    )
    .await?;
    c.check(
        "bad propagation",
        Req::delete(format!("{cms}/x")).json(json!({"propagationPolicy": "Sideways"})),
    )
    .await?;
    Ok(())
}

/// [API-22] what DELETE returns: a Status for plain deletes, the object for Namespaces and for
/// objects kept by finalizers (foreground, orphan); deletecollection.
async fn shapes(c: &mut Ctx) -> Result<(), FidelityError> {
    install_widgets(c).await?;
    let url = widgets(c);
    for name in ["plain", "fg", "orph", "x1", "x2"] {
        c.send(&Req::post(&url, widget(c, name, json!({})))).await?;
    }
    c.check("plain", Req::delete(format!("{url}/plain")))
        .await?;
    c.check(
        "foreground",
        Req::delete(format!("{url}/fg")).json(json!({"propagationPolicy": "Foreground"})),
    )
    .await?;
    c.check(
        "orphan",
        Req::delete(format!("{url}/orph")).json(json!({"propagationPolicy": "Orphan"})),
    )
    .await?;
    c.check(
        "orphanDependents",
        Req::delete(format!("{url}/x1")).json(json!({"orphanDependents": false})),
    )
    .await?;
    gone(c, &format!("{url}/fg")).await?;
    gone(c, &format!("{url}/orph")).await?;
    c.check(
        "deletecollection",
        Req::delete(format!("{}?labelSelector=", c.core("configmaps"))),
    )
    .await?;
    c.check("deletecollection custom", Req::delete(&url))
        .await?;
    Ok(())
}

fn owned(owner: &Reply, name: &str, block: bool) -> Value {
    let mut cm = configmap(name, json!({}));
    cm["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": owner.body["metadata"]["name"], "uid": owner.uid(), "blockOwnerDeletion": block}]);
    cm
}

/// [API-23] background: the owner goes, then its dependent.
async fn gc_background(c: &mut Ctx) -> Result<(), FidelityError> {
    let cms = c.core("configmaps");
    let owner = c
        .send(&Req::post(&cms, configmap("owner", json!({}))))
        .await?;
    c.check("dependent", Req::post(&cms, owned(&owner, "dep", false)))
        .await?;
    c.check("bad owner ref", Req::post(&cms, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner"}]}}))).await?;
    c.check("two controllers", Req::post(&cms, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "two", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "a", "uid": "00000000-0000-4000-8000-00000000000a", "controller": true},
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "b", "uid": "00000000-0000-4000-8000-00000000000b", "controller": true}]}}))).await?;
    c.check("delete owner", Req::delete(format!("{cms}/owner")))
        .await?;
    c.until("dependent collected", Req::get(format!("{cms}/dep")), |r| {
        r.status == 404
    })
    .await?;
    Ok(())
}

/// [API-23] foreground: the owner waits (foregroundDeletion) for its blocking dependent.
async fn gc_foreground(c: &mut Ctx) -> Result<(), FidelityError> {
    let cms = c.core("configmaps");
    let owner = c
        .send(&Req::post(&cms, configmap("owner", json!({}))))
        .await?;
    let mut dep = owned(&owner, "dep", true);
    dep["metadata"]["finalizers"] = json!(["example.com/hold"]);
    c.send(&Req::post(&cms, dep)).await?;
    c.check(
        "delete foreground",
        Req::delete(format!("{cms}/owner")).json(json!({"propagationPolicy": "Foreground"})),
    )
    .await?;
    c.until("dependent deleting", Req::get(format!("{cms}/dep")), |r| {
        r.body["metadata"]["deletionTimestamp"].is_string()
    })
    .await?;
    c.check("owner waits", Req::get(format!("{cms}/owner")))
        .await?;
    c.send(&Req::json_patch(
        format!("{cms}/dep"),
        json!([{"op": "remove", "path": "/metadata/finalizers"}]),
    ))
    .await?;
    c.until("owner gone", Req::get(format!("{cms}/owner")), |r| {
        r.status == 404
    })
    .await?;
    Ok(())
}

/// [API-23] orphan: the dependent stays, without its owner reference.
async fn gc_orphan(c: &mut Ctx) -> Result<(), FidelityError> {
    let cms = c.core("configmaps");
    let owner = c
        .send(&Req::post(&cms, configmap("owner", json!({}))))
        .await?;
    c.send(&Req::post(&cms, owned(&owner, "dep", false)))
        .await?;
    c.check(
        "delete orphan",
        Req::delete(format!("{cms}/owner")).json(json!({"propagationPolicy": "Orphan"})),
    )
    .await?;
    c.until("owner gone", Req::get(format!("{cms}/owner")), |r| {
        r.status == 404
    })
    .await?;
    c.until("dependent orphaned", Req::get(format!("{cms}/dep")), |r| {
        r.body["metadata"]["ownerReferences"].is_null()
    })
    .await?;
    Ok(())
}

fn condition<'a>(r: &'a Reply, type_: &str) -> Option<&'a Value> {
    r.body["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// [API-26] [API-08] a new namespace (spec.finalizers), its deletion (Terminating, conditions,
/// contents removed, finalizers respected), creates refused while terminating (E23), then gone.
async fn namespace_lifecycle(c: &mut Ctx) -> Result<(), FidelityError> {
    let name = format!("{}-x", c.ns);
    let ns = format!("/api/v1/namespaces/{name}");
    c.check(
        "create",
        Req::post(
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        ),
    )
    .await?;
    let cms = format!("{ns}/configmaps");
    let mut held = configmap("held", json!({}));
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    c.send(&Req::post(&cms, held)).await?;
    c.send(&Req::post(&cms, configmap("plain", json!({}))))
        .await?;
    c.check("delete", Req::delete(&ns)).await?;
    c.check("delete again", Req::delete(&ns)).await?;
    c.until("content remaining", Req::get(&ns), |r| {
        condition(r, "NamespaceFinalizersRemaining").is_some_and(|c| c["status"] == "True")
    })
    .await?;
    c.until(
        "plain content removed",
        Req::get(format!("{cms}/plain")),
        |r| r.status == 404,
    )
    .await?;
    c.check(
        "create refused",
        Req::post(&cms, configmap("late", json!({}))),
    )
    .await?;
    c.check(
        "create refused (generateName)",
        Req::post(
            &cms,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "late-"}}),
        ),
    )
    .await?;
    c.check("held still there", Req::get(format!("{cms}/held")))
        .await?;
    c.check(
        "update held allowed",
        Req::merge(format!("{cms}/held"), json!({"data": {"k": "v"}})),
    )
    .await?;
    c.check(
        "release",
        Req::json_patch(
            format!("{cms}/held"),
            json!([{"op": "remove", "path": "/metadata/finalizers"}]),
        ),
    )
    .await?;
    c.until("namespace gone", Req::get(&ns), |r| r.status == 404)
        .await?;
    c.check(
        "create in gone namespace",
        Req::post(&cms, configmap("later", json!({}))),
    )
    .await?;
    Ok(())
}

/// [API-26] [API-08] protected namespaces; namespace status and finalize.
async fn namespace_protected(c: &mut Ctx) -> Result<(), FidelityError> {
    for name in ["default", "kube-system", "kube-public"] {
        c.check(
            &format!("delete {name}"),
            Req::delete(format!("/api/v1/namespaces/{name}")),
        )
        .await?;
    }
    let ns = format!("/api/v1/namespaces/{}", c.ns);
    c.check("get", Req::get(&ns)).await?;
    c.check(
        "invalid name",
        Req::post(
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "Not.A.Label"}}),
        ),
    )
    .await?;
    c.check(
        "status patch",
        Req::merge(
            format!("{ns}/status"),
            json!({"status": {"phase": "Terminating"}}),
        ),
    )
    .await?;
    c.check(
        "spec finalizers patch",
        Req::merge(&ns, json!({"spec": {"finalizers": ["example.com/x"]}})),
    )
    .await?;
    c.check(
        "list by phase",
        Req::get(format!(
            "/api/v1/namespaces?fieldSelector=metadata.name%3D{}",
            c.ns
        )),
    )
    .await?;
    Ok(())
}
