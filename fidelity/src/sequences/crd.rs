//! CRD lifecycle and the custom-resource pipeline: conditions, invalid CRDs, multi-version,
//! pruning, defaulting, OpenAPI and CEL messages, transition rules, deletion.

use serde_json::json;

use super::{group, install_widgets, widget, widget_crd, widgets};
use crate::{Area, Ctx, FidelityError, Req, Sequence, sequence};

pub fn sequences() -> Vec<Sequence> {
    vec![
        sequence!(Area::Crd, "crd-lifecycle", ["API-31"], lifecycle),
        sequence!(Area::Crd, "crd-invalid", ["API-31", "API-08"], invalid),
        sequence!(
            Area::Crd,
            "crd-multiversion",
            ["API-31", "API-32"],
            multiversion
        ),
        sequence!(Area::Crd, "cr-schema", ["API-32"], schema),
        sequence!(Area::Crd, "cr-cel", ["API-33"], cel),
    ]
}

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

fn established(r: &crate::Reply) -> bool {
    r.body["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
    })
}

/// [API-31] create → NamesAccepted, Established; delete with instances → Terminating, gone;
/// creates while terminating.
async fn lifecycle(c: &mut Ctx) -> Result<(), FidelityError> {
    let crd = widget_crd(c);
    let name = crd["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    c.check("create", Req::post(CRDS, crd.clone())).await?;
    c.until(
        "established",
        Req::get(format!("{CRDS}/{name}")),
        established,
    )
    .await?;
    c.wait_for(&Req::get(widgets(c)), |r| r.status == 200)
        .await?;
    c.check("create again", Req::post(CRDS, crd)).await?;
    let url = widgets(c);
    let mut held = widget(c, "held", json!({}));
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    c.check("instance", Req::post(&url, held)).await?;
    c.check("delete", Req::delete(format!("{CRDS}/{name}")))
        .await?;
    c.until("terminating", Req::get(format!("{CRDS}/{name}")), |r| {
        r.body["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Terminating" && c["reason"] == "InstanceDeletionInProgress")
        })
    })
    .await?;
    c.check(
        "create while terminating",
        Req::post(&url, widget(c, "late", json!({}))),
    )
    .await?;
    c.check("instance being deleted", Req::get(format!("{url}/held")))
        .await?;
    c.check(
        "release",
        Req::json_patch(
            format!("{url}/held"),
            json!([{"op": "remove", "path": "/metadata/finalizers"}]),
        ),
    )
    .await?;
    c.until("crd gone", Req::get(format!("{CRDS}/{name}")), |r| {
        r.status == 404
    })
    .await?;
    c.until("resource gone", Req::get(&url), |r| r.status == 404)
        .await?;
    Ok(())
}

