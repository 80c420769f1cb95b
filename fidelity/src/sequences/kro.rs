//! The fake-kro differential (issue 21): every RGD of `fixtures/rgds/` and the SEQ scenarios of
//! kro.md §5.6 run on the embedded server with fake-kro's controllers and on the upstream target
//! with real kro v0.9.3. Compared: the RGD as kro leaves it (status, conditions, finalizers),
//! the generated CRD, `fake-kro check`'s verdict against kro's own, the instance's status writes
//! as a watch sees them, the instance's and the children's metadata (labels, annotations, owner
//! references, finalizers, field managers), and the deletion order.
//!
//! Children of kinds without a controller (ACK, ASO, KCC) get their CRDs on both sides; what
//! their controller would write (status) or what a user changes (a ConfigMap's data) is written
//! by the sequence, the same request on both sides.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fake_kro::catalog::Catalog;
use fake_kro::check::{CheckOptions, Severity};
use serde_json::{Map, Value, json};

use crate::ctx::{WATCH_WAIT, Watch};
use crate::known::{KRO_CONDITION_ORDER_RACE, KRO_CRD_WRITE, KRO_DEPLOYMENT_CONTROLLER};
use crate::{Area, Ctx, Explain, FidelityError, Req, Sequence, Side, kro_sequence};

pub fn sequences() -> Vec<Sequence> {
    vec![
        kro_sequence!(Area::KroFixtures, "kro-demo", ["KRO-18", "KRO-21"], demo),
        kro_sequence!(Area::KroFixtures, "kro-demo-alt", ["KRO-18"], demo_alt),
        kro_sequence!(
            Area::KroFixtures,
            "kro-demo-grouped",
            ["KRO-18"],
            demo_grouped
        ),
        kro_sequence!(
            Area::KroFixtures,
            "kro-demo-kubeconfig",
            ["KRO-18"],
            demo_kubeconfig
        ),
        kro_sequence!(Area::KroFixtures, "kro-demo-infra", ["KRO-18"], demo_infra),
        kro_sequence!(
            Area::KroFixtures,
            "kro-demo-infra-ownerref",
            ["KRO-18", "KRO-20"],
            demo_infra_ownerref
        ),
        kro_sequence!(
            Area::KroFixtures,
            "kro-eks-ack",
            ["KRO-18", "KRO-20"],
            eks_ack
        ),
        kro_sequence!(Area::KroFixtures, "kro-aks-aso", ["KRO-18"], aks_aso),
        kro_sequence!(Area::KroFixtures, "kro-gke-kcc", ["KRO-18"], gke_kcc),
        kro_sequence!(Area::KroFixtures, "kro-broken", ["KRO-18"], broken),
        kro_sequence!(Area::KroSequences, "kro-seq1", ["KRO-18", "KRO-21"], seq1),
        kro_sequence!(Area::KroSequences, "kro-seq3", ["KRO-18", "KRO-20"], seq3),
        kro_sequence!(
            Area::KroSequences,
            "kro-invalid-cel",
            ["KRO-18"],
            invalid_cel
        ),
        kro_sequence!(
            Area::KroSequences,
            "kro-invalid-type",
            ["KRO-18"],
            invalid_type
        ),
    ]
}

/// Where an RGD comes from.
#[derive(Clone, Copy)]
enum Source {
    /// A file under `fixtures/rgds/`.
    Fixture(&'static str),
    /// Built by the sequence (the SEQ scenarios, invalid RGDs).
    Built(fn() -> Value),
}

/// One child the sequence reads: its RGD id, its collection (`/api/v1` or
/// `/apis/<group>/<version>` and the plural), its name.
#[derive(Clone, Copy)]
struct Child {
    id: &'static str,
    api: &'static str,
    plural: &'static str,
    name: &'static str,
}

impl Child {
    fn path(&self, c: &Ctx) -> String {
        format!(
            "{}/namespaces/{}/{}/{}",
            self.api, c.ns, self.plural, self.name
        )
    }
}

/// A write the sequence makes once the instance settled (the same request on both sides): a
/// merge patch of a child (of its status subresource when `status`), then the instance's
/// status writes are collected until `done` holds for its status.
#[derive(Clone, Copy)]
struct Drive {
    child: usize,
    status: bool,
    patch: fn() -> Value,
    done: fn(&Value) -> bool,
}

/// One RGD's differential.
#[derive(Clone, Copy)]
struct Case {
    source: Source,
    /// CRDs of child kinds without a controller, repository-relative files.
    crds: &'static [&'static str],
    /// The instance's spec; `None`: the RGD is invalid, no instance.
    spec: Option<fn() -> Value>,
    children: &'static [Child],
    drive: Option<Drive>,
    /// Differences of this RGD only: (observation label, check path, reason).
    explains: &'static [(&'static str, &'static str, &'static str)],
}

