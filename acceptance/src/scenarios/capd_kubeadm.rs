//! [ACC-50] CAPD kubeadm: a self-managed control plane through the Kany8sKubeadmControlPlane
//! facade ([CP-40]–[CP-43], [CT-04], [CT-06], [CT-30], [KK-01], [KK-04], [KK-06]–[KK-12],
//! [KK-14], [KK-15], [KK-18]).

use base64::Engine as _;
use serde_json::{Value, json};

use super::common::{CAPI, CP, base64_text, check_cluster_secret};
use crate::harness::{Failure, Harness, Target, check, check_eq, condition, has_condition};

const DOCKER: &str = "infrastructure.cluster.x-k8s.io/v1beta2";
const BOOTSTRAP: &str = "bootstrap.cluster.x-k8s.io/v1beta2";
/// The Cluster, its control plane, facade and DockerCluster.
const CLUSTER: &str = "demo-self-managed-docker";
const VERSION: &str = "v1.34.0";

/// The one control-plane Machine, its KubeadmConfig and its DockerMachine.
fn machine() -> String {
    format!("{CLUSTER}-control-plane-0")
}

/// Where the DockerCluster says the workload API server listens.
struct Endpoint {
    host: String,
    port: i64,
}

pub(super) async fn run(h: &Harness) -> Result<(), Failure> {
    let cluster_uid = apply_manifests(h).await?;
    a_facade_copies_the_kubeadm_backend(h).await?;
    let ca_cert = b_certificate_secrets(h, &cluster_uid).await?;
    let (endpoint, kubeconfig) = c_admin_kubeconfig(h, &ca_cert).await?;
    d_kubeadm_config(h, &endpoint).await?;
    e_docker_machine_and_machine(h).await?;
    f_cluster_probed_and_available(h).await?;
    g_ready_and_initialized(h).await?;
    h_workload_cluster_answers(h, &kubeconfig).await?;
    i_machine_deleted_before_facade(h).await
}

/// Applies `acceptance/capd-kubeadm.yaml` as the target needs it; returns the Cluster's uid.
async fn apply_manifests(h: &Harness) -> Result<Value, Failure> {
    let ns = h.namespace.clone();
    let manifest = h.fixture("acceptance/capd-kubeadm.yaml")?;
    let values = [("CLUSTER_NAME", CLUSTER), ("KUBERNETES_VERSION", VERSION)];
    if h.target == Target::Kind {
        // Stale CAPD containers of an earlier run would carry another CA.
        let stale = workload_containers(h, CLUSTER).await?;
        check(stale.trim().is_empty(), || {
            format!(
                "Docker containers of an earlier run exist; remove them first: {}",
                stale.trim()
            )
        })?;
        // The CAPD and CABPK webhooks may still be starting.
        h.wait("the manifests to be accepted", || async {
            Ok(match h.apply(&manifest, &values).await {
                Ok(()) => Ok(()),
                Err(e)
                    if e.0.contains("failed calling webhook")
                        && e.0.contains("connection refused") =>
                {
                    Err(e.0)
                }
                Err(e) => return Err(e),
            })
        })
        .await?;
    } else if let Some(upstream) = &h.upstream {
        // The target plays the workload cluster: the cluster's CA is the target's own (a
        // platform team's "bring your own CA", created before the control plane), so the
        // facade's admin kubeconfig authenticates to it and Cluster API's probe succeeds for
        // real. The CA Secret belongs to the Cluster like a generated one.
        let rendered = h.render(&manifest, &values);
        let documents = crate::upstream::manifests::documents_of(&rendered).map_err(Failure)?;
        let cluster_document = documents
            .iter()
            .find(|d| d["kind"] == "Cluster")
            .ok_or_else(|| Failure::new("acceptance/capd-kubeadm.yaml has no Cluster"))?;
        h.apply(&serde_json::to_string(cluster_document)?, &[])
            .await?;
        let cluster = h
            .wait_object(CAPI, "Cluster", CLUSTER, "exists", |_| true)
            .await?;
        let encode = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
        let ca = json!({"apiVersion": "v1", "kind": "Secret", "type": "cluster.x-k8s.io/secret",
            "metadata": {"name": format!("{CLUSTER}-ca"), "namespace": ns,
                "labels": {"cluster.x-k8s.io/cluster-name": CLUSTER},
                "ownerReferences": [{"apiVersion": CAPI, "kind": "Cluster", "name": CLUSTER,
                    "uid": cluster["metadata"]["uid"]}]},
            "data": {"tls.crt": encode(&upstream.ca), "tls.key": encode(&upstream.ca_key)}});
        h.apply(&serde_json::to_string(&ca)?, &[]).await?;
        h.apply(&manifest, &values).await?;
    } else {
        h.apply(&manifest, &values).await?;
    }
    let cluster = h
        .wait_object(CAPI, "Cluster", CLUSTER, "exists", |_| true)
        .await?;
    Ok(cluster["metadata"]["uid"].clone())
}

