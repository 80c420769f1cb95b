//! The normalised status reader (provider.md §4.2): the Kany8s status contract read from a kro
//! instance or an external backend object, with type errors as values, not failures.

use serde_json::Value;

/// The JSON type name the spec uses in messages ([ST-02]).
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The backend's status, normalised ([ST-01]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackendStatus {
    pub ready: bool,
    pub endpoint: String,
    pub reason: String,
    pub message: String,
    pub terminal: bool,
    pub version: Option<String>,
    /// `status.kubeconfigSecretRef`: (name, namespace).
    pub kubeconfig_ref: Option<(String, Option<String>)>,
    /// [ST-04]: the message when the status describes an older generation.
    pub stale: Option<String>,
}

/// `read status.<path>: expected <type>, got <json type>` ([ST-02], [ST-03]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("read status{path}: expected {expected}, got {got}")]
pub struct InvalidBackendStatus {
    path: String,
    expected: &'static str,
    got: &'static str,
}

fn invalid(path: &str, expected: &'static str, value: &Value) -> InvalidBackendStatus {
    InvalidBackendStatus {
        path: if path.is_empty() {
            String::new()
        } else {
            format!(".{path}")
        },
        expected,
        got: json_type(value),
    }
}

const MAX_MESSAGE: usize = 32768;

/// Reads the status of `object` (a backend object with `metadata` and `status`).
pub fn read(object: &Value) -> Result<BackendStatus, InvalidBackendStatus> {
    let status = match object.get("status") {
        None | Some(Value::Null) => return Ok(BackendStatus::default()),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(invalid("", "object", other)),
    };
    let boolean = |key: &str| -> Result<bool, InvalidBackendStatus> {
        match status.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(invalid(key, "boolean", other)),
        }
    };
    let string = |key: &str| -> Result<Option<String>, InvalidBackendStatus> {
        match status.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(invalid(key, "string", other)),
        }
    };
    let ready = boolean("ready")?;
    let endpoint = string("endpoint")?.unwrap_or_default();
    let reason = string("reason")?.unwrap_or_default();
    let message = truncate(string("message")?.unwrap_or_default());
    let terminal = boolean("terminal")?;
    let observed_generation = match status.get("observedGeneration") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Number(n)) => Some(
            n.as_i64()
                .ok_or_else(|| invalid("observedGeneration", "integer", v))?,
        ),
        Some(other) => return Err(invalid("observedGeneration", "integer", other)),
    };
    let version = string("version")?;
    let kubeconfig_ref = match status.get("kubeconfigSecretRef") {
        None | Some(Value::Null) => None,
        Some(Value::Object(reference)) => {
            let field = |key: &str| -> Result<Option<String>, InvalidBackendStatus> {
                match reference.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
                    Some(other) => Err(invalid(
                        &format!("kubeconfigSecretRef.{key}"),
                        "string",
                        other,
                    )),
                }
            };
            let name = field("name")?.unwrap_or_default();
            let namespace = field("namespace")?.filter(|n| !n.is_empty());
            (!name.is_empty()).then_some((name, namespace))
        }
        Some(other) => return Err(invalid("kubeconfigSecretRef", "object", other)),
    };
    let generation = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64);
    let stale = match (observed_generation, generation) {
        (Some(observed), Some(generation)) if observed < generation => Some(format!(
            "waiting for backend to observe generation {generation} (observed {observed})"
        )),
        _ => None,
    };
    Ok(BackendStatus {
        ready,
        endpoint,
        reason,
        message,
        terminal,
        version,
        kubeconfig_ref,
        stale,
    })
}

/// [ST-05]: a reason that is not a valid condition reason is replaced by `default`.
pub fn sanitize_reason(reason: &str, default: &str) -> String {
    let mut chars = reason.chars();
    let valid = reason.len() <= 1024
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && reason
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ',' | ':'))
        && reason
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        reason.to_string()
    } else {
        default.to_string()
    }
}

fn truncate(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

/// What a control plane copies from its Kany8sKubeadmControlPlane ([CT-04], [CT-30]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeadmReport {
    pub initialized: bool,
    pub versions: Vec<crate::api::ControlPlaneVersion>,
    pub version: Option<String>,
}

/// [CT-04], [CT-30]: initialization and versions of a Kany8sKubeadmControlPlane object.
pub fn kubeadm_report(object: &Value) -> KubeadmReport {
    let status = &object["status"];
    KubeadmReport {
        initialized: status["initialization"]["controlPlaneInitialized"] == true,
        versions: serde_json::from_value(status["versions"].clone()).unwrap_or_default(),
        version: status["version"].as_str().map(str::to_string),
    }
}