impl Case {
    fn explains(&self, label: &str) -> Vec<Explain> {
        self.explains
            .iter()
            .filter(|(l, _, _)| *l == label)
            .map(|(_, path, reason)| Explain::new(*path, *reason))
            .collect()
    }
}

const INSTANCE: &str = "demo";

// Observation labels.
const RGD: &str = "the RGD, decided";
const VERDICT: &str = "admission verdict (fake-kro check / kro)";
const GENERATED_CRD: &str = "the generated CRD";
const WRITES: &str = "instance status writes";
const DRIVEN: &str = "instance status, driven to ready";

const DEMO_CHILDREN: &[Child] = &[
    Child {
        id: "deployment",
        api: "/apis/apps/v1",
        plural: "deployments",
        name: "demo",
    },
    Child {
        id: "service",
        api: "/api/v1",
        plural: "services",
        name: "demo-svc",
    },
];

fn demo_spec() -> Value {
    json!({"name": "demo", "version": "v1.34.0"})
}

/// A demo control-plane RGD (a Deployment and a Service, children without a driver): the
/// fixtures differ in kind, group, defaults and status fields.
fn demo_case(file: &'static str) -> Case {
    Case {
        source: Source::Fixture(file),
        crds: &[],
        spec: Some(demo_spec),
        children: DEMO_CHILDREN,
        drive: None,
        explains: &[],
    }
}

async fn demo(c: &mut Ctx) -> Result<(), FidelityError> {
    lifecycle(c, demo_case("control-plane/demo-control-plane.yaml")).await
}

async fn demo_alt(c: &mut Ctx) -> Result<(), FidelityError> {
    lifecycle(c, demo_case("control-plane/demo-control-plane-alt.yaml")).await
}

async fn demo_grouped(c: &mut Ctx) -> Result<(), FidelityError> {
    lifecycle(
        c,
        demo_case("control-plane/demo-control-plane-grouped.yaml"),
    )
    .await
}

async fn demo_kubeconfig(c: &mut Ctx) -> Result<(), FidelityError> {
    lifecycle(
        c,
        demo_case("control-plane/demo-control-plane-kubeconfig.yaml"),
    )
    .await
}

const INFRA_CHILDREN: &[Child] = &[Child {
    id: "configmap",
    api: "/api/v1",
    plural: "configmaps",
    name: "demo-infra",
}];

/// The namespace is the sequence's; the spec names it (the templates set `namespace:`).
fn infra_spec_in(ns: &str) -> Value {
    json!({"clusterName": "demo", "clusterNamespace": ns})
}

async fn demo_infra(c: &mut Ctx) -> Result<(), FidelityError> {
    lifecycle(
        c,
        Case {
            source: Source::Fixture("infrastructure/demo-infra.yaml"),
            crds: &[],
            spec: Some(|| infra_spec_in("fid-kro-demo-infra")),
            children: INFRA_CHILDREN,
            drive: None,
            explains: &[],
        },
    )
    .await
}

/// `clusterUID` empty: the owned ConfigMap's includeWhen is false (the node is skipped).
async fn demo_infra_ownerref(c: &mut Ctx) -> Result<(), FidelityError> {
    lifecycle(
        c,
        Case {
            source: Source::Fixture("infrastructure/demo-infra-ownerref.yaml"),
            crds: &[],
            spec: Some(|| infra_spec_in("fid-kro-demo-infra-ownerref")),
            children: INFRA_CHILDREN,
            drive: None,
            explains: &[],
        },
    )
    .await
}

