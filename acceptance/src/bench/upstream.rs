//! The scale bench on the upstream target: real etcd, kube-apiserver and
//! kube-controller-manager, the Kany8s single bundle (`config/default`: CRDs, RBAC, namespace)
//! installed, and the manager's kubeconfig a token of the bundle's ServiceAccount, so the real
//! RBAC authorizer enforces the bundle's roles. kube-apiserver has no access log the bench can
//! read, so the manager's requests are counted from its audit log (level Metadata, only that
//! user's writes and GETs).

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kany8s_apiserver::access::Access;
use kube::Client;
use serde::Deserialize;

use super::BenchError;
use crate::upstream::{Components, Options, Upstream, pki};

/// The ServiceAccount of `config/default` (namespace `kany8s-system`, prefix `kany8s-`).
const ACCOUNT_NAMESPACE: &str = "kany8s-system";
const ACCOUNT_NAME: &str = "kany8s-controller-manager";

/// The verbs the bench counts; the audit policy logs nothing else, which keeps the log small
/// (a watch or list of the manager is not a figure of the bench).
const AUDITED_VERBS: &[&str] = &[
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "get",
];
const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

/// A running upstream target with the manager's identity and its audit log.
pub(super) struct UpstreamTarget {
    pub(super) audit: AuditLog,
    /// Stops every process when dropped.
    _upstream: Upstream,
}

/// What [`start`] hands the bench.
pub(super) struct Started {
    pub(super) target: UpstreamTarget,
    /// The admin client (`system:masters`): the bench, fake-kro and the simulated core.
    pub(super) client: Client,
    /// The manager's kubeconfig: a token of the bundle's ServiceAccount.
    pub(super) manager_kubeconfig: PathBuf,
}

/// The audit policy: Metadata for `user`'s counted verbs, nothing for anyone else.
fn audit_policy(user: &str) -> String {
    let verbs = AUDITED_VERBS.join(", ");
    format!(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n  users: [\"{user}\"]\n  verbs: [{verbs}]\n- level: None\n"
    )
}

/// Starts etcd, kube-apiserver (with the audit log) and kube-controller-manager in `dir`,
/// installs `crds` and the Kany8s single bundle, and writes the manager's kubeconfig.
pub(super) async fn start(
    dir: &Path,
    user: &str,
    crds: Vec<serde_json::Value>,
) -> Result<Started, BenchError> {
    if user != format!("system:serviceaccount:{ACCOUNT_NAMESPACE}:{ACCOUNT_NAME}") {
        return Err(BenchError(format!(
            "the upstream bench runs the manager as {ACCOUNT_NAMESPACE}/{ACCOUNT_NAME}, not {user}"
        )));
    }
    let policy = dir.join("audit-policy.yaml");
    std::fs::write(&policy, audit_policy(user))
        .map_err(|e| BenchError(format!("{}: {e}", policy.display())))?;
    let audit_path = dir.join("audit.log");
    let mut options = Options::new(&dir.join("upstream"), &dir.join("admin.kubeconfig"));
    options.components = Components::Kubernetes;
    options.managers = false;
    options.apiserver_args = vec![
        format!("--audit-policy-file={}", policy.display()),
        format!("--audit-log-path={}", audit_path.display()),
        // No rotation: the reader follows one file.
        "--audit-log-maxsize=0".into(),
        // Each event is written as its request completes, not batched: the counts trail the
        // responses by the write of one line, not by a batch interval.
        "--audit-log-mode=blocking".into(),
        "--audit-log-format=json".into(),
    ];
    let upstream = Upstream::start(options)
        .await
        .map_err(|e| BenchError(format!("the upstream target: {e}")))?;
    for (component, took) in &upstream.timings {
        eprintln!(
            "bench scale: upstream {component} ready in {:.1}s",
            took.as_secs_f64()
        );
    }
    let client = upstream
        .admin()
        .await
        .map_err(|e| BenchError(e.to_string()))?;
    crate::env::install(&client, crds)
        .await
        .map_err(|e| BenchError(e.to_string()))?;
    upstream
        .install_bundles(&client, &["default"], &[])
        .await
        .map_err(|e| BenchError(format!("the Kany8s bundle: {e}")))?;
    let token = upstream
        .service_account_token(&client, ACCOUNT_NAMESPACE, ACCOUNT_NAME)
        .await
        .map_err(|e| BenchError(e.to_string()))?;
    let manager_kubeconfig = dir.join("manager.kubeconfig");
    let config = pki::kubeconfig(
        &upstream.server,
        &upstream.ca,
        user,
        pki::Credential::Token(&token),
    );
    std::fs::write(&manager_kubeconfig, config)
        .map_err(|e| BenchError(format!("{}: {e}", manager_kubeconfig.display())))?;
    Ok(Started {
        target: UpstreamTarget {
            audit: AuditLog::new(audit_path),
            _upstream: upstream,
        },
        client,
        manager_kubeconfig,
    })
}

/// The fields of an audit event (audit.k8s.io/v1 Event) the bench counts by.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditEvent {
    stage: String,
    verb: String,
    user: AuditUser,
    object_ref: Option<ObjectRef>,
    response_status: Option<ResponseStatus>,
}

