//! Simulation scripts (kro.md §5.11): the `fake-kro/script` annotation parsed once into typed
//! timings and faults, and read as perturbations of a pass — held readiness and forced CEL
//! failures handed to the graph engine, apply failures and overlays on observations, status
//! overrides, deletion holds and a published kubeconfig.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::DynamicObject;
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::graph::{NodeFault, Readiness};

/// Annotation holding a per-instance simulation script (JSON).
pub const SCRIPT_ANNOTATION: &str = "fake-kro/script";

/// Why a script was refused; each names the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("fake-kro/script: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "fake-kro/script: {field}: invalid duration {value:?} (a Go duration: 500ms, 3s, 1m30s)"
    )]
    Duration { field: String, value: String },
    #[error("fake-kro/script: fail.kind: unknown failure kind {0:?} (apply, cel, graph or manage)")]
    FailureKind(String),
}

/// A simulation script (kro.md §5.11).
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// Observed-state overlays per resource id, applied after `after`.
    pub overlays: BTreeMap<String, Overlay>,
    /// Readiness of every node is forced false until this long after the first pass.
    pub ready_after: Option<Duration>,
    /// Author status fields replaced after evaluation (`null` removes one).
    pub status_overrides: Map<String, Value>,
    /// An injected failure.
    pub fail: Option<Failure>,
    /// Requeue interval while not ready (default: the simulator's).
    pub requeue: Option<Duration>,
    /// Hold the finalizer this long after deletion starts.
    pub deletion: Option<Deletion>,
    /// A kubeconfig Secret the "cloud" publishes for the instance.
    pub kubeconfig_secret: Option<KubeconfigSecret>,
}

#[derive(Clone, Debug)]
pub struct Overlay {
    pub after: Option<Duration>,
    pub object: Value,
}

/// Where an injected failure strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// Applying a node's child fails (`apply results contain errors: …`).
    Apply,
    /// Evaluating a node's template fails.
    Cel,
    /// The graph fails to resolve (`GraphResolved=False`).
    Graph,
    /// Adding kro's finalizer and labels fails (`InstanceManaged=False`).
    Manage,
}

#[derive(Clone, Debug)]
pub struct Failure {
    pub after: Option<Duration>,
    /// The node an `apply` or `cel` failure strikes (default: every node).
    pub node: Option<String>,
    /// The failure ends this long after the first pass.
    pub recover_after: Option<Duration>,
    pub kind: FailureKind,
    pub message: String,
}

#[derive(Clone, Debug, Default)]
pub struct Deletion {
    pub hold_for: Option<Duration>,
    /// While held: `InstanceManaged=False` with `failed removing finalizer: <message>`.
    pub message: Option<String>,
}

/// A kubeconfig Secret published in the instance's namespace, owned by the instance (so the
/// garbage collector removes it with the instance), as a managed-Kubernetes operator would.
#[derive(Clone, Debug, Default)]
pub struct KubeconfigSecret {
    pub name: String,
    /// Published this long after the instance's first pass.
    pub after: Option<Duration>,
    /// The data key (default `value`, as Cluster API uses).
    pub key: Option<String>,
    /// The API server URL (default `https://` + the instance's `status.endpoint`).
    pub server: Option<String>,
    /// Verbatim content instead of a generated kubeconfig (to script invalid ones).
    pub content: Option<String>,
}

/// The script as written: free strings, checked by `Script::parse`.
mod raw {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::{Map, Value};

    #[derive(Default, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Script {
        #[serde(default)]
        pub overlays: BTreeMap<String, Overlay>,
        #[serde(default)]
        pub ready_after: Option<String>,
        #[serde(default)]
        pub status_overrides: Map<String, Value>,
        #[serde(default)]
        pub fail: Option<Failure>,
        #[serde(default)]
        pub requeue: Option<String>,
        #[serde(default)]
        pub deletion: Option<Deletion>,
        #[serde(default)]
        pub kubeconfig_secret: Option<KubeconfigSecret>,
    }

    #[derive(Deserialize)]
    pub(super) struct Overlay {
        #[serde(default)]
        pub after: Option<String>,
        pub object: Value,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Failure {
        #[serde(default)]
        pub after: Option<String>,
        #[serde(default)]
        pub node: Option<String>,
        #[serde(default)]
        pub recover_after: Option<String>,
        pub kind: String,
        #[serde(default)]
        pub message: String,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Deletion {
        #[serde(default)]
        pub hold_for: Option<String>,
        #[serde(default)]
        pub message: Option<String>,
    }

    #[derive(Deserialize)]
    pub(super) struct KubeconfigSecret {
        pub name: String,
        #[serde(default)]
        pub after: Option<String>,
        #[serde(default)]
        pub key: Option<String>,
        #[serde(default)]
        pub server: Option<String>,
        #[serde(default)]
        pub content: Option<String>,
    }
}

/// A Go duration (`500ms`, `3s`, `1m30s`).
pub fn duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        total += value
            * match &rest[..u] {
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return None,
            };
        rest = &rest[u..];
    }
    Some(Duration::from_secs_f64(total))
}

