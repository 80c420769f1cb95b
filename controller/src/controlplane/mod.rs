//! The Kany8sControlPlane controller (provider.md §4): observe the control plane, its owner
//! Cluster, RGD, backend object and Secrets; decide the status purely; apply with SSA.

pub mod decide;
