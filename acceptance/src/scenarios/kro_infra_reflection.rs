//! [ACC-20] kro infra reflection: a Kany8sCluster backed by a kro instance turns Ready and
//! provisioned; deleting it deletes the instance first (observing [ICC-12]
//! `Deleting=True/WaitingForBackendDeletion`).

use serde_json::{Value, json};

use super::common::{IC, KRO, apply_rgds, deleted_after_backend};
use crate::harness::{Failure, Harness, check, check_eq, has_condition};

pub(super) async fn run(h: &Harness) -> Result<(), Failure> {
    let infrastructure = a_infrastructure_ready(h).await?;
    b_instance_inspected(h, &infrastructure).await?;
    c_instance_deleted_first(h).await
}

/// Returns the ready Kany8sCluster.
async fn a_infrastructure_ready(h: &Harness) -> Result<Value, Failure> {
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
    Ok(ic)
}

async fn b_instance_inspected(h: &Harness, ic: &Value) -> Result<(), Failure> {
    let ns = h.namespace.clone();
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
    )
}

async fn c_instance_deleted_first(h: &Harness) -> Result<(), Failure> {
    let ns = h.namespace.clone();
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
