//! Server-side apply and managedFields: field sets in FieldsV1 form, ownership by manager,
//! conflicts, removal of fields a manager stopped applying, and Update-operation tracking.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use serde_json::{Map, Value, json};

/// One owned position: a chain of FieldsV1 keys (`f:spec`, `k:{"name":"a"}`, `v:"x"`, `.`).
pub type FieldPath = Vec<String>;
pub type FieldSet = BTreeSet<FieldPath>;

/// Merge topology of objects that have no schema: `metadata` maps granular, finalizers a set,
/// ownerReferences a map keyed by uid; other objects granular, other lists atomic.
static METADATA_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    json!({"type": "object", "properties": {
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["uid"],
            "items": {"type": "object"}}
    }})
});

/// The metadata fields field management tracks (kube-apiserver strips name, namespace, uid,
/// resourceVersion, generation, creationTimestamp, selfLink and managedFields; a
/// `generateName` the writer sent is its own).
const TRACKED_METADATA: &[&str] = &[
    "generateName",
    "labels",
    "annotations",
    "finalizers",
    "ownerReferences",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Topology<'a> {
    Object(Option<&'a Value>),
    AtomicMap,
    AtomicList,
    SetList,
    MapList(&'a Value),
    Scalar,
}

fn topology<'a>(schema: Option<&'a Value>, value: &Value) -> Topology<'a> {
    match value {
        Value::Object(_) => {
            if schema
                .and_then(|s| s.get("x-kubernetes-map-type"))
                .and_then(Value::as_str)
                == Some("atomic")
            {
                Topology::AtomicMap
            } else {
                Topology::Object(schema)
            }
        }
        Value::Array(_) => match schema
            .and_then(|s| s.get("x-kubernetes-list-type"))
            .and_then(Value::as_str)
        {
            Some("set") => Topology::SetList,
            Some("map") => schema.map_or(Topology::AtomicList, Topology::MapList),
            _ => Topology::AtomicList,
        },
        _ => Topology::Scalar,
    }
}

fn child_schema<'a>(schema: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    let schema = schema?;
    schema
        .get("properties")
        .and_then(|p| p.get(key))
        .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))
}

fn map_keys(schema: &Value) -> Vec<String> {
    schema
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|k| {
            k.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `k:{"name":"a"}` for a list-map item.
fn item_key(item: &Value, keys: &[String]) -> String {
    let mut fields = BTreeMap::new();
    for key in keys {
        if let Some(v) = item.get(key) {
            fields.insert(key.clone(), v.clone());
        }
    }
    format!("k:{}", serde_json::to_string(&fields).unwrap_or_default())
}

fn set_key(item: &Value) -> String {
    format!("v:{}", serde_json::to_string(item).unwrap_or_default())
}

/// The management schema of objects without a schema (the built-in kinds).
static UNTYPED_SCHEMA: LazyLock<Value> = LazyLock::new(|| with_metadata(json!({"type": "object"})));

/// The root schema used for field management: the CRD schema (if any) with the metadata
/// topology merged in.
pub fn management_schema(schema: Option<&Value>) -> std::borrow::Cow<'static, Value> {
    match schema {
        None => std::borrow::Cow::Borrowed(&*UNTYPED_SCHEMA),
        Some(schema) => std::borrow::Cow::Owned(with_metadata(schema.clone())),
    }
}

fn with_metadata(mut root: Value) -> Value {
    if let Some(object) = root.as_object_mut() {
        let properties = object.entry("properties").or_insert_with(|| json!({}));
        properties["metadata"] = METADATA_SCHEMA.clone();
    }
    root
}

/// The field set of an object: every leaf it sets, with list-map items owned as nodes.
pub fn fields_of(object: &Value, schema: &Value) -> FieldSet {
    let mut set = FieldSet::new();
    let Some(map) = object.as_object() else {
        return set;
    };
    for (key, value) in map {
        match key.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => {
                if let Some(metadata) = value.as_object() {
                    for field in TRACKED_METADATA {
                        if let Some(v) = metadata.get(*field) {
                            let s = child_schema(Some(&METADATA_SCHEMA), field);
                            collect(
                                v,
                                s,
                                vec!["f:metadata".into(), format!("f:{field}")],
                                &mut set,
                            );
                        }
                    }
                }
            }
            _ => collect(
                value,
                child_schema(Some(schema), key),
                vec![format!("f:{key}")],
                &mut set,
            ),
        }
    }
    set
}