#[derive(Debug, Deserialize)]
struct AuditUser {
    username: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectRef {
    resource: Option<String>,
    subresource: Option<String>,
    api_group: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ResponseStatus {
    code: Option<u16>,
}

/// kube-apiserver's audit log, read as it grows, counted like the embedded server's access
/// log: per user, verb, group and `plural[/subresource]`.
pub(super) struct AuditLog {
    path: PathBuf,
    state: Mutex<AuditState>,
}

#[derive(Default)]
struct AuditState {
    /// Bytes of the file already counted.
    offset: u64,
    /// An event whose line was not complete at the last read.
    partial: String,
    counts: BTreeMap<Access, u64>,
}

impl AuditLog {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            state: Mutex::new(AuditState::default()),
        }
    }

    /// Counts the events appended since the last call.
    fn refresh(&self, state: &mut AuditState) {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return;
        };
        if file.seek(SeekFrom::Start(state.offset)).is_err() {
            return;
        }
        let mut bytes = Vec::new();
        let Ok(read) = file.read_to_end(&mut bytes) else {
            return;
        };
        state.offset += read as u64;
        state.partial.push_str(&String::from_utf8_lossy(&bytes));
        let Some(end) = state.partial.rfind('\n') else {
            return;
        };
        let complete: String = state.partial.drain(..=end).collect();
        for line in complete.lines() {
            for access in accesses(line) {
                *state.counts.entry(access).or_default() += 1;
            }
        }
    }

    fn counts_of(&self, user: &str, verbs: &[&str]) -> BTreeMap<Access, u64> {
        let Ok(mut state) = self.state.lock() else {
            return BTreeMap::new();
        };
        self.refresh(&mut state);
        state
            .counts
            .iter()
            .filter(|(a, _)| a.user == user && verbs.contains(&a.verb.as_str()))
            .map(|(a, n)| (a.clone(), *n))
            .collect()
    }

    /// Writes made so far by `user`, per kind of access.
    pub(super) fn write_counts(&self, user: &str) -> BTreeMap<Access, u64> {
        self.counts_of(user, WRITE_VERBS)
    }

    /// GETs made so far by `user`, per kind of access.
    pub(super) fn read_counts(&self, user: &str) -> BTreeMap<Access, u64> {
        self.counts_of(user, &["get"])
    }
}

