//! Every patch type and server-side apply.

use serde_json::json;

use super::{configmap, install_widgets, widget, widgets};
use crate::{Area, Ctx, FidelityError, Req, Sequence, sequence};

pub fn sequences() -> Vec<Sequence> {
    vec![
        sequence!(
            Area::Patch,
            "patch-types",
            ["API-27", "API-10"],
            patch_types
        ),
        sequence!(
            Area::Patch,
            "ssa-ownership",
            ["API-28", "API-29"],
            ssa_ownership
        ),
        sequence!(Area::Patch, "ssa-topology", ["API-29"], ssa_topology),
        sequence!(
            Area::Patch,
            "ssa-builtin",
            ["API-28", "API-29"],
            ssa_builtin
        ),
    ]
}

/// [API-27] [API-10] merge, JSON patch (v4 semantics and its errors), strategic merge on a
/// built-in and its 415 on a custom resource, unknown patch types.
async fn patch_types(c: &mut Ctx) -> Result<(), FidelityError> {
    let cms = c.core("configmaps");
    let mut body = configmap("c", json!({"a": "1", "b": "2"}));
    body["metadata"]["finalizers"] = json!(["example.com/a"]);
    c.send(&Req::post(&cms, body)).await?;
    let url = format!("{cms}/c");
    c.check(
        "merge",
        Req::merge(
            &url,
            json!({"data": {"a": null, "c": "3"}, "metadata": {"labels": {"l": "v"}}}),
        ),
    )
    .await?;
    c.check(
        "json add",
        Req::json_patch(
            &url,
            json!([{"op": "add", "path": "/data/d", "value": "4"}]),
        ),
    )
    .await?;
    c.check(
        "json test failed",
        Req::json_patch(
            &url,
            json!([{"op": "test", "path": "/data/d", "value": "5"}]),
        ),
    )
    .await?;
    c.check(
        "json remove missing",
        Req::json_patch(&url, json!([{"op": "remove", "path": "/data/zzz"}])),
    )
    .await?;
    c.check(
        "json replace",
        Req::json_patch(
            &url,
            json!([{"op": "replace", "path": "/data/b", "value": "20"}]),
        ),
    )
    .await?;
    c.check("json bad body", Req::json_patch(&url, json!({"op": "add"})))
        .await?;
    c.check(
        "strategic finalizers",
        Req::strategic(&url, json!({"metadata": {"finalizers": ["example.com/b"]}})),
    )
    .await?;
    c.check(
        "strategic delete key",
        Req::strategic(&url, json!({"data": {"c": null}})),
    )
    .await?;
    c.check(
        "json remove finalizers",
        Req::json_patch(
            &url,
            json!([{"op": "remove", "path": "/metadata/finalizers"}]),
        ),
    )
    .await?;
    c.check(
        "unsupported patch type",
        Req::patch(&url, "application/x-unknown", json!({})),
    )
    .await?;
    c.check(
        "merge bad json",
        Req::merge(&url, json!(null)).raw("application/merge-patch+json", "{not json"),
    )
    .await?;
    c.check(
        "patch missing",
        Req::merge(format!("{cms}/missing"), json!({"data": {}})),
    )
    .await?;
    install_widgets(c).await?;
    let w = widgets(c);
    c.send(&Req::post(
        &w,
        widget(c, "w", json!({"size": 1, "args": ["a", "b"]})),
    ))
    .await?;
    c.check(
        "custom strategic",
        Req::strategic(format!("{w}/w"), json!({"spec": {"size": 2}})),
    )
    .await?;
    c.check(
        "custom merge list",
        Req::merge(format!("{w}/w"), json!({"spec": {"args": ["c"]}})),
    )
    .await?;
    c.check(
        "custom json",
        Req::json_patch(
            format!("{w}/w"),
            json!([{"op": "add", "path": "/spec/args/-", "value": "d"}]),
        ),
    )
    .await?;
    c.check(
        "custom force non-apply",
        Req::merge(format!("{w}/w?force=true"), json!({"spec": {"size": 3}})),
    )
    .await?;
    Ok(())
}

