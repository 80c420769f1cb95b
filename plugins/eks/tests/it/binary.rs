//! The `eks-kubeconfig-rotator` binary as a process ([ROT-01], [ROT-04]): flags, `--kubeconfig`
//! to the embedded API server over loopback, leader election on the Lease
//! `f6b95f95.cluster.x-k8s.io`, health probes, and AWS credentials from the SDK default chain —
//! here a shared credentials file named by `AWS_SHARED_CREDENTIALS_FILE`, as the chart mounts
//! it, with instance metadata disabled (no AWS network call). Its stderr is searched for
//! secrets.

use std::process::{Command, Stdio};

use crate::common::*;
use base64::Engine;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FILE_ACCESS_KEY: &str = "AKIDFROMCREDENTIALSFILE";
const FILE_SECRET_KEY: &str = "fileSecretKeyEXAMPLE/0123456789abcdefghijklmnop";
const FILE_SESSION: &str = "FileSessionTokenEXAMPLE0123456789";

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eks-kubeconfig-rotator"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn http_get(port: u16, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// [ROT-01]: a bad duration or an unusable flag combination exits 1 with a message naming the
/// flag.
#[test]
fn rot01_flag_errors_exit_1() {
    for (args, flag) in [
        (vec!["--refresh-before=soon"], "--refresh-before"),
        (
            vec!["--max-refresh-interval", "10"],
            "--max-refresh-interval",
        ),
        (vec!["--failure-backoff=-5s"], "--failure-backoff"),
        (vec!["--metrics-bind-address=:8443"], "--metrics-secure"),
    ] {
        let output = binary().args(&args).env_clear().output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
    let help = binary().arg("--help").env_clear().output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--metrics-bind-address",
        "--health-probe-bind-address",
        "--leader-elect",
        "--metrics-secure",
        "--enable-http2",
        "--watch-namespace",
        "--refresh-before",
        "--max-refresh-interval",
        "--failure-backoff",
        "--kubeconfig",
    ] {
        assert!(text.contains(flag), "{flag} missing from --help");
    }
}

/// [ROT-01], [ROT-04], [ROT-06]: the process end to end with the default credentials chain.
#[tokio::test]
async fn rot04_process_with_shared_credentials_file() {
    let server = kany8s_apiserver::Server::builder().build();
    let client = server.client();
    install_crd(&client, ack_crd()).await;
    install_crd(&client, cluster_crd()).await;
    let (address, listener) = server.serve("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kany8s_apiserver::Server::kubeconfig(address)).unwrap();
    let credentials = dir.path().join("credentials");
    std::fs::write(
        &credentials,
        format!("[default]\naws_access_key_id = {FILE_ACCESS_KEY}\naws_secret_access_key = {FILE_SECRET_KEY}\naws_session_token = {FILE_SESSION}\n"),
    )
    .unwrap();
    let health = free_port();
    let mut child = binary()
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            &format!("--health-probe-bind-address=127.0.0.1:{health}"),
            "--leader-elect",
            "--failure-backoff=1h",
        ])
        .env_clear()
        .env("HOME", dir.path())
        .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .env("AWS_CONFIG_FILE", dir.path().join("no-config"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("POD_NAMESPACE", NS)
        .env("POD_NAME", "rotator-0")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stderr), &mut text);
        text
    });

    create_active_ack_cluster(&client, "demo").await;
    create_opted_in_cluster(&client, "demo").await;
    let probe = wait_secret(&client, "demo-kubeconfig").await;
    let token = kubeconfig_of(&probe)["users"][0]["user"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let url = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.strip_prefix("k8s-aws-v1.").unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(
        url.contains(&format!("X-Amz-Credential={FILE_ACCESS_KEY}%2F")),
        "credentials not from the file"
    );
    assert!(url.contains(&format!("X-Amz-Security-Token={FILE_SESSION}")));
    // Leader election: the process holds the Lease.
    let leases: Api<Lease> = Api::namespaced(client.clone(), NS);
    let lease = leases.get("f6b95f95.cluster.x-k8s.io").await.unwrap();
    let holder = lease.spec.unwrap().holder_identity.unwrap();
    assert!(holder.starts_with("rotator-0_"), "{holder}");
    // Health probes.
    assert!(http_get(health, "/healthz").await.contains(" 200 "));
    assert!(http_get(health, "/readyz").await.contains(" 200 "));

    child.kill().unwrap();
    let _ = child.wait();
    listener.shutdown();
    let logs = logs.join().unwrap();
    assert!(logs.contains("kubeconfig secret written"), "{logs}");
    for needle in [
        FILE_SECRET_KEY,
        FILE_SESSION,
        token.as_str(),
        "k8s-aws-v1.",
        CA,
    ] {
        assert!(
            !logs.contains(needle),
            "the process logged a secret ({needle:.16}…)"
        );
    }
}

/// [KB-01]: the bootstrapper binary: a bad duration, a bad endpoint or an unusable flag
/// combination exits 1 with a message naming the flag; `--help` lists its flags and exits 0.
#[test]
fn kb01_bootstrapper_flag_errors_exit_1() {
    let bootstrapper = || Command::new(env!("CARGO_BIN_EXE_eks-karpenter-bootstrapper"));
    for (args, flag) in [
        (vec!["--failure-backoff=soon"], "--failure-backoff"),
        (
            vec!["--steady-state-requeue", "10"],
            "--steady-state-requeue",
        ),
        (
            vec!["--aws-endpoint-url=127.0.0.1:5000"],
            "--aws-endpoint-url",
        ),
        (vec!["--metrics-bind-address=:8443"], "--metrics-secure"),
        (vec!["--refresh-before=5m"], "--refresh-before"),
    ] {
        let output = bootstrapper().args(&args).env_clear().output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
    let help = bootstrapper().arg("--help").env_clear().output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--leader-elect",
        "--failure-backoff",
        "--steady-state-requeue",
        "--karpenter-chart-version",
        "--aws-endpoint-url",
        "--kubeconfig",
    ] {
        assert!(text.contains(flag), "{flag} missing from --help");
    }
}
