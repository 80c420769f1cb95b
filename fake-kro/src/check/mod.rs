//! The offline RGD checker (kro.md §7): kro's build checks in kro's order, the Kany8s status
//! contract, and pitfall warnings. Each diagnostic names the RGD path it is about.

mod typed;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock};

use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::catalog::Catalog;
use crate::celtype::{self, CelType};
use crate::crd;
use crate::expr::{self, Scanned};
use crate::graph::strings_of;
use crate::locate::child;
use crate::simpleschema::{self, KroVersion};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub id: String,
    pub severity: Severity,
    /// The RGD path the finding is about (`spec.resources[1].template.metadata.name`).
    pub path: String,
    pub message: String,
}

/// Which Kany8s status contract the RGD must meet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Contract {
    #[default]
    None,
    ControlPlane,
    Infrastructure,
}

#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    pub version: KroVersion,
    pub contract: Contract,
    /// Collect every error instead of stopping at the first (kro stops at the first).
    pub all_errors: bool,
    /// The kinds templates resolve against (built-in kinds, plus CRDs given with `--crds` or
    /// read from the API server).
    pub catalog: Arc<Catalog>,
    /// kro's `CELOmitFunction` feature gate (off by default, as in kro).
    pub omit_function: bool,
    /// The RGD as it stands before this update: its CRD is compared with the new one as kro
    /// compares the stored CRD (K1, kro.md §7.6).
    pub previous: Option<Arc<Value>>,
}

/// kro's reserved words beyond CEL's (`decl::CEL_RESERVED`), which ids and iterators may not use.
const KRO_RESERVED: &[&str] = &[
    "apiVersion",
    "context",
    "dependency",
    "dependencies",
    "each",
    "externalRef",
    "externalReference",
    "externalRefs",
    "externalReferences",
    "graph",
    "instance",
    "item",
    "items",
    "kind",
    "kro",
    "metadata",
    "object",
    "resource",
    "resourcegraphdefinition",
    "resourceGraphDefinition",
    "resources",
    "root",
    "runtime",
    "schema",
    "self",
    "serviceAccountName",
    "spec",
    "status",
    "this",
    "variables",
    "vars",
    "version",
];

fn is_reserved(word: &&str) -> bool {
    crate::typecheck::decl::CEL_RESERVED.contains(word) || KRO_RESERVED.contains(word)
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|_| unreachable!("constant pattern"))
}

static KIND_PATTERN: LazyLock<Regex> = LazyLock::new(|| regex(r"^[A-Z][a-zA-Z0-9]{0,62}$"));
static API_VERSION_PATTERN: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^v[0-9]+(alpha[0-9]+|beta[0-9]+)?$"));
static UPPER_CAMEL: LazyLock<Regex> = LazyLock::new(|| regex(r"^[A-Z][a-zA-Z0-9]*$"));
static LOWER_CAMEL: LazyLock<Regex> = LazyLock::new(|| regex(r"^[a-z][a-zA-Z0-9]*$"));
static ZERO_OMITTED: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"[A-Za-z0-9_]\.status\.(readyReplicas|availableReplicas|replicas|loadBalancer\.ingress)")
});
static SINGLE_QUOTED_BRACE: LazyLock<Regex> = LazyLock::new(|| regex(r"'[^']*[{}][^']*'"));

struct Checker<'a> {
    rgd: &'a Value,
    options: CheckOptions,
    out: Vec<Diagnostic>,
    /// The inferred type of each status field, from the status stage.
    status_types: BTreeMap<String, CelType>,
    /// The resources V4 built, in `spec.resources` order.
    nodes: Vec<typed::Node>,
}

/// Every `${…}` string of a template, with its path.
fn template_strings(value: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) if s.contains("${") => out.push((path.to_string(), s.clone())),
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| template_strings(v, &child(path, k), out)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| template_strings(v, &format!("{path}[{i}]"), out)),
        _ => {}
    }
}

impl<'a> Checker<'a> {
    fn error(&mut self, id: &str, path: &str, message: impl Into<String>) {
        self.out.push(Diagnostic {
            id: id.into(),
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
        });
    }

    fn warn(&mut self, id: &str, path: &str, message: impl Into<String>) {
        self.out.push(Diagnostic {
            id: id.into(),
            severity: Severity::Warning,
            path: path.into(),
            message: message.into(),
        });
    }

