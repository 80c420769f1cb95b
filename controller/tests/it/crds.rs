//! Golden, snapshot and CEL tests of the generated Kany8s CRDs ([CRD-01]–[CRD-18], [CEL-01]–[CEL-05]).

use std::path::PathBuf;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kany8s::crds;
use kube_cel::Validator;
use rstest::rstest;
use serde_json::{Value, json};

fn all() -> Vec<CustomResourceDefinition> {
    crds::all().expect("CRDs generate")
}

fn by_kind(kind: &str) -> CustomResourceDefinition {
    all()
        .into_iter()
        .find(|crd| crd.spec.names.kind == kind)
        .expect("kind exists")
}

/// The storage version's schema as JSON, the way an API server reads it.
fn schema(kind: &str) -> Value {
    let crd = by_kind(kind);
    serde_json::to_value(
        &crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema,
    )
    .unwrap()
}

fn at<'a>(schema: &'a Value, path: &[&str]) -> &'a Value {
    path.iter()
        .fold(schema, |node, segment| &node["properties"][*segment])
}

fn property_names(schema: &Value) -> Vec<String> {
    schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn bases_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/crd/bases")
}

/// [CRD-11] the committed CRDs are byte-identical to what `kany8s crds` generates.
#[test]
fn committed_crds_match_generated() {
    let mut expected_files = Vec::new();
    for crd in all() {
        let name = crds::file_name(&crd);
        let generated = format!("---\n{}", crds::render(&crd).unwrap());
        let path = bases_dir().join(&name);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} differs from the generated CRD; regenerate with `make crds` \
             (cargo run -p kany8s -- crds --output-dir config/crd/bases)",
            path.display()
        );
        expected_files.push(name);
    }
    let mut present: Vec<String> = std::fs::read_dir(bases_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    present.sort();
    expected_files.sort();
    assert_eq!(
        present, expected_files,
        "config/crd/bases holds a stale file; run `make crds`"
    );
}

/// [CRD-11] an insta snapshot per CRD, so every change to a schema is reviewed.
#[test]
fn crd_snapshots() {
    for crd in all() {
        insta::assert_snapshot!(
            crd.metadata.name.clone().unwrap(),
            crds::render(&crd).unwrap()
        );
    }
}

/// `kany8s crds` prints five documents, one per CRD.
#[test]
fn render_all_is_five_documents() {
    let yaml = crds::render_all().unwrap();
    let documents: Vec<Value> = yaml
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| yaml_serde::from_str(d).unwrap())
        .collect();
    assert_eq!(documents.len(), 5);
    assert!(
        documents
            .iter()
            .all(|d| d["kind"] == "CustomResourceDefinition")
    );
}

/// [CRD-01] names equal what Cluster API computes; singular, listKind, no short names.
#[rstest]
#[case(
    "Kany8sControlPlane",
    "kany8scontrolplanes.controlplane.cluster.x-k8s.io"
)]
#[case(
    "Kany8sControlPlaneTemplate",
    "kany8scontrolplanetemplates.controlplane.cluster.x-k8s.io"
)]
#[case(
    "Kany8sKubeadmControlPlane",
    "kany8skubeadmcontrolplanes.controlplane.cluster.x-k8s.io"
)]
#[case("Kany8sCluster", "kany8sclusters.infrastructure.cluster.x-k8s.io")]
#[case(
    "Kany8sClusterTemplate",
    "kany8sclustertemplates.infrastructure.cluster.x-k8s.io"
)]
fn crd_names(#[case] kind: &str, #[case] name: &str) {
    let crd = by_kind(kind);
    assert_eq!(crd.metadata.name.as_deref(), Some(name));
    let names = &crd.spec.names;
    assert_eq!(format!("{}.{}", names.plural, crd.spec.group), name);
    assert_eq!(
        names.singular.as_deref(),
        Some(kind.to_lowercase().as_str())
    );
    assert_eq!(
        names.list_kind.as_deref(),
        Some(format!("{kind}List").as_str())
    );
    assert_eq!(names.short_names, None);
    // [CRD-02]
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(
        names.categories.as_deref(),
        Some(&["cluster-api".to_string()][..])
    );
}

