//! The offline checker (kro.md §7): kro's build checks in order, the Kany8s contract and
//! pitfall warnings ([KRO-V*], [KRO-C*], [KRO-W*]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fake_kro::check::{CheckOptions, Contract, Diagnostic, Severity, check};
use rstest::rstest;
use serde_json::{Value, json};

fn errors(diagnostics: &[Diagnostic]) -> Vec<(String, String)> {
    diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| (d.id.clone(), d.message.clone()))
        .collect()
}

fn warnings(diagnostics: &[Diagnostic]) -> Vec<String> {
    diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| d.id.clone())
        .collect()
}

fn base() -> Value {
    json!({"apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition", "metadata": {"name": "t"},
        "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "Thing",
                            "spec": {"name": "string", "version": "string"},
                            "status": {"ready": "${cm.metadata.name != ''}", "endpoint": "${cm.metadata.name}"}},
                 "resources": [{"id": "cm", "template": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "${schema.spec.name}"}}}]}})
}

/// The base RGD with the value at `pointer` set (the parent must exist).
fn with(pointer: &str, value: Value) -> Value {
    let mut rgd = base();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = rgd.pointer_mut(parent).unwrap();
    match parent {
        Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
        other => other[key] = value,
    }
    rgd
}

fn first_error(rgd: &Value) -> (String, String) {
    errors(&check(rgd, &CheckOptions::default()))
        .into_iter()
        .next()
        .expect("an error")
}

#[test]
fn a_valid_rgd_has_no_findings() {
    let options = CheckOptions {
        contract: Contract::ControlPlane,
        ..CheckOptions::default()
    };
    assert_eq!(check(&base(), &options), Vec::<Diagnostic>::new());
}

/// Every RGD under fixtures/ passes the checker with its directory's contract.
#[test]
fn every_fixture_rgd_passes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/rgds");
    let mut checked = 0;
    for (directory, contract) in [
        ("control-plane", Contract::ControlPlane),
        ("infrastructure", Contract::Infrastructure),
        ("other", Contract::None),
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(directory)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for document in yaml_serde::Deserializer::from_str(&text) {
                let rgd: Value = serde::Deserialize::deserialize(document).unwrap();
                let found = check(
                    &rgd,
                    &CheckOptions {
                        contract,
                        all_errors: true,
                        ..CheckOptions::default()
                    },
                );
                assert!(errors(&found).is_empty(), "{}: {found:#?}", path.display());
                checked += 1;
            }
        }
    }
    assert!(checked >= 1);
}

