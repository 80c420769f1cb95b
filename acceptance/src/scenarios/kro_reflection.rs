//! [ACC-10] kro reflection: a control plane backed by a kro instance, without and then with its
//! Cluster; the kubeconfig provided by a plugin (Option A) or copied from a source Secret
//! (Option B, with rotation and an invalid source); a version bump; pause and resume; deletion
//! with the instance going first.

use serde_json::json;

use super::common::{
    CAPI, CLUSTERS, CONTROL_PLANES, CP, DEMO_CONTROL_PLANE_RGD, KRO, apply_rgds,
    deleted_after_backend, initialized, merge_patch, owner_uids, paused_control_plane_settled,
    secret_manifest, secret_value,
};
use crate::harness::{Failure, Harness, check, check_eq, condition, has_condition};

/// Three workload kubeconfigs told apart by their credentials: A's, then B's v1 and v2.
struct Kubeconfigs {
    a: String,
    v1: String,
    v2: String,
}

/// The uids the instance is owned by while not paused.
struct Owners {
    control_plane: String,
    cluster: String,
}

pub(super) async fn run(h: &Harness) -> Result<(), Failure> {
    let kubeconfigs = Kubeconfigs {
        a: h.workload_kubeconfig("a").await?,
        v1: h.workload_kubeconfig("v1").await?,
        v2: h.workload_kubeconfig("v2").await?,
    };
    a_both_rgds_accepted(h).await?;
    let control_plane = b_control_plane_without_cluster(h).await?;
    c_instance_drift_reverted(h).await?;
    let cluster = d_cluster_created(h).await?;
    e_kubeconfig_provided_by_plugin(h, &kubeconfigs.a).await?;
    f_option_b_waits_for_source(h).await?;
    let generation = g_source_copied(h, &kubeconfigs.v1).await?;
    h_rotation_reaches_target(h, &kubeconfigs.v2, &generation).await?;
    i_invalid_source_never_copied(h, &kubeconfigs.v2).await?;
    j_version_bump(h).await?;
    let owners = Owners {
        control_plane,
        cluster,
    };
    k_paused_instance_not_updated(h, &owners).await?;
    l_resumed(h, &owners).await?;
    m_instance_deleted_before_control_plane(h).await
}

async fn a_both_rgds_accepted(h: &Harness) -> Result<(), Failure> {
    h.step("A", "apply both RGDs; both accepted and served");
    apply_rgds(
        h,
        &[
            DEMO_CONTROL_PLANE_RGD,
            (
                "control-plane/demo-control-plane-kubeconfig.yaml",
                "demo-control-plane-kubeconfig.kro.run",
            ),
        ],
    )
    .await
}