/// The duration in script field `field`, if set.
fn duration_field(field: &str, text: Option<String>) -> Result<Option<Duration>, ScriptError> {
    text.map(|value| {
        duration(&value).ok_or_else(|| ScriptError::Duration {
            field: field.to_string(),
            value,
        })
    })
    .transpose()
}

impl FailureKind {
    fn parse(text: &str) -> Result<Self, ScriptError> {
        match text {
            "apply" => Ok(Self::Apply),
            "cel" => Ok(Self::Cel),
            "graph" => Ok(Self::Graph),
            "manage" => Ok(Self::Manage),
            other => Err(ScriptError::FailureKind(other.to_string())),
        }
    }
}

/// Whether `wait` has passed since `since` (no wait: at once).
fn elapsed(since: Instant, wait: Option<Duration>) -> bool {
    wait.is_none_or(|wait| since.elapsed() >= wait)
}

impl Script {
    /// Parses a script's JSON; a bad duration or failure kind is refused with its field named.
    pub fn parse(text: &str) -> Result<Self, ScriptError> {
        let raw: raw::Script = serde_json::from_str(text)?;
        let mut overlays = BTreeMap::new();
        for (id, overlay) in raw.overlays {
            let after = duration_field(&format!("overlays.{id}.after"), overlay.after)?;
            overlays.insert(
                id,
                Overlay {
                    after,
                    object: overlay.object,
                },
            );
        }
        let fail = match raw.fail {
            None => None,
            Some(f) => Some(Failure {
                after: duration_field("fail.after", f.after)?,
                node: f.node,
                recover_after: duration_field("fail.recoverAfter", f.recover_after)?,
                kind: FailureKind::parse(&f.kind)?,
                message: f.message,
            }),
        };
        let deletion = match raw.deletion {
            None => None,
            Some(d) => Some(Deletion {
                hold_for: duration_field("deletion.holdFor", d.hold_for)?,
                message: d.message,
            }),
        };
        let kubeconfig_secret = match raw.kubeconfig_secret {
            None => None,
            Some(k) => Some(KubeconfigSecret {
                after: duration_field("kubeconfigSecret.after", k.after)?,
                name: k.name,
                key: k.key,
                server: k.server,
                content: k.content,
            }),
        };
        Ok(Self {
            overlays,
            ready_after: duration_field("readyAfter", raw.ready_after)?,
            status_overrides: raw.status_overrides,
            fail,
            requeue: duration_field("requeue", raw.requeue)?,
            deletion,
            kubeconfig_secret,
        })
    }

    /// The script of `instance`; an invalid one is logged and ignored (the instance then runs
    /// unscripted).
    pub fn of(instance: &DynamicObject) -> Self {
        let Some(text) = instance.annotations().get(SCRIPT_ANNOTATION) else {
            return Self::default();
        };
        Self::parse(text).unwrap_or_else(|error| {
            tracing::warn!(instance = %instance.name_any(), %error, "ignoring the simulation script");
            Self::default()
        })
    }

    /// The failure in force: after its `after`, before its `recoverAfter`.
    pub fn failure(&self, first_pass: Instant) -> Option<&Failure> {
        self.fail.as_ref().filter(|f| {
            elapsed(first_pass, f.after)
                && (f.recover_after.is_none() || !elapsed(first_pass, f.recover_after))
        })
    }

    /// How the pass judges readiness: held until `readyAfter`.
    pub fn readiness(&self, first_pass: Instant) -> Readiness {
        if elapsed(first_pass, self.ready_after) {
            Readiness::Evaluate
        } else {
            Readiness::Held
        }
    }

    pub fn requeue_or(&self, default: Duration) -> Duration {
        self.requeue.unwrap_or(default)
    }

