//! Every acceptance scenario on the upstream target (real etcd, kube-apiserver,
//! kube-controller-manager, kro and Cluster API as loopback processes), started once for this
//! test binary, each scenario in a namespace of its own; plus what makes the target the real
//! thing: etcd behind `/readyz`, kro's and Cluster API's own CRDs, Cluster API's conversion
//! webhook answering, the managers under their ServiceAccounts without `system:masters`, and a
//! missing RBAC rule failing a scenario with kube-apiserver's own `forbidden`.
//!
//! The binaries come from `make upstream`; without them every test here fails and says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::OnceLock;

use acceptance::upstream::{Options, Upstream};

/// The stack's folder for this process; folders of processes that are gone are removed first.
fn workdir(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("upstream");
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            let pid = entry
                .file_name()
                .to_string_lossy()
                .split('-')
                .next()
                .and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|p| !PathBuf::from(format!("/proc/{p}")).exists()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    root.join(format!("{}-{name}", std::process::id()))
}

/// Starts a stack on a runtime of its own (its actors outlive any one test's runtime).
fn start(name: &str, revoke: Vec<(String, String, String)>) -> Upstream {
    if let Err(error) = acceptance::upstream::built() {
        panic!("{error}");
    }
    let dir = workdir(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut options = Options::new(&dir, &dir.join("kubeconfig"));
        options.revoke = revoke;
        runtime.block_on(Upstream::start(options))
    })
    .join()
    .unwrap()
    .unwrap_or_else(|e| panic!("starting the upstream target: {e}"))
}

/// The stack every scenario shares.
fn stack() -> &'static Upstream {
    static STACK: OnceLock<Upstream> = OnceLock::new();
    STACK.get_or_init(|| {
        let _ = acceptance::env::capture_logs(false);
        let stack = start("shared", Vec::new());
        eprintln!("upstream target up: {:?}", stack.timings);
        stack
    })
}

