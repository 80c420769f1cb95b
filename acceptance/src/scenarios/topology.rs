//! Topology: a ClusterClass-based Cluster creates its control plane and infrastructure from
//! templates; a version bump in the topology reaches the instance and the reported version.

use serde_json::json;

use super::common::{
    CAPI, CLUSTERS, CP, DEMO_CONTROL_PLANE_RGD, IC, KRO, apply_rgds, merge_patch,
    provide_kubeconfig,
};
use crate::harness::{Failure, Harness, check, check_eq, has_condition};

pub(super) async fn run(h: &Harness) -> Result<(), Failure> {
    apply_rgds(h, &[DEMO_CONTROL_PLANE_RGD]).await?;
    let control_plane = a_cluster_from_its_class(h).await?;
    b_version_bump(h, &control_plane).await
}

/// Returns the generated control plane's name.
async fn a_cluster_from_its_class(h: &Harness) -> Result<String, Failure> {
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
    provide_kubeconfig(h, "topo", "topo").await?;
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
    Ok(cp_name)
}

async fn b_version_bump(h: &Harness, cp_name: &str) -> Result<(), Failure> {
    h.step("B", "bump topology.version to v1.34.0");
    merge_patch(
        h,
        CLUSTERS,
        "topo",
        r#"{"spec":{"topology":{"version":"v1.34.0"}}}"#,
    )
    .await?;
    h.wait_object(
        CP,
        "Kany8sControlPlane",
        cp_name,
        "spec.version v1.34.0",
        |o| o["spec"]["version"] == "v1.34.0",
    )
    .await?;
    h.wait_object(
        KRO,
        "DemoControlPlane",
        cp_name,
        "instance version v1.34.0",
        |o| o["spec"]["version"] == "v1.34.0",
    )
    .await?;
    h.wait_object(
        CP,
        "Kany8sControlPlane",
        cp_name,
        "status.version v1.34.0",
        |o| {
            o["status"]["version"] == "v1.34.0"
                && o["status"]["versions"] == json!([{"version": "v1.34.0"}])
        },
    )
    .await?;
    Ok(())
}
