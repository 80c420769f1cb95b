//! The acceptance scenarios (provider.md §11), written once for every target: one file per
//! scenario, each a sequence of step functions named after its lettered steps (`h.step("B",
//! …)`), with what several share in `common.rs`; plus the extras of the embedded and upstream
//! targets (topology, quiet pause, the EKS pack with the kubeconfig rotator and with the
//! Karpenter bootstrapper).

mod capd_kubeadm;
mod common;
mod eks_karpenter;
mod eks_rotator;
mod kro_infra_cluster_identity;
mod kro_infra_reflection;
mod kro_reflection;
mod kro_reflection_multi_rgd;
mod pause_quiet;
mod topology;

pub use common::kubeconfig;

use crate::harness::{Failure, Harness, Target};

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
    ("eks-rotator", false),
    ("eks-karpenter", false),
];

/// Runs scenario `name`.
pub async fn run(name: &str, h: &Harness) -> Result<(), Failure> {
    match name {
        "kro-reflection" => kro_reflection::run(h).await,
        "kro-infra-reflection" => kro_infra_reflection::run(h).await,
        "kro-infra-cluster-identity" => kro_infra_cluster_identity::run(h).await,
        "kro-reflection-multi-rgd" => kro_reflection_multi_rgd::run(h).await,
        "topology" => topology::run(h).await,
        "pause-quiet" => pause_quiet::run(h).await,
        "capd-kubeadm" => capd_kubeadm::run(h).await,
        "eks-rotator" => eks_rotator::run(h).await,
        "eks-karpenter" => eks_karpenter::run(h).await,
        other => Err(Failure(format!(
            "unknown scenario \"{other}\" (known: {})",
            ALL.iter().map(|s| s.0).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Whether a scenario runs on `target`.
pub fn runs_on(name: &str, target: Target) -> bool {
    ALL.iter()
        .any(|(n, on_kind)| *n == name && (target != Target::Kind || *on_kind))
}