/// What one audit log line counts as. Only completed requests to resources count; a patch
/// that created its object (201) counts as `create` as well, as the embedded server's access
/// log records it (kube-apiserver authorizes it for both).
fn accesses(line: &str) -> Vec<Access> {
    let Ok(event) = serde_json::from_str::<AuditEvent>(line) else {
        return Vec::new();
    };
    if event.stage != "ResponseComplete" && event.stage != "Panic" {
        return Vec::new();
    }
    let Some(object) = event.object_ref else {
        return Vec::new();
    };
    let Some(plural) = object.resource else {
        return Vec::new();
    };
    let resource = match object.subresource {
        Some(sub) if !sub.is_empty() => format!("{plural}/{sub}"),
        _ => plural,
    };
    let access = Access {
        user: event.user.username,
        verb: event.verb,
        group: object.api_group.unwrap_or_default(),
        resource,
        metadata_only: false,
    };
    let created = access.verb == "patch" && event.response_status.and_then(|s| s.code) == Some(201);
    let mut out = Vec::new();
    if created {
        out.push(Access {
            verb: "create".into(),
            ..access.clone()
        });
    }
    out.push(access);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "system:serviceaccount:kany8s-system:kany8s-controller-manager";

    fn line(stage: &str, verb: &str, object_ref: &str, code: u16) -> String {
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a","stage":"{stage}","requestURI":"/x","verb":"{verb}","user":{{"username":"{USER}","groups":["system:serviceaccounts"]}},{object_ref}"responseStatus":{{"metadata":{{}},"code":{code}}}}}"#
        )
    }

    #[test]
    fn counts_completed_resource_requests_by_group_and_subresource() {
        let status = r#""objectRef":{"resource":"kany8scontrolplanes","namespace":"bench","name":"c0","apiGroup":"controlplane.cluster.x-k8s.io","apiVersion":"v1alpha1","subresource":"status"},"#;
        let secret = r#""objectRef":{"resource":"secrets","namespace":"bench","name":"c0-kubeconfig","apiVersion":"v1"},"#;
        let got: Vec<Access> = [
            line("ResponseComplete", "patch", status, 200),
            line("ResponseComplete", "get", secret, 404),
            // A watch's first stage and a non-resource request count for nothing.
            line("ResponseStarted", "patch", status, 200),
            line("ResponseComplete", "get", "", 200),
            "not json".to_string(),
        ]
        .iter()
        .flat_map(|l| accesses(l))
        .collect();
        let summary: Vec<(String, String, String)> = got
            .into_iter()
            .map(|a| (a.verb, a.group, a.resource))
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "patch".into(),
                    "controlplane.cluster.x-k8s.io".into(),
                    "kany8scontrolplanes/status".into()
                ),
                ("get".into(), String::new(), "secrets".into()),
            ]
        );
    }

    #[test]
    fn a_patch_that_creates_counts_as_create_too() {
        let secret = r#""objectRef":{"resource":"secrets","namespace":"bench","name":"c0-kubeconfig","apiVersion":"v1"},"#;
        let verbs: Vec<String> = accesses(&line("ResponseComplete", "patch", secret, 201))
            .into_iter()
            .map(|a| a.verb)
            .collect();
        assert_eq!(verbs, vec!["create".to_string(), "patch".to_string()]);
    }

    #[test]
    fn the_reader_counts_appended_events_once_and_waits_for_a_whole_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        let secret = r#""objectRef":{"resource":"secrets","namespace":"bench","name":"s","apiVersion":"v1"},"#;
        let event = line("ResponseComplete", "update", secret, 200);
        let log = AuditLog::new(path.clone());
        assert!(log.write_counts(USER).is_empty(), "no file yet");
        std::fs::write(&path, format!("{event}\n{}", &event[..20])).expect("write");
        assert_eq!(log.write_counts(USER).values().sum::<u64>(), 1);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        std::io::Write::write_all(&mut file, format!("{}\n", &event[20..]).as_bytes())
            .expect("append");
        assert_eq!(log.write_counts(USER).values().sum::<u64>(), 2);
        assert_eq!(
            log.write_counts(USER).values().sum::<u64>(),
            2,
            "counted once"
        );
        assert!(log.write_counts("someone-else").is_empty());
        assert!(log.read_counts(USER).is_empty());
    }

    #[test]
    fn the_policy_logs_only_the_manager() {
        let policy: serde_json::Value =
            yaml_serde::from_str(&audit_policy(USER)).expect("the policy is YAML");
        assert_eq!(policy["rules"][0]["users"][0], USER);
        assert_eq!(policy["rules"][0]["level"], "Metadata");
        assert_eq!(policy["rules"][1]["level"], "None");
        assert_eq!(policy["omitStages"][0], "RequestReceived");
    }
}