/// Returns the control plane's uid.
async fn b_control_plane_without_cluster(h: &Harness) -> Result<String, Failure> {
    let ns = h.namespace.clone();
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
    Ok(cp["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

async fn c_instance_drift_reverted(h: &Harness) -> Result<(), Failure> {
    h.step("C", "drift on the instance's spec.version is reverted");
    merge_patch(
        h,
        "democontrolplanes.kro.run",
        "demo-cluster",
        r#"{"spec":{"version":"0.0"}}"#,
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
    Ok(())
}

/// Returns the Cluster's uid.
async fn d_cluster_created(h: &Harness) -> Result<String, Failure> {
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
    Ok(cluster_uid)
}

async fn e_kubeconfig_provided_by_plugin(h: &Harness, kubeconfig: &str) -> Result<(), Failure> {
    let ns = h.namespace.clone();
    h.step("E", "a plugin provides demo-cluster-kubeconfig (Option A)");
    h.apply(
        &secret_manifest(
            "demo-cluster-kubeconfig",
            &ns,
            Some("demo-cluster"),
            kubeconfig,
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
    Ok(())
}

async fn f_option_b_waits_for_source(h: &Harness) -> Result<(), Failure> {
    let ns = h.namespace.clone();
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
    })
}

/// Returns the generation of control plane demo-cluster-b once reconciled.
async fn g_source_copied(h: &Harness, kubeconfig: &str) -> Result<serde_json::Value, Failure> {
    let ns = h.namespace.clone();
    h.step(
        "G",
        "the source Secret is copied into demo-cluster-b-kubeconfig",
    );
    h.apply(
        &secret_manifest("demo-cluster-b-admin-kubeconfig", &ns, None, kubeconfig),
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
    check_eq(
        "target value",
        secret_value(&target),
        kubeconfig.to_string(),
    )?;
    check(
        target["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|o| {
                o.iter()
                    .any(|o| o["uid"] == b["metadata"]["uid"] && o["controller"] == true)
            }),
        || "target lacks the CP controller reference".into(),
    )?;
    Ok(b["metadata"]["generation"].clone())
}

async fn h_rotation_reaches_target(
    h: &Harness,
    kubeconfig: &str,
    generation: &serde_json::Value,
) -> Result<(), Failure> {
    let ns = h.namespace.clone();
    h.step(
        "H",
        "a rotated source reaches the target; the CP generation is unchanged",
    );
    h.apply(
        &secret_manifest("demo-cluster-b-admin-kubeconfig", &ns, None, kubeconfig),
        &[],
    )
    .await?;
    h.wait_object(
        "v1",
        "Secret",
        "demo-cluster-b-kubeconfig",
        "value v2",
        |o| secret_value(o) == kubeconfig,
    )
    .await?;
    let b = h
        .get(CP, "Kany8sControlPlane", "demo-cluster-b")
        .await?
        .unwrap_or_default();
    check_eq("CP generation", &b["metadata"]["generation"], generation)
}

/// `kubeconfig` is the valid source the target holds (v2).
async fn i_invalid_source_never_copied(h: &Harness, kubeconfig: &str) -> Result<(), Failure> {
    let ns = h.namespace.clone();
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
        kubeconfig.to_string(),
    )?;
    h.apply(
        &secret_manifest("demo-cluster-b-admin-kubeconfig", &ns, None, kubeconfig),
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
    Ok(())
}

async fn j_version_bump(h: &Harness) -> Result<(), Failure> {
    h.step(
        "J",
        "a version bump reaches the instance and the reported version",
    );
    merge_patch(
        h,
        CONTROL_PLANES,
        "demo-cluster",
        r#"{"spec":{"version":"1.35"}}"#,
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
    Ok(())
}

async fn k_paused_instance_not_updated(h: &Harness, owners: &Owners) -> Result<(), Failure> {
    h.step("K", "pause the Cluster, then change kroSpec.replicas");
    merge_patch(h, CLUSTERS, "demo-cluster", r#"{"spec":{"paused":true}}"#).await?;
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
    h.wait_object(
        KRO,
        "DemoControlPlane",
        "demo-cluster",
        "suspended and detached",
        |o| {
            o["metadata"]["annotations"]["kro.run/reconcile"] == "suspended"
                && o["metadata"]["annotations"]["kany8s.io/suspended"] == "true"
                && !owner_uids(o).contains(&owners.control_plane)
                && !owner_uids(o).contains(&owners.cluster)
        },
    )
    .await?;
    merge_patch(
        h,
        CONTROL_PLANES,
        "demo-cluster",
        r#"{"spec":{"kroSpec":{"replicas":2}}}"#,
    )
    .await?;
    // Proof that the controller read the change and finished reacting to it, not a sleep.
    paused_control_plane_settled(h, "demo-cluster").await?;
    let instance = h
        .get(KRO, "DemoControlPlane", "demo-cluster")
        .await?
        .unwrap_or_default();
    check(instance["spec"]["replicas"] != 2, || {
        "the paused instance was updated".into()
    })
}

async fn l_resumed(h: &Harness, owners: &Owners) -> Result<(), Failure> {
    h.step("L", "unpause: resumed, re-attached, replicas applied");
    merge_patch(h, CLUSTERS, "demo-cluster", r#"{"spec":{"paused":false}}"#).await?;
    h.wait_object(
        KRO,
        "DemoControlPlane",
        "demo-cluster",
        "resumed with replicas 2",
        |o| {
            o["metadata"]["annotations"]["kro.run/reconcile"].is_null()
                && o["metadata"]["annotations"]["kany8s.io/suspended"].is_null()
                && owner_uids(o).contains(&owners.control_plane)
                && owner_uids(o).contains(&owners.cluster)
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
    Ok(())
}

async fn m_instance_deleted_before_control_plane(h: &Harness) -> Result<(), Failure> {
    let ns = h.namespace.clone();
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
            CLUSTERS,
            "demo-cluster",
            "--wait=false",
        ],
    )
    .await?;
    h.wait_gone(CAPI, "Cluster", "demo-cluster").await
}
