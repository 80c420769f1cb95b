//! The Kany8sKubeadmControlPlane controller (provider.md §7).

pub mod certs;
