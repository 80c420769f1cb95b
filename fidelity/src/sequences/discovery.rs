//! Discovery (legacy and aggregated), OpenAPI v3 of a CRD, Tables and PartialObjectMetadata,
//! and the kubectl commands users type (kubectl_everyday.rs, the sandbox's demo commands).

use serde_json::{Value, json};

use super::{configmap, group, install_widgets, widget, widgets};
use crate::normalise::version_build_values;
use crate::{Area, Ctx, FidelityError, Reply, Req, Sequence, sequence};

pub fn sequences() -> Vec<Sequence> {
    vec![
        sequence!(Area::Discovery, "disc-legacy", ["API-02", "API-03"], legacy),
        sequence!(Area::Discovery, "disc-aggregated", ["API-04"], aggregated),
        sequence!(Area::Discovery, "disc-openapi", ["API-05"], openapi),
        sequence!(Area::Tables, "tables", ["API-12", "API-07"], tables),
        sequence!(
            Area::Tables,
            "partial-metadata",
            ["API-07", "API-09"],
            partial
        ),
        sequence!(
            Area::Kubectl,
            "kubectl-everyday",
            ["API-37"],
            kubectl_everyday
        ),
        sequence!(
            Area::Kubectl,
            "kubectl-sandbox",
            ["API-37"],
            kubectl_sandbox
        ),
    ]
}

/// The embedded server models Kubernetes 1.32; the oracle is kube-apiserver 1.36.
const VERSION: &str = "the embedded server models Kubernetes 1.32 (spec: reference behaviour); the oracle is kube-apiserver 1.36.3";
/// kube-apiserver serves every built-in API; the embedded server a documented subset.
const SUBSET: &str = "the embedded server serves a documented subset of the built-in APIs (docs/apiserver.md, Kinds served)";

/// Core resources the embedded server serves (the projection both sides are compared on).
const CORE: &[&str] = &[
    "configmaps",
    "events",
    "namespaces",
    "namespaces/finalize",
    "namespaces/status",
    "podtemplates",
    "secrets",
    "serviceaccounts",
    "services",
    "services/status",
];
/// Built-in groups the embedded server serves.
const GROUPS: &[&str] = &[
    "apiextensions.k8s.io",
    "apps",
    "batch",
    "coordination.k8s.io",
    "events.k8s.io",
    "rbac.authorization.k8s.io",
];

