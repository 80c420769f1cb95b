//! No token, secret key, session token or kubeconfig in any log line: the logs of a full run
//! (missing ACK Cluster, rotation, conflicts, takeover, a token failure) are captured at debug
//! level, every target, and searched. The test runs on one thread so the subscriber set for it
//! sees every task.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use kany8s_eks::schedule::Policy;
use kube::api::PostParams;
use serde_json::json;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// [ROT-04], [ROT-05]: the "no token, secret key or kubeconfig ever appears in a log line".
#[tokio::test(flavor = "current_thread")]
async fn no_secret_in_any_log_line() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sandbox = start(Setup {
        policy: Policy {
            refresh_before: Duration::from_secs(13 * 60 + 58),
            failure_backoff: Duration::from_secs(3600),
            ..Policy::default()
        },
        ..Setup::default()
    })
    .await;
    let client = &sandbox.client;
    create_opted_in_cluster(client, "demo").await;
    wait_event(client, "demo", "ACKClusterNotFound").await;
    create_active_ack_cluster(client, "demo").await;
    let first = wait_secret(client, "demo-kubeconfig").await;
    let first_value = first.data.as_ref().unwrap()["value"].0.clone();
    // A rotation (due 2 s after generation).
    wait("a rotation", || async {
        secrets(client)
            .get("demo-kubeconfig")
            .await
            .unwrap()
            .data
            .unwrap()["value"]
            .0
            != first_value
    })
    .await;
    // A user-owned Secret for a second cluster: conflict, then takeover.
    let user: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "other-kubeconfig", "namespace": NS},
        "type": "cluster.x-k8s.io/secret",
        "stringData": {"value": "user-kubeconfig-content"},
    }))
    .unwrap();
    secrets(client)
        .create(&PostParams::default(), &user)
        .await
        .unwrap();
    create_active_ack_cluster(client, "other").await;
    create_opted_in_cluster(client, "other").await;
    wait_event(client, "other", "SecretOwnershipConflict").await;
    annotate_cluster(
        client,
        "other",
        json!({"eks.kany8s.io/allow-unmanaged-takeover": "enabled"}),
    )
    .await;
    wait_event(client, "other", "SecretTakeoverApplied").await;
    let secrets_now = [
        secrets(client).get("demo-kubeconfig").await.unwrap(),
        secrets(client).get("demo-kubeconfig-exec").await.unwrap(),
        secrets(client).get("other-kubeconfig").await.unwrap(),
    ];
    drop(sandbox);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("kubeconfig secret written"),
        "the run logged nothing useful:\n{logs}"
    );
    let mut forbidden: Vec<String> = vec![
        SECRET_KEY.into(),
        SESSION_TOKEN.into(),
        "k8s-aws-v1.".into(),
        "X-Amz-Signature".into(),
        "certificate-authority-data".into(),
        CA.into(),
        "user-kubeconfig-content".into(),
        "current-context".into(),
    ];
    for secret in &secrets_now {
        let value = String::from_utf8(secret.data.as_ref().unwrap()["value"].0.clone()).unwrap();
        if let Some(token) = value.lines().find_map(|l| l.trim().strip_prefix("token: ")) {
            forbidden.push(token.to_string());
        }
    }
    for needle in &forbidden {
        assert!(
            !logs.contains(needle.as_str()),
            "a log line contains {needle:.24}…:\n{}",
            logs.lines()
                .filter(|l| l.contains(needle.as_str()))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    eprintln!("{} log lines checked", logs.lines().count());
}
