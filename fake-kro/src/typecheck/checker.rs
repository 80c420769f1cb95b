//! The CEL type checker as kro runs it (cel-go's checker over kro's environment): identifiers,
//! field selection on declared object types, overload resolution with type parameters, list and
//! map literals, comprehensions, the optional syntax and the macros kro adds that the parser does
//! not expand (two-variable comprehensions, `transform*`, `cel.bind`, `sortBy`, `optMap`,
//! `optFlatMap`, `runtime.newCondition`). Errors carry cel-go's messages and positions.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube_cel::cel::IdedExpr;
use kube_cel::cel::common::ast::{
    CallExpr, ComprehensionExpr, EntryExpr, Expr, LiteralValue, operators,
};

use super::functions::{FUNCTIONS, Overload};
use super::source::{self, CelError, Offsets};
use super::types::{Kind, ObjectType, Type};

/// The name of kro's condition type and its fields (all strings).
pub const CONDITION_TYPE: &str = "kro.run.Condition";
/// The type of the `runtime` variable of status.conditions expressions.
pub const RUNTIME_TYPE: &str = "kro.run.Runtime";

/// kro's `kro.run.Condition` object type.
pub fn condition_type() -> Type {
    Type::Object(Arc::new(ObjectType {
        name: CONDITION_TYPE.into(),
        fields: ["type", "status", "reason", "message"]
            .into_iter()
            .map(|f| (f.to_string(), Type::String))
            .collect(),
        preserve_unknown: false,
    }))
}

/// The variables an expression may use, with their types.
#[derive(Clone, Debug, Default)]
pub struct Env {
    pub variables: BTreeMap<String, Type>,
}

impl Env {
    pub fn with(mut self, name: &str, t: Type) -> Self {
        self.variables.insert(name.to_string(), t);
        self
    }
}

/// Type-checks an expression; its output type, or cel-go's display of the errors.
pub fn check(source: &str, env: &Env) -> Result<Type, String> {
    let (parsed, offsets) =
        source::parse(source).map_err(|errors| source::display(source, &errors))?;
    let mut checker = Checker {
        env,
        offsets: &offsets,
        scopes: Vec::new(),
        mapping: BTreeMap::new(),
        free: 0,
        errors: Vec::new(),
    };
    let t = checker.check(&parsed);
    if !checker.errors.is_empty() {
        return Err(source::display(source, &checker.errors));
    }
    Ok(checker.substitute(&t, true))
}

struct Checker<'a> {
    env: &'a Env,
    offsets: &'a Offsets,
    /// Comprehension and macro variables, innermost last.
    scopes: Vec<BTreeMap<String, Type>>,
    /// Type parameter substitutions, keyed by cel-go's formatted parameter name.
    mapping: BTreeMap<String, Type>,
    free: usize,
    errors: Vec<CelError>,
}