#[rstest]
#[case::v0_kind("/spec/schema/kind", json!("my-kind"), "V0", "spec.schema.kind: Invalid value: \"my-kind\": spec.schema.kind in body should match '^[A-Z][a-zA-Z0-9]{0,62}$'")]
#[case::v0_api_version("/spec/schema/apiVersion", json!("kro.run/v1"), "V0", "spec.schema.apiVersion: Invalid value: \"kro.run/v1\": spec.schema.apiVersion in body should match '^v[0-9]+(alpha[0-9]+|beta[0-9]+)?$'")]
#[case::v0_template_and_ref("/spec/resources/0/externalRef", json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}), "V0", "spec.resources[0]: Invalid value: \"object\": exactly one of template or externalRef must be provided")]
#[case::v2_reserved("/spec/resources/0/id", json!("schema"), "V2", "failed to validate resourcegraphdefinition: naming convention violation: id schema is a reserved keyword in KRO")]
#[case::v2_camel("/spec/resources/0/id", json!("My-cm"), "V2", "failed to validate resourcegraphdefinition: naming convention violation: id My-cm is not a valid KRO resource id: must be lower camelCase")]
#[case::v4_label("/spec/resources/0/template/metadata/labels", json!({"kro.run/x": "y"}), "V4", "failed to build resource \"cm\": invalid label for resource \"cm\". labels with prefix \"kro.run/\" are reserved for internal use")]
#[case::v4_kind_missing("/spec/resources/0/template", json!({"apiVersion": "v1", "metadata": {}}), "V4", "failed to build resource \"cm\": resource cm is not a valid Kubernetes object: kind field not found")]
#[case::v4_nested("/spec/resources/0/template/metadata/name", json!("${a ${b}}"), "V4", "failed to build resource \"cm\": failed to extract CEL expressions from schema for resource cm: nested expressions are not allowed unless inside string literals")]
#[case::v4_ready_when("/spec/resources/0/readyWhen", json!(["x ${cm.data} y"]), "V4", "failed to build resource \"cm\": failed to parse readyWhen expressions: only standalone expressions are allowed")]
#[case::v5("/spec/schema/spec", json!({"name": "string | required"}), "V5", "failed to build resourcegraphdefinition \"t\": failed to build OpenAPI schema for instance: field name: marker key 'required' without a value")]
#[case::v6_unknown("/spec/resources/0/template/metadata/name", json!("${nope.metadata.name}"), "V6", "failed to build dependency graph: failed to extract dependencies: references unknown identifiers: [nope]")]
#[case::v6_self("/spec/resources/0/template/metadata/name", json!("${cm.metadata.uid}"), "V6", "failed to build dependency graph: self references are not allowed")]
#[case::v7_ready_when("/spec/resources/0/readyWhen", json!(["${schema.spec.name == 'x'}"]), "V7", "failed to validate resource \"cm\": resource \"cm\" readyWhen: references unknown identifiers: [schema]")]
#[case::v8_literal("/spec/schema/status", json!({"ready": "yes"}), "V8", "failed to build instance status schema: status fields without expressions are not supported: [ready]")]
#[case::v10_constant("/spec/schema/status", json!({"ready": "${true}"}), "V10", "failed to create instance node: instance status field must refer to a resource or schema: status.ready")]
fn first_error_is_kros(
    #[case] pointer: &str,
    #[case] value: Value,
    #[case] id: &str,
    #[case] message: &str,
) {
    assert_eq!(
        first_error(&with(pointer, value)),
        (id.to_string(), message.to_string())
    );
}

/// kro stops at the first error; `--all` reports every one.
#[test]
fn first_error_stops_unless_all() {
    let mut rgd = with("/spec/schema/spec", json!({"name": "string | required"}));
    rgd["spec"]["resources"][0]["template"]["metadata"]["name"] = json!("${nope.x}");
    assert_eq!(errors(&check(&rgd, &CheckOptions::default())).len(), 1);
    let all = errors(&check(
        &rgd,
        &CheckOptions {
            all_errors: true,
            ..CheckOptions::default()
        },
    ));
    assert_eq!(
        all.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        ["V5", "V6"]
    );
}

/// A dependency cycle is named in DFS order.
#[test]
fn cycles() {
    let mut rgd = base();
    rgd["spec"]["resources"] = json!([
        {"id": "a", "template": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "${b.metadata.name}"}}},
        {"id": "b", "template": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "${a.metadata.name}"}}}
    ]);
    rgd["spec"]["schema"]["status"] = json!({"ready": "${a.metadata.name != ''}"});
    assert_eq!(
        first_error(&rgd),
        (
            "V6".into(),
            "failed to build dependency graph: graph contains a cycle: a -> b -> a".into()
        )
    );
}

/// [RGA-01] [RGA-02] [RGA-07] the control-plane contract: ready boolean, endpoint string, spec.version.
#[test]
fn control_plane_contract() {
    let options = CheckOptions {
        contract: Contract::ControlPlane,
        all_errors: true,
        ..CheckOptions::default()
    };
    let rgd = with(
        "/spec/schema/status",
        json!({"ready": "${cm.metadata.name}", "state": "${cm.metadata.name}"}),
    );
    let mut spec = rgd.clone();
    spec["spec"]["schema"]["spec"] = json!({"name": "string"});
    let found = errors(&check(&spec, &options));
    assert_eq!(
        found,
        [
            (
                "C6".to_string(),
                "contract: status.state and status.conditions are owned by kro".to_string()
            ),
            (
                "C1".to_string(),
                "contract: status.ready must be boolean, inferred string".to_string()
            ),
            (
                "C2".to_string(),
                "contract: status.endpoint is required".to_string()
            ),
            (
                "C3".to_string(),
                "contract: spec.version is required".to_string()
            ),
        ]
    );
    // [RGA-10] the infrastructure contract reserves endpoint but does not require it.
    let infra = with(
        "/spec/schema/status",
        json!({"ready": "${cm.metadata.name != ''}"}),
    );
    let options = CheckOptions {
        contract: Contract::Infrastructure,
        ..CheckOptions::default()
    };
    assert!(errors(&check(&infra, &options)).is_empty());
}

