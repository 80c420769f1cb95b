//! kro v0.9.3's own test cases, transcribed as data under `tests/data/kro/` (see its README), run
//! through fake-kro: admission verdicts (graph builder and validation tests), CEL library results,
//! SimpleSchema conversions, CRD synthesis and the chainsaw e2e cases. Each category reports how
//! many of kro's verdicts fake-kro matches; the test fails when a category falls below its floor.
//! `KRO_CASES_VERBOSE=1` lists every mismatch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fake_kro::catalog::Catalog;
use fake_kro::check::{CheckOptions, Severity, check};
use fake_kro::crd::{CrdOptions, generate};
use fake_kro::eval::{EvalError, evaluate, evaluate_cel, to_json};
use fake_kro::graph::Graph;
use fake_kro::render::render;
use fake_kro::simpleschema::{KroVersion, spec_schema};
use kube_cel::cel::Value as Cel;
use kube_cel::cel::objects::Key;
use serde_json::{Map, Value, json};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kro")
}

fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Matched and total cases of one category, with the names of the mismatches.
#[derive(Debug, Default)]
struct Tally {
    matched: usize,
    total: usize,
    exact: usize,
    mismatches: Vec<String>,
}

impl Tally {
    fn record(&mut self, name: &str, matched: bool, detail: impl FnOnce() -> String) {
        self.total += 1;
        if matched {
            self.matched += 1;
        } else {
            self.mismatches.push(format!("{name}: {}", detail()));
        }
    }
}

/// The RGD of a case: its spec under a fixed name.
fn rgd_of(case: &Value) -> Value {
    json!({"apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
        "metadata": {"name": case.get("rgd_name").and_then(Value::as_str).unwrap_or("test")},
        "spec": case["spec"]})
}

fn first_error(rgd: &Value, options: &CheckOptions) -> Option<String> {
    check(rgd, options)
        .into_iter()
        .find(|d| d.severity == Severity::Error)
        .map(|d| d.message)
}

/// The world a file's cases see (`world: fake`: only world.yaml's kinds, as kro's test resolver)
/// and the feature gates it turns on.
fn world_options(data: &Value) -> CheckOptions {
    let mut options = CheckOptions::default();
    if data.get("world").and_then(Value::as_str) == Some("fake") {
        let mut catalog = Catalog::closed();
        catalog.load(&data_dir().join("world.yaml")).unwrap();
        options.catalog = std::sync::Arc::new(catalog);
    }
    options.omit_function = data
        .get("gates")
        .and_then(Value::as_array)
        .is_some_and(|g| g.iter().any(|g| g == "CELOmitFunction"));
    options
}

/// Admission cases (builder and validation files): the verdict, the asserted text, and for
/// accepted graphs the topological order and dependencies kro's test checks.
fn admission(file: &str, tally: &mut Tally) {
    let data = read_yaml(&data_dir().join(file));
    let options = world_options(&data);
    for case in data["cases"].as_array().into_iter().flatten() {
        let name = case["name"].as_str().unwrap_or_default();
        let rgd = rgd_of(case);
        let error = first_error(&rgd, &options);
        if let Some(expected) = case.get("reject").and_then(Value::as_str) {
            // A case kro's own RGD CRD refuses at the API server carries what the cluster
            // says (`on_cluster`): that is the message a user meets first, and check's.
            let on_cluster = case.get("on_cluster").and_then(Value::as_str);
            let matched = error
                .as_deref()
                .is_some_and(|e| e.contains(expected) || on_cluster.is_some_and(|c| e.contains(c)));
            tally.record(name, matched, || {
                format!("kro rejects with \"{expected}\", fake-kro: {error:?}")
            });
            if error.as_deref().is_some_and(|e| e.ends_with(expected)) {
                tally.exact += 1;
            }
            continue;
        }
        let mut problems = Vec::new();
        if let Some(e) = &error {
            problems.push(format!("kro accepts, fake-kro rejects: {e}"));
        } else {
            match Graph::of(&rgd) {
                Err(e) => problems.push(format!("no graph: {e}")),
                Ok(graph) => {
                    if let Some(order) = case.get("order")
                        && json!(graph.order()) != *order
                    {
                        problems.push(format!("order {:?}, kro {order}", graph.order()));
                    }
                    for (id, deps) in case
                        .get("dependencies")
                        .and_then(Value::as_object)
                        .into_iter()
                        .flatten()
                    {
                        let mut want: Vec<String> = deps
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|d| d.as_str().map(str::to_string))
                            .collect();
                        want.sort();
                        let got: Vec<String> = graph
                            .node(id)
                            .map(|n| n.dependencies.iter().cloned().collect())
                            .unwrap_or_default();
                        if got != want {
                            problems.push(format!("{id} depends on {got:?}, kro {want:?}"));
                        }
                    }
                }
            }
        }
        if problems.is_empty() {
            tally.exact += 1;
        }
        tally.record(name, problems.is_empty(), || problems.join("; "));
    }
}

