//! The plugins' integration tests, one binary (one link of the dependency graph instead of one
//! per file): the token against AWS's SigV4 vectors, the rotator's component tests against the
//! embedded API server, the EKS pack with fake-kro, the log capture, the binary as a process
//! and the Helm chart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary;
mod chart;
mod common;
mod logs;
mod pack;
mod rotator;
mod token;