/// Pitfall warnings never block.
#[test]
fn pitfall_warnings() {
    let mut rgd = base();
    rgd["spec"]["resources"].as_array_mut().unwrap().push(json!({"id": "deploy", "template": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}}));
    rgd["spec"]["schema"]["status"]["replicas"] = json!("${deploy.status.availableReplicas}");
    rgd["spec"]["schema"]["status"]["maybe"] = json!("${cm.?data.?x}");
    rgd["spec"]["resources"][0]["template"]["metadata"]["labels"] =
        json!({"a": "${schema.spec.name + '}'}"});
    rgd["spec"]["resources"].as_array_mut().unwrap().push(json!({"id": "widget", "template": {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}}));
    let found = check(&rgd, &CheckOptions::default());
    let ids = warnings(&found);
    for expected in [
        "W-ZERO-OMITTED",
        "W-OPT-NO-DEFAULT",
        "W-SINGLE-QUOTE-BRACE",
        "W-GVK-UNKNOWN",
    ] {
        assert!(
            ids.contains(&expected.to_string()),
            "{expected} missing from {ids:?}"
        );
    }
}

fn pack_options(crds: &[&str]) -> CheckOptions {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut catalog = fake_kro::catalog::Catalog::default();
    for path in crds {
        catalog.load(&root.join(path)).unwrap();
    }
    CheckOptions {
        all_errors: true,
        contract: Contract::ControlPlane,
        catalog: std::sync::Arc::new(catalog),
        ..CheckOptions::default()
    }
}

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/rgds/control-plane")
        .join(name);
    yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// [KRO-26] the provider packs are clean under typed checks against CRDs of the kinds they use
/// (the ACK CRDs of fixtures/, minimal ASO and KCC CRDs of tests/data/crds), with every template
/// resolved (no W-GVK-UNKNOWN).
#[rstest]
#[case::eks_ack("eks-ack.yaml", "../fixtures/crds/ack")]
#[case::aks_aso("aks-aso.yaml", "tests/data/crds/aso.yaml")]
#[case::gke_kcc("gke-kcc.yaml", "tests/data/crds/kcc.yaml")]
fn provider_packs_are_clean_under_typed_checks(#[case] pack: &str, #[case] crds: &str) {
    let found = check(&fixture(pack), &pack_options(&[crds]));
    assert!(errors(&found).is_empty(), "{found:#?}");
    assert!(
        !warnings(&found).contains(&"W-GVK-UNKNOWN".to_string()),
        "{found:#?}"
    );
}

/// [KRO-26] a value of the wrong type in a pack's template is kro's V7 type mismatch, found
/// through the CRD's schema.
#[test]
fn a_pack_template_of_the_wrong_type_is_rejected() {
    let mut rgd = fixture("aks-aso.yaml");
    rgd["spec"]["resources"][1]["template"]["spec"]["agentPoolProfiles"][0]["count"] =
        json!("${schema.spec.vmSize}");
    let found = errors(&check(&rgd, &pack_options(&["tests/data/crds/aso.yaml"])));
    assert_eq!(
        found[0],
        (
            "V7".to_string(),
            "failed to validate resource \"cluster\": type mismatch in resource \"cluster\" at path \"spec.agentPoolProfiles[0].count\": expression \"schema.spec.vmSize\" returns type \"string\" but expected \"int\": type kind mismatch: got \"string\", expected \"int\"".to_string()
        )
    );
}

