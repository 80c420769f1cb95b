//! The commands `make dev` prints work on the sandbox: both demos, applied and waited for with
//! the real kubectl exactly as printed (scripts/dev.sh).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use acceptance::harness::kubectl_available;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let output = tokio::process::Command::new("kubectl")
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

/// Every kubectl line of scripts/dev.sh, in order.
fn printed_commands() -> Vec<Vec<String>> {
    let script = std::fs::read_to_string(root().join("scripts/dev.sh"))
        .unwrap()
        .replace("\\\n", " ");
    script
        .lines()
        .map(str::trim)
        // A pipe's kubectl half is covered by the Secret check below.
        .filter(|l| l.starts_with("kubectl ") && !l.contains('$') && !l.contains('|'))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter(|a| !a.starts_with('>'))
                .map(|a| a.replace('\'', ""))
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_demo_commands_work() {
    if !kubectl_available() {
        eprintln!("SKIPPED: kubectl is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let _env = acceptance::env::Embedded::start("127.0.0.1:0", &kubeconfig)
        .await
        .unwrap();
    let commands = printed_commands();
    let applied: Vec<&Vec<String>> = commands.iter().filter(|c| c[0] == "apply").collect();
    assert_eq!(applied.len(), 3, "the RGD and both demos: {commands:?}");
    for command in &commands {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        kubectl(&kubeconfig, &args).await;
    }
    let secrets = kubectl(&kubeconfig, &["get", "secrets", "-o", "name"]).await;
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
