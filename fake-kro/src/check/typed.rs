//! kro's schema-aware build stages (kro.md §7.1): each resource's kind resolved against the
//! catalog (V4: apiVersion, schema, scope rules, `${…}` fields found beside the kind's schema),
//! the dependency inspection (V6: unknown identifiers and functions, the `omit()` gate, `runtime`,
//! forEach iterators), and every expression type-checked with kro's CEL environment (V7 resources,
//! V8 status).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Value, json};

use super::Checker;
use crate::expr::{self, Scanned};
use crate::graph::strings_of;
use crate::simpleschema::find_cycle;
use crate::typecheck::fields::{self, Field};
use crate::typecheck::inspect::{Inspection, inspect};
use crate::typecheck::{Env, Type, check as type_check, compat, decl};
use kube_cel::cel::common::ast::{CallExpr, EntryExpr, Expr, IdedExpr, LiteralValue};

/// What the build stages learn about one resource.
#[derive(Clone, Debug)]
pub(super) struct Node {
    pub id: String,
    /// `spec.resources[i]`.
    pub base: String,
    /// The kind's schema; `None` when no schema is known (kro would fail; fake-kro warns).
    pub schema: Option<Value>,
    pub namespaced: bool,
    /// A forEach collection or a selector external reference (referenced as a list).
    pub collection: bool,
    pub for_each: bool,
    pub fields: Vec<Field>,
    /// (iterator, expression) of each forEach dimension.
    pub iterators: Vec<(String, String)>,
    pub include_when: Vec<String>,
    pub ready_when: Vec<String>,
    pub dependencies: Vec<String>,
    /// An earlier stage reported this resource: later stages leave it alone (in `--all` mode an
    /// unknown identifier would otherwise be reported again as a type error).
    pub reported: bool,
}

const DNS_1035_MESSAGE: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

static DNS_1035: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z]([-a-z0-9]*[a-z0-9])?$").unwrap_or_else(|_| unreachable!("constant"))
});

/// kro's GVK extraction (`ExtractGVKFromUnstructured`): apiVersion parsed as Kubernetes parses a
/// GroupVersion, the kind a DNS-1035 label once lowercased.
fn extract_gvk(api_version: &str, kind: &str) -> Result<(String, String), String> {
    let (group, version) = match api_version.matches('/').count() {
        0 => ("", api_version),
        1 => api_version.split_once('/').unwrap_or(("", api_version)),
        _ => {
            return Err(format!(
                "invalid apiVersion format \"{api_version}\": unexpected GroupVersion string: {api_version}"
            ));
        }
    };
    let lower = kind.to_lowercase();
    let mut problems = Vec::new();
    if lower.len() > 63 {
        problems.push("must be no more than 63 characters".to_string());
    }
    if !DNS_1035.is_match(&lower) {
        problems.push(DNS_1035_MESSAGE.to_string());
    }
    if !problems.is_empty() {
        return Err(format!(
            "invalid kind \"{kind}\": {} (must be a valid DNS-1035 label when lowercased)",
            problems.join(", ")
        ));
    }
    Ok((group.to_string(), version.to_string()))
}

/// The expression inside each standalone `${…}` of a list (others are reported by V4).
fn standalone(values: &[String]) -> Vec<String> {
    values
        .iter()
        .filter_map(|v| match expr::scan(v) {
            Ok(Scanned::Standalone(e)) => Some(e),
            _ => None,
        })
        .collect()
}

fn known_identifiers(ids: &[String]) -> BTreeSet<String> {
    ids.iter()
        .cloned()
        .chain(["schema", "each", "runtime"].map(String::from))
        .collect()
}

/// Why an expression's references fail kro's `extractDependencies`.
fn dependency_error(
    inspection: &Inspection,
    iterators: &[String],
    omit_enabled: bool,
) -> Option<String> {
    if !omit_enabled && inspection.uses_omit() {
        return Some("omit() requires the CELOmitFunction feature gate to be enabled".into());
    }
    if inspection.dependencies.iter().any(|d| d == "runtime") {
        return Some("runtime is only available in status.conditions expressions".into());
    }
    if let Some(unknown) = inspection
        .unknown_identifiers
        .iter()
        .find(|u| !iterators.contains(u))
    {
        return Some(format!("references unknown identifiers: [{unknown}]"));
    }
    if !inspection.unknown_functions.is_empty() {
        return Some(format!(
            "uses unknown functions: [{}]",
            inspection.unknown_functions.join(" ")
        ));
    }
    None
}