fn collect(value: &Value, schema: Option<&Value>, path: FieldPath, set: &mut FieldSet) {
    match (topology(schema, value), value) {
        (Topology::Object(s), Value::Object(map)) if !map.is_empty() => {
            for (key, child) in map {
                let mut child_path = path.clone();
                child_path.push(format!("f:{key}"));
                collect(child, child_schema(s, key), child_path, set);
            }
        }
        (Topology::SetList, Value::Array(items)) if !items.is_empty() => {
            for item in items {
                let mut item_path = path.clone();
                item_path.push(set_key(item));
                set.insert(item_path);
            }
        }
        (Topology::MapList(s), Value::Array(items)) if !items.is_empty() => {
            let keys = map_keys(s);
            let item_schema = s.get("items");
            for item in items {
                let mut item_path = path.clone();
                item_path.push(item_key(item, &keys));
                let mut own = item_path.clone();
                own.push(".".into());
                set.insert(own);
                collect(item, item_schema, item_path, set);
            }
        }
        _ => {
            set.insert(path);
        }
    }
}

/// The value at a field path, if present.
pub fn value_at<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut node = object;
    for element in path {
        node = step(node, element)?;
    }
    Some(node)
}

fn step<'a>(node: &'a Value, element: &str) -> Option<&'a Value> {
    if element == "." {
        return Some(node);
    }
    if let Some(field) = element.strip_prefix("f:") {
        return node.get(field);
    }
    let items = node.as_array()?;
    if let Some(key) = element.strip_prefix("k:") {
        let wanted: Map<String, Value> = serde_json::from_str(key).ok()?;
        return items
            .iter()
            .find(|item| wanted.iter().all(|(k, v)| item.get(k) == Some(v)));
    }
    if let Some(value) = element.strip_prefix("v:") {
        let wanted: Value = serde_json::from_str(value).ok()?;
        return items.iter().find(|item| **item == wanted);
    }
    None
}

/// Removes the value at a field path (a whole list item for `.` and `v:` paths).
fn remove_at(object: &mut Value, path: &[String]) {
    let path: Vec<&String> = path.iter().filter(|e| e.as_str() != ".").collect();
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = object;
    for element in parents {
        let next = match element.strip_prefix("f:") {
            Some(field) => node.get_mut(field),
            None => {
                let index = node.as_array().and_then(|items| position(items, element));
                match (index, node.as_array_mut()) {
                    (Some(i), Some(items)) => items.get_mut(i),
                    _ => None,
                }
            }
        };
        match next {
            Some(n) => node = n,
            None => return,
        }
    }
    if let Some(field) = last.strip_prefix("f:") {
        if let Some(map) = node.as_object_mut() {
            map.remove(field);
        }
    } else if let Some(items) = node.as_array_mut()
        && let Some(i) = position(items, last)
    {
        items.remove(i);
    }
}

fn position(items: &[Value], element: &str) -> Option<usize> {
    if let Some(key) = element.strip_prefix("k:") {
        let wanted: Map<String, Value> = serde_json::from_str(key).ok()?;
        return items
            .iter()
            .position(|item| wanted.iter().all(|(k, v)| item.get(k) == Some(v)));
    }
    let wanted: Value = serde_json::from_str(element.strip_prefix("v:")?).ok()?;
    items.iter().position(|item| *item == wanted)
}

/// FieldsV1 JSON of a field set.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for element in path {
            let entry = node.entry(element.clone()).or_insert_with(|| json!({}));
            match entry.as_object_mut() {
                Some(next) => node = next,
                None => break,
            }
        }
    }
    Value::Object(root)
}