/// [CP-42]: the status adapter of a Kany8sKubeadmControlPlane object: its endpoint, its
/// `Ready` condition and its failure fields in the normalised form.
pub fn read_kubeadm(object: &Value) -> BackendStatus {
    let endpoint: Option<crate::capi::ApiEndpoint> =
        serde_json::from_value(object["spec"]["controlPlaneEndpoint"].clone()).ok();
    let status = &object["status"];
    let ready = status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"));
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let failure_reason = text(&status["failureReason"]);
    let failure_message = text(&status["failureMessage"]);
    let terminal = !failure_reason.is_empty() || !failure_message.is_empty();
    BackendStatus {
        ready: !terminal && ready.is_some_and(|c| c["status"] == "True"),
        endpoint: endpoint
            .filter(crate::capi::ApiEndpoint::is_valid)
            .map(|e| e.host_port())
            .unwrap_or_default(),
        reason: if terminal {
            failure_reason
        } else {
            ready
                .map(|c| text(&c["reason"]))
                .unwrap_or_else(|| "Creating".into())
        },
        message: if terminal {
            failure_message
        } else {
            ready.map(|c| text(&c["message"])).unwrap_or_default()
        },
        terminal,
        version: None,
        kubeconfig_ref: None,
        stale: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    /// [ST-01]–[ST-04].
    #[rstest]
    #[case(json!({}), Ok(BackendStatus::default()))]
    #[case(json!({"status": null}), Ok(BackendStatus::default()))]
    #[case(json!({"status": "x"}), Err("read status: expected object, got string"))]
    #[case(json!({"status": {"ready": "true"}}), Err("read status.ready: expected boolean, got string"))]
    #[case(json!({"status": {"endpoint": 6443}}), Err("read status.endpoint: expected string, got integer"))]
    #[case(json!({"status": {"terminal": 1.5}}), Err("read status.terminal: expected boolean, got number"))]
    #[case(json!({"status": {"observedGeneration": 1.5}}), Err("read status.observedGeneration: expected integer, got number"))]
    #[case(json!({"status": {"version": []}}), Err("read status.version: expected string, got array"))]
    #[case(json!({"status": {"kubeconfigSecretRef": "s"}}), Err("read status.kubeconfigSecretRef: expected object, got string"))]
    #[case(json!({"status": {"kubeconfigSecretRef": {"name": true}}}), Err("read status.kubeconfigSecretRef.name: expected string, got boolean"))]
    #[case(json!({"status": {"state": 7, "conditions": "ignored"}}), Ok(BackendStatus::default()))]
    fn reads_and_type_errors(
        #[case] object: serde_json::Value,
        #[case] expected: Result<BackendStatus, &str>,
    ) {
        assert_eq!(
            read(&object).map_err(|e| e.to_string()),
            expected.map_err(str::to_string)
        );
    }

    #[test]
    fn full_status_and_staleness() {
        let object = json!({"metadata": {"generation": 3}, "status": {
            "ready": true, "endpoint": "https://x:6443", "reason": "Up", "message": "m",
            "terminal": false, "observedGeneration": 2, "version": "1.30",
            "kubeconfigSecretRef": {"name": " kc ", "namespace": ""}}});
        let status = read(&object).unwrap();
        assert!(status.ready);
        assert_eq!(status.endpoint, "https://x:6443");
        assert_eq!(status.kubeconfig_ref, Some(("kc".into(), None)));
        assert_eq!(status.version.as_deref(), Some("1.30"));
        assert_eq!(
            status.stale.as_deref(),
            Some("waiting for backend to observe generation 3 (observed 2)")
        );
        let fresh = json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 2}});
        assert_eq!(read(&fresh).unwrap().stale, None);
    }

    /// [ST-05].
    #[rstest]
    #[case("Provisioning", "Provisioning")]
    #[case("in progress", "Creating")]
    #[case("", "Creating")]
    #[case("9Lives", "Creating")]
    #[case("A,B:c_d", "A,B:c_d")]
    fn reasons_are_sanitised(#[case] reason: &str, #[case] expected: &str) {
        assert_eq!(sanitize_reason(reason, "Creating"), expected);
    }

    #[test]
    fn long_messages_are_truncated_on_a_char_boundary() {
        let message = "é".repeat(20000);
        let object = json!({"status": {"message": message}});
        let read = read(&object).unwrap().message;
        assert!(read.len() <= MAX_MESSAGE);
        assert!(read.chars().all(|c| c == 'é'));
    }
}