async fn scenario(name: &str) {
    let stack = stack();
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("upstream-artifacts");
    let logs = acceptance::env::capture_logs(false);
    if let Err(error) =
        acceptance::run_on_upstream(stack, name, &artifacts, false, Some(logs)).await
    {
        panic!("{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acc10_kro_reflection() {
    scenario("kro-reflection").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acc20_kro_infra_reflection() {
    scenario("kro-infra-reflection").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acc30_kro_infra_cluster_identity() {
    scenario("kro-infra-cluster-identity").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acc40_kro_reflection_multi_rgd() {
    scenario("kro-reflection-multi-rgd").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_with_a_real_cluster_class() {
    scenario("topology").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_without_writes() {
    scenario("pause-quiet").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acc50_capd_kubeadm_with_real_kubeadm_bootstrap() {
    scenario("capd-kubeadm").await;
}

/// The EKS pack with real kro, the rotator's chart `helm install`ed and the rotator run as the
/// chart's ServiceAccount ([ROT-03]–[ROT-10], [PLG-06]); needs helm (`make upstream`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eks_rotator_with_its_chart_installed_by_helm() {
    if !acceptance::upstream::helm::require("the eks-rotator scenario on the upstream target") {
        return;
    }
    scenario("eks-rotator").await;
}

/// The eks-karpenter-bootstrapper in process (as admin: its chart is not installed here) over
/// an EKS Cluster from a real ClusterClass, real kro and Cluster API; EC2 in moto on loopback;
/// the target's own API server as the workload cluster ([KB-01]–[KB-07]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eks_karpenter() {
    scenario("eks-karpenter").await;
}

/// The target's kubectl as admin: (success, stdout, or stdout and stderr on failure).
async fn kubectl(stack: &Upstream, args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(stack.bin.join("kubectl"))
        .args(args)
        .env("KUBECONFIG", &stack.kubeconfig)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        (true, stdout)
    } else {
        (
            false,
            format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_target_is_the_real_thing() {
    let stack = stack();
    let (ok, readyz) = kubectl(stack, &["get", "--raw", "/readyz?verbose"]).await;
    assert!(ok && readyz.contains("[+]etcd ok"), "{readyz}");
    let (_, version) = kubectl(stack, &["version", "-o", "json"]).await;
    let version: serde_json::Value = serde_json::from_str(&version).unwrap();
    assert_eq!(
        version["serverVersion"]["gitVersion"], version["clientVersion"]["gitVersion"],
        "kubectl and kube-apiserver of one release"
    );
    assert!(
        version["serverVersion"]["gitVersion"]
            .as_str()
            .unwrap()
            .starts_with("v1.36."),
        "{version}"
    );

    // kro's and Cluster API's own CRDs, not this project's models.
    let (_, rgd) = kubectl(
        stack,
        &[
            "get",
            "crd",
            "resourcegraphdefinitions.kro.run",
            "-o",
            "json",
        ],
    )
    .await;
    let rgd: serde_json::Value = serde_json::from_str(&rgd).unwrap();
    assert!(
        rgd["metadata"]["annotations"]["controller-gen.kubebuilder.io/version"].is_string(),
        "{}",
        rgd["metadata"]
    );
    assert!(
        rgd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            ["resources"]
            .is_object(),
        "kro's RGD schema"
    );
    let (_, cluster) = kubectl(
        stack,
        &["get", "crd", "clusters.cluster.x-k8s.io", "-o", "json"],
    )
    .await;
    let cluster: serde_json::Value = serde_json::from_str(&cluster).unwrap();
    let versions: Vec<&str> = cluster["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(versions.contains(&"v1beta1") && versions.contains(&"v1beta2"));
    assert_eq!(cluster["spec"]["conversion"]["strategy"], "Webhook");
    assert!(
        cluster["metadata"]["annotations"]["controller-gen.kubebuilder.io/version"].is_string()
    );

    // Cluster API's conversion webhook answers: a v1beta2 Cluster read as v1beta1.
    let namespace = "conversion-check";
    kubectl(stack, &["create", "namespace", namespace]).await;
    let manifest = format!(
        "apiVersion: cluster.x-k8s.io/v1beta2\nkind: Cluster\nmetadata:\n  name: converted\n  namespace: {namespace}\nspec:\n  clusterNetwork:\n    pods:\n      cidrBlocks: [192.168.0.0/16]\n  controlPlaneRef:\n    apiGroup: controlplane.cluster.x-k8s.io\n    kind: Kany8sControlPlane\n    name: converted\n"
    );
    let file = std::env::temp_dir().join(format!("converted-{}.yaml", std::process::id()));
    std::fs::write(&file, manifest).unwrap();
    let (ok, out) = kubectl(
        stack,
        &["apply", "--server-side", "-f", &file.to_string_lossy()],
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = kubectl(
        stack,
        &[
            "get",
            "clusters.v1beta1.cluster.x-k8s.io",
            "converted",
            "-n",
            namespace,
            "-o",
            "json",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let old: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(old["apiVersion"], "cluster.x-k8s.io/v1beta1");
    assert_eq!(
        old["spec"]["clusterNetwork"]["pods"]["cidrBlocks"][0],
        "192.168.0.0/16"
    );
    // v1beta1 references carry apiVersion, v1beta2 ones apiGroup: the webhook converted it.
    assert_eq!(
        old["spec"]["controlPlaneRef"]["apiVersion"],
        "controlplane.cluster.x-k8s.io/v1alpha1"
    );
    kubectl(stack, &["delete", "namespace", namespace, "--wait=false"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_run_as_their_service_accounts_without_system_masters() {
    let stack = stack();
    for group in [
        kany8s::manager::Group::ControlPlane,
        kany8s::manager::Group::Infrastructure,
    ] {
        let kubeconfig = stack.manager_kubeconfig(group);
        let output = tokio::process::Command::new(stack.bin.join("kubectl"))
            .args(["auth", "whoami", "-o", "json"])
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .await
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let review: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let user = &review["status"]["userInfo"];
        assert_eq!(user["username"], acceptance::env::manager_user(group));
        let groups: Vec<&str> = user["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_str().unwrap())
            .collect();
        assert!(groups.contains(&"system:serviceaccounts"), "{groups:?}");
        assert!(!groups.contains(&"system:masters"), "{groups:?}");
        // And the real authorizer answers for its bundle, not more.
        let can = |verb: &str, resource: &str| {
            let kubeconfig = kubeconfig.clone();
            let kubectl = stack.bin.join("kubectl");
            let (verb, resource) = (verb.to_string(), resource.to_string());
            async move {
                tokio::process::Command::new(kubectl)
                    .args(["auth", "can-i", &verb, &resource, "-A"])
                    .env("KUBECONFIG", &kubeconfig)
                    .output()
                    .await
                    .unwrap()
                    .status
                    .success()
            }
        };
        assert!(!can("delete", "namespaces").await);
        assert!(!can("list", "pods").await);
        assert!(can("create", "democontrolplanes.kro.run").await);
    }
}

/// A bundle without `create` on `kro.run` (the rule a server-side apply of a new instance needs,
/// [RB-02]): the infrastructure scenario fails, and the Kany8sCluster says why in
/// kube-apiserver's own words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_rbac_rule_fails_a_scenario_with_the_real_forbidden_error() {
    let broken = start(
        "rbac",
        vec![(
            "manager-role-infrastructure-base".into(),
            "kro.run".into(),
            "create".into(),
        )],
    );
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("upstream-rbac-artifacts");
    let _ = std::fs::remove_dir_all(&artifacts);
    let logs = acceptance::env::capture_logs(false);
    let error = acceptance::run_on_upstream(
        &broken,
        "kro-infra-reflection",
        &artifacts,
        false,
        Some(logs.clone()),
    )
    .await
    .expect_err("the scenario passed without create on kro.run");
    let text = format!("{error}");
    assert!(text.contains("Kany8sCluster demo-cluster"), "{text}");
    // The refusal is in the object's status, with kube-apiserver's own words.
    assert!(text.contains("Ready=False/BackendApplyFailed"), "{text}");
    let objects =
        std::fs::read_to_string(artifacts.join(
            "kro-infra-reflection/objects/kany8sclusters.infrastructure.cluster.x-k8s.io.yaml",
        ))
        .unwrap();
    let cluster: serde_json::Value =
        yaml_serde::from_str(objects.trim_start_matches("---\n")).unwrap();
    let ready = cluster["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .cloned()
        .unwrap();
    let message = ready["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "is forbidden: User \"{}\" cannot create resource \"demoinfrastructures\"",
            acceptance::env::manager_user(kany8s::manager::Group::Infrastructure)
        )) && message.contains("in API group \"kro.run\""),
        "{message}"
    );
    let log = std::fs::read_to_string(artifacts.join("kro-infra-reflection/controller.log"))
        .unwrap_or_else(|_| logs.contents());
    let forbidden = format!(
        "is forbidden: User \\\"{}\\\" cannot",
        acceptance::env::manager_user(kany8s::manager::Group::Infrastructure)
    );
    assert!(
        log.contains(&forbidden) && log.contains("in API group \\\"kro.run\\\""),
        "no forbidden error from kube-apiserver in the controller log:\n{}",
        log.lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The stack's processes die with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stack_leaves_no_process_behind() {
    let stack = start("drop", Vec::new());
    let pids = stack.pids();
    // etcd, kube-apiserver, kube-controller-manager, kro and the three Cluster API managers.
    assert_eq!(pids.len(), 7, "{pids:?}");
    for pid in &pids {
        assert!(PathBuf::from(format!("/proc/{pid}")).exists());
    }
    drop(stack);
    for pid in &pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        assert!(
            status.is_empty() || status.contains("State:\tZ"),
            "process {pid} still runs"
        );
    }
}

/// The processes whose command line names `dir`.
fn processes_under(dir: &std::path::Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false)
        })
        .collect()
}

/// Even a harness killed with SIGKILL (no destructor runs) leaves no process behind: every
/// component carries a parent-death signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_harness_leaves_no_process_behind() {
    use tokio::io::AsyncBufReadExt;
    if let Err(error) = acceptance::upstream::built() {
        panic!("{error}");
    }
    let dir = workdir("killed");
    let _ = std::fs::remove_dir_all(&dir);
    let mut sandbox = tokio::process::Command::new(env!("CARGO_BIN_EXE_kany8s-acceptance"))
        .args(["sandbox", "--target", "upstream", "--kubeconfig"])
        .arg(dir.join("kubeconfig"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(sandbox.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(std::time::Duration::from_secs(180), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("ready") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(ready, "the upstream sandbox never said ready");
    let components = processes_under(&dir);
    assert!(components.len() >= 7, "{components:?}");
    sandbox.start_kill().unwrap();
    sandbox.wait().await.unwrap();
    let mut left = processes_under(&dir);
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        left = processes_under(&dir);
    }
    assert!(left.is_empty(), "processes left behind: {left:?}");
}
