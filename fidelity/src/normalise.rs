//! The normaliser: what two servers may legitimately answer differently for the same request
//! sequence is replaced by tokens that keep the relations a client can rely on.
//!
//! - uids → `<uid:N>`, N by first appearance in the sequence (the same uid twice stays the same
//!   token, so "this is the object created before" is still compared), also inside messages;
//! - object resourceVersions → `<rv:N>`, N the dense rank of the value among every object
//!   resourceVersion the sequence observed on that server (equality and order kept); list and
//!   bookmark resourceVersions → `<rv:list>` / `<rv:bookmark>` (the global revision of a shared
//!   store, which other writers move);
//! - RFC 3339 timestamps → `<time>` (`<time.F>` with F fraction digits: the shape is compared);
//! - generated names → `<prefix><gen>`; continue tokens → `<continue>`;
//! - server build values of `/version` → `<build>`;
//! - managedFields entries in a fixed order (operation, manager, apiVersion, subresource): the
//!   servers order them by the second they were written in, which is timing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

// Constant patterns (`None` only if one did not compile, which the unit tests rule out).
static UID: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").ok()
});
static TIME: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.(\d+))?(Z|[+-]\d\d:\d\d)$").ok()
});
/// resourceVersions quoted inside messages (E07, E29).
static RV_IN_MESSAGE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(ResourceVersion in the precondition \(|ResourceVersion in record \(|too old resource version: |resourceVersion=)(\d+)")
        .ok()
});
static RV_IN_PARENS: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(too old resource version: <rv[^>]*> \()(\d+)(\))").ok());
/// kubectl's human ages (`0s`, `5m2s`, `3h`, `<unknown>` stays).
static AGE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^\d+(d|h|m|s)(\d+(h|m|s))?$").ok());

/// The order managedFields entries are compared in: kube-apiserver sorts them by operation,
/// then time to the second, then manager; whether two writes of a sequence fall in one second
/// is timing, so the comparison orders by operation, manager, apiVersion and subresource.
fn managed_fields_order(entry: &Value) -> (String, String, String, String) {
    let text = |k: &str| entry[k].as_str().unwrap_or_default().to_string();
    (
        text("operation"),
        text("manager"),
        text("apiVersion"),
        text("subresource"),
    )
}

/// The tokens of one server's side of one sequence.
#[derive(Debug, Default)]
pub struct Normaliser {
    uids: BTreeMap<String, usize>,
    rvs: BTreeMap<u64, usize>,
    generated: BTreeMap<String, String>,
}

impl Normaliser {
    /// Learns the values of every observation of a sequence (first pass).
    pub fn learn(&mut self, values: &[&Value]) {
        let mut rvs = BTreeSet::new();
        for value in values {
            self.learn_value(value, &mut rvs, None);
        }
        self.rvs = rvs.into_iter().enumerate().map(|(i, rv)| (rv, i)).collect();
    }

    /// Learns what appears in free text (kubectl output): uids in order of appearance.
    pub fn learn_text(&mut self, text: &str) {
        let Some(uid) = UID.as_ref() else { return };
        for m in uid.find_iter(text) {
            let next = self.uids.len();
            self.uids.entry(m.as_str().to_string()).or_insert(next);
        }
    }

    fn learn_value(&mut self, value: &Value, rvs: &mut BTreeSet<u64>, key: Option<&str>) {
        match value {
            Value::Object(map) => {
                let is_list_meta = map.contains_key("continue")
                    || map.contains_key("remainingItemCount")
                    || (map.len() == 1 && map.contains_key("resourceVersion"));
                // The initial-events-end bookmark carries the store's global revision, which
                // other writers of a shared server move: not an object's resourceVersion, so it
                // must not take a rank (apply_at prints it as `<rv:list>`).
                let is_bookmark_meta = map
                    .get("annotations")
                    .and_then(|a| a.get("k8s.io/initial-events-end"))
                    .is_some()
                    && !map.contains_key("name");
                if let (Some(Value::String(generate)), Some(Value::String(name))) =
                    (map.get("generateName"), map.get("name"))
                    && name.starts_with(generate.as_str())
                    && name.len() > generate.len()
                {
                    self.generated
                        .insert(name.clone(), format!("{generate}<gen>"));
                }
                for (k, v) in map {
                    if k == "resourceVersion"
                        && !is_list_meta
                        && !is_bookmark_meta
                        && let Some(rv) = v.as_str().and_then(|s| s.parse::<u64>().ok())
                    {
                        rvs.insert(rv);
                    }
                    self.learn_value(v, rvs, Some(k));
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.learn_value(item, rvs, key);
                }
            }
            Value::String(s) if key != Some("resourceVersion") => self.learn_text(s),
            _ => {}
        }
    }