/// kro's `inspectExpressionRestricted`: only `allowed` may be referenced, no unknown function,
/// no `omit()`.
fn restricted(expression: &str, known: &BTreeSet<String>, allowed: &[&str]) -> Result<(), String> {
    let inspection = inspect(expression, known)?;
    if let Some(d) = inspection
        .dependencies
        .iter()
        .find(|d| !allowed.contains(&d.as_str()))
    {
        return Err(format!("references unknown identifiers: [{d}]"));
    }
    if !inspection.unknown_identifiers.is_empty() {
        return Err(format!(
            "references unknown identifiers: [{}]",
            inspection.unknown_identifiers.join(" ")
        ));
    }
    if !inspection.unknown_functions.is_empty() {
        return Err(format!(
            "uses unknown functions: [{}]",
            inspection.unknown_functions.join(" ")
        ));
    }
    if inspection.uses_omit() {
        return Err("omit() can only be used in resource template expressions".into());
    }
    Ok(())
}

/// kro's `IsBoolOrOptionalBool`.
fn bool_or_optional_bool(t: &Type) -> bool {
    Type::Bool.accepts(t) || Type::optional(Type::Bool).accepts(t)
}

impl Checker<'_> {
    fn instance_namespaced(&self) -> bool {
        self.rgd
            .pointer("/spec/schema/scope")
            .and_then(Value::as_str)
            != Some("Cluster")
    }

    /// V4 from the GVK on: extraction, schema, scope rules, labels, the template's `${…}` fields,
    /// readyWhen/includeWhen/forEach unwrapping. `None` when an error was reported.
    pub(super) fn build_node(
        &mut self,
        index: usize,
        resource: &Value,
        object: &Value,
        object_path: &str,
    ) -> Option<Node> {
        let id = resource
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let base = format!("spec.resources[{index}]");
        let wrap = |m: &str| format!("failed to build resource \"{id}\": {m}");
        let api_version = object.get("apiVersion").and_then(Value::as_str)?;
        let kind = object.get("kind").and_then(Value::as_str)?;
        let external = resource.get("externalRef").is_some();
        let mut node = Node {
            id: id.clone(),
            base: base.clone(),
            schema: None,
            namespaced: !crate::kinds::cluster_scoped(api_version, kind),
            collection: resource.get("forEach").is_some()
                || (external && object.pointer("/metadata/selector").is_some()),
            for_each: resource.get("forEach").is_some(),
            fields: Vec::new(),
            iterators: Vec::new(),
            include_when: standalone(&strings_of(resource.get("includeWhen"))),
            ready_when: standalone(&strings_of(resource.get("readyWhen"))),
            dependencies: Vec::new(),
            reported: false,
        };
        let templated = api_version.contains("${") || kind.contains("${");
        let mut resolved = None;
        if !templated {
            let (group, version) = match extract_gvk(api_version, kind) {
                Ok(gv) => gv,
                Err(e) => {
                    self.error(
                        "V4",
                        object_path,
                        wrap(&format!("failed to extract GVK from resource {id}: {e}")),
                    );
                    return None;
                }
            };
            resolved = self.options.catalog.resolve(api_version, kind);
            if resolved.is_none() && self.options.catalog.is_closed() {
                self.error("V4", object_path, wrap(&format!("failed to get schema for resource {id}: schema not found for GVK: {group}/{version}, Kind={kind}")));
                return None;
            }
            if resolved.is_none() && self.options.catalog.is_served_only() {
                let served = self.options.catalog.serves_api_version(api_version);
                self.error(
                    "V4",
                    object_path,
                    wrap(&crate::catalog::unserved_kind(
                        &id,
                        api_version,
                        kind,
                        served,
                    )),
                );
                return None;
            }
            if resolved.is_none() {
                self.warn("W-GVK-UNKNOWN", object_path, format!("kro would fail: failed to get schema for resource {id} ({api_version}, Kind={kind}) unless the cluster serves it"));
            }
        }
        if let Some(found) = &resolved {
            node.namespaced = found.namespaced;
            node.schema = Some(found.schema.clone());
            let namespace = object.pointer("/metadata/namespace");
            let namespace_path = super::child(object_path, "metadata.namespace");
            if !found.namespaced && namespace.is_some() {
                self.error(
                    "V4",
                    &namespace_path,
                    wrap(&format!(
                        "resource \"{id}\" is cluster-scoped and must not set metadata.namespace"
                    )),
                );
                return None;
            }
            let selector = external && object.pointer("/metadata/selector").is_some();
            let blank = namespace
                .and_then(Value::as_str)
                .is_none_or(|n| n.trim().is_empty());
            if found.namespaced && !self.instance_namespaced() && !selector && blank {
                self.error("V4", object_path, wrap(&format!("resource \"{id}\" is namespaced and must set metadata.namespace when the instance CRD is cluster-scoped")));
                return None;
            }
        }
        if let Some(labels) = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            && labels.keys().any(|k| k.starts_with("kro.run/"))
        {
            self.error("V4", &super::child(object_path, "metadata.labels"), wrap(&format!("invalid label for resource \"{id}\". labels with prefix \"kro.run/\" are reserved for internal use")));
            return None;
        }
        let crd = api_version == "apiextensions.k8s.io/v1" && kind == "CustomResourceDefinition";
        let parsed = if external {
            fields::schemaless(object, "")
                .map(|(f, _)| f)
                .map_err(|e| format!("failed to parse external ref resource {id}: {e}"))
        } else if crd {
            fields::schemaless(object, "")
                .map(|(f, _)| f)
                .map_err(|e| format!("failed to parse schemaless resource {id}: {e}"))
                .and_then(|found| match found.iter().find(|f| !f.path.starts_with("metadata.")) {
                    Some(f) => Err(format!("CEL expressions in CRDs are only supported for metadata fields, found in path \"{}\", resource {id}", f.path)),
                    None => Ok(found),
                })
        } else {
            match &node.schema {
                Some(schema) => fields::with_schema(object, schema),
                None => fields::schemaless(object, "").map(|(f, _)| f),
            }
            .map_err(|e| {
                format!("failed to extract CEL expressions from schema for resource {id}: {e}")
            })
        };
        match parsed {
            Ok(found) => node.fields = found,
            Err(e) => {
                self.error("V4", object_path, wrap(&e));
                return None;
            }
        }
        for field in ["readyWhen", "includeWhen"] {
            for (j, condition) in strings_of(resource.get(field)).iter().enumerate() {
                if !matches!(expr::scan(condition), Ok(Scanned::Standalone(_))) {
                    self.error("V4", &format!("{base}.{field}[{j}]"), wrap(&format!("failed to parse {field} expressions: only standalone expressions are allowed")));
                    return None;
                }
            }
        }
        for dimension in resource
            .get("forEach")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
        {
            for (name, value) in dimension {
                let text = value.as_str().unwrap_or_default();
                match expr::scan(text) {
                    Ok(Scanned::Standalone(e)) => node.iterators.push((name.clone(), e)),
                    _ => {
                        self.error("V4", &format!("{base}.forEach"), wrap(&format!("failed to parse forEach dimensions: invalid forEach expression for dimension \"{name}\": only standalone expressions are allowed")));
                        return None;
                    }
                }
            }
        }
        Some(node)
    }

    /// V6: expressions reference only known identifiers and functions, iterators are used as
    /// kro requires, and the graph is acyclic.
    pub(super) fn dependency_graph(&mut self) {
        let ids: Vec<String> = self.nodes.iter().map(|n| n.id.clone()).collect();
        let known = known_identifiers(&ids);
        let omit_enabled = self.options.omit_function;
        let prefix = "failed to build dependency graph: ";
        let mut edges: BTreeMap<String, BTreeSet<String>> =
            ids.iter().map(|i| (i.clone(), BTreeSet::new())).collect();
        let mut nodes = std::mem::take(&mut self.nodes);
        for node in &mut nodes {
            let iterators: Vec<String> = node.iterators.iter().map(|(n, _)| n.clone()).collect();
            let mut dependencies: Vec<String> = Vec::new();
            let mut in_identity: Vec<String> = Vec::new();
            let mut failed = false;
            let template_path = |f: &Field| format!("{}.template.{}", node.base, f.path);
            for field in &node.fields {
                let problem = match inspect(&field.expression, &known) {
                    Err(e) => Some(format!("failed to inspect expression: {e}")),
                    Ok(inspection) => {
                        let problem = dependency_error(&inspection, &iterators, omit_enabled);
                        let identity = field.path == "metadata.name"
                            || (field.path == "metadata.namespace" && node.namespaced);
                        for u in &inspection.unknown_identifiers {
                            if identity && iterators.contains(u) && !in_identity.contains(u) {
                                in_identity.push(u.clone());
                            }
                        }
                        for d in inspection.distinct_dependencies() {
                            if d != "schema" && !dependencies.contains(&d) {
                                dependencies.push(d);
                            }
                        }
                        problem
                    }
                };
                if let Some(p) = problem {
                    self.error(
                        "V6",
                        &template_path(field),
                        format!("{prefix}failed to extract dependencies: {p}"),
                    );
                    failed = true;
                    break;
                }
            }
            node.reported = failed;
            if failed {
                continue;
            }
            let missing: Vec<&String> = iterators
                .iter()
                .filter(|i| !in_identity.contains(i))
                .collect();
            if !missing.is_empty() {
                let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                self.error("V6", &format!("{}.forEach", node.base), format!("{prefix}node \"{}\": all forEach dimensions must be used to produce a unique resource identity, missing: [{}]", node.id, names.join(" ")));
                node.reported = true;
                continue;
            }
            for (name, expression) in &node.iterators {
                let problem = match inspect(expression, &known) {
                    Err(e) => Some(format!(
                        "failed to extract dependencies from forEach iterator \"{name}\": failed to inspect expression: {e}"
                    )),
                    Ok(inspection) => {
                        let refs: Vec<&String> = inspection
                            .unknown_identifiers
                            .iter()
                            .filter(|u| iterators.contains(u))
                            .collect();
                        if let Some(p) = dependency_error(&inspection, &iterators, omit_enabled) {
                            Some(format!(
                                "failed to extract dependencies from forEach iterator \"{name}\": {p}"
                            ))
                        } else if !refs.is_empty() {
                            let refs: Vec<&str> = refs.iter().map(|s| s.as_str()).collect();
                            Some(format!(
                                "node \"{}\": forEach iterator \"{name}\" cannot reference other iterators [{}] - forEach iterators are independent (cartesian product)",
                                node.id,
                                refs.join(" ")
                            ))
                        } else {
                            for d in inspection.distinct_dependencies() {
                                if d != "schema" && !dependencies.contains(&d) {
                                    dependencies.push(d);
                                }
                            }
                            None
                        }
                    }
                };
                if let Some(p) = problem {
                    self.error(
                        "V6",
                        &format!("{}.forEach", node.base),
                        format!("{prefix}{p}"),
                    );
                    node.reported = true;
                    failed = true;
                    break;
                }
            }
            if failed {
                continue;
            }
            for (j, expression) in node.include_when.iter().enumerate() {
                let problem = match inspect(expression, &known) {
                    Err(e) => Some(format!("failed to inspect expression: {e}")),
                    Ok(inspection) => {
                        for d in inspection.distinct_dependencies() {
                            if d != "schema" && !dependencies.contains(&d) {
                                dependencies.push(d);
                            }
                        }
                        dependency_error(&inspection, &[], omit_enabled)
                    }
                };
                if let Some(p) = problem {
                    self.error(
                        "V6",
                        &format!("{}.includeWhen[{j}]", node.base),
                        format!("{prefix}failed to extract dependencies from includeWhen: {p}"),
                    );
                    node.reported = true;
                    failed = true;
                    break;
                }
            }
            if failed {
                continue;
            }
            for dependency in &dependencies {
                if *dependency == node.id {
                    self.error(
                        "V6",
                        &format!("{}.template", node.base),
                        format!("{prefix}self references are not allowed"),
                    );
                } else if let Some(e) = edges.get_mut(&node.id)
                    && ids.contains(dependency)
                {
                    e.insert(dependency.clone());
                }
            }
            node.dependencies = dependencies;
        }
        self.nodes = nodes;
        if let Some(cycle) = find_cycle(&edges) {
            self.error(
                "V6",
                "spec.resources",
                format!("{prefix}graph contains a cycle: {}", cycle.join(" -> ")),
            );
        }
    }

    /// With the `CELOmitFunction` gate on: `omit()` never fills an identity field.
    pub(super) fn omit_identity(&mut self) {
        if !self.options.omit_function {
            return;
        }
        let ids: Vec<String> = self.nodes.iter().map(|n| n.id.clone()).collect();
        let known = known_identifiers(&ids);
        let instance_namespaced = self.instance_namespaced();
        let nodes = self.nodes.clone();
        for node in &nodes {
            for field in &node.fields {
                let identity = field.path == "metadata.name"
                    || (field.path == "metadata.namespace"
                        && node.namespaced
                        && !instance_namespaced);
                if identity && inspect(&field.expression, &known).is_ok_and(|i| i.uses_omit()) {
                    self.error("V7", &format!("{}.template.{}", node.base, field.path), format!("resource \"{}\": omit() cannot be used at path \"{}\" — the field is required and must resolve to a concrete value", node.id, field.path));
                    return;
                }
            }
        }
    }

    /// The instance as `schema` sees it: spec and metadata (no namespace when cluster-scoped).
    fn instance_schema(&self) -> Value {
        let spec_schema = self
            .spec_schema()
            .unwrap_or_else(|_| json!({"type": "object"}));
        let mut metadata = crate::kinds::object_meta();
        if !self.instance_namespaced()
            && let Some(properties) = metadata
                .get_mut("properties")
                .and_then(Value::as_object_mut)
        {
            properties.remove("namespace");
        }
        json!({"type": "object", "properties": {
            "apiVersion": {"type": "string"}, "kind": {"type": "string"},
            "metadata": metadata, "spec": spec_schema
        }})
    }

    /// kro's typed environment: `schema` and every resource (collections as lists; a kind with
    /// no schema as `dyn`).
    pub(super) fn typed_env(&self) -> Env {
        let mut env =
            Env::default().with("schema", decl::variable(&self.instance_schema(), "schema"));
        for node in &self.nodes {
            let t = match &node.schema {
                None => Type::Dyn,
                Some(schema) if node.collection => {
                    decl::variable(&json!({"type": "array", "items": schema}), &node.id)
                }
                Some(schema) => decl::variable(schema, &node.id),
            };
            env = env.with(&node.id, t);
        }
        env
    }

    /// V7: every resource's forEach, template, includeWhen and readyWhen expressions type-checked.
    pub(super) fn typed_resources(&mut self) {
        let env = self.typed_env();
        let ids: Vec<String> = self.nodes.iter().map(|n| n.id.clone()).collect();
        let known = known_identifiers(&ids);
        let nodes = self.nodes.clone();
        for node in nodes.iter().filter(|n| !n.reported) {
            if let Err((path, message)) = self.typed_node(node, &env, &known) {
                self.error(
                    "V7",
                    &path,
                    format!("failed to validate resource \"{}\": {message}", node.id),
                );
                if self.stop() {
                    return;
                }
            }
        }
    }

    fn typed_node(
        &self,
        node: &Node,
        env: &Env,
        known: &BTreeSet<String>,
    ) -> Result<(), (String, String)> {
        let id = &node.id;
        let mut template_env = env.clone();
        for (name, expression) in &node.iterators {
            let at = || format!("{}.forEach", node.base);
            if inspect(expression, known).is_ok_and(|i| i.uses_omit()) {
                return Err((
                    at(),
                    format!(
                        "node \"{id}\": forEach iterator \"{name}\": omit() can only be used in resource template expressions"
                    ),
                ));
            }
            let output = type_check(expression, env).map_err(|e| {
                (
                    at(),
                    format!("node \"{id}\": forEach iterator \"{name}\": {e}"),
                )
            })?;
            match &output {
                Type::List(element) => template_env = template_env.with(name, (**element).clone()),
                other => {
                    let shown = other.display();
                    return Err((
                        at(),
                        format!(
                            "node \"{id}\": forEach iterator \"{name}\" must return a list, got \"{shown}\": type \"{shown}\" is not a list type"
                        ),
                    ));
                }
            }
        }
        for field in &node.fields {
            let at = format!("{}.template.{}", node.base, field.path);
            let user = field.user_expression();
            let output = type_check(&field.expression, &template_env).map_err(|e| {
                (
                    at.clone(),
                    format!(
                        "failed to compile template expression \"{user}\" at path \"{}\": {e}",
                        field.path
                    ),
                )
            })?;
            if let Some(schema) = &node.schema {
                let expected = fields::expected_type(schema, &field.path, id);
                compat::expression_type(&output, &expected, user, id, &field.path)
                    .map_err(|e| (at.clone(), e))?;
            }
        }
        for (j, expression) in node.include_when.iter().enumerate() {
            let at = format!("{}.includeWhen[{j}]", node.base);
            condition(expression, env, "includeWhen", id).map_err(|e| (at, e))?;
        }
        let (allowed, ready_env) = if node.for_each {
            let each = node
                .schema
                .as_ref()
                .map_or(Type::Dyn, |s| decl::variable(s, "each"));
            ("each", env.clone().with("each", each))
        } else {
            (id.as_str(), env.clone())
        };
        for (j, expression) in node.ready_when.iter().enumerate() {
            let at = format!("{}.readyWhen[{j}]", node.base);
            restricted(expression, known, &[allowed])
                .map_err(|e| (at.clone(), format!("resource \"{id}\" readyWhen: {e}")))?;
            condition(expression, &ready_env, "readyWhen", id).map_err(|e| (at, e))?;
        }
        Ok(())
    }

    /// V9: author conditions (`status.conditions`, kro.md §5.10) as kro builds them: each a
    /// standalone expression, kro's literal rules, references to resources, `schema` and
    /// `runtime` only, typed as a condition or a list of them.
    pub(super) fn author_conditions(&mut self) {
        let Some(entries) = self
            .rgd
            .pointer("/spec/schema/status/conditions")
            .and_then(Value::as_array)
        else {
            return;
        };
        let path = "spec.schema.status.conditions";
        let wrap = |m: String| format!("failed to build instance conditions: {m}");
        let mut expressions = Vec::new();
        for entry in entries {
            // A non-string entry is V8's (the status schema).
            let Some(text) = entry.as_str() else {
                return;
            };
            match expr::scan(text) {
                Ok(Scanned::Standalone(e)) => expressions.push(e),
                _ => {
                    let message =
                        "invalid conditions block: only standalone expressions are allowed";
                    self.error("V9", path, wrap(message.into()));
                    return;
                }
            }
        }
        if let Err(e) = condition_literal_rules(&expressions) {
            self.error("V9", path, wrap(e));
            return;
        }
        let ids: Vec<String> = self.nodes.iter().map(|n| n.id.clone()).collect();
        let known = known_identifiers(&ids);
        let mut allowed: Vec<&str> = ids.iter().map(String::as_str).collect();
        allowed.extend(["schema", "runtime"]);
        for e in &expressions {
            if let Err(why) = restricted(e, &known, &allowed) {
                self.error("V9", path, wrap(format!("condition \"{e}\": {why}")));
                return;
            }
        }
        let runtime = Type::Object(std::sync::Arc::new(crate::typecheck::types::ObjectType {
            name: crate::typecheck::checker::RUNTIME_TYPE.into(),
            fields: BTreeMap::new(),
            preserve_unknown: false,
        }));
        let env = self.typed_env().with("runtime", runtime);
        let is_condition = |t: &Type| match t {
            Type::Object(o) => o.name == crate::typecheck::checker::CONDITION_TYPE,
            other => *other == Type::Dyn,
        };
        for e in &expressions {
            let output = match type_check(e, &env) {
                Ok(output) => output,
                Err(why) => {
                    self.error(
                        "V9",
                        path,
                        wrap(format!("failed to type-check condition \"{e}\": {why}")),
                    );
                    return;
                }
            };
            let element = match &output {
                Type::List(element) => element.as_ref(),
                other => other,
            };
            if !is_condition(element) {
                self.error(
                    "V9",
                    path,
                    wrap(format!(
                        "condition \"{e}\": condition expressions must return runtime.newCondition(...) or a list of them, got \"{}\"",
                        output.display()
                    )),
                );
                return;
            }
        }
    }

    /// V8: each status expression type-checks in kro's environment.
    pub(super) fn typed_status(&mut self) {
        if self.out.iter().any(|d| d.id == "V8" || d.id == "V10") {
            return;
        }
        let Some(status) = self
            .rgd
            .pointer("/spec/schema/status")
            .and_then(Value::as_object)
        else {
            return;
        };
        let mut status = status.clone();
        status.remove("conditions");
        let Ok((found, _)) = fields::schemaless(&Value::Object(status), "") else {
            return;
        };
        let env = self.typed_env();
        // kro inspects (parses) every status expression before it type-checks any.
        for field in &found {
            if let Some(shown) = crate::typecheck::source::parse_errors(&field.expression) {
                self.error("V8", &format!("spec.schema.status.{}", field.path), format!("failed to build instance status schema: status field \"{}\" expression \"{}\": parse error: {shown}", field.path, field.user_expression()));
                if self.stop() {
                    return;
                }
            }
        }
        if self.out.iter().any(|d| d.id == "V8") {
            return;
        }
        for field in found {
            if let Err(e) = type_check(&field.expression, &env) {
                self.error("V8", &format!("spec.schema.status.{}", field.path), format!("failed to build instance status schema: failed to type-check status expression \"{}\" at path \"{}\": {e}", field.user_expression(), field.path));
                if self.stop() {
                    return;
                }
            }
        }
    }
}

