//! The commands `make dev` prints work on the sandbox of each target: both demos, applied and
//! waited for with kubectl exactly as `scripts/dev.sh --commands TARGET` prints them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use acceptance::harness::require_kubectl;
use base64::Engine as _;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn kubectl(program: &Path, kubeconfig: &Path, args: &[String]) -> String {
    let output = tokio::process::Command::new(program)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .current_dir(root())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kubectl {}: {stdout}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The demo commands of `target`, each split into kubectl's arguments (quotes removed); a
/// command piped into `base64 -d` is marked by `true`.
fn printed_commands(target: &str, state: &Path) -> Vec<(Vec<String>, bool)> {
    let output = std::process::Command::new(root().join("scripts/dev.sh"))
        .args(["--commands", target])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with("kubectl "))
        .map(|line| {
            let (command, piped) = match line.split_once(" | ") {
                Some((command, rest)) => {
                    assert_eq!(rest, "base64 -d", "{line}");
                    (command, true)
                }
                None => (line, false),
            };
            let args = command
                .replace(".sandbox/", &format!("{}/", state.display()))
                .split_whitespace()
                .skip(1)
                .map(|a| a.replace('\'', ""))
                .collect();
            (args, piped)
        })
        .collect()
}

async fn run_demo(target: &str, program: &Path, kubeconfig: &Path, state: &Path) {
    kubectl(
        program,
        kubeconfig,
        &[
            "apply",
            "-f",
            "fixtures/rgds/control-plane/demo-control-plane-kubeconfig.yaml",
        ]
        .map(String::from),
    )
    .await;
    kubectl(
        program,
        kubeconfig,
        &[
            "wait",
            "--for=jsonpath={.status.state}=Active",
            "--timeout=120s",
            "resourcegraphdefinition/demo-control-plane-kubeconfig.kro.run",
        ]
        .map(String::from),
    )
    .await;
    let commands = printed_commands(target, state);
    let applied = commands.iter().filter(|c| c.0[0] == "apply").count();
    assert_eq!(applied, 2, "both demos: {commands:?}");
    for (args, piped) in &commands {
        let out = kubectl(program, kubeconfig, args).await;
        if *piped {
            let text = base64::engine::general_purpose::STANDARD
                .decode(out.trim())
                .unwrap();
            assert!(
                String::from_utf8_lossy(&text).contains("kind: Config"),
                "not a kubeconfig"
            );
        }
    }
    let secrets = kubectl(
        program,
        kubeconfig,
        &["get", "secrets", "-o", "name"].map(String::from),
    )
    .await;
    for name in [
        "demo-kubeconfig",
        "demo-kubeadm-kubeconfig",
        "demo-kubeadm-ca",
    ] {
        assert!(
            secrets.contains(&format!("secret/{name}")),
            "{name} missing: {secrets}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_demo_commands_work_on_the_embedded_sandbox() {
    if !require_kubectl("the_printed_demo_commands_work_on_the_embedded_sandbox") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let _env = acceptance::env::Embedded::start("127.0.0.1:0", &kubeconfig)
        .await
        .unwrap();
    run_demo("embedded", Path::new("kubectl"), &kubeconfig, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_demo_commands_work_on_the_upstream_sandbox() {
    let bin = acceptance::upstream::built().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let stack = acceptance::upstream::Upstream::start(acceptance::upstream::Options::new(
        &dir.path().join("upstream"),
        &kubeconfig,
    ))
    .await
    .unwrap();
    run_demo("upstream", &bin.join("kubectl"), &kubeconfig, dir.path()).await;
    drop(stack);
}

#[test]
fn the_demo_fixtures_dial_nothing_but_the_target() {
    for file in [
        "fixtures/demo/cluster.yaml",
        "fixtures/demo/kubeadm-cluster.yaml",
    ] {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        acceptance::upstream::manifests::guard_loopback(&text, &[])
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}