impl Checker<'_> {
    fn error(&mut self, id: u64, message: String) {
        self.errors.push(CelError {
            offset: self.offsets.start(id),
            message,
        });
    }

    fn undeclared(&mut self, id: u64, name: &str) {
        self.error(
            id,
            format!("undeclared reference to '{name}' (in container '')"),
        );
    }

    fn type_mismatch(&mut self, id: u64, expected: &Type, actual: &Type) {
        self.error(
            id,
            format!(
                "expected type '{}' but found '{}'",
                expected.format(),
                actual.format()
            ),
        );
    }

    fn fresh(&mut self) -> Type {
        let t = Type::Param(format!("_var{}", self.free));
        self.free += 1;
        t
    }

    fn lookup(&self, name: &str) -> Option<Type> {
        for scope in self.scopes.iter().rev() {
            if let Some(t) = scope.get(name) {
                return Some(t.clone());
            }
        }
        if let Some(t) = self.env.variables.get(name) {
            return Some(t.clone());
        }
        type_identifier(name)
    }

    fn check(&mut self, e: &IdedExpr) -> Type {
        match &e.expr {
            Expr::Literal(l) => match l {
                LiteralValue::Boolean(_) => Type::Bool,
                LiteralValue::Int(_) => Type::Int,
                LiteralValue::UInt(_) => Type::Uint,
                LiteralValue::Double(_) => Type::Double,
                LiteralValue::String(_) => Type::String,
                LiteralValue::Bytes(_) => Type::Bytes,
                LiteralValue::Null => Type::Null,
            },
            Expr::Ident(name) => match self.lookup(name) {
                Some(t) => t,
                None => {
                    self.undeclared(e.id, name);
                    Type::Error
                }
            },
            Expr::Select(s) => {
                let t = self.select_field(e.id, &s.operand, &s.field, false);
                if s.test {
                    Type::Bool
                } else {
                    self.substitute(&t, false)
                }
            }
            Expr::Call(call) => self.check_call(e.id, call),
            Expr::List(list) => {
                let mut elements: Option<Type> = None;
                for (i, element) in list.elements.iter().enumerate() {
                    let mut t = self.check(element);
                    if list.optional_indices.contains(&i) {
                        t = self.unwrap_optional_literal(element.id, t);
                    }
                    elements = Some(self.join(elements, t));
                }
                let element = match elements {
                    Some(t) => t,
                    None => self.fresh(),
                };
                Type::list(element)
            }
            Expr::Map(map) => {
                let (mut keys, mut values): (Option<Type>, Option<Type>) = (None, None);
                for entry in &map.entries {
                    let EntryExpr::MapEntry(entry) = &entry.expr else {
                        continue;
                    };
                    let k = self.check(&entry.key);
                    keys = Some(self.join(keys, k));
                    let mut v = self.check(&entry.value);
                    if entry.optional {
                        v = self.unwrap_optional_literal(entry.value.id, v);
                    }
                    values = Some(self.join(values, v));
                }
                match (keys, values) {
                    (Some(k), Some(v)) => Type::map(k, v),
                    _ => {
                        let (k, v) = (self.fresh(), self.fresh());
                        Type::map(k, v)
                    }
                }
            }
            Expr::Struct(s) => {
                self.undeclared(e.id, &s.type_name);
                Type::Error
            }
            Expr::Comprehension(c) => self.comprehension(c),
            Expr::Unspecified => Type::Error,
        }
    }

    fn unwrap_optional_literal(&mut self, id: u64, t: Type) -> Type {
        match t {
            Type::Optional(inner) => *inner,
            Type::Dyn => Type::Dyn,
            other => {
                self.type_mismatch(id, &Type::optional(other.clone()), &other);
                other
            }
        }
    }

    /// cel-go's `joinTypes`: the more general of two element types, or `dyn` when they differ
    /// (aggregate literals may be heterogeneous).
    fn join(&mut self, previous: Option<Type>, current: Type) -> Type {
        match previous {
            None => current,
            Some(p) => {
                if self.assignable(&p, &current) {
                    most_general(&p, &current)
                } else {
                    Type::Dyn
                }
            }
        }
    }

    fn select_field(&mut self, id: u64, operand: &IdedExpr, field: &str, optional: bool) -> Type {
        let operand_type = self.check(operand);
        let operand_type = self.substitute(&operand_type, false);
        let (target, was_optional) = match operand_type {
            Type::Optional(inner) => (*inner, true),
            other => (other, false),
        };
        let result = match &target {
            Type::Map(_, v) => (**v).clone(),
            Type::Object(object) => match field_type(object, field) {
                Some(t) => t,
                None => {
                    self.error(id, format!("undefined field '{field}'"));
                    Type::Error
                }
            },
            Type::Param(_) => {
                self.assignable(&Type::Dyn, &target);
                Type::Dyn
            }
            t if t.is_dyn_or_error() => Type::Dyn,
            other => {
                self.error(
                    id,
                    format!("type '{}' does not support field selection", other.format()),
                );
                Type::Dyn
            }
        };
        if was_optional || optional {
            Type::optional(result)
        } else {
            result
        }
    }

    fn check_call(&mut self, id: u64, call: &CallExpr) -> Type {
        let name = call.func_name.as_str();
        if name == operators::OPT_SELECT {
            let field = match call.args.get(1).map(|a| &a.expr) {
                Some(Expr::Literal(LiteralValue::String(s))) => s.to_string(),
                _ => {
                    self.error(id, "unsupported optional field selection".into());
                    return Type::Error;
                }
            };
            let Some(operand) = call.args.first() else {
                return Type::Error;
            };
            let t = self.select_field(id, operand, &field, true);
            return self.substitute(&t, false);
        }
        if let Some(target) = call.target.as_deref()
            && let Some(t) = self.macro_call(id, name, target, &call.args)
        {
            return t;
        }
        let arg_types: Vec<Type> = call.args.iter().map(|a| self.check(a)).collect();
        let Some(target) = call.target.as_deref() else {
            return match FUNCTIONS.get(name) {
                Some(overloads) => self.resolve(id, name, overloads, None, &call.args, arg_types),
                None => {
                    self.undeclared(id, name);
                    Type::Error
                }
            };
        };
        if let Some(prefix) = qualified_name(target) {
            let qualified = format!("{prefix}.{name}");
            if let Some(overloads) = FUNCTIONS.get(&qualified) {
                return self.resolve(id, &qualified, overloads, None, &call.args, arg_types);
            }
        }
        let target_type = self.check(target);
        match FUNCTIONS.get(name) {
            Some(overloads) => self.resolve(
                id,
                name,
                overloads,
                Some(target_type),
                &call.args,
                arg_types,
            ),
            None => {
                self.undeclared(id, name);
                Type::Error
            }
        }
    }

    fn resolve(
        &mut self,
        id: u64,
        name: &str,
        overloads: &[Overload],
        target: Option<Type>,
        args: &[IdedExpr],
        arg_types: Vec<Type>,
    ) -> Type {
        let member = target.is_some();
        let mut all: Vec<Type> = target.into_iter().collect();
        all.extend(arg_types);
        if name == operators::LOGICAL_AND || name == operators::LOGICAL_OR {
            let mut failed = false;
            for (i, t) in all.iter().enumerate() {
                if !self.assignable(t, &Type::Bool) {
                    if let Some(arg) = args.get(i) {
                        self.type_mismatch(arg.id, &Type::Bool, t);
                    }
                    failed = true;
                }
            }
            return if failed { Type::Error } else { Type::Bool };
        }
        let mut result: Option<Type> = None;
        for overload in overloads.iter().filter(|o| o.member == member) {
            let mut renames = BTreeMap::new();
            for p in &overload.params {
                let fresh = self.fresh();
                renames.insert(p.clone(), fresh);
            }
            let params: Vec<Type> = overload.args.iter().map(|a| rename(a, &renames)).collect();
            if params.len() != all.len() {
                continue;
            }
            let mut trial = self.mapping.clone();
            if all
                .iter()
                .zip(&params)
                .all(|(a, p)| is_assignable(&mut trial, a, p))
            {
                self.mapping = trial;
                let t = self.substitute(&rename(&overload.result, &renames), false);
                result = Some(match result {
                    None => t,
                    Some(previous) if !previous.is_dyn_or_error() && !t.is_exact(&previous) => {
                        Type::Dyn
                    }
                    Some(previous) => previous,
                });
            }
        }
        match result {
            Some(t) => t,
            None => {
                let shown: Vec<String> = all
                    .iter()
                    .map(|t| self.substitute(t, true).format())
                    .collect();
                let signature = if member {
                    format!("{}.({})", shown[0], shown[1..].join(", "))
                } else {
                    format!("({})", shown.join(", "))
                };
                self.error(
                    id,
                    format!("found no matching overload for '{name}' applied to '{signature}'"),
                );
                Type::Error
            }
        }
    }

    /// A comprehension the parser expanded (all, exists, exists_one, map, filter).
    fn comprehension(&mut self, c: &ComprehensionExpr) -> Type {
        let range = self.check(&c.iter_range);
        let init = self.check(&c.accu_init);
        let range = self.substitute(&range, false);
        let mut outer = BTreeMap::new();
        outer.insert(c.accu_var.clone(), init.clone());
        self.scopes.push(outer);
        let (var, var2) = self.range_variables(c.iter_range.id, &range, c.iter_var2.is_some());
        let mut inner = BTreeMap::new();
        inner.insert(c.iter_var.clone(), var);
        if let (Some(name), Some(t)) = (&c.iter_var2, var2) {
            inner.insert(name.clone(), t);
        }
        self.scopes.push(inner);
        let condition = self.check(&c.loop_cond);
        if !self.assignable(&Type::Bool, &condition) {
            self.type_mismatch(c.loop_cond.id, &Type::Bool, &condition);
        }
        let step = self.check(&c.loop_step);
        if !self.assignable(&init, &step) {
            self.type_mismatch(c.loop_step.id, &init, &step);
        }
        self.scopes.pop();
        let result = self.check(&c.result);
        self.scopes.pop();
        self.substitute(&result, false)
    }

    /// The iteration variables of a range: (element) for one variable, (index or key, value)
    /// for two.
    fn range_variables(&mut self, id: u64, range: &Type, two: bool) -> (Type, Option<Type>) {
        match range {
            Type::List(element) => {
                if two {
                    (Type::Int, Some((**element).clone()))
                } else {
                    ((**element).clone(), None)
                }
            }
            Type::Map(k, v) => ((**k).clone(), two.then(|| (**v).clone())),
            Type::Dyn | Type::Any | Type::Error | Type::Param(_) => {
                self.assignable(&Type::Dyn, range);
                (Type::Dyn, two.then_some(Type::Dyn))
            }
            other => {
                self.error(
                    id,
                    format!(
                        "expression of type '{}' cannot be range of a comprehension (must be list, map, or dynamic)",
                        other.format()
                    ),
                );
                (Type::Error, two.then_some(Type::Error))
            }
        }
    }

    /// The macros of kro's environment that the parser leaves as calls; `None` when the call
    /// is not one of them.
    fn macro_call(
        &mut self,
        id: u64,
        name: &str,
        target: &IdedExpr,
        args: &[IdedExpr],
    ) -> Option<Type> {
        let ident = |e: &IdedExpr| match &e.expr {
            Expr::Ident(n) => Some(n.clone()),
            _ => None,
        };
        match (name, args.len()) {
            ("bind", 3) if matches!(&target.expr, Expr::Ident(n) if n == "cel") => {
                let var = ident(&args[0])?;
                let init = self.check(&args[1]);
                self.scopes.push(BTreeMap::from([(var, init)]));
                let body = self.check(&args[2]);
                self.scopes.pop();
                Some(body)
            }
            ("newCondition", 1) if matches!(&target.expr, Expr::Ident(n) if n == "runtime") => {
                Some(self.new_condition(id, target, &args[0]))
            }
            ("all" | "exists" | "existsOne" | "exists_one", 3)
            | ("transformList" | "transformMap" | "transformMapEntry", 3 | 4) => {
                let (first, second) = (ident(&args[0])?, ident(&args[1])?);
                let range = self.check(target);
                let range = self.substitute(&range, false);
                let (a, b) = self.range_variables(target.id, &range, true);
                self.scopes.push(BTreeMap::from([
                    (first, a.clone()),
                    (second, b.unwrap_or(Type::Dyn)),
                ]));
                let result = match name {
                    "transformList" | "transformMap" | "transformMapEntry" => {
                        if args.len() == 4 {
                            let filter = self.check(&args[2]);
                            if !self.assignable(&Type::Bool, &filter) {
                                self.type_mismatch(args[2].id, &Type::Bool, &filter);
                            }
                        }
                        let body = args.last()?;
                        let value = self.check(body);
                        match name {
                            "transformList" => Type::list(value),
                            "transformMap" => Type::map(a, value),
                            _ => {
                                let (k, v) = (self.fresh(), self.fresh());
                                let accumulator = Type::map(k, v);
                                let insert = FUNCTIONS.get("cel.@mapInsert")?;
                                self.resolve(
                                    body.id,
                                    "cel.@mapInsert",
                                    insert,
                                    None,
                                    &[],
                                    vec![accumulator, value],
                                )
                            }
                        }
                    }
                    _ => {
                        let predicate = self.check(&args[2]);
                        if !self.assignable(&Type::Bool, &predicate) {
                            self.type_mismatch(args[2].id, &Type::Bool, &predicate);
                        }
                        Type::Bool
                    }
                };
                self.scopes.pop();
                Some(self.substitute(&result, false))
            }
            ("sortBy", 2) => {
                let var = ident(&args[0])?;
                let range = self.check(target);
                let range = self.substitute(&range, false);
                let (element, _) = self.range_variables(target.id, &range, false);
                self.scopes.push(BTreeMap::from([(var, element)]));
                let key = self.check(&args[1]);
                self.scopes.pop();
                let overloads = FUNCTIONS.get("@sortByAssociatedKeys")?;
                Some(self.resolve(
                    id,
                    "@sortByAssociatedKeys",
                    overloads,
                    Some(range),
                    &[],
                    vec![Type::list(key)],
                ))
            }
            ("optMap" | "optFlatMap", 2) => {
                let var = ident(&args[0])?;
                let optional = self.check(target);
                let inner = match self.substitute(&optional, false) {
                    Type::Optional(inner) => *inner,
                    _ => Type::Dyn,
                };
                self.scopes.push(BTreeMap::from([(var, inner)]));
                let body = self.check(&args[1]);
                self.scopes.pop();
                Some(if name == "optMap" {
                    Type::optional(body)
                } else {
                    body
                })
            }
            _ => None,
        }
    }

    /// kro's `runtime.newCondition` macro: a map literal with bare `type`, `status`, `reason`,
    /// `message` keys (type and status required), then the `newCondition` overload.
    fn new_condition(&mut self, id: u64, target: &IdedExpr, argument: &IdedExpr) -> Type {
        let Expr::Map(map) = &argument.expr else {
            self.error(
                argument.id,
                "runtime.newCondition: argument must be a map literal".into(),
            );
            return Type::Error;
        };
        let mut seen = Vec::new();
        let mut values = None;
        for entry in &map.entries {
            let EntryExpr::MapEntry(entry) = &entry.expr else {
                continue;
            };
            let Expr::Ident(key) = &entry.key.expr else {
                self.error(entry.key.id, "runtime.newCondition: keys must be bare identifiers (type, status, reason, message); quoted or computed keys are not allowed".into());
                return Type::Error;
            };
            if !["type", "status", "reason", "message"].contains(&key.as_str()) {
                self.error(
                    entry.key.id,
                    format!(
                        "runtime.newCondition: unknown key \"{key}\" (allowed: type, status, reason, message)"
                    ),
                );
                return Type::Error;
            }
            if seen.contains(key) {
                self.error(
                    entry.key.id,
                    format!("runtime.newCondition: duplicate key \"{key}\""),
                );
                return Type::Error;
            }
            seen.push(key.clone());
            let v = self.check(&entry.value);
            values = Some(self.join(values, v));
        }
        for required in ["type", "status"] {
            if !seen.iter().any(|k| k == required) {
                self.error(
                    argument.id,
                    format!("runtime.newCondition: '{required}' is required"),
                );
                return Type::Error;
            }
        }
        let target_type = self.check(target);
        let argument_type = Type::map(Type::String, values.unwrap_or(Type::Dyn));
        match FUNCTIONS.get("newCondition") {
            Some(overloads) => self.resolve(
                id,
                "newCondition",
                overloads,
                Some(target_type),
                &[],
                vec![argument_type],
            ),
            None => Type::Error,
        }
    }

    fn assignable(&mut self, a: &Type, b: &Type) -> bool {
        let mut trial = self.mapping.clone();
        if internal_assignable(&mut trial, a, b) {
            self.mapping = trial;
            true
        } else {
            false
        }
    }

    fn substitute(&self, t: &Type, params_to_dyn: bool) -> Type {
        substitute(&self.mapping, t, params_to_dyn)
    }
}

