//! CRUD and generateName, optimistic concurrency, field validation, status and scale.

use serde_json::json;

use super::{configmap, install_widgets, widget, widgets};
use crate::{Area, Ctx, FidelityError, Req, Sequence, sequence};

pub fn sequences() -> Vec<Sequence> {
    vec![
        sequence!(
            Area::Crud,
            "crud-configmap",
            ["API-17", "API-08", "API-24"],
            configmap_crud
        ),
        sequence!(Area::Crud, "crud-generate-name", ["API-25"], generate_name),
        sequence!(Area::Crud, "crud-secret", ["API-24", "API-35"], secret),
        sequence!(Area::Crud, "crud-custom", ["API-17", "API-32"], custom_crud),
        sequence!(Area::Crud, "crud-paging", ["API-17"], paging),
        sequence!(
            Area::Concurrency,
            "occ-configmap",
            ["API-21", "API-08"],
            concurrency_configmap
        ),
        sequence!(
            Area::Concurrency,
            "occ-custom",
            ["API-21", "API-08"],
            concurrency_custom
        ),
        sequence!(
            Area::FieldValidation,
            "fv-custom",
            ["API-13"],
            field_validation_custom
        ),
        sequence!(
            Area::FieldValidation,
            "fv-builtin",
            ["API-13"],
            field_validation_builtin
        ),
        sequence!(
            Area::FieldValidation,
            "fv-duplicates",
            ["API-13"],
            duplicates
        ),
        sequence!(
            Area::Subresources,
            "sub-status",
            ["API-19"],
            status_subresource
        ),
        sequence!(
            Area::Subresources,
            "sub-scale",
            ["API-19"],
            scale_subresource
        ),
    ]
}

/// [API-17] [API-08] [API-24] create, conflicting create, get, list, update, delete, 404s,
/// invalid names and a create carrying a resourceVersion.
async fn configmap_crud(c: &mut Ctx) -> Result<(), FidelityError> {
    let cms = c.core("configmaps");
    let mut body = configmap("c1", json!({"a": "1"}));
    body["metadata"]["labels"] = json!({"app": "x"});
    let created = c.check("create", Req::post(&cms, body.clone())).await?;
    c.check("create again", Req::post(&cms, body)).await?;
    c.check("get", Req::get(format!("{cms}/c1"))).await?;
    c.check(
        "list by label",
        Req::get(format!("{cms}?labelSelector=app%3Dx")),
    )
    .await?;
    c.check(
        "list bad selector",
        Req::get(format!("{cms}?labelSelector=app%3D%3D%3Dx")),
    )
    .await?;
    c.check(
        "list unsupported field",
        Req::get(format!("{cms}?fieldSelector=data.a%3D1")),
    )
    .await?;
    let mut updated = created.body.clone();
    updated["data"]["a"] = json!("2");
    c.check("update", Req::put(format!("{cms}/c1"), updated.clone()))
        .await?;
    c.check("no-op update", Req::put(format!("{cms}/c1"), json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1", "labels": {"app": "x"}}, "data": {"a": "2"}}))).await?;
    c.check("get missing", Req::get(format!("{cms}/missing")))
        .await?;
    c.check(
        "update missing",
        Req::put(format!("{cms}/missing"), configmap("missing", json!({}))),
    )
    .await?;
    c.check(
        "invalid name",
        Req::post(&cms, configmap("Bad_Name", json!({}))),
    )
    .await?;
    c.check("invalid label", Req::post(&cms, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c2", "labels": {"bad key!": "v"}}}))).await?;
    c.check(
        "invalid data key",
        Req::post(&cms, configmap("c3", json!({"bad key": "v"}))),
    )
    .await?;
    let mut with_rv = configmap("c4", json!({}));
    with_rv["metadata"]["resourceVersion"] = json!("1");
    c.check("create with resourceVersion", Req::post(&cms, with_rv))
        .await?;
    c.check("namespace mismatch", Req::post(&cms, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c5", "namespace": "other"}}))).await?;
    c.check(
        "missing namespace",
        Req::post(
            "/api/v1/namespaces/fid-nowhere/configmaps",
            configmap("c6", json!({})),
        ),
    )
    .await?;
    c.check("delete", Req::delete(format!("{cms}/c1"))).await?;
    c.check("delete missing", Req::delete(format!("{cms}/c1")))
        .await?;
    c.check(
        "unknown resource",
        Req::get(format!("{}/nothings", c.core(""))),
    )
    .await?;
    c.check(
        "dry-run create",
        Req::post(format!("{cms}?dryRun=All"), configmap("dry", json!({}))),
    )
    .await?;
    c.check("dry-run not stored", Req::get(format!("{cms}/dry")))
        .await?;
    Ok(())
}

/// [API-25] generateName: a generated name; an invalid prefix.
async fn generate_name(c: &mut Ctx) -> Result<(), FidelityError> {
    let cms = c.core("configmaps");
    c.check(
        "generated",
        Req::post(
            &cms,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}),
        ),
    )
    .await?;
    c.check(
        "invalid prefix",
        Req::post(
            &cms,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "Gen_"}}),
        ),
    )
    .await?;
    c.check(
        "neither name nor generateName",
        Req::post(
            &cms,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}),
        ),
    )
    .await?;
    Ok(())
}

