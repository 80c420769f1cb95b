//! Kany8s: Cluster API control-plane and infrastructure providers driven by kro
//! ResourceGraphDefinitions. This crate holds the API types, the CRD generator and the manager.

pub mod api;
pub mod backend_status;
pub mod backends;
pub mod cache;
pub mod capi;
pub mod controlplane;
pub mod crds;
pub mod dynamic;
pub mod endpoint;
pub mod infrastructure;
pub mod kubeadm;
pub mod kubeconfig;
pub mod manager;
pub mod metrics;
pub mod observation;
pub mod owner;
pub mod reconciler;
pub mod rgd;
pub mod suspension;
pub mod version;
