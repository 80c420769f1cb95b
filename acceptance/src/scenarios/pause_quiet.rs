//! Pause and resume: while the Cluster is paused neither the control plane nor its instance
//! is written (after the pause itself settled), even when a change or a label triggers a
//! reconcile; resuming applies the pending change and restores everything.

use serde_json::Value;

use super::common::{
    BARRIER_FIELD, CLUSTERS, CONTROL_PLANES, CP, DEMO_CONTROL_PLANE_RGD, KRO, apply_rgds,
    merge_patch, paused_control_plane_settled, provide_kubeconfig,
};
use crate::harness::{Failure, Harness, check, has_condition, writers};

pub(super) async fn run(h: &Harness) -> Result<(), Failure> {
    apply_rgds(h, &[DEMO_CONTROL_PLANE_RGD]).await?;
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
        "pause the Cluster; once settled, nothing is written, even when triggered",
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
    // Settled: the reconciles that the pause's own writes triggered have finished.
    paused_control_plane_settled(h, "quiet").await?;
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
    let refreshed = h
        .wait_object(
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
                        c["type"] == "Paused"
                            && c["observedGeneration"] == o["metadata"]["generation"]
                    })
            },
        )
        .await?;
    let observer = h.observe(CP, "Kany8sControlPlane", "quiet").await?;
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
    // Proof that the controller has read the label and finished reacting to it.
    paused_control_plane_settled(h, "quiet").await?;
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
    // The barrier writes the control plane itself (its spec, then the Paused refresh), so the
    // control plane is compared without what the barrier writes, in every version the watch saw.
    let unexplained = observer.first(|version| {
        let version = without_barrier_writes(version);
        version != without_barrier_writes(&refreshed) && version != without_barrier_writes(&patched)
    });
    check(unexplained.is_none(), || {
        format!(
            "the paused control plane was written: {}",
            writers(&patched, &unexplained.clone().unwrap_or_default())
        )
    })?;
    check(
        without_barrier_writes(&cp) == without_barrier_writes(&patched),
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

/// A control plane without what [`paused_control_plane_settled`] writes: the barrier field of
/// `kroSpec` and the generation it bumps, the Paused condition's observedGeneration, and the
/// bookkeeping of any write (resourceVersion, managedFields).
fn without_barrier_writes(control_plane: &Value) -> Value {
    let mut object = control_plane.clone();
    if let Some(metadata) = object["metadata"].as_object_mut() {
        for key in ["resourceVersion", "managedFields", "generation"] {
            metadata.remove(key);
        }
    }
    if let Some(kro_spec) = object["spec"]["kroSpec"].as_object_mut() {
        kro_spec.remove(BARRIER_FIELD);
    }
    for condition in object["status"]["conditions"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if condition["type"] == "Paused"
            && let Some(condition) = condition.as_object_mut()
        {
            condition.remove("observedGeneration");
        }
    }
    object
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::without_barrier_writes;

    #[test]
    fn the_barrier_writes_are_ignored_and_nothing_else() {
        let before = json!({"metadata": {"resourceVersion": "7", "generation": 3, "labels": {"team": "a"}},
            "spec": {"kroSpec": {"name": "quiet"}},
            "status": {"conditions": [{"type": "Paused", "status": "True", "observedGeneration": 3},
                {"type": "Ready", "status": "True", "observedGeneration": 2}]}});
        let mut barrier = before.clone();
        barrier["metadata"]["resourceVersion"] = json!("9");
        barrier["metadata"]["generation"] = json!(4);
        barrier["spec"]["kroSpec"]["port"] = json!(6443);
        barrier["status"]["conditions"][0]["observedGeneration"] = json!(4);
        assert_eq!(
            without_barrier_writes(&barrier),
            without_barrier_writes(&before)
        );
        for (pointer, value) in [
            ("/metadata/labels/team", json!("b")),
            ("/spec/kroSpec/name", json!("other")),
            ("/status/conditions/1/observedGeneration", json!(4)),
            ("/status/conditions/0/status", json!("False")),
        ] {
            let mut written = barrier.clone();
            if let Some(field) = written.pointer_mut(pointer) {
                *field = value;
            }
            assert_ne!(
                without_barrier_writes(&written),
                without_barrier_writes(&before),
                "{pointer}"
            );
        }
    }
}