/// kro's built-in instance condition types, the only ones author conditions may read from
/// `schema`.
const BUILT_IN_CONDITIONS: [&str; 4] = [
    "Ready",
    "InstanceManaged",
    "GraphResolved",
    "ResourcesReady",
];

/// The calls `runtime.<method>(…)` under an expression, in pre-order.
fn runtime_calls<'e>(expr: &'e IdedExpr, method: &str, out: &mut Vec<&'e CallExpr>) {
    match &expr.expr {
        Expr::Call(call) => {
            if call.func_name == method
                && matches!(call.target.as_deref().map(|t| &t.expr), Some(Expr::Ident(n)) if n == "runtime")
            {
                out.push(call);
            }
            if let Some(target) = &call.target {
                runtime_calls(target, method, out);
            }
            call.args.iter().for_each(|a| runtime_calls(a, method, out));
        }
        Expr::Select(s) => runtime_calls(&s.operand, method, out),
        Expr::List(l) => l
            .elements
            .iter()
            .for_each(|e| runtime_calls(e, method, out)),
        Expr::Map(m) => {
            for entry in &m.entries {
                if let EntryExpr::MapEntry(e) = &entry.expr {
                    runtime_calls(&e.key, method, out);
                    runtime_calls(&e.value, method, out);
                }
            }
        }
        Expr::Comprehension(c) => {
            for part in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                runtime_calls(part, method, out);
            }
        }
        _ => {}
    }
}