    /// The instance spec's OpenAPI schema from the RGD's SimpleSchema (`spec` and `types`).
    fn spec_schema(&self) -> Result<Value, String> {
        let object = |pointer: &str| {
            self.rgd
                .pointer(pointer)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        simpleschema::spec_schema(
            &object("/spec/schema/spec"),
            &object("/spec/schema/types"),
            self.options.version,
        )
    }

    /// Whether the pipeline stops here (an error and not collecting all).
    fn stop(&self) -> bool {
        !self.options.all_errors && self.out.iter().any(|d| d.severity == Severity::Error)
    }

    fn resources(&self) -> Vec<(usize, &'a Value)> {
        let rgd: &'a Value = self.rgd;
        rgd.pointer("/spec/resources")
            .and_then(Value::as_array)
            .map(|r| r.iter().enumerate().collect())
            .unwrap_or_default()
    }

    fn run(&mut self) {
        let stages: [fn(&mut Self); 13] = [
            Self::api_server_schema,
            Self::naming,
            Self::for_each,
            Self::resources_build,
            Self::simple_schema,
            Self::dependency_graph,
            Self::omit_identity,
            Self::typed_resources,
            Self::status,
            Self::typed_status,
            Self::author_conditions,
            Self::breaking_changes,
            Self::contract,
        ];
        for stage in stages {
            stage(self);
            if self.stop() {
                break;
            }
        }
        self.pitfalls();
    }

    /// K1: an update whose CRD would break the instances of the previous one is refused by kro
    /// when it ensures the CRD (`KindReady=False`), unless the RGD allows breaking changes.
    fn breaking_changes(&mut self) {
        let Some(previous) = self.options.previous.clone() else {
            return;
        };
        let allowed = self
            .rgd
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(crate::compat::ALLOW_BREAKING_CHANGES))
            .and_then(Value::as_str)
            == Some("true");
        let options = crate::crd::CrdOptions::default();
        let (Ok(old), Ok(new)) = (
            crate::crd::generate(&previous, &options),
            crate::crd::generate(self.rgd, &options),
        ) else {
            return;
        };
        let name = new
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if old.pointer("/metadata/name").and_then(Value::as_str) != Some(name.as_str()) {
            return;
        }
        match crate::compat::compare_crds(&old, &new) {
            Err(e) => self.error(
                "K1",
                "spec.schema",
                format!("failed to check schema compatibility: {e}"),
            ),
            Ok(report) if !report.breaking.is_empty() && !allowed => self.error(
                "K1",
                "spec.schema",
                format!(
                    "cannot update CRD {name}: breaking changes detected: {}",
                    report.summary()
                ),
            ),
            Ok(_) => {}
        }
    }

    /// V0: what the API server rejects on apply (the RGD CRD's own schema).
    fn api_server_schema(&mut self) {
        let rgd: &'a Value = self.rgd;
        let Some(schema) = rgd.pointer("/spec/schema").filter(|s| s.is_object()) else {
            self.error("V0", "spec.schema", "spec.schema: Required value");
            return;
        };
        for (field, pattern, text) in [
            ("kind", &*KIND_PATTERN, "^[A-Z][a-zA-Z0-9]{0,62}$"),
            (
                "apiVersion",
                &*API_VERSION_PATTERN,
                "^v[0-9]+(alpha[0-9]+|beta[0-9]+)?$",
            ),
        ] {
            let path = format!("spec.schema.{field}");
            match schema.get(field).and_then(Value::as_str) {
                None => self.error("V0", &path, format!("{path}: Required value")),
                Some(value) if !pattern.is_match(value) => self.error(
                    "V0",
                    &path,
                    format!(
                        "{path}: Invalid value: \"{value}\": {path} in body should match '{text}'"
                    ),
                ),
                Some(_) => {}
            }
        }
        if let Some(scope) = schema.get("scope").and_then(Value::as_str)
            && !matches!(scope, "Namespaced" | "Cluster")
        {
            self.error("V0", "spec.schema.scope", format!("spec.schema.scope: Unsupported value: \"{scope}\": supported values: \"Namespaced\", \"Cluster\""));
        }
        for (i, resource) in self.resources() {
            let path = format!("spec.resources[{i}]");
            if resource.get("id").and_then(Value::as_str).is_none() {
                self.error(
                    "V0",
                    &format!("{path}.id"),
                    format!("{path}.id: Required value"),
                );
            }
            if resource.get("template").is_some() == resource.get("externalRef").is_some() {
                self.error("V0", &path, format!("{path}: Invalid value: \"object\": exactly one of template or externalRef must be provided"));
            }
        }
    }

