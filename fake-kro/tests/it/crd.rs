//! RGD → CRD generation (kro.md §4): the CRD-01 worked example and status typing ([KRO-CRD-*]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fake_kro::crd::{CrdOptions, generate};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../fixtures/rgds/control-plane/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn options() -> CrdOptions {
    CrdOptions {
        rgd_uid: "rgd-uid".into(),
        ..CrdOptions::default()
    }
}

/// [KRO-CRD-01] the worked example: identity, labels, GS-13 spec, inferred status, columns.
#[test]
fn crd_01_worked_example() {
    let crd = generate(&fixture("demo-control-plane.yaml"), &options()).unwrap();
    assert_eq!(crd["metadata"]["name"], "democontrolplanes.kro.run");
    assert_eq!(
        crd["metadata"]["labels"],
        json!({
            "kro.run/kro-version": "v0.9.3", "kro.run/owned": "true",
            "kro.run/resource-graph-definition-id": "rgd-uid",
            "kro.run/resource-graph-definition-name": "demo-control-plane.kro.run"
        })
    );
    assert_eq!(
        crd["spec"]["names"],
        json!({"kind": "DemoControlPlane", "listKind": "DemoControlPlaneList", "plural": "democontrolplanes", "singular": "democontrolplane"})
    );
    let version = &crd["spec"]["versions"][0];
    assert_eq!(
        (
            version["name"].clone(),
            version["served"].clone(),
            version["storage"].clone()
        ),
        (json!("v1alpha1"), json!(true), json!(true))
    );
    let schema = &version["schema"]["openAPIV3Schema"];
    assert_eq!(
        schema["properties"]["spec"]["required"],
        json!(["name", "version"])
    );
    assert_eq!(
        schema["properties"]["spec"]["properties"]["port"],
        json!({"type": "integer", "default": 6443, "maximum": 65535, "minimum": 1})
    );
    let status = &schema["properties"]["status"]["properties"];
    assert_eq!(status["endpoint"], json!({"type": "string"}));
    assert_eq!(status["ready"], json!({"type": "boolean"}));
    assert_eq!(status["state"], json!({"type": "string"}));
    assert_eq!(
        status["conditions"]["items"]["properties"]["observedGeneration"],
        json!({"type": "integer"})
    );
    assert_eq!(version["subresources"], json!({"status": {}}));
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["State", "Ready", "Age"]);
    insta::assert_snapshot!("crd-01", fake_kro::canonical::to_yaml(&crd).unwrap());
}

fn rgd(status: Value, resources: Value) -> Value {
    json!({"apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition", "metadata": {"name": "t"},
           "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "Thing", "group": "demo.kany8s.io",
                               "spec": {"replicas": "integer | default=1", "version": "string"}, "status": status},
                    "resources": resources}})
}

fn cm() -> Value {
    json!([{"id": "cm", "template": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}},
           {"id": "deploy", "template": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}}])
}

/// [KRO-CRD-03] status typing: projections, templates, nested paths, custom groups.
#[test]
fn status_field_types() {
    let crd = generate(
        &rgd(
            json!({
                "name": "${cm.metadata.name}",
                "label": "prefix-${cm.metadata.name}",
                "data": "${cm.data}",
                "replicas": "${schema.spec.replicas}",
                "available": "${deploy.status.availableReplicas}",
                "net": {"id": "${cm.metadata.uid}"},
                "maybe": "${cm.?data.?x}",
                "created": "${cm.metadata.creationTimestamp}"
            }),
            cm(),
        ),
        &options(),
    )
    .unwrap();
    assert_eq!(crd["metadata"]["name"], "things.demo.kany8s.io");
    let status = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
    assert_eq!(status["name"], json!({"type": "string"}));
    assert_eq!(status["label"], json!({"type": "string"}));
    assert_eq!(
        status["data"],
        json!({"type": "object", "additionalProperties": {"type": "string"}})
    );
    assert_eq!(status["replicas"], json!({"type": "integer"}));
    assert_eq!(status["available"], json!({"type": "integer"}));
    assert_eq!(
        status["net"],
        json!({"type": "object", "properties": {"id": {"type": "string"}}})
    );
    assert_eq!(
        status["maybe"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
    assert_eq!(
        status["created"],
        json!({"description": "Timestamp representing a creation time", "type": "string", "format": "date-time"})
    );
}

/// [KRO-CRD-04] status errors: literals, unknown identifiers, expressions referring to nothing.
#[test]
fn status_errors() {
    let err = generate(&rgd(json!({"a": "plain", "b": {"c": 3}}), cm()), &options()).unwrap_err();
    assert_eq!(
        err,
        "failed to build instance status schema: status fields without expressions are not supported: [a b.c]"
    );
    let err = generate(&rgd(json!({"a": "${other.x}"}), cm()), &options()).unwrap_err();
    assert_eq!(
        err,
        "failed to build instance status schema: status field \"a\" expression \"other.x\": references unknown identifiers: [other]"
    );
    let err = generate(&rgd(json!({"a": "${true}"}), cm()), &options()).unwrap_err();
    assert_eq!(
        err,
        "failed to create instance node: instance status field must refer to a resource or schema: status.a"
    );
    let err = generate(&rgd(json!({"conditions": "x"}), cm()), &options()).unwrap_err();
    assert_eq!(
        err,
        "failed to build instance status schema: failed to extract conditions block: status.conditions must be a list, got string"
    );
    // Both texts as kro v0.9.3 wrote them on the upstream target.
    let err = generate(&rgd(json!({"a": "${outer(${inner})}"}), cm()), &options()).unwrap_err();
    assert_eq!(
        err,
        "failed to build instance status schema: failed to extract CEL expressions from status: nested expressions are not allowed unless inside string literals"
    );
}

/// [KRO-CRD-05] custom printer columns replace the defaults; SimpleSchema errors are wrapped.
#[test]
fn columns_and_wrapped_schema_errors() {
    let mut with_columns = rgd(json!({}), cm());
    with_columns["spec"]["schema"]["additionalPrinterColumns"] =
        json!([{"name": "V", "type": "string", "jsonPath": ".spec.version"}]);
    let crd = generate(&with_columns, &options()).unwrap();
    assert_eq!(
        crd["spec"]["versions"][0]["additionalPrinterColumns"],
        json!([{"name": "V", "type": "string", "jsonPath": ".spec.version"}])
    );
    let mut broken = rgd(json!({}), cm());
    broken["spec"]["schema"]["spec"] = json!({"n": "integer | default=abc"});
    assert_eq!(
        generate(&broken, &options()).unwrap_err(),
        "failed to build resourcegraphdefinition \"t\": failed to build OpenAPI schema for instance: field n: default value must be a valid integer, got: abc"
    );
}

/// [KRO-CRD-02] an insta snapshot of the CRD of every fixture RGD.
#[test]
fn fixture_crd_snapshots() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/rgds");
    let mut count = 0;
    for directory in ["control-plane", "infrastructure", "other"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(directory))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for path in files {
            let rgd: Value =
                yaml_serde::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let crd = generate(&rgd, &options()).unwrap();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            insta::assert_snapshot!(
                format!("fixture-{name}"),
                fake_kro::canonical::to_yaml(&crd).unwrap()
            );
            count += 1;
        }
    }
    assert_eq!(count, 10);
}