/// [KRO-26] with `--served-only` the catalog is all the cluster serves: an unserved child kind is
/// kro's V4 error in its schema resolver's words (which name the group version when no kind of it
/// is served, the kind when the group version is), not the W-GVK-UNKNOWN warning.
#[rstest]
#[case::group_version_not_served(
    "example.com/v1",
    "Widget",
    "failed to build resource \"cm\": failed to get schema for resource cm: cannot resolve group version \"example.com/v1\": schema not found"
)]
#[case::kind_not_served(
    "apps/v1",
    "Widget",
    "failed to build resource \"cm\": failed to get schema for resource cm: cannot resolve group version kind \"apps/v1, Kind=Widget\": schema not found"
)]
#[case::core_kind_not_served(
    "v1",
    "Widget",
    "failed to build resource \"cm\": failed to get schema for resource cm: cannot resolve group version kind \"/v1, Kind=Widget\": schema not found"
)]
#[case::crd_group_version_served(
    "ec2.services.k8s.aws/v1alpha1",
    "Widget",
    "failed to build resource \"cm\": failed to get schema for resource cm: cannot resolve group version kind \"ec2.services.k8s.aws/v1alpha1, Kind=Widget\": schema not found"
)]
fn served_only_refuses_unserved_kinds(
    #[case] api_version: &str,
    #[case] kind: &str,
    #[case] message: &str,
) {
    let template = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "w"}});
    let rgd = with("/spec/resources/0/template", template);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut catalog = fake_kro::catalog::Catalog::default();
    catalog.load(&root.join("../fixtures/crds/ack")).unwrap();
    let open = CheckOptions {
        catalog: std::sync::Arc::new(catalog.clone()),
        ..CheckOptions::default()
    };
    let found = check(&rgd, &open);
    assert!(errors(&found).is_empty(), "{found:#?}");
    assert!(warnings(&found).contains(&"W-GVK-UNKNOWN".to_string()));
    let served_only = CheckOptions {
        catalog: std::sync::Arc::new(catalog.served_only()),
        ..CheckOptions::default()
    };
    let found = check(&rgd, &served_only);
    assert_eq!(
        errors(&found).first(),
        Some(&("V4".to_string(), message.to_string())),
        "{found:#?}"
    );
}

/// [KRO-26] typed admission against built-in kinds: unknown fields, wrong literal types, scope.
#[rstest]
#[case::unknown_field(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"nope": 1}}), "V4", "failed to build resource \"cm\": failed to extract CEL expressions from schema for resource cm: error getting field schema for path spec.nope: schema not found for field nope")]
#[case::literal_type(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": "two"}}), "V4", "failed to build resource \"cm\": failed to extract CEL expressions from schema for resource cm: expected integer type for path spec.replicas, got string")]
#[case::cluster_scoped(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r", "namespace": "x"}}), "V4", "failed to build resource \"cm\": resource \"cm\" is cluster-scoped and must not set metadata.namespace")]
#[case::malformed_api_version(json!({"apiVersion": "a/b/v1", "kind": "ConfigMap", "metadata": {"name": "c"}}), "V4", "failed to build resource \"cm\": failed to extract GVK from resource cm: invalid apiVersion format \"a/b/v1\": unexpected GroupVersion string: a/b/v1")]
#[case::field_selection(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "${schema.metadata.name.x}"}}), "V7", "failed to validate resource \"cm\": failed to compile template expression \"schema.metadata.name.x\" at path \"metadata.name\": ERROR: <input>:1:21: type 'string' does not support field selection\n | schema.metadata.name.x\n | ....................^")]
fn typed_admission_with_built_in_kinds(
    #[case] template: Value,
    #[case] id: &str,
    #[case] message: &str,
) {
    let rgd = with("/spec/resources/0/template", template);
    assert_eq!(first_error(&rgd), (id.to_string(), message.to_string()));
}

