//! Static typing of kro CEL expressions (kro.md §6.7): the fake's replacement for cel-go's
//! checker, used to give status fields their OpenAPI types.

use std::collections::{BTreeMap, BTreeSet};

use kube_cel::cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue, operators};
use serde_json::{Map, Value, json};

/// An inferred CEL type.
#[derive(Clone, Debug, PartialEq)]
pub enum CelType {
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Timestamp,
    Duration,
    Null,
    Dyn,
    List(Box<CelType>),
    Map(Box<CelType>),
    Optional(Box<CelType>),
    /// An object projected from a known OpenAPI schema node.
    Schema(Value),
}

impl CelType {
    /// cel-go's name of the type.
    pub fn name(&self) -> String {
        match self {
            Self::Bool => "bool".into(),
            Self::Int => "int".into(),
            Self::Uint => "uint".into(),
            Self::Double => "double".into(),
            Self::String => "string".into(),
            Self::Bytes => "bytes".into(),
            Self::Timestamp => "google.protobuf.Timestamp".into(),
            Self::Duration => "google.protobuf.Duration".into(),
            Self::Null => "null_type".into(),
            Self::Dyn => "dyn".into(),
            Self::List(t) => format!("list({})", t.name()),
            Self::Map(t) => format!("map(string, {})", t.name()),
            Self::Optional(t) => format!("optional_type({})", t.name()),
            Self::Schema(_) => "object".into(),
        }
    }
}

/// Parses a kro CEL expression (optional syntax on).
pub fn parse(expression: &str) -> Result<IdedExpr, String> {
    kube_cel::cel::parser::Parser::new()
        .enable_optional_syntax(true)
        .parse(expression)
        .map_err(|e| e.to_string().trim().to_string())
}

/// The projection of an OpenAPI node to a CEL type.
pub fn project(node: &Value) -> CelType {
    let flag = |k: &str| node.get(k).and_then(Value::as_bool) == Some(true);
    if flag("x-kubernetes-preserve-unknown-fields") || flag("x-kubernetes-int-or-string") {
        return CelType::Dyn;
    }
    match node.get("type").and_then(Value::as_str) {
        Some("integer") => CelType::Int,
        Some("number") => CelType::Double,
        Some("boolean") => CelType::Bool,
        Some("string") => match node.get("format").and_then(Value::as_str) {
            Some("byte") => CelType::Bytes,
            Some("date" | "date-time") => CelType::Timestamp,
            Some("duration") => CelType::Duration,
            _ => CelType::String,
        },
        Some("array") => CelType::List(Box::new(node.get("items").map_or(CelType::Dyn, project))),
        Some("object") | None => {
            if node.get("properties").is_some() {
                CelType::Schema(node.clone())
            } else if let Some(additional) =
                node.get("additionalProperties").filter(|a| a.is_object())
            {
                CelType::Map(Box::new(project(additional)))
            } else {
                CelType::Dyn
            }
        }
        Some(_) => CelType::Dyn,
    }
}

/// What identifiers mean in an expression: `schema` and each resource id.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// The instance as `schema` sees it (apiVersion, kind, metadata, spec).
    pub schema: Value,
    /// Resource id → the OpenAPI schema of its kind, when known.
    pub resources: BTreeMap<String, Option<Value>>,
}

/// The `metadata` projection kro gives `schema.metadata`.
pub fn metadata_schema() -> Value {
    json!({"type": "object", "properties": {
        "name": {"type": "string"}, "namespace": {"type": "string"}, "uid": {"type": "string"},
        "resourceVersion": {"type": "string"}, "generation": {"type": "integer"},
        "creationTimestamp": {"type": "string", "format": "date-time"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}}
    }})
}

fn select(operand: &CelType, field: &str) -> CelType {
    match operand {
        CelType::Schema(node) => node
            .get("properties")
            .and_then(|p| p.get(field))
            .map(project)
            .unwrap_or(CelType::Dyn),
        CelType::Map(value) => (**value).clone(),
        CelType::Optional(inner) => CelType::Optional(Box::new(select(inner, field))),
        _ => CelType::Dyn,
    }
}

