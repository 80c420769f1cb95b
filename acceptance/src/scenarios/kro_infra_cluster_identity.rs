//! [ACC-30] kro infra cluster identity: a Kany8sCluster whose RGD needs `clusterUID` waits for
//! its Cluster, then gets the identity injected; a topology-named one takes the cluster name
//! from its label.

use serde_json::json;

use super::common::{CAPI, IC, KRO, apply_rgds, owner_uids};
use crate::harness::{Failure, Harness, check, check_eq, has_condition};

pub(super) async fn run(h: &Harness) -> Result<(), Failure> {
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
    a_waits_for_its_cluster(h).await?;
    b_identity_injected(h).await?;
    c_cluster_name_from_label(h).await
}

async fn a_waits_for_its_cluster(h: &Harness) -> Result<(), Failure> {
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
    )
}

async fn b_identity_injected(h: &Harness) -> Result<(), Failure> {
    let ns = h.namespace.clone();
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
    Ok(())
}

async fn c_cluster_name_from_label(h: &Harness) -> Result<(), Failure> {
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