/// The type of field `field` of an object type (reserved words are escaped `__word__`).
fn field_type(object: &ObjectType, field: &str) -> Option<Type> {
    if let Some(t) = object.fields.get(field) {
        return Some(t.clone());
    }
    if let Some(t) = object.fields.get(&format!("__{field}__")) {
        return Some(t.clone());
    }
    object.preserve_unknown.then_some(Type::Dyn)
}

/// The identifiers that name types (`int`, `string`, ...), as values of type `type(T)`.
fn type_identifier(name: &str) -> Option<Type> {
    let t = match name {
        "bool" => Type::Bool,
        "bytes" => Type::Bytes,
        "double" => Type::Double,
        "int" => Type::Int,
        "uint" => Type::Uint,
        "string" => Type::String,
        "null_type" => Type::Null,
        "dyn" => Type::Dyn,
        "list" => Type::list(Type::Dyn),
        "map" => Type::map(Type::Dyn, Type::Dyn),
        "type" => Type::TypeOf(Box::new(Type::Dyn)),
        "google.protobuf.Timestamp" => Type::Timestamp,
        "google.protobuf.Duration" => Type::Duration,
        _ => return None,
    };
    Some(Type::TypeOf(Box::new(t)))
}

/// `a.b.c` written as identifiers and selections: the dotted name (a namespaced function's
/// receiver such as `base64`, `optional`, `cel`).
fn qualified_name(e: &IdedExpr) -> Option<String> {
    match &e.expr {
        Expr::Ident(name) => Some(name.clone()),
        Expr::Select(s) if !s.test => Some(format!("{}.{}", qualified_name(&s.operand)?, s.field)),
        _ => None,
    }
}