/// [API-24] [API-35] Secret defaults: `type: Opaque`, `stringData` merged into `data`.
async fn secret(c: &mut Ctx) -> Result<(), FidelityError> {
    let secrets = c.core("secrets");
    c.check("create", Req::post(&secrets, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}, "data": {"d": "eA=="}}))).await?;
    c.check("bad base64", Req::post(&secrets, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s2"}, "data": {"d": "not base64!"}}))).await?;
    c.check(
        "field selector type",
        Req::get(format!("{secrets}?fieldSelector=type%3DOpaque")),
    )
    .await?;
    c.check("immutable", Req::post(&secrets, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3"}, "immutable": true, "data": {"d": "eA=="}}))).await?;
    c.check(
        "change immutable",
        Req::merge(format!("{secrets}/s3"), json!({"data": {"d": "eQ=="}})),
    )
    .await?;
    Ok(())
}

/// [API-17] [API-32] custom resource CRUD with defaulting and generation.
async fn custom_crud(c: &mut Ctx) -> Result<(), FidelityError> {
    install_widgets(c).await?;
    let url = widgets(c);
    let created = c
        .check(
            "create",
            Req::post(&url, widget(c, "w1", json!({"size": 1}))),
        )
        .await?;
    c.check("get", Req::get(format!("{url}/w1"))).await?;
    c.check("list", Req::get(&url)).await?;
    c.check(
        "list cluster-wide",
        Req::get(format!("/apis/{}/v1/widgets", super::group(c))),
    )
    .await?;
    c.check(
        "field selector name",
        Req::get(format!("{url}?fieldSelector=metadata.name%3Dw1")),
    )
    .await?;
    c.check(
        "field selector unsupported",
        Req::get(format!("{url}?fieldSelector=spec.size%3D1")),
    )
    .await?;
    let mut body = created.body.clone();
    body["spec"]["size"] = json!(2);
    c.check("update", Req::put(format!("{url}/w1"), body))
        .await?;
    c.check(
        "label only",
        Req::merge(
            format!("{url}/w1"),
            json!({"metadata": {"labels": {"a": "b"}}}),
        ),
    )
    .await?;
    c.check("wrong kind", Req::post(&url, json!({"apiVersion": format!("{}/v1", super::group(c)), "kind": "Gadget", "metadata": {"name": "w2"}}))).await?;
    c.check("delete", Req::delete(format!("{url}/w1"))).await?;
    c.check("get deleted", Req::get(format!("{url}/w1")))
        .await?;
    Ok(())
}

/// [API-17] limit and continue.
async fn paging(c: &mut Ctx) -> Result<(), FidelityError> {
    let cms = c.core("configmaps");
    for name in ["p1", "p2", "p3"] {
        c.send(&Req::post(&cms, configmap(name, json!({})))).await?;
    }
    let first = c
        .check("page 1", Req::get(format!("{cms}?limit=2")))
        .await?;
    let token = first.body["metadata"]["continue"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    c.check(
        "page 2",
        Req::get(format!("{cms}?limit=2&continue={token}")),
    )
    .await?;
    c.check(
        "bad continue",
        Req::get(format!("{cms}?limit=2&continue=garbage")),
    )
    .await?;
    c.check(
        "rv match without rv",
        Req::get(format!("{cms}?resourceVersionMatch=NotOlderThan")),
    )
    .await?;
    Ok(())
}

/// [API-21] [API-08] E05, unconditional updates of ConfigMaps, preconditions in patches, E07b.
async fn concurrency_configmap(c: &mut Ctx) -> Result<(), FidelityError> {
    let cms = c.core("configmaps");
    let created = c
        .send(&Req::post(&cms, configmap("c", json!({"a": "1"}))))
        .await?;
    c.send(&Req::merge(format!("{cms}/c"), json!({"data": {"a": "2"}})))
        .await?;
    let mut stale = created.body.clone();
    stale["data"]["a"] = json!("3");
    c.check("stale update", Req::put(format!("{cms}/c"), stale.clone()))
        .await?;
    c.check(
        "stale merge patch",
        Req::merge(
            format!("{cms}/c"),
            json!({"metadata": {"resourceVersion": created.rv()}, "data": {"a": "4"}}),
        ),
    )
    .await?;
    let mut no_rv = stale.clone();
    if let Some(m) = no_rv["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    c.check(
        "unconditional update",
        Req::put(format!("{cms}/c"), no_rv.clone()),
    )
    .await?;
    let mut wrong_uid = no_rv;
    wrong_uid["metadata"]["uid"] = json!("00000000-0000-4000-8000-000000000000");
    c.check("uid mismatch", Req::put(format!("{cms}/c"), wrong_uid))
        .await?;
    c.check(
        "name mismatch",
        Req::put(format!("{cms}/c"), configmap("d", json!({}))),
    )
    .await?;
    Ok(())
}

/// [API-21] E11: custom resources need a resourceVersion on update.
async fn concurrency_custom(c: &mut Ctx) -> Result<(), FidelityError> {
    install_widgets(c).await?;
    let url = widgets(c);
    let created = c
        .send(&Req::post(&url, widget(c, "w", json!({"size": 1}))))
        .await?;
    c.check(
        "update without rv",
        Req::put(format!("{url}/w"), widget(c, "w", json!({"size": 3}))),
    )
    .await?;
    let mut stale = created.body.clone();
    c.send(&Req::merge(
        format!("{url}/w"),
        json!({"spec": {"size": 2}}),
    ))
    .await?;
    stale["spec"]["size"] = json!(5);
    c.check("stale update", Req::put(format!("{url}/w"), stale))
        .await?;
    Ok(())
}

/// [API-13] unknown fields of a custom resource: Warn (default), Strict, Ignore; metadata.
async fn field_validation_custom(c: &mut Ctx) -> Result<(), FidelityError> {
    install_widgets(c).await?;
    let url = widgets(c);
    c.check(
        "warn",
        Req::post(
            &url,
            widget(c, "a", json!({"size": 1, "foo": 1, "bar": {"x": 1}})),
        ),
    )
    .await?;
    c.check(
        "strict",
        Req::post(
            format!("{url}?fieldValidation=Strict"),
            widget(c, "b", json!({"size": 1, "foo": 1})),
        ),
    )
    .await?;
    c.check(
        "ignore",
        Req::post(
            format!("{url}?fieldValidation=Ignore"),
            widget(c, "c", json!({"size": 1, "foo": 1})),
        ),
    )
    .await?;
    let mut meta = widget(c, "d", json!({}));
    meta["metadata"]["foo"] = json!("x");
    c.check("metadata warn", Req::post(&url, meta.clone()))
        .await?;
    meta["metadata"]["name"] = json!("e");
    c.check(
        "metadata strict",
        Req::post(format!("{url}?fieldValidation=Strict"), meta),
    )
    .await?;
    c.check(
        "invalid value",
        Req::post(
            format!("{url}?fieldValidation=Bogus"),
            widget(c, "f", json!({})),
        ),
    )
    .await?;
    c.check(
        "patch strict",
        Req::merge(
            format!("{url}/a?fieldValidation=Strict"),
            json!({"spec": {"zzz": 1}}),
        ),
    )
    .await?;
    c.check(
        "apply strict",
        Req::apply(
            format!("{url}/a?fieldManager=m&fieldValidation=Strict"),
            widget(c, "a", json!({"yyy": 1})),
        ),
    )
    .await?;
    Ok(())
}

/// [API-13] unknown fields of built-ins.
async fn field_validation_builtin(c: &mut Ctx) -> Result<(), FidelityError> {
    let cms = c.core("configmaps");
    c.check("warn", Req::post(&cms, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "foo": "x", "data": {"k": "v"}}))).await?;
    c.check(
        "strict",
        Req::post(
            format!("{cms}?fieldValidation=Strict"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}, "foo": "x"}),
        ),
    )
    .await?;
    c.check("strict nested", Req::post(format!("{}?fieldValidation=Strict", c.grouped("coordination.k8s.io/v1", "leases")), json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {"holderIdentity": "me", "bogus": 1}}))).await?;
    c.check("wrong type", Req::post(&cms, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": 1}}))).await?;
    Ok(())
}

/// [API-13] duplicate JSON keys: Strict error, Warn warning.
async fn duplicates(c: &mut Ctx) -> Result<(), FidelityError> {
    let cms = c.core("configmaps");
    let body = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d1"},"data":{"a":"1","a":"2"}}"#;
    c.check(
        "warn",
        Req::post(&cms, json!(null)).raw("application/json", body),
    )
    .await?;
    let body2 = body.replace("d1", "d2");
    c.check(
        "strict",
        Req::post(format!("{cms}?fieldValidation=Strict"), json!(null))
            .raw("application/json", &body2),
    )
    .await?;
    install_widgets(c).await?;
    let url = widgets(c);
    let group = super::group(c);
    let cr = format!(
        r#"{{"apiVersion":"{group}/v1","kind":"Widget","metadata":{{"name":"w"}},"spec":{{"size":1,"size":2}}}}"#
    );
    c.check(
        "custom strict",
        Req::post(format!("{url}?fieldValidation=Strict"), json!(null))
            .raw("application/json", &cr),
    )
    .await?;
    c.check(
        "custom warn",
        Req::post(&url, json!(null)).raw("application/json", &cr),
    )
    .await?;
    let yaml = format!(
        "apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: y\nspec:\n  size: 1\n  size: 2\n"
    );
    c.check(
        "yaml strict",
        Req::post(format!("{url}?fieldValidation=Strict"), json!(null))
            .raw("application/yaml", &yaml),
    )
    .await?;
    Ok(())
}

/// [API-19] the main resource ignores status; `/status` ignores everything else.
async fn status_subresource(c: &mut Ctx) -> Result<(), FidelityError> {
    install_widgets(c).await?;
    let url = widgets(c);
    let mut body = widget(c, "w", json!({"size": 1}));
    body["status"] = json!({"ready": true});
    c.check("create drops status", Req::post(&url, body))
        .await?;
    c.check(
        "main ignores status",
        Req::merge(format!("{url}/w"), json!({"status": {"ready": true}})),
    )
    .await?;
    c.check("status patch", Req::merge(format!("{url}/w/status"), json!({"status": {"ready": true}, "spec": {"size": 9}, "metadata": {"labels": {"x": "y"}}}))).await?;
    let current = c.send(&Req::get(format!("{url}/w"))).await?;
    let mut put = current.body.clone();
    put["status"] = json!({"ready": false, "replicas": 2});
    put["spec"]["size"] = json!(50);
    c.check("status put", Req::put(format!("{url}/w/status"), put))
        .await?;
    c.check("status get", Req::get(format!("{url}/w/status")))
        .await?;
    c.check("status of missing", Req::get(format!("{url}/nope/status")))
        .await?;
    c.check(
        "configmap has no status",
        Req::get(format!("{}/x/status", c.core("configmaps"))),
    )
    .await?;
    Ok(())
}

/// [API-19] `/scale` of a CRD declaring it.
async fn scale_subresource(c: &mut Ctx) -> Result<(), FidelityError> {
    install_widgets(c).await?;
    let url = widgets(c);
    c.send(&Req::post(&url, widget(c, "w", json!({"replicas": 2}))))
        .await?;
    c.send(&Req::merge(
        format!("{url}/w/status"),
        json!({"status": {"replicas": 1, "selector": "app=w"}}),
    ))
    .await?;
    let scale = c
        .check("get scale", Req::get(format!("{url}/w/scale")))
        .await?;
    let mut body = scale.body.clone();
    body["spec"]["replicas"] = json!(5);
    c.check("put scale", Req::put(format!("{url}/w/scale"), body))
        .await?;
    c.check(
        "patch scale",
        Req::merge(format!("{url}/w/scale"), json!({"spec": {"replicas": 7}})),
    )
    .await?;
    c.check("after scale", Req::get(format!("{url}/w"))).await?;
    c.check("scale of missing", Req::get(format!("{url}/nope/scale")))
        .await?;
    Ok(())
}
