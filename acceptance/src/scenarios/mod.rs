//! The acceptance scenarios (provider.md §11), written once for both targets, plus the
//! embedded-only extras (topology, quiet pause).

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::harness::{Failure, Harness, Target, check, check_eq, condition, has_condition};

const CP: &str = "controlplane.cluster.x-k8s.io/v1alpha1";
const IC: &str = "infrastructure.cluster.x-k8s.io/v1alpha1";
const CAPI: &str = "cluster.x-k8s.io/v1beta2";
const KRO: &str = "kro.run/v1alpha1";
const RGD: &str = "ResourceGraphDefinition";

/// A kubeconfig whose user token tells versions apart; its server is an unresolvable `.test`
/// name (nothing on the embedded target dials it).
pub fn kubeconfig(token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: demo\n  cluster:\n    server: https://demo.kany8s.test:6443\ncontexts:\n- name: demo\n  context:\n    cluster: demo\n    user: admin\ncurrent-context: demo\nusers:\n- name: admin\n  user:\n    token: {token}\n"
    )
}

/// The scenarios by name: (name, also on kind). Every scenario runs on the embedded and the
/// upstream targets.
pub const ALL: &[(&str, bool)] = &[
    ("kro-reflection", true),
    ("kro-infra-reflection", true),
    ("kro-infra-cluster-identity", true),
    ("kro-reflection-multi-rgd", true),
    ("topology", false),
    ("pause-quiet", false),
    ("capd-kubeadm", true),
];