fn rename(t: &Type, renames: &BTreeMap<String, Type>) -> Type {
    match t {
        Type::Param(p) => renames.get(p).cloned().unwrap_or_else(|| t.clone()),
        Type::List(e) => Type::list(rename(e, renames)),
        Type::Map(k, v) => Type::map(rename(k, renames), rename(v, renames)),
        Type::Optional(i) => Type::optional(rename(i, renames)),
        Type::TypeOf(i) => Type::TypeOf(Box::new(rename(i, renames))),
        other => other.clone(),
    }
}

fn is_assignable(mapping: &mut BTreeMap<String, Type>, a: &Type, b: &Type) -> bool {
    internal_assignable(mapping, a, b)
}

/// cel-go's `internalIsAssignable` with type-parameter substitution: `t1` accepts `t2`.
fn internal_assignable(m: &mut BTreeMap<String, Type>, t1: &Type, t2: &Type) -> bool {
    if let Type::Param(_) = t2 {
        let (valid, has_sub) = valid_substitution(m, t1, t2);
        if valid {
            return true;
        }
        if has_sub {
            return false;
        }
    }
    if let Type::Param(_) = t1 {
        return valid_substitution(m, t2, t1).0;
    }
    if matches!(t1, Type::Dyn | Type::Any | Type::Error)
        || matches!(t2, Type::Dyn | Type::Any | Type::Error)
    {
        return true;
    }
    if *t1 == Type::Null {
        return assignable_null(t2);
    }
    if *t2 == Type::Null {
        return assignable_null(t1);
    }
    match t1.kind() {
        Kind::Bool
        | Kind::Bytes
        | Kind::Double
        | Kind::Int
        | Kind::String
        | Kind::Uint
        | Kind::Timestamp
        | Kind::Duration
        | Kind::Struct => t2.accepts(t1),
        Kind::Type => t2.kind() == Kind::Type,
        Kind::Opaque | Kind::List | Kind::Map => {
            t1.kind() == t2.kind()
                && t1.type_name() == t2.type_name()
                && t1.parameters().len() == t2.parameters().len()
                && t1
                    .parameters()
                    .into_iter()
                    .zip(t2.parameters())
                    .all(|(a, b)| internal_assignable(m, a, b))
        }
        _ => false,
    }
}