/// `reply` with its `field` array kept only where `key` is in `keep`.
fn project(mut reply: Reply, field: &str, key: &str, keep: &[String]) -> Reply {
    if let Some(items) = reply.body.get_mut(field).and_then(Value::as_array_mut) {
        items.retain(|i| i[key].as_str().is_some_and(|k| keep.iter().any(|x| x == k)));
    }
    reply
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// [API-02] [API-03] `/version`, `/api`, `/apis`, `/api/v1`, `/apis/<g>`, `/apis/<g>/<v>`.
async fn legacy(c: &mut Ctx) -> Result<(), FidelityError> {
    install_widgets(c).await?;
    let mut version = c.send(&Req::get("/version")).await?;
    version_build_values(&mut version.body);
    c.record_reply(
        "version",
        &version,
        vec![
            crate::Explain::new("/body/minor", VERSION),
            crate::Explain::new("/body/gitVersion", VERSION),
            crate::Explain::new("/body/emulationMajor", VERSION),
            crate::Explain::new("/body/emulationMinor", VERSION),
            crate::Explain::new("/body/minCompatibilityMajor", VERSION),
            crate::Explain::new("/body/minCompatibilityMinor", VERSION),
        ],
    );
    let mut api = c.send(&Req::get("/api")).await?;
    if let Some(cidrs) = api.body.get_mut("serverAddressByClientCIDRs") {
        *cidrs = json!("<each server's own address>");
    }
    c.record_reply("/api", &api, vec![]);
    let core = c.send(&Req::get("/api/v1")).await?;
    c.record_reply(
        "/api/v1",
        &project(core, "resources", "name", &strings(CORE)),
        vec![],
    );
    let mut groups = strings(GROUPS);
    groups.push(group(c));
    let apis = c.send(&Req::get("/apis")).await?;
    c.record_reply("/apis", &project(apis, "groups", "name", &groups), vec![]);
    c.check("/apis/apps", Req::get("/apis/apps")).await?;
    let apps = c.send(&Req::get("/apis/apps/v1")).await?;
    let kinds = strings(&[
        "daemonsets",
        "daemonsets/status",
        "deployments",
        "deployments/status",
        "replicasets",
        "replicasets/status",
        "statefulsets",
        "statefulsets/status",
    ]);
    c.record_reply(
        "/apis/apps/v1",
        &project(apps, "resources", "name", &kinds),
        vec![],
    );
    c.check("/apis/events.k8s.io/v1", Req::get("/apis/events.k8s.io/v1"))
        .await?;
    c.check(
        "/apis/coordination.k8s.io/v1",
        Req::get("/apis/coordination.k8s.io/v1"),
    )
    .await?;
    c.check("crd group", Req::get(format!("/apis/{}", group(c))))
        .await?;
    c.check(
        "crd group version",
        Req::get(format!("/apis/{}/v1", group(c))),
    )
    .await?;
    c.check("unknown group", Req::get("/apis/nothing.example.com/v1"))
        .await?;
    c.check("healthz", Req::get("/healthz").accept("*/*"))
        .await?;
    c.check("openapi v2", Req::get("/openapi/v2")).await?;
    Ok(())
}

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

/// [API-04] aggregated discovery v2 (what kubectl asks for): Content-Type and the entries of
/// the served groups.
async fn aggregated(c: &mut Ctx) -> Result<(), FidelityError> {
    install_widgets(c).await?;
    let api = c.send(&Req::get("/api").accept(AGGREGATED)).await?;
    let mut api = api;
    if let Some(resources) = api
        .body
        .pointer_mut("/items/0/versions/0/resources")
        .and_then(Value::as_array_mut)
    {
        resources.retain(|r| r["resource"].as_str().is_some_and(|n| CORE.contains(&n)));
    }
    c.record_reply("/api aggregated", &api, vec![]);
    let mut groups = strings(GROUPS);
    groups.push(group(c));
    let apis = c.send(&Req::get("/apis").accept(AGGREGATED)).await?;
    let mut apis = apis;
    if let Some(items) = apis.body.get_mut("items").and_then(Value::as_array_mut) {
        items.retain(|i| {
            i["metadata"]["name"]
                .as_str()
                .is_some_and(|n| groups.iter().any(|g| g == n))
        });
        for item in items.iter_mut() {
            if item["metadata"]["name"] == "apps"
                && let Some(resources) = item
                    .pointer_mut("/versions/0/resources")
                    .and_then(Value::as_array_mut)
            {
                resources.retain(|r| {
                    ["daemonsets", "deployments", "replicasets", "statefulsets"]
                        .iter()
                        .any(|k| r["resource"] == *k)
                });
            }
        }
    }
    c.record_reply("/apis aggregated", &apis, vec![]);
    c.check(
        "v2beta1 only",
        Req::get("/apis")
            .accept("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList")
            .explain("/body", SUBSET),
    )
    .await?;
    Ok(())
}

/// [API-05] OpenAPI v3: the root's entry for the CRD's group version, the CRD kind's schema,
/// its paths and PATCH parameters (what kubectl's validation and explain read).
async fn openapi(c: &mut Ctx) -> Result<(), FidelityError> {
    install_widgets(c).await?;
    let g = group(c);
    let key = format!("apis/{g}/v1");
    let root = c
        .wait_for(&Req::get("/openapi/v3"), |r| {
            r.body["paths"].get(&key).is_some()
        })
        .await?;
    let url = root.body["paths"][&key]["serverRelativeURL"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    c.record("root entry", json!({"status": root.status, "has entry": !url.is_empty(), "hash in url": url.contains("?hash=")}), vec![]);
    let doc = c.send(&Req::get(url.clone())).await?;
    let reversed: Vec<&str> = g.split('.').rev().collect();
    let schema_key = format!("{}.v1.Widget", reversed.join("."));
    let paths: Vec<String> = doc.body["paths"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let item = format!("/apis/{g}/v1/namespaces/{{namespace}}/widgets/{{name}}");
    let patch_params: Vec<Value> = doc.body["paths"][&item]["patch"]["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    c.record("gv document", json!({
        "status": doc.status,
        "openapi": doc.body["openapi"],
        "paths": paths,
        "schema": doc.body["components"]["schemas"][&schema_key],
        "patch parameters": patch_params,
        "patch gvk": doc.body["paths"][&item]["patch"]["x-kubernetes-group-version-kind"],
        "patch request types": doc.body["paths"][&item]["patch"]["requestBody"]["content"].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()),
    }), vec![]);
    let stale = c
        .send(&Req::get(format!("/openapi/v3/apis/{g}/v1?hash=0000")))
        .await?;
    c.record("stale hash", json!({"status": stale.status}), vec![]);
    Ok(())
}

