//! Kubernetes `Status` errors with the exact codes, reasons, messages and details of kube-apiserver.

use serde_json::{Map, Value, json};

/// Identifies a resource in error messages: `<plural>` for the core group, `<plural>.<group>`
/// otherwise; the kind is `Kind` or `Kind.group`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceName {
    pub group: String,
    pub plural: String,
    pub kind: String,
}

impl ResourceName {
    /// `configmaps`, `widgets.example.com`.
    pub fn resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `ConfigMap`, `Widget.example.com`.
    pub fn group_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

/// One field-level cause of an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

/// A failed request, rendered as a `Status` object.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    pub details: Option<Map<String, Value>>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

fn details(name: &str, group: &str, kind: &str) -> Map<String, Value> {
    let mut details = Map::new();
    if !name.is_empty() {
        details.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        details.insert("group".into(), json!(group));
    }
    if !kind.is_empty() {
        details.insert("kind".into(), json!(kind));
    }
    details
}

/// Details with one field error as their only cause.
fn with_cause(mut details: Map<String, Value>, error: &FieldError) -> Map<String, Value> {
    details.insert(
        "causes".into(),
        json!([{"reason": error.kind.reason(), "message": error.cause_message(), "field": error.path}]),
    );
    details
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: Map<String, Value>) -> Self {
        self.details = Some(details);
        self
    }

