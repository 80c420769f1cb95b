//! The Kany8sCluster controller (provider.md §5): stub mode or a kro instance per Kany8sCluster,
//! observed through a watch on the instance kind; decide purely; apply with SSA.

pub mod decide;
