//! The differential fidelity suite ([API-38], issue 21): request sequences described once, run
//! against the embedded API server and against the real kube-apiserver (the upstream target's
//! `Components::Kubernetes`), normalised ([`normalise`]) and compared field by field
//! ([`compare`]). A known difference is declared next to its request with its reason
//! ([`Req::explain`]); everything else that differs fails the suite.
//!
//! The fake-kro differential runs the same way: sequences on [`Stack::Kro`] create RGDs and
//! instances on the embedded server with fake-kro's controllers and on the upstream target with
//! real kro v0.9.3, and compare what a client of kro sees (`sequences::kro`).
//!
//! `make fidelity` runs the `fidelity` binary (table, summary line, `target/fidelity/differences.md`);
//! `cargo test -p fidelity` runs the same suite and fails on any unexplained difference.

#![recursion_limit = "256"]

pub mod compare;
pub mod ctx;
pub mod known;
pub mod normalise;
pub mod report;
pub mod run;
pub mod sequences;
pub mod suite;

use std::future::Future;
use std::pin::Pin;

pub use compare::Explain;
pub use ctx::{Ctx, Reply, Req, Side};

/// Why a sequence or the suite could not run.
#[derive(Debug, thiserror::Error)]
pub enum FidelityError {
    #[error("request {0}: {1}")]
    Request(String, String),
    #[error("setup: {0}")]
    Setup(String),
    #[error(transparent)]
    Upstream(#[from] acceptance::upstream::UpstreamError),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

/// The areas of the suite, in the report's order (the list, broadest value first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Area {
    Crud,
    Concurrency,
    Patch,
    FieldValidation,
    Subresources,
    Crd,
    Watch,
    Deletion,
    GarbageCollection,
    Namespaces,
    Events,
    Discovery,
    Tables,
    Kubectl,
    KroFixtures,
    KroSequences,
}

impl Area {
    pub const ALL: [Area; 16] = [
        Area::Crud,
        Area::Concurrency,
        Area::Patch,
        Area::FieldValidation,
        Area::Subresources,
        Area::Crd,
        Area::Watch,
        Area::Deletion,
        Area::GarbageCollection,
        Area::Namespaces,
        Area::Events,
        Area::Discovery,
        Area::Tables,
        Area::Kubectl,
        Area::KroFixtures,
        Area::KroSequences,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Area::Crud => "CRUD + generateName",
            Area::Concurrency => "optimistic concurrency",
            Area::Patch => "patch types + SSA",
            Area::FieldValidation => "field validation",
            Area::Subresources => "status/scale subresources",
            Area::Crd => "CRD lifecycle + CR schema",
            Area::Watch => "watch",
            Area::Deletion => "finalizers + deletion",
            Area::GarbageCollection => "garbage collection",
            Area::Namespaces => "namespace lifecycle",
            Area::Events => "events (v1 + events.k8s.io)",
            Area::Discovery => "discovery + OpenAPI v3",
            Area::Tables => "Table + PartialObjectMetadata",
            Area::Kubectl => "kubectl commands",
            Area::KroFixtures => "kro: fixture RGDs",
            Area::KroSequences => "kro: SEQ + invalid RGDs",
        }
    }
}

/// The future a sequence body returns.
pub type SequenceFuture<'a> = Pin<Box<dyn Future<Output = Result<(), FidelityError>> + Send + 'a>>;

/// What a sequence runs against on each side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack {
    /// The embedded server alone; upstream etcd, kube-apiserver, kube-controller-manager.
    Kubernetes,
    /// The embedded server with fake-kro's controllers (Applied mode, no child simulators);
    /// upstream the same Kubernetes plus real kro v0.9.3 (`Components::Kro`).
    Kro,
}

/// One request sequence: run once per server with the same code.
#[derive(Clone, Copy)]
pub struct Sequence {
    pub area: Area,
    pub stack: Stack,
    /// Unique, a DNS label part: it names the sequence's namespace (`fid-<name>`).
    pub name: &'static str,
    /// The spec ids it covers.
    pub ids: &'static [&'static str],
    pub run: for<'a> fn(&'a mut Ctx) -> SequenceFuture<'a>,
}

impl std::fmt::Debug for Sequence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequence")
            .field("area", &self.area)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// `sequence!(Area::Crud, "crud-basic", ["API-17"], function)`.
#[macro_export]
macro_rules! sequence {
    ($area:expr, $name:literal, [$($id:literal),*], $f:path) => {
        $crate::Sequence {
            area: $area,
            stack: $crate::Stack::Kubernetes,
            name: $name,
            ids: &[$($id),*],
            run: |c| Box::pin($f(c)),
        }
    };
}

/// `kro_sequence!(Area::KroFixtures, "kro-demo", ["KRO-18"], function)`: a sequence of the
/// fake-kro differential ([`Stack::Kro`]).
#[macro_export]
macro_rules! kro_sequence {
    ($area:expr, $name:literal, [$($id:literal),*], $f:path) => {
        $crate::Sequence {
            area: $area,
            stack: $crate::Stack::Kro,
            name: $name,
            ids: &[$($id),*],
            run: |c| Box::pin($f(c)),
        }
    };
}
