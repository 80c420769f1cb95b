//! The cel-go macros kro's environment enables and cel 0.13 does not expand: `cel.bind` and the
//! two-variable comprehensions (`transformList`, `transformMap`, `transformMapEntry`, and `all`,
//! `exists`, `existsOne` over index/key and value), evaluated with kro's results.

use std::collections::HashMap;
use std::sync::Arc;

use kube_cel::cel::common::ast::{CallExpr, Expr};
use kube_cel::cel::objects::{Key, Map};
use kube_cel::cel::{
    Context, ExecutionError, FunctionContext, IdedExpr, ResolveResult, Value as Cel,
};

use crate::kro_library::KRO_LIBRARY_ERROR;

const BIND: &str = "__kro_cel_bind__";
const TRANSFORM_LIST: &str = "__kro_transform_list__";
const TRANSFORM_MAP: &str = "__kro_transform_map__";
const TRANSFORM_MAP_ENTRY: &str = "__kro_transform_map_entry__";
const ALL: &str = "__kro_all_two_variables__";
const EXISTS: &str = "__kro_exists_two_variables__";
const EXISTS_ONE: &str = "__kro_exists_one_two_variables__";

fn macro_error(message: impl Into<String>) -> ExecutionError {
    ExecutionError::function_error(KRO_LIBRARY_ERROR, message.into())
}

/// Registers the evaluators of the calls [`route_macro_call`] renames.
pub fn register(context: &mut Context<'_>) {
    context.add_function(BIND, bind);
    context.add_function(TRANSFORM_LIST, transform_list);
    context.add_function(TRANSFORM_MAP, transform_map);
    context.add_function(TRANSFORM_MAP_ENTRY, transform_map_entry);
    context.add_function(ALL, all);
    context.add_function(EXISTS, exists);
    context.add_function(EXISTS_ONE, exists_one);
}

fn is_ident(expr: &IdedExpr) -> bool {
    matches!(expr.expr, Expr::Ident(_))
}

/// Renames a macro call to its evaluator (cel 0.13 would call its own one-variable `all` or
/// fail on the unknown names); other calls are left alone.
pub(crate) fn route_macro_call(call: &mut CallExpr) -> Result<(), String> {
    let on_cel = matches!(
        call.target.as_deref().map(|t| &t.expr),
        Some(Expr::Ident(name)) if name == "cel"
    );
    let binders = |count: usize| call.args.iter().take(count).all(is_ident);
    let evaluator = match (call.func_name.as_str(), call.args.len()) {
        ("bind", 3) if on_cel && binders(1) => {
            // `cel` is a namespace, not a value the evaluator could resolve.
            call.target = None;
            BIND
        }
        _ if call.target.is_none() || !binders(2) => return Ok(()),
        ("transformList", 3 | 4) => TRANSFORM_LIST,
        ("transformMap", 3 | 4) => TRANSFORM_MAP,
        ("transformMapEntry", 3 | 4) => TRANSFORM_MAP_ENTRY,
        ("all", 3) => ALL,
        ("exists", 3) => EXISTS,
        ("existsOne" | "exists_one", 3) => EXISTS_ONE,
        _ => return Ok(()),
    };
    call.func_name = evaluator.into();
    Ok(())
}

fn ident_name(expr: &IdedExpr) -> Result<String, ExecutionError> {
    match &expr.expr {
        Expr::Ident(name) => Ok(name.clone()),
        _ => Err(macro_error("argument must be a simple name")),
    }
}

/// `cel.bind(name, init, body)`: `body` with `name` bound to `init`'s value.
fn bind(ftx: &FunctionContext) -> ResolveResult {
    let [name, init, body] = ftx.args else {
        return Err(macro_error(
            "cel.bind takes a name, a value and an expression",
        ));
    };
    let value = ftx.ptx.resolve(init)?;
    let mut scope = ftx.ptx.new_inner_scope();
    scope.add_variable_from_value(ident_name(name)?, value);
    scope.resolve(body)
}

fn key_value(key: &Key) -> Cel {
    match key {
        Key::Int(i) => Cel::Int(*i),
        Key::Uint(u) => Cel::UInt(*u),
        Key::Bool(b) => Cel::Bool(*b),
        Key::String(s) => Cel::String(s.clone()),
    }
}