    /// The observed-state overlay of node `id`, once its `after` has passed.
    pub fn overlay(&self, id: &str, first_pass: Instant) -> Option<&Value> {
        self.overlays
            .get(id)
            .filter(|o| elapsed(first_pass, o.after))
            .map(|o| &o.object)
    }

    /// Replaces author status fields (`null` removes one).
    pub fn override_status(&self, author: &mut Map<String, Value>) {
        for (key, value) in &self.status_overrides {
            if value.is_null() {
                author.remove(key);
            } else {
                author.insert(key.clone(), value.clone());
            }
        }
    }

    /// While the finalizer is held (`deletion.holdFor` since `started`): `Some`, with the
    /// message to report, if any.
    pub fn deletion_hold(&self, started: Instant) -> Option<Option<&str>> {
        self.deletion
            .as_ref()
            .filter(|d| !elapsed(started, d.hold_for))
            .map(|d| d.message.as_deref())
    }

    /// The kubeconfig Secret to publish, once its `after` has passed.
    pub fn kubeconfig_due(&self, first_pass: Instant) -> Option<&KubeconfigSecret> {
        self.kubeconfig_secret
            .as_ref()
            .filter(|k| elapsed(first_pass, k.after))
    }
}

impl Failure {
    fn hits(&self, id: &str) -> bool {
        self.node.as_deref().is_none_or(|n| n == id)
    }

    /// A `cel` failure, as the engine's forced evaluation failure.
    pub fn cel_fault(&self) -> Option<NodeFault> {
        (self.kind == FailureKind::Cel).then(|| NodeFault {
            node: self.node.clone(),
            message: self.message.clone(),
        })
    }

    /// An `apply` failure's message for node `id`.
    pub fn apply_fault(&self, id: &str) -> Option<&str> {
        (self.kind == FailureKind::Apply && self.hits(id)).then_some(self.message.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [KRO-24] scripts are parsed once: durations and failure kinds are typed, and a bad
    /// value is refused with its field named.
    #[test]
    fn scripts_are_typed_and_errors_name_the_field() {
        let script = Script::parse(
            r#"{"readyAfter": "1m30s", "fail": {"kind": "cel", "node": "svc", "after": "500ms"},
                "overlays": {"cm": {"after": "2s", "object": {"data": {"ok": "yes"}}}}}"#,
        )
        .unwrap();
        assert_eq!(script.ready_after, Some(Duration::from_secs(90)));
        let fail = script.fail.as_ref().unwrap();
        assert_eq!(fail.kind, FailureKind::Cel);
        assert_eq!(fail.after, Some(Duration::from_millis(500)));
        assert_eq!(
            fail.cel_fault(),
            Some(NodeFault {
                node: Some("svc".into()),
                message: String::new()
            })
        );
        assert_eq!(fail.apply_fault("svc"), None);
        assert_eq!(script.overlays["cm"].after, Some(Duration::from_secs(2)));

        let error = |text: &str| Script::parse(text).unwrap_err().to_string();
        assert_eq!(
            error(r#"{"fail": {"kind": "explode"}}"#),
            "fake-kro/script: fail.kind: unknown failure kind \"explode\" (apply, cel, graph or manage)"
        );
        assert_eq!(
            error(r#"{"fail": {"kind": "apply", "recoverAfter": "soon"}}"#),
            "fake-kro/script: fail.recoverAfter: invalid duration \"soon\" (a Go duration: 500ms, 3s, 1m30s)"
        );
        assert!(
            error(r#"{"overlays": {"cm": {"after": "1x", "object": {}}}}"#)
                .contains("overlays.cm.after")
        );
        assert!(error(r#"{"fail": {}}"#).contains("missing field `kind`"));
    }

    #[test]
    fn failures_strike_their_node_and_window() {
        let script =
            Script::parse(r#"{"fail": {"kind": "apply", "node": "svc", "message": "quota", "recoverAfter": "1h"}}"#)
                .unwrap();
        let now = Instant::now();
        let fail = script.failure(now).unwrap();
        assert_eq!(fail.apply_fault("svc"), Some("quota"));
        assert_eq!(fail.apply_fault("cm"), None);
        assert_eq!(fail.cel_fault(), None);
        let later = Script::parse(r#"{"fail": {"kind": "graph", "after": "1h"}}"#).unwrap();
        assert!(later.failure(now).is_none());
        assert_eq!(later.readiness(now), Readiness::Evaluate);
        let held = Script::parse(r#"{"readyAfter": "1h"}"#).unwrap();
        assert_eq!(held.readiness(now), Readiness::Held);
    }
}
