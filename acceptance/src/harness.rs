//! What every scenario runs on ([ACC-05]): a namespace of its own, manifests applied with the
//! real kubectl (placeholders substituted), objects read with kube-rs, waits with explicit
//! timeouts, step-by-step progress, and on failure an artifacts folder with every object of
//! the scenario, the events and the controller logs.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{Api, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::discovery::{Discovery, Scope, verbs};
use serde_json::{Value, json};

use crate::env::LogSink;

/// Where a scenario runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The embedded API server, fake-kro and the simulated Cluster API core, in process.
    Embedded,
    /// The real etcd, kube-apiserver, kro and Cluster API as loopback processes (upstream/).
    Upstream,
    /// The cluster of `$KUBECONFIG` (kind with CAPD).
    Kind,
}

impl Target {
    /// The wait timeout of the target ([ACC-01], [ACC-02]).
    pub fn timeout(self) -> Duration {
        match self {
            Target::Embedded => Duration::from_secs(30),
            // Real controllers with their own requeue and backoff timings, on 2 shared cores.
            Target::Upstream => Duration::from_secs(120),
            Target::Kind => Duration::from_secs(240),
        }
    }
}

/// What a scenario needs to know of the upstream target beyond its client.
#[derive(Clone, Debug)]
pub struct UpstreamTarget {
    /// The target's kubectl (of kube-apiserver's minor).
    pub kubectl: PathBuf,
    /// `https://127.0.0.1:PORT`.
    pub server: String,
    /// Every port the target listens on: the only places a kubeconfig fixture may point.
    pub ports: Vec<u16>,
    /// The target's CA (PEM), which a workload cluster's kubeconfig must trust.
    pub ca: String,
    /// The target's CA key (PEM): a kubeadm cluster whose CA it is gets client certificates the
    /// target accepts, so the target can play that workload cluster.
    pub ca_key: String,
    /// The components' log files, copied into the artifacts.
    pub logs: PathBuf,
}

/// A failed step: what was expected and what was seen.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl From<kube::Error> for Failure {
    fn from(e: kube::Error) -> Self {
        Failure(format!("kubernetes API: {e}"))
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Self {
        Failure(format!("encoding: {e}"))
    }
}

/// Whether the real kubectl is on the PATH.
fn kubectl_on_path() -> bool {
    std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What a test that needs a missing tool does: outside CI it is skipped with the returned
/// message; in CI (`CI` set, as `.ci/run` does) the returned `Err` fails it, so a CI box
/// without the tool cannot pass the tests that need it.
pub fn missing_tool(tool: &str, test: &str, ci: bool) -> Result<String, String> {
    if ci {
        Err(format!(
            "{test} needs {tool}, which is not on the PATH; CI is set, so this fails instead of skipping"
        ))
    } else {
        Ok(format!("skipping {test}: {tool} is not on the PATH"))
    }
}

/// Whether `test`, which drives the real kubectl, may run: true when kubectl is on the PATH;
/// otherwise false after printing why it is skipped, or, when `CI` is set, a panic that fails
/// the test.
pub fn require_kubectl(test: &str) -> bool {
    if kubectl_on_path() {
        return true;
    }
    match missing_tool("kubectl", test, std::env::var_os("CI").is_some()) {
        Ok(skipped) => {
            eprintln!("{skipped}");
            false
        }
        Err(failure) => panic!("{failure}"),
    }
}

/// Fails with `message` unless `condition` holds.
pub fn check(condition: bool, message: impl FnOnce() -> String) -> Result<(), Failure> {
    if condition {
        Ok(())
    } else {
        Err(Failure(message()))
    }
}

/// Fails unless `actual == expected`.
pub fn check_eq<T: PartialEq + std::fmt::Debug>(
    what: &str,
    actual: T,
    expected: T,
) -> Result<(), Failure> {
    check(actual == expected, || {
        format!("{what}: expected {expected:?}, got {actual:?}")
    })
}

/// The running context of one scenario.
pub struct Harness {
    pub scenario: String,
    pub client: Client,
    pub kubeconfig: PathBuf,
    pub namespace: String,
    pub target: Target,
    pub timeout: Duration,
    pub fixtures: PathBuf,
    /// The upstream target's details (None on the other targets).
    pub upstream: Option<UpstreamTarget>,
    logs: Option<LogSink>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("scenario", &self.scenario)
            .field("namespace", &self.namespace)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// A condition as (status, reason, message).
pub fn condition(object: &Value, type_: &str) -> Option<(String, String, String)> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (text("status"), text("reason"), text("message"))
        })
}

/// Whether `object` has condition `type_` with `status` (and `reason`, when given).
pub fn has_condition(object: &Value, type_: &str, status: &str, reason: Option<&str>) -> bool {
    condition(object, type_).is_some_and(|c| c.0 == status && reason.is_none_or(|r| c.1 == r))
}

