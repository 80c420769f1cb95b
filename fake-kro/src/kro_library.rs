//! kro v0.9.3's own CEL library (`pkg/cel/library`): `hash.*`, `json.*`, `lists.*AtIndex`,
//! `merge`, seeded `random.*` and `runtime.*`, with kro's results and error messages.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hasher as _;
use std::sync::Arc;

use kube_cel::cel::common::ast::{EntryExpr, Expr, LiteralValue};
use kube_cel::cel::objects::{Key, Map};
use kube_cel::cel::{Context, ExecutionError, ResolveResult, Value as Cel, extractors::This};
use md5::Digest as _;
use serde_json::Value;

use crate::eval::to_json;

/// The function name of the errors raised here: `eval` reports their message alone, as kro does.
pub(crate) const KRO_LIBRARY_ERROR: &str = "kro library";

/// The digits `random.seededString` draws from.
const SEEDED_STRING_ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// The keys a `runtime.newCondition` map literal may use, in kro's order.
const CONDITION_KEYS: [&str; 4] = ["type", "status", "reason", "message"];

fn kro_error(message: impl Into<String>) -> ExecutionError {
    ExecutionError::function_error(KRO_LIBRARY_ERROR, message.into())
}

/// kro's `omit()` sentinel (behind the `CELOmitFunction` gate, which admission enforces): the
/// field or list element it lands in is removed from the rendered object. It cannot be
/// compared or combined.
#[derive(Debug)]
pub struct Omit;

impl kube_cel::cel::objects::Opaque for Omit {
    fn runtime_type_name(&self) -> &str {
        "kro.omit"
    }
}

impl kube_cel::cel::objects::OpaqueEq for Omit {
    fn opaque_eq(&self, _other: &dyn kube_cel::cel::objects::Opaque) -> bool {
        false
    }
}

/// Whether a value is the `omit()` sentinel.
pub fn is_omit(value: &Cel) -> bool {
    match value {
        Cel::Opaque(o) => {
            let any: &dyn std::any::Any = o.as_ref();
            any.downcast_ref::<Omit>().is_some()
        }
        _ => false,
    }
}

fn omit() -> ResolveResult {
    Ok(Cel::Opaque(Arc::new(Omit)))
}

/// The name equality is routed to in expressions that use `omit()`.
pub(crate) const OMIT_AWARE_EQUALS: &str = "__kro_omit_equals__";
pub(crate) const OMIT_AWARE_NOT_EQUALS: &str = "__kro_omit_not_equals__";

fn omit_aware_equals(left: Cel, right: Cel) -> ResolveResult {
    if is_omit(&left) || is_omit(&right) {
        return Err(kro_error(
            "omit() is a field-removal sentinel and cannot be compared",
        ));
    }
    Ok(Cel::Bool(left == right))
}

fn omit_aware_not_equals(left: Cel, right: Cel) -> ResolveResult {
    omit_aware_equals(left, right).map(|eq| Cel::Bool(eq != Cel::Bool(true)))
}

/// Routes `==` and `!=` to the omit-aware evaluators.
pub(crate) fn route_omit_equality(
    call: &mut kube_cel::cel::common::ast::CallExpr,
) -> Result<(), String> {
    use kube_cel::cel::common::ast::operators;
    if call.func_name == operators::EQUALS {
        call.func_name = OMIT_AWARE_EQUALS.into();
    } else if call.func_name == operators::NOT_EQUALS {
        call.func_name = OMIT_AWARE_NOT_EQUALS.into();
    }
    Ok(())
}