const ACK_CRDS: &[&str] = &[
    "fixtures/crds/ack/iam.services.k8s.aws_roles.yaml",
    "fixtures/crds/ack/eks.services.k8s.aws_clusters.yaml",
];

/// The steady state after a driving write: the `ready` author field true and every resource
/// ready (a pass in between may already show `ready: true` beside `cluster mutated`).
fn ready(status: &Value) -> bool {
    status["ready"] == true && condition(status, "ResourcesReady")["status"] == "True"
}

/// `cluster`'s readyWhen waits for ACK's status; the sequence plays ACK.
async fn eks_ack(c: &mut Ctx) -> Result<(), FidelityError> {
    lifecycle(
        c,
        Case {
            source: Source::Fixture("control-plane/eks-ack.yaml"),
            crds: ACK_CRDS,
            spec: Some(|| {
                json!({"version": "v1.34.0", "region": "eu-west-1", "subnetIDs": ["subnet-a", "subnet-b"]})
            }),
            children: &[
                Child {
                    id: "role",
                    api: "/apis/iam.services.k8s.aws/v1alpha1",
                    plural: "roles",
                    name: "demo-control-plane",
                },
                Child {
                    id: "cluster",
                    api: "/apis/eks.services.k8s.aws/v1alpha1",
                    plural: "clusters",
                    name: "demo",
                },
            ],
            drive: Some(Drive {
                child: 1,
                status: true,
                patch: || {
                    json!({"status": {"status": "ACTIVE", "endpoint": "https://demo.eks.test", "version": "1.34"}})
                },
                done: ready,
            }),
            explains: &[],
        },
    )
    .await
}

async fn aks_aso(c: &mut Ctx) -> Result<(), FidelityError> {
    lifecycle(
        c,
        Case {
            source: Source::Fixture("control-plane/aks-aso.yaml"),
            crds: &["fake-kro/tests/data/crds/aso.yaml"],
            spec: Some(|| json!({"name": "demo", "version": "1.30.5", "location": "westeurope"})),
            children: &[
                Child {
                    id: "group",
                    api: "/apis/resources.azure.com/v1api20200601",
                    plural: "resourcegroups",
                    name: "demo-rg",
                },
                Child {
                    id: "cluster",
                    api: "/apis/containerservice.azure.com/v1api20240901",
                    plural: "managedclusters",
                    name: "demo",
                },
            ],
            drive: Some(Drive {
                child: 1,
                status: true,
                patch: || {
                    json!({"status": {"provisioningState": "Succeeded", "fqdn": "demo.aks.test", "currentKubernetesVersion": "1.30.5"}})
                },
                done: ready,
            }),
            explains: &[],
        },
    )
    .await
}

async fn gke_kcc(c: &mut Ctx) -> Result<(), FidelityError> {
    lifecycle(
        c,
        Case {
            source: Source::Fixture("control-plane/gke-kcc.yaml"),
            crds: &["fake-kro/tests/data/crds/kcc.yaml"],
            spec: Some(|| {
                json!({"name": "demo", "version": "1.30.5-gke.1200", "location": "europe-west1", "projectID": "demo-project"})
            }),
            children: &[Child {
                id: "cluster",
                api: "/apis/container.cnrm.cloud.google.com/v1beta1",
                plural: "containerclusters",
                name: "demo",
            }],
            drive: Some(Drive {
                child: 0,
                status: true,
                patch: || {
                    json!({"status": {"endpoint": "203.0.113.10", "masterVersion": "1.30.5-gke.1200", "conditions": [{"type": "Ready", "status": "True", "reason": "UpToDate", "message": "The resource is up to date"}]}})
                },
                done: ready,
            }),
            explains: &[],
        },
    )
    .await
}

/// An RGD kro is expected to reject: no instance is created.
fn rejected_case(
    source: Source,
    explains: &'static [(&'static str, &'static str, &'static str)],
) -> Case {
    Case {
        source,
        crds: &[],
        spec: None,
        children: &[],
        drive: None,
        explains,
    }
}

/// A child of a kind no API serves: kro rejects the RGD.
async fn broken(c: &mut Ctx) -> Result<(), FidelityError> {
    let source = Source::Fixture("other/demo-control-plane-broken.yaml");
    lifecycle(c, rejected_case(source, &[])).await
}