impl Harness {
    pub fn new(
        scenario: &str,
        client: Client,
        kubeconfig: &Path,
        target: Target,
        logs: Option<LogSink>,
    ) -> Self {
        let suffix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() % 100_000)
            .unwrap_or(0);
        Self {
            scenario: scenario.to_string(),
            client,
            kubeconfig: kubeconfig.to_path_buf(),
            namespace: format!("{scenario}-{suffix}"),
            target,
            timeout: target.timeout(),
            fixtures: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures"),
            upstream: None,
            logs,
        }
    }

    /// The same harness on the upstream target.
    pub fn on_upstream(mut self, upstream: UpstreamTarget) -> Self {
        self.upstream = Some(upstream);
        self
    }

    /// A kubeconfig of a workload cluster, different for each `label` ([ACC-10] rotations):
    /// on the upstream target the target's own API server with a fresh token of a
    /// cluster-admin ServiceAccount (Cluster API's ClusterCache really connects to it, so the
    /// RemoteConnectionProbe turns True); elsewhere a `.test` server with `label` as token.
    pub async fn workload_kubeconfig(&self, label: &str) -> Result<String, Failure> {
        let Some(upstream) = &self.upstream else {
            return Ok(crate::scenarios::kubeconfig(label));
        };
        let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(self.client.clone(), crate::upstream::WORKLOAD_NAMESPACE);
        let request = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 86400}});
        let response: Value = accounts
            .create_subresource(
                "token",
                crate::upstream::WORKLOAD_ADMIN,
                &PostParams::default(),
                &request,
            )
            .await?;
        let token = response["status"]["token"].as_str().unwrap_or_default();
        Ok(crate::upstream::pki::kubeconfig(
            &upstream.server,
            &upstream.ca,
            &format!("admin-{label}"),
            crate::upstream::pki::Credential::Token(token),
        ))
    }

    /// Prints one step of the scenario.
    pub fn step(&self, id: &str, text: &str) {
        println!("[{}] step {id}: {text}", self.scenario);
    }

    /// Runs the real kubectl against the target; the error names the command and its output.
    pub async fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<String, Failure> {
        let program = self
            .upstream
            .as_ref()
            .map_or_else(|| PathBuf::from("kubectl"), |u| u.kubectl.clone());
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(if stdin.is_some() {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| Failure(format!("kubectl {}: {e}", args.join(" "))))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use tokio::io::AsyncWriteExt;
            pipe.write_all(input.as_bytes())
                .await
                .map_err(|e| Failure(format!("kubectl stdin: {e}")))?;
        }
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| Failure(format!("kubectl {}: {e}", args.join(" "))))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(Failure(format!(
                "kubectl {} failed: {}{}",
                args.join(" "),
                stdout,
                String::from_utf8_lossy(&output.stderr)
            )))
        }
    }

    /// Creates the scenario's namespace.
    pub async fn create_namespace(&self) -> Result<(), Failure> {
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": self.namespace}}))?,
            )
            .await?;
        Ok(())
    }

    /// Deletes the scenario's namespace (without waiting).
    pub async fn delete_namespace(&self) {
        let _ = self
            .kubectl(
                &["delete", "namespace", &self.namespace, "--wait=false"],
                None,
            )
            .await;
    }

    /// Substitutes `__NAMESPACE__` and the given placeholders.
    pub fn render(&self, template: &str, values: &[(&str, &str)]) -> String {
        let mut text = template.replace("__NAMESPACE__", &self.namespace);
        for (key, value) in values {
            text = text.replace(&format!("__{key}__"), value);
        }
        text
    }

    /// Reads `fixtures/<path>`.
    pub fn fixture(&self, path: &str) -> Result<String, Failure> {
        std::fs::read_to_string(self.fixtures.join(path))
            .map_err(|e| Failure(format!("fixture {path}: {e}")))
    }

    /// `kubectl apply --server-side` of a manifest (placeholders substituted) in the namespace.
    /// On the upstream target a manifest that would make a real component dial anything but
    /// the target itself is refused before it is applied.
    pub async fn apply(&self, manifest: &str, values: &[(&str, &str)]) -> Result<(), Failure> {
        let text = self.render(manifest, values);
        if let Some(upstream) = &self.upstream {
            crate::upstream::manifests::guard_loopback(&text, &upstream.ports)
                .map_err(|e| Failure(format!("refused before applying: {e}")))?;
        }
        self.kubectl(
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=acceptance",
                "-n",
                &self.namespace,
                "-f",
                "-",
            ],
            Some(&text),
        )
        .await
        .map(|_| ())
    }

    /// Applies a fixture file.
    pub async fn apply_fixture(&self, path: &str, values: &[(&str, &str)]) -> Result<(), Failure> {
        let manifest = self.fixture(path)?;
        self.apply(&manifest, values).await
    }

    /// The API of `kind` in `group/version` (through discovery), in the scenario namespace
    /// when namespaced.
    pub async fn api(&self, api_version: &str, kind: &str) -> Result<Api<DynamicObject>, Failure> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let (resource, capabilities) = kube::discovery::pinned_kind(
            &self.client,
            &GroupVersionKind::gvk(group, version, kind),
        )
        .await
        .map_err(|e| Failure(format!("{api_version} {kind} is not served: {e}")))?;
        Ok(if capabilities.scope == Scope::Namespaced {
            Api::namespaced_with(self.client.clone(), &self.namespace, &resource)
        } else {
            Api::all_with(self.client.clone(), &resource)
        })
    }

    /// One object as JSON, `None` when absent (or its kind is not served yet).
    pub async fn get(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<Value>, Failure> {
        let Ok(api) = self.api(api_version, kind).await else {
            return Ok(None);
        };
        Ok(api
            .get_opt(name)
            .await?
            .map(serde_json::to_value)
            .transpose()?)
    }

    /// Polls `probe` until it yields a value or the timeout expires; the failure names `what`
    /// and the last thing the probe saw.
    pub async fn wait<T, F, Fut>(&self, what: &str, mut probe: F) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Result<T, String>, Failure>>,
    {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < self.timeout {
            match probe().await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(seen)) => last = seen,
                Err(e) => last = e.0,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(Failure(format!(
            "timed out after {:?} waiting for {what}; last seen: {last}",
            self.timeout
        )))
    }

    /// Waits until object `kind/name` exists and satisfies `done`; returns it.
    pub async fn wait_object(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value, Failure> {
        self.wait(&format!("{kind} {name}: {what}"), || async {
            Ok(match self.get(api_version, kind, name).await? {
                Some(o) if done(&o) => Ok(o),
                Some(o) => Err(summary(&o)),
                None => Err("not found".to_string()),
            })
        })
        .await
    }

    /// Waits until `kind/name` is gone.
    pub async fn wait_gone(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
    ) -> Result<(), Failure> {
        self.wait(&format!("{kind} {name} to be deleted"), || async {
            Ok(match self.get(api_version, kind, name).await? {
                Some(o) => Err(summary(&o)),
                None => Ok(()),
            })
        })
        .await
    }

    /// Starts recording every version of `kind/name` the API reports (through a watch), so a
    /// short-lived state can be asserted afterwards.
    pub async fn observe(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
    ) -> Result<Observer, Failure> {
        use futures::StreamExt;
        use kube::runtime::{WatchStreamExt, watcher};
        let api = self.api(api_version, kind).await?;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let task = tokio::spawn(async move {
            let stream = watcher::watcher(api, config)
                .default_backoff()
                .applied_objects();
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                if let Ok(object) = event
                    && let Ok(value) = serde_json::to_value(object)
                    && let Ok(mut seen) = sink.lock()
                {
                    seen.push(value);
                }
            }
        });
        Ok(Observer { seen, task })
    }

    /// Writes every object of the namespace (and the RGDs), the events and the controller
    /// logs under `dir/<scenario>/`; returns that folder.
    pub async fn dump(&self, dir: &Path, failure: &Failure) -> std::io::Result<PathBuf> {
        let folder = dir.join(&self.scenario);
        std::fs::create_dir_all(folder.join("objects"))?;
        std::fs::write(folder.join("failure.txt"), format!("{}\n", failure.0))?;
        if let Ok(discovery) = Discovery::new(self.client.clone()).run().await {
            for group in discovery.groups() {
                for (resource, capabilities) in group.recommended_resources() {
                    if !capabilities.supports_operation(verbs::LIST) {
                        continue;
                    }
                    let rgds =
                        resource.group == "kro.run" && resource.kind == "ResourceGraphDefinition";
                    let api: Api<DynamicObject> = match capabilities.scope {
                        Scope::Namespaced => {
                            Api::namespaced_with(self.client.clone(), &self.namespace, &resource)
                        }
                        Scope::Cluster if rgds => Api::all_with(self.client.clone(), &resource),
                        Scope::Cluster => continue,
                    };
                    let Ok(list) = api.list(&ListParams::default()).await else {
                        continue;
                    };
                    if list.items.is_empty() {
                        continue;
                    }
                    let mut text = String::new();
                    for mut item in list.items {
                        item.metadata.managed_fields = None;
                        if resource.kind == "Secret" {
                            // Secret data stays out of artifacts.
                            item.data["data"] = json!("<redacted>");
                        }
                        text.push_str("---\n");
                        text.push_str(&yaml_serde::to_string(&item).unwrap_or_default());
                    }
                    let file = format!(
                        "{}.{}.yaml",
                        resource.plural,
                        if resource.group.is_empty() {
                            "core"
                        } else {
                            &resource.group
                        }
                    );
                    std::fs::write(folder.join("objects").join(file), text)?;
                }
            }
        }
        // The events, oldest first, one line each.
        let events: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), &self.namespace);
        if let Ok(list) = events.list(&ListParams::default()).await {
            let mut lines: Vec<(String, String)> = list
                .items
                .iter()
                .map(|e| {
                    let time = e
                        .event_time
                        .as_ref()
                        .map(|t| t.0.to_string())
                        .unwrap_or_default();
                    let regarding = e
                        .regarding
                        .as_ref()
                        .map(|r| {
                            format!(
                                "{}/{}",
                                r.kind.clone().unwrap_or_default(),
                                r.name.clone().unwrap_or_default()
                            )
                        })
                        .unwrap_or_default();
                    let line = format!(
                        "{time} {} {} {regarding} x{}: {}",
                        e.type_.clone().unwrap_or_default(),
                        e.reason.clone().unwrap_or_default(),
                        e.series.as_ref().map_or(1, |s| s.count),
                        e.note.clone().unwrap_or_default()
                    );
                    (time, line)
                })
                .collect();
            lines.sort();
            let text: String = lines.into_iter().map(|(_, l)| l + "\n").collect();
            std::fs::write(folder.join("events.txt"), text)?;
        }
        if let Some(logs) = &self.logs {
            std::fs::write(folder.join("controller.log"), logs.contents())?;
        }
        if let Some(upstream) = &self.upstream {
            // The real components' logs, as far as they went.
            std::fs::create_dir_all(folder.join("upstream"))?;
            for entry in std::fs::read_dir(&upstream.logs)?.flatten() {
                let _ = std::fs::copy(
                    entry.path(),
                    folder.join("upstream").join(entry.file_name()),
                );
            }
        }
        Ok(folder)
    }
}