/// [CRD-03] v1alpha1 storage, then an identical served v1beta2 alias; no conversion webhook.
#[test]
fn versions_are_storage_plus_identical_alias() {
    for crd in all() {
        let versions = &crd.spec.versions;
        assert_eq!(versions.len(), 2);
        assert_eq!(
            (
                versions[0].name.as_str(),
                versions[0].served,
                versions[0].storage
            ),
            ("v1alpha1", true, true)
        );
        assert_eq!(
            (
                versions[1].name.as_str(),
                versions[1].served,
                versions[1].storage
            ),
            ("v1beta2", true, false)
        );
        let mut alias = versions[1].clone();
        alias.name = versions[0].name.clone();
        alias.storage = true;
        assert_eq!(
            alias, versions[0],
            "v1beta2 of {} is not a copy of v1alpha1",
            crd.spec.names.kind
        );
        assert_eq!(
            crd.spec.conversion.as_ref().map(|c| c.strategy.as_str()),
            Some("None")
        );
    }
}

/// [CRD-04] the contract label and the provider label, and no v1beta1 label.
#[test]
fn contract_and_provider_labels() {
    for crd in all() {
        let labels = crd.metadata.labels.clone().unwrap();
        assert_eq!(
            labels.get("cluster.x-k8s.io/v1beta2").map(String::as_str),
            Some("v1alpha1")
        );
        let provider = if crd.spec.group == "controlplane.cluster.x-k8s.io" {
            "control-plane-kany8s"
        } else {
            "infrastructure-kany8s"
        };
        assert_eq!(
            labels.get("cluster.x-k8s.io/provider").map(String::as_str),
            Some(provider)
        );
        assert!(!labels.contains_key("cluster.x-k8s.io/v1beta1"));
        assert_eq!(labels.len(), 2);
    }
}

/// [CRD-05] status subresource on the three reconciled kinds only, never scale.
#[rstest]
#[case("Kany8sControlPlane", true)]
#[case("Kany8sControlPlaneTemplate", false)]
#[case("Kany8sKubeadmControlPlane", true)]
#[case("Kany8sCluster", true)]
#[case("Kany8sClusterTemplate", false)]
fn status_subresource(#[case] kind: &str, #[case] has_status: bool) {
    for version in by_kind(kind).spec.versions {
        let subresources = version.subresources.clone();
        assert_eq!(
            subresources
                .as_ref()
                .and_then(|s| s.status.clone())
                .is_some(),
            has_status
        );
        assert!(subresources.and_then(|s| s.scale).is_none());
        assert_eq!(
            property_names(&schema(kind)).contains(&"status".to_string()),
            has_status
        );
    }
}

/// [CRD-06] root spec is required everywhere.
#[test]
fn root_spec_required() {
    for crd in all() {
        let schema = schema(&crd.spec.names.kind);
        assert_eq!(
            schema["required"],
            json!(["spec"]),
            "{}",
            crd.spec.names.kind
        );
    }
}

/// [CRD-07] conditions are metav1.Condition in a list-map keyed by type, at most 32.
#[rstest]
#[case("Kany8sControlPlane")]
#[case("Kany8sKubeadmControlPlane")]
#[case("Kany8sCluster")]
fn conditions_schema(#[case] kind: &str) {
    let conditions = at(&schema(kind), &["status", "conditions"]).clone();
    assert_eq!(conditions["x-kubernetes-list-type"], "map");
    assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
    assert_eq!(conditions["maxItems"], 32);
    let item = &conditions["items"];
    assert_eq!(
        item["required"],
        json!(["type", "status", "reason", "message", "lastTransitionTime"])
    );
    assert_eq!(
        item["properties"]["status"]["enum"],
        json!(["True", "False", "Unknown"])
    );
    assert_eq!(item["properties"]["type"]["maxLength"], 316);
    assert_eq!(
        item["properties"]["reason"]["pattern"],
        r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
    );
    assert_eq!(
        (
            item["properties"]["reason"]["minLength"].clone(),
            item["properties"]["reason"]["maxLength"].clone()
        ),
        (json!(1), json!(1024))
    );
    assert_eq!(item["properties"]["message"]["maxLength"], 32768);
    assert_eq!(item["properties"]["observedGeneration"]["minimum"], 0.0);
    assert_eq!(
        item["properties"]["lastTransitionTime"]["format"],
        "date-time"
    );
}

