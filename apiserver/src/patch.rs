//! Patch engines: JSON merge patch (RFC 7386), JSON patch with Kubernetes' json-patch v4
//! semantics, and strategic merge for the built-in kinds.

use serde_json::{Map, Value};

/// Why a patch could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatchError {
    #[error("the patch is not valid JSON: {0}")]
    Malformed(String),
    #[error("{0}")]
    Failed(String),
}

/// RFC 7386: `null` deletes, objects merge recursively, everything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(object) = target.as_object_mut() else {
        return;
    };
    for (key, value) in patch {
        if value.is_null() {
            object.remove(key);
        } else {
            merge_patch(object.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

fn unescape_token(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(path: &str) -> Result<Vec<String>, PatchError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(PatchError::Failed(format!("invalid path {path}")));
    };
    Ok(rest.split('/').map(unescape_token).collect())
}

fn parent_of<'a>(doc: &'a mut Value, tokens: &[String]) -> Result<&'a mut Value, PatchError> {
    let mut node = doc;
    for token in tokens {
        node = match node {
            Value::Object(o) => o
                .get_mut(token)
                .ok_or_else(|| PatchError::Failed(format!("missing path /{token}")))?,
            Value::Array(a) => {
                let i: usize = token
                    .parse()
                    .map_err(|_| PatchError::Failed(format!("bad index {token}")))?;
                a.get_mut(i)
                    .ok_or_else(|| PatchError::Failed(format!("index {i} out of range")))?
            }
            _ => return Err(PatchError::Failed(format!("cannot descend into /{token}"))),
        };
    }
    Ok(node)
}

fn get<'a>(doc: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    let mut node = doc;
    for token in tokens {
        node = match node {
            Value::Object(o) => o.get(token)?,
            Value::Array(a) => a.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

fn add(doc: &mut Value, tokens: &[String], value: Value) -> Result<(), PatchError> {
    let Some((last, parent_tokens)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent_of(doc, parent_tokens)? {
        Value::Object(o) => {
            o.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i: usize = last
                .parse()
                .map_err(|_| PatchError::Failed(format!("bad index {last}")))?;
            if i > a.len() {
                return Err(PatchError::Failed(format!("index {i} out of range")));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(PatchError::Failed("cannot add to a scalar".into())),
    }
}

fn remove(doc: &mut Value, tokens: &[String]) -> Result<Value, PatchError> {
    let Some((last, parent_tokens)) = tokens.split_last() else {
        return Err(PatchError::Failed("cannot remove the root".into()));
    };
    match parent_of(doc, parent_tokens)? {
        Value::Object(o) => o
            .remove(last)
            .ok_or_else(|| PatchError::Failed(format!("missing path {last}"))),
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| PatchError::Failed(format!("bad index {last}")))?;
            if i >= a.len() {
                return Err(PatchError::Failed(format!("index {i} out of range")));
            }
            Ok(a.remove(i))
        }
        _ => Err(PatchError::Failed("cannot remove from a scalar".into())),
    }
}

/// Applies a JSON patch atomically. Kubernetes semantics: a `test` of `null` against a missing
/// path passes.
pub fn json_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let operations = patch
        .as_array()
        .ok_or_else(|| PatchError::Malformed("a JSON patch must be an array".into()))?;
    if operations.len() > 10_000 {
        return Err(PatchError::Failed("too many operations".into()));
    }
    let mut result = doc.clone();
    for operation in operations {
        let op = operation
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| PatchError::Malformed("missing op".into()))?;
        let path = operation
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| PatchError::Malformed("missing path".into()))?;
        let tokens = split_pointer(path)?;
        let value = || {
            operation
                .get("value")
                .cloned()
                .ok_or_else(|| PatchError::Failed("missing value".into()))
        };
        match op {
            "add" => add(&mut result, &tokens, value()?)?,
            "remove" => {
                remove(&mut result, &tokens)?;
            }
            "replace" => {
                let v = value()?;
                let target = get(&result, &tokens)
                    .ok_or_else(|| PatchError::Failed(format!("missing path {path}")))?;
                let _ = target;
                remove(&mut result, &tokens)?;
                add(&mut result, &tokens, v)?;
            }
            "test" => {
                let expected = operation.get("value").cloned().unwrap_or(Value::Null);
                let actual = get(&result, &tokens).cloned().unwrap_or(Value::Null);
                if actual != expected {
                    return Err(PatchError::Failed(format!("test failed at {path}")));
                }
            }
            "move" | "copy" => {
                let from = operation
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or_else(|| PatchError::Failed("missing from".into()))?;
                let from_tokens = split_pointer(from)?;
                let moved = if op == "move" {
                    remove(&mut result, &from_tokens)?
                } else {
                    get(&result, &from_tokens)
                        .cloned()
                        .ok_or_else(|| PatchError::Failed(format!("missing path {from}")))?
                };
                add(&mut result, &tokens, moved)?;
            }
            other => return Err(PatchError::Malformed(format!("unknown op {other}"))),
        }
    }
    Ok(result)
}

