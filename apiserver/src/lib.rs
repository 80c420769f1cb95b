//! An embedded, in-memory, Kubernetes-compatible API server for tests and the local sandbox.

pub mod meta;
pub mod patch;
pub mod registry;
pub mod schema;
pub mod selector;
pub mod ssa;
pub mod status;
pub mod store;