/// [CRD-08] the shared shapes: RGD reference, APIEndpoint, contract-versioned reference.
#[test]
fn shared_shapes() {
    let cp = schema("Kany8sControlPlane");
    let rgd = at(&cp, &["spec", "resourceGraphDefinitionRef"]);
    assert_eq!(rgd["required"], json!(["name"]));
    assert_eq!(
        (
            rgd["properties"]["name"]["minLength"].clone(),
            rgd["properties"]["name"]["maxLength"].clone()
        ),
        (json!(1), json!(253))
    );
    let endpoint = at(&cp, &["spec", "controlPlaneEndpoint"]);
    assert_eq!(endpoint["minProperties"], 1);
    assert!(endpoint.get("required").is_none());
    assert_eq!(endpoint["properties"]["host"]["maxLength"], 512);
    assert_eq!(
        (
            endpoint["properties"]["port"]["minimum"].clone(),
            endpoint["properties"]["port"]["maximum"].clone()
        ),
        (json!(1.0), json!(65535.0))
    );
    assert_eq!(endpoint["properties"]["port"]["format"], "int32");
    let reference = at(
        &cp,
        &["spec", "kubeadm", "machineTemplate", "infrastructureRef"],
    );
    assert_eq!(reference["required"], json!(["apiGroup", "kind", "name"]));
    assert_eq!(reference["properties"]["kind"]["maxLength"], 63);
}

/// [CRD-09] free-form specs are objects that keep unknown fields.
#[test]
fn free_form_objects() {
    let cp = schema("Kany8sControlPlane");
    for path in [
        &["spec", "kroSpec"][..],
        &["spec", "externalBackend", "spec"],
        &["spec", "kubeadm", "kubeadmConfigSpec"],
    ] {
        let node = at(&cp, path);
        assert_eq!(node["type"], "object", "{path:?}");
        assert_eq!(
            node["x-kubernetes-preserve-unknown-fields"], true,
            "{path:?}"
        );
        assert!(
            node.get("nullable").is_none(),
            "{path:?}: a null must be pruned, not kept"
        );
    }
}

/// No schema node anywhere is nullable: an absent Rust Option means "absent", and a null
/// sent by a client is pruned ([CRD-09]).
#[test]
fn nothing_is_nullable() {
    fn walk(node: &Value, path: &str) {
        match node {
            Value::Object(object) => {
                assert!(!object.contains_key("nullable"), "{path} is nullable");
                assert!(
                    !object.contains_key("anyOf") && !object.contains_key("$ref"),
                    "{path} is not structural"
                );
                for (key, child) in object {
                    walk(child, &format!("{path}.{key}"));
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, path)),
            _ => {}
        }
    }
    for crd in all() {
        walk(&schema(&crd.spec.names.kind), &crd.spec.names.kind);
    }
}

