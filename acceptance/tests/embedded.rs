//! Every acceptance scenario on the embedded target (provider.md §11), as part of `make test`.
//! They drive the real kubectl; without one on the PATH they are skipped with a message, or
//! fail when `CI` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use acceptance::harness::{Target, require_kubectl};

async fn scenario(name: &str) {
    if !require_kubectl(&format!("acceptance scenario {name}")) {
        return;
    }
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("acceptance-artifacts");
    if let Err(error) = acceptance::run_scenario(name, Target::Embedded, &artifacts, false).await {
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
async fn topology_create_and_version_bump() {
    scenario("topology").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_without_writes() {
    scenario("pause-quiet").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acc50_capd_kubeadm() {
    scenario("capd-kubeadm").await;
}

/// The EKS pack with the eks-kubeconfig-rotator in process ([ROT-03]–[ROT-09], [PLG-06]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eks_rotator() {
    scenario("eks-rotator").await;
}

/// The eks-karpenter-bootstrapper in process over a Kany8s EKS Cluster, ACK played in process,
/// EC2 in moto on loopback ([KB-01]–[KB-07], [PLG-06]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eks_karpenter() {
    scenario("eks-karpenter").await;
}