/// Registers kro's library on an evaluation context.
pub fn register(context: &mut Context<'_>) {
    context.add_function("omit", omit);
    context.add_function(OMIT_AWARE_EQUALS, omit_aware_equals);
    context.add_function(OMIT_AWARE_NOT_EQUALS, omit_aware_not_equals);
    context.add_function("hash.fnv64a", hash_fnv64a);
    context.add_function("hash.sha256", hash_sha256);
    context.add_function("hash.md5", hash_md5);
    context.add_function("json.unmarshal", json_unmarshal);
    context.add_function("json.marshal", json_marshal);
    context.add_function("lists.setAtIndex", lists_set_at_index);
    context.add_function("lists.insertAtIndex", lists_insert_at_index);
    context.add_function("lists.removeAtIndex", lists_remove_at_index);
    context.add_function("merge", merge);
    context.add_function("random.seededString", random_seeded_string);
    context.add_function("random.seededInt", random_seeded_int);
    context.add_function("runtime.newCondition", runtime_new_condition);
    context.add_function("runtime.condition", runtime_condition);
}

fn bytes(digest: &[u8]) -> ResolveResult {
    Ok(Cel::Bytes(Arc::new(digest.to_vec())))
}

/// FNV-1a 64, big-endian as Go's `hash.Hash.Sum`.
fn hash_fnv64a(text: Arc<String>) -> ResolveResult {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(text.as_bytes());
    bytes(&hasher.finish().to_be_bytes())
}

fn hash_sha256(text: Arc<String>) -> ResolveResult {
    bytes(&sha2::Sha256::digest(text.as_bytes()))
}

fn hash_md5(text: Arc<String>) -> ResolveResult {
    bytes(&md5::Md5::digest(text.as_bytes()))
}

fn json_unmarshal(text: Arc<String>) -> ResolveResult {
    let parsed: Value = serde_json::from_str(&text).map_err(|e| {
        // Go's decoder words the commonest failure this way; other texts are serde's own.
        let reason = if e.is_eof() {
            "unexpected end of JSON input".to_string()
        } else {
            e.to_string()
        };
        kro_error(format!("json.unmarshal failed to parse JSON: {reason}"))
    })?;
    // kro's values are Go float64s, which cel-go compares equal to ints (`… .count == 42`). cel
    // 0.13 has no such heterogeneous equality, so whole numbers stay ints: those comparisons
    // agree with kro, where only int/double mixing arithmetic would differ.
    Ok(crate::eval::to_cel(&parsed))
}

/// Object keys sorted at every level, as Go's `json.Marshal` writes maps.
fn keys_sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, keys_sorted(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(keys_sorted).collect()),
        scalar => scalar,
    }
}

/// Go's `json.Marshal` escapes HTML-significant characters and the JavaScript line separators;
/// they only ever occur inside strings, so replacing them in the whole text is exact.
fn go_html_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            other => out.push(other),
        }
    }
    out
}

fn json_marshal(value: Cel) -> ResolveResult {
    let native = to_json(&value)
        .map_err(|e| kro_error(format!("json.marshal failed to convert value: {e}")))?;
    let text = serde_json::to_string(&keys_sorted(native))
        .map_err(|e| kro_error(format!("json.marshal failed to encode value: {e}")))?;
    Ok(Cel::String(Arc::new(go_html_escaped(&text))))
}

/// `index` as a position in a list of `size`: an element (`[0, size)`), or an insertion point
/// (`[0, size]`); outside, kro's bounds error for `function`.
fn checked_position(
    function: &str,
    index: i64,
    size: usize,
    insertion: bool,
) -> Result<usize, ExecutionError> {
    let (limit, close) = if insertion {
        (size + 1, ']')
    } else {
        (size, ')')
    };
    usize::try_from(index)
        .ok()
        .filter(|i| *i < limit)
        .ok_or_else(|| {
            kro_error(format!(
                "{function}: index {index} out of bounds [0, {size}{close}"
            ))
        })
}

fn lists_set_at_index(list: Arc<Vec<Cel>>, index: i64, value: Cel) -> ResolveResult {
    let position = checked_position("lists.setAtIndex", index, list.len(), false)?;
    let mut items = list.as_ref().clone();
    items[position] = value;
    Ok(Cel::List(Arc::new(items)))
}

