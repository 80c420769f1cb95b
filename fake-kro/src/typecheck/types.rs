//! CEL types as kro's checker (cel-go) sees them: primitives, lists, maps, optionals, object types
//! named after the schema path they come from, type parameters, and cel-go's two ways of printing
//! a type (`String()` in kro's own messages, `FormatCELType` in the checker's).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// An object (struct) type: a schema node with properties, kro's `kro.run.Condition`, or one of
/// the Kubernetes library's opaque value types (no fields).
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectType {
    /// `__type_<id>.spec.template`, `kro.run.Condition`, `kubernetes.Quantity`, ...
    pub name: String,
    /// Field name (escaped as the API server escapes CEL property names) → type.
    pub fields: BTreeMap<String, Type>,
    /// `x-kubernetes-preserve-unknown-fields`: unknown fields select as `dyn`.
    pub preserve_unknown: bool,
}

/// A CEL type.
#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Null,
    Dyn,
    Any,
    Error,
    Timestamp,
    Duration,
    List(Box<Type>),
    Map(Box<Type>, Box<Type>),
    Optional(Box<Type>),
    Object(Arc<ObjectType>),
    /// A type parameter of a function signature (`A`) or a checker variable (`_var0`).
    Param(String),
    /// `type(T)`, the type of a type value.
    TypeOf(Box<Type>),
}

impl Type {
    pub fn list(element: Type) -> Self {
        Self::List(Box::new(element))
    }

    pub fn map(key: Type, value: Type) -> Self {
        Self::Map(Box::new(key), Box::new(value))
    }

    pub fn optional(inner: Type) -> Self {
        Self::Optional(Box::new(inner))
    }

    /// An object type without fields (library value types, kro's runtime).
    pub fn opaque(name: &str) -> Self {
        Self::Object(Arc::new(ObjectType {
            name: name.into(),
            fields: BTreeMap::new(),
            preserve_unknown: false,
        }))
    }

    pub fn is_dyn_or_error(&self) -> bool {
        matches!(self, Self::Dyn | Self::Any | Self::Error | Self::Param(_))
    }

    /// cel-go's kind grouping, used where the checker compares kinds.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Bool => Kind::Bool,
            Self::Int => Kind::Int,
            Self::Uint => Kind::Uint,
            Self::Double => Kind::Double,
            Self::String => Kind::String,
            Self::Bytes => Kind::Bytes,
            Self::Null => Kind::Null,
            Self::Dyn => Kind::Dyn,
            Self::Any => Kind::Any,
            Self::Error => Kind::Error,
            Self::Timestamp => Kind::Timestamp,
            Self::Duration => Kind::Duration,
            Self::List(_) => Kind::List,
            Self::Map(..) => Kind::Map,
            Self::Optional(_) => Kind::Opaque,
            Self::Object(_) => Kind::Struct,
            Self::Param(_) => Kind::Param,
            Self::TypeOf(_) => Kind::Type,
        }
    }

    /// The type's parameters, as cel-go lists them.
    pub fn parameters(&self) -> Vec<&Type> {
        match self {
            Self::List(t) | Self::Optional(t) | Self::TypeOf(t) => vec![t],
            Self::Map(k, v) => vec![k, v],
            _ => Vec::new(),
        }
    }

    /// cel-go's `TypeName()`: the name without parameters.
    pub fn type_name(&self) -> String {
        match self {
            Self::List(_) => "list".into(),
            Self::Map(..) => "map".into(),
            Self::Optional(_) => "optional_type".into(),
            Self::TypeOf(_) => "type".into(),
            Self::Object(o) => o.name.clone(),
            Self::Param(p) => p.clone(),
            other => other.declared_name().into(),
        }
    }

    fn declared_name(&self) -> &'static str {
        match self {
            Self::Bool => "bool",
            Self::Int => "int",
            Self::Uint => "uint",
            Self::Double => "double",
            Self::String => "string",
            Self::Bytes => "bytes",
            Self::Null => "null_type",
            Self::Dyn => "dyn",
            Self::Any => "google.protobuf.Any",
            Self::Error => "*error*",
            Self::Timestamp => "google.protobuf.Timestamp",
            Self::Duration => "google.protobuf.Duration",
            _ => "",
        }
    }

    /// cel-go's `Type.String()`, which kro's own messages print (`list(string)`,
    /// `optional_type(string)`, `google.protobuf.Timestamp`, `__type_cm.data`).
    pub fn display(&self) -> String {
        match self {
            Self::Param(p) => format!("<{p}>"),
            Self::List(_) | Self::Map(..) | Self::Optional(_) | Self::TypeOf(_) => {
                let params: Vec<String> = self.parameters().iter().map(|p| p.display()).collect();
                format!("{}({})", self.type_name(), params.join(", "))
            }
            other => other.type_name(),
        }
    }

    /// cel-go's `FormatCELType`, which the checker's own errors print (`timestamp`, `null`,
    /// `!error!`).
    pub fn format(&self) -> String {
        match self {
            Self::Any => "any".into(),
            Self::Duration => "duration".into(),
            Self::Error => "!error!".into(),
            Self::Null => "null".into(),
            Self::Timestamp => "timestamp".into(),
            Self::Param(p) => p.clone(),
            Self::List(_) | Self::Map(..) | Self::Optional(_) | Self::TypeOf(_) => {
                let mut out = self.type_name();
                out.push('(');
                for (i, p) in self.parameters().iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{}", p.format());
                }
                out.push(')');
                out
            }
            other => other.type_name(),
        }
    }

    /// cel-go's exact type equality (object types by name).
    pub fn is_exact(&self, other: &Type) -> bool {
        match (self, other) {
            (Self::Object(a), Self::Object(b)) => a.name == b.name,
            (Self::List(a), Self::List(b))
            | (Self::Optional(a), Self::Optional(b))
            | (Self::TypeOf(a), Self::TypeOf(b)) => a.is_exact(b),
            (Self::Map(ak, av), Self::Map(bk, bv)) => ak.is_exact(bk) && av.is_exact(bv),
            (a, b) => a == b,
        }
    }

    /// cel-go's default `IsAssignableType`: `self` accepts `from` (dyn accepts all; same kind,
    /// name and assignable parameters otherwise).
    pub fn accepts(&self, from: &Type) -> bool {
        if self.is_exact(from) || matches!(self, Self::Dyn | Self::Any | Self::Param(_)) {
            return true;
        }
        if self.kind() != from.kind() || self.type_name() != from.type_name() {
            return false;
        }
        let (mine, theirs) = (self.parameters(), from.parameters());
        mine.len() == theirs.len() && mine.iter().zip(theirs).all(|(a, b)| a.accepts(b))
    }
}

