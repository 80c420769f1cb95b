//! Helpers shared by the API server's integration tests.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode};
use kany8s_apiserver::{ServeHandle, Server};
use serde_json::{Value, json};
use tower::ServiceExt;

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

/// One raw request against the router.
pub async fn call(
    server: &Server,
    method: Method,
    uri: &str,
    content_type: &str,
    body: Value,
) -> Reply {
    call_with(server, method, uri, &[("content-type", content_type)], body).await
}

pub async fn call_with(
    server: &Server,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body).unwrap()
    };
    let response = server
        .router()
        .oneshot(request.body(Body::from(bytes)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let collected = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&collected).into_owned();
    let body = serde_json::from_slice(&collected).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
        text,
    }
}

/// Reads a watch stream until it ends or `limit` events arrived.
pub async fn watch_events(server: &Server, uri: &str, limit: usize, wait: Duration) -> Vec<Value> {
    let request = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    let response = server.router().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.into_body().into_data_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while events.len() < limit {
        let next = tokio::time::timeout_at(deadline, futures::StreamExt::next(&mut stream)).await;
        match next {
            Ok(Some(Ok(chunk))) => {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(pos) = buffer.find('\n') {
                    let line: String = buffer.drain(..=pos).collect();
                    events.push(serde_json::from_str(line.trim()).unwrap());
                }
            }
            _ => break,
        }
    }
    events
}

/// A namespaced CRD `widgets.example.com` with a status subresource and a small schema.
pub fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "size": {"type": "integer", "minimum": 1},
                        "a": {"type": "integer"}, "b": {"type": "integer"},
                        "id": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "field is immutable"}]},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "mode": {"type": "string", "default": "fast"}
                    }},
                    "status": {"type": "object", "properties": {"ready": {"type": "boolean"}, "observedGeneration": {"type": "integer"}}}
                }}}
            }]
        }
    })
}

/// Creates the widget CRD and waits until widgets are served.
pub async fn install_widgets(server: &Server) {
    install(server, widget_crd(), "/apis/example.com/v1").await;
}

/// Creates a CRD and waits until `discovery_path` (`/apis/<group>/<version>`) is served.
pub async fn install(server: &Server, crd: Value, discovery_path: &str) {
    let reply = call(
        server,
        Method::POST,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        "application/json",
        crd,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    for _ in 0..200 {
        if get(server, discovery_path).await.status == StatusCode::OK {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{discovery_path} was never served");
}

pub fn widget(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec})
}

pub const WIDGETS: &str = "/apis/example.com/v1/namespaces/default/widgets";

/// Serves `server` on loopback and writes a kubeconfig for it into a new temporary folder;
/// the test keeps the handle and the folder alive.
pub async fn serve_with_kubeconfig(server: &Server) -> (ServeHandle, tempfile::TempDir, PathBuf) {
    let (address, handle) = server.serve("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, Server::kubeconfig(address)).unwrap();
    (handle, dir, kubeconfig)
}

/// Runs the real kubectl against `kubeconfig` with extra environment; fails after 60 s.
pub async fn kubectl_env(
    kubeconfig: &Path,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> Output {
    let mut command = tokio::process::Command::new("kubectl");
    command
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", kubeconfig.parent().unwrap())
        .envs(env.iter().copied())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("kubectl runs");
    if let Some(input) = stdin {
        use tokio::io::AsyncWriteExt;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .await
            .unwrap();
    }
    drop(child.stdin.take());
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("kubectl finished")
        .unwrap()
}

/// stdout and stderr of a kubectl run.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// GETs `uri` every 5 ms until `done` holds for the reply, for up to 5 s, and returns the last
/// reply: the caller asserts on what it waited for, so a timeout fails with the real answer.
pub async fn get_until(server: &Server, uri: &str, done: impl Fn(&Reply) -> bool) -> Reply {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let reply = get(server, uri).await;
        if done(&reply) || tokio::time::Instant::now() >= deadline {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Whether the real kubectl is on the PATH. A missing kubectl fails the test when `CI` is set
/// (a CI box must have one, or the kubectl layer would pass without running) and skips it,
/// loudly, otherwise.
pub fn kubectl_or_skip() -> bool {
    let found = std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "kubectl is not installed and CI is set: this test needs kubectl 1.32 on the PATH"
        );
        eprintln!("SKIPPED: kubectl is not installed; this test needs kubectl 1.32 on the PATH");
    }
    found
}

/// The status of the condition `type_` in an object's `status.conditions`.
pub fn condition_status<'a>(object: &'a Value, type_: &str) -> Option<&'a str> {
    object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?
        .get("status")?
        .as_str()
}

pub async fn get(server: &Server, uri: &str) -> Reply {
    call(server, Method::GET, uri, "", Value::Null).await
}

pub async fn post(server: &Server, uri: &str, body: Value) -> Reply {
    call(server, Method::POST, uri, "application/json", body).await
}

pub async fn put(server: &Server, uri: &str, body: Value) -> Reply {
    call(server, Method::PUT, uri, "application/json", body).await
}

pub async fn merge_patch(server: &Server, uri: &str, body: Value) -> Reply {
    call(
        server,
        Method::PATCH,
        uri,
        "application/merge-patch+json",
        body,
    )
    .await
}

pub async fn delete(server: &Server, uri: &str) -> Reply {
    call(server, Method::DELETE, uri, "", Value::Null).await
}

/// A ConfigMap with only a name.
pub fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
}