    /// E01: the object does not exist.
    pub fn not_found(resource: &ResourceName, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", resource.resource()),
        )
        .with_details(details(name, &resource.group, &resource.plural))
    }

    /// E02: nothing is served at this path.
    pub fn unknown_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(Map::new())
    }

    /// 405 for a verb the path does not support.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(Map::new())
    }

    /// E03: the name is taken.
    pub fn already_exists(resource: &ResourceName, name: &str, being_deleted: bool) -> Self {
        let prefix = if being_deleted {
            "object is being deleted: "
        } else {
            ""
        };
        Self::new(
            409,
            "AlreadyExists",
            format!("{prefix}{} \"{name}\" already exists", resource.resource()),
        )
        .with_details(details(name, &resource.group, &resource.plural))
    }

    /// E04: generateName found no free name.
    pub fn generate_name_exhausted(resource: &ResourceName, name: &str) -> Self {
        let mut d = details(name, &resource.group, &resource.plural);
        d.insert("retryAfterSeconds".into(), json!(1));
        Self::new(
            409,
            "AlreadyExists",
            format!(
                "{} \"{name}\" already exists, the server was not able to generate a unique name for the object",
                resource.resource()
            ),
        )
        .with_details(d)
    }

    /// E05: the resourceVersion precondition failed.
    pub fn conflict(resource: &ResourceName, name: &str) -> Self {
        Self::conflict_with(
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// E05/E07b shape with another explanation.
    pub fn conflict_with(resource: &ResourceName, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                resource.resource()
            ),
        )
        .with_details(details(name, &resource.group, &resource.plural))
    }

    /// E06/E07: a DeleteOptions precondition failed (the resource slot holds the kind).
    pub fn delete_precondition(resource: &ResourceName, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                resource.group_kind()
            ),
        )
        .with_details(details(name, &resource.group, &resource.kind))
    }

    /// E10: schema or metadata validation failed.
    pub fn invalid(resource: &ResourceName, name: &str, errors: &[FieldError]) -> Self {
        let rendered: Vec<String> = errors.iter().map(FieldError::to_string).collect();
        let joined = match rendered.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let mut d = details(name, &resource.group, &resource.kind);
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({"reason": e.kind.reason(), "message": e.cause_message(), "field": e.path}))
            .collect();
        d.insert("causes".into(), Value::Array(causes));
        Self::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {joined}", resource.group_kind()),
        )
        .with_details(d)
    }

    /// An update without `metadata.resourceVersion` of a kind that needs one: kube-apiserver
    /// names the resource (plural) and reports the field with value `0`.
    pub fn resource_version_required(resource: &ResourceName, name: &str) -> Self {
        let error = FieldError::new(
            "metadata.resourceVersion",
            FieldErrorKind::Invalid,
            Some("0".into()),
            "must be specified for an update",
        );
        Self::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {error}", resource.resource()),
        )
        .with_details(with_cause(
            details(name, &resource.group, &resource.plural),
            &error,
        ))
    }

    /// A 422 for a request option (`PatchOptions`, `ListOptions`, ...): kube-apiserver names the
    /// options kind of meta.k8s.io and gives the field error as a cause.
    pub fn invalid_options(options_kind: &str, error: &FieldError) -> Self {
        Self::new(
            422,
            "Invalid",
            format!("{options_kind}.meta.k8s.io \"\" is invalid: {error}"),
        )
        .with_details(with_cause(details("", "meta.k8s.io", options_kind), error))
    }

    /// A 422 whose message is given whole (E11–E16).
    pub fn invalid_message(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }

    /// E16: a JSON patch could not be applied.
    pub fn patch_rejected() -> Self {
        Self::new(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
        )
        .with_details(Map::new())
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 403 Forbidden with causes.
    pub fn forbidden(message: impl Into<String>, details: Option<Map<String, Value>>) -> Self {
        Self {
            code: 403,
            reason: "Forbidden".into(),
            message: message.into(),
            details,
        }
    }

    /// E22: the namespace does not exist.
    pub fn namespace_not_found(namespace: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("namespaces \"{namespace}\" not found"),
        )
        .with_details(details(namespace, "", "namespaces"))
    }

    /// E23: the namespace is terminating.
    pub fn namespace_terminating(resource: &ResourceName, name: &str, namespace: &str) -> Self {
        let mut d = details(name, &resource.group, &resource.plural);
        d.insert(
            "causes".into(),
            json!([{"reason": "NamespaceTerminating", "message": format!("namespace {namespace} is being terminated"), "field": "metadata.namespace"}]),
        );
        Self::forbidden(
            format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                resource.resource()
            ),
            Some(d),
        )
    }

    /// E26: unsupported request body format.
    pub fn unsupported_media_type(accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// E26 for a PATCH whose Content-Type is no patch type at all: kube-apiserver's router
    /// refuses it before any handler, with its bare text and empty details.
    pub fn unsupported_patch_type() -> Self {
        Self::new(415, "UnsupportedMediaType", "415: Unsupported Media Type")
            .with_details(Map::new())
    }

    /// E27: nothing acceptable in `Accept`.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    /// E29: a watch asked for history that is gone (sent inside a 200 watch stream).
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 500 with the given reason (empty for E32).
    pub fn internal(reason: &str, message: impl Into<String>) -> Self {
        Self::new(500, reason, message)
    }

    /// E31: the requested resourceVersion is newer than the server's.
    pub fn too_large_resource_version(requested: u64, current: u64) -> Self {
        let mut d = Map::new();
        d.insert(
            "causes".into(),
            json!([{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]),
        );
        d.insert("retryAfterSeconds".into(), json!(1));
        Self::new(
            504,
            "Timeout",
            format!("Timeout: Too large resource version: {requested}, current: {current}"),
        )
        .with_details(d)
    }

    /// The `Status` object of this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = Value::Object(details.clone());
        }
        // Go's `metav1.Status` omits an empty reason (`omitempty`).
        if self.reason.is_empty()
            && let Some(fields) = status.as_object_mut()
        {
            fields.remove("reason");
        }
        status
    }
}

/// The kind of a field error, with its Go rendering and cause reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    Invalid,
    Required,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Duplicate,
    TypeInvalid,
}

impl FieldErrorKind {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Invalid => "FieldValueInvalid",
            Self::Required => "FieldValueRequired",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::Duplicate => "FieldValueDuplicate",
            Self::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Invalid | Self::TypeInvalid => "Invalid value",
            Self::Required => "Required value",
            Self::NotSupported => "Unsupported value",
            Self::Forbidden => "Forbidden",
            Self::TooLong => "Too long",
            Self::TooMany => "Too many",
            Self::Duplicate => "Duplicate value",
        }
    }

    /// Whether the rendering omits the value.
    fn omits_value(self) -> bool {
        matches!(self, Self::Required | Self::Forbidden | Self::TooLong)
    }

    /// Errors after which CEL rules are not evaluated.
    pub fn blocks_cel(self) -> bool {
        matches!(
            self,
            Self::TypeInvalid | Self::Required | Self::TooLong | Self::TooMany | Self::NotSupported
        )
    }
}

