//! The controller's integration tests, one binary (one link of the dependency graph instead of
//! one per file): CRD generation, the component tests of each controller against the embedded
//! API server and fake-kro, the manager, and the convergence proptest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod controlplane;
mod controlplane_backends;
mod convergence;
mod crds;
mod events;
mod infrastructure;
mod manager;
