//! What a request sequence sees: one server (embedded or upstream), the requests it sends,
//! and the observations it records for comparison.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::FidelityError;
use crate::compare::Explain;

/// Which server a sequence runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Embedded,
    Upstream,
}

/// The User-Agent of every request (kube-apiserver derives the default field manager from it).
pub const USER_AGENT: &str = "fidelity/v0.0.0 (linux/amd64) kubernetes/none";

/// One request, described once for both servers.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: Method,
    pub path: String,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    pub body: Option<Vec<u8>>,
    pub explains: Vec<Explain>,
}

impl Req {
    fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            content_type: None,
            accept: None,
            body: None,
            explains: Vec::new(),
        }
    }

    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path)
    }

    pub fn post(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::POST, path).json(body)
    }

    pub fn put(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::PUT, path).json(body)
    }

    /// A PATCH with the given patch type (`application/merge-patch+json`, ...).
    pub fn patch(path: impl Into<String>, content_type: &str, body: Value) -> Self {
        let mut req = Self::new(Method::PATCH, path).json(body);
        req.content_type = Some(content_type.into());
        req
    }

    pub fn merge(path: impl Into<String>, body: Value) -> Self {
        Self::patch(path, "application/merge-patch+json", body)
    }

    pub fn json_patch(path: impl Into<String>, body: Value) -> Self {
        Self::patch(path, "application/json-patch+json", body)
    }

    pub fn strategic(path: impl Into<String>, body: Value) -> Self {
        Self::patch(path, "application/strategic-merge-patch+json", body)
    }

    pub fn apply(path: impl Into<String>, body: Value) -> Self {
        Self::patch(path, "application/apply-patch+yaml", body)
    }

    /// A JSON body (Content-Type `application/json` unless set otherwise).
    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        if self.content_type.is_none() {
            self.content_type = Some("application/json".into());
        }
        self
    }

    /// A body sent byte for byte (duplicate keys, YAML).
    pub fn raw(mut self, content_type: &str, body: &str) -> Self {
        self.body = Some(body.as_bytes().to_vec());
        self.content_type = Some(content_type.into());
        self
    }

    pub fn accept(mut self, accept: &str) -> Self {
        self.accept = Some(accept.into());
        self
    }

    /// Declares a known difference of this request's observation (see [`Explain`]).
    pub fn explain(mut self, path: &str, reason: &str) -> Self {
        self.explains.push(Explain::new(path, reason));
        self
    }
}

/// A response.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub warnings: Vec<String>,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The `metadata.resourceVersion` of the returned object.
    pub fn rv(&self) -> String {
        self.body["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn uid(&self) -> String {
        self.body["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// One recorded observation.
#[derive(Clone, Debug)]
pub struct Observation {
    pub label: String,
    pub value: Value,
    pub explains: Vec<Explain>,
    /// kubectl output: normalised as text.
    pub kubectl: bool,
}

/// An open watch stream.
#[derive(Debug)]
pub struct Watch {
    pub status: u16,
    pub content_type: String,
    body: kube::client::Body,
    buffer: String,
}

impl Watch {
    /// The next event, or `None` when the stream ended or `wait` passed.
    pub async fn next(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(pos) = self.buffer.find('\n') {
                let line: String = self.buffer.drain(..=pos).collect();
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                return Some(serde_json::from_str(line).unwrap_or(Value::String(line.into())));
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame()).await;
            match frame {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.push_str(&String::from_utf8_lossy(&data));
                    }
                }
                _ => return None,
            }
        }
    }
}

/// How long a watch collection may wait for its stop event before giving up (a bound on a
/// failure, never the proof of an absence: every collection stops on an event it waits for).
pub const WATCH_WAIT: Duration = Duration::from_secs(20);
/// How long `until` polls.
pub const POLL_WAIT: Duration = Duration::from_secs(60);

/// The sequence's view of one server.
pub struct Ctx {
    pub side: Side,
    /// The sequence's own namespace (created before it runs, same name on both servers).
    pub ns: String,
    /// A prefix unique to the sequence, for cluster-scoped names.
    pub prefix: String,
    client: kube::Client,
    kubeconfig: PathBuf,
    kubectl: PathBuf,
    home: PathBuf,
    embedded: Option<std::sync::Arc<kany8s_apiserver::Server>>,
    observations: Vec<Observation>,
    /// Explanations declared for every observation recorded after them ([`Ctx::explain`]).
    standing: Vec<Explain>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("side", &self.side)
            .field("ns", &self.ns)
            .finish_non_exhaustive()
    }
}