const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
const PARTIAL: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
const PARTIAL_LIST: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

/// [API-12] [API-07] Tables of built-ins and custom resources (printer columns, priority),
/// a single object, `includeObject`.
async fn tables(c: &mut Ctx) -> Result<(), FidelityError> {
    install_widgets(c).await?;
    let cms = c.core("configmaps");
    c.send(&Req::post(
        &cms,
        configmap("c", json!({"a": "1", "b": "2"})),
    ))
    .await?;
    c.send(&Req::post(widgets(c), widget(c, "w", json!({"size": 3}))))
        .await?;
    c.check("configmaps", Req::get(&cms).accept(TABLE)).await?;
    c.check("configmap", Req::get(format!("{cms}/c")).accept(TABLE))
        .await?;
    c.check("widgets", Req::get(widgets(c)).accept(TABLE))
        .await?;
    c.check(
        "widgets with object",
        Req::get(format!("{}?includeObject=Object", widgets(c))).accept(TABLE),
    )
    .await?;
    c.check(
        "namespace",
        Req::get(format!("/api/v1/namespaces/{}", c.ns)).accept(TABLE),
    )
    .await?;
    c.check("secrets", Req::get(c.core("secrets")).accept(TABLE))
        .await?;
    c.check(
        "not acceptable",
        Req::get(&cms).accept("application/json;as=Table;v=v9;g=meta.k8s.io"),
    )
    .await?;
    Ok(())
}

/// [API-07] [API-09] PartialObjectMetadata get and list.
async fn partial(c: &mut Ctx) -> Result<(), FidelityError> {
    install_widgets(c).await?;
    let cms = c.core("configmaps");
    let mut cm = configmap("c", json!({"a": "1"}));
    cm["metadata"]["labels"] = json!({"l": "v"});
    c.send(&Req::post(&cms, cm)).await?;
    c.send(&Req::post(widgets(c), widget(c, "w", json!({"size": 3}))))
        .await?;
    c.check(
        "get configmap",
        Req::get(format!("{cms}/c")).accept(PARTIAL),
    )
    .await?;
    c.check("list configmaps", Req::get(&cms).accept(PARTIAL_LIST))
        .await?;
    c.check(
        "get widget",
        Req::get(format!("{}/w", widgets(c))).accept(PARTIAL),
    )
    .await?;
    c.check("list widgets", Req::get(widgets(c)).accept(PARTIAL_LIST))
        .await?;
    c.check("list asked as single", Req::get(&cms).accept(PARTIAL))
        .await?;
    Ok(())
}

/// The gadget CRD of group `g` (`short`: with the short name `gd`; two sequences share the
/// upstream server, and two kinds with one short name make kubectl warn).
fn gadget_crd(g: &str, short: bool) -> String {
    let short_names = if short { ", shortNames: [gd]" } else { "" };
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.{g}
spec:
  group: {g}
  scope: Namespaced
  names: {{kind: Gadget, plural: gadgets, singular: gadget, listKind: GadgetList{short_names}}}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {{status: {{}}}}
    additionalPrinterColumns:
    - {{name: Size, type: integer, jsonPath: .spec.size}}
    - {{name: Color, type: string, jsonPath: .spec.color, priority: 1}}
    schema:
      openAPIV3Schema:
        type: object
        description: A gadget.
        properties:
          spec:
            type: object
            description: What the gadget should be.
            properties:
              size: {{type: integer, description: How big.}}
              color: {{type: string}}
              tags: {{type: object, additionalProperties: {{type: string}}}}
          status:
            type: object
            properties:
              phase: {{type: string}}
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    type: {{type: string}}
                    status: {{type: string}}
"#
    )
}