fn string_literal(expr: &IdedExpr) -> Option<String> {
    match &expr.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(s.to_string()),
        _ => None,
    }
}

/// The string literal under `key` (a bare or quoted key) of a map literal.
fn map_literal_string(map: &IdedExpr, key: &str) -> Option<String> {
    let Expr::Map(m) = &map.expr else {
        return None;
    };
    m.entries.iter().find_map(|entry| match &entry.expr {
        EntryExpr::MapEntry(e) => {
            let matches = match &e.key.expr {
                Expr::Ident(name) => name == key,
                _ => string_literal(&e.key).as_deref() == Some(key),
            };
            if matches {
                string_literal(&e.value)
            } else {
                None
            }
        }
        _ => None,
    })
}

/// kro's literal rules of author conditions (`validateConditionExpressions`): a literal type
/// declared by two entries, `runtime.condition(schema, 'X')` naming an author type or an
/// unknown one, a literal status outside True/False/Unknown, an empty literal type.
fn condition_literal_rules(expressions: &[String]) -> Result<(), String> {
    let parsed: Vec<Option<IdedExpr>> = expressions
        .iter()
        .map(|e| crate::celtype::parse(e).ok())
        .collect();
    let mut declared = BTreeSet::new();
    for root in parsed.iter().flatten() {
        let mut calls = Vec::new();
        runtime_calls(root, "newCondition", &mut calls);
        let types: BTreeSet<String> = calls
            .iter()
            .filter(|c| c.args.len() == 1)
            .filter_map(|c| map_literal_string(&c.args[0], "type"))
            .collect();
        for t in types {
            if !declared.insert(t.clone()) {
                return Err(format!(
                    "condition type \"{t}\" is declared by more than one conditions entry"
                ));
            }
        }
    }
    for (root, text) in parsed.iter().zip(expressions) {
        let Some(root) = root else {
            continue;
        };
        let quoted = expr::go_quote(text);
        let mut calls = Vec::new();
        runtime_calls(root, "condition", &mut calls);
        runtime_calls(root, "newCondition", &mut calls);
        // kro visits in pre-order; both kinds are checked, the first failure wins.
        for call in calls {
            if call.func_name == "condition" {
                let [object, name] = call.args.as_slice() else {
                    continue;
                };
                if !matches!(&object.expr, Expr::Ident(n) if n == "schema") {
                    continue;
                }
                let Some(name) = string_literal(name) else {
                    continue;
                };
                if BUILT_IN_CONDITIONS.contains(&name.as_str()) {
                    continue;
                }
                let q = expr::go_quote(&name);
                return Err(if declared.contains(&name) {
                    format!(
                        "runtime.condition(schema, {q}): custom conditions cannot reference each other in expression {quoted}"
                    )
                } else {
                    format!(
                        "runtime.condition(schema, {q}): unknown condition type; only kro's built-in types (InstanceManaged, GraphResolved, ResourcesReady, Ready) can be read from schema in expression {quoted}"
                    )
                });
            }
            let [argument] = call.args.as_slice() else {
                continue;
            };
            if let Some(status) = map_literal_string(argument, "status")
                && !["True", "False", "Unknown"].contains(&status.as_str())
            {
                return Err(format!(
                    "runtime.newCondition: status must be one of True, False, Unknown (got {}) in expression {quoted}",
                    expr::go_quote(&status)
                ));
            }
            if map_literal_string(argument, "type").as_deref() == Some("") {
                return Err(format!(
                    "runtime.newCondition: type must not be empty in expression {quoted}"
                ));
            }
        }
    }
    Ok(())
}

/// kro's `validateConditionExpression`: type-checks and returns bool or optional bool.
fn condition(expression: &str, env: &Env, kind: &str, id: &str) -> Result<(), String> {
    let output = type_check(expression, env).map_err(|e| {
        format!("failed to type-check {kind} expression \"{expression}\" in resource \"{id}\": {e}")
    })?;
    if !bool_or_optional_bool(&output) {
        return Err(format!(
            "{kind} expression \"{expression}\" in resource \"{id}\" must return bool or optional_type(bool), but returns \"{}\"",
            output.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gvk_extraction_reads_as_kubernetes() {
        assert_eq!(
            extract_gvk("apps/v1", "Deployment").unwrap(),
            ("apps".to_string(), "v1".to_string())
        );
        assert_eq!(
            extract_gvk("a/b/c", "X").unwrap_err(),
            "invalid apiVersion format \"a/b/c\": unexpected GroupVersion string: a/b/c"
        );
        assert!(
            extract_gvk("v1", "Bad_Kind")
                .unwrap_err()
                .starts_with("invalid kind \"Bad_Kind\": a DNS-1035 label")
        );
    }
}