/// kro.md SEQ-1's RGD (one ConfigMap, status `name`), with an optional readyWhen (SEQ-3).
fn configmap_rgd(name: &str, kind: &str, ready_when: Option<&str>) -> Value {
    let mut cm = json!({"id": "cm", "template": {"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "${schema.spec.name}-cm"}, "data": {"v": "1"}}});
    if let Some(condition) = ready_when {
        cm["readyWhen"] = json!([condition]);
    }
    json!({"apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
        "metadata": {"name": name},
        "spec": {"schema": {"apiVersion": "v1alpha1", "kind": kind,
            "spec": {"name": "string | required=true"},
            "status": {"name": "${cm.metadata.name}"}},
        "resources": [cm]}})
}

const CM_CHILDREN: &[Child] = &[Child {
    id: "cm",
    api: "/api/v1",
    plural: "configmaps",
    name: "demo-cm",
}];

/// [KRO-18] SEQ-1 (two writes: cluster mutated, then AllResourcesReady) and, as every
/// lifecycle here, SEQ-4's deletion.
async fn seq1(c: &mut Ctx) -> Result<(), FidelityError> {
    lifecycle(
        c,
        Case {
            source: Source::Built(|| configmap_rgd("fid-seq-one.kro.run", "FidSeqOne", None)),
            crds: &[],
            spec: Some(|| json!({"name": "demo"})),
            children: CM_CHILDREN,
            drive: None,
            explains: &[],
        },
    )
    .await
}

/// [KRO-20] SEQ-3: readyWhen false until the ConfigMap's data says so.
async fn seq3(c: &mut Ctx) -> Result<(), FidelityError> {
    lifecycle(
        c,
        Case {
            source: Source::Built(|| {
                configmap_rgd(
                    "fid-seq-three.kro.run",
                    "FidSeqThree",
                    Some("${cm.data.?ok.orValue('') == 'yes'}"),
                )
            }),
            crds: &[],
            spec: Some(|| json!({"name": "demo"})),
            children: CM_CHILDREN,
            drive: Some(Drive {
                child: 0,
                status: false,
                patch: || json!({"data": {"ok": "yes"}}),
                done: |status| condition(status, "ResourcesReady")["status"] == "True",
            }),
            explains: &[],
        },
    )
    .await
}

/// A status expression that does not parse.
async fn invalid_cel(c: &mut Ctx) -> Result<(), FidelityError> {
    let source = Source::Built(|| {
        let mut rgd = configmap_rgd("fid-invalid-cel.kro.run", "FidInvalidCel", None);
        rgd["spec"]["schema"]["status"]["name"] = json!("${cm.metadata.name +}");
        rgd
    });
    lifecycle(c, rejected_case(source, &[])).await
}

/// A template field of the wrong type: an integer expression for a ConfigMap's string data.
async fn invalid_type(c: &mut Ctx) -> Result<(), FidelityError> {
    let source = Source::Built(|| {
        let mut rgd = configmap_rgd("fid-invalid-type.kro.run", "FidInvalidType", None);
        rgd["spec"]["schema"]["spec"]["replicas"] = json!("integer | default=1");
        rgd["spec"]["resources"][0]["template"]["data"]["v"] = json!("${schema.spec.replicas}");
        rgd
    });
    lifecycle(c, rejected_case(source, &[])).await
}

/// The condition `kind` of an object's status (`null` when absent).
fn condition<'a>(status: &'a Value, kind: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

/// An instance status a pass leaves steady: resources ready, waiting on a readyWhen (however
/// the message words it), or an error.
fn settled(status: &Value) -> bool {
    let resources = condition(status, "ResourcesReady");
    resources["status"] == "True"
        || resources["message"]
            .as_str()
            .is_some_and(|m| m.contains("readyWhen condition evaluated to false"))
        || status["state"] == "ERROR"
}

/// The RGD's verdict is in: `Ready` True, or a condition that says why not (False).
fn rgd_decided(reply: &crate::Reply) -> bool {
    let status = &reply.body["status"];
    status["state"].is_string()
        && status["conditions"].as_array().is_some_and(|all| {
            all.iter()
                .any(|c| (c["type"] == "Ready" && c["status"] == "True") || c["status"] == "False")
        })
}

/// A status with its conditions keyed by type (clients look conditions up by type; their order
/// is compared once, on its own, as `conditions order`).
fn by_type(status: &Value) -> Value {
    let mut status = status.clone();
    if let Some(all) = status.get("conditions").and_then(Value::as_array) {
        let keyed: Map<String, Value> = all
            .iter()
            .map(|c| {
                (
                    c["type"].as_str().unwrap_or_default().to_string(),
                    c.clone(),
                )
            })
            .collect();
        status["conditions"] = Value::Object(keyed);
    }
    status
}

/// The condition types of a status, in the order the controller wrote them.
fn condition_order(status: &Value) -> Value {
    status["conditions"]
        .as_array()
        .map(|all| all.iter().map(|c| c["type"].clone()).collect())
        .unwrap_or(Value::Null)
}

/// What a client reads of an RGD: its metadata (as [`metadata_of`], plus generation), its status
/// (conditions by type) and the order of its conditions.
fn rgd_view(rgd: &Value) -> Value {
    let mut metadata = metadata_of(rgd);
    metadata["generation"] = rgd["metadata"]["generation"].clone();
    json!({
        "metadata": metadata,
        "status": by_type(&rgd["status"]),
        "conditions order": condition_order(&rgd["status"]),
    })
}

fn repository_file(relative: &str) -> PathBuf {
    acceptance::upstream::repository_root().join(relative)
}

fn read(relative: &str) -> Result<String, FidelityError> {
    let path = repository_file(relative);
    std::fs::read_to_string(&path).map_err(|e| FidelityError::Io(path.display().to_string(), e))
}

/// Every YAML document of a repository file.
fn documents(relative: &str) -> Result<Vec<Value>, FidelityError> {
    acceptance::upstream::manifests::documents_of(&read(relative)?)
        .map_err(|e| FidelityError::Setup(format!("{relative}: {e}")))
}

fn rgd_of(source: Source) -> Result<Value, FidelityError> {
    match source {
        Source::Built(build) => Ok(build()),
        Source::Fixture(file) => {
            let relative = format!("fixtures/rgds/{file}");
            documents(&relative)?
                .into_iter()
                .find(|d| d["kind"] == "ResourceGraphDefinition")
                .ok_or_else(|| FidelityError::Setup(format!("{relative}: no RGD")))
        }
    }
}

/// Sorts every `required` list of an OpenAPI schema (and of anything holding one).
fn sort_required(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match (key.as_str(), child) {
                    ("required", Value::Array(list)) => list.sort_by_key(|v| v.to_string()),
                    (_, child) => sort_required(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sort_required),
        _ => {}
    }
}

/// Installs a CRD if it is not there yet (sequences of one upstream stack share the ACK, ASO
/// and KCC kinds) and waits until it is served.
async fn ensure_crd(c: &Ctx, crd: Value) -> Result<(), FidelityError> {
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    let path = format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}");
    if c.send(&Req::get(&path)).await?.status == 404 {
        let created = c
            .send(&Req::post(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                crd.clone(),
            ))
            .await?;
        if created.status != 201 && created.status != 409 {
            return Err(FidelityError::Setup(format!(
                "creating the CRD {name}: {} {}",
                created.status, created.text
            )));
        }
    }
    let established = c
        .wait_for(&Req::get(&path), |r| {
            condition(&r.body["status"], "Established")["status"] == "True"
        })
        .await?;
    if condition(&established.body["status"], "Established")["status"] != "True" {
        return Err(FidelityError::Setup(format!("{name} never established")));
    }
    // kro resolves child schemas through OpenAPI v3, which publishes a new CRD a little after
    // Established.
    let group = crd["spec"]["group"].as_str().unwrap_or_default();
    for version in crd["spec"]["versions"].as_array().into_iter().flatten() {
        let key = format!(
            "apis/{group}/{}",
            version["name"].as_str().unwrap_or_default()
        );
        let published = c
            .wait_for(&Req::get("/openapi/v3"), |r| {
                r.body["paths"].get(&key).is_some()
            })
            .await?;
        if published.body["paths"].get(&key).is_none() {
            return Err(FidelityError::Setup(format!("{key} never in /openapi/v3")));
        }
    }
    Ok(())
}

/// How long an RGD may take to become Ready after a first rejection: kro retries an RGD whose
/// child schemas its resolver did not see yet.
const RGD_GRACE: Duration = Duration::from_secs(10);

/// Waits for the RGD's verdict: `Ready` True, or (after [`RGD_GRACE`]) a condition False.
async fn decided_rgd(c: &Ctx, path: &str) -> Result<crate::Reply, FidelityError> {
    let deadline = tokio::time::Instant::now() + RGD_GRACE;
    let reply = c
        .wait_for(&Req::get(path), |r| {
            condition(&r.body["status"], "Ready")["status"] == "True"
                || (rgd_decided(r) && tokio::time::Instant::now() >= deadline)
        })
        .await?;
    Ok(reply)
}

/// `fake-kro check`'s verdict on the embedded side, kro's (the RGD's `Ready` condition) upstream:
/// whether the RGD is accepted, and the first reason when it is not.
fn verdict(c: &Ctx, rgd: &Value, crds: &[Value], decided: &Value) -> Value {
    match c.side {
        Side::Embedded => {
            // The built-in kinds and the case's CRDs are everything the embedded side serves
            // to the RGD's children, as the upstream cluster serves them to kro.
            let mut catalog = Catalog::default().served_only();
            for crd in crds {
                catalog.add_crd(crd);
            }
            let options = CheckOptions {
                catalog: Arc::new(catalog),
                ..CheckOptions::default()
            };
            let errors: Vec<_> = fake_kro::check::check(rgd, &options)
                .into_iter()
                .filter(|d| d.severity == Severity::Error)
                .collect();
            json!({"accepted": errors.is_empty()})
        }
        Side::Upstream => {
            json!({"accepted": condition(&decided["status"], "Ready")["status"] == "True"})
        }
    }
}

/// What a client reads of an object's metadata: labels, annotations, owner references,
/// finalizers, and who wrote it (field managers with operation and subresource, sorted: the
/// server orders entries of one operation by their time to the second, and whether two passes
/// of a controller fall in one second is timing).
fn metadata_of(object: &Value) -> Value {
    let meta = &object["metadata"];
    let mut managers: Vec<Value> = meta["managedFields"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|m| json!({"manager": m["manager"], "operation": m["operation"], "subresource": m["subresource"]}))
                .collect()
        })
        .unwrap_or_default();
    managers.sort_by_key(|m| {
        (
            m["operation"].to_string(),
            m["subresource"].to_string(),
            m["manager"].to_string(),
        )
    });
    json!({
        "labels": meta["labels"],
        "annotations": meta["annotations"],
        "ownerReferences": meta["ownerReferences"],
        "finalizers": meta["finalizers"],
        "managers": managers,
    })
}

