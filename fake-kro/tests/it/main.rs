//! fake-kro's integration tests in one binary (one link instead of seven): the checker, CRD
//! generation, the SimpleSchema goldens and properties, offline rendering, the simulator and
//! kro's status write sequences against the embedded API server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod check;
mod crd;
mod kro_cases;
mod properties;
mod render;
mod sequences;
mod sim;
mod simpleschema;