fn widget_crd(spec: Value) -> Value {
    let rgd = json!({"apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
        "metadata": {"name": "widget"},
        "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "Widget", "spec": spec}, "resources": []}});
    generate(&rgd, &options()).unwrap()
}

/// [KRO-30] kro's breaking-change verdicts between the CRD of an RGD and the CRD of its update
/// (kro.md §7.6): removals, type changes, newly required fields, restricted enums, added or
/// changed patterns and tightened bounds break; additions, relaxations and defaults do not;
/// kro's summary names the first three.
#[test]
fn breaking_changes_between_crd_generations() {
    use fake_kro::compat::compare_crds;
    let base = json!({"name": "string | required=true", "size": "integer | minimum=1 maximum=10",
        "tier": "string | enum=\"a,b,c\"", "tags": "[]string | maxItems=5",
        "note": "string | maxLength=20"});
    let verdict = |patch: Value| {
        let mut spec = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                spec.as_object_mut().unwrap().remove(k);
            } else {
                spec[k] = v.clone();
            }
        }
        let report = compare_crds(&widget_crd(base.clone()), &widget_crd(spec)).unwrap();
        (report.has_changes(), report.summary())
    };
    assert_eq!(verdict(json!({})), (false, "no breaking changes".into()));
    let breaking = [
        (json!({"note": null}), "Property note was removed"),
        (
            json!({"size": "string"}),
            "Type changed from integer to string",
        ),
        (
            json!({"tier": "string | enum=\"a,b\""}),
            "Enum value \"c\" was removed",
        ),
        (
            json!({"note": "string | maxLength=20 pattern=\"^x\""}),
            "Validation pattern ^x was added",
        ),
        (
            json!({"size": "integer | minimum=2 maximum=10"}),
            "Minimum was increased from 1 to 2",
        ),
        (
            json!({"size": "integer | minimum=1 maximum=9"}),
            "Maximum was decreased from 10 to 9",
        ),
        (
            json!({"tags": "[]string | maxItems=5 minItems=1"}),
            "MinItems constraint 1 was added",
        ),
        (
            json!({"note": "string | maxLength=10"}),
            "MaxLength was decreased from 20 to 10",
        ),
        (
            json!({"note": "string | maxLength=20 required=true"}),
            "Field note is newly required",
        ),
        (
            json!({"extra": "string | required=true"}),
            "Optional property extra was added",
        ),
    ];
    for (patch, description) in breaking {
        assert_eq!(
            verdict(patch.clone()),
            (true, description.into()),
            "{patch}"
        );
    }
    let compatible = [
        json!({"extra": "string"}),
        json!({"extra": "string | required=true default=\"x\""}),
        json!({"size": "integer | minimum=0 maximum=11"}),
        json!({"tier": "string | enum=\"a,b,c,d\""}),
        json!({"note": "string"}),
        json!({"name": "string"}),
        json!({"note": "string | maxLength=20 default=\"hi\""}),
    ];
    for patch in compatible {
        assert_eq!(
            verdict(patch.clone()),
            (true, "no breaking changes".into()),
            "{patch}"
        );
    }
    assert_eq!(
        verdict(json!({"note": null, "tags": null, "tier": null, "size": null})).1,
        "Property note was removed; Property size was removed; Property tags was removed; and 1 more changes"
    );
    let mut two_versions = widget_crd(base.clone());
    let version = two_versions["spec"]["versions"][0].clone();
    two_versions["spec"]["versions"] = json!([version.clone(), version]);
    assert_eq!(
        compare_crds(&two_versions, &widget_crd(base)).unwrap_err(),
        "expected exactly one version in each CRD, got 2 old and 1 new versions"
    );
}