/// One field error: `<path>: <Type>: <value>: <detail>`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub path: String,
    pub kind: FieldErrorKind,
    /// The offending value, already rendered the Go way (`"x"`, `5`, `null`).
    pub value: Option<String>,
    pub detail: String,
}

impl FieldError {
    pub fn new(
        path: impl Into<String>,
        kind: FieldErrorKind,
        value: Option<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            path: path.into(),
            kind,
            value,
            detail: detail.into(),
        }
    }

    pub fn invalid(path: impl Into<String>, value: &Value, detail: impl Into<String>) -> Self {
        Self::new(path, FieldErrorKind::Invalid, Some(go_value(value)), detail)
    }

    pub fn required(path: impl Into<String>) -> Self {
        Self::new(path, FieldErrorKind::Required, None, "")
    }

    pub fn forbidden(path: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(path, FieldErrorKind::Forbidden, None, detail)
    }

    /// Replaces the detail (for `Required value: name or generateName is required`).
    pub fn with_detail(mut self, detail: &str) -> Self {
        self.detail = detail.into();
        self
    }

    /// The message of the cause: the rendering without the path.
    fn cause_message(&self) -> String {
        let mut out = self.kind.label().to_string();
        if !self.kind.omits_value()
            && let Some(value) = &self.value
        {
            out.push_str(": ");
            out.push_str(value);
        }
        if !self.detail.is_empty() {
            out.push_str(": ");
            out.push_str(&self.detail);
        }
        out
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.cause_message())
    }
}

/// Renders a JSON value as Go's `%v`/`%q` would in a field error.
pub fn go_value(value: &Value) -> String {
    match value {
        Value::String(s) => go_quote(s),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// Go's `%q` for a string: double quotes, escapes for quotes, backslashes and controls.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error without a reason (E19's internal error) has no `reason` key, as Go omits it.
    #[test]
    fn an_empty_reason_is_omitted() {
        let status = ApiError::new(500, "", "resourceVersion should not be set").to_status();
        assert!(status.get("reason").is_none(), "{status}");
        assert_eq!(
            ApiError::conflict(&widgets(), "w").to_status()["reason"],
            "Conflict"
        );
    }

    fn widgets() -> ResourceName {
        ResourceName {
            group: "example.com".into(),
            plural: "widgets".into(),
            kind: "Widget".into(),
        }
    }

    /// [API-08] E01 and E05 exact messages and details.
    #[test]
    fn not_found_and_conflict_shapes() {
        let e = ApiError::not_found(&widgets(), "w1").to_status();
        assert_eq!(e["message"], "widgets.example.com \"w1\" not found");
        assert_eq!(
            e["details"],
            json!({"name": "w1", "group": "example.com", "kind": "widgets"})
        );
        let core = ResourceName {
            group: String::new(),
            plural: "configmaps".into(),
            kind: "ConfigMap".into(),
        };
        let e = ApiError::conflict(&core, "c").to_status();
        assert_eq!(
            e["message"],
            "Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again"
        );
        assert_eq!(e["details"], json!({"name": "c", "kind": "configmaps"}));
    }

    /// [API-08] E10 renders one error plainly and several in brackets, with causes.
    #[test]
    fn invalid_rendering() {
        let one = ApiError::invalid(&widgets(), "w", &[FieldError::required("spec.name")]);
        assert_eq!(
            one.message,
            "Widget.example.com \"w\" is invalid: spec.name: Required value"
        );
        let two = ApiError::invalid(
            &widgets(),
            "w",
            &[
                FieldError::required("spec.name"),
                FieldError::invalid(
                    "spec.size",
                    &json!("string"),
                    "spec.size in body must be of type integer: \"string\"",
                ),
            ],
        );
        assert_eq!(
            two.message,
            "Widget.example.com \"w\" is invalid: [spec.name: Required value, spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\"]"
        );
        let status = two.to_status();
        assert_eq!(
            status["details"]["causes"][0],
            json!({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.name"})
        );
        assert_eq!(status["details"]["kind"], "Widget");
    }
}
