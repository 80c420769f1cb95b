//! Component tests of the manager: probes and metrics over HTTP, and Lease leader election
//! between two managers against the embedded API server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kany8s::manager::{self, Bound, Config, LeaderElection, Options};
use kany8s::metrics::{self, Metrics};
use kube::Client;
use kube::api::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::common::*;

/// A plain HTTP/1.1 GET: (status code, body).
async fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let code = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

struct Running {
    bound: Bound,
    metrics: Arc<Metrics>,
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<Result<(), manager::ManagerError>>,
}

fn election(identity: &str) -> LeaderElection {
    LeaderElection {
        lease_duration: Duration::from_millis(1500),
        renew_deadline: Duration::from_millis(1000),
        retry_period: Duration::from_millis(100),
        ..LeaderElection::new(
            manager::lease_name(&[manager::Group::Infrastructure]),
            "default".into(),
            identity.into(),
        )
    }
}

async fn launch(client: &Client, leader: Option<LeaderElection>) -> Running {
    let lease = leader.as_ref().map(|l| l.name.clone());
    let metrics = Arc::new(Metrics::new(
        &[metrics::INFRASTRUCTURE],
        4,
        lease.as_deref(),
    ));
    let config = Config {
        groups: vec![manager::Group::Infrastructure],
        options: Options {
            concurrency: 4,
            metrics: metrics.clone(),
            ..Options::default()
        },
        leader_election: leader,
        health_address: Some("127.0.0.1:0".parse().unwrap()),
        metrics_address: Some("127.0.0.1:0".parse().unwrap()),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let (started, bound) = oneshot::channel();
    let done = tokio::spawn(manager::run(
        client.clone(),
        config,
        async move {
            let _ = stopped.await;
        },
        Some(started),
    ));
    Running {
        bound: bound.await.unwrap(),
        metrics,
        stop,
        done,
    }
}

fn leading(metrics: &Metrics) -> bool {
    metrics
        .encode()
        .lines()
        .any(|l| l.starts_with("leader_election_master_status{") && l.ends_with(" 1"))
}

async fn holder(client: &Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    leases
        .get_opt("infrastructure.4d5f86eb.cluster.x-k8s.io")
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

/// [MGR-04], [MET-01], [MET-02]: probes answer, metrics carry the controller-runtime and
/// kany8s families and count the reconciles of a real object; shutdown ends cleanly.
#[tokio::test]
async fn probes_and_metrics() {
    let (_server, client) = start().await;
    let running = launch(&client, None).await;
    let health = running.bound.health.unwrap();
    assert_eq!(get(health, "/healthz").await.0, 200);
    assert_eq!(get(health, "/readyz").await.0, 200);
    let ics: Api<kany8s::api::Kany8sCluster> = Api::namespaced(client.clone(), "default");
    ics.create(
        &Default::default(),
        &serde_json::from_value(serde_json::json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1alpha1",
            "kind": "Kany8sCluster", "metadata": {"name": "m1", "namespace": "default"}, "spec": {}}))
        .unwrap(),
    )
    .await
    .unwrap();
    wait_for(&ics, "m1", "provisioned", |ic| {
        ic.status
            .as_ref()
            .and_then(|s| s.initialization.as_ref())
            .is_some()
    })
    .await;
    // The status is visible before the reconcile that wrote it has been counted.
    let success = |body: &str| {
        body.lines()
            .find(|l| {
                l.starts_with("controller_runtime_reconcile_total{controller=\"infrastructure-kany8scluster\",result=\"success\"}")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap()
    };
    let mut body = String::new();
    for _ in 0..100 {
        let (code, text) = get(running.bound.metrics.unwrap(), "/metrics").await;
        assert_eq!(code, 200);
        body = text;
        if success(&body) >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(success(&body) >= 1.0, "{body}");
    for family in [
        "controller_runtime_reconcile_errors_total",
        "controller_runtime_reconcile_time_seconds_bucket",
        "controller_runtime_reconcile_panics_total",
        "controller_runtime_max_concurrent_reconciles{controller=\"infrastructure-kany8scluster\"} 4",
        "controller_runtime_active_workers",
        "kany8s_dynamic_watches",
        "kany8s_dynamic_watch_start_failures_total",
        "kany8s_dynamicwatch_channel_full_total",
        "kany8s_kubeconfig_secret_writes_total",
        "kany8s_build_info",
    ] {
        assert!(body.contains(family), "{family} missing in\n{body}");
    }
    running.stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running.done)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// [MGR-01], [MGR-04]: one of two managers leads (standbys are ready too); a leader that
/// shuts down releases the Lease and the standby takes over.
#[tokio::test]
async fn leader_election_hands_over() {
    let (_server, client) = start().await;
    let first = launch(&client, Some(election("first"))).await;
    for _ in 0..100 {
        if leading(&first.metrics) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(leading(&first.metrics));
    assert_eq!(holder(&client).await.as_deref(), Some("first"));
    let second = launch(&client, Some(election("second"))).await;
    assert_eq!(get(second.bound.health.unwrap(), "/readyz").await.0, 200);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        !leading(&second.metrics),
        "a standby must not lead while the lease is held"
    );
    assert_eq!(holder(&client).await.as_deref(), Some("first"));

    first.stop.send(()).unwrap();
    first.done.await.unwrap().unwrap();
    assert!(!leading(&first.metrics));
    for _ in 0..100 {
        if leading(&second.metrics) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(leading(&second.metrics), "the standby never took over");
    assert_eq!(holder(&client).await.as_deref(), Some("second"));
    second.stop.send(()).unwrap();
    second.done.await.unwrap().unwrap();
}