async fn a_facade_copies_the_kubeadm_backend(h: &Harness) -> Result<(), Failure> {
    h.step(
        "A",
        "the Kany8sKubeadmControlPlane copies the control plane's kubeadm backend",
    );
    let cp = h
        .wait_object(CP, "Kany8sControlPlane", CLUSTER, "exists", |_| true)
        .await?;
    let kkcp = h
        .wait_object(
            CP,
            "Kany8sKubeadmControlPlane",
            CLUSTER,
            "owned by the control plane and the Cluster",
            |o| {
                let owners = owners(o);
                owners.contains(&("Kany8sControlPlane".into(), CLUSTER.into(), true))
                    && owners
                        .iter()
                        .any(|(k, n, _)| k == "Cluster" && n == CLUSTER)
            },
        )
        .await?;
    check_eq(
        "cluster-name label",
        &kkcp["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"],
        &json!(CLUSTER),
    )?;
    check_eq("spec.version", &kkcp["spec"]["version"], &json!(VERSION))?;
    check_eq("spec.replicas", &kkcp["spec"]["replicas"], &json!(1))?;
    check_eq(
        "spec.machineTemplate",
        &kkcp["spec"]["machineTemplate"],
        &cp["spec"]["kubeadm"]["machineTemplate"],
    )?;
    check_eq(
        "spec.kubeadmConfigSpec",
        &kkcp["spec"]["kubeadmConfigSpec"],
        &cp["spec"]["kubeadm"]["kubeadmConfigSpec"],
    )
}

/// Returns the cluster CA certificate (PEM).
async fn b_certificate_secrets(h: &Harness, cluster_uid: &Value) -> Result<String, Failure> {
    h.step("B", "the cluster certificate Secrets");
    let mut ca_cert = String::new();
    for suffix in ["ca", "etcd", "proxy", "sa"] {
        let name = format!("{CLUSTER}-{suffix}");
        let secret = h
            .wait_object("v1", "Secret", &name, "exists", |_| true)
            .await?;
        check_cluster_secret(&secret, CLUSTER)?;
        check(
            !base64_text(&secret["data"]["tls.crt"]).is_empty()
                && !base64_text(&secret["data"]["tls.key"]).is_empty(),
            || format!("{name}: tls.crt or tls.key empty"),
        )?;
        let refs = secret["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        check(
            refs.len() == 1
                && refs[0]["kind"] == "Cluster"
                && &refs[0]["uid"] == cluster_uid
                && refs[0]["controller"] != true,
            || format!("{name}: ownerReferences {refs:?}"),
        )?;
        if suffix == "ca" {
            ca_cert = base64_text(&secret["data"]["tls.crt"]);
        }
    }
    check(ca_cert.starts_with("-----BEGIN CERTIFICATE-----"), || {
        "the CA Secret holds no PEM certificate".into()
    })?;
    Ok(ca_cert)
}

