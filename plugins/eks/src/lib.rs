//! Kany8s EKS plugins (provider.md §9): opt-in controllers that run beside the Kany8s manager
//! and read the ACK objects the core never reads. This crate holds the `eks-kubeconfig-rotator`:
//! the shared plugin keys and name resolution ([`keys`], [`names`], [`ack`]), the EKS token
//! ([`token`]), the kubeconfig documents ([`kubeconfig`]), the refresh schedule ([`schedule`]),
//! event de-duplication ([`events`]), metrics ([`metrics`]), the reconciler ([`rotator`]) and the
//! process around it ([`manager`], [`flags`]).

pub mod ack;
pub mod cluster;
pub mod events;
pub mod flags;
pub mod keys;
pub mod kubeconfig;
pub mod lease;
pub mod manager;
pub mod metrics;
pub mod names;
pub mod rbac;
pub mod rotator;
pub mod schedule;
pub mod token;

/// The controller name: metrics label, event reporter, field manager and `managed-by` value.
pub const ROTATOR: &str = "eks-kubeconfig-rotator";