/// A CEL value as kro's data writes it: JSON, integer map keys as strings.
fn json_with_string_keys(value: &Cel) -> Value {
    match value {
        Cel::Map(map) => Value::Object(
            map.map
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Key::String(s) => s.to_string(),
                        Key::Int(i) => i.to_string(),
                        Key::Uint(u) => u.to_string(),
                        Key::Bool(b) => b.to_string(),
                    };
                    (key, json_with_string_keys(v))
                })
                .collect(),
        ),
        Cel::List(items) => Value::Array(items.iter().map(json_with_string_keys).collect()),
        scalar => to_json(scalar).unwrap_or_else(|e| panic!("{e}")),
    }
}

/// kro's CEL library results for the expressions of a data file in `cel.yaml`'s format.
fn cel_cases(file: &Path, tally: &mut Tally) {
    let data = read_yaml(file);
    for case in data["cases"].as_array().into_iter().flatten() {
        let name = case["name"].as_str().unwrap_or_default();
        let expression = case["expr"].as_str().unwrap_or_default();
        let variables: BTreeMap<String, Value> = case
            .get("vars")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let got = if case.get("int_keys").is_some() {
            evaluate_cel(expression, &variables).map(|v| json_with_string_keys(&v))
        } else {
            evaluate(expression, &variables)
        };
        let expected_error = case.get("error").or_else(|| case.get("compile_error"));
        let (matched, exact) = if let Some(expected) = expected_error {
            match &got {
                Err(EvalError::Failed(e) | EvalError::Pending(e)) => {
                    (true, e == expected.as_str().unwrap_or_default())
                }
                Ok(_) => (false, false),
            }
        } else if case.get("omit").is_some() {
            let omitted = fake_kro::eval::evaluate_omittable(expression, &variables) == Ok(None);
            (omitted, omitted)
        } else {
            let same = got.as_ref().is_ok_and(|v| Some(v) == case.get("value"));
            (same, same)
        };
        if exact {
            tally.exact += 1;
        }
        tally.record(name, matched, || {
            format!(
                "kro {}, fake-kro {got:?}",
                expected_error
                    .or_else(|| case.get("value"))
                    .unwrap_or(&Value::Null)
            )
        });
    }
}

/// `required` lists compare as sets: kro writes them in Go map order.
fn normalised(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("required", Value::Array(items)) => {
                            let mut items = items.clone();
                            items.sort_by_key(ToString::to_string);
                            Value::Array(items)
                        }
                        _ => normalised(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalised).collect()),
        other => other.clone(),
    }
}

fn simpleschema_cases(tally: &mut Tally) {
    let data = read_yaml(&data_dir().join("simpleschema.yaml"));
    for case in data["cases"].as_array().into_iter().flatten() {
        let name = case["name"].as_str().unwrap_or_default();
        let empty = Map::new();
        let spec = case["spec"].as_object().unwrap_or(&empty);
        let types = case
            .get("types")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let got = spec_schema(spec, types, KroVersion::V0_9_3);
        let (matched, exact) = match (case.get("error"), &got) {
            (Some(expected), Err(e)) => (true, e == expected.as_str().unwrap_or_default()),
            (None, Ok(schema)) => {
                let same = normalised(schema) == normalised(&case["schema"]);
                (same, same)
            }
            _ => (false, false),
        };
        if exact {
            tally.exact += 1;
        }
        tally.record(name, matched, || {
            format!(
                "kro {}, fake-kro {got:?}",
                case.get("error").unwrap_or(&case["schema"])
            )
        });
    }
}

