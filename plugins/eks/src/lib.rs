//! Kany8s EKS plugins (provider.md §9): opt-in controllers that run beside the Kany8s manager
//! and read the ACK objects the core never reads: the `eks-kubeconfig-rotator` ([`rotator`]:
//! the EKS token [`token`], the kubeconfig documents [`kubeconfig`], the refresh schedule
//! [`schedule`]) and the `eks-karpenter-bootstrapper` ([`bootstrapper`]). Shared by both: keys
//! and name resolution ([`keys`], [`names`], [`ack`], [`cluster`]), API discovery
//! ([`discovery`]), event de-duplication ([`events`]), metrics ([`metrics`]), RBAC as data
//! ([`rbac`]) and the process around a controller ([`manager`], [`lease`], [`flags`],
//! [`process`]). With the feature `test-support`, [`testing`] holds what the tests and the
//! acceptance scenarios share (moto, a loopback OIDC issuer).

pub mod ack;
pub mod bootstrapper;
pub mod cluster;
pub mod discovery;
pub mod events;
pub mod flags;
pub mod keys;
pub mod kubeconfig;
pub mod lease;
pub mod manager;
pub mod metrics;
pub mod names;
pub mod process;
pub mod rbac;
pub mod rotator;
pub mod schedule;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod token;

/// The controller name: metrics label, event reporter, field manager and `managed-by` value.
pub const ROTATOR: &str = "eks-kubeconfig-rotator";

/// The bootstrapper's name: metrics label, event reporter, field manager and `managed-by` value.
pub const BOOTSTRAPPER: &str = "eks-karpenter-bootstrapper";