/// [CRD-12] the control plane's exact fields and printer columns.
#[test]
fn control_plane_fields_and_columns() {
    let cp = schema("Kany8sControlPlane");
    assert_eq!(
        property_names(at(&cp, &["spec"])),
        [
            "controlPlaneEndpoint",
            "externalBackend",
            "kroSpec",
            "kubeadm",
            "resourceGraphDefinitionRef",
            "version"
        ]
    );
    assert_eq!(at(&cp, &["spec"])["required"], json!(["version"]));
    assert_eq!(at(&cp, &["spec", "version"])["maxLength"], 256);
    assert_eq!(
        property_names(at(&cp, &["status"])),
        [
            "backendRef",
            "conditions",
            "externalManagedControlPlane",
            "failureMessage",
            "failureReason",
            "initialization",
            "observedGeneration",
            "version",
            "versions",
        ]
    );
    let versions = at(&cp, &["status", "versions"]);
    assert_eq!(versions["x-kubernetes-list-map-keys"], json!(["version"]));
    assert_eq!(
        (versions["minItems"].clone(), versions["maxItems"].clone()),
        (json!(1), json!(100))
    );
    assert_eq!(at(&cp, &["status", "initialization"])["minProperties"], 1);
    let kubeadm = at(&cp, &["spec", "kubeadm", "replicas"]);
    assert_eq!(
        (kubeadm["default"].clone(), kubeadm["maximum"].clone()),
        (json!(1), json!(1.0))
    );
    let columns: Vec<(String, String, String)> = by_kind("Kany8sControlPlane").spec.versions[0]
        .additional_printer_columns
        .clone()
        .unwrap()
        .into_iter()
        .map(|c| (c.name, c.type_, c.json_path))
        .collect();
    let expected = [
        (
            "CLUSTER",
            "string",
            r".metadata.labels['cluster\.x-k8s\.io/cluster-name']",
        ),
        (
            "INITIALIZED",
            "boolean",
            ".status.initialization.controlPlaneInitialized",
        ),
        (
            "READY",
            "string",
            r#".status.conditions[?(@.type=="Ready")].status"#,
        ),
        (
            "AVAILABLE",
            "string",
            r#".status.conditions[?(@.type=="Available")].status"#,
        ),
        ("ENDPOINT", "string", ".spec.controlPlaneEndpoint.host"),
        ("VERSION", "string", ".status.version"),
        ("AGE", "date", ".metadata.creationTimestamp"),
    ]
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
    assert_eq!(columns, expected);
    // [CRD-15] the kubeadm facade shows the same columns.
    let kkcp_columns = by_kind("Kany8sKubeadmControlPlane").spec.versions[0]
        .additional_printer_columns
        .clone();
    assert_eq!(
        kkcp_columns,
        by_kind("Kany8sControlPlane").spec.versions[0].additional_printer_columns
    );
}

/// [CRD-13] [CRD-18] template specs are subsets: no version, no controlPlaneEndpoint.
#[test]
fn template_shapes() {
    let cpt = schema("Kany8sControlPlaneTemplate");
    assert_eq!(at(&cpt, &["spec"])["required"], json!(["template"]));
    assert_eq!(at(&cpt, &["spec", "template"])["required"], json!(["spec"]));
    assert_eq!(
        property_names(at(&cpt, &["spec", "template", "metadata"])),
        ["annotations", "labels"]
    );
    assert_eq!(
        property_names(at(&cpt, &["spec", "template", "spec"])),
        [
            "externalBackend",
            "kroSpec",
            "kubeadm",
            "resourceGraphDefinitionRef"
        ]
    );
    let ict = schema("Kany8sClusterTemplate");
    assert_eq!(
        property_names(at(&ict, &["spec", "template", "spec"])),
        ["kroSpec", "resourceGraphDefinitionRef"]
    );
    for kind in ["Kany8sControlPlaneTemplate", "Kany8sClusterTemplate"] {
        assert!(
            by_kind(kind)
                .spec
                .versions
                .iter()
                .all(|v| v.additional_printer_columns.is_none())
        );
    }
}

/// [CRD-14] [CRD-15] the kubeadm facade's spec and status.
#[test]
fn kubeadm_control_plane_shape() {
    let kkcp = schema("Kany8sKubeadmControlPlane");
    assert_eq!(
        at(&kkcp, &["spec"])["required"],
        json!(["version", "machineTemplate"])
    );
    assert_eq!(at(&kkcp, &["spec", "replicas"])["maximum"], 1.0);
    assert_eq!(
        property_names(at(&kkcp, &["status"])),
        [
            "availableReplicas",
            "conditions",
            "failureMessage",
            "failureReason",
            "initialization",
            "observedGeneration",
            "readyReplicas",
            "replicas",
            "selector",
            "upToDateReplicas",
            "version",
            "versions",
        ]
    );
}