/// Returns the DockerCluster's endpoint and the kubeconfig Secret.
async fn c_admin_kubeconfig(h: &Harness, ca_cert: &str) -> Result<(Endpoint, Value), Failure> {
    h.step(
        "C",
        "the admin kubeconfig names the DockerCluster endpoint and the cluster CA",
    );
    let docker_cluster = h
        .wait_object(
            DOCKER,
            "DockerCluster",
            CLUSTER,
            "endpoint published",
            |o| {
                o["spec"]["controlPlaneEndpoint"]["port"]
                    .as_i64()
                    .is_some_and(|p| p > 0)
            },
        )
        .await?;
    let endpoint = docker_cluster["spec"]["controlPlaneEndpoint"].clone();
    let host = endpoint["host"].as_str().unwrap_or_default().to_string();
    let port = endpoint["port"].as_i64().unwrap_or_default();
    let server = if host.contains(':') {
        format!("https://[{host}]:{port}")
    } else {
        format!("https://{host}:{port}")
    };
    let secret = h
        .wait_object(
            "v1",
            "Secret",
            &format!("{CLUSTER}-kubeconfig"),
            "exists",
            |_| true,
        )
        .await?;
    let config: Value = yaml_serde::from_str(&base64_text(&secret["data"]["value"]))
        .map_err(|e| Failure(format!("{CLUSTER}-kubeconfig: {e}")))?;
    check_eq(
        "kubeconfig server",
        &config["clusters"][0]["cluster"]["server"],
        &json!(server),
    )?;
    check_eq(
        "kubeconfig CA",
        &json!(base64_text(
            &config["clusters"][0]["cluster"]["certificate-authority-data"]
        )),
        &json!(ca_cert),
    )?;
    check(
        owners(&secret)
            .iter()
            .any(|(k, n, _)| k == "Cluster" && n == CLUSTER),
        || "the kubeconfig Secret is not owned by the Cluster".into(),
    )?;
    Ok((Endpoint { host, port }, secret))
}

async fn d_kubeadm_config(h: &Harness, endpoint: &Endpoint) -> Result<(), Failure> {
    let Endpoint { host, port } = endpoint;
    h.step("D", "the KubeadmConfig");
    let config = h
        .wait_object(BOOTSTRAP, "KubeadmConfig", &machine(), "exists", |_| true)
        .await?;
    let spec = &config["spec"];
    check_eq(
        "controlPlaneEndpoint",
        &spec["clusterConfiguration"]["controlPlaneEndpoint"],
        &json!(format!(
            "{}:{port}",
            if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            }
        )),
    )?;
    check_eq(
        "certificatesDir",
        &spec["clusterConfiguration"]["certificatesDir"],
        &json!("/run/kubeadm/pki"),
    )?;
    check_eq(
        "bindPort",
        &spec["initConfiguration"]["localAPIEndpoint"]["bindPort"],
        &json!(port),
    )?;
    check(
        spec["files"].as_array().into_iter().flatten().any(|f| {
            f["path"] == "/run/kubeadm/pki/ca.crt"
                && f["content"].as_str().is_some_and(|t| !t.is_empty())
        }),
        || "no non-empty /run/kubeadm/pki/ca.crt file".into(),
    )
}

async fn e_docker_machine_and_machine(h: &Harness) -> Result<(), Failure> {
    let ns = h.namespace.clone();
    let machine = machine();
    h.step("E", "the DockerMachine and the Machine");
    let docker_machine = h
        .wait_object(DOCKER, "DockerMachine", &machine, "exists", |_| true)
        .await?;
    check_eq(
        "cloned-from-name",
        &docker_machine["metadata"]["annotations"]["cluster.x-k8s.io/cloned-from-name"],
        &json!(format!("{CLUSTER}-control-plane")),
    )?;
    check_eq(
        "cloned-from-groupkind",
        &docker_machine["metadata"]["annotations"]["cluster.x-k8s.io/cloned-from-groupkind"],
        &json!("DockerMachineTemplate.infrastructure.cluster.x-k8s.io"),
    )?;
    check_eq(
        "customImage",
        &docker_machine["spec"]["customImage"],
        &json!(format!("kindest/node:{VERSION}")),
    )?;
    let m = h
        .wait_object(CAPI, "Machine", &machine, "exists", |_| true)
        .await?;
    check_eq(
        "control-plane label",
        &m["metadata"]["labels"]["cluster.x-k8s.io/control-plane"],
        &json!("true"),
    )?;
    check_eq(
        "cluster-name label",
        &m["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"],
        &json!(CLUSTER),
    )?;
    check_eq(
        "bootstrap.configRef",
        &m["spec"]["bootstrap"]["configRef"],
        &json!({"apiGroup": "bootstrap.cluster.x-k8s.io", "kind": "KubeadmConfig", "name": machine}),
    )?;
    check_eq(
        "infrastructureRef",
        &m["spec"]["infrastructureRef"],
        &json!({"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DockerMachine", "name": machine}),
    )?;
    check_eq("Machine version", &m["spec"]["version"], &json!(VERSION))?;
    // [KK-12]: a removed control-plane label is put back (the Machine's spec is never patched).
    h.kubectl(
        &[
            "label",
            "-n",
            &ns,
            "machine",
            &machine,
            "cluster.x-k8s.io/control-plane-",
        ],
        None,
    )
    .await?;
    h.wait_object(
        CAPI,
        "Machine",
        &machine,
        "control-plane label restored",
        |o| o["metadata"]["labels"]["cluster.x-k8s.io/control-plane"] == "true",
    )
    .await?;
    Ok(())
}