impl Ctx {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        side: Side,
        name: &str,
        client: kube::Client,
        kubeconfig: PathBuf,
        kubectl: PathBuf,
        home: PathBuf,
        embedded: Option<std::sync::Arc<kany8s_apiserver::Server>>,
    ) -> Self {
        Self {
            side,
            ns: format!("fid-{name}"),
            prefix: format!("fid-{name}"),
            client,
            kubeconfig,
            kubectl,
            home,
            embedded,
            observations: Vec::new(),
            standing: Vec::new(),
        }
    }

    pub(crate) fn into_observations(self) -> Vec<Observation> {
        self.observations
    }

    /// The embedded server (None upstream): for the few steps only a test hook can do there.
    pub fn embedded(&self) -> Option<&kany8s_apiserver::Server> {
        self.embedded.as_deref()
    }

    /// `/api/v1/namespaces/<ns>/<plural>` (core) of the sequence's namespace.
    pub fn core(&self, plural: &str) -> String {
        format!("/api/v1/namespaces/{}/{plural}", self.ns)
    }

    /// `/apis/<group>/<version>/namespaces/<ns>/<plural>`.
    pub fn grouped(&self, group_version: &str, plural: &str) -> String {
        format!("/apis/{group_version}/namespaces/{}/{plural}", self.ns)
    }

    fn request(&self, req: &Req) -> Result<Request<kube::client::Body>, FidelityError> {
        let mut builder = Request::builder()
            .method(req.method.clone())
            .uri(&req.path)
            .header("user-agent", USER_AGENT)
            .header(
                "accept",
                req.accept.as_deref().unwrap_or("application/json"),
            );
        if let Some(ct) = &req.content_type {
            builder = builder.header("content-type", ct);
        }
        builder
            .body(kube::client::Body::from(
                req.body.clone().unwrap_or_default(),
            ))
            .map_err(|e| FidelityError::Request(req.path.clone(), e.to_string()))
    }

    /// The raw response to `req`.
    async fn exchange(
        &self,
        req: &Req,
    ) -> Result<http::Response<kube::client::Body>, FidelityError> {
        self.client
            .send(self.request(req)?)
            .await
            .map_err(|e| FidelityError::Request(req.path.clone(), e.to_string()))
    }

    /// Sends a request without recording it (setup steps).
    pub async fn send(&self, req: &Req) -> Result<Reply, FidelityError> {
        let response = self.exchange(req).await?;
        let status = response.status().as_u16();
        let content_type = header(response.headers(), "content-type");
        let warnings = response
            .headers()
            .get_all("warning")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        let bytes: Bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| FidelityError::Request(req.path.clone(), e.to_string()))?
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(text.clone()));
        Ok(Reply {
            status,
            content_type,
            warnings,
            body,
            text,
        })
    }

    /// Sends a request and records what a client reads of the answer under `label`.
    pub async fn check(&mut self, label: &str, req: Req) -> Result<Reply, FidelityError> {
        let reply = self.send(&req).await?;
        self.record_reply(label, &reply, req.explains);
        Ok(reply)
    }

    /// Records a reply (or a reply reshaped by the sequence: a projection of discovery).
    pub fn record_reply(&mut self, label: &str, reply: &Reply, explains: Vec<Explain>) {
        let mut headers = serde_json::Map::new();
        headers.insert("content-type".into(), reply.content_type.clone().into());
        if !reply.warnings.is_empty() {
            headers.insert("warning".into(), json!(reply.warnings));
        }
        self.record(
            label,
            json!({"status": reply.status, "headers": headers, "body": reply.body}),
            explains,
        );
    }

    /// Records any value under `label`.
    pub fn record(&mut self, label: &str, value: Value, mut explains: Vec<Explain>) {
        tracing::debug!(side = ?self.side, label, "observation");
        explains.extend(self.standing.iter().cloned());
        self.observations.push(Observation {
            label: label.to_string(),
            value,
            explains,
            kubectl: false,
        });
    }

    /// Declares a known difference for every observation this sequence records from here on
    /// (one path, one reason: for a difference every step of the sequence shows).
    pub fn explain(&mut self, path: &str, reason: &str) {
        self.standing.push(Explain::new(path, reason));
    }

    /// Repeats `req` until `done` holds for the reply (or [`POLL_WAIT`] passed), then records
    /// the last reply: a timeout shows up as the difference it is.
    pub async fn until(
        &mut self,
        label: &str,
        req: Req,
        done: impl Fn(&Reply) -> bool,
    ) -> Result<Reply, FidelityError> {
        let reply = self.wait_for(&req, done).await?;
        self.record_reply(label, &reply, req.explains);
        Ok(reply)
    }

    /// Repeats `req` until `done` holds (or [`POLL_WAIT`] passed); records nothing.
    pub async fn wait_for(
        &self,
        req: &Req,
        done: impl Fn(&Reply) -> bool,
    ) -> Result<Reply, FidelityError> {
        let deadline = tokio::time::Instant::now() + POLL_WAIT;
        loop {
            let reply = self.send(req).await?;
            if done(&reply) || tokio::time::Instant::now() >= deadline {
                return Ok(reply);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens a watch (`req` is a GET with `watch=true`).
    pub async fn watch(&self, req: &Req) -> Result<Watch, FidelityError> {
        let response = self.exchange(req).await?;
        Ok(Watch {
            status: response.status().as_u16(),
            content_type: header(response.headers(), "content-type"),
            body: response.into_body(),
            buffer: String::new(),
        })
    }

    /// Reads events until one satisfies `stop` (included), the stream ends, or [`WATCH_WAIT`]
    /// passed, and records the sequence (types, order, objects) under `label`.
    pub async fn collect(
        &mut self,
        label: &str,
        watch: &mut Watch,
        stop: impl Fn(&Value) -> bool,
        explains: Vec<Explain>,
    ) -> Vec<Value> {
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + WATCH_WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(event) = watch.next(left).await else {
                break;
            };
            // Periodic bookmarks come at each server's own cadence; the watch-list end marker
            // (annotated) is part of the sequence and kept.
            if event["type"] == "BOOKMARK"
                && event
                    .pointer("/object/metadata/annotations/k8s.io~1initial-events-end")
                    .is_none()
            {
                continue;
            }
            let last = stop(&event) || event["kind"] == "Status";
            events.push(event);
            if last {
                break;
            }
        }
        self.record(
            label,
            json!({"status": watch.status, "headers": {"content-type": watch.content_type}, "events": events}),
            explains,
        );
        events
    }

    /// Runs the real kubectl (the target's, 1.36) and records exit code, stdout and stderr.
    pub async fn kubectl(
        &mut self,
        label: &str,
        args: &[&str],
        stdin: Option<&str>,
        explains: Vec<Explain>,
    ) -> Result<(bool, String), FidelityError> {
        let (ok, stdout, stderr) = self.kubectl_quiet(args, stdin).await?;
        let mut explains = explains;
        explains.extend(self.standing.iter().cloned());
        self.observations.push(Observation {
            label: label.to_string(),
            value: json!({"exit": ok, "stdout": stdout, "stderr": stderr}),
            explains,
            kubectl: true,
        });
        Ok((ok, stdout))
    }

    /// Runs kubectl without recording; returns success, stdout and stderr.
    pub async fn kubectl_quiet(
        &self,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<(bool, String, String), FidelityError> {
        use tokio::io::AsyncWriteExt;
        let mut command = tokio::process::Command::new(&self.kubectl);
        command
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", &self.home)
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let what = format!("kubectl {}", args.join(" "));
        let mut child = command
            .spawn()
            .map_err(|e| FidelityError::Request(what.clone(), e.to_string()))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes())
                .await
                .map_err(|e| FidelityError::Request(what.clone(), e.to_string()))?;
        }
        drop(child.stdin.take());
        let output = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
            .await
            .map_err(|_| FidelityError::Request(what.clone(), "timed out".into()))?
            .map_err(|e| FidelityError::Request(what, e.to_string()))?;
        Ok((
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ))
    }

    /// Creates a CRD (unrecorded) and waits until its first version's resources are served.
    pub async fn install_crd(&self, crd: Value) -> Result<(), FidelityError> {
        let created = self
            .send(&Req::post(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                crd.clone(),
            ))
            .await?;
        if created.status != 201 {
            return Err(FidelityError::Setup(format!(
                "creating the CRD: {} {}",
                created.status, created.text
            )));
        }
        let group = crd["spec"]["group"].as_str().unwrap_or_default();
        let version = crd["spec"]["versions"][0]["name"]
            .as_str()
            .unwrap_or_default();
        let plural = crd["spec"]["names"]["plural"].as_str().unwrap_or_default();
        let path = format!("/apis/{group}/{version}/{plural}");
        let served = self
            .wait_for(&Req::get(path.clone()), |r| r.status == 200)
            .await?;
        if served.status != 200 {
            return Err(FidelityError::Setup(format!("{path} never served")));
        }
        Ok(())
    }
}

fn header(headers: &http::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}