    /// The normalised copy of an observation.
    pub fn apply(&self, value: &Value) -> Value {
        self.apply_at(value, None, false)
    }

    fn apply_at(&self, value: &Value, key: Option<&str>, list_meta: bool) -> Value {
        match value {
            Value::Object(map) => {
                let is_list_meta = map.contains_key("continue")
                    || map.contains_key("remainingItemCount")
                    || (map.len() == 1 && map.contains_key("resourceVersion"));
                let is_bookmark_meta = map
                    .get("annotations")
                    .and_then(|a| a.get("k8s.io/initial-events-end"))
                    .is_some()
                    && !map.contains_key("name");
                map.iter()
                    .map(|(k, v)| {
                        let list = (is_list_meta || is_bookmark_meta) && k == "resourceVersion";
                        // Keys too: managedFields name list items by uid (`k:{"uid":…}`).
                        (self.text(k), self.apply_at(v, Some(k), list))
                    })
                    .collect::<serde_json::Map<_, _>>()
                    .into()
            }
            Value::Array(items) => {
                let mut items: Vec<Value> = items
                    .iter()
                    .map(|i| self.apply_at(i, key, list_meta))
                    .collect();
                if key == Some("managedFields") {
                    items.sort_by_key(managed_fields_order);
                }
                items.into()
            }
            Value::String(s) => Value::String(self.string(s, key, list_meta)),
            other => other.clone(),
        }
    }

    fn string(&self, s: &str, key: Option<&str>, list_meta: bool) -> String {
        // Continue tokens are opaque (each server encodes its own position).
        if key == Some("continue") && !s.is_empty() {
            return "<continue>".into();
        }
        if key == Some("resourceVersion") {
            if list_meta {
                return "<rv:list>".into();
            }
            return match s.parse::<u64>().ok().and_then(|rv| self.rvs.get(&rv)) {
                Some(rank) => format!("<rv:{rank}>"),
                None if s.is_empty() => String::new(),
                None => "<rv:other>".into(),
            };
        }
        if let Some(c) = TIME.as_ref().and_then(|t| t.captures(s)) {
            return match c.get(2) {
                Some(fraction) => format!("<time.{}>", fraction.as_str().len()),
                None => "<time>".into(),
            };
        }
        self.text(s)
    }

