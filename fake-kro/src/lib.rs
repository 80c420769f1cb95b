//! fake-kro: a simulation of kro v0.9.x — SimpleSchema conversion, pluralisation, RGD → CRD
//! generation (and, in later steps, the offline checker and the instance lifecycle simulator).

pub mod celtype;
pub mod expr;
pub mod pluralize;
pub mod simpleschema;