    /// V1, V2: kind and resource id naming.
    fn naming(&mut self) {
        let kind = self
            .rgd
            .pointer("/spec/schema/kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !UPPER_CAMEL.is_match(&kind) {
            self.error("V1", "spec.schema.kind", format!("failed to validate resourcegraphdefinition: naming convention violation: kind '{kind}' is not a valid KRO kind name: must be UpperCamelCase"));
        }
        let mut seen = BTreeSet::new();
        for (i, resource) in self.resources() {
            let Some(id) = resource
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                continue;
            };
            let path = format!("spec.resources[{i}].id");
            let prefix = "failed to validate resourcegraphdefinition: naming convention violation:";
            if is_reserved(&id.as_str()) {
                self.error(
                    "V2",
                    &path,
                    format!("{prefix} id {id} is a reserved keyword in KRO"),
                );
            } else if !LOWER_CAMEL.is_match(&id) {
                self.error(
                    "V2",
                    &path,
                    format!(
                        "{prefix} id {id} is not a valid KRO resource id: must be lower camelCase"
                    ),
                );
            } else if !seen.insert(id.clone()) {
                self.error(
                    "V2",
                    &path,
                    format!("{prefix} found duplicate resource IDs {id}"),
                );
            }
        }
    }

    /// V3: forEach dimensions and iterator names.
    fn for_each(&mut self) {
        let ids: BTreeSet<String> = self
            .resources()
            .iter()
            .filter_map(|(_, r)| r.get("id")?.as_str().map(str::to_string))
            .collect();
        for (i, resource) in self.resources() {
            let Some(dimensions) = resource.get("forEach").and_then(Value::as_array) else {
                continue;
            };
            let id = resource
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let path = format!("spec.resources[{i}].forEach");
            let prefix = format!("failed to validate resourcegraphdefinition: resource \"{id}\":");
            if dimensions.len() > 10 {
                self.error(
                    "V3",
                    &path,
                    format!(
                        "{prefix} forEach cannot have more than 10 dimensions, got {}",
                        dimensions.len()
                    ),
                );
            }
            let mut seen = BTreeSet::new();
            for dimension in dimensions {
                for iterator in dimension
                    .as_object()
                    .map(|m| m.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
                {
                    if is_reserved(&iterator.as_str()) {
                        self.error("V3", &path, format!("{prefix} forEach iterator name \"{iterator}\" is a reserved keyword"));
                    } else if !LOWER_CAMEL.is_match(&iterator) {
                        self.error("V3", &path, format!("{prefix} forEach iterator name \"{iterator}\" is not valid: must be lowerCamelCase"));
                    } else if ids.contains(&iterator) {
                        self.error("V3", &path, format!("{prefix} forEach iterator name \"{iterator}\" conflicts with resource ID"));
                    } else if !seen.insert(iterator.clone()) {
                        self.error(
                            "V3",
                            &path,
                            format!("{prefix} duplicate forEach iterator name \"{iterator}\""),
                        );
                    }
                }
            }
        }
    }

    /// V4: each resource's shape, labels, standalone conditions and `${…}` scanning.
    fn resources_build(&mut self) {
        for (i, resource) in self.resources() {
            let id = resource
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let base = format!("spec.resources[{i}]");
            let wrap = |m: &str| format!("failed to build resource \"{id}\": {m}");
            if resource.get("externalRef").is_some() && resource.get("forEach").is_some() {
                self.error("V4", &base, wrap(&format!("invalid combination of resource fields: resource \"{id}\": cannot use externalRef with forEach")));
                continue;
            }
            let Some(object) = resource
                .get("template")
                .or_else(|| resource.get("externalRef"))
            else {
                continue;
            };
            let reported = self.out.len();
            let object_path = if resource.get("template").is_some() {
                format!("{base}.template")
            } else {
                format!("{base}.externalRef")
            };
            for (field, kind) in [
                ("apiVersion", "a string"),
                ("kind", "a string"),
                ("metadata", "a map"),
            ] {
                let value = object.get(field);
                let valid = match field {
                    "metadata" => value.is_some_and(Value::is_object),
                    _ => value.is_some_and(Value::is_string),
                };
                if value.is_none() {
                    self.error("V4", &object_path, wrap(&format!("resource {id} is not a valid Kubernetes object: {field} field not found")));
                } else if !valid {
                    let text = if kind == "a map" {
                        "is not a map"
                    } else {
                        "is not a string"
                    };
                    self.error(
                        "V4",
                        &child(&object_path, field),
                        wrap(&format!(
                            "resource {id} is not a valid Kubernetes object: {field} field {text}"
                        )),
                    );
                }
            }
            if self.out.len() > reported {
                continue;
            }
            if let Some(node) = self.build_node(i, resource, object, &object_path) {
                self.nodes.push(node);
            }
        }
    }

    /// V5: SimpleSchema.
    fn simple_schema(&mut self) {
        let name = self
            .rgd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Err(e) = self.spec_schema() {
            let path = e
                .strip_prefix("field ")
                .and_then(|rest| rest.split_once(':'))
                .map_or_else(
                    || "spec.schema.spec".to_string(),
                    |(field, _)| format!("spec.schema.spec.{field}"),
                );
            self.error("V5", &path, format!("failed to build resourcegraphdefinition \"{name}\": failed to build OpenAPI schema for instance: {e}"));
        }
    }

    /// V8, V10: the status schema.
    fn status(&mut self) {
        let spec_schema = self.spec_schema().unwrap_or_default();
        match crd::status_schema(self.rgd, &spec_schema, self.options.version) {
            Ok((_, inferred)) => self.status_types = inferred.into_iter().collect(),
            Err(e) => {
                let id = if e.starts_with("failed to create instance node") {
                    "V10"
                } else {
                    "V8"
                };
                let path =
                    quoted_status_path(&e).unwrap_or_else(|| "spec.schema.status".to_string());
                self.error(id, &path, e);
            }
        }
    }

    /// C1–C6: the Kany8s status contract (provider.md §8).
    fn contract(&mut self) {
        if self.options.contract == Contract::None {
            return;
        }
        let status: Map<String, Value> = self
            .rgd
            .pointer("/spec/schema/status")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let types = self.status_types.clone();
        let path = |f: &str| format!("spec.schema.status.{f}");
        if status.contains_key("state") || status.contains_key("conditions") {
            self.error(
                "C6",
                "spec.schema.status",
                "contract: status.state and status.conditions are owned by kro",
            );
        }
        let expect = |this: &mut Self,
                      field: &str,
                      expected: &CelType,
                      required: bool,
                      id: &str| match types.get(field) {
            None if required => this.error(
                id,
                "spec.schema.status",
                format!("contract: status.{field} is required"),
            ),
            None => {}
            Some(CelType::Dyn) => this.warn(
                id,
                &path(field),
                format!(
                    "contract: status.{field} could not be typed; expected {}",
                    expected.name()
                ),
            ),
            Some(t) if t != expected && required => this.error(
                id,
                &path(field),
                format!(
                    "contract: status.{field} must be {}, inferred {}",
                    friendly(expected),
                    t.name()
                ),
            ),
            Some(t) if t != expected => this.warn(
                id,
                &path(field),
                format!(
                    "contract: status.{field} should be {}, inferred {}",
                    friendly(expected),
                    t.name()
                ),
            ),
            Some(_) => {}
        };
        expect(self, "ready", &CelType::Bool, true, "C1");
        if self.options.contract == Contract::ControlPlane {
            expect(self, "endpoint", &CelType::String, true, "C2");
            let spec = self
                .rgd
                .pointer("/spec/schema/spec")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            match spec.get("version") {
                None => self.error(
                    "C3",
                    "spec.schema.spec",
                    "contract: spec.version is required",
                ),
                Some(Value::String(t)) if !t.trim_start().starts_with("string") => self.warn(
                    "C3",
                    "spec.schema.spec.version",
                    "contract: spec.version should be string",
                ),
                Some(Value::Object(_)) => self.warn(
                    "C3",
                    "spec.schema.spec.version",
                    "contract: spec.version should be string",
                ),
                Some(_) => {}
            }
        } else if let Some(t) = types
            .get("endpoint")
            .filter(|t| **t != CelType::String && **t != CelType::Dyn)
        {
            self.warn(
                "C2",
                &path("endpoint"),
                format!(
                    "contract: status.endpoint should be string, inferred {}",
                    t.name()
                ),
            );
        }
        expect(self, "reason", &CelType::String, false, "C5");
        expect(self, "message", &CelType::String, false, "C5");
        expect(self, "terminal", &CelType::Bool, false, "C5");
        expect(self, "version", &CelType::String, false, "C5");
        if let Some(t) = types.get("kubeconfigSecretRef")
            && !matches!(t, CelType::Map(_) | CelType::Schema(_) | CelType::Dyn)
        {
            self.warn(
                "C5",
                &path("kubeconfigSecretRef"),
                format!(
                    "contract: status.kubeconfigSecretRef should be an object, inferred {}",
                    t.name()
                ),
            );
        }
        // C4: contract fields must not depend on conditional resources.
        let conditional: BTreeSet<String> = self
            .resources()
            .iter()
            .filter(|(_, r)| r.get("includeWhen").is_some())
            .filter_map(|(_, r)| r.get("id")?.as_str().map(str::to_string))
            .collect();
        for field in ["ready", "endpoint"] {
            let Some(text) = status.get(field).and_then(Value::as_str) else {
                continue;
            };
            let Ok(Scanned::Standalone(e)) = expr::scan(text) else {
                continue;
            };
            let Ok(parsed) = celtype::parse(&e) else {
                continue;
            };
            for id in celtype::identifiers(&parsed).intersection(&conditional) {
                self.warn("C4", &path(field), format!("contract: status.{field} depends on conditional resource {id}; it disappears when the resource is excluded"));
            }
        }
    }

    /// Pitfall warnings (kro.md §7.4).
    fn pitfalls(&mut self) {
        let mut status_strings = Vec::new();
        if let Some(status) = self.rgd.pointer("/spec/schema/status") {
            template_strings(status, "spec.schema.status", &mut status_strings);
        }
        for (path, text) in &status_strings {
            if text.contains(".?") && !text.contains(".orValue(") {
                self.warn("W-OPT-NO-DEFAULT", path, "optional chain without .orValue(): the field is typed as preserve-unknown and is absent while the value is missing");
            }
        }
        let mut all_strings = status_strings.clone();
        for (i, resource) in self.resources() {
            if let Some(template) = resource.get("template") {
                template_strings(
                    template,
                    &format!("spec.resources[{i}].template"),
                    &mut all_strings,
                );
            }
            for field in ["readyWhen", "includeWhen"] {
                for (j, text) in strings_of(resource.get(field)).into_iter().enumerate() {
                    all_strings.push((format!("spec.resources[{i}].{field}[{j}]"), text));
                }
            }
        }
        for (path, text) in &all_strings {
            if ZERO_OMITTED.is_match(text) {
                self.warn("W-ZERO-OMITTED", path, "this status counter is omitted while it is zero; read it with .? and orValue(0) or it stays pending");
            }
            if SINGLE_QUOTED_BRACE.is_match(text) {
                self.warn("W-SINGLE-QUOTE-BRACE", path, "a brace inside a single-quoted literal ends the ${...} expression early; use double quotes");
            }
        }
        if let Some(spec) = self.rgd.pointer("/spec/schema/spec") {
            let mut defaults = Vec::new();
            template_defaults(spec, "spec.schema.spec", &mut defaults);
            for (path, text) in defaults {
                if text.contains("string")
                    && (text.contains("default=\"") || text.contains("default="))
                    && let Some(value) = text.split("default=").nth(1)
                {
                    let value = value.trim_start_matches('"');
                    let raw: String = value
                        .chars()
                        .take_while(|c| *c != '"' && !c.is_whitespace())
                        .collect();
                    if raw.contains('\\') {
                        self.warn("W-DEFAULT-JSON", &path, "a string default with a quote or backslash makes kro write invalid JSON into the CRD");
                    }
                }
            }
        }
    }
}

fn template_defaults(value: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) => out.push((path.to_string(), s.clone())),
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| template_defaults(v, &child(path, k), out)),
        _ => {}
    }
}

fn friendly(t: &CelType) -> &'static str {
    match t {
        CelType::Bool => "boolean",
        CelType::String => "string",
        _ => "typed",
    }
}

/// The status path a status-schema error names (`status field "a.b"` / `status.a.b`).
fn quoted_status_path(message: &str) -> Option<String> {
    if let Some(rest) = message.split("status field \"").nth(1) {
        return rest
            .split('"')
            .next()
            .map(|p| format!("spec.schema.status.{p}"));
    }
    message
        .rsplit("status.")
        .next()
        .filter(|_| message.contains(": status."))
        .map(|p| format!("spec.schema.status.{p}"))
}

/// Checks one RGD.
pub fn check(rgd: &Value, options: &CheckOptions) -> Vec<Diagnostic> {
    let mut checker = Checker {
        rgd,
        options: options.clone(),
        out: Vec::new(),
        status_types: BTreeMap::new(),
        nodes: Vec::new(),
    };
    checker.run();
    checker.out
}
