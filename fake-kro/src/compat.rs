//! Breaking-change detection between two CRDs of one RGD (kro.md §7.6): kro v0.9.3 compares
//! the stored CRD with the one a changed RGD generates and refuses the update when existing
//! instances could stop validating, unless the RGD carries `kro.run/allow-breaking-changes`.

use std::collections::BTreeSet;

use serde_json::Value;

/// The annotation that lets an RGD through despite breaking changes.
pub const ALLOW_BREAKING_CHANGES: &str = "kro.run/allow-breaking-changes";

/// How many breaking changes kro's message describes before "and N more changes".
const SUMMARISED: usize = 3;

/// One difference between the schemas, with kro's change type and values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: String,
    pub old: String,
    pub new: String,
}

impl Change {
    fn new(path: String, kind: &str, old: String, new: String) -> Self {
        Self {
            path,
            kind: kind.to_string(),
            old,
            new,
        }
    }

    /// kro's description of a change.
    pub fn description(&self) -> String {
        let name = self.path.rsplit('.').next().unwrap_or(&self.path);
        let (old, new) = (&self.old, &self.new);
        match self.kind.as_str() {
            "PROPERTY_REMOVED" => format!("Property {name} was removed"),
            "PROPERTY_ADDED" if new == "required" => format!("Required property {name} was added"),
            "PROPERTY_ADDED" => format!("Optional property {name} was added"),
            "TYPE_CHANGED" => format!("Type changed from {old} to {new}"),
            "REQUIRED_ADDED" => format!("Field {new} is newly required"),
            "REQUIRED_REMOVED" => format!("Field {old} is no longer required"),
            "ENUM_RESTRICTED" => format!("Enum value {old} was removed"),
            "ENUM_EXPANDED" => format!("Enum value {new} was added"),
            "PATTERN_CHANGED" => format!("Validation pattern changed from {old} to {new}"),
            "PATTERN_ADDED" => format!("Validation pattern {new} was added"),
            "PATTERN_REMOVED" => format!("Validation pattern {old} was removed"),
            "REQUIRED_DEFAULT_REMOVED" => {
                format!("Default value removed from required field {old}")
            }
            "DESCRIPTION_CHANGED" => {
                format!("Description field was changed from {old} to {new}")
            }
            "DEFAULT_CHANGED" => format!("Default value was changed from {old} to {new}"),
            other => constraint_description(other, old, new)
                .unwrap_or_else(|| format!("Unknown change to {}", self.path)),
        }
    }
}

/// The descriptions of the min/max constraint changes (`MINIMUM_ADDED`, …).
fn constraint_description(kind: &str, old: &str, new: &str) -> Option<String> {
    let (name, what) = CONSTRAINTS.iter().find_map(|(name, prefix)| {
        kind.strip_prefix(prefix)
            .map(|what| (*name, what.trim_start_matches('_')))
    })?;
    Some(match what {
        "ADDED" => format!("{name} constraint {new} was added"),
        "REMOVED" => format!("{name} constraint {old} was removed"),
        "INCREASED" => format!("{name} was increased from {old} to {new}"),
        "DECREASED" => format!("{name} was decreased from {old} to {new}"),
        _ => return None,
    })
}

/// Display name and change-type prefix of each bound kro compares.
const CONSTRAINTS: [(&str, &str); 6] = [
    ("Minimum", "MINIMUM"),
    ("Maximum", "MAXIMUM"),
    ("MinLength", "MIN_LENGTH"),
    ("MaxLength", "MAX_LENGTH"),
    ("MinItems", "MIN_ITEMS"),
    ("MaxItems", "MAX_ITEMS"),
];

/// What changed between two CRDs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub breaking: Vec<Change>,
    pub compatible: Vec<Change>,
}

impl Report {
    pub fn has_changes(&self) -> bool {
        !self.breaking.is_empty() || !self.compatible.is_empty()
    }

    /// kro's summary: the first three breaking changes, then "and N more changes".
    pub fn summary(&self) -> String {
        if self.breaking.is_empty() {
            return "no breaking changes".into();
        }
        let mut parts: Vec<String> = self
            .breaking
            .iter()
            .take(SUMMARISED)
            .map(Change::description)
            .collect();
        if self.breaking.len() > SUMMARISED {
            parts.push(format!(
                "and {} more changes",
                self.breaking.len() - SUMMARISED
            ));
        }
        parts.join("; ")
    }

    fn breaking(&mut self, path: String, kind: &str, old: String, new: String) {
        self.breaking.push(Change::new(path, kind, old, new));
    }

    fn compatible(&mut self, path: String, kind: &str, old: String, new: String) {
        self.compatible.push(Change::new(path, kind, old, new));
    }
}

