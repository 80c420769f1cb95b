//! Request parameters: the query string, and the options of writes, lists and deletes read from
//! it (and from DeleteOptions bodies and Content-Type headers), with the upstream errors for
//! invalid combinations.

use std::collections::HashMap;
use std::time::Duration;

use http::{HeaderMap, header};
use serde_json::{Value, json};

use crate::engine::{DeleteOptions, FieldValidation, ListOptions, PatchType, WriteOptions};
use crate::status::{ApiError, FieldError, FieldErrorKind, go_quote};

pub(super) fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query parameters (last value wins; `dryRun` may repeat).
#[derive(Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(query: Option<&str>) -> Self {
        let mut map = HashMap::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.insert(percent_decode(k), percent_decode(v));
        }
        Self(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub(super) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

/// Go's `time.ParseDuration` for the forms clients send (`32s`, `5m0s`, `1h`, `500ms`).
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Some(Duration::from_secs_f64(total))
}

pub(super) fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

pub(super) fn patch_type(headers: &HeaderMap) -> Result<PatchType, ApiError> {
    match content_type(headers).as_str() {
        "application/merge-patch+json" => Ok(PatchType::Merge),
        "application/json-patch+json" => Ok(PatchType::Json),
        "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
        "application/apply-patch+yaml" => Ok(PatchType::Apply),
        _ => Err(ApiError::unsupported_patch_type()),
    }
}

pub(super) fn user_agent_manager(headers: &HeaderMap) -> Option<String> {
    let agent = headers.get(header::USER_AGENT)?.to_str().ok()?;
    Some(agent.split('/').next().unwrap_or(agent).to_string())
}

/// The meta.k8s.io options kind of a write: `CreateOptions` (POST), `UpdateOptions` (PUT),
/// `PatchOptions` (PATCH); kube-apiserver names it in option errors.
pub(super) fn options_kind(method: &http::Method) -> &'static str {
    match *method {
        http::Method::POST => "CreateOptions",
        http::Method::PATCH => "PatchOptions",
        _ => "UpdateOptions",
    }
}

pub(super) fn write_options(query: &Query, kind: &str) -> Result<WriteOptions, ApiError> {
    let field_validation = match query.get("fieldValidation") {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        Some(other) => {
            return Err(ApiError::invalid_options(
                kind,
                &FieldError::new(
                    "fieldValidation",
                    FieldErrorKind::NotSupported,
                    Some(go_quote(other)),
                    r#"supported values: "", "Ignore", "Strict", "Warn""#,
                ),
            ));
        }
    };
    let field_manager = query
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    if field_manager.as_ref().is_some_and(|m| m.len() > 128) {
        return Err(ApiError::invalid_options(
            kind,
            &FieldError::new(
                "fieldManager",
                FieldErrorKind::TooLong,
                None,
                "may not be more than 128 bytes",
            ),
        ));
    }
    Ok(WriteOptions {
        dry_run: query.get("dryRun") == Some("All"),
        field_manager,
        field_validation,
        force: query.get("force").map(|f| f == "true"),
        duplicate_fields: Vec::new(),
    })
}

/// Write options plus the duplicate keys of a JSON (or JSON-as-apply) body.
pub(super) fn body_write_options(
    query: &Query,
    kind: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<WriteOptions, ApiError> {
    let mut options = write_options(query, kind)?;
    if matches!(
        content_type(headers).as_str(),
        "" | "application/json" | "application/apply-patch+yaml"
    ) {
        options.duplicate_fields = crate::duplicates::duplicate_fields(body);
    }
    Ok(options)
}

pub(super) fn list_options(query: &Query) -> Result<ListOptions, ApiError> {
    let options = ListOptions {
        label_selector: query.get("labelSelector").map(str::to_string),
        field_selector: query.get("fieldSelector").map(str::to_string),
        limit: query.get("limit").and_then(|l| l.parse().ok()),
        continue_token: query
            .get("continue")
            .filter(|c| !c.is_empty())
            .map(str::to_string),
        resource_version: query
            .get("resourceVersion")
            .filter(|r| !r.is_empty())
            .map(str::to_string),
        resource_version_match: query
            .get("resourceVersionMatch")
            .filter(|r| !r.is_empty())
            .map(str::to_string),
    };
    // A watch-list request (`sendInitialEvents=true`) may leave resourceVersion unset: a
    // consistent read, as kube-apiserver serves it (client-go's WatchList sends it so).
    let watching = matches!(query.get("watch"), Some("true" | "1"));
    let watch_list = watching && query.get("sendInitialEvents") == Some("true");
    if !watching && query.get("sendInitialEvents").is_some() {
        return Err(ApiError::invalid_options(
            "ListOptions",
            &FieldError::forbidden(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for list",
            ),
        ));
    }
    if options.resource_version_match.is_some() && options.resource_version.is_none() && !watch_list
    {
        return Err(ApiError::invalid_options(
            "ListOptions",
            &FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ),
        ));
    }
    if options.continue_token.is_some()
        && options
            .resource_version
            .as_deref()
            .is_some_and(|rv| rv != "0")
    {
        return Err(ApiError::invalid_options(
            "ListOptions",
            &FieldError::forbidden(
                "resourceVersion",
                "specifying resource version is not allowed when using continue",
            ),
        ));
    }
    if options.resource_version_match.as_deref() == Some("Exact")
        && options.resource_version.as_deref() == Some("0")
    {
        return Err(ApiError::invalid_options(
            "ListOptions",
            &FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ),
        ));
    }
    Ok(options)
}

pub(super) fn delete_options(query: &Query, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
    };
    let string = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| query.get(key).map(str::to_string))
    };
    let dry_run = body
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|d| d.iter().any(|x| x == "All"))
        || query.get("dryRun") == Some("All");
    Ok(DeleteOptions {
        propagation_policy: string("propagationPolicy"),
        orphan_dependents: body
            .get("orphanDependents")
            .and_then(Value::as_bool)
            .or_else(|| query.get("orphanDependents").map(|v| v == "true")),
        dry_run,
        precondition_uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        precondition_resource_version: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("32s"), Some(Duration::from_secs(32)));
        assert_eq!(parse_go_duration("5m0s"), Some(Duration::from_secs(300)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("5x"), None);
    }

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some(
            "fieldSelector=metadata.name%3Dx&watch=1&labelSelector=a+in+(b)",
        ));
        assert_eq!(q.get("fieldSelector"), Some("metadata.name=x"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("labelSelector"), Some("a in (b)"));
    }
}
