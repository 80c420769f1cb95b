//! [ACC-40] kro reflection with several RGDs: control planes on three valid RGDs (one in its own
//! API group) and one broken; pointing a control plane at another RGD is a backend change that
//! waits until the old instance is deleted.

use serde_json::json;

use super::common::{CP, DEMO_CONTROL_PLANE_RGD, KRO, RGD, apply_rgds};
use crate::harness::{Failure, Harness, check, check_eq, condition, has_condition};

/// The control planes on valid RGDs: (name, RGD, instance API version, instance kind, port).
const VALID: [(&str, &str, &str, &str, i64); 3] = [
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

pub(super) async fn run(h: &Harness) -> Result<(), Failure> {
    a_valid_rgds_accepted_broken_not(h).await?;
    b_four_control_planes(h).await?;
    c_another_rgd_is_a_backend_change(h).await?;
    d_new_instance_after_old_deleted(h).await
}

async fn a_valid_rgds_accepted_broken_not(h: &Harness) -> Result<(), Failure> {
    h.step("A", "three valid RGDs accepted, the broken one not");
    // The grouped RGD's instances live outside kro.run: the operator grants them to the
    // control-plane manager with an aggregated ClusterRole ([RB-03]).
    h.apply_fixture("rbac/demo-grouped-role.yaml", &[]).await?;
    apply_rgds(
        h,
        &[
            DEMO_CONTROL_PLANE_RGD,
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
    Ok(())
}

async fn b_four_control_planes(h: &Harness) -> Result<(), Failure> {
    let ns = h.namespace.clone();
    h.step("B", "four control planes");
    for (name, rgd, _, _, _) in VALID.iter().chain(std::iter::once(&(
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
    for (name, _, api_version, kind, port) in VALID {
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
    })
}

async fn c_another_rgd_is_a_backend_change(h: &Harness) -> Result<(), Failure> {
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
    )
}

async fn d_new_instance_after_old_deleted(h: &Harness) -> Result<(), Failure> {
    let ns = h.namespace.clone();
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