fn lists_insert_at_index(list: Arc<Vec<Cel>>, index: i64, value: Cel) -> ResolveResult {
    let position = checked_position("lists.insertAtIndex", index, list.len(), true)?;
    let mut items = list.as_ref().clone();
    items.insert(position, value);
    Ok(Cel::List(Arc::new(items)))
}

fn lists_remove_at_index(list: Arc<Vec<Cel>>, index: i64) -> ResolveResult {
    let position = checked_position("lists.removeAtIndex", index, list.len(), false)?;
    let mut items = list.as_ref().clone();
    items.remove(position);
    Ok(Cel::List(Arc::new(items)))
}

/// `a.merge(b)`: every entry of both, `b`'s value where both have the key.
fn merge(This(target): This<Cel>, other: Cel) -> ResolveResult {
    match (target, other) {
        (Cel::Map(base), Cel::Map(overrides)) => {
            let mut merged = base.map.as_ref().clone();
            merged.extend(overrides.map.iter().map(|(k, v)| (k.clone(), v.clone())));
            Ok(Cel::Map(Map {
                map: Arc::new(merged),
            }))
        }
        (target, other) => Err(kro_error(format!(
            "no such overload: {}.merge({})",
            target.type_of(),
            other.type_of()
        ))),
    }
}

/// `random.seededString`: each character from four bytes of the seed's SHA-256. kro takes the
/// bytes at `4·i mod 32`, so the string repeats every eight characters — kept, as kro's names
/// depend on it.
fn random_seeded_string(length: i64, seed: Arc<String>) -> ResolveResult {
    let length = usize::try_from(length)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| kro_error("random.seededString length must be positive"))?;
    let digest = sha2::Sha256::digest(seed.as_bytes());
    let alphabet_size = u32::try_from(SEEDED_STRING_ALPHABET.len()).unwrap_or(u32::MAX);
    let text: String = (0..length)
        .map(|i| {
            let start = (i * 4) % digest.len();
            let word = u32::from_be_bytes([
                digest[start],
                digest[start + 1],
                digest[start + 2],
                digest[start + 3],
            ]);
            let index = usize::try_from(word % alphabet_size).unwrap_or_default();
            char::from(SEEDED_STRING_ALPHABET[index])
        })
        .collect();
    Ok(Cel::String(Arc::new(text)))
}

/// `random.seededInt(min, max, seed)`: `min + (first 8 bytes of SHA-256(seed)) mod (max − min)`,
/// with Go's wrapping integer arithmetic.
fn random_seeded_int(min: i64, max: i64, seed: Arc<String>) -> ResolveResult {
    if min >= max {
        return Err(kro_error("random.seededInt min must be less than max"));
    }
    let digest = sha2::Sha256::digest(seed.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let draw = u64::from_be_bytes(first);
    // Go converts the (positive) difference to uint64; the two's-complement cast is the same.
    #[allow(clippy::cast_sign_loss, clippy::cast_possible_wrap)]
    let offset = (draw % (max.wrapping_sub(min) as u64)) as i64;
    Ok(Cel::Int(min.wrapping_add(offset)))
}

fn condition_value(fields: [&str; 4]) -> Cel {
    let map: HashMap<Key, Cel> = CONDITION_KEYS
        .iter()
        .zip(fields)
        .map(|(key, value)| {
            (
                Key::String(Arc::new((*key).to_string())),
                Cel::String(Arc::new(value.to_string())),
            )
        })
        .collect();
    Cel::Map(Map { map: Arc::new(map) })
}

fn string_field<'a>(map: &'a Map, key: &str) -> Option<&'a Cel> {
    map.map.get(&Key::String(Arc::new(key.to_string())))
}