async fn f_cluster_probed_and_available(h: &Harness) -> Result<(), Failure> {
    h.step(
        "F",
        "the Cluster probes the workload API server, then is Available",
    );
    h.wait_object(
        CAPI,
        "Cluster",
        CLUSTER,
        "RemoteConnectionProbe=True",
        |o| has_condition(o, "RemoteConnectionProbe", "True", None),
    )
    .await?;
    h.wait_object(CAPI, "Cluster", CLUSTER, "Available=True", |o| {
        has_condition(o, "Available", "True", None)
    })
    .await?;
    Ok(())
}

async fn g_ready_and_initialized(h: &Harness) -> Result<(), Failure> {
    h.step(
        "G",
        "the facade and the control plane report a ready, initialized control plane",
    );
    let kkcp = h
        .wait_object(
            CP,
            "Kany8sKubeadmControlPlane",
            CLUSTER,
            "Ready and Available with its Machine ready",
            |o| {
                // A real Machine turns Ready only after its node's health is read, which waits
                // for the Cluster's ControlPlaneInitialized: after the facade is Available.
                has_condition(o, "Ready", "True", Some("Ready"))
                    && has_condition(o, "Available", "True", None)
                    && o["status"]["readyReplicas"] == 1
            },
        )
        .await?;
    let status = &kkcp["status"];
    check_eq(
        "initialized",
        &status["initialization"]["controlPlaneInitialized"],
        &json!(true),
    )?;
    check_eq(
        "versions",
        &status["versions"],
        &json!([{"version": VERSION, "replicas": 1}]),
    )?;
    check_eq("replicas", &status["replicas"], &json!(1))?;
    check_eq("readyReplicas", &status["readyReplicas"], &json!(1))?;
    check(
        has_condition(&kkcp, "MachinesUpToDate", "True", None),
        || "MachinesUpToDate is not True".into(),
    )?;
    check(status["externalManagedControlPlane"].is_null(), || {
        "the facade sets externalManagedControlPlane".into()
    })?;
    let cp = h
        .wait_object(
            CP,
            "Kany8sControlPlane",
            CLUSTER,
            "initialized, Ready and Available",
            |o| {
                o["status"]["initialization"]["controlPlaneInitialized"] == true
                    && has_condition(o, "Ready", "True", None)
                    && has_condition(o, "Available", "True", None)
            },
        )
        .await?;
    check_eq(
        "CP endpoint",
        &cp["spec"]["controlPlaneEndpoint"],
        &kkcp["spec"]["controlPlaneEndpoint"],
    )?;
    check_eq("CP version", &cp["status"]["version"], &json!(VERSION))?;
    check(
        cp["status"]["externalManagedControlPlane"].is_null(),
        || "externalManagedControlPlane set for the kubeadm backend".into(),
    )?;
    check(
        condition(&cp, "KubeconfigSecretReconciled").is_none(),
        || "KubeconfigSecretReconciled set for the kubeadm backend".into(),
    )
}

