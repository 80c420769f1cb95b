//! Test support shared by this crate's integration tests and the acceptance scenarios (feature
//! `test-support`): [`moto`] (EC2 on loopback) and [`issuer`] (a TLS OIDC issuer on loopback
//! with a root → intermediate(s) → leaf chain made with rcgen).

pub mod issuer;
pub mod moto;
