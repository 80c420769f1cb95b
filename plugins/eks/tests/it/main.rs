//! The plugins' integration tests, one binary (one link of the dependency graph instead of one
//! per file): the token against AWS's SigV4 vectors, the rotator's component tests against the
//! embedded API server, the EKS pack with fake-kro, the log capture, the binary as a process
//! and the Helm chart; the bootstrapper's EC2 calls against moto and its component tests
//! against the embedded API server with moto as EC2; the OIDC thumbprint against a loopback
//! TLS issuer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary;
mod bootstrapper;
mod chart;
mod common;
mod ec2;
mod logs;
mod pack;
mod rotator;
mod thumbprint;
mod token;

/// The moto support is shared with the acceptance scenario (feature `test-support`).
use kany8s_eks::testing::moto;