/// A one-line view of an object's conditions, for wait messages.
pub fn summary(object: &Value) -> String {
    let conditions: Vec<String> = object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{}={}/{}",
                c["type"].as_str().unwrap_or("?"),
                c["status"].as_str().unwrap_or("?"),
                c["reason"].as_str().unwrap_or("")
            )
        })
        .collect();
    format!(
        "{} {} [{}]",
        object["kind"].as_str().unwrap_or("?"),
        object["metadata"]["name"].as_str().unwrap_or("?"),
        conditions.join(", ")
    )
}

/// Who wrote `after` since `before`: the managedFields entries that are new or newer, as
/// `manager/operation[/subresource]@time`, plus both resourceVersions.
pub fn writers(before: &Value, after: &Value) -> String {
    let entries = |o: &Value| -> Vec<String> {
        o["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                format!(
                    "{}/{}{}@{}",
                    f["manager"].as_str().unwrap_or("?"),
                    f["operation"].as_str().unwrap_or("?"),
                    f["subresource"]
                        .as_str()
                        .map(|s| format!("/{s}"))
                        .unwrap_or_default(),
                    f["time"].as_str().unwrap_or("?")
                )
            })
            .collect()
    };
    let old = entries(before);
    let changed: Vec<String> = entries(after)
        .into_iter()
        .filter(|e| !old.contains(e))
        .collect();
    format!(
        "resourceVersion {} -> {}, new or newer managedFields: [{}]",
        before["metadata"]["resourceVersion"],
        after["metadata"]["resourceVersion"],
        changed.join(", ")
    )
}

/// Every version of one object seen since [`Harness::observe`].
#[derive(Debug)]
pub struct Observer {
    seen: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Observer {
    /// Whether any recorded version satisfies `test`.
    pub fn saw(&self, test: impl Fn(&Value) -> bool) -> bool {
        self.first(test).is_some()
    }

    /// The first recorded version that satisfies `test`.
    pub fn first(&self, test: impl Fn(&Value) -> bool) -> Option<Value> {
        self.seen
            .lock()
            .ok()
            .and_then(|s| s.iter().find(|v| test(v)).cloned())
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::missing_tool;

    #[test]
    fn a_missing_tool_skips_outside_ci_and_fails_in_ci() {
        let skipped = missing_tool("kubectl", "some_test", false);
        assert_eq!(
            skipped,
            Ok("skipping some_test: kubectl is not on the PATH".to_string())
        );
        let failed = missing_tool("kubectl", "some_test", true);
        assert!(failed.is_err_and(|e| e.contains("CI is set")));
    }
}
