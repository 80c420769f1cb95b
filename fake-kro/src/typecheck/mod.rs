//! Static checking of kro CEL as kro v0.9.3 does it when it admits an RGD: the types of schemas
//! and expressions, kro's function declarations, the checker, the structural compatibility of a
//! value with a template field, expression inspection and the schema-aware walk of templates.
//!
//! - `types`: CEL types and cel-go's two ways of printing them.
//! - `decl`: OpenAPI schema → CEL type (the API server's CEL declarations, kro's type names).
//! - `functions`: kro's CEL environment, every function overload.
//! - `source`: parsing with positions, cel-go's error display.
//! - `checker`: the type checker.
//! - `compat`: whether an expression may fill a template field.
//! - `inspect`: identifiers and functions an expression uses.
//! - `fields`: the `${…}` fields of a template, found beside the kind's schema.

pub mod checker;
pub mod compat;
pub mod decl;
pub mod fields;
pub mod functions;
pub mod inspect;
pub mod source;
pub mod types;

pub use checker::{Env, check};
pub use types::Type;