/// The field set of FieldsV1 JSON.
pub fn from_fields_v1(fields: &Value) -> FieldSet {
    let mut set = FieldSet::new();
    fn walk(node: &Value, path: &mut FieldPath, set: &mut FieldSet) {
        match node.as_object() {
            Some(map) if !map.is_empty() => {
                for (key, child) in map {
                    path.push(key.clone());
                    walk(child, path, set);
                    path.pop();
                }
            }
            _ => {
                if !path.is_empty() {
                    set.insert(path.clone());
                }
            }
        }
    }
    walk(fields, &mut Vec::new(), &mut set);
    set
}

/// One managedFields entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: String,
    pub fields: FieldSet,
}

impl Entry {
    fn same_slot(
        &self,
        manager: &str,
        operation: &str,
        api_version: &str,
        subresource: &str,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource == subresource
            && (operation == "Apply" || self.api_version == api_version)
    }

    fn to_json(&self) -> Value {
        let mut entry = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(&self.fields),
        });
        if !self.subresource.is_empty() {
            entry["subresource"] = json!(self.subresource);
        }
        entry
    }
}

/// The managedFields of an object.
pub fn entries(object: &Value) -> Vec<Entry> {
    let text = |e: &Value, k: &str| {
        e.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|e| Entry {
                    manager: text(e, "manager"),
                    operation: text(e, "operation"),
                    api_version: text(e, "apiVersion"),
                    time: text(e, "time"),
                    subresource: text(e, "subresource"),
                    fields: e.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// kube-apiserver's order of managedFields entries: by operation (`Apply` before `Update`),
/// then time to the second, manager, apiVersion, subresource.
fn entry_order(entry: &Entry) -> (&str, &str, &str, &str, &str) {
    // RFC 3339 with a `Z`: the first 19 characters compare as the time to the second.
    let seconds = entry.time.get(..19).unwrap_or(&entry.time);
    (
        &entry.operation,
        seconds,
        &entry.manager,
        &entry.api_version,
        &entry.subresource,
    )
}

/// Writes managedFields back in kube-apiserver's order, dropping entries that own nothing.
pub fn set_entries(object: &mut Value, entries: &[Entry]) {
    let mut kept: Vec<&Entry> = entries.iter().filter(|e| !e.fields.is_empty()).collect();
    kept.sort_by(|a, b| entry_order(a).cmp(&entry_order(b)));
    let list: Vec<Value> = kept.into_iter().map(Entry::to_json).collect();
    let Some(root) = object.as_object_mut() else {
        return;
    };
    if !list.is_empty() && !root.get("metadata").is_some_and(Value::is_object) {
        root.insert("metadata".into(), json!({}));
    }
    if let Some(metadata) = root.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            metadata.remove("managedFields");
        } else {
            metadata.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// The part of an object a subresource manages: only `status` for `/status`, everything but
/// `status` on the main resource when a status subresource exists.
pub fn scope(set: FieldSet, subresource: &str, has_status_subresource: bool) -> FieldSet {
    set.into_iter()
        .filter(|path| {
            let is_status = path.first().map(String::as_str) == Some("f:status");
            match subresource {
                "status" => is_status,
                _ => !(has_status_subresource && is_status),
            }
        })
        .collect()
}

/// Who writes, through which API version and subresource, and when.
#[derive(Clone, Copy, Debug)]
pub struct Writer<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub subresource: &'a str,
    /// Whether the kind has a status subresource (then the main resource never owns status).
    pub has_status_subresource: bool,
    pub now: &'a str,
}

/// Records a non-apply write: the writer takes the fields it changed; others lose them.
pub fn record_update(old: Option<&Value>, new: &mut Value, schema: &Value, writer: Writer<'_>) {
    let Writer {
        manager,
        api_version,
        subresource,
        has_status_subresource,
        now,
    } = writer;
    // managedFields the request sets itself (kubectl's CSA → SSA migration sends a JSON patch
    // of /metadata/managedFields) replace the stored ones; requests that leave them alone
    // carry the stored ones.
    let mut list = match new.pointer("/metadata/managedFields") {
        Some(Value::Array(_)) => entries(new),
        _ => old.map(entries).unwrap_or_default(),
    };
    let new_fields = scope(
        with_self_members(fields_of(new, schema)),
        subresource,
        has_status_subresource,
    );
    let changed: FieldSet = match old {
        None => new_fields.clone(),
        Some(old) => {
            let old_fields = scope(
                with_self_members(fields_of(old, schema)),
                subresource,
                has_status_subresource,
            );
            // A container's own member (`.`) changes only when the container appears or goes;
            // a container that was there empty or null (a leaf of the old object) was not
            // created by this write.
            let mut changed: FieldSet = new_fields
                .iter()
                .filter(|p| match p.split_last() {
                    Some((last, container)) if last == "." => {
                        !old_fields.contains(*p) && !old_fields.contains(container)
                    }
                    _ => !old_fields.contains(*p) || value_at(old, p) != value_at(new, p),
                })
                .cloned()
                .collect();
            // Removed: old fields the new object lacks, except empty containers it filled.
            changed.extend(
                old_fields
                    .difference(&new_fields)
                    .filter(|gone| !new_fields.iter().any(|p| p.starts_with(gone)))
                    .cloned(),
            );
            changed
        }
    };
    if changed.is_empty() {
        set_entries(new, &list);
        return;
    }
    for entry in &mut list {
        if entry.subresource == subresource
            || subresource.is_empty()
            || entry.subresource.is_empty()
        {
            entry.fields.retain(|p| !changed.contains(p));
        }
    }
    let owned: FieldSet = changed.intersection(&new_fields).cloned().collect();
    match list
        .iter_mut()
        .find(|e| e.same_slot(manager, "Update", api_version, subresource))
    {
        Some(entry) => {
            entry.fields.extend(owned);
            entry.time = now.into();
        }
        None => list.push(Entry {
            manager: manager.into(),
            operation: "Update".into(),
            api_version: api_version.into(),
            time: now.into(),
            subresource: subresource.into(),
            fields: owned,
        }),
    }
    set_entries(new, &list);
}

/// The field set of an Update as structured-merge-diff computes it: every container (map,
/// struct, list) under a tracked field is a member itself, written `.` in FieldsV1, so the
/// manager that creates `labels` owns `f:labels/.` as well as each label (`metadata` is never
/// created by a request and has none).
fn with_self_members(set: FieldSet) -> FieldSet {
    let mut out = set.clone();
    for path in &set {
        for end in 1..path.len() {
            let prefix = &path[..end];
            if prefix == ["f:metadata"] || path[end] == "." {
                continue;
            }
            let mut own = prefix.to_vec();
            own.push(".".into());
            out.insert(own);
        }
    }
    out
}

/// A field owned by another manager with a different live value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    pub path: String,
}

/// `.spec.containers[name="a"].image`-style rendering of a field path.
pub fn render_path(path: &[String]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(field) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(field);
        } else if let Some(key) = element.strip_prefix("k:") {
            let fields: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
            let rendered: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", rendered.join(",")));
        } else if let Some(value) = element.strip_prefix("v:") {
            out.push_str(&format!("[={value}]"));
        }
    }
    out
}