/// Strategic merge for the built-in kinds in scope: maps merge, `metadata.finalizers` merge as a
/// set, `metadata.ownerReferences` merge by `uid`, other lists replace; `$patch: delete` on an
/// object removes it.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    strategic_merge_at(target, patch, "")
}

fn strategic_merge_at(target: &mut Value, patch: &Value, path: &str) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = patch.clone();
        replacement.remove("$patch");
        *target = Value::Object(replacement);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(object) = target.as_object_mut() else {
        return;
    };
    for (key, value) in patch {
        if key.starts_with('$') {
            continue;
        }
        let child_path = format!("{path}/{key}");
        if value.is_null() || value.get("$patch").and_then(Value::as_str) == Some("delete") {
            object.remove(key);
            continue;
        }
        match (child_path.as_str(), value) {
            ("/metadata/finalizers", Value::Array(items)) => {
                let existing = object
                    .entry(key.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(current) = existing {
                    for item in items {
                        if !current.contains(item) {
                            current.push(item.clone());
                        }
                    }
                }
            }
            ("/metadata/ownerReferences", Value::Array(items)) => {
                let existing = object
                    .entry(key.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(current) = existing {
                    for item in items {
                        let uid = item.get("uid");
                        match current.iter_mut().find(|c| c.get("uid") == uid) {
                            Some(found) => strategic_merge_at(found, item, &child_path),
                            None => current.push(item.clone()),
                        }
                    }
                }
            }
            (_, Value::Object(_)) => strategic_merge_at(
                object.entry(key.clone()).or_insert(Value::Null),
                value,
                &child_path,
            ),
            _ => {
                object.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_semantics() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut doc, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(doc, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    /// [API-08] T11: kube-rs' finalizer helper patches succeed; a failed test is an error.
    #[test]
    fn json_patch_kubernetes_semantics() {
        let doc = json!({"metadata": {"name": "x"}});
        let patch = json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
                           {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}]);
        let patched = json_patch(&doc, &patch).unwrap();
        assert_eq!(patched["metadata"]["finalizers"], json!(["f"]));
        let add_more = json!([{"op": "test", "path": "/metadata/finalizers", "value": ["f"]},
                              {"op": "add", "path": "/metadata/finalizers/-", "value": "g"}]);
        assert_eq!(
            json_patch(&patched, &add_more).unwrap()["metadata"]["finalizers"],
            json!(["f", "g"])
        );
        let wrong = json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "y"},
                           {"op": "remove", "path": "/metadata/finalizers/0"}]);
        assert!(matches!(
            json_patch(&patched, &wrong),
            Err(PatchError::Failed(_))
        ));
        assert!(
            json_patch(
                &doc,
                &json!([{"op": "remove", "path": "/metadata/missing"}])
            )
            .is_err()
        );
        assert!(matches!(
            json_patch(&doc, &json!({"op": "add"})),
            Err(PatchError::Malformed(_))
        ));
    }

    #[test]
    fn strategic_merge_lists() {
        let mut doc = json!({"metadata": {"finalizers": ["a"], "ownerReferences": [{"uid": "1", "name": "x"}]}, "data": {"k": "v"}});
        strategic_merge(
            &mut doc,
            &json!({"metadata": {"finalizers": ["b"], "ownerReferences": [{"uid": "1", "name": "y"}, {"uid": "2"}]}, "data": {"j": "w", "k": null}}),
        );
        assert_eq!(
            doc,
            json!({"metadata": {"finalizers": ["a", "b"], "ownerReferences": [{"uid": "1", "name": "y"}, {"uid": "2"}]}, "data": {"j": "w"}})
        );
    }
}