/// Compares the stored CRD with the desired one as kro's `CompareVersions` does: one version
/// each, its name, its schema, `served` and the status subresource. Properties are visited in
/// name order (kro walks Go maps, so its first three can come in any order).
pub fn compare_crds(existing: &Value, desired: &Value) -> Result<Report, String> {
    let versions = |crd: &Value| {
        crd.pointer("/spec/versions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (old_versions, new_versions) = (versions(existing), versions(desired));
    let ([old], [new]) = (old_versions.as_slice(), new_versions.as_slice()) else {
        return Err(format!(
            "expected exactly one version in each CRD, got {} old and {} new versions",
            old_versions.len(),
            new_versions.len()
        ));
    };
    let name = |v: &Value| text(v.get("name"));
    let mut report = Report::default();
    if name(old) != name(new) {
        report.breaking("version".into(), "TYPE_CHANGED", name(old), name(new));
        return Ok(report);
    }
    let schema_of = |v: &Value, which: &str| {
        v.pointer("/schema/openAPIV3Schema")
            .cloned()
            .ok_or_else(|| format!("{which} version {} has no schema", name(v)))
    };
    compare(
        "",
        Some(&schema_of(old, "old")?),
        Some(&schema_of(new, "new")?),
        &mut report,
    );
    let served = |v: &Value| v.get("served").and_then(Value::as_bool) == Some(true);
    if served(old) && !served(new) {
        report.breaking(
            "version.served".into(),
            "TYPE_CHANGED",
            "true".into(),
            "false".into(),
        );
    }
    let status = |v: &Value| v.pointer("/subresources/status").is_some();
    if status(old) && !status(new) {
        report.breaking(
            "version.subresources.status".into(),
            "PROPERTY_REMOVED",
            String::new(),
            String::new(),
        );
    }
    Ok(report)
}

fn text(value: Option<&Value>) -> String {
    value
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn compare(path: &str, old: Option<&Value>, new: Option<&Value>, report: &mut Report) {
    let (old, new) = match (old, new) {
        (None, None) => return,
        (None, Some(_)) => {
            report.compatible(path.into(), "PROPERTY_ADDED", String::new(), String::new());
            return;
        }
        (Some(_), None) => {
            report.breaking(
                path.into(),
                "PROPERTY_REMOVED",
                String::new(),
                String::new(),
            );
            return;
        }
        (Some(old), Some(new)) => (old, new),
    };
    let field = |s: &Value, k: &str| text(s.get(k));
    if field(old, "description") != field(new, "description") {
        report.compatible(
            format!("{path}.description"),
            "DESCRIPTION_CHANGED",
            field(old, "description"),
            field(new, "description"),
        );
    }
    if old.get("default") != new.get("default") {
        let raw = |s: &Value| s.get("default").map(Value::to_string).unwrap_or_default();
        report.compatible(
            format!("{path}.default"),
            "DEFAULT_CHANGED",
            raw(old),
            raw(new),
        );
    }
    if field(old, "type") != field(new, "type") {
        report.breaking(
            format!("{path}.type"),
            "TYPE_CHANGED",
            field(old, "type"),
            field(new, "type"),
        );
        return;
    }
    let (old_pattern, new_pattern) = (field(old, "pattern"), field(new, "pattern"));
    if old_pattern != new_pattern {
        let at = format!("{path}.pattern");
        match (old_pattern.is_empty(), new_pattern.is_empty()) {
            (true, false) => report.breaking(at, "PATTERN_ADDED", String::new(), new_pattern),
            (false, true) => report.compatible(at, "PATTERN_REMOVED", old_pattern, String::new()),
            _ => report.breaking(at, "PATTERN_CHANGED", old_pattern, new_pattern),
        }
    }
    for ((key, prefix), lower) in [
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
    ]
    .into_iter()
    .zip(CONSTRAINTS.map(|(_, p)| p))
    .zip([true, false, true, false, true, false])
    {
        compare_bound(path, key, prefix, old.get(key), new.get(key), lower, report);
    }
    compare_properties(path, old, new, report);
    compare_required(path, old, new, report);
    compare_enums(path, old, new, report);
    if field(old, "type") == "array" && field(new, "type") == "array" {
        match (array_items(old), array_items(new)) {
            (Some(o), Some(n)) => compare(&format!("{path}.items"), Some(o), Some(n), report),
            (Some(_), None) => report.breaking(
                format!("{path}.items"),
                "PROPERTY_REMOVED",
                String::new(),
                String::new(),
            ),
            (None, Some(_)) => report.compatible(
                format!("{path}.items"),
                "PROPERTY_ADDED",
                String::new(),
                String::new(),
            ),
            (None, None) => {}
        }
    }
}

fn array_items(schema: &Value) -> Option<&Value> {
    schema.get("items").filter(|i| i.is_object())
}

/// A bound: added or tightened is breaking, removed or relaxed is not.
fn compare_bound(
    path: &str,
    key: &str,
    prefix: &str,
    old: Option<&Value>,
    new: Option<&Value>,
    lower: bool,
    report: &mut Report,
) {
    let number = |v: Option<&Value>| v.and_then(Value::as_f64);
    let (old, new) = (number(old), number(new));
    let at = format!("{path}.{key}");
    let kind = |what: &str| format!("{prefix}_{what}");
    match (old, new) {
        (None, None) => {}
        (None, Some(n)) => report.breaking(at, &kind("ADDED"), String::new(), go_number(n)),
        (Some(o), None) => report.compatible(at, &kind("REMOVED"), go_number(o), String::new()),
        (Some(o), Some(n)) if o == n => {}
        (Some(o), Some(n)) => {
            let tightened = if lower { n > o } else { n < o };
            let (tight, relaxed) = if lower {
                (kind("INCREASED"), kind("DECREASED"))
            } else {
                (kind("DECREASED"), kind("INCREASED"))
            };
            if tightened {
                report.breaking(at, &tight, go_number(o), go_number(n));
            } else {
                report.compatible(at, &relaxed, go_number(o), go_number(n));
            }
        }
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: no exponent, shortest digits.
fn go_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e21 {
        format!("{n:.0}")
    } else {
        format!("{n}")
    }
}

fn properties(schema: &Value) -> Vec<(&String, &Value)> {
    let mut props: Vec<(&String, &Value)> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    props.sort_by(|a, b| a.0.cmp(b.0));
    props
}

fn required(schema: &Value) -> BTreeSet<String> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn has_default(schema: Option<&Value>) -> bool {
    schema.and_then(|s| s.get("default")).is_some()
}

fn compare_properties(path: &str, old: &Value, new: &Value, report: &mut Report) {
    let new_props = new.get("properties");
    let old_props = old.get("properties");
    for (name, old_prop) in properties(old) {
        let at = format!("{path}.properties.{name}");
        match new_props.and_then(|p| p.get(name)) {
            None => report.breaking(at, "PROPERTY_REMOVED", String::new(), String::new()),
            Some(new_prop) => compare(&at, Some(old_prop), Some(new_prop), report),
        }
    }
    let new_required = required(new);
    for (name, new_prop) in properties(new) {
        if old_props.and_then(|p| p.get(name)).is_some() {
            continue;
        }
        let at = format!("{path}.properties.{name}");
        if new_required.contains(name) && !has_default(Some(new_prop)) {
            report.breaking(
                at,
                "PROPERTY_ADDED",
                "required=false".into(),
                "required=true".into(),
            );
        } else {
            report.compatible(at, "PROPERTY_ADDED", String::new(), String::new());
        }
    }
}

fn compare_required(path: &str, old: &Value, new: &Value, report: &mut Report) {
    let (old_required, new_required) = (required(old), required(new));
    if old_required.is_empty() && new_required.is_empty() {
        return;
    }
    let existed = |name: &str| old.pointer(&format!("/properties/{name}")).is_some();
    let at = format!("{path}.required");
    for name in new_required.difference(&old_required) {
        if existed(name) {
            report.breaking(at.clone(), "REQUIRED_ADDED", String::new(), name.clone());
        }
    }
    for name in old_required.difference(&new_required) {
        report.compatible(at.clone(), "REQUIRED_REMOVED", name.clone(), String::new());
    }
    for name in new_required.intersection(&old_required) {
        if !existed(name) {
            continue;
        }
        let prop = |s: &Value| {
            s.get("properties")
                .and_then(|p| p.get(name.as_str()))
                .cloned()
        };
        if has_default(prop(old).as_ref()) && !has_default(prop(new).as_ref()) {
            report.breaking(
                at.clone(),
                "REQUIRED_DEFAULT_REMOVED",
                name.clone(),
                String::new(),
            );
        }
    }
}

fn compare_enums(path: &str, old: &Value, new: &Value, report: &mut Report) {
    let values = |s: &Value| -> BTreeSet<String> {
        s.get("enum")
            .and_then(Value::as_array)
            .map(|e| e.iter().map(Value::to_string).collect())
            .unwrap_or_default()
    };
    let (old_values, new_values) = (values(old), values(new));
    if old_values.is_empty() || new_values.is_empty() {
        return;
    }
    let at = format!("{path}.enum");
    for value in old_values.difference(&new_values) {
        report.breaking(at.clone(), "ENUM_RESTRICTED", value.clone(), String::new());
    }
    for value in new_values.difference(&old_values) {
        report.compatible(at.clone(), "ENUM_EXPANDED", String::new(), value.clone());
    }
}