/// The result of an apply: the merged object (managedFields set) or the conflicts.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    schema: &Value,
    writer: Writer<'_>,
    force: bool,
) -> Result<Value, Vec<(Conflict, String)>> {
    let Writer {
        manager,
        api_version,
        subresource,
        has_status_subresource,
        now,
    } = writer;
    let applied_fields = scope(
        fields_of(applied, schema),
        subresource,
        has_status_subresource,
    );
    let mut list = live.map(entries).unwrap_or_default();
    let empty = json!({});
    let live_object = live.unwrap_or(&empty);

    let mut conflicts = Vec::new();
    for entry in &list {
        if entry.manager == manager && entry.operation == "Apply"
            || entry.subresource != subresource
        {
            continue;
        }
        for path in entry.fields.intersection(&applied_fields) {
            if path.last().map(String::as_str) == Some(".") {
                continue;
            }
            if value_at(live_object, path) != value_at(applied, path) {
                // kube-apiserver 1.36: the manager, its subresource, and for an Update entry
                // the apiVersion (the manager identifier it prints carries no time).
                let mut who = format!("\"{}\"", entry.manager);
                if !entry.subresource.is_empty() {
                    who.push_str(&format!(" with subresource \"{}\"", entry.subresource));
                }
                if entry.operation != "Apply" {
                    who.push_str(&format!(" using {}", entry.api_version));
                }
                conflicts.push((
                    Conflict {
                        manager: entry.manager.clone(),
                        path: render_path(path),
                    },
                    who,
                ));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }

    let previous: FieldSet = list
        .iter()
        .find(|e| e.same_slot(manager, "Apply", api_version, subresource))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    // Forcing (or agreeing on the value) moves or shares ownership.
    for entry in &mut list {
        if entry.subresource != subresource
            || (entry.manager == manager && entry.operation == "Apply")
        {
            continue;
        }
        if force {
            entry.fields.retain(|p| !applied_fields.contains(p));
        }
    }
    let others: FieldSet = list
        .iter()
        .filter(|e| {
            !(e.manager == manager && e.operation == "Apply" && e.subresource == subresource)
        })
        .flat_map(|e| e.fields.iter().cloned())
        .collect();

    let mut merged = live_object.clone();
    let mut removed: Vec<&FieldPath> = previous.difference(&applied_fields).collect();
    removed.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for path in removed {
        let item_prefix: Vec<String> = path.iter().filter(|e| e.as_str() != ".").cloned().collect();
        let still_owned = others.iter().any(|o| o.starts_with(&item_prefix))
            || applied_fields.iter().any(|a| a.starts_with(&item_prefix));
        if !still_owned {
            remove_at(&mut merged, path);
            drop_empty_parents(&mut merged, &item_prefix, &others, &applied_fields);
        }
    }
    merge_into(&mut merged, applied, Some(schema), true);
    // kube-apiserver stamps the applier's entry only when the apply changed the object: an
    // apply that changes nothing keeps the old time, so the entries keep their order and the
    // write stays a no-op.
    let object_changed = live.is_none_or(|live| !same_except_managed_fields(live, &merged));

    match list
        .iter_mut()
        .find(|e| e.same_slot(manager, "Apply", api_version, subresource))
    {
        Some(entry) => {
            entry.fields = applied_fields;
            entry.api_version = api_version.into();
            if object_changed {
                entry.time = now.into();
            }
        }
        None => list.push(Entry {
            manager: manager.into(),
            operation: "Apply".into(),
            api_version: api_version.into(),
            time: now.into(),
            subresource: subresource.into(),
            fields: applied_fields,
        }),
    }
    set_entries(&mut merged, &list);
    Ok(merged)
}

/// Whether two objects are equal apart from their managedFields.
fn same_except_managed_fields(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let metadata_equal = match (a.get("metadata"), b.get("metadata")) {
        (Some(Value::Object(ma)), Some(Value::Object(mb))) => {
            let without = |m: &Map<String, Value>| {
                m.iter()
                    .filter(|(k, _)| k.as_str() != "managedFields")
                    .count()
            };
            without(ma) == without(mb)
                && ma
                    .iter()
                    .filter(|(k, _)| k.as_str() != "managedFields")
                    .all(|(k, v)| mb.get(k) == Some(v))
        }
        (ma, mb) => ma == mb,
    };
    metadata_equal
        && a.len() == b.len()
        && a.iter()
            .filter(|(k, _)| k.as_str() != "metadata")
            .all(|(k, v)| b.get(k) == Some(v))
}

/// After a removal, removes parent objects left empty that nobody owns anything under.
fn drop_empty_parents(object: &mut Value, path: &[String], others: &FieldSet, applied: &FieldSet) {
    for depth in (1..path.len()).rev() {
        let parent = &path[..depth];
        if !parent.iter().all(|e| e.starts_with("f:")) {
            return;
        }
        let empty =
            value_at(object, parent).is_some_and(|v| v.as_object().is_some_and(Map::is_empty));
        let owned = others
            .iter()
            .chain(applied.iter())
            .any(|p| p.starts_with(parent));
        if empty && !owned {
            remove_at(object, parent);
        } else {
            return;
        }
    }
}

/// Merges an applied configuration into the live object following the schema's topology.
fn merge_into(live: &mut Value, applied: &Value, schema: Option<&Value>, root: bool) {
    match (topology(schema, applied), applied) {
        (Topology::Object(s), Value::Object(fields)) => {
            if !live.is_object() {
                *live = json!({});
            }
            let Some(target) = live.as_object_mut() else {
                return;
            };
            for (key, value) in fields {
                let child = if root && key == "metadata" {
                    Some(&*METADATA_SCHEMA)
                } else {
                    child_schema(s, key)
                };
                merge_into(
                    target.entry(key.clone()).or_insert(Value::Null),
                    value,
                    child,
                    false,
                );
            }
        }
        (Topology::SetList, Value::Array(items)) => {
            let mut current = live.as_array().cloned().unwrap_or_default();
            for item in items {
                if !current.contains(item) {
                    current.push(item.clone());
                }
            }
            *live = Value::Array(current);
        }
        (Topology::MapList(s), Value::Array(items)) => {
            let keys = map_keys(s);
            let mut current = live.as_array().cloned().unwrap_or_default();
            for item in items {
                let key = item_key(item, &keys);
                match current.iter_mut().find(|c| item_key(c, &keys) == key) {
                    Some(existing) => merge_into(existing, item, s.get("items"), false),
                    None => current.push(item.clone()),
                }
            }
            *live = Value::Array(current);
        }
        _ => *live = applied.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(manager: &str) -> Writer<'_> {
        Writer {
            manager,
            api_version: "v1",
            subresource: "",
            has_status_subresource: false,
            now: "t",
        }
    }

    fn schema() -> Value {
        management_schema(Some(&json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                          "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "args": {"type": "array", "items": {"type": "string"}}
            }}
        }}))).into_owned()
    }

    #[test]
    fn fields_v1_round_trip() {
        let object = json!({"metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {"a": 1, "ports": [{"name": "http", "port": 80}], "tags": ["t"], "args": ["x"]}});
        let set = fields_of(&object, &schema());
        let fields = to_fields_v1(&set);
        assert_eq!(
            fields,
            json!({
                "f:metadata": {"f:labels": {"f:a": {}}},
                "f:spec": {"f:a": {}, "f:args": {}, "f:ports": {"k:{\"name\":\"http\"}": {".": {}, "f:name": {}, "f:port": {}}}, "f:tags": {"v:\"t\"": {}}}
            })
        );
        assert_eq!(from_fields_v1(&fields), set);
    }

    /// [API-21] T01: removal of fields no longer applied, conflicts, force.
    #[test]
    fn apply_removal_conflict_force() {
        let s = schema();
        let first = apply(None, &json!({"spec": {"a": 1, "b": 2}}), &s, w("m"), false).unwrap();
        let second = apply(Some(&first), &json!({"spec": {"a": 1}}), &s, w("m"), false).unwrap();
        assert_eq!(second["spec"], json!({"a": 1}));
        let conflicts =
            apply(Some(&second), &json!({"spec": {"a": 2}}), &s, w("n"), false).unwrap_err();
        assert_eq!(
            conflicts,
            [(
                Conflict {
                    manager: "m".into(),
                    path: ".spec.a".into()
                },
                "\"m\"".to_string()
            )]
        );
        let shared = apply(Some(&second), &json!({"spec": {"a": 1}}), &s, w("n"), false).unwrap();
        assert_eq!(entries(&shared).len(), 2, "same value: co-ownership");
        let forced = apply(Some(&second), &json!({"spec": {"a": 2}}), &s, w("n"), true).unwrap();
        assert_eq!(forced["spec"]["a"], 2);
        let m = entries(&forced).into_iter().find(|e| e.manager == "m");
        assert!(m.is_none(), "m owned only .spec.a and lost it");
    }

    #[test]
    fn apply_merges_lists_by_topology() {
        let s = schema();
        let live = apply(
            None,
            &json!({"spec": {"ports": [{"name": "a", "port": 1}], "tags": ["x"], "args": ["1"]}}),
            &s,
            w("m"),
            false,
        )
        .unwrap();
        let other = apply(
            Some(&live),
            &json!({"spec": {"ports": [{"name": "b", "port": 2}], "tags": ["y"]}}),
            &s,
            w("n"),
            false,
        )
        .unwrap();
        assert_eq!(
            other["spec"]["ports"],
            json!([{"name": "a", "port": 1}, {"name": "b", "port": 2}])
        );
        assert_eq!(other["spec"]["tags"], json!(["x", "y"]));
        // m stops applying its port: only its item goes.
        let dropped = apply(
            Some(&other),
            &json!({"spec": {"tags": ["x"], "args": ["1"]}}),
            &s,
            w("m"),
            false,
        )
        .unwrap();
        assert_eq!(dropped["spec"]["ports"], json!([{"name": "b", "port": 2}]));
    }

    #[test]
    fn an_apply_that_changes_nothing_keeps_its_time_and_order() {
        let s = schema();
        let at = |manager, now| Writer { now, ..w(manager) };
        let first = apply(
            None,
            &json!({"spec": {"a": 1}}),
            &s,
            at("m", "2026-01-01T00:00:01Z"),
            false,
        )
        .unwrap();
        let second = apply(
            Some(&first),
            &json!({"spec": {"b": 1}}),
            &s,
            at("n", "2026-01-01T00:00:02Z"),
            false,
        )
        .unwrap();
        let again = apply(
            Some(&second),
            &json!({"spec": {"a": 1}}),
            &s,
            at("m", "2026-01-01T00:00:09Z"),
            false,
        )
        .unwrap();
        assert_eq!(
            again, second,
            "nothing changed: same entries, same times, same order"
        );
        let changed = apply(
            Some(&second),
            &json!({"spec": {"a": 2}}),
            &s,
            at("m", "2026-01-01T00:00:09Z"),
            false,
        )
        .unwrap();
        let managers: Vec<(String, String)> = entries(&changed)
            .into_iter()
            .map(|e| (e.manager, e.time))
            .collect();
        assert_eq!(
            managers,
            [
                ("n".to_string(), "2026-01-01T00:00:02Z".to_string()),
                ("m".to_string(), "2026-01-01T00:00:09Z".to_string())
            ],
            "a change stamps the applier and sorts it by time"
        );
    }

    #[test]
    fn update_tracking_moves_ownership() {
        let s = schema();
        let mut created = json!({"spec": {"a": 1, "b": 1}});
        record_update(None, &mut created, &s, w("creator"));
        let mut updated = created.clone();
        updated["spec"]["a"] = json!(2);
        record_update(Some(&created), &mut updated, &s, w("editor"));
        let list = entries(&updated);
        let creator = list.iter().find(|e| e.manager == "creator").unwrap();
        let editor = list.iter().find(|e| e.manager == "editor").unwrap();
        // The leaves: as before. The creator of `spec` also owns the container itself
        // (FieldsV1 `f:spec/.`), as structured-merge-diff records an Update in kube-apiserver.
        let leaves = |e: &Entry| -> Vec<String> {
            e.fields
                .iter()
                .filter(|p| p.last().map(String::as_str) != Some("."))
                .map(|p| render_path(p))
                .collect()
        };
        assert_eq!(leaves(creator), [".spec.b"]);
        assert_eq!(leaves(editor), [".spec.a"]);
        assert!(
            creator
                .fields
                .contains(&vec!["f:spec".to_string(), ".".to_string()])
        );
        assert_eq!(
            editor.fields.len(),
            1,
            "editing a child does not take the container"
        );
    }
}