/// [CRD-16] [CRD-17] Kany8sCluster's spec, status and columns.
#[test]
fn cluster_shape() {
    let ic = schema("Kany8sCluster");
    assert_eq!(
        property_names(at(&ic, &["spec"])),
        [
            "controlPlaneEndpoint",
            "kroSpec",
            "resourceGraphDefinitionRef"
        ]
    );
    assert_eq!(
        property_names(at(&ic, &["status"])),
        [
            "backendRef",
            "conditions",
            "failureMessage",
            "failureReason",
            "initialization",
            "observedGeneration"
        ]
    );
    assert_eq!(
        property_names(at(&ic, &["status", "initialization"])),
        ["provisioned"]
    );
    let columns: Vec<String> = by_kind("Kany8sCluster").spec.versions[0]
        .additional_printer_columns
        .clone()
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(columns, ["CLUSTER", "PROVISIONED", "READY", "AGE"]);
}

fn kro() -> Value {
    json!({"version": "v1.30.0", "resourceGraphDefinitionRef": {"name": "demo"}})
}
fn kubeadm() -> Value {
    json!({"version": "v1.30.0", "kubeadm": {"machineTemplate": {"infrastructureRef": {
        "apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DockerMachineTemplate", "name": "cp"}}}})
}
fn external() -> Value {
    json!({"version": "v1.30.0", "externalBackend": {"apiVersion": "example.com/v1", "kind": "ManagedCluster"}})
}
fn merged(a: Value, b: Value) -> Value {
    let mut a = a;
    for (k, v) in b.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

/// The validation messages an API server would report for `spec` (and `old_spec` on update).
fn cel_messages(kind: &str, spec: Value, old_spec: Option<Value>) -> Vec<String> {
    let (object, old) = if kind == "Kany8sControlPlaneTemplate" {
        let wrap = |s: Value| json!({"spec": {"template": {"spec": s}}});
        (wrap(spec), old_spec.map(wrap))
    } else {
        (json!({"spec": spec}), old_spec.map(|s| json!({"spec": s})))
    };
    match Validator::new().validate(&schema(kind), &object, old.as_ref()) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.iter().map(|e| e.message.clone()).collect(),
    }
}

fn strip_version(spec: Value) -> Value {
    let mut spec = spec;
    spec.as_object_mut().unwrap().remove("version");
    spec
}

/// [CEL-01] [CEL-05] exactly one backend: each alone is valid, none and any two are rejected.
#[rstest]
#[case("Kany8sControlPlane")]
#[case("Kany8sControlPlaneTemplate")]
fn exactly_one_backend(#[case] kind: &str) {
    let prepare = |spec: Value| {
        if kind == "Kany8sControlPlane" {
            spec
        } else {
            strip_version(spec)
        }
    };
    for valid in [kro(), kubeadm(), external()] {
        assert_eq!(
            cel_messages(kind, prepare(valid.clone()), None),
            Vec::<String>::new(),
            "{valid}"
        );
    }
    let none = json!({"version": "v1.30.0", "kroSpec": {"a": 1}});
    let invalid = [
        none,
        merged(kro(), kubeadm()),
        merged(kro(), external()),
        merged(kubeadm(), external()),
    ];
    for spec in invalid {
        assert_eq!(
            cel_messages(kind, prepare(spec.clone()), None),
            ["exactly one backend must be selected"],
            "{spec}"
        );
    }
}