/// Only where a workload cluster exists: kind (CAPD's containers) and upstream (the target
/// itself); `kubeconfig` is the facade's kubeconfig Secret.
async fn h_workload_cluster_answers(h: &Harness, kubeconfig: &Value) -> Result<(), Failure> {
    let ns = h.namespace.clone();
    if h.target == Target::Kind {
        h.step(
            "H",
            "the workload cluster answers with the generated kubeconfig",
        );
        let text = run_tool(
            "clusterctl",
            &["get", "kubeconfig", CLUSTER, "-n", &ns],
            &h.kubeconfig,
        )
        .await?;
        let file = std::env::temp_dir().join(format!("{CLUSTER}-{ns}.kubeconfig"));
        std::fs::write(&file, text)
            .map_err(|e| Failure(format!("write {}: {e}", file.display())))?;
        h.wait("kubectl get nodes on the workload cluster", || async {
            Ok(run_tool(
                "kubectl",
                &["--kubeconfig", &file.to_string_lossy(), "get", "nodes"],
                &file,
            )
            .await
            .map_err(|e| e.0))
        })
        .await?;
    } else if let Some(upstream) = &h.upstream {
        h.step(
            "H",
            "the workload cluster (the target itself) answers with the generated kubeconfig",
        );
        let file = std::env::temp_dir().join(format!("{CLUSTER}-{ns}.kubeconfig"));
        std::fs::write(&file, base64_text(&kubeconfig["data"]["value"]))
            .map_err(|e| Failure(format!("write {}: {e}", file.display())))?;
        let kubectl = upstream.kubectl.to_string_lossy().to_string();
        let nodes = run_tool(
            &kubectl,
            &[
                "--kubeconfig",
                &file.to_string_lossy(),
                "get",
                "nodes",
                "-o",
                "name",
            ],
            &file,
        )
        .await;
        let _ = std::fs::remove_file(&file);
        let nodes = nodes?;
        let machine = machine();
        check(nodes.contains(&format!("node/{machine}")), || {
            format!("the machine's node is not in the workload cluster: {nodes}")
        })?;
    }
    Ok(())
}

async fn i_machine_deleted_before_facade(h: &Harness) -> Result<(), Failure> {
    let ns = h.namespace.clone();
    let machine = machine();
    h.step(
        "I",
        "delete the Cluster: the Machine goes before the facade, then everything",
    );
    let observer = h.observe(CP, "Kany8sKubeadmControlPlane", CLUSTER).await?;
    h.kubectl(
        &["delete", "-n", &ns, "cluster", CLUSTER, "--wait=false"],
        None,
    )
    .await?;
    h.wait(
        &format!("Machine {machine} to be deleted while the facade exists"),
        || async {
            let machine_left = h.get(CAPI, "Machine", &machine).await?;
            let kkcp = h.get(CP, "Kany8sKubeadmControlPlane", CLUSTER).await?;
            match (machine_left, kkcp) {
                (Some(_), _) => Ok(Err("Machine still there".to_string())),
                (None, Some(_)) => Ok(Ok(())),
                (None, None) => Ok(Ok(())),
            }
        },
    )
    .await?;
    for (api_version, kind, name) in [
        (CAPI, "Cluster", CLUSTER.to_string()),
        (CP, "Kany8sControlPlane", CLUSTER.to_string()),
        (CP, "Kany8sKubeadmControlPlane", CLUSTER.to_string()),
        (DOCKER, "DockerCluster", CLUSTER.to_string()),
        (DOCKER, "DockerMachine", machine.clone()),
        (BOOTSTRAP, "KubeadmConfig", machine.clone()),
        ("v1", "Secret", format!("{CLUSTER}-ca")),
        ("v1", "Secret", format!("{CLUSTER}-kubeconfig")),
    ] {
        h.wait_gone(api_version, kind, &name).await?;
    }
    check(
        observer.saw(|o| has_condition(o, "Deleting", "True", Some("WaitingForMachineDeletion"))),
        || {
            "Kany8sKubeadmControlPlane: Deleting=True/WaitingForMachineDeletion was never observed"
                .into()
        },
    )?;
    if h.target == Target::Kind {
        let left = workload_containers(h, CLUSTER).await?;
        check(left.trim().is_empty(), || {
            format!("workload containers left: {}", left.trim())
        })?;
    }
    Ok(())
}

/// (kind, name, controller) of each owner reference.
fn owners(object: &Value) -> Vec<(String, String, bool)> {
    object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            (
                o["kind"].as_str().unwrap_or_default().to_string(),
                o["name"].as_str().unwrap_or_default().to_string(),
                o["controller"] == true,
            )
        })
        .collect()
}

/// Runs a program against a kubeconfig (clusterctl, docker or a workload kubectl); the error
/// names it and its output.
async fn run_tool(
    program: &str,
    args: &[&str],
    kubeconfig: &std::path::Path,
) -> Result<String, Failure> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .await
        .map_err(|e| Failure(format!("{program} {}: {e}", args.join(" "))))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(Failure(format!(
            "{program} {} failed: {stdout}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

/// The names of the Docker containers of workload cluster `cluster` (kind target).
async fn workload_containers(h: &Harness, cluster: &str) -> Result<String, Failure> {
    let filter = format!("name=^{cluster}-");
    let names = ["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"];
    run_tool("docker", &names, &h.kubeconfig).await
}