/// The (index or key, value) pairs of the receiver: lists in order, maps by key (cel 0.13's
/// maps have no order; sorted keys make the result reproducible).
fn pairs(ftx: &FunctionContext) -> Result<Vec<(Cel, Cel)>, ExecutionError> {
    match &ftx.this {
        Some(Cel::List(items)) => Ok(items
            .iter()
            .enumerate()
            .map(|(i, v)| (Cel::Int(i64::try_from(i).unwrap_or(i64::MAX)), v.clone()))
            .collect()),
        Some(Cel::Map(map)) => {
            let mut entries: Vec<(&Key, &Cel)> = map.map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Ok(entries
                .into_iter()
                .map(|(k, v)| (key_value(k), v.clone()))
                .collect())
        }
        Some(other) => Err(macro_error(format!(
            "no such overload: {}.{}",
            other.type_of(),
            ftx.name
        ))),
        None => Err(ExecutionError::MissingArgumentOrTarget),
    }
}

/// One step of a two-variable macro: whether the filter (if any) admits the pair, and the
/// body's value when it does.
fn step(ftx: &FunctionContext, first: &Cel, second: &Cel) -> Result<Option<Cel>, ExecutionError> {
    let (names, rest) = ftx.args.split_at(2.min(ftx.args.len()));
    let ([first_name, second_name], Some((body, filter))) = (names, rest.split_last()) else {
        return Err(ExecutionError::MissingArgumentOrTarget);
    };
    let mut scope = ftx.ptx.new_inner_scope();
    scope.add_variable_from_value(ident_name(first_name)?, first.clone());
    scope.add_variable_from_value(ident_name(second_name)?, second.clone());
    if let Some(filter) = filter.first() {
        match scope.resolve(filter)? {
            Cel::Bool(true) => {}
            Cel::Bool(false) => return Ok(None),
            other => {
                return Err(macro_error(format!(
                    "no such overload: filter returned {}",
                    other.type_of()
                )));
            }
        }
    }
    scope.resolve(body).map(Some)
}

fn transform_list(ftx: &FunctionContext) -> ResolveResult {
    let mut out = Vec::new();
    for (first, second) in pairs(ftx)? {
        out.extend(step(ftx, &first, &second)?);
    }
    Ok(Cel::List(Arc::new(out)))
}

fn map_key(value: Cel) -> Result<Key, ExecutionError> {
    value
        .try_into()
        .map_err(|v: Cel| macro_error(format!("unsupported map key type: {}", v.type_of())))
}

fn transform_map(ftx: &FunctionContext) -> ResolveResult {
    let mut out = HashMap::new();
    for (first, second) in pairs(ftx)? {
        if let Some(value) = step(ftx, &first, &second)? {
            out.insert(map_key(first)?, value);
        }
    }
    Ok(Cel::Map(Map { map: Arc::new(out) }))
}

/// Each body is a map of entries to add; a key given twice is cel-go's insert error.
fn transform_map_entry(ftx: &FunctionContext) -> ResolveResult {
    let mut out: HashMap<Key, Cel> = HashMap::new();
    for (first, second) in pairs(ftx)? {
        match step(ftx, &first, &second)? {
            None => {}
            Some(Cel::Map(entries)) => {
                for (key, value) in entries.map.iter() {
                    if out.insert(key.clone(), value.clone()).is_some() {
                        return Err(macro_error(format!(
                            "insert failed: key {} already exists",
                            display_key(key)
                        )));
                    }
                }
            }
            Some(other) => {
                return Err(macro_error(format!(
                    "transformMapEntry: expression must return a map, got {}",
                    other.type_of()
                )));
            }
        }
    }
    Ok(Cel::Map(Map { map: Arc::new(out) }))
}

fn display_key(key: &Key) -> String {
    match key {
        Key::Int(i) => i.to_string(),
        Key::Uint(u) => u.to_string(),
        Key::Bool(b) => b.to_string(),
        Key::String(s) => s.to_string(),
    }
}

/// The predicate's value on every pair, in order.
fn predicate_results(ftx: &FunctionContext) -> Result<Vec<bool>, ExecutionError> {
    pairs(ftx)?
        .iter()
        .map(|(first, second)| match step(ftx, first, second)? {
            Some(Cel::Bool(b)) => Ok(b),
            other => Err(macro_error(format!(
                "no such overload: predicate returned {}",
                other.map_or_else(|| "nothing".to_string(), |v| v.type_of().to_string())
            ))),
        })
        .collect()
}

fn all(ftx: &FunctionContext) -> ResolveResult {
    Ok(Cel::Bool(predicate_results(ftx)?.into_iter().all(|b| b)))
}

fn exists(ftx: &FunctionContext) -> ResolveResult {
    Ok(Cel::Bool(predicate_results(ftx)?.into_iter().any(|b| b)))
}

fn exists_one(ftx: &FunctionContext) -> ResolveResult {
    Ok(Cel::Bool(
        predicate_results(ftx)?.into_iter().filter(|b| *b).count() == 1,
    ))
}
