//! The API server's integration tests, one module per former test binary, linked into one
//! executable: the crate's test build links once instead of five times.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod controller;
mod fidelity;
mod kubectl;
mod kubectl_everyday;
mod properties;