/// Runs scenario `name`.
pub async fn run(name: &str, h: &Harness) -> Result<(), Failure> {
    match name {
        "kro-reflection" => kro_reflection(h).await,
        "kro-infra-reflection" => kro_infra_reflection(h).await,
        "kro-infra-cluster-identity" => kro_infra_cluster_identity(h).await,
        "kro-reflection-multi-rgd" => kro_reflection_multi_rgd(h).await,
        "topology" => topology(h).await,
        "pause-quiet" => pause_quiet(h).await,
        "capd-kubeadm" => capd_kubeadm(h).await,
        other => Err(Failure(format!(
            "unknown scenario \"{other}\" (known: {})",
            ALL.iter().map(|s| s.0).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn secret_manifest(
    name: &str,
    namespace: &str,
    cluster_label: Option<&str>,
    value: &str,
) -> String {
    let mut secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"value": base64::engine::general_purpose::STANDARD.encode(value)}});
    if let Some(cluster) = cluster_label {
        secret["type"] = json!("cluster.x-k8s.io/secret");
        secret["metadata"]["labels"] = json!({"cluster.x-k8s.io/cluster-name": cluster});
    }
    serde_json::to_string(&secret).unwrap_or_default()
}

fn secret_value(secret: &Value) -> String {
    secret["data"]["value"]
        .as_str()
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Applies the RGD fixtures and waits until each is Active.
async fn apply_rgds(h: &Harness, fixtures: &[(&str, &str)]) -> Result<(), Failure> {
    for (file, _) in fixtures {
        h.apply_fixture(&format!("rgds/{file}"), &[]).await?;
    }
    for (_, name) in fixtures {
        h.wait_object(KRO, RGD, name, "accepted (state Active)", |o| {
            o["status"]["state"] == "Active"
        })
        .await?;
    }
    Ok(())
}

fn initialized(cp: &Value) -> bool {
    cp["status"]["initialization"]["controlPlaneInitialized"] == true
}

fn owner_uids(object: &Value) -> Vec<String> {
    object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["uid"].as_str().map(str::to_string))
        .collect()
}

/// Runs the kubectl `delete` command, then waits until the object `(api, kind) name` is gone,
/// failing if it ever disappears while its backend still exists; the object must have been
/// seen with `Deleting=True/WaitingForBackendDeletion` ([CT-25]).
async fn deleted_after_backend(
    h: &Harness,
    (api_version, kind): (&str, &str),
    (backend_api, backend_kind): (&str, &str),
    name: &str,
    delete: &[&str],
) -> Result<(), Failure> {
    let observer = h.observe(api_version, kind, name).await?;
    h.kubectl(delete, None).await?;
    h.wait(
        &format!("{kind} {name} to be gone, never before its backend"),
        || async {
            let object = h.get(api_version, kind, name).await?;
            let backend = h.get(backend_api, backend_kind, name).await?;
            match (object, backend) {
                (Some(_), _) => Ok(Err(format!("{kind} still there"))),
                (None, Some(_)) => Err(Failure(format!(
                    "{kind} {name} disappeared while its {backend_kind} still exists"
                ))),
                (None, None) => Ok(Ok(())),
            }
        },
    )
    .await?;
    check(
        observer.saw(|o| has_condition(o, "Deleting", "True", Some("WaitingForBackendDeletion"))),
        || format!("{kind} {name}: Deleting=True/WaitingForBackendDeletion was never observed"),
    )
}

/// [ACC-10] kro reflection.
async fn kro_reflection(h: &Harness) -> Result<(), Failure> {
    let ns = h.namespace.clone();
    // Three workload kubeconfigs told apart by their credentials: A's, then B's v1 and v2.
    let (kubeconfig_a, kubeconfig_v1, kubeconfig_v2) = (
        h.workload_kubeconfig("a").await?,
        h.workload_kubeconfig("v1").await?,
        h.workload_kubeconfig("v2").await?,
    );
    h.step("A", "apply both RGDs; both accepted and served");
    apply_rgds(
        h,
        &[
            (
                "control-plane/demo-control-plane.yaml",
                "demo-control-plane.kro.run",
            ),
            (
                "control-plane/demo-control-plane-kubeconfig.yaml",
                "demo-control-plane-kubeconfig.kro.run",
            ),
        ],
    )
    .await?;

    h.step("B", "apply CP demo-cluster without a Cluster");
    h.apply_fixture(
        "acceptance/control-plane.yaml",
        &[
            ("CLUSTER_NAME", "demo-cluster"),
            ("KUBERNETES_VERSION", "1.34"),
            ("RGD_NAME", "demo-control-plane.kro.run"),
        ],
    )
    .await?;
    let cp = h
        .wait_object(
            CP,
            "Kany8sControlPlane",
            "demo-cluster",
            "Ready=True",
            |o| has_condition(o, "Ready", "True", None),
        )
        .await?;
    let instance = h
        .wait_object(KRO, "DemoControlPlane", "demo-cluster", "exists", |_| true)
        .await?;
    check_eq(
        "instance spec.name",
        &instance["spec"]["name"],
        &json!("demo-cluster"),
    )?;
    check_eq(
        "instance spec.version",
        &instance["spec"]["version"],
        &json!("1.34"),
    )?;
    let controller = instance["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["controller"] == true)
        .cloned()
        .unwrap_or_default();
    check_eq(
        "instance controller owner uid",
        &controller["uid"],
        &cp["metadata"]["uid"],
    )?;
    check_eq(
        "blockOwnerDeletion",
        &controller["blockOwnerDeletion"],
        &json!(true),
    )?;
    check_eq(
        "kany8s.io/owner-uid",
        &instance["metadata"]["annotations"]["kany8s.io/owner-uid"],
        &cp["metadata"]["uid"],
    )?;
    check(
        cp["metadata"]["finalizers"].as_array().is_some_and(|f| {
            f.contains(&json!("kany8scontrolplane.controlplane.cluster.x-k8s.io"))
        }),
        || "CP finalizer missing".into(),
    )?;
    check_eq(
        "block-move",
        &cp["metadata"]["annotations"]["clusterctl.cluster.x-k8s.io/block-move"],
        &json!("true"),
    )?;
    check(
        has_condition(
            &cp,
            "ResourceGraphDefinitionResolved",
            "True",
            Some("Resolved"),
        ),
        || {
            format!(
                "RGD condition: {:?}",
                condition(&cp, "ResourceGraphDefinitionResolved")
            )
        },
    )?;
    check_eq(
        "endpoint",
        &cp["spec"]["controlPlaneEndpoint"],
        &json!({"host": format!("demo-cluster-svc.{ns}.svc.cluster.local"), "port": 6443}),
    )?;
    check_eq(
        "externalManagedControlPlane",
        &cp["status"]["externalManagedControlPlane"],
        &json!(true),
    )?;
    check(!initialized(&cp), || {
        "initialized without an owner Cluster".into()
    })?;
    check(
        has_condition(
            &cp,
            "KubeconfigSecretReconciled",
            "False",
            Some("OwnerClusterNotSet"),
        ),
        || {
            format!(
                "kubeconfig condition: {:?}",
                condition(&cp, "KubeconfigSecretReconciled")
            )
        },
    )?;
    check(
        has_condition(&cp, "Available", "False", Some("NotInitialized")),
        || format!("Available: {:?}", condition(&cp, "Available")),
    )?;
    check(
        cp["status"]["version"].is_null()
            && cp["status"]["failureReason"].is_null()
            && cp["status"]["failureMessage"].is_null(),
        || "unexpected version or failure fields".into(),
    )?;

    h.step("C", "drift on the instance's spec.version is reverted");
    h.kubectl(
        &[
            "patch",
            "-n",
            &ns,
            "democontrolplanes.kro.run",
            "demo-cluster",
            "--type=merge",
            "-p",
            r#"{"spec":{"version":"0.0"}}"#,
        ],
        None,
    )
    .await?;
    h.wait_object(
        KRO,
        "DemoControlPlane",
        "demo-cluster",
        "spec.version reverted to 1.34",
        |o| o["spec"]["version"] == "1.34",
    )
    .await?;

    h.step("D", "create Cluster demo-cluster");
    h.apply_fixture(
        "acceptance/cluster.yaml",
        &[("CLUSTER_NAME", "demo-cluster")],
    )
    .await?;
    let cluster = h
        .wait_object(CAPI, "Cluster", "demo-cluster", "exists", |_| true)
        .await?;
    let cluster_uid = cluster["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let cp = h
        .wait_object(
            CP,
            "Kany8sControlPlane",
            "demo-cluster",
            "KubeconfigSecretNotFound",
            |o| {
                has_condition(
                    o,
                    "KubeconfigSecretReconciled",
                    "False",
                    Some("KubeconfigSecretNotFound"),
                )
            },
        )
        .await?;
    check(owner_uids(&cp).contains(&cluster_uid), || {
        "CP lacks the Cluster ownerReference".into()
    })?;
    check(
        has_condition(&cp, "Ready", "True", None) && !initialized(&cp),
        || "Ready must stay True and not initialized".into(),
    )?;
    h.wait_object(
        KRO,
        "DemoControlPlane",
        "demo-cluster",
        "Cluster owner and label",
        |o| {
            owner_uids(o).contains(&cluster_uid)
                && o["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"] == "demo-cluster"
        },
    )
    .await?;

    h.step("E", "a plugin provides demo-cluster-kubeconfig (Option A)");
    h.apply(
        &secret_manifest(
            "demo-cluster-kubeconfig",
            &ns,
            Some("demo-cluster"),
            &kubeconfig_a,
        ),
        &[],
    )
    .await?;
    let secret_before = h
        .get("v1", "Secret", "demo-cluster-kubeconfig")
        .await?
        .unwrap_or_default();
    let cp = h
        .wait_object(
            CP,
            "Kany8sControlPlane",
            "demo-cluster",
            "Available=True",
            |o| has_condition(o, "Available", "True", Some("Available")),
        )
        .await?;
    check(
        has_condition(
            &cp,
            "KubeconfigSecretReconciled",
            "True",
            Some("ProvidedByBackend"),
        ) && initialized(&cp),
        || "Option A not reconciled".into(),
    )?;
    check_eq("status.version", &cp["status"]["version"], &json!("1.34"))?;
    check_eq(
        "status.versions",
        &cp["status"]["versions"],
        &json!([{"version": "1.34"}]),
    )?;
    check(has_condition(&cp, "RollingOut", "False", None), || {
        "RollingOut must be False".into()
    })?;
    let secret_after = h
        .get("v1", "Secret", "demo-cluster-kubeconfig")
        .await?
        .unwrap_or_default();
    check_eq(
        "Option A Secret resourceVersion",
        &secret_after["metadata"]["resourceVersion"],
        &secret_before["metadata"]["resourceVersion"],
    )?;
    check(
        secret_after["metadata"]["ownerReferences"].is_null(),
        || "the provider took over the plugin's Secret".into(),
    )?;
    let cp_endpoint = cp["spec"]["controlPlaneEndpoint"].clone();
    h.wait_object(
        CAPI,
        "Cluster",
        "demo-cluster",
        "endpoint copied and ControlPlaneAvailable",
        |o| {
            o["spec"]["controlPlaneEndpoint"] == cp_endpoint
                && has_condition(o, "ControlPlaneAvailable", "True", None)
        },
    )
    .await?;

    h.step(
        "F",
        "CP and Cluster demo-cluster-b (Option B) wait for the source Secret",
    );
    h.apply_fixture(
        "acceptance/control-plane.yaml",
        &[
            ("CLUSTER_NAME", "demo-cluster-b"),
            ("KUBERNETES_VERSION", "1.34"),
            ("RGD_NAME", "demo-control-plane-kubeconfig.kro.run"),
        ],
    )
    .await?;
    h.apply_fixture(
        "acceptance/cluster.yaml",
        &[("CLUSTER_NAME", "demo-cluster-b")],
    )
    .await?;
    let b = h
        .wait_object(
            CP,
            "Kany8sControlPlane",
            "demo-cluster-b",
            "KubeconfigSourceSecretNotFound gate",
            |o| {
                has_condition(
                    o,
                    "KubeconfigSecretReconciled",
                    "False",
                    Some("KubeconfigSourceSecretNotFound"),
                ) && has_condition(o, "Ready", "False", Some("KubeconfigSourceSecretNotFound"))
            },
        )
        .await?;
    let message = condition(&b, "KubeconfigSecretReconciled")
        .map(|c| c.2)
        .unwrap_or_default();
    check(
        message.contains(&format!(
            "waiting for source secret {ns}/demo-cluster-b-admin-kubeconfig"
        )),
        || format!("message: {message}"),
    )?;
    check(!initialized(&b), || {
        "initialized before the kubeconfig".into()
    })?;

    h.step(
        "G",
        "the source Secret is copied into demo-cluster-b-kubeconfig",
    );
    h.apply(
        &secret_manifest("demo-cluster-b-admin-kubeconfig", &ns, None, &kubeconfig_v1),
        &[],
    )
    .await?;
    let b = h
        .wait_object(
            CP,
            "Kany8sControlPlane",
            "demo-cluster-b",
            "Available=True",
            |o| has_condition(o, "Available", "True", None),
        )
        .await?;
    check(
        has_condition(&b, "KubeconfigSecretReconciled", "True", Some("Reconciled"))
            && has_condition(&b, "Ready", "True", None)
            && initialized(&b),
        || "Option B not reconciled".into(),
    )?;
    let target = h
        .get("v1", "Secret", "demo-cluster-b-kubeconfig")
        .await?
        .ok_or_else(|| Failure::new("demo-cluster-b-kubeconfig missing"))?;
    check_eq(
        "target type",
        &target["type"],
        &json!("cluster.x-k8s.io/secret"),
    )?;
    check_eq(
        "target label",
        &target["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"],
        &json!("demo-cluster-b"),
    )?;
    check_eq("target value", secret_value(&target), kubeconfig_v1.clone())?;
    check(
        target["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|o| {
                o.iter()
                    .any(|o| o["uid"] == b["metadata"]["uid"] && o["controller"] == true)
            }),
        || "target lacks the CP controller reference".into(),
    )?;

    h.step(
        "H",
        "a rotated source reaches the target; the CP generation is unchanged",
    );
    let generation = b["metadata"]["generation"].clone();
    h.apply(
        &secret_manifest("demo-cluster-b-admin-kubeconfig", &ns, None, &kubeconfig_v2),
        &[],
    )
    .await?;
    h.wait_object(
        "v1",
        "Secret",
        "demo-cluster-b-kubeconfig",
        "value v2",
        |o| secret_value(o) == kubeconfig_v2,
    )
    .await?;
    let b = h
        .get(CP, "Kany8sControlPlane", "demo-cluster-b")
        .await?
        .unwrap_or_default();
    check_eq("CP generation", &b["metadata"]["generation"], &generation)?;

    h.step("I", "an invalid source never overwrites the target");
    h.apply(
        &secret_manifest(
            "demo-cluster-b-admin-kubeconfig",
            &ns,
            None,
            "not a kubeconfig",
        ),
        &[],
    )
    .await?;
    let b = h
        .wait_object(
            CP,
            "Kany8sControlPlane",
            "demo-cluster-b",
            "InvalidKubeconfig",
            |o| {
                has_condition(
                    o,
                    "KubeconfigSecretReconciled",
                    "False",
                    Some("InvalidKubeconfig"),
                ) && has_condition(o, "Available", "False", None)
            },
        )
        .await?;
    check(
        condition(&b, "KubeconfigSecretReconciled")
            .is_some_and(|c| c.2.contains("invalid kubeconfig")),
        || "message lacks 'invalid kubeconfig'".into(),
    )?;
    let target = h
        .get("v1", "Secret", "demo-cluster-b-kubeconfig")
        .await?
        .unwrap_or_default();
    check_eq(
        "target value after an invalid source",
        secret_value(&target),
        kubeconfig_v2.clone(),
    )?;
    h.apply(
        &secret_manifest("demo-cluster-b-admin-kubeconfig", &ns, None, &kubeconfig_v2),
        &[],
    )
    .await?;
    h.wait_object(
        CP,
        "Kany8sControlPlane",
        "demo-cluster-b",
        "Available=True again",
        |o| has_condition(o, "Available", "True", None),
    )
    .await?;

    h.step(
        "J",
        "a version bump reaches the instance and the reported version",
    );
    h.kubectl(
        &[
            "patch",
            "-n",
            &ns,
            "kany8scontrolplanes.controlplane.cluster.x-k8s.io",
            "demo-cluster",
            "--type=merge",
            "-p",
            r#"{"spec":{"version":"1.35"}}"#,
        ],
        None,
    )
    .await?;
    h.wait_object(
        KRO,
        "DemoControlPlane",
        "demo-cluster",
        "spec.version 1.35",
        |o| o["spec"]["version"] == "1.35",
    )
    .await?;
    h.wait_object(
        CP,
        "Kany8sControlPlane",
        "demo-cluster",
        "status.version 1.35",
        |o| {
            o["status"]["version"] == "1.35"
                && o["status"]["versions"] == json!([{"version": "1.35"}])
        },
    )
    .await?;

    h.step("K", "pause the Cluster, then change kroSpec.replicas");
    h.kubectl(
        &[
            "patch",
            "-n",
            &ns,
            "clusters.cluster.x-k8s.io",
            "demo-cluster",
            "--type=merge",
            "-p",
            r#"{"spec":{"paused":true}}"#,
        ],
        None,
    )
    .await?;
    h.wait_object(
        CP,
        "Kany8sControlPlane",
        "demo-cluster",
        "Paused and block-move removed",
        |o| {
            has_condition(o, "Paused", "True", Some("Paused"))
                && o["metadata"]["annotations"]["clusterctl.cluster.x-k8s.io/block-move"].is_null()
        },
    )
    .await?;
    let cp_uid = cp["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    h.wait_object(
        KRO,
        "DemoControlPlane",
        "demo-cluster",
        "suspended and detached",
        |o| {
            o["metadata"]["annotations"]["kro.run/reconcile"] == "suspended"
                && o["metadata"]["annotations"]["kany8s.io/suspended"] == "true"
                && !owner_uids(o).contains(&cp_uid)
                && !owner_uids(o).contains(&cluster_uid)
        },
    )
    .await?;
    h.kubectl(
        &[
            "patch",
            "-n",
            &ns,
            "kany8scontrolplanes.controlplane.cluster.x-k8s.io",
            "demo-cluster",
            "--type=merge",
            "-p",
            r#"{"spec":{"kroSpec":{"replicas":2}}}"#,
        ],
        None,
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let instance = h
        .get(KRO, "DemoControlPlane", "demo-cluster")
        .await?
        .unwrap_or_default();
    check(instance["spec"]["replicas"] != 2, || {
        "the paused instance was updated".into()
    })?;

    h.step("L", "unpause: resumed, re-attached, replicas applied");
    h.kubectl(
        &[
            "patch",
            "-n",
            &ns,
            "clusters.cluster.x-k8s.io",
            "demo-cluster",
            "--type=merge",
            "-p",
            r#"{"spec":{"paused":false}}"#,
        ],
        None,
    )
    .await?;
    h.wait_object(
        KRO,
        "DemoControlPlane",
        "demo-cluster",
        "resumed with replicas 2",
        |o| {
            o["metadata"]["annotations"]["kro.run/reconcile"].is_null()
                && o["metadata"]["annotations"]["kany8s.io/suspended"].is_null()
                && owner_uids(o).contains(&cp_uid)
                && owner_uids(o).contains(&cluster_uid)
                && o["spec"]["replicas"] == 2
        },
    )
    .await?;
    h.wait_object(
        CP,
        "Kany8sControlPlane",
        "demo-cluster",
        "NotPaused with block-move",
        |o| {
            has_condition(o, "Paused", "False", Some("NotPaused"))
                && o["metadata"]["annotations"]["clusterctl.cluster.x-k8s.io/block-move"] == "true"
        },
    )
    .await?;

    h.step(
        "M",
        "delete the Cluster: the instance goes before the control plane",
    );
    deleted_after_backend(
        h,
        (CP, "Kany8sControlPlane"),
        (KRO, "DemoControlPlane"),
        "demo-cluster",
        &[
            "delete",
            "-n",
            &ns,
            "clusters.cluster.x-k8s.io",
            "demo-cluster",
            "--wait=false",
        ],
    )
    .await?;
    h.wait_gone(CAPI, "Cluster", "demo-cluster").await
}

/// [ACC-20] kro infra reflection (deletion observes [ICC-12] `Deleting=True/WaitingForBackendDeletion`).
async fn kro_infra_reflection(h: &Harness) -> Result<(), Failure> {
    let ns = h.namespace.clone();
    h.step("A", "apply the RGD and the Kany8sCluster");
    apply_rgds(
        h,
        &[("infrastructure/demo-infra.yaml", "demo-infra.kro.run")],
    )
    .await?;
    h.apply_fixture(
        "acceptance/kany8s-cluster.yaml",
        &[
            ("NAME", "demo-cluster"),
            ("RGD_NAME", "demo-infra.kro.run"),
            ("CLUSTER_LABEL", ""),
        ],
    )
    .await?;
    let ic = h
        .wait_object(IC, "Kany8sCluster", "demo-cluster", "Ready=True", |o| {
            has_condition(o, "Ready", "True", None)
        })
        .await?;
    check_eq(
        "provisioned",
        &ic["status"]["initialization"]["provisioned"],
        &json!(true),
    )?;
    check(
        ic["status"]["failureReason"].is_null() && ic["status"]["failureMessage"].is_null(),
        || "failure fields set".into(),
    )?;
    check(
        has_condition(&ic, "ResourceGraphDefinitionResolved", "True", None)
            && has_condition(&ic, "Paused", "False", None),
        || "conditions".into(),
    )?;
    check(
        ic["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.contains(&json!("kany8scluster.infrastructure.cluster.x-k8s.io"))),
        || "finalizer missing".into(),
    )?;
    check_eq(
        "block-move",
        &ic["metadata"]["annotations"]["clusterctl.cluster.x-k8s.io/block-move"],
        &json!("true"),
    )?;

    h.step("B", "inspect the instance");
    let instance = h
        .wait_object(
            KRO,
            "DemoInfrastructure",
            "demo-cluster",
            "status.ready",
            |o| o["status"]["ready"] == true,
        )
        .await?;
    check_eq(
        "clusterName",
        &instance["spec"]["clusterName"],
        &json!("demo-cluster"),
    )?;
    check_eq(
        "clusterNamespace",
        &instance["spec"]["clusterNamespace"],
        &json!(ns),
    )?;
    check(instance["spec"]["clusterUID"].is_null(), || {
        "clusterUID injected without being declared".into()
    })?;
    check(
        instance["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|o| {
                o.iter()
                    .any(|o| o["uid"] == ic["metadata"]["uid"] && o["controller"] == true)
            }),
        || "no controller reference".into(),
    )?;
    check(
        h.get("v1", "ConfigMap", "demo-cluster-infra")
            .await?
            .is_some(),
        || "ConfigMap demo-cluster-infra missing".into(),
    )?;

    h.step("C", "delete the Kany8sCluster: the instance goes first");
    deleted_after_backend(
        h,
        (IC, "Kany8sCluster"),
        (KRO, "DemoInfrastructure"),
        "demo-cluster",
        &[
            "delete",
            "-n",
            &ns,
            "kany8sclusters.infrastructure.cluster.x-k8s.io",
            "demo-cluster",
            "--wait=false",
        ],
    )
    .await?;
    h.wait_gone("v1", "ConfigMap", "demo-cluster-infra").await
}

/// [ACC-30] kro infra cluster identity.
async fn kro_infra_cluster_identity(h: &Harness) -> Result<(), Failure> {
    let ns = h.namespace.clone();
    apply_rgds(
        h,
        &[
            (
                "infrastructure/demo-infra-ownerref.yaml",
                "demo-infra-ownerref.kro.run",
            ),
            ("infrastructure/demo-infra.yaml", "demo-infra.kro.run"),
        ],
    )
    .await?;
    h.step(
        "A",
        "a Kany8sCluster that needs clusterUID waits for its Cluster",
    );
    h.apply_fixture(
        "acceptance/kany8s-cluster.yaml",
        &[
            ("NAME", "demo-cluster"),
            ("RGD_NAME", "demo-infra-ownerref.kro.run"),
            ("CLUSTER_LABEL", ""),
        ],
    )
    .await?;
    h.wait_object(
        IC,
        "Kany8sCluster",
        "demo-cluster",
        "WaitingForOwnerCluster",
        |o| has_condition(o, "Ready", "False", Some("WaitingForOwnerCluster")),
    )
    .await?;
    check(
        h.get(KRO, "DemoInfrastructureOwned", "demo-cluster")
            .await?
            .is_none(),
        || "an instance exists before the Cluster".into(),
    )?;

    h.step("B", "the Cluster arrives; the identity is injected");
    h.apply_fixture(
        "acceptance/cluster-with-infrastructure.yaml",
        &[("CLUSTER_NAME", "demo-cluster")],
    )
    .await?;
    let cluster = h
        .wait_object(CAPI, "Cluster", "demo-cluster", "exists", |_| true)
        .await?;
    let uid = cluster["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ic = h
        .wait_object(
            IC,
            "Kany8sCluster",
            "demo-cluster",
            "Ready=True and provisioned",
            |o| {
                has_condition(o, "Ready", "True", None)
                    && o["status"]["initialization"]["provisioned"] == true
            },
        )
        .await?;
    check(ic["status"]["failureReason"].is_null(), || {
        "failure fields set".into()
    })?;
    let instance = h
        .get(KRO, "DemoInfrastructureOwned", "demo-cluster")
        .await?
        .ok_or_else(|| Failure::new("no instance"))?;
    check_eq(
        "instance identity",
        (
            &instance["spec"]["clusterName"],
            &instance["spec"]["clusterNamespace"],
            &instance["spec"]["clusterUID"],
        ),
        (&json!("demo-cluster"), &json!(ns), &json!(uid)),
    )?;
    check(
        owner_uids(&instance).contains(&uid)
            && instance["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"] == "demo-cluster",
        || "instance lacks the Cluster owner or label".into(),
    )?;
    let owned = h
        .wait_object(
            "v1",
            "ConfigMap",
            "demo-cluster-infra-owned",
            "exists",
            |_| true,
        )
        .await?;
    check_eq(
        "owned ConfigMap owner",
        &owned["metadata"]["ownerReferences"][0]["uid"],
        &json!(uid),
    )?;
    check_eq(
        "owned ConfigMap label",
        &owned["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"],
        &json!("demo-cluster"),
    )?;
    h.wait_object(
        CAPI,
        "Cluster",
        "demo-cluster",
        "infrastructureProvisioned and InfrastructureReady",
        |o| {
            o["status"]["initialization"]["infrastructureProvisioned"] == true
                && has_condition(o, "InfrastructureReady", "True", None)
        },
    )
    .await?;

    h.step(
        "C",
        "a topology-named Kany8sCluster takes the cluster name from its label",
    );
    h.apply_fixture(
        "acceptance/kany8s-cluster.yaml",
        &[
            ("NAME", "demo2-x7k2p"),
            ("RGD_NAME", "demo-infra.kro.run"),
            ("CLUSTER_LABEL", "demo2"),
        ],
    )
    .await?;
    h.wait_object(
        KRO,
        "DemoInfrastructure",
        "demo2-x7k2p",
        "clusterName demo2",
        |o| o["spec"]["clusterName"] == "demo2",
    )
    .await?;
    Ok(())
}

/// [ACC-40] kro reflection with several RGDs.
async fn kro_reflection_multi_rgd(h: &Harness) -> Result<(), Failure> {
    let ns = h.namespace.clone();
    h.step("A", "three valid RGDs accepted, the broken one not");
    // The grouped RGD's instances live outside kro.run: the operator grants them to the
    // control-plane manager with an aggregated ClusterRole ([RB-03]).
    h.apply_fixture("rbac/demo-grouped-role.yaml", &[]).await?;
    apply_rgds(
        h,
        &[
            (
                "control-plane/demo-control-plane.yaml",
                "demo-control-plane.kro.run",
            ),
            (
                "control-plane/demo-control-plane-alt.yaml",
                "demo-control-plane-alt.kro.run",
            ),
            (
                "control-plane/demo-control-plane-grouped.yaml",
                "demo-control-plane-grouped.kro.run",
            ),
        ],
    )
    .await?;
    h.apply_fixture("rgds/other/demo-control-plane-broken.yaml", &[])
        .await?;
    h.wait_object(
        KRO,
        RGD,
        "demo-control-plane-broken.kro.run",
        "not accepted",
        |o| !o["status"]["state"].is_null() && o["status"]["state"] != "Active",
    )
    .await?;

    h.step("B", "four control planes");
    let cases = [
        (
            "demo-cluster",
            "demo-control-plane.kro.run",
            KRO,
            "DemoControlPlane",
            6443,
        ),
        (
            "demo-cluster-alt",
            "demo-control-plane-alt.kro.run",
            KRO,
            "DemoControlPlaneAlt",
            7443,
        ),
        (
            "demo-cluster-grouped",
            "demo-control-plane-grouped.kro.run",
            "demo.kany8s.io/v1alpha1",
            "DemoControlPlaneGrouped",
            8443,
        ),
    ];
    for (name, rgd, _, _, _) in cases.iter().chain(std::iter::once(&(
        "demo-cluster-broken",
        "demo-control-plane-broken.kro.run",
        KRO,
        "DemoControlPlaneBroken",
        0,
    ))) {
        h.apply_fixture(
            "acceptance/control-plane.yaml",
            &[
                ("CLUSTER_NAME", name),
                ("KUBERNETES_VERSION", "1.34"),
                ("RGD_NAME", rgd),
            ],
        )
        .await?;
    }
    for (name, _, api_version, kind, port) in cases {
        let cp = h
            .wait_object(CP, "Kany8sControlPlane", name, "Ready=True", |o| {
                has_condition(o, "Ready", "True", None)
            })
            .await?;
        check(h.get(api_version, kind, name).await?.is_some(), || {
            format!("no {api_version} {kind} {name}")
        })?;
        check_eq(
            "endpoint",
            &cp["spec"]["controlPlaneEndpoint"],
            &json!({"host": format!("{name}-svc.{ns}.svc.cluster.local"), "port": port}),
        )?;
        let resolved = condition(&cp, "ResourceGraphDefinitionResolved")
            .map(|c| c.2)
            .unwrap_or_default();
        check(
            resolved.ends_with(&format!("{api_version}, Kind={kind}")),
            || format!("resolved message: {resolved}"),
        )?;
    }
    let broken = h
        .wait_object(
            CP,
            "Kany8sControlPlane",
            "demo-cluster-broken",
            "ResourceGraphDefinitionNotAccepted",
            |o| {
                has_condition(
                    o,
                    "ResourceGraphDefinitionResolved",
                    "False",
                    Some("ResourceGraphDefinitionNotAccepted"),
                ) && has_condition(
                    o,
                    "Ready",
                    "False",
                    Some("ResourceGraphDefinitionNotAccepted"),
                )
            },
        )
        .await?;
    check(broken["status"]["backendRef"].is_null(), || {
        "the broken CP has a backend".into()
    })?;

    h.step(
        "C",
        "pointing demo-cluster-alt at another RGD is a backend change",
    );
    h.apply_fixture(
        "acceptance/control-plane.yaml",
        &[
            ("CLUSTER_NAME", "demo-cluster-alt"),
            ("KUBERNETES_VERSION", "1.34"),
            ("RGD_NAME", "demo-control-plane.kro.run"),
        ],
    )
    .await?;
    h.wait_object(
        CP,
        "Kany8sControlPlane",
        "demo-cluster-alt",
        "BackendChanged",
        |o| has_condition(o, "Ready", "False", Some("BackendChanged")),
    )
    .await?;
    check(
        h.get(KRO, "DemoControlPlaneAlt", "demo-cluster-alt")
            .await?
            .is_some(),
        || "the old instance is gone".into(),
    )?;
    check(
        h.get(KRO, "DemoControlPlane", "demo-cluster-alt")
            .await?
            .is_none(),
        || "a second instance was created".into(),
    )?;

    h.step("D", "deleting the old instance lets the new one be created");
    h.kubectl(
        &[
            "delete",
            "-n",
            &ns,
            "democontrolplanealts.kro.run",
            "demo-cluster-alt",
        ],
        None,
    )
    .await?;
    let cp = h
        .wait_object(
            CP,
            "Kany8sControlPlane",
            "demo-cluster-alt",
            "Ready on the new backend",
            |o| {
                has_condition(o, "Ready", "True", None)
                    && o["status"]["backendRef"]["kind"] == "DemoControlPlane"
                    && o["spec"]["controlPlaneEndpoint"]["port"] == 6443
            },
        )
        .await?;
    check(
        h.get(KRO, "DemoControlPlane", "demo-cluster-alt")
            .await?
            .is_some(),
        || format!("no new instance: {}", crate::harness::summary(&cp)),
    )?;
    Ok(())
}

/// Topology: a ClusterClass-based Cluster creates its control plane and infrastructure from
/// templates; a version bump in the topology reaches the instance and the reported version.
async fn topology(h: &Harness) -> Result<(), Failure> {
    let ns = h.namespace.clone();
    apply_rgds(
        h,
        &[(
            "control-plane/demo-control-plane.yaml",
            "demo-control-plane.kro.run",
        )],
    )
    .await?;
    h.step(
        "A",
        "apply the ClusterClass and a topology Cluster at v1.33.1",
    );
    h.apply_fixture("acceptance/clusterclass.yaml", &[("CLUSTER_NAME", "topo")])
        .await?;
    h.apply_fixture(
        "acceptance/cluster-topology.yaml",
        &[("CLUSTER_NAME", "topo"), ("KUBERNETES_VERSION", "v1.33.1")],
    )
    .await?;
    let cluster = h
        .wait_object(CAPI, "Cluster", "topo", "references set", |o| {
            o["spec"]["controlPlaneRef"]["name"].is_string()
                && o["spec"]["infrastructureRef"]["name"].is_string()
        })
        .await?;
    let cp_name = cluster["spec"]["controlPlaneRef"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ic_name = cluster["spec"]["infrastructureRef"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    check(
        cp_name.starts_with("topo-") && ic_name.starts_with("topo-"),
        || format!("generated names: {cp_name}, {ic_name}"),
    )?;
    let cp = h
        .wait_object(CP, "Kany8sControlPlane", &cp_name, "Ready=True", |o| {
            has_condition(o, "Ready", "True", None)
        })
        .await?;
    check_eq(
        "cloned-from-name",
        &cp["metadata"]["annotations"]["cluster.x-k8s.io/cloned-from-name"],
        &json!("demo-control-plane"),
    )?;
    check_eq(
        "cluster-name label",
        &cp["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"],
        &json!("topo"),
    )?;
    let instance = h
        .wait_object(KRO, "DemoControlPlane", &cp_name, "exists", |_| true)
        .await?;
    check_eq(
        "instance version",
        &instance["spec"]["version"],
        &json!("v1.33.1"),
    )?;
    check_eq(
        "variable patched into kroSpec",
        &instance["spec"]["replicas"],
        &json!(2),
    )?;
    h.wait_object(IC, "Kany8sCluster", &ic_name, "provisioned (stub)", |o| {
        o["status"]["initialization"]["provisioned"] == true
    })
    .await?;
    h.apply(
        &secret_manifest(
            "topo-kubeconfig",
            &ns,
            Some("topo"),
            &h.workload_kubeconfig("topo").await?,
        ),
        &[],
    )
    .await?;
    h.wait_object(CAPI, "Cluster", "topo", "Available=True", |o| {
        has_condition(o, "Available", "True", None)
    })
    .await?;
    h.wait_object(
        CP,
        "Kany8sControlPlane",
        &cp_name,
        "status.version v1.33.1",
        |o| o["status"]["version"] == "v1.33.1",
    )
    .await?;

    h.step("B", "bump topology.version to v1.34.0");
    h.kubectl(
        &[
            "patch",
            "-n",
            &ns,
            "clusters.cluster.x-k8s.io",
            "topo",
            "--type=merge",
            "-p",
            r#"{"spec":{"topology":{"version":"v1.34.0"}}}"#,
        ],
        None,
    )
    .await?;
    h.wait_object(
        CP,
        "Kany8sControlPlane",
        &cp_name,
        "spec.version v1.34.0",
        |o| o["spec"]["version"] == "v1.34.0",
    )
    .await?;
    h.wait_object(
        KRO,
        "DemoControlPlane",
        &cp_name,
        "instance version v1.34.0",
        |o| o["spec"]["version"] == "v1.34.0",
    )
    .await?;
    h.wait_object(
        CP,
        "Kany8sControlPlane",
        &cp_name,
        "status.version v1.34.0",
        |o| {
            o["status"]["version"] == "v1.34.0"
                && o["status"]["versions"] == json!([{"version": "v1.34.0"}])
        },
    )
    .await?;
    Ok(())
}

/// Pause and resume: while the Cluster is paused neither the control plane nor its instance
/// is written (after the pause itself settled), and resuming restores everything.
async fn pause_quiet(h: &Harness) -> Result<(), Failure> {
    let ns = h.namespace.clone();
    apply_rgds(
        h,
        &[(
            "control-plane/demo-control-plane.yaml",
            "demo-control-plane.kro.run",
        )],
    )
    .await?;
    h.step("A", "a ready control plane of a Cluster");
    h.apply_fixture(
        "acceptance/control-plane.yaml",
        &[
            ("CLUSTER_NAME", "quiet"),
            ("KUBERNETES_VERSION", "1.34"),
            ("RGD_NAME", "demo-control-plane.kro.run"),
        ],
    )
    .await?;
    h.apply_fixture("acceptance/cluster.yaml", &[("CLUSTER_NAME", "quiet")])
        .await?;
    h.apply(
        &secret_manifest(
            "quiet-kubeconfig",
            &ns,
            Some("quiet"),
            &h.workload_kubeconfig("q").await?,
        ),
        &[],
    )
    .await?;
    h.wait_object(CP, "Kany8sControlPlane", "quiet", "Available=True", |o| {
        has_condition(o, "Available", "True", None)
    })
    .await?;

    h.step(
        "B",
        "pause the Cluster; once settled, nothing is written for 3 s",
    );
    h.kubectl(
        &[
            "patch",
            "-n",
            &ns,
            "clusters.cluster.x-k8s.io",
            "quiet",
            "--type=merge",
            "-p",
            r#"{"spec":{"paused":true}}"#,
        ],
        None,
    )
    .await?;
    h.wait_object(CP, "Kany8sControlPlane", "quiet", "safely paused", |o| {
        has_condition(o, "Paused", "True", None)
            && o["metadata"]["annotations"]["clusterctl.cluster.x-k8s.io/block-move"].is_null()
    })
    .await?;
    h.wait_object(KRO, "DemoControlPlane", "quiet", "suspended", |o| {
        o["metadata"]["annotations"]["kany8s.io/suspended"] == "true"
            && o["metadata"]["ownerReferences"]
                .as_array()
                .is_none_or(Vec::is_empty)
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let instance = h
        .get(KRO, "DemoControlPlane", "quiet")
        .await?
        .unwrap_or_default();
    h.kubectl(
        &[
            "patch",
            "-n",
            &ns,
            "kany8scontrolplanes.controlplane.cluster.x-k8s.io",
            "quiet",
            "--type=merge",
            "-p",
            r#"{"spec":{"kroSpec":{"image":"nginx:1.29"}}}"#,
        ],
        None,
    )
    .await?;
    // [CT-07]: the paused path refreshes only the Paused condition's observedGeneration.
    h.wait_object(
        CP,
        "Kany8sControlPlane",
        "quiet",
        "Paused refreshed for the new generation",
        |o| {
            o["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| {
                    c["type"] == "Paused" && c["observedGeneration"] == o["metadata"]["generation"]
                })
        },
    )
    .await?;
    // A label change triggers a reconcile; a paused, settled control plane must not write.
    h.kubectl(
        &[
            "label",
            "-n",
            &ns,
            "kany8scontrolplanes.controlplane.cluster.x-k8s.io",
            "quiet",
            "team=a",
        ],
        None,
    )
    .await?;
    let patched = h
        .get(CP, "Kany8sControlPlane", "quiet")
        .await?
        .unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cp = h
        .get(CP, "Kany8sControlPlane", "quiet")
        .await?
        .unwrap_or_default();
    let after = h
        .get(KRO, "DemoControlPlane", "quiet")
        .await?
        .unwrap_or_default();
    // kro itself may still write the suspended instance's status once (its next reconcile
    // reports Ready=False, kro.md quirk Q2); Kany8s must write nothing.
    check(unchanged_by_kany8s(&instance, &after), || {
        format!(
            "the paused instance was written by Kany8s: {}",
            crate::harness::writers(&instance, &after)
        )
    })?;
    check(
        cp["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"],
        || {
            format!(
                "the paused control plane was written: {}",
                crate::harness::writers(&patched, &cp)
            )
        },
    )?;

    h.step(
        "C",
        "resume: the change is applied and everything is restored",
    );
    h.kubectl(
        &[
            "patch",
            "-n",
            &ns,
            "clusters.cluster.x-k8s.io",
            "quiet",
            "--type=merge",
            "-p",
            r#"{"spec":{"paused":false}}"#,
        ],
        None,
    )
    .await?;
    h.wait_object(
        KRO,
        "DemoControlPlane",
        "quiet",
        "resumed with the new image",
        |o| {
            o["spec"]["image"] == "nginx:1.29"
                && o["metadata"]["annotations"]["kany8s.io/suspended"].is_null()
                && o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|r| r.len() == 2)
        },
    )
    .await?;
    h.wait_object(
        CP,
        "Kany8sControlPlane",
        "quiet",
        "Available and block-move back",
        |o| {
            has_condition(o, "Available", "True", None)
                && has_condition(o, "Paused", "False", None)
                && o["metadata"]["annotations"]["clusterctl.cluster.x-k8s.io/block-move"] == "true"
        },
    )
    .await?;
    Ok(())
}

/// Whether `after` is `before` but for what kro writes: the status (and its managedFields entry).
fn unchanged_by_kany8s(before: &Value, after: &Value) -> bool {
    let kany8s_entries = |o: &Value| -> Vec<Value> {
        o["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| {
                f["manager"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("kany8s"))
            })
            .cloned()
            .collect()
    };
    let meta = |o: &Value, k: &str| o["metadata"][k].clone();
    before["spec"] == after["spec"]
        && [
            "labels",
            "annotations",
            "ownerReferences",
            "finalizers",
            "generation",
        ]
        .iter()
        .all(|k| meta(before, k) == meta(after, k))
        && kany8s_entries(before) == kany8s_entries(after)
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

fn base64_text(value: &Value) -> String {
    value
        .as_str()
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

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

/// [ACC-50] CAPD kubeadm: a self-managed control plane through the Kany8sKubeadmControlPlane
/// facade ([CP-40]–[CP-43], [CT-04], [CT-06], [CT-30], [KK-01], [KK-04], [KK-06]–[KK-12],
/// [KK-14], [KK-15], [KK-18]).
async fn capd_kubeadm(h: &Harness) -> Result<(), Failure> {
    const DOCKER: &str = "infrastructure.cluster.x-k8s.io/v1beta2";
    const BOOTSTRAP: &str = "bootstrap.cluster.x-k8s.io/v1beta2";
    let ns = h.namespace.clone();
    let c = "demo-self-managed-docker";
    let version = "v1.34.0";
    let machine = format!("{c}-control-plane-0");
    let manifest = h.fixture("acceptance/capd-kubeadm.yaml")?;
    let values = [("CLUSTER_NAME", c), ("KUBERNETES_VERSION", version)];
    if h.target == Target::Kind {
        // Stale CAPD containers of an earlier run would carry another CA.
        let stale = workload_containers(h, c).await?;
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
            .wait_object(CAPI, "Cluster", c, "exists", |_| true)
            .await?;
        let encode = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
        let ca = json!({"apiVersion": "v1", "kind": "Secret", "type": "cluster.x-k8s.io/secret",
            "metadata": {"name": format!("{c}-ca"), "namespace": ns,
                "labels": {"cluster.x-k8s.io/cluster-name": c},
                "ownerReferences": [{"apiVersion": CAPI, "kind": "Cluster", "name": c,
                    "uid": cluster["metadata"]["uid"]}]},
            "data": {"tls.crt": encode(&upstream.ca), "tls.key": encode(&upstream.ca_key)}});
        h.apply(&serde_json::to_string(&ca)?, &[]).await?;
        h.apply(&manifest, &values).await?;
    } else {
        h.apply(&manifest, &values).await?;
    }
    let cluster = h
        .wait_object(CAPI, "Cluster", c, "exists", |_| true)
        .await?;
    let cluster_uid = cluster["metadata"]["uid"].clone();

    h.step(
        "A",
        "the Kany8sKubeadmControlPlane copies the control plane's kubeadm backend",
    );
    let cp = h
        .wait_object(CP, "Kany8sControlPlane", c, "exists", |_| true)
        .await?;
    let kkcp = h
        .wait_object(
            CP,
            "Kany8sKubeadmControlPlane",
            c,
            "owned by the control plane and the Cluster",
            |o| {
                let owners = owners(o);
                owners.contains(&("Kany8sControlPlane".into(), c.into(), true))
                    && owners.iter().any(|(k, n, _)| k == "Cluster" && n == c)
            },
        )
        .await?;
    check_eq(
        "cluster-name label",
        &kkcp["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"],
        &json!(c),
    )?;
    check_eq("spec.version", &kkcp["spec"]["version"], &json!(version))?;
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
    )?;

    h.step("B", "the cluster certificate Secrets");
    let mut ca_cert = String::new();
    for suffix in ["ca", "etcd", "proxy", "sa"] {
        let name = format!("{c}-{suffix}");
        let secret = h
            .wait_object("v1", "Secret", &name, "exists", |_| true)
            .await?;
        check_eq(
            &format!("{name} type"),
            &secret["type"],
            &json!("cluster.x-k8s.io/secret"),
        )?;
        check_eq(
            &format!("{name} label"),
            &secret["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"],
            &json!(c),
        )?;
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
                && refs[0]["uid"] == cluster_uid
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

    h.step(
        "C",
        "the admin kubeconfig names the DockerCluster endpoint and the cluster CA",
    );
    let docker_cluster = h
        .wait_object(DOCKER, "DockerCluster", c, "endpoint published", |o| {
            o["spec"]["controlPlaneEndpoint"]["port"]
                .as_i64()
                .is_some_and(|p| p > 0)
        })
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
        .wait_object("v1", "Secret", &format!("{c}-kubeconfig"), "exists", |_| {
            true
        })
        .await?;
    let config: Value = yaml_serde::from_str(&base64_text(&secret["data"]["value"]))
        .map_err(|e| Failure(format!("{c}-kubeconfig: {e}")))?;
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
            .any(|(k, n, _)| k == "Cluster" && n == c),
        || "the kubeconfig Secret is not owned by the Cluster".into(),
    )?;

    h.step("D", "the KubeadmConfig");
    let config = h
        .wait_object(BOOTSTRAP, "KubeadmConfig", &machine, "exists", |_| true)
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
    )?;

    h.step("E", "the DockerMachine and the Machine");
    let docker_machine = h
        .wait_object(DOCKER, "DockerMachine", &machine, "exists", |_| true)
        .await?;
    check_eq(
        "cloned-from-name",
        &docker_machine["metadata"]["annotations"]["cluster.x-k8s.io/cloned-from-name"],
        &json!(format!("{c}-control-plane")),
    )?;
    check_eq(
        "cloned-from-groupkind",
        &docker_machine["metadata"]["annotations"]["cluster.x-k8s.io/cloned-from-groupkind"],
        &json!("DockerMachineTemplate.infrastructure.cluster.x-k8s.io"),
    )?;
    check_eq(
        "customImage",
        &docker_machine["spec"]["customImage"],
        &json!(format!("kindest/node:{version}")),
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
        &json!(c),
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
    check_eq("Machine version", &m["spec"]["version"], &json!(version))?;
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

    h.step(
        "F",
        "the Cluster probes the workload API server, then is Available",
    );
    h.wait_object(CAPI, "Cluster", c, "RemoteConnectionProbe=True", |o| {
        has_condition(o, "RemoteConnectionProbe", "True", None)
    })
    .await?;
    h.wait_object(CAPI, "Cluster", c, "Available=True", |o| {
        has_condition(o, "Available", "True", None)
    })
    .await?;

    h.step(
        "G",
        "the facade and the control plane report a ready, initialized control plane",
    );
    let kkcp = h
        .wait_object(
            CP,
            "Kany8sKubeadmControlPlane",
            c,
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
        &json!([{"version": version, "replicas": 1}]),
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
            c,
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
    check_eq("CP version", &cp["status"]["version"], &json!(version))?;
    check(
        cp["status"]["externalManagedControlPlane"].is_null(),
        || "externalManagedControlPlane set for the kubeadm backend".into(),
    )?;
    check(
        condition(&cp, "KubeconfigSecretReconciled").is_none(),
        || "KubeconfigSecretReconciled set for the kubeadm backend".into(),
    )?;

    if h.target == Target::Kind {
        h.step(
            "H",
            "the workload cluster answers with the generated kubeconfig",
        );
        let text = run_tool(
            "clusterctl",
            &["get", "kubeconfig", c, "-n", &ns],
            &h.kubeconfig,
        )
        .await?;
        let file = std::env::temp_dir().join(format!("{c}-{ns}.kubeconfig"));
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
        let file = std::env::temp_dir().join(format!("{c}-{ns}.kubeconfig"));
        std::fs::write(&file, base64_text(&secret["data"]["value"]))
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
        check(nodes.contains(&format!("node/{machine}")), || {
            format!("the machine's node is not in the workload cluster: {nodes}")
        })?;
    }

    h.step(
        "I",
        "delete the Cluster: the Machine goes before the facade, then everything",
    );
    let observer = h.observe(CP, "Kany8sKubeadmControlPlane", c).await?;
    h.kubectl(&["delete", "-n", &ns, "cluster", c, "--wait=false"], None)
        .await?;
    h.wait(
        &format!("Machine {machine} to be deleted while the facade exists"),
        || async {
            let machine_left = h.get(CAPI, "Machine", &machine).await?;
            let kkcp = h.get(CP, "Kany8sKubeadmControlPlane", c).await?;
            match (machine_left, kkcp) {
                (Some(_), _) => Ok(Err("Machine still there".to_string())),
                (None, Some(_)) => Ok(Ok(())),
                (None, None) => Ok(Ok(())),
            }
        },
    )
    .await?;
    for (api_version, kind, name) in [
        (CAPI, "Cluster", c.to_string()),
        (CP, "Kany8sControlPlane", c.to_string()),
        (CP, "Kany8sKubeadmControlPlane", c.to_string()),
        (DOCKER, "DockerCluster", c.to_string()),
        (DOCKER, "DockerMachine", machine.clone()),
        (BOOTSTRAP, "KubeadmConfig", machine.clone()),
        ("v1", "Secret", format!("{c}-ca")),
        ("v1", "Secret", format!("{c}-kubeconfig")),
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
        let left = workload_containers(h, c).await?;
        check(left.trim().is_empty(), || {
            format!("workload containers left: {}", left.trim())
        })?;
    }
    Ok(())
}

/// Whether a scenario runs on `target`.
pub fn runs_on(name: &str, target: Target) -> bool {
    ALL.iter()
        .any(|(n, on_kind)| *n == name && (target != Target::Kind || *on_kind))
}