/// `runtime.newCondition({type: …, status: …, reason: …, message: …})` after
/// [`expand_new_condition`]: a condition (a map of its four strings).
fn runtime_new_condition(fields: Cel) -> ResolveResult {
    let Cel::Map(fields) = fields else {
        return Err(kro_error(format!(
            "runtime.newCondition: argument must be a map, got {}",
            fields.type_of()
        )));
    };
    let mut values = [""; 4];
    for (slot, key) in values.iter_mut().zip(CONDITION_KEYS) {
        match string_field(&fields, key) {
            None => {}
            Some(Cel::String(s)) => *slot = s.as_str(),
            Some(other) => {
                return Err(kro_error(format!(
                    "runtime.newCondition: {key} must be a string, got {}",
                    other.type_of()
                )));
            }
        }
    }
    let [kind, status, _, _] = values;
    if kind.is_empty() {
        return Err(kro_error("runtime.newCondition: type must not be empty"));
    }
    if !["True", "False", "Unknown"].contains(&status) {
        return Err(kro_error(format!(
            "runtime.newCondition: status must be one of True, False, Unknown (got {status:?})"
        )));
    }
    Ok(condition_value(values))
}

/// The condition of `type` in `obj.status.conditions`, or an empty condition.
fn runtime_condition(object: Cel, wanted: Arc<String>) -> ResolveResult {
    let Cel::Map(object) = object else {
        return Err(kro_error(format!(
            "runtime.condition: obj must be an object, got {}",
            object.type_of()
        )));
    };
    let Some(status) = string_field(&object, "status") else {
        return Ok(condition_value([""; 4]));
    };
    let Cel::Map(status) = status else {
        return Err(kro_error("runtime.condition: obj.status must be an object"));
    };
    let Some(conditions) = string_field(status, "conditions") else {
        return Ok(condition_value([""; 4]));
    };
    let Cel::List(conditions) = conditions else {
        return Err(kro_error(
            "runtime.condition: obj.status.conditions must be a list",
        ));
    };
    for condition in conditions.iter() {
        let Cel::Map(condition) = condition else {
            return Err(kro_error(format!(
                "runtime.condition: unexpected condition element type {}",
                condition.type_of()
            )));
        };
        // A field that is missing or not a string reads as empty, as kro's map conversion does.
        let text = |key: &str| match string_field(condition, key) {
            Some(Cel::String(s)) => s.as_str().to_string(),
            _ => String::new(),
        };
        if text("type") == wanted.as_str() {
            let fields = CONDITION_KEYS.map(text);
            return Ok(condition_value([
                &fields[0], &fields[1], &fields[2], &fields[3],
            ]));
        }
    }
    Ok(condition_value([""; 4]))
}

/// kro's `runtime.newCondition` macro: the argument must be a map literal whose keys are bare
/// identifiers among type/status/reason/message, each once, type and status present; the keys
/// become string literals. Other calls are left alone.
pub(crate) fn expand_new_condition(
    call: &mut kube_cel::cel::common::ast::CallExpr,
) -> Result<(), String> {
    let on_runtime = matches!(
        call.target.as_deref().map(|t| &t.expr),
        Some(Expr::Ident(name)) if name == "runtime"
    );
    if call.func_name != "newCondition" || !on_runtime || call.args.len() != 1 {
        return Ok(());
    }
    let Expr::Map(literal) = &mut call.args[0].expr else {
        return Err("runtime.newCondition: argument must be a map literal".into());
    };
    let mut seen = BTreeSet::new();
    for entry in &mut literal.entries {
        let EntryExpr::MapEntry(entry) = &mut entry.expr else {
            return Err("runtime.newCondition: argument must be a map literal".into());
        };
        let Expr::Ident(name) = &entry.key.expr else {
            return Err("runtime.newCondition: keys must be bare identifiers (type, status, reason, message); quoted or computed keys are not allowed".into());
        };
        let name = name.clone();
        if !CONDITION_KEYS.contains(&name.as_str()) {
            return Err(format!(
                "runtime.newCondition: unknown key {name:?} (allowed: type, status, reason, message)"
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(format!("runtime.newCondition: duplicate key {name:?}"));
        }
        entry.key.expr = Expr::Literal(LiteralValue::String(name.into()));
    }
    for required in ["type", "status"] {
        if !seen.contains(required) {
            return Err(format!("runtime.newCondition: '{required}' is required"));
        }
    }
    Ok(())
}