fn assignable_null(t: &Type) -> bool {
    matches!(
        t,
        Type::Optional(_) | Type::Object(_) | Type::Any | Type::Timestamp | Type::Duration
    ) || t.accepts(&Type::Null)
}

fn valid_substitution(m: &mut BTreeMap<String, Type>, t1: &Type, t2: &Type) -> (bool, bool) {
    if t1.is_exact(t2) {
        return (true, true);
    }
    let key = t2.format();
    if let Some(sub) = m.get(&key).cloned() {
        if t1.is_exact(&sub) {
            return (true, true);
        }
        if internal_assignable(m, t1, &sub) {
            let general = most_general(t1, &sub);
            if not_referenced_in(m, t2, &general) {
                m.insert(key, general);
            }
            return (true, true);
        }
        return (false, true);
    }
    if not_referenced_in(m, t2, t1) {
        m.insert(key, t1.clone());
        return (true, false);
    }
    (false, false)
}

fn not_referenced_in(m: &BTreeMap<String, Type>, t: &Type, within: &Type) -> bool {
    if t.is_exact(within) {
        return false;
    }
    match within {
        Type::Param(_) => match m.get(&within.format()) {
            Some(sub) => not_referenced_in(m, t, sub),
            None => true,
        },
        other => other
            .parameters()
            .into_iter()
            .all(|p| not_referenced_in(m, t, p)),
    }
}

