//! fake-kro: a simulation of kro v0.9.x — SimpleSchema conversion, pluralisation, RGD → CRD
//! generation, the offline checker, offline rendering and the instance lifecycle simulator, the
//! last two driving one graph engine (`graph`).

pub mod canonical;
pub mod catalog;
pub mod cel_macros;
pub mod celtype;
pub mod check;
pub mod compat;
pub mod conditions;
pub mod crd;
pub mod eval;
pub mod expr;
pub mod graph;
pub mod kinds;
pub mod kro_library;
pub mod locate;
pub mod pluralize;
pub mod render;
pub mod sim;
pub mod simpleschema;
pub mod typecheck;
