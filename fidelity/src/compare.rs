//! Field-by-field comparison of two normalised observations, split into checks, and the
//! explanations a sequence declares next to a check.

use serde_json::Value;

/// A difference both servers are known to have, with its reason, declared by the sequence next
/// to the request it concerns. `path` is a JSON pointer into the observation (`/status`,
/// `/headers/warning`, `/body/message`, `/body/metadata/labels`, `/events/2/object/...`,
/// `/stdout`); `*` matches one segment; a difference at or below the path is explained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explain {
    pub path: String,
    pub reason: String,
}

impl Explain {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// Whether this explanation covers the difference at `pointer`.
    pub fn covers(&self, pointer: &str) -> bool {
        let pattern: Vec<&str> = self.path.split('/').skip(1).collect();
        let actual: Vec<&str> = pointer.split('/').skip(1).collect();
        pattern.len() <= actual.len()
            && pattern
                .iter()
                .zip(&actual)
                .all(|(p, a)| *p == "*" || p == a)
    }
}

/// One differing leaf: where, and each server's value (`None`: absent).
#[derive(Clone, Debug, PartialEq)]
pub struct Diff {
    pub pointer: String,
    pub embedded: Option<Value>,
    pub upstream: Option<Value>,
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Every leaf where `a` (embedded) and `b` (upstream) differ.
pub fn diff(a: &Value, b: &Value) -> Vec<Diff> {
    let mut out = Vec::new();
    walk("", Some(a), Some(b), &mut out);
    out
}

fn walk(pointer: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<Diff>) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                walk(&format!("{pointer}/{}", escape(k)), x.get(k), y.get(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for i in 0..x.len().max(y.len()) {
                walk(&format!("{pointer}/{i}"), x.get(i), y.get(i), out);
            }
        }
        (x, y) if x == y => {}
        (x, y) => out.push(Diff {
            pointer: pointer.to_string(),
            embedded: x.cloned(),
            upstream: y.cloned(),
        }),
    }
}

/// How one check came out.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Equal,
    /// Every difference is covered by an explanation (the reasons, deduplicated).
    Explained(Vec<Diff>, Vec<String>),
    /// At least one difference is not explained (the unexplained ones).
    Different(Vec<Diff>),
}

/// The checks an observation is split into: the parts a client reads separately.
pub fn checks_of(observation: &Value) -> Vec<(String, String)> {
    let mut checks = Vec::new();
    let Some(map) = observation.as_object() else {
        return checks;
    };
    for (key, value) in map {
        match (key.as_str(), value) {
            ("headers", Value::Object(headers)) => {
                for name in headers.keys() {
                    checks.push((
                        format!("header {name}"),
                        format!("/headers/{}", escape(name)),
                    ));
                }
            }
            ("body", Value::Object(body)) if body.get("kind") == Some(&"Status".into()) => {
                for part in ["reason", "message", "details", "code", "status"] {
                    checks.push((format!("Status.{part}"), format!("/body/{part}")));
                }
            }
            (k, _) => checks.push((k.to_string(), format!("/{k}"))),
        }
    }
    checks
}

/// Compares one check (the subtree at `pointer` of both observations).
pub fn compare_check(
    embedded: &Value,
    upstream: &Value,
    pointer: &str,
    explains: &[Explain],
) -> Outcome {
    let a = embedded.pointer(pointer).cloned().unwrap_or(Value::Null);
    let b = upstream.pointer(pointer).cloned().unwrap_or(Value::Null);
    let diffs: Vec<Diff> = diff(&a, &b)
        .into_iter()
        .map(|d| Diff {
            pointer: format!("{pointer}{}", d.pointer),
            ..d
        })
        .collect();
    if diffs.is_empty() {
        return Outcome::Equal;
    }
    let unexplained: Vec<Diff> = diffs
        .iter()
        .filter(|d| !explains.iter().any(|e| e.covers(&d.pointer)))
        .cloned()
        .collect();
    if unexplained.is_empty() {
        let mut reasons: Vec<String> = explains
            .iter()
            .filter(|e| diffs.iter().any(|d| e.covers(&d.pointer)))
            .map(|e| e.reason.clone())
            .collect();
        reasons.dedup();
        Outcome::Explained(diffs, reasons)
    } else {
        Outcome::Different(unexplained)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn explanations_cover_paths_below_them() {
        let e = Explain::new("/body/metadata/labels", "why");
        assert!(e.covers("/body/metadata/labels/a"));
        assert!(!e.covers("/body/metadata/annotations"));
        assert!(Explain::new("/events/*/object/x", "w").covers("/events/3/object/x/y"));
    }

    #[test]
    fn checks_split_status_bodies() {
        let a = json!({"status": 404, "headers": {"content-type": "application/json"}, "body": {"kind": "Status", "reason": "NotFound", "message": "m", "code": 404, "status": "Failure"}});
        let mut b = a.clone();
        b["body"]["message"] = json!("other");
        let checks = checks_of(&a);
        assert!(checks.iter().any(|(n, _)| n == "Status.message"));
        assert_eq!(compare_check(&a, &b, "/body/reason", &[]), Outcome::Equal);
        assert!(matches!(
            compare_check(&a, &b, "/body/message", &[]),
            Outcome::Different(_)
        ));
        assert!(matches!(
            compare_check(
                &a,
                &b,
                "/body/message",
                &[Explain::new("/body/message", "known")]
            ),
            Outcome::Explained(..)
        ));
    }
}