fn unwrap_optional(t: CelType) -> CelType {
    match t {
        CelType::Optional(inner) => *inner,
        other => other,
    }
}

fn arithmetic(a: &CelType, b: &CelType) -> CelType {
    match (a, b) {
        (CelType::Int, CelType::Int) => CelType::Int,
        (CelType::Uint, CelType::Uint) => CelType::Uint,
        (CelType::Double, _) | (_, CelType::Double) => CelType::Double,
        _ => CelType::Dyn,
    }
}

fn homogeneous(types: Vec<CelType>) -> CelType {
    match types.first() {
        Some(first) if types.iter().all(|t| t == first) => first.clone(),
        _ => CelType::Dyn,
    }
}

/// Infers the type of an expression.
pub fn infer(expr: &IdedExpr, scope: &Scope) -> CelType {
    match &expr.expr {
        Expr::Literal(literal) => match literal {
            LiteralValue::Boolean(_) => CelType::Bool,
            LiteralValue::Int(_) => CelType::Int,
            LiteralValue::UInt(_) => CelType::Uint,
            LiteralValue::Double(_) => CelType::Double,
            LiteralValue::String(_) => CelType::String,
            LiteralValue::Bytes(_) => CelType::Bytes,
            LiteralValue::Null => CelType::Null,
        },
        Expr::Ident(name) => {
            if name == "schema" {
                CelType::Schema(scope.schema.clone())
            } else {
                match scope.resources.get(name) {
                    Some(Some(schema)) => CelType::Schema(schema.clone()),
                    _ => CelType::Dyn,
                }
            }
        }
        Expr::Select(s) => {
            if s.test {
                CelType::Bool
            } else {
                select(&infer(&s.operand, scope), &s.field)
            }
        }
        Expr::List(list) => CelType::List(Box::new(homogeneous(
            list.elements.iter().map(|e| infer(e, scope)).collect(),
        ))),
        Expr::Map(map) => {
            let values = map
                .entries
                .iter()
                .filter_map(|e| match &e.expr {
                    EntryExpr::MapEntry(entry) => Some(infer(&entry.value, scope)),
                    EntryExpr::StructField(_) => None,
                })
                .collect();
            CelType::Map(Box::new(homogeneous(values)))
        }
        Expr::Comprehension(c) => match &c.accu_init.expr {
            Expr::List(_) => CelType::List(Box::new(CelType::Dyn)),
            _ => CelType::Bool,
        },
        Expr::Call(call) => infer_call(call, scope),
        Expr::Struct(_) | Expr::Unspecified => CelType::Dyn,
    }
}

