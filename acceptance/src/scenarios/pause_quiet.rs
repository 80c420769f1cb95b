//! Pause and resume: while the Cluster is paused neither the control plane nor its instance
//! is written (after the pause itself settled), and resuming restores everything.

use std::time::Duration;

use serde_json::Value;

use super::common::{
    CLUSTERS, CONTROL_PLANES, CP, KRO, apply_rgds, merge_patch, provide_kubeconfig,
};
use crate::harness::{Failure, Harness, check, has_condition, writers};

pub(super) async fn run(h: &Harness) -> Result<(), Failure> {
    apply_rgds(
        h,
        &[(
            "control-plane/demo-control-plane.yaml",
            "demo-control-plane.kro.run",
        )],
    )
    .await?;
    a_ready_control_plane(h).await?;
    b_paused_and_quiet(h).await?;
    c_resumed(h).await
}

async fn a_ready_control_plane(h: &Harness) -> Result<(), Failure> {
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
    provide_kubeconfig(h, "quiet", "q").await?;
    h.wait_object(CP, "Kany8sControlPlane", "quiet", "Available=True", |o| {
        has_condition(o, "Available", "True", None)
    })
    .await?;
    Ok(())
}

async fn b_paused_and_quiet(h: &Harness) -> Result<(), Failure> {
    let ns = h.namespace.clone();
    h.step(
        "B",
        "pause the Cluster; once settled, nothing is written for 3 s",
    );
    merge_patch(h, CLUSTERS, "quiet", r#"{"spec":{"paused":true}}"#).await?;
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
    merge_patch(
        h,
        CONTROL_PLANES,
        "quiet",
        r#"{"spec":{"kroSpec":{"image":"nginx:1.29"}}}"#,
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
        &["label", "-n", &ns, CONTROL_PLANES, "quiet", "team=a"],
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
            writers(&instance, &after)
        )
    })?;
    check(
        cp["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"],
        || {
            format!(
                "the paused control plane was written: {}",
                writers(&patched, &cp)
            )
        },
    )
}

async fn c_resumed(h: &Harness) -> Result<(), Failure> {
    h.step(
        "C",
        "resume: the change is applied and everything is restored",
    );
    merge_patch(h, CLUSTERS, "quiet", r#"{"spec":{"paused":false}}"#).await?;
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
