//! fake-kro: a simulation of kro v0.9.x — SimpleSchema conversion, pluralisation, RGD → CRD
//! generation (and, in later steps, the offline checker and the instance lifecycle simulator).

pub mod canonical;
pub mod celtype;
pub mod check;
pub mod conditions;
pub mod crd;
pub mod eval;
pub mod expr;
pub mod kinds;
pub mod locate;
pub mod pluralize;
pub mod render;
pub mod sim;
pub mod simpleschema;