/// [KRO-30] `check --previous`: an update whose CRD breaks the previous one's instances is K1
/// with kro's message; `kro.run/allow-breaking-changes: "true"` or a compatible change passes;
/// an RGD of another kind is not compared.
#[test]
fn breaking_updates_are_k1() {
    let rgd = |spec: Value, annotations: Value| {
        json!({"apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
            "metadata": {"name": "widget", "annotations": annotations},
            "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "Widget", "spec": spec},
                "resources": [{"id": "cm", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${schema.metadata.name}"}}}]}})
    };
    let previous = rgd(json!({"name": "string", "size": "integer"}), json!({}));
    let options = CheckOptions {
        previous: Some(std::sync::Arc::new(previous)),
        ..CheckOptions::default()
    };
    let breaking = rgd(json!({"name": "string | required=true"}), json!({}));
    assert_eq!(
        errors(&check(&breaking, &options)),
        [(
            "K1".to_string(),
            "cannot update CRD widgets.kro.run: breaking changes detected: Property size was removed; Field name is newly required".to_string()
        )]
    );
    let allowed = rgd(
        json!({"name": "string | required=true"}),
        json!({"kro.run/allow-breaking-changes": "true"}),
    );
    assert!(errors(&check(&allowed, &options)).is_empty());
    let compatible = rgd(
        json!({"name": "string", "size": "integer", "extra": "boolean"}),
        json!({}),
    );
    assert!(errors(&check(&compatible, &options)).is_empty());
    let mut other_kind = breaking.clone();
    other_kind["spec"]["schema"]["kind"] = json!("Gadget");
    assert!(errors(&check(&other_kind, &options)).is_empty());
}

/// [KRO-32] V9: author conditions as kro builds them, with kro's messages: standalone
/// expressions only, a type declared twice, a self reference, an unknown built-in, a literal
/// status outside True/False/Unknown, references beyond resources/schema/runtime, and a result
/// that is not a condition.
#[test]
fn author_conditions_are_v9() {
    let rgd = |conditions: Value| {
        json!({"apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition", "metadata": {"name": "c"},
            "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "C", "spec": {"name": "string"},
                "status": {"conditions": conditions}},
            "resources": [{"id": "cm", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "${schema.spec.name}"}, "data": {"ok": "yes"}}}]}})
    };
    let v9 = |conditions: Value| {
        let found = errors(&check(&rgd(conditions), &CheckOptions::default()));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "V9");
        found[0].1.clone()
    };
    let ok = "${runtime.newCondition({type: 'A', status: 'True', reason: '', message: ''})}";
    assert!(
        errors(&check(
            &rgd(json!([ok, "${runtime.newCondition({type: 'B', status: cm.data.ok == 'yes' ? 'True' : 'False', reason: runtime.condition(schema, 'Ready').reason, message: ''})}"])),
            &CheckOptions::default()
        ))
        .is_empty()
    );
    assert_eq!(
        v9(json!(["runtime.newCondition({type: 'A', status: 'True'})"])),
        "failed to build instance conditions: invalid conditions block: only standalone expressions are allowed"
    );
    assert_eq!(
        v9(json!([ok, ok])),
        "failed to build instance conditions: condition type \"A\" is declared by more than one conditions entry"
    );
    assert_eq!(
        v9(json!([
            ok,
            "${runtime.newCondition({type: 'B', status: runtime.condition(schema, 'A').status})}"
        ])),
        "failed to build instance conditions: runtime.condition(schema, \"A\"): custom conditions cannot reference each other in expression \"runtime.newCondition({type: 'B', status: runtime.condition(schema, 'A').status})\""
    );
    assert_eq!(
        v9(json!([
            "${runtime.newCondition({type: 'B', status: runtime.condition(schema, 'Nope').status})}"
        ])),
        "failed to build instance conditions: runtime.condition(schema, \"Nope\"): unknown condition type; only kro's built-in types (InstanceManaged, GraphResolved, ResourcesReady, Ready) can be read from schema in expression \"runtime.newCondition({type: 'B', status: runtime.condition(schema, 'Nope').status})\""
    );
    assert_eq!(
        v9(json!([
            "${runtime.newCondition({type: 'B', status: 'YES'})}"
        ])),
        "failed to build instance conditions: runtime.newCondition: status must be one of True, False, Unknown (got \"YES\") in expression \"runtime.newCondition({type: 'B', status: 'YES'})\""
    );
    assert_eq!(
        v9(json!([
            "${runtime.newCondition({type: 'B', status: other.status})}"
        ])),
        "failed to build instance conditions: condition \"runtime.newCondition({type: 'B', status: other.status})\": references unknown identifiers: [other]"
    );
    assert_eq!(
        v9(json!(["${schema.spec.name}"])),
        "failed to build instance conditions: condition \"schema.spec.name\": condition expressions must return runtime.newCondition(...) or a list of them, got \"string\""
    );
}
