//! The Kany8s API: Rust types of the five custom resource kinds and their shared shapes.

mod cluster;
mod controlplane;
mod kubeadm;
mod shared;

pub use cluster::*;
pub use controlplane::*;
pub use kubeadm::*;
pub use shared::*;

/// API group of the control-plane kinds.
pub const CONTROL_PLANE_GROUP: &str = "controlplane.cluster.x-k8s.io";
/// API group of the infrastructure kinds.
pub const INFRASTRUCTURE_GROUP: &str = "infrastructure.cluster.x-k8s.io";
/// The storage version of every Kany8s kind.
pub const STORAGE_VERSION: &str = "v1alpha1";
/// The served alias of the storage version, for clients that address the contract version.
pub const ALIAS_VERSION: &str = "v1beta2";