/// cel-go's type kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Null,
    Dyn,
    Any,
    Error,
    Timestamp,
    Duration,
    List,
    Map,
    Opaque,
    Struct,
    Param,
    Type,
}

/// Parses a signature type as the function table writes it (`list(<A>)`, `map(string, dyn)`,
/// `google.protobuf.Timestamp`, `kubernetes.Quantity`).
pub fn parse_type(text: &str) -> Type {
    let text = text.trim();
    if let Some(inner) = text.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
        return Type::Param(inner.into());
    }
    if let Some((name, rest)) = text.split_once('(') {
        let inner = rest.strip_suffix(')').unwrap_or(rest);
        let params = split_params(inner);
        let param = |i: usize| params.get(i).map_or(Type::Dyn, |p| parse_type(p));
        return match name {
            "list" => Type::list(param(0)),
            "map" => Type::map(param(0), param(1)),
            "optional_type" => Type::optional(param(0)),
            "type" => Type::TypeOf(Box::new(param(0))),
            other => Type::opaque(other),
        };
    }
    match text {
        "bool" => Type::Bool,
        "int" => Type::Int,
        "uint" => Type::Uint,
        "double" => Type::Double,
        "string" => Type::String,
        "bytes" => Type::Bytes,
        "null_type" => Type::Null,
        "dyn" => Type::Dyn,
        "google.protobuf.Any" => Type::Any,
        "google.protobuf.Timestamp" => Type::Timestamp,
        "google.protobuf.Duration" => Type::Duration,
        // kro's condition object, whose fields expressions select.
        super::checker::CONDITION_TYPE => super::checker::condition_type(),
        other => Type::opaque(other),
    }
}

/// Splits `a, map(b, c), d` at the top-level commas.
pub(crate) fn split_params(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_printers() {
        let t = parse_type("map(string, list(google.protobuf.Timestamp))");
        assert_eq!(t.display(), "map(string, list(google.protobuf.Timestamp))");
        assert_eq!(t.format(), "map(string, list(timestamp))");
        assert_eq!(
            parse_type("optional_type(<V>)").display(),
            "optional_type(<V>)"
        );
        assert_eq!(Type::Null.display(), "null_type");
        assert_eq!(Type::Null.format(), "null");
    }

    #[test]
    fn assignability() {
        assert!(Type::Dyn.accepts(&Type::Int));
        assert!(!Type::Bool.accepts(&Type::Dyn));
        assert!(Type::list(Type::Dyn).accepts(&Type::list(Type::String)));
        assert!(!Type::list(Type::Int).accepts(&Type::list(Type::String)));
        assert!(Type::optional(Type::Bool).accepts(&Type::optional(Type::Bool)));
    }
}