/// [API-37] the commands of apiserver/tests/it/kubectl_everyday.rs, outputs compared.
async fn kubectl_everyday(c: &mut Ctx) -> Result<(), FidelityError> {
    let g = group(c);
    let ns = c.ns.clone();
    let n = ns.as_str();
    c.kubectl(
        "apply crd",
        &["apply", "--server-side", "-f", "-"],
        Some(&gadget_crd(&g, true)),
        vec![],
    )
    .await?;
    c.kubectl(
        "wait crd",
        &[
            "wait",
            "--for=condition=Established",
            &format!("crd/gadgets.{g}"),
            "--timeout=60s",
        ],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "api-resources group",
        &["api-resources", &format!("--api-group={g}")],
        None,
        vec![],
    )
    .await?;
    let gadget = format!(
        "apiVersion: {g}/v1\nkind: Gadget\nmetadata: {{name: g1, namespace: {n}}}\nspec: {{size: 3, color: red}}\n"
    );
    c.kubectl(
        "apply gadget",
        &["apply", "--server-side", "-f", "-"],
        Some(&gadget),
        vec![],
    )
    .await?;
    c.kubectl("get table", &["get", "gadgets", "-n", n], None, vec![])
        .await?;
    c.kubectl(
        "get wide",
        &["get", "gd", "-n", n, "-o", "wide"],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "get yaml",
        &["get", "gadget", "g1", "-n", n, "-o", "yaml"],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "get jsonpath",
        &["get", "gadget", "g1", "-n", n, "-o", "jsonpath={.spec}"],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "get name",
        &["get", "gadgets", "-n", n, "-o", "name"],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "label",
        &["label", "gadget", "g1", "-n", n, "tier=gold"],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "annotate",
        &["annotate", "gadget", "g1", "-n", n, "note=hello"],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "get -l",
        &["get", "gadgets", "-n", n, "-l", "tier=gold", "-o", "name"],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "patch merge",
        &[
            "patch",
            "gadget",
            "g1",
            "-n",
            n,
            "--type=merge",
            "-p",
            r#"{"spec":{"size":4}}"#,
        ],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "patch json",
        &[
            "patch",
            "gadget",
            "g1",
            "-n",
            n,
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/color","value":"blue"}]"#,
        ],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "patch strategic on CR",
        &[
            "patch",
            "gadget",
            "g1",
            "-n",
            n,
            "-p",
            r#"{"spec":{"size":5}}"#,
        ],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "patch status",
        &[
            "patch",
            "gadget",
            "g1",
            "-n",
            n,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Ready","conditions":[{"type":"Ready","status":"True"}]}}"#,
        ],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "wait condition",
        &[
            "wait",
            "--for=condition=Ready",
            "gadget/g1",
            "-n",
            n,
            "--timeout=30s",
        ],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "wait jsonpath",
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Ready",
            "gadget/g1",
            "-n",
            n,
            "--timeout=30s",
        ],
        None,
        vec![],
    )
    .await?;
    c.kubectl("explain", &["explain", "gadget.spec.size"], None, vec![])
        .await?;
    let cm = |data: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: csa, namespace: {n}}}\ndata: {{{data}}}\n"
        )
    };
    c.kubectl(
        "csa create",
        &["apply", "-f", "-"],
        Some(&cm("a: '1', b: '2'")),
        vec![],
    )
    .await?;
    c.kubectl(
        "csa update",
        &["apply", "-f", "-"],
        Some(&cm("a: '1'")),
        vec![],
    )
    .await?;
    c.kubectl(
        "csa result",
        &["get", "cm", "csa", "-n", n, "-o", "jsonpath={.data}"],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "ssa migration",
        &["apply", "--server-side", "-f", "-"],
        Some(&cm("a: '2'")),
        vec![],
    )
    .await?;
    c.kubectl(
        "managed fields",
        &[
            "get",
            "cm",
            "csa",
            "-n",
            n,
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "create cm",
        &["create", "configmap", "made", "-n", n, "--from-literal=k=v"],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "create secret",
        &[
            "create",
            "secret",
            "generic",
            "sec",
            "-n",
            n,
            "--from-literal=k=v",
        ],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "get cm,secret",
        &["get", "cm,secret", "-n", n, "-o", "name"],
        None,
        vec![],
    )
    .await?;
    c.kubectl("unknown field", &["apply", "-f", "-"], Some(&format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: bad, namespace: {n}}}\ndatax: {{a: b}}\n")), vec![]).await?;
    c.kubectl("delete", &["delete", "gadget", "g1", "-n", n], None, vec![])
        .await?;
    c.kubectl(
        "get deleted",
        &["get", "gadget", "g1", "-n", n],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "delete crd",
        &["delete", "crd", &format!("gadgets.{g}")],
        None,
        vec![],
    )
    .await?;
    Ok(())
}