/// Whether `actual` contains `expected` (objects by key, arrays element by element).
fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| contains(av, v))),
        (Value::Array(a), Value::Array(e)) => {
            a.len() == e.len() && a.iter().zip(e).all(|(x, y)| contains(x, y))
        }
        (a, e) => a == e,
    }
}

fn default_printer_columns() -> Value {
    json!([
        {"name": "State", "type": "string", "description": "The state of a ResourceGraphDefinition instance", "jsonPath": ".status.state"},
        {"name": "Ready", "type": "string", "description": "Whether a ResourceGraphDefinition instance is ready", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
        {"name": "Age", "type": "date", "description": "Age of the resource", "jsonPath": ".metadata.creationTimestamp"}
    ])
}

fn crd_cases(tally: &mut Tally) {
    let data = read_yaml(&data_dir().join("crd.yaml"));
    for case in data["cases"].as_array().into_iter().flatten() {
        let name = case["name"].as_str().unwrap_or_default();
        let rgd = rgd_of(case);
        let got = generate(&rgd, &CrdOptions::default());
        let mut problems = Vec::new();
        match &got {
            Err(e) => problems.push(format!("no CRD: {e}")),
            Ok(crd) => {
                if !contains_fragment(crd, &case["crd"]) {
                    problems.push("CRD does not contain kro's fragment".into());
                }
                if case.get("default_printer_columns").is_some()
                    && crd.pointer("/spec/versions/0/additionalPrinterColumns")
                        != Some(&default_printer_columns())
                {
                    problems.push("printer columns differ from kro's defaults".into());
                }
                if case.get("no_annotations").is_some()
                    && crd.pointer("/metadata/annotations").is_some()
                {
                    problems.push("annotations where kro has none".into());
                }
            }
        }
        if problems.is_empty() {
            tally.exact += 1;
        }
        tally.record(name, problems.is_empty(), || problems.join("; "));
    }
}

/// Containment where arrays of the fragment may be shorter (a CRD fragment names one version).
fn contains_fragment(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| contains_fragment(av, v))),
        (Value::Array(a), Value::Array(e)) => {
            a.len() >= e.len() && a.iter().zip(e).all(|(x, y)| contains_fragment(x, y))
        }
        (a, e) => a == e,
    }
}

/// The chainsaw e2e cases (tests/data/kro/e2e, one folder each).
fn e2e_cases(tally: &mut Tally) {
    let root = data_dir().join("e2e");
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    for folder in folders {
        let name = folder.file_name().unwrap().to_string_lossy().to_string();
        let expect = read_yaml(&folder.join("expect.yaml"));
        let rgd = read_yaml(&folder.join("rgd.yaml"));
        let mut problems = Vec::new();
        let mut options = CheckOptions::default();
        if folder.join("crds.yaml").exists() {
            let mut catalog = Catalog::default();
            catalog.load(&folder.join("crds.yaml")).unwrap();
            options.catalog = std::sync::Arc::new(catalog);
        }
        if let Some(e) = first_error(&rgd, &options) {
            problems.push(format!("kro accepts the RGD, fake-kro rejects: {e}"));
        }
        match expect["command"].as_str() {
            Some("crd") => match generate(&rgd, &CrdOptions::default()) {
                Err(e) => problems.push(format!("no CRD: {e}")),
                Ok(crd) => {
                    for fragment in expect["fragments"].as_array().into_iter().flatten() {
                        let path = fragment["path"].as_str().unwrap_or_default();
                        let at = if path.is_empty() {
                            Some(&crd)
                        } else {
                            crd.pointer(path)
                        };
                        if !at.is_some_and(|v| contains(v, &fragment["contains"])) {
                            problems.push(format!("CRD fragment at '{path}' differs"));
                        }
                    }
                }
            },
            Some("render") => e2e_render(&folder, &expect, &rgd, &mut problems),
            other => problems.push(format!("unknown command {other:?}")),
        }
        if problems.is_empty() {
            tally.exact += 1;
        }
        tally.record(&name, problems.is_empty(), || problems.join("; "));
    }
}