/// [API-31] [API-08] CRD validation messages.
async fn invalid(c: &mut Ctx) -> Result<(), FidelityError> {
    let mut wrong_name = widget_crd(c);
    wrong_name["metadata"]["name"] = json!("wrong.example.com");
    c.check("name mismatch", Req::post(CRDS, wrong_name))
        .await?;
    let mut no_storage = widget_crd(c);
    no_storage["spec"]["versions"][0]["storage"] = json!(false);
    c.check("no storage version", Req::post(CRDS, no_storage))
        .await?;
    let mut bad_schema = widget_crd(c);
    bad_schema["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["x"] = json!({"type": "bogus"});
    c.check("bad type", Req::post(CRDS, bad_schema)).await?;
    let mut bad_rule = widget_crd(c);
    bad_rule["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"] =
        json!([{"rule": "self.nope +"}]);
    c.check("bad rule", Req::post(CRDS, bad_rule)).await?;
    let mut optional_old_self = widget_crd(c);
    optional_old_self["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"] =
        json!([{"rule": "self.size >= oldSelf.size", "optionalOldSelf": true}]);
    c.check("optionalOldSelf misuse", Req::post(CRDS, optional_old_self))
        .await?;
    let mut no_schema = widget_crd(c);
    if let Some(v) = no_schema["spec"]["versions"][0].as_object_mut() {
        v.remove("schema");
    }
    c.check("no schema", Req::post(CRDS, no_schema)).await?;
    let mut bad_scope = widget_crd(c);
    bad_scope["spec"]["scope"] = json!("Galaxy");
    c.check("bad scope", Req::post(CRDS, bad_scope)).await?;
    Ok(())
}

/// [API-31] [API-32] two served versions (conversion `None`): written in one, read in both.
async fn multiversion(c: &mut Ctx) -> Result<(), FidelityError> {
    let mut crd = widget_crd(c);
    let mut v2 = crd["spec"]["versions"][0].clone();
    v2["name"] = json!("v2");
    v2["storage"] = json!(false);
    crd["spec"]["versions"][0]["deprecated"] = json!(true);
    crd["spec"]["versions"][0]["deprecationWarning"] = json!("v1 is old, use v2");
    if let Some(versions) = crd["spec"]["versions"].as_array_mut() {
        versions.insert(0, v2);
    }
    c.install_crd(crd).await?;
    let g = group(c);
    let v1 = widgets(c);
    let v2 = v1.replace("/v1/", "/v2/");
    c.check(
        "create v1 (deprecated)",
        Req::post(&v1, widget(c, "w", json!({"size": 1}))),
    )
    .await?;
    c.check("read v2", Req::get(format!("{v2}/w"))).await?;
    let mut in_v2 = widget(c, "x", json!({"size": 2}));
    in_v2["apiVersion"] = json!(format!("{g}/v2"));
    c.check("create v2", Req::post(&v2, in_v2)).await?;
    c.check("list v1", Req::get(&v1)).await?;
    c.check("discovery group", Req::get(format!("/apis/{g}")))
        .await?;
    c.check(
        "wrong apiVersion",
        Req::post(
            &v1,
            json!({"apiVersion": format!("{g}/v9"), "kind": "Widget", "metadata": {"name": "y"}}),
        ),
    )
    .await?;
    Ok(())
}

/// [API-32] pruning, nulls, defaulting, OpenAPI validation messages.
async fn schema(c: &mut Ctx) -> Result<(), FidelityError> {
    install_widgets(c).await?;
    let url = widgets(c);
    c.check("prune and default", Req::post(&url, widget(c, "a", json!({"size": 1, "unknown": 1, "free": {"any": {"deep": [1]}}, "labels": {"k": "v"}})))).await?;
    c.check(
        "null dropped",
        Req::post(&url, widget(c, "b", json!({"size": null, "mode": null}))),
    )
    .await?;
    c.check(
        "minimum",
        Req::post(&url, widget(c, "c", json!({"size": 0}))),
    )
    .await?;
    c.check(
        "maximum and enum",
        Req::post(&url, widget(c, "d", json!({"size": 101, "mode": "medium"}))),
    )
    .await?;
    c.check(
        "pattern and maxLength",
        Req::post(&url, widget(c, "e", json!({"name": "ABCDEFGHIJ"}))),
    )
    .await?;
    c.check(
        "wrong types",
        Req::post(
            &url,
            widget(
                c,
                "f",
                json!({"size": "big", "tags": "x", "labels": {"k": 1}}),
            ),
        ),
    )
    .await?;
    c.check(
        "required in list",
        Req::post(&url, widget(c, "g", json!({"ports": [{"port": 1}]}))),
    )
    .await?;
    c.check(
        "duplicate set",
        Req::post(&url, widget(c, "h", json!({"tags": ["a", "a"]}))),
    )
    .await?;
    c.check(
        "float for integer",
        Req::post(&url, widget(c, "i", json!({"size": 1.5}))),
    )
    .await?;
    c.check(
        "integral float",
        Req::post(&url, widget(c, "j", json!({"size": 2.0}))),
    )
    .await?;
    c.check(
        "metadata name too long",
        Req::post(&url, widget(c, &"n".repeat(254), json!({}))),
    )
    .await?;
    Ok(())
}

/// [API-33] CEL rules: a cross-field rule, an `oldSelf` transition rule, an optional oldSelf
/// rule, and their messages on update.
async fn cel(c: &mut Ctx) -> Result<(), FidelityError> {
    install_widgets(c).await?;
    let url = widgets(c);
    c.check(
        "rule fails on create",
        Req::post(&url, widget(c, "a", json!({"low": 5, "high": 1}))),
    )
    .await?;
    c.check(
        "create",
        Req::post(&url, widget(c, "b", json!({"id": "one", "size": 5}))),
    )
    .await?;
    c.check(
        "immutable id",
        Req::merge(format!("{url}/b"), json!({"spec": {"id": "two"}})),
    )
    .await?;
    c.check(
        "size may only grow",
        Req::merge(format!("{url}/b"), json!({"spec": {"size": 4}})),
    )
    .await?;
    c.check(
        "two failures",
        Req::merge(
            format!("{url}/b"),
            json!({"spec": {"size": 3, "id": "three", "low": 9, "high": 0}}),
        ),
    )
    .await?;
    c.check(
        "schema error skips rules",
        Req::merge(format!("{url}/b"), json!({"spec": {"size": 0, "id": "x"}})),
    )
    .await?;
    c.check(
        "allowed",
        Req::merge(format!("{url}/b"), json!({"spec": {"size": 6}})),
    )
    .await?;
    Ok(())
}