/// [API-37] the shapes of the sandbox's demo commands (scripts/dev.sh --commands): apply a
/// manifest, wait on a jsonpath and a condition, read a Secret by jsonpath, create and label a
/// typed Secret from files, get several kinds at once, describe with events.
async fn kubectl_sandbox(c: &mut Ctx) -> Result<(), FidelityError> {
    let g = group(c);
    let ns = c.ns.clone();
    let n = ns.as_str();
    c.kubectl_quiet(
        &["apply", "--server-side", "-f", "-"],
        Some(
            &gadget_crd(&g, false)
                .replace("Gadget", "Gizmo")
                .replace("gadget", "gizmo"),
        ),
    )
    .await?;
    c.kubectl_quiet(
        &[
            "wait",
            "--for=condition=Established",
            &format!("crd/gizmos.{g}"),
            "--timeout=60s",
        ],
        None,
    )
    .await?;
    let manifest = format!(
        "apiVersion: {g}/v1\nkind: Gizmo\nmetadata: {{name: demo, namespace: {n}}}\nspec: {{size: 1}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: demo-kubeconfig, namespace: {n}}}\nstringData: {{value: hello}}\n"
    );
    c.kubectl(
        "apply manifest",
        &["apply", "-f", "-"],
        Some(&manifest),
        vec![],
    )
    .await?;
    c.kubectl_quiet(
        &[
            "patch",
            "gizmo",
            "demo",
            "-n",
            n,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Up","conditions":[{"type":"Available","status":"True"}]}}"#,
        ],
        None,
    )
    .await?;
    c.kubectl(
        "wait jsonpath",
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Up",
            "--timeout=30s",
            "gizmo/demo",
            "-n",
            n,
        ],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "wait condition",
        &[
            "wait",
            "--for=condition=Available",
            "--timeout=30s",
            "gizmo/demo",
            "-n",
            n,
        ],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "secret jsonpath",
        &[
            "get",
            "secret",
            "demo-kubeconfig",
            "-n",
            n,
            "-o",
            "jsonpath={.data.value}",
        ],
        None,
        vec![],
    )
    .await?;
    let dir = tempfile::tempdir().map_err(|e| FidelityError::Io("a temporary folder".into(), e))?;
    let crt = dir.path().join("tls.crt");
    std::fs::write(&crt, "certificate")
        .map_err(|e| FidelityError::Io(crt.display().to_string(), e))?;
    let from = format!("--from-file=tls.crt={}", crt.display());
    c.kubectl(
        "create typed secret",
        &[
            "create",
            "secret",
            "generic",
            "demo-ca",
            "-n",
            n,
            "--type=cluster.x-k8s.io/secret",
            &from,
        ],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "label secret",
        &[
            "label",
            "secret",
            "demo-ca",
            "-n",
            n,
            "cluster.x-k8s.io/cluster-name=demo",
        ],
        None,
        vec![],
    )
    .await?;
    c.kubectl(
        "get several kinds",
        &["get", "gizmos,secrets", "-n", n],
        None,
        vec![],
    )
    .await?;
    let event = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "demo.1"},
        "eventTime": "2026-12-06T10:00:00.000000Z", "reportingController": "kany8s.io/controller",
        "reportingInstance": "kany8s-0", "action": "Reconcile", "reason": "Created", "type": "Normal",
        "note": "created the instance",
        "regarding": {"apiVersion": format!("{g}/v1"), "kind": "Gizmo", "name": "demo", "namespace": n}
    });
    c.send(&Req::post(c.grouped("events.k8s.io/v1", "events"), event))
        .await?;
    c.kubectl(
        "describe with events",
        &["describe", "gizmo", "demo", "-n", n],
        None,
        vec![],
    )
    .await?;
    c.kubectl("get events", &["get", "events", "-n", n], None, vec![])
        .await?;
    Ok(())
}