/// Reads the instance's status writes from `watch` (each distinct status once, in order) until
/// `done` holds for one, and records them as `write 1`, `write 2`, ... (conditions by type; the
/// first write's condition order on its own).
async fn status_writes(c: &mut Ctx, case: &Case, watch: &mut Watch, last: &mut Option<Value>) {
    let mut writes = Map::new();
    let deadline = tokio::time::Instant::now() + WATCH_WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(event) = watch.next(left).await else {
            break;
        };
        let status = &event["object"]["status"];
        if status.is_null() || last.as_ref() == Some(status) {
            continue;
        }
        *last = Some(status.clone());
        if writes.is_empty() {
            c.record(
                &format!("{WRITES}: conditions order"),
                condition_order(status),
                Vec::new(),
            );
        }
        writes.insert(format!("write {}", writes.len() + 1), by_type(status));
        if settled(status) {
            break;
        }
    }
    c.record(WRITES, Value::Object(writes), case.explains(WRITES));
}

/// How long a driven instance may take to reach its state: both controllers watch the children's
/// kinds and react at once; the periodic requeue of a ready instance (30 s in fake-kro) is the
/// fallback. A bound on a failure, never waited out when the state comes.
const DRIVEN_WAIT: Duration = Duration::from_secs(40);

/// Reads the instance's status from `watch` until `done` holds and records that status. Only
/// the end is compared: whether a pass in between reports `cluster mutated` depends on whether
/// the controller's cache saw the driving write before its apply (in kro and in fake-kro alike).
async fn driven_status(c: &mut Ctx, watch: &mut Watch, done: fn(&Value) -> bool) {
    let deadline = tokio::time::Instant::now() + DRIVEN_WAIT;
    let mut reached = Value::Null;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(event) = watch.next(left).await else {
            break;
        };
        let status = &event["object"]["status"];
        if !status.is_null() && done(status) {
            reached = by_type(status);
            break;
        }
    }
    c.record(DRIVEN, reached, Vec::new());
}