fn less_specific(t1: &Type, t2: &Type) -> bool {
    if matches!(t1, Type::Dyn | Type::Any | Type::Param(_)) {
        return true;
    }
    if matches!(t2, Type::Dyn | Type::Any | Type::Param(_)) {
        return false;
    }
    if t1.kind() != t2.kind() {
        return false;
    }
    match t1.kind() {
        Kind::Opaque | Kind::List | Kind::Map => {
            t1.type_name() == t2.type_name()
                && t1
                    .parameters()
                    .into_iter()
                    .zip(t2.parameters())
                    .all(|(a, b)| less_specific(a, b))
        }
        Kind::Type => true,
        _ => t1.is_exact(t2),
    }
}

fn most_general(t1: &Type, t2: &Type) -> Type {
    if less_specific(t1, t2) {
        t1.clone()
    } else {
        t2.clone()
    }
}

fn substitute(m: &BTreeMap<String, Type>, t: &Type, params_to_dyn: bool) -> Type {
    if let Type::Param(_) = t {
        if let Some(sub) = m.get(&t.format()) {
            return substitute(m, sub, params_to_dyn);
        }
        return if params_to_dyn { Type::Dyn } else { t.clone() };
    }
    match t {
        Type::List(e) => Type::list(substitute(m, e, params_to_dyn)),
        Type::Map(k, v) => Type::map(
            substitute(m, k, params_to_dyn),
            substitute(m, v, params_to_dyn),
        ),
        Type::Optional(i) => Type::optional(substitute(m, i, params_to_dyn)),
        Type::TypeOf(i) => Type::TypeOf(Box::new(substitute(m, i, params_to_dyn))),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::typecheck::decl;
    use serde_json::json;

    fn env() -> Env {
        let resource = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "name": {"type": "string"}, "replicas": {"type": "integer"},
            "items": {"type": "array", "items": {"type": "object", "properties": {"value": {"type": "string"}}}}
        }}}});
        Env::default().with("res", decl::variable(&resource, "res"))
    }

    #[test]
    fn output_types() {
        let env = env();
        let t = |e: &str| check(e, &env).map(|t| t.display());
        assert_eq!(t("res.spec.name").unwrap(), "string");
        assert_eq!(t("res.spec.replicas + 1").unwrap(), "int");
        assert_eq!(t("res.spec.?name").unwrap(), "optional_type(string)");
        assert_eq!(t("res.spec.?name.orValue('x')").unwrap(), "string");
        assert_eq!(t("res.spec.items.map(i, i.value)").unwrap(), "list(string)");
        assert_eq!(t("[1, 'a']").unwrap(), "list(dyn)");
        assert_eq!(
            t("{'a': 1}.transformMap(k, v, v > 0)").unwrap(),
            "map(string, bool)"
        );
        assert_eq!(t("cel.bind(x, 2, x * x)").unwrap(), "int");
        assert_eq!(
            t("res.spec.items").unwrap(),
            "list(__type_res.spec.items.@idx)"
        );
        assert_eq!(t("base64.encode(bytes('a'))").unwrap(), "string");
        assert_eq!(t("[].size()").unwrap(), "int");
    }

    #[test]
    fn errors_read_as_cel_go() {
        let env = env();
        assert_eq!(
            check("\"prefix-\" + (res.spec.replicas)", &env).unwrap_err(),
            "ERROR: <input>:1:11: found no matching overload for '_+_' applied to '(string, int)'\n | \"prefix-\" + (res.spec.replicas)\n | ..........^"
        );
        assert!(
            check("res.spec.missing", &env)
                .unwrap_err()
                .contains("undefined field 'missing'")
        );
        assert!(
            check("res.spec.name.x", &env)
                .unwrap_err()
                .contains("type 'string' does not support field selection")
        );
        assert!(
            check("nope", &env)
                .unwrap_err()
                .contains("undeclared reference to 'nope' (in container '')")
        );
        assert!(
            check("res.spec.name && true", &env)
                .unwrap_err()
                .contains("expected type 'bool' but found 'string'")
        );
    }
}
