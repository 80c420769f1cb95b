//! CEL evaluation with kro's semantics (kro.md §6.4–§6.5): hand-made JSON ↔ CEL conversion
//! (integers stay `int`; a resource's `format: byte` fields, such as a Secret's `data`, are
//! bytes), and the split between "pending" (retry later) and real errors.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex};

use kube_cel::KubeCelExt;
use kube_cel::cel::common::ast::CallExpr;
use kube_cel::cel::objects::{Key, Map, OptionalValue};
use kube_cel::cel::{Context, ExecutionError, FunctionContext, ResolveResult, Value as Cel};
use serde_json::{Value, json};

use crate::kro_library::{self, KRO_LIBRARY_ERROR};
use crate::{cel_macros, celtype};

/// Why an expression gave no value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// The data is not there yet (a missing key, an unobserved resource): try again later.
    #[error("{0} (data pending)")]
    Pending(String),
    /// A real error: the expression cannot succeed on this data.
    #[error("{0}")]
    Failed(String),
}

/// JSON → CEL: integer literals are `int`, never `uint`.
pub fn to_cel(value: &Value) -> Cel {
    match value {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Cel::Int(i),
            None => Cel::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(items) => Cel::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(map) => {
            let converted: HashMap<Key, Cel> = map
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            Cel::Map(Map {
                map: Arc::new(converted),
            })
        }
    }
}

/// The `format: byte` fields of a kind's schema, as a tree of field names (`*` for map values
/// and list items). kro converts a resource to CEL through its kind's schema, so these fields
/// (a Secret's `data`, a ConfigMap's `binaryData`, webhook `caBundle`s) are base64-decoded
/// bytes in expressions: `string(secret.data.password)` is the password itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ByteFields {
    here: bool,
    children: BTreeMap<String, ByteFields>,
}

/// Byte fields by (apiVersion, kind); `None` for kinds without any.
type ByKind = BTreeMap<(String, String), Option<Arc<ByteFields>>>;

/// The key of map values and list items in [`ByteFields`].
const ANY_KEY: &str = "*";

impl ByteFields {
    /// The byte fields of `schema`; `None` when it has none.
    pub fn of(schema: &Value) -> Option<Self> {
        let mut fields = Self {
            here: schema.get("type").and_then(Value::as_str) == Some("string")
                && schema.get("format").and_then(Value::as_str) == Some("byte"),
            children: BTreeMap::new(),
        };
        for (name, child) in schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(inner) = Self::of(child) {
                fields.children.insert(name.clone(), inner);
            }
        }
        for key in ["additionalProperties", "items"] {
            if let Some(inner) = schema.get(key).filter(|s| s.is_object()).and_then(Self::of) {
                fields.children.insert(ANY_KEY.into(), inner);
            }
        }
        (fields.here || !fields.children.is_empty()).then_some(fields)
    }

    /// The byte fields of a built-in kind (cached; `None` when it has none or is unknown).
    pub fn of_kind(api_version: &str, kind: &str) -> Option<Arc<Self>> {
        static CACHE: LazyLock<Mutex<ByKind>> = LazyLock::new(|| Mutex::new(BTreeMap::new()));
        let key = (api_version.to_string(), kind.to_string());
        if let Ok(cache) = CACHE.lock()
            && let Some(known) = cache.get(&key)
        {
            return known.clone();
        }
        let fields = crate::kinds::schema(api_version, kind)
            .and_then(|schema| Self::of(&schema))
            .map(Arc::new);
        if let Ok(mut cache) = CACHE.lock() {
            cache.insert(key, fields.clone());
        }
        fields
    }

    fn child(&self, key: &str) -> Option<&Self> {
        self.children
            .get(key)
            .or_else(|| self.children.get(ANY_KEY))
    }
}

/// JSON → CEL through a kind's byte fields. A byte field that is not valid base64 stays a
/// string (kro makes it an error value that fails the expressions reading it).
fn to_cel_typed(value: &Value, bytes: Option<&ByteFields>) -> Cel {
    use base64::Engine as _;
    let Some(fields) = bytes else {
        return to_cel(value);
    };
    match value {
        Value::String(s) if fields.here => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_or_else(|_| to_cel(value), |b| Cel::Bytes(Arc::new(b))),
        Value::Array(items) => {
            let item = fields.child(ANY_KEY);
            Cel::List(Arc::new(
                items.iter().map(|v| to_cel_typed(v, item)).collect(),
            ))
        }
        Value::Object(map) => {
            let converted: HashMap<Key, Cel> = map
                .iter()
                .map(|(k, v)| {
                    (
                        Key::String(Arc::new(k.clone())),
                        to_cel_typed(v, fields.child(k)),
                    )
                })
                .collect();
            Cel::Map(Map {
                map: Arc::new(converted),
            })
        }
        other => to_cel(other),
    }
}