/// What a deletion step of the instance shows: state, ResourcesReady reason, finalizers.
fn deletion_state(object: &Value) -> Value {
    let status = &object["status"];
    json!({
        "state": status["state"],
        "ResourcesReady": condition(status, "ResourcesReady")["reason"],
        "finalizers": object["metadata"]["finalizers"],
    })
}

/// A resourceVersion as a number (both servers' are one ordered counter of their store).
fn revision(event: &Value) -> u64 {
    event["object"]["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(u64::MAX)
}

/// Deletes the instance and records the distinct states its watch shows until it is DELETED,
/// and the order in which its children were deleted: each child's DELETED event, ordered by
/// its resourceVersion (the store's order, not the arrival order of separate watches).
async fn deletion(
    c: &mut Ctx,
    instance: &str,
    watch: &mut Watch,
    children: &[Child],
) -> Result<(), FidelityError> {
    let mut child_watches = Vec::new();
    for child in children {
        let path = format!(
            "{}/namespaces/{}/{}?watch=true&fieldSelector=metadata.name%3D{}",
            child.api, c.ns, child.plural, child.name
        );
        child_watches.push((child.id, c.watch(&Req::get(path)).await?));
    }
    let deleted = c.send(&Req::delete(instance)).await?;
    let mut metadata = metadata_of(&deleted.body);
    metadata["deletionTimestamp"] =
        json!(deleted.body["metadata"]["deletionTimestamp"].is_string());
    c.record(
        "delete the instance",
        json!({"status": deleted.status, "metadata": metadata}),
        Vec::new(),
    );
    let mut states: Vec<Value> = Vec::new();
    let deadline = tokio::time::Instant::now() + WATCH_WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(event) = watch.next(left).await else {
            states.push(json!("no DELETED event"));
            break;
        };
        if event["type"] == "DELETED" {
            states.push(json!("DELETED"));
            break;
        }
        let state = deletion_state(&event["object"]);
        if event["object"]["metadata"]["deletionTimestamp"].is_string()
            && states.last() != Some(&state)
        {
            states.push(state);
        }
    }
    c.record("deletion: instance states", json!(states), Vec::new());
    let mut deleted: Vec<(u64, &'static str)> = Vec::new();
    let mut left_over = Vec::new();
    for (id, mut child_watch) in child_watches {
        let deadline = tokio::time::Instant::now() + WATCH_WAIT;
        let found = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match child_watch.next(left).await {
                Some(event) if event["type"] == "DELETED" => break Some(revision(&event)),
                Some(_) => continue,
                None => break None,
            }
        };
        match found {
            Some(rv) => deleted.push((rv, id)),
            None => left_over.push(id),
        }
    }
    deleted.sort_unstable();
    let order: Vec<&str> = deleted.into_iter().map(|(_, id)| id).collect();
    c.record(
        "deletion: children order",
        json!({"order": order, "not deleted": left_over}),
        Vec::new(),
    );
    Ok(())
}