/// [CEL-02] [CEL-04] [CEL-05] the backend type is immutable, with the exact message; changes
/// within a type are allowed.
#[rstest]
#[case(
    kro(),
    kubeadm(),
    Some(r#"backend type is immutable (from "kro" to "kubeadm")"#)
)]
#[case(
    kro(),
    external(),
    Some(r#"backend type is immutable (from "kro" to "external")"#)
)]
#[case(
    external(),
    kro(),
    Some(r#"backend type is immutable (from "external" to "kro")"#)
)]
#[case(
    kubeadm(),
    external(),
    Some(r#"backend type is immutable (from "kubeadm" to "external")"#)
)]
#[case(kro(), json!({"version": "v1.31.0", "resourceGraphDefinitionRef": {"name": "other"}}), None)]
#[case(external(), json!({"version": "v1.30.0", "externalBackend": {"apiVersion": "other.io/v2", "kind": "Other"}}), None)]
fn backend_type_immutable(#[case] old: Value, #[case] new: Value, #[case] expected: Option<&str>) {
    for kind in ["Kany8sControlPlane", "Kany8sControlPlaneTemplate"] {
        let (old, new) = if kind == "Kany8sControlPlane" {
            (old.clone(), new.clone())
        } else {
            (strip_version(old.clone()), strip_version(new.clone()))
        };
        let messages = cel_messages(kind, new, Some(old));
        let expected: Vec<String> = expected.iter().map(|m| m.to_string()).collect();
        assert_eq!(messages, expected, "{kind}");
    }
}

/// [CEL-02] an object stored without exactly one backend may be repaired to any backend type.
#[test]
fn repairing_an_invalid_selection_is_allowed() {
    let broken = merged(kro(), kubeadm());
    assert_eq!(
        cel_messages("Kany8sControlPlane", external(), Some(broken)),
        Vec::<String>::new()
    );
}

/// [CEL-03] an external backend must not be a Kany8sControlPlane.
#[rstest]
#[case("controlplane.cluster.x-k8s.io/v1alpha1", "Kany8sControlPlane", true)]
#[case("controlplane.cluster.x-k8s.io/v1beta2", "Kany8sControlPlane", true)]
#[case("example.com/v1", "Kany8sControlPlane", false)]
#[case(
    "controlplane.cluster.x-k8s.io/v1alpha1",
    "Kany8sKubeadmControlPlane",
    false
)]
fn external_backend_not_a_control_plane(
    #[case] api_version: &str,
    #[case] kind: &str,
    #[case] rejected: bool,
) {
    let spec =
        json!({"version": "v1.30.0", "externalBackend": {"apiVersion": api_version, "kind": kind}});
    let expected: Vec<String> = if rejected {
        vec!["externalBackend must not reference a Kany8sControlPlane".into()]
    } else {
        Vec::new()
    };
    assert_eq!(
        cel_messages("Kany8sControlPlane", spec.clone(), None),
        expected
    );
    assert_eq!(
        cel_messages("Kany8sControlPlaneTemplate", strip_version(spec), None),
        expected
    );
}

/// The Rust types read back what the schema describes (a full object round-trips).
#[test]
fn control_plane_round_trips_through_the_rust_type() {
    let object = json!({
        "apiVersion": "controlplane.cluster.x-k8s.io/v1alpha1",
        "kind": "Kany8sControlPlane",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {"version": "v1.30.0", "resourceGraphDefinitionRef": {"name": "demo"}, "kroSpec": {"region": "eu"},
                 "controlPlaneEndpoint": {"host": "example.com", "port": 443}},
        "status": {"initialization": {"controlPlaneInitialized": true}, "versions": [{"version": "v1.30.0"}],
                   "version": "v1.30.0", "externalManagedControlPlane": true, "observedGeneration": 2}
    });
    let typed: kany8s::api::Kany8sControlPlane = serde_json::from_value(object.clone()).unwrap();
    assert_eq!(
        typed
            .spec
            .backend
            .resource_graph_definition_ref
            .as_ref()
            .unwrap()
            .name,
        "demo"
    );
    assert_eq!(serde_json::to_value(&typed).unwrap(), object);
}