fn e2e_render(folder: &Path, expect: &Value, rgd: &Value, problems: &mut Vec<String>) {
    let instance = read_yaml(&folder.join(expect["instance"].as_str().unwrap_or("instance.yaml")));
    let mut observed = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(folder.join("observed")) {
        for entry in entries.flatten() {
            let path = entry.path();
            let id = path.file_stem().unwrap().to_string_lossy().to_string();
            observed.insert(id, read_yaml(&path));
        }
    }
    let rendered = render(rgd, &instance, &observed);
    if expect.get("fails").and_then(Value::as_bool) == Some(true) {
        if rendered.is_ok() {
            problems.push("kro refuses the instance, fake-kro renders it".into());
        }
        return;
    }
    let rendered = match rendered {
        Ok(r) => r,
        Err(e) => {
            problems.push(format!("fake-kro cannot render: {e}"));
            return;
        }
    };
    if let Some(order) = expect.get("order") {
        let ids: Vec<&str> = rendered
            .resources
            .iter()
            .map(|(id, _)| id.as_str())
            .collect();
        if json!(ids) != *order {
            problems.push(format!("order {ids:?}, kro {order}"));
        }
    }
    for (id, resource) in expect
        .get("resources")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let got = rendered
            .resources
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, r)| r);
        if !got.is_some_and(|r| contains(r, resource)) {
            problems.push(format!("resource {id} differs from kro's: {got:?}"));
        }
    }
    if let Some(fragment) = expect.get("instance_contains")
        && !contains_fragment(&rendered.instance, fragment)
    {
        problems.push(format!("instance differs: {}", rendered.instance));
    }
}

/// Every category's count, against floors that only move up as fake-kro catches up with kro.
#[test]
fn kro_own_cases() {
    let mut categories: Vec<(&str, Tally, usize)> = Vec::new();
    let mut builder = Tally::default();
    for file in ["builder.yaml", "validation.yaml", "validation-omit.yaml"] {
        admission(file, &mut builder);
    }
    categories.push(("builder/validation", builder, 168));
    let mut cel = Tally::default();
    cel_cases(&data_dir().join("cel.yaml"), &mut cel);
    categories.push(("cel", cel, 130));
    let mut simple = Tally::default();
    simpleschema_cases(&mut simple);
    categories.push(("simpleschema", simple, 55));
    let mut crd = Tally::default();
    crd_cases(&mut crd);
    categories.push(("crd", crd, 11));
    let mut e2e = Tally::default();
    e2e_cases(&mut e2e);
    categories.push(("e2e", e2e, 16));
    let verbose = std::env::var_os("KRO_CASES_VERBOSE").is_some();
    let mut below = Vec::new();
    for (category, tally, floor) in &categories {
        println!(
            "kro cases {category}: {}/{} verdicts match kro ({} with kro's exact text or result)",
            tally.matched, tally.total, tally.exact
        );
        if verbose {
            for mismatch in &tally.mismatches {
                println!("  {mismatch}");
            }
        }
        if tally.matched < *floor {
            below.push(format!("{category}: {} < {floor}", tally.matched));
        }
    }
    assert!(below.is_empty(), "categories below their floor: {below:?}");
}

/// fake-kro's own CEL library rows (`tests/data/cel-library.yaml`, results from kro v0.9.3): every
/// one gives kro's exact result or error text.
#[test]
fn cel_library_edge_cases() {
    let mut tally = Tally::default();
    cel_cases(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cel-library.yaml"),
        &mut tally,
    );
    assert!(tally.total > 30, "rows missing: {}", tally.total);
    assert_eq!(
        tally.exact, tally.total,
        "rows differing from kro: {:#?}",
        tally.mismatches
    );
}