/// The whole differential of one RGD: RGD verdict and status, generated CRD, `check`, then
/// (valid RGDs) an instance's status writes, metadata, children, driven readiness, deletion.
async fn lifecycle(c: &mut Ctx, case: Case) -> Result<(), FidelityError> {
    let rgds = "/apis/kro.run/v1alpha1/resourcegraphdefinitions";
    // kro's RGD API is served (fake-kro installs its CRD when it starts).
    let served = c.wait_for(&Req::get(rgds), |r| r.status == 200).await?;
    if served.status != 200 {
        return Err(FidelityError::Setup(format!("{rgds} never served")));
    }
    let mut crds = Vec::new();
    for file in case.crds {
        crds.extend(
            documents(file)?
                .into_iter()
                .filter(|d| d["kind"] == "CustomResourceDefinition"),
        );
    }
    for crd in &crds {
        ensure_crd(c, crd.clone()).await?;
    }
    let rgd = rgd_of(case.source)?;
    let rgd_name = rgd["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    c.check("create the RGD", Req::post(rgds, rgd.clone()))
        .await?;
    let decided = decided_rgd(c, &format!("{rgds}/{rgd_name}")).await?;
    let mut explains = case.explains(RGD);
    if case.spec.is_some() {
        explains.push(Explain::new("/conditions order", KRO_CONDITION_ORDER_RACE));
    }
    c.record(RGD, rgd_view(&decided.body), explains);
    let verdict = verdict(c, &rgd, &crds, &decided.body);
    c.record(VERDICT, verdict, case.explains(VERDICT));
    let mut list_crd = Req::get(format!(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions?labelSelector=kro.run%2Fresource-graph-definition-name%3D{rgd_name}"
    ));
    if case.spec.is_some() {
        list_crd = list_crd.explain("/body/items/0/metadata/managedFields/0", KRO_CRD_WRITE);
    }
    let mut generated = c.send(&list_crd).await?;
    // kro v0.9.3 lists a schema's required fields in Go map order (it changes from run to run):
    // compared as sets.
    sort_required(&mut generated.body);
    c.record_reply(GENERATED_CRD, &generated, list_crd.explains);
    let Some(spec) = case.spec else {
        return Ok(());
    };
    let crd = &generated.body["items"][0]["spec"];
    let (Some(group), Some(plural), Some(kind)) = (
        crd["group"].as_str(),
        crd["names"]["plural"].as_str(),
        crd["names"]["kind"].as_str(),
    ) else {
        return Err(FidelityError::Setup(format!(
            "no CRD generated for {rgd_name}"
        )));
    };
    let version = rgd["spec"]["schema"]["apiVersion"]
        .as_str()
        .unwrap_or("v1alpha1");
    let collection = format!("/apis/{group}/{version}/namespaces/{}/{plural}", c.ns);
    let instance_path = format!("{collection}/{INSTANCE}");
    let served = c
        .wait_for(&Req::get(&collection), |r| r.status == 200)
        .await?;
    if served.status != 200 {
        return Err(FidelityError::Setup(format!("{collection} never served")));
    }
    let mut watch = c
        .watch(&Req::get(format!(
            "{collection}?watch=true&fieldSelector=metadata.name%3D{INSTANCE}"
        )))
        .await?;
    let instance = json!({"apiVersion": format!("{group}/{version}"), "kind": kind,
        "metadata": {"name": INSTANCE}, "spec": spec()});
    c.check("create the instance", Req::post(&collection, instance))
        .await?;
    let mut last = None;
    status_writes(c, &case, &mut watch, &mut last).await;
    let current = c.send(&Req::get(&instance_path)).await?;
    c.record("instance metadata", metadata_of(&current.body), Vec::new());
    for child in case.children {
        let reply = c.send(&Req::get(child.path(c))).await?;
        let value = if reply.status == 200 {
            metadata_of(&reply.body)
        } else {
            json!({"status": reply.status})
        };
        let explains = if child.plural == "deployments" {
            vec![
                Explain::new("/annotations", KRO_DEPLOYMENT_CONTROLLER),
                Explain::new("/managers", KRO_DEPLOYMENT_CONTROLLER),
            ]
        } else {
            Vec::new()
        };
        c.record(&format!("child {} metadata", child.id), value, explains);
    }
    if let Some(drive) = case.drive {
        let child = case.children[drive.child.min(case.children.len().saturating_sub(1))];
        let path = if drive.status {
            format!("{}/status", child.path(c))
        } else {
            child.path(c)
        };
        c.check(
            &format!("drive {}", child.id),
            Req::merge(path, (drive.patch)()),
        )
        .await?;
        driven_status(c, &mut watch, drive.done).await;
    }
    deletion(c, &instance_path, &mut watch, case.children).await
}