fn infer_call(call: &kube_cel::cel::common::ast::CallExpr, scope: &Scope) -> CelType {
    let arg = |i: usize| call.args.get(i).map_or(CelType::Dyn, |a| infer(a, scope));
    let target = || {
        call.target
            .as_ref()
            .map_or(CelType::Dyn, |t| infer(t, scope))
    };
    match call.func_name.as_str() {
        operators::EQUALS
        | operators::NOT_EQUALS
        | operators::LESS
        | operators::LESS_EQUALS
        | operators::GREATER
        | operators::GREATER_EQUALS
        | operators::IN
        | operators::LOGICAL_NOT
        | operators::LOGICAL_AND
        | operators::LOGICAL_OR
        | operators::NOT_STRICTLY_FALSE => CelType::Bool,
        operators::ADD => {
            let (a, b) = (arg(0), arg(1));
            match (&a, &b) {
                (CelType::String, _) | (_, CelType::String) => CelType::String,
                (CelType::List(x), CelType::List(y)) if x == y => a.clone(),
                (CelType::List(_), CelType::List(_)) => CelType::List(Box::new(CelType::Dyn)),
                _ => arithmetic(&a, &b),
            }
        }
        operators::SUBSTRACT | operators::MULTIPLY | operators::DIVIDE | operators::MODULO => {
            arithmetic(&arg(0), &arg(1))
        }
        operators::NEGATE => arg(0),
        operators::CONDITIONAL => {
            let (a, b) = (arg(1), arg(2));
            if a == b { a } else { CelType::Dyn }
        }
        operators::INDEX => match arg(0) {
            CelType::List(t) | CelType::Map(t) => *t,
            _ => CelType::Dyn,
        },
        operators::OPT_INDEX => match unwrap_optional(arg(0)) {
            CelType::List(t) | CelType::Map(t) => CelType::Optional(t),
            _ => CelType::Optional(Box::new(CelType::Dyn)),
        },
        operators::OPT_SELECT => {
            let field = match call.args.get(1).map(|a| &a.expr) {
                Some(Expr::Literal(LiteralValue::String(s))) => s.to_string(),
                _ => String::new(),
            };
            CelType::Optional(Box::new(select(&unwrap_optional(arg(0)), &field)))
        }
        "has" | "matches" | "startsWith" | "endsWith" | "contains" | "hasValue" | "bool"
        | "all" | "exists" | "exists_one" | "isSorted" => CelType::Bool,
        "string" | "lowerAscii" | "upperAscii" | "replace" | "substring" | "trim" | "join"
        | "format" | "charAt" | "strings.quote" | "base64.encode" => CelType::String,
        "int" | "size" | "indexOf" | "lastIndexOf" => CelType::Int,
        "uint" => CelType::Uint,
        "double" => CelType::Double,
        "bytes" | "base64.decode" | "hash.fnv64a" | "hash.sha256" | "hash.md5" => CelType::Bytes,
        "timestamp" => CelType::Timestamp,
        "duration" => CelType::Duration,
        "orValue" => match target() {
            CelType::Optional(inner) if *inner != CelType::Dyn => *inner,
            _ => arg(0),
        },
        "value" => unwrap_optional(target()),
        "optional.of" => CelType::Optional(Box::new(arg(0))),
        "optional.none" => CelType::Optional(Box::new(CelType::Dyn)),
        "split" => CelType::List(Box::new(CelType::String)),
        _ => CelType::Dyn,
    }
}

/// The free identifiers of an expression (comprehension variables excluded).
pub fn identifiers(expr: &IdedExpr) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    collect(expr, &mut Vec::new(), &mut out);
    out
}