/// What expressions see: `schema` and the resources observed so far, each resource with the
/// byte fields of its kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Variables {
    values: BTreeMap<String, Value>,
    bytes: BTreeMap<String, Arc<ByteFields>>,
}

impl Variables {
    /// A variable taken as plain JSON (the instance as `schema`, a forEach iterator).
    pub fn insert(&mut self, name: impl Into<String>, value: Value) {
        let name = name.into();
        self.bytes.remove(&name);
        self.values.insert(name, value);
    }

    /// A resource, typed by its own `apiVersion` and `kind`.
    pub fn insert_resource(&mut self, name: impl Into<String>, object: Value) {
        let name = name.into();
        let text = |field: &str| {
            object
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        match ByteFields::of_kind(text("apiVersion"), text("kind")) {
            Some(fields) => {
                self.bytes.insert(name.clone(), fields);
            }
            None => {
                self.bytes.remove(&name);
            }
        }
        self.values.insert(name, object);
    }

    /// A collection's observed items, each typed by its own kind.
    pub fn insert_collection(&mut self, name: impl Into<String>, items: Vec<Value>) {
        let name = name.into();
        let text = |item: &Value, field: &str| {
            item.get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let item_fields = items
            .first()
            .and_then(|item| ByteFields::of_kind(&text(item, "apiVersion"), &text(item, "kind")));
        match item_fields {
            Some(fields) => {
                let list = ByteFields {
                    here: false,
                    children: BTreeMap::from([(ANY_KEY.to_string(), fields.as_ref().clone())]),
                };
                self.bytes.insert(name.clone(), Arc::new(list));
            }
            None => {
                self.bytes.remove(&name);
            }
        }
        self.values.insert(name, Value::Array(items));
    }

    /// Keeps the variables whose name passes `keep`.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.values.retain(|name, _| keep(name));
        self.bytes.retain(|name, _| keep(name));
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The JSON values by name.
    pub fn values(&self) -> &BTreeMap<String, Value> {
        &self.values
    }

    /// Evaluates `expression` over these variables.
    pub fn evaluate(&self, expression: &str) -> Result<Value, EvalError> {
        let result = evaluate_typed(expression, &self.values, &self.bytes)?;
        to_json(&result).map_err(EvalError::Failed)
    }

    /// [`Variables::evaluate`]; `None` when the value is kro's `omit()` sentinel.
    pub fn evaluate_omittable(&self, expression: &str) -> Result<Option<Value>, EvalError> {
        let result = evaluate_typed(expression, &self.values, &self.bytes)?;
        if kro_library::is_omit(&result) {
            return Ok(None);
        }
        to_json(&result).map(Some).map_err(EvalError::Failed)
    }

    /// [`Variables::evaluate`], and whether the CEL value held bytes anywhere (kro v0.9.3
    /// cannot write such a value into the instance status, see `graph::StatusError`).
    pub fn evaluate_noting_bytes(&self, expression: &str) -> Result<(Value, bool), EvalError> {
        let result = evaluate_typed(expression, &self.values, &self.bytes)?;
        let json = to_json(&result).map_err(EvalError::Failed)?;
        Ok((json, holds_bytes(&result)))
    }
}

fn holds_bytes(value: &Cel) -> bool {
    match value {
        Cel::Bytes(_) => true,
        Cel::List(items) => items.iter().any(holds_bytes),
        Cel::Map(map) => map.map.values().any(holds_bytes),
        Cel::Opaque(_) => unwrap_optional(value)
            .is_some_and(|inner| !matches!(inner, Cel::Opaque(_)) && holds_bytes(&inner)),
        _ => false,
    }
}

impl From<BTreeMap<String, Value>> for Variables {
    fn from(values: BTreeMap<String, Value>) -> Self {
        Self {
            values,
            bytes: BTreeMap::new(),
        }
    }
}

/// CEL → JSON: whole doubles lose their fraction; optional.none and null become `null`.
pub fn to_json(value: &Cel) -> Result<Value, String> {
    Ok(match value {
        Cel::Null => Value::Null,
        Cel::Bool(b) => json!(b),
        Cel::Int(i) => json!(i),
        Cel::UInt(u) => {
            json!(i64::try_from(*u).map_err(|_| format!("uint {u} does not fit an int64"))?)
        }
        Cel::Float(f) => crate::simpleschema::number(*f),
        Cel::String(s) => json!(s.as_str()),
        Cel::Bytes(b) => {
            use base64::Engine as _;
            json!(base64::engine::general_purpose::STANDARD.encode(b.as_slice()))
        }
        // `omit()` in a list or map removes the element, as kro cleans its sentinels.
        Cel::List(items) => Value::Array(
            items
                .iter()
                .filter(|v| !kro_library::is_omit(v))
                .map(to_json)
                .collect::<Result<_, _>>()?,
        ),
        Cel::Map(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map.map.iter().filter(|(_, v)| !kro_library::is_omit(v)) {
                let key = match k {
                    Key::String(s) => s.to_string(),
                    other => return Err(format!("map keys must be strings, got {other:?}")),
                };
                out.insert(key, to_json(v)?);
            }
            Value::Object(out)
        }
        Cel::Timestamp(t) => json!(t.to_rfc3339_opts(chrono_seconds(), true)),
        Cel::Duration(d) => json!(go_duration(d.num_seconds())),
        // A field set to `omit()` is removed by the caller (`render_value`); alone it is null.
        value if kro_library::is_omit(value) => Value::Null,
        Cel::Opaque(o) => {
            let any: &dyn std::any::Any = o.as_ref();
            match any.downcast_ref::<OptionalValue>() {
                // optional.none() is written as null, which the API server prunes.
                Some(optional) => optional.value().map_or(Ok(Value::Null), to_json)?,
                None => return Err(format!("cannot render a {} as JSON", o.runtime_type_name())),
            }
        }
        Cel::Function(name, _) => return Err(format!("function {name} is not a value")),
    })
}

fn chrono_seconds() -> chrono::SecondsFormat {
    chrono::SecondsFormat::Secs
}

fn go_duration(seconds: i64) -> String {
    let (h, m, s) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

fn classify(error: ExecutionError) -> EvalError {
    let text = error.to_string();
    match error {
        ExecutionError::FunctionError { function, message } if function == KRO_LIBRARY_ERROR => {
            EvalError::Failed(message)
        }
        ExecutionError::NoSuchKey(_)
        | ExecutionError::UndeclaredReference(_)
        | ExecutionError::IndexOutOfBounds(_) => EvalError::Pending(text),
        _ if text.contains("no such key")
            || text.contains("No such key")
            || text.contains("index out of bounds") =>
        {
            EvalError::Pending(text)
        }
        _ => EvalError::Failed(text),
    }
}

/// Receivers of namespaced functions (`base64.encode`, `optional.none`), not variables.
const FUNCTION_NAMESPACES: &[&str] = &[
    "optional", "base64", "strings", "lists", "math", "sets", "hash", "json", "random", "cel",
    "runtime",
];

const OPT_SELECT: &str = "__kro_optional_select__";
const OPT_INDEX: &str = "__kro_optional_index__";

/// The value inside an optional, `None` for `optional.none()`; non-optionals are themselves.
fn unwrap_optional(value: &Cel) -> Option<Cel> {
    if let Cel::Opaque(o) = value {
        let any: &dyn std::any::Any = o.as_ref();
        if let Some(optional) = any.downcast_ref::<OptionalValue>() {
            return optional.value().cloned();
        }
    }
    Some(value.clone())
}

fn optional(value: Option<Cel>) -> Cel {
    Cel::Opaque(Arc::new(
        value.map_or_else(OptionalValue::none, OptionalValue::of),
    ))
}

/// `x.?f`: none when `x` is none or null or has no key `f`.
fn optional_select(_: &FunctionContext, target: Cel, field: Cel) -> ResolveResult {
    let found = match (unwrap_optional(&target), field) {
        (Some(Cel::Map(map)), Cel::String(field)) => map.map.get(&Key::String(field)).cloned(),
        _ => None,
    };
    Ok(optional(found))
}

/// `x[?k]`: none when the key or index is absent.
fn optional_index(_: &FunctionContext, target: Cel, key: Cel) -> ResolveResult {
    let found = match (unwrap_optional(&target), key) {
        (Some(Cel::Map(map)), Cel::String(k)) => map.map.get(&Key::String(k)).cloned(),
        (Some(Cel::List(items)), Cel::Int(i)) => {
            usize::try_from(i).ok().and_then(|i| items.get(i).cloned())
        }
        _ => None,
    };
    Ok(optional(found))
}

/// Routes optional selection and indexing to this module's implementations (cel 0.13 treats a
/// missing key as an error or a present null).
fn rewrite_optional(call: &mut CallExpr) -> Result<(), String> {
    use kube_cel::cel::common::ast::operators;
    if call.func_name == operators::OPT_SELECT {
        call.func_name = OPT_SELECT.into();
    } else if call.func_name == operators::OPT_INDEX {
        call.func_name = OPT_INDEX.into();
    }
    Ok(())
}

/// Applies `visit` to every call of the expression, outermost first; the first error stops.
fn for_each_call(
    expr: &mut kube_cel::cel::IdedExpr,
    visit: &mut dyn FnMut(&mut CallExpr) -> Result<(), String>,
) -> Result<(), String> {
    use kube_cel::cel::common::ast::{EntryExpr, Expr};
    match &mut expr.expr {
        Expr::Call(call) => {
            visit(call)?;
            if let Some(target) = call.target.as_mut() {
                for_each_call(target, visit)?;
            }
            for arg in &mut call.args {
                for_each_call(arg, visit)?;
            }
        }
        Expr::Select(s) => for_each_call(&mut s.operand, visit)?,
        Expr::List(l) => {
            for element in &mut l.elements {
                for_each_call(element, visit)?;
            }
        }
        Expr::Map(m) => {
            for entry in &mut m.entries {
                match &mut entry.expr {
                    EntryExpr::MapEntry(e) => {
                        for_each_call(&mut e.key, visit)?;
                        for_each_call(&mut e.value, visit)?;
                    }
                    EntryExpr::StructField(f) => for_each_call(&mut f.value, visit)?,
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &mut s.entries {
                if let EntryExpr::StructField(f) = &mut entry.expr {
                    for_each_call(&mut f.value, visit)?;
                }
            }
        }
        Expr::Comprehension(c) => {
            for part in [
                &mut c.iter_range,
                &mut c.accu_init,
                &mut c.loop_cond,
                &mut c.loop_step,
                &mut c.result,
            ] {
                for_each_call(part, visit)?;
            }
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
    Ok(())
}

/// Evaluates an expression against named JSON values (absent names are unobserved resources).
pub fn evaluate(expression: &str, variables: &BTreeMap<String, Value>) -> Result<Value, EvalError> {
    let result = evaluate_cel(expression, variables)?;
    to_json(&result).map_err(EvalError::Failed)
}

/// [`evaluate`]; `None` when the value is kro's `omit()` sentinel (the field is removed).
pub fn evaluate_omittable(
    expression: &str,
    variables: &BTreeMap<String, Value>,
) -> Result<Option<Value>, EvalError> {
    Variables::from(variables.clone()).evaluate_omittable(expression)
}

/// [`evaluate`] before the conversion to JSON: the CEL value itself, for values JSON cannot
/// hold (maps with integer keys, which kro's own tests compare).
pub fn evaluate_cel(
    expression: &str,
    variables: &BTreeMap<String, Value>,
) -> Result<Cel, EvalError> {
    evaluate_typed(expression, variables, &BTreeMap::new())
}

fn evaluate_typed(
    expression: &str,
    variables: &BTreeMap<String, Value>,
    bytes: &BTreeMap<String, Arc<ByteFields>>,
) -> Result<Cel, EvalError> {
    let mut parsed = celtype::parse(expression).map_err(EvalError::Failed)?;
    // kro's runtime.newCondition macro runs at parse time: its keys are not references.
    for_each_call(&mut parsed, &mut kro_library::expand_new_condition)
        .map_err(EvalError::Failed)?;
    // An identifier with no value is a resource not observed yet: the expression waits.
    if let Some(missing) = celtype::identifiers(&parsed)
        .into_iter()
        .find(|id| !variables.contains_key(id) && !FUNCTION_NAMESPACES.contains(&id.as_str()))
    {
        return Err(EvalError::Pending(format!(
            "undeclared reference to '{missing}'"
        )));
    }
    for_each_call(&mut parsed, &mut rewrite_optional).map_err(EvalError::Failed)?;
    // With `omit()` in the expression, equality refuses the sentinel as kro's does.
    let mut uses_omit = false;
    for_each_call(&mut parsed, &mut |call| {
        uses_omit |= call.func_name == "omit" && call.target.is_none() && call.args.is_empty();
        Ok(())
    })
    .map_err(EvalError::Failed)?;
    if uses_omit {
        for_each_call(&mut parsed, &mut kro_library::route_omit_equality)
            .map_err(EvalError::Failed)?;
    }
    for_each_call(&mut parsed, &mut cel_macros::route_macro_call).map_err(EvalError::Failed)?;
    let mut context = Context::default().with_all();
    kro_library::register(&mut context);
    cel_macros::register(&mut context);
    context.add_function(OPT_SELECT, optional_select);
    context.add_function(OPT_INDEX, optional_index);
    for (name, value) in variables {
        context.add_variable_from_value(
            name.clone(),
            to_cel_typed(value, bytes.get(name).map(Arc::as_ref)),
        );
    }
    Cel::resolve(&parsed, &context).map_err(classify)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    /// [KRO-14] kro converts resources through their kind's schema: a Secret's `data` (and any
    /// `format: byte` field) is bytes, base64-decoded, and written back as base64; other kinds'
    /// strings stay strings.
    #[test]
    fn byte_fields_of_a_resource_are_bytes() {
        let mut v = Variables::default();
        v.insert_resource(
            "secret",
            json!({"apiVersion": "v1", "kind": "Secret", "data": {"password": "czNjcmV0"}}),
        );
        v.insert_resource(
            "cm",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"password": "czNjcmV0"},
                   "binaryData": {"blob": "AAE="}}),
        );
        assert_eq!(
            v.evaluate("string(secret.data.password)"),
            Ok(json!("s3cret"))
        );
        assert_eq!(v.evaluate("size(secret.data.password)"), Ok(json!(6)));
        assert_eq!(v.evaluate("secret.data.password"), Ok(json!("czNjcmV0")));
        assert_eq!(
            v.evaluate("secret.data.password == b's3cret'"),
            Ok(json!(true))
        );
        assert_eq!(v.evaluate("cm.data.password"), Ok(json!("czNjcmV0")));
        assert_eq!(v.evaluate("size(cm.binaryData.blob)"), Ok(json!(2)));
        // The same object as plain JSON (no kind) keeps the base64 text.
        v.insert("secret", json!({"data": {"password": "czNjcmV0"}}));
        assert_eq!(v.evaluate("secret.data.password"), Ok(json!("czNjcmV0")));
        assert!(
            v.evaluate("string(secret.data.password)")
                .is_ok_and(|s| s == "czNjcmV0")
        );
    }

    /// [KRO-EV] kro's value semantics and the pending/error split.
    #[test]
    fn evaluation_semantics() {
        let v = vars(&[
            ("schema", json!({"spec": {"replicas": 2, "name": "demo"}})),
            ("cm", json!({"data": {"ok": "yes"}})),
        ]);
        assert_eq!(evaluate("schema.spec.replicas + 1", &v), Ok(json!(3)));
        assert_eq!(
            evaluate("schema.spec.name + '-svc'", &v),
            Ok(json!("demo-svc"))
        );
        assert_eq!(
            evaluate("cm.data.?ok.orValue('') == 'yes'", &v),
            Ok(json!(true))
        );
        assert_eq!(evaluate("cm.?data.?missing.orValue(0)", &v), Ok(json!(0)));
        assert_eq!(
            evaluate("int(cm.?status.?availableReplicas.orValue(0)) > 0", &v),
            Ok(json!(false))
        );
        assert!(matches!(
            evaluate("cm.data.missing", &v),
            Err(EvalError::Pending(_))
        ));
        assert!(matches!(
            evaluate("deployment.spec", &v),
            Err(EvalError::Pending(_))
        ));
        assert!(matches!(
            evaluate("schema.spec.name + 1", &v),
            Err(EvalError::Failed(_))
        ));
        assert_eq!(evaluate("2.0 * 3.0", &v), Ok(json!(6)));
        assert_eq!(evaluate("{'a': [1, 'x']}", &v), Ok(json!({"a": [1, "x"]})));
        assert_eq!(evaluate("cm.data.?missing.orValue(0)", &v), Ok(json!(0)));
        assert_eq!(
            evaluate("cm.?data.?missing.hasValue()", &v),
            Ok(json!(false))
        );
        assert_eq!(evaluate("cm.?data.?missing", &v), Ok(Value::Null));
        assert_eq!(
            evaluate("cm.data[?'ok'].orValue('no')", &v),
            Ok(json!("yes"))
        );
        assert_eq!(evaluate("[1, 2][?5].orValue(9)", &v), Ok(json!(9)));
    }
}
