//! Label and field selectors: parsing and matching, with kube-apiserver's error messages.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::status::ApiError;

#[derive(Clone, Debug, PartialEq, Eq)]
enum LabelRequirement {
    Exists(String),
    NotExists(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    GreaterThan(String, i64),
    LessThan(String, i64),
}

/// A parsed label selector; all requirements must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<LabelRequirement>);

/// Splits at top-level commas (commas inside `( )` belong to a set).
fn split_top_level(input: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in input.chars() {
        match c {
            '(' => {
                depth += 1;
                current.push(c);
            }
            ')' => {
                depth = depth.saturating_sub(1);
                current.push(c);
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn parse_error(detail: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("unable to parse requirement: {detail}"))
}

fn check_key(key: &str) -> Result<(), ApiError> {
    let valid = !key.is_empty()
        && key
            .split_once('/')
            .is_none_or(|(p, _)| crate::meta::is_dns1123_subdomain(p))
        && {
            let name = key.rsplit('/').next().unwrap_or_default();
            !name.is_empty()
                && name.len() <= 63
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        };
    if valid {
        Ok(())
    } else {
        Err(parse_error(format!("invalid label key \"{key}\"")))
    }
}

fn check_value(value: &str) -> Result<(), ApiError> {
    let valid = value.is_empty()
        || (value.len() <= 63
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()));
    if valid {
        Ok(())
    } else {
        Err(parse_error(format!("invalid label value: \"{value}\"")))
    }
}

impl LabelSelector {
    pub fn parse(input: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for part in split_top_level(input) {
            requirements.push(Self::parse_requirement(&part)?);
        }
        Ok(Self(requirements))
    }

    fn parse_requirement(part: &str) -> Result<LabelRequirement, ApiError> {
        if let Some(key) = part.strip_prefix('!') {
            let key = key.trim();
            check_key(key)?;
            return Ok(LabelRequirement::NotExists(key.into()));
        }
        for (op, is_in) in [(" notin ", false), (" in ", true)] {
            if let Some((key, set)) = part.split_once(op) {
                let key = key.trim();
                check_key(key)?;
                let set = set.trim();
                let inner = set
                    .strip_prefix('(')
                    .and_then(|s| s.strip_suffix(')'))
                    .ok_or_else(|| parse_error(format!("found '{set}', expected: '('")))?;
                let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
                for v in &values {
                    check_value(v)?;
                }
                return Ok(if is_in {
                    LabelRequirement::In(key.into(), values)
                } else {
                    LabelRequirement::NotIn(key.into(), values)
                });
            }
        }
        for op in ["!=", "==", "=", ">", "<"] {
            if let Some((key, value)) = part.split_once(op) {
                let key = key.trim();
                let value = value.trim();
                check_key(key)?;
                return match op {
                    "!=" => check_value(value)
                        .map(|()| LabelRequirement::NotEquals(key.into(), value.into())),
                    ">" | "<" => {
                        let n: i64 = value.parse().map_err(|_| {
                            parse_error(
                                "for 'Gt', 'Lt' operators, the value must be an integer"
                                    .to_string(),
                            )
                        })?;
                        Ok(if op == ">" {
                            LabelRequirement::GreaterThan(key.into(), n)
                        } else {
                            LabelRequirement::LessThan(key.into(), n)
                        })
                    }
                    _ => check_value(value)
                        .map(|()| LabelRequirement::Equals(key.into(), value.into())),
                };
            }
        }
        check_key(part)?;
        Ok(LabelRequirement::Exists(part.into()))
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            LabelRequirement::Exists(k) => labels.contains_key(k),
            LabelRequirement::NotExists(k) => !labels.contains_key(k),
            LabelRequirement::Equals(k, v) => labels.get(k) == Some(v),
            LabelRequirement::NotEquals(k, v) => labels.get(k) != Some(v),
            LabelRequirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            LabelRequirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            LabelRequirement::GreaterThan(k, n) => labels
                .get(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l > *n),
            LabelRequirement::LessThan(k, n) => labels
                .get(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l < *n),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The labels of an object.
pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// A parsed field selector: `field=value` / `field!=value` terms, all of which must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Splits at commas not preceded by a backslash.
fn split_unescaped(input: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in input.chars() {
        if escaped {
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            current.push(c);
            escaped = true;
        } else if c == ',' {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// Which fields a resource's selectors accept, and how kube-apiserver words a field it does not.
#[derive(Clone, Copy)]
#[allow(missing_debug_implementations)] // holds a closure
pub struct SelectableFields<'a> {
    pub supported: &'a dyn Fn(&str) -> bool,
    /// The kind has only `metadata.name` and `metadata.namespace` (Go's default field label
    /// conversion, which names them in its error); kinds with their own conversion say
    /// `field label not supported`.
    pub metadata_only: bool,
}

impl FieldSelector {
    /// Parses a selector and checks every field against the ones the resource supports.
    pub fn parse(input: &str, fields: SelectableFields<'_>) -> Result<Self, ApiError> {
        let supported = fields.supported;
        let mut terms = Vec::new();
        for part in split_unescaped(input) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{input}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            if !supported(field) {
                return Err(ApiError::bad_request(if fields.metadata_only {
                    format!(
                        "\"{field}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                    )
                } else {
                    format!("field label not supported: {field}")
                }));
            }
            terms.push((field.to_string(), equal, unescape(value.trim())));
        }
        Ok(Self(terms))
    }

    pub fn matches(&self, fields: &dyn Fn(&str) -> Option<String>) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let actual = fields(field).unwrap_or_default();
            (actual == *value) == *equal
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `metadata.name=<v>`, if the selector pins a name (list fast path).
    pub fn pinned_name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, eq, _)| f == "metadata.name" && *eq)
            .map(|(_, _, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// [API-16] the label selector grammar.
    #[test]
    fn label_selector_grammar() {
        let s = LabelSelector::parse("a=b,c!=d,e in (f,g),!h,i notin (j),k>5,l").unwrap();
        assert!(s.matches(&labels(&[("a", "b"), ("e", "g"), ("k", "6"), ("l", "")])));
        assert!(!s.matches(&labels(&[
            ("a", "b"),
            ("e", "g"),
            ("k", "6"),
            ("l", ""),
            ("h", "x")
        ])));
        assert!(!s.matches(&labels(&[("a", "b"), ("e", "x"), ("k", "6"), ("l", "")])));
        assert!(
            LabelSelector::parse("a==b")
                .unwrap()
                .matches(&labels(&[("a", "b")]))
        );
        assert_eq!(LabelSelector::parse("a b=c").unwrap_err().code, 400);
    }

    /// [API-16] unsupported field labels are rejected with the upstream message.
    #[test]
    fn field_selector_support() {
        let supported = |f: &str| f == "metadata.name";
        let own = SelectableFields {
            supported: &supported,
            metadata_only: false,
        };
        let s = FieldSelector::parse("metadata.name=x", own).unwrap();
        assert_eq!(s.pinned_name(), Some("x"));
        assert!(s.matches(&|_| Some("x".into())));
        let e = FieldSelector::parse("spec.foo=x", own).unwrap_err();
        assert_eq!(e.message, "field label not supported: spec.foo");
        let default = SelectableFields {
            supported: &supported,
            metadata_only: true,
        };
        let e = FieldSelector::parse("data.a=1", default).unwrap_err();
        assert_eq!(
            e.message,
            r#""data.a" is not a known field selector: only "metadata.name", "metadata.namespace""#
        );
    }
}