/// [API-28] [API-29] ownership, conflicts and their messages, force, shared ownership, removal
/// of a field the applier stopped sending, managedFields of updates.
async fn ssa_ownership(c: &mut Ctx) -> Result<(), FidelityError> {
    install_widgets(c).await?;
    let w = widgets(c);
    let url = format!("{w}/w");
    c.check(
        "apply creates",
        Req::apply(
            format!("{url}?fieldManager=alice"),
            widget(
                c,
                "w",
                json!({"size": 1, "name": "a", "labels": {"x": "1"}}),
            ),
        ),
    )
    .await?;
    c.check(
        "apply without manager",
        Req::apply(&url, widget(c, "w", json!({"size": 2}))),
    )
    .await?;
    c.check(
        "conflict one",
        Req::apply(
            format!("{url}?fieldManager=bob"),
            widget(c, "w", json!({"size": 2})),
        ),
    )
    .await?;
    c.check(
        "conflict two",
        Req::apply(
            format!("{url}?fieldManager=bob"),
            widget(c, "w", json!({"size": 2, "name": "b"})),
        ),
    )
    .await?;
    c.check(
        "shared same value",
        Req::apply(
            format!("{url}?fieldManager=bob"),
            widget(c, "w", json!({"size": 1})),
        ),
    )
    .await?;
    c.check(
        "update by carol",
        Req::merge(
            format!("{url}?fieldManager=carol"),
            json!({"spec": {"labels": {"y": "2"}}}),
        ),
    )
    .await?;
    c.check(
        "conflict with update",
        Req::apply(
            format!("{url}?fieldManager=bob"),
            widget(c, "w", json!({"size": 1, "labels": {"y": "3"}})),
        ),
    )
    .await?;
    c.check(
        "force",
        Req::apply(
            format!("{url}?fieldManager=bob&force=true"),
            widget(c, "w", json!({"size": 3, "name": "b"})),
        ),
    )
    .await?;
    c.check(
        "alice drops fields",
        Req::apply(
            format!("{url}?fieldManager=alice"),
            widget(c, "w", json!({"labels": {"x": "1"}})),
        ),
    )
    .await?;
    c.check(
        "bob drops name",
        Req::apply(
            format!("{url}?fieldManager=bob"),
            widget(c, "w", json!({"size": 3})),
        ),
    )
    .await?;
    c.check("apply status", Req::apply(format!("{url}/status?fieldManager=st"), json!({"apiVersion": format!("{}/v1", super::group(c)), "kind": "Widget", "metadata": {"name": "w"}, "status": {"ready": true}}))).await?;
    c.check(
        "apply wrong name",
        Req::apply(
            format!("{url}?fieldManager=bob"),
            widget(c, "other", json!({})),
        ),
    )
    .await?;
    c.check(
        "apply no-op",
        Req::apply(
            format!("{url}?fieldManager=bob"),
            widget(c, "w", json!({"size": 3})),
        ),
    )
    .await?;
    c.check(
        "apply dry run",
        Req::apply(
            format!("{url}?fieldManager=dave&dryRun=All"),
            widget(c, "w", json!({"size": 9})),
        ),
    )
    .await?;
    c.check("final", Req::get(&url)).await?;
    Ok(())
}

/// [API-29] list/map topologies: sets, map lists keyed by name, atomic lists, granular maps.
async fn ssa_topology(c: &mut Ctx) -> Result<(), FidelityError> {
    install_widgets(c).await?;
    let url = format!("{}/t", widgets(c));
    c.check("alice", Req::apply(format!("{url}?fieldManager=alice"), widget(c, "t", json!({"tags": ["a", "b"], "ports": [{"name": "http", "port": 80}], "args": ["x"], "labels": {"a": "1"}})))).await?;
    c.check("bob adds", Req::apply(format!("{url}?fieldManager=bob"), widget(c, "t", json!({"tags": ["c"], "ports": [{"name": "https", "port": 443}], "labels": {"b": "2"}})))).await?;
    c.check("bob atomic conflict", Req::apply(format!("{url}?fieldManager=bob"), widget(c, "t", json!({"tags": ["c"], "ports": [{"name": "https", "port": 443}], "labels": {"b": "2"}, "args": ["y"]})))).await?;
    c.check("bob port conflict", Req::apply(format!("{url}?fieldManager=bob"), widget(c, "t", json!({"tags": ["c"], "ports": [{"name": "https", "port": 443}, {"name": "http", "port": 8080}], "labels": {"b": "2"}})))).await?;
    c.check("alice removes b", Req::apply(format!("{url}?fieldManager=alice"), widget(c, "t", json!({"tags": ["a"], "ports": [{"name": "http", "port": 80}], "args": ["x"], "labels": {"a": "1"}})))).await?;
    c.check(
        "duplicate map key",
        Req::apply(
            format!("{url}?fieldManager=eve"),
            widget(
                c,
                "t",
                json!({"ports": [{"name": "dup", "port": 1}, {"name": "dup", "port": 2}]}),
            ),
        ),
    )
    .await?;
    c.check(
        "duplicate set item",
        Req::apply(
            format!("{url}?fieldManager=eve"),
            widget(c, "t", json!({"tags": ["z", "z"]})),
        ),
    )
    .await?;
    Ok(())
}

/// [API-28] [API-29] SSA on built-ins, and managedFields of Update operations.
async fn ssa_builtin(c: &mut Ctx) -> Result<(), FidelityError> {
    let cms = c.core("configmaps");
    let url = format!("{cms}/c");
    c.check(
        "create with manager",
        Req::post(
            format!("{cms}?fieldManager=creator"),
            configmap("c", json!({"a": "1"})),
        ),
    )
    .await?;
    c.check(
        "apply conflict",
        Req::apply(
            format!("{url}?fieldManager=applier"),
            configmap("c", json!({"a": "2"})),
        ),
    )
    .await?;
    c.check(
        "apply new key",
        Req::apply(
            format!("{url}?fieldManager=applier"),
            configmap("c", json!({"b": "2"})),
        ),
    )
    .await?;
    c.check(
        "default manager",
        Req::merge(&url, json!({"data": {"c": "3"}})),
    )
    .await?;
    c.check(
        "apply yaml",
        Req::patch(
            format!("{url}?fieldManager=yaml"),
            "application/apply-patch+yaml",
            json!(null),
        )
        .raw(
            "application/apply-patch+yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  y: \"1\"\n",
        ),
    )
    .await?;
    c.check(
        "long manager",
        Req::apply(
            format!("{url}?fieldManager={}", "m".repeat(129)),
            configmap("c", json!({})),
        ),
    )
    .await?;
    c.check("apply namespace", Req::apply(format!("{}?fieldManager=ns", format_args!("/api/v1/namespaces/{}", c.ns)), json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": c.ns, "labels": {"team": "a"}}}))).await?;
    Ok(())
}