    /// Normalises free text: uids, generated names, resourceVersions in known messages.
    pub fn text(&self, s: &str) -> String {
        let (Some(uid), Some(rv_in_message), Some(rv_in_parens)) =
            (UID.as_ref(), RV_IN_MESSAGE.as_ref(), RV_IN_PARENS.as_ref())
        else {
            return s.to_string();
        };
        let mut out = uid
            .replace_all(s, |c: &regex::Captures<'_>| match self.uids.get(&c[0]) {
                Some(n) => format!("<uid:{n}>"),
                None => "<uid>".into(),
            })
            .into_owned();
        for (name, token) in &self.generated {
            if out.contains(name.as_str()) {
                out = out.replace(name.as_str(), token);
            }
        }
        out = rv_in_message
            .replace_all(&out, |c: &regex::Captures<'_>| {
                let token = c[2]
                    .parse::<u64>()
                    .ok()
                    .and_then(|rv| self.rvs.get(&rv))
                    .map_or_else(|| "<rv>".to_string(), |r| format!("<rv:{r}>"));
                format!("{}{token}", &c[1])
            })
            .into_owned();
        rv_in_parens.replace_all(&out, "${1}<rv>${3}").into_owned()
    }

    /// Normalises kubectl output: text rules, then per line ages and timestamps become tokens
    /// and runs of blanks one blank (column widths follow the tokens' lengths).
    pub fn kubectl_output(&self, s: &str) -> String {
        let text = self.text(s);
        text.lines()
            .map(|line| {
                line.split_whitespace()
                    .map(|word| {
                        if AGE.as_ref().is_some_and(|a| a.is_match(word)) {
                            "<age>".to_string()
                        } else if TIME
                            .as_ref()
                            .is_some_and(|t| t.is_match(word.trim_matches('"')))
                        {
                            "<time>".to_string()
                        } else {
                            word.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Replaces the values of `/version` that a server derives from its own build.
pub fn version_build_values(body: &mut Value) {
    for key in [
        "gitCommit",
        "buildDate",
        "goVersion",
        "gitTreeState",
        "emulationMajor",
        "emulationMinor",
        "minCompatibilityMajor",
        "minCompatibilityMinor",
    ] {
        if let Some(v) = body.get_mut(key) {
            *v = Value::String("<build>".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patterns_compile() {
        assert!(UID.is_some() && TIME.is_some() && RV_IN_MESSAGE.is_some());
        assert!(RV_IN_PARENS.is_some() && AGE.is_some());
    }

    #[test]
    fn resource_versions_keep_their_order_and_equality() {
        let a = json!({"metadata": {"name": "a", "resourceVersion": "900", "uid": "0a1b2c3d-0000-4000-8000-000000000001", "creationTimestamp": "2026-12-06T16:00:00Z"}});
        let b = json!({"metadata": {"name": "a", "resourceVersion": "1000", "uid": "0a1b2c3d-0000-4000-8000-000000000001"}});
        let list = json!({"metadata": {"resourceVersion": "1234"}, "items": []});
        let mut n = Normaliser::default();
        n.learn(&[&a, &b, &list]);
        assert_eq!(n.apply(&a)["metadata"]["resourceVersion"], "<rv:0>");
        assert_eq!(n.apply(&b)["metadata"]["resourceVersion"], "<rv:1>");
        assert_eq!(n.apply(&b)["metadata"]["uid"], "<uid:0>");
        assert_eq!(n.apply(&a)["metadata"]["creationTimestamp"], "<time>");
        assert_eq!(n.apply(&list)["metadata"]["resourceVersion"], "<rv:list>");
    }

    /// Two Apply entries written in different seconds on one server and in one second on the
    /// other compare equal; Apply still comes before Update.
    #[test]
    fn managed_fields_compare_without_their_seconds() {
        let entry = |manager: &str, operation: &str, time: &str| json!({"manager": manager, "operation": operation, "apiVersion": "v1", "time": time});
        let one_second = json!({"metadata": {"managedFields": [
            entry("b", "Apply", "2026-12-06T16:00:00Z"),
            entry("a", "Update", "2026-12-06T16:00:00Z"),
            entry("z", "Apply", "2026-12-06T16:00:00Z"),
        ]}});
        let two_seconds = json!({"metadata": {"managedFields": [
            entry("z", "Apply", "2026-12-06T16:00:00Z"),
            entry("b", "Apply", "2026-12-06T16:00:01Z"),
            entry("a", "Update", "2026-12-06T16:00:01Z"),
        ]}});
        let n = Normaliser::default();
        let managers = |v: &Value| -> Vec<Value> {
            n.apply(v)["metadata"]["managedFields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e["manager"].clone())
                .collect()
        };
        assert_eq!(managers(&one_second), managers(&two_seconds));
        assert_eq!(
            managers(&one_second),
            vec![json!("b"), json!("z"), json!("a")]
        );
    }

    /// A shared server's initial-events-end bookmark carries a global revision other writers
    /// moved; it must not shift the ranks of the objects around it.
    #[test]
    fn an_initial_events_bookmark_takes_no_rank() {
        let b = json!({"metadata": {"name": "b", "resourceVersion": "10"}});
        let bookmark = json!({"type": "BOOKMARK", "object": {"kind": "ConfigMap", "metadata": {
            "resourceVersion": "15", "annotations": {"k8s.io/initial-events-end": "true"}}}});
        let marker = json!({"metadata": {"name": "marker", "resourceVersion": "20"}});
        let mut n = Normaliser::default();
        n.learn(&[&b, &bookmark, &marker]);
        assert_eq!(n.apply(&marker)["metadata"]["resourceVersion"], "<rv:1>");
        assert_eq!(
            n.apply(&bookmark)["object"]["metadata"]["resourceVersion"],
            "<rv:list>"
        );
    }

    #[test]
    fn generated_names_and_messages() {
        let created =
            json!({"metadata": {"generateName": "x-", "name": "x-ab12c", "resourceVersion": "7"}});
        let status = json!({"message": "the ResourceVersion in the precondition (3) does not match the ResourceVersion in record (7). x-ab12c"});
        let mut n = Normaliser::default();
        n.learn(&[&created, &status]);
        assert_eq!(n.apply(&created)["metadata"]["name"], "x-<gen>");
        assert_eq!(
            n.apply(&status)["message"],
            "the ResourceVersion in the precondition (<rv>) does not match the ResourceVersion in record (<rv:0>). x-<gen>"
        );
        assert_eq!(
            n.text("too old resource version: 1 (1400)"),
            "too old resource version: <rv> (<rv>)"
        );
    }

    #[test]
    fn kubectl_ages_and_columns() {
        let n = Normaliser::default();
        assert_eq!(
            n.kubectl_output("NAME   DATA   AGE\nc      1      5m2s\n"),
            "NAME DATA AGE\nc 1 <age>"
        );
    }
}