fn collect(expr: &IdedExpr, bound: &mut Vec<String>, out: &mut BTreeSet<String>) {
    match &expr.expr {
        Expr::Ident(name) => {
            if !bound.contains(name) {
                out.insert(name.clone());
            }
        }
        Expr::Select(s) => collect(&s.operand, bound, out),
        Expr::Call(call) => {
            // kro's `runtime.newCondition` macro: the map literal's bare keys are field names.
            if is_new_condition(call) {
                if let Some(target) = &call.target {
                    collect(target, bound, out);
                }
                for arg in &call.args {
                    match &arg.expr {
                        Expr::Map(map) => {
                            for entry in &map.entries {
                                match &entry.expr {
                                    EntryExpr::MapEntry(e) => {
                                        if !matches!(e.key.expr, Expr::Ident(_)) {
                                            collect(&e.key, bound, out);
                                        }
                                        collect(&e.value, bound, out);
                                    }
                                    EntryExpr::StructField(f) => collect(&f.value, bound, out),
                                }
                            }
                        }
                        _ => collect(arg, bound, out),
                    }
                }
                return;
            }
            let binders = macro_binders(call);
            if let Some(target) = &call.target {
                collect(target, bound, out);
            }
            let depth = bound.len();
            for (position, arg) in call.args.iter().enumerate() {
                match binders {
                    Some(Binders { names, .. }) if position < names => {
                        if let Expr::Ident(name) = &arg.expr {
                            bound.push(name.clone());
                        }
                    }
                    // `cel.bind`'s initial value is outside its own binding.
                    Some(Binders { first_body, .. }) if position < first_body => {
                        let inner = bound.split_off(depth);
                        collect(arg, bound, out);
                        bound.extend(inner);
                    }
                    _ => collect(arg, bound, out),
                }
            }
            bound.truncate(depth);
        }
        Expr::List(list) => list.elements.iter().for_each(|e| collect(e, bound, out)),
        Expr::Map(map) => {
            for entry in &map.entries {
                match &entry.expr {
                    EntryExpr::MapEntry(e) => {
                        collect(&e.key, bound, out);
                        collect(&e.value, bound, out);
                    }
                    EntryExpr::StructField(f) => collect(&f.value, bound, out),
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                if let EntryExpr::StructField(f) = &entry.expr {
                    collect(&f.value, bound, out);
                }
            }
        }
        Expr::Comprehension(c) => {
            collect(&c.iter_range, bound, out);
            collect(&c.accu_init, bound, out);
            bound.push(c.iter_var.clone());
            bound.push(c.accu_var.clone());
            collect(&c.loop_cond, bound, out);
            collect(&c.loop_step, bound, out);
            collect(&c.result, bound, out);
            bound.pop();
            bound.pop();
        }
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn is_new_condition(call: &kube_cel::cel::common::ast::CallExpr) -> bool {
    call.func_name == "newCondition"
        && call.args.len() == 1
        && matches!(call.target.as_deref().map(|t| &t.expr), Some(Expr::Ident(n)) if n == "runtime")
}

/// The variables a macro call the parser leaves as a call binds: its first `names` arguments,
/// in scope from argument `first_body` on.
#[derive(Clone, Copy)]
struct Binders {
    names: usize,
    first_body: usize,
}

/// `cel.bind(x, init, body)` and the two-variable comprehensions (`l.transformMap(i, v, …)`).
fn macro_binders(call: &kube_cel::cel::common::ast::CallExpr) -> Option<Binders> {
    let idents = |n: usize| {
        call.args.len() > n
            && call.args[..n]
                .iter()
                .all(|a| matches!(a.expr, Expr::Ident(_)))
    };
    let on_cel =
        matches!(call.target.as_deref().map(|t| &t.expr), Some(Expr::Ident(n)) if n == "cel");
    match (call.func_name.as_str(), call.args.len()) {
        ("bind", 3) if on_cel && idents(1) => Some(Binders {
            names: 1,
            first_body: 2,
        }),
        ("transformList" | "transformMap" | "transformMapEntry", 3 | 4)
        | ("all" | "exists" | "existsOne" | "exists_one", 3)
            if call.target.is_some() && idents(2) =>
        {
            Some(Binders {
                names: 2,
                first_body: 2,
            })
        }
        _ => None,
    }
}

/// The OpenAPI schema of a status field of this type (kro.md §4.3 step 4).
pub fn to_openapi(t: &CelType) -> Value {
    match t {
        CelType::Bool => json!({"type": "boolean"}),
        CelType::Int | CelType::Uint => json!({"type": "integer"}),
        CelType::Double => json!({"type": "number"}),
        CelType::String | CelType::Duration => json!({"type": "string"}),
        CelType::Bytes => json!({"type": "string", "format": "byte"}),
        CelType::Timestamp => {
            json!({"description": "Timestamp representing a creation time", "type": "string", "format": "date-time"})
        }
        CelType::Null => {
            json!({"description": "null type - any value allowed", "x-kubernetes-preserve-unknown-fields": true})
        }
        CelType::Dyn => json!({"x-kubernetes-preserve-unknown-fields": true}),
        CelType::List(item) => match **item {
            CelType::Dyn => json!({"type": "array"}),
            ref known => json!({"type": "array", "items": nested(known)}),
        },
        CelType::Map(value) => match **value {
            CelType::Dyn => json!({"type": "object", "additionalProperties": true}),
            ref known => json!({"type": "object", "additionalProperties": nested(known)}),
        },
        CelType::Optional(_) => {
            json!({"description": format!("unknown CEL type: {}", t.name()), "x-kubernetes-preserve-unknown-fields": true})
        }
        CelType::Schema(node) => rebuild(node),
    }
}

fn nested(t: &CelType) -> Value {
    match t {
        CelType::Timestamp | CelType::Duration => {
            json!({"x-kubernetes-preserve-unknown-fields": true})
        }
        other => to_openapi(other),
    }
}

/// A projected schema keeps only the structure: type, properties, items, additionalProperties.
fn rebuild(node: &Value) -> Value {
    let preserve = json!({"x-kubernetes-preserve-unknown-fields": true});
    let flag = |k: &str| node.get(k).and_then(Value::as_bool) == Some(true);
    if flag("x-kubernetes-preserve-unknown-fields") || flag("x-kubernetes-int-or-string") {
        return preserve;
    }
    match node.get("type").and_then(Value::as_str) {
        Some("object") | None => {
            if let Some(properties) = node.get("properties").and_then(Value::as_object) {
                let rebuilt: Map<String, Value> = properties
                    .iter()
                    .map(|(k, v)| (k.clone(), rebuild(v)))
                    .collect();
                json!({"type": "object", "properties": rebuilt})
            } else if let Some(additional) =
                node.get("additionalProperties").filter(|a| a.is_object())
            {
                json!({"type": "object", "additionalProperties": rebuild(additional)})
            } else {
                preserve
            }
        }
        Some("array") => match node.get("items") {
            Some(items) => json!({"type": "array", "items": rebuild(items)}),
            None => json!({"type": "array"}),
        },
        Some("string") => match node.get("format").and_then(Value::as_str) {
            Some("byte") => json!({"type": "string", "format": "byte"}),
            Some("date" | "date-time" | "duration") => preserve,
            _ => json!({"type": "string"}),
        },
        Some(other) => json!({"type": other}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_of(expression: &str, scope: &Scope) -> CelType {
        infer(&parse(expression).unwrap(), scope)
    }

    /// [KRO-TY] the inference table of kro.md §6.7.
    #[test]
    fn inference_table() {
        let scope = Scope {
            schema: json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"replicas": {"type": "integer"}, "name": {"type": "string"}}}, "metadata": metadata_schema()}}),
            resources: BTreeMap::from([("cm".to_string(), None)]),
        };
        assert_eq!(type_of("1 > 0", &scope), CelType::Bool);
        assert_eq!(type_of(r#""a" + string(1)"#, &scope), CelType::String);
        assert_eq!(
            type_of("int(cm.?data.?x.orValue(0)) > 0", &scope),
            CelType::Bool
        );
        assert_eq!(type_of("schema.spec.replicas", &scope), CelType::Int);
        assert_eq!(type_of("schema.spec.replicas + 1", &scope), CelType::Int);
        assert_eq!(
            type_of("schema.metadata.labels", &scope),
            CelType::Map(Box::new(CelType::String))
        );
        assert_eq!(
            type_of("schema.metadata.creationTimestamp", &scope),
            CelType::Timestamp
        );
        assert_eq!(type_of("cm.data", &scope), CelType::Dyn);
        assert_eq!(type_of("cm.?data.x", &scope).name(), "optional_type(dyn)");
        assert_eq!(
            type_of("schema.spec.?name.orValue('x')", &scope),
            CelType::String
        );
        assert_eq!(
            type_of("[1, 2]", &scope),
            CelType::List(Box::new(CelType::Int))
        );
        assert_eq!(type_of("[1, 2].all(x, x > 0)", &scope), CelType::Bool);
        assert_eq!(type_of("true ? 1 : 'a'", &scope), CelType::Dyn);
        assert_eq!(type_of("size(schema.spec.name)", &scope), CelType::Int);
        assert_eq!(type_of("1.5 * 2", &scope), CelType::Double);
    }

    #[test]
    fn free_identifiers_skip_comprehension_variables() {
        let ids = identifiers(&parse("cm.data.all(k, k != schema.spec.name) && other.x").unwrap());
        assert_eq!(
            ids.into_iter().collect::<Vec<_>>(),
            ["cm", "other", "schema"]
        );
    }

    #[test]
    fn openapi_mapping() {
        assert_eq!(
            to_openapi(&CelType::Map(Box::new(CelType::Dyn))),
            json!({"type": "object", "additionalProperties": true})
        );
        assert_eq!(
            to_openapi(&CelType::List(Box::new(CelType::Timestamp))),
            json!({"type": "array", "items": {"x-kubernetes-preserve-unknown-fields": true}})
        );
        assert_eq!(
            to_openapi(&CelType::Optional(Box::new(CelType::Int)))["description"],
            "unknown CEL type: optional_type(int)"
        );
    }
}
