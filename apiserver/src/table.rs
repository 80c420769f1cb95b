//! `Table` and `PartialObjectMetadata` renderings of objects (what kubectl asks for).

use serde_json::{Value, json};

use crate::registry::{Kind, ResourceType};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

/// The object reduced to its metadata.
pub fn partial_object_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

struct Column {
    name: String,
    type_: &'static str,
    format: &'static str,
    description: String,
    priority: i64,
    cell: Box<dyn Fn(&Value) -> Value>,
}

fn age(object: &Value, now: k8s_openapi::jiff::Timestamp) -> Value {
    match object
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
    {
        None => json!("<unknown>"),
        Some(ts) => match ts.parse::<k8s_openapi::jiff::Timestamp>() {
            Ok(t) => json!(human_duration(now.as_second() - t.as_second())),
            Err(_) => json!("<invalid>"),
        },
    }
}

/// Kubernetes' `HumanDuration`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    let s = seconds;
    if s < 120 {
        return format!("{s}s");
    }
    let minutes = s / 60;
    if minutes < 10 {
        let rem = s % 60;
        return if rem == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{rem}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = s / 3600;
    if hours < 8 {
        let rem = (s % 3600) / 60;
        return if rem == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{rem}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if days < 8 {
        let rem = hours % 24;
        return if rem == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{rem}h")
        };
    }
    if days < 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if years < 8 {
        let rem = days % 365;
        return if rem == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{rem}d")
        };
    }
    format!("{years}y")
}

/// Evaluates the simple JSONPath forms printer columns use: `.a.b`, `.a['x.y']`,
/// `.a[?(@.k=="v")].f`.
pub fn json_path(object: &Value, path: &str) -> Option<Value> {
    let mut nodes = vec![object.clone()];
    let mut rest = path.trim();
    rest = rest
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or(rest);
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("[?(@.") {
            let end = r.find(")]")?;
            let condition = &r[..end];
            let (field, value) = condition.split_once("==")?;
            let value = value.trim().trim_matches('"').trim_matches('\'');
            nodes = nodes
                .into_iter()
                .filter_map(|n| n.as_array().cloned())
                .flatten()
                .filter(|item| item.get(field.trim()).and_then(Value::as_str) == Some(value))
                .collect();
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']")?;
            let key = r[..end].replace("\\.", ".");
            nodes = nodes
                .into_iter()
                .filter_map(|n| n.get(&key).cloned())
                .collect();
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            nodes = nodes
                .into_iter()
                .filter_map(|n| n.get(key).cloned())
                .collect();
            rest = &r[end..];
        } else {
            return None;
        }
    }
    nodes.into_iter().next()
}

fn columns(resource: &ResourceType, version: &str) -> Vec<Column> {
    let name = Column {
        name: "Name".into(),
        type_: "string",
        format: "name",
        description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names".into(),
        priority: 0,
        cell: Box::new(|o: &Value| o.pointer("/metadata/name").cloned().unwrap_or(Value::Null)),
    };
    let now = k8s_openapi::jiff::Timestamp::now();
    let age_column = move || {
        Column {
        name: "Age".into(),
        type_: "date",
        format: "",
        description: "CreationTimestamp is a timestamp representing the server time when this object was created.".into(),
        priority: 0,
        cell: Box::new(move |o: &Value| age(o, now)),
    }
    };
    let data_count = |o: &Value| {
        let count = o
            .get("data")
            .and_then(Value::as_object)
            .map_or(0, |m| m.len())
            + o.get("binaryData")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len());
        json!(count)
    };
    match resource.kind {
        Kind::Custom => {
            let mut out = vec![name];
            let custom = resource.version(version).map(|v| v.printer_columns.clone()).unwrap_or_default();
            if custom.is_empty() {
                out.push(age_column());
            }
            for c in custom {
                let type_: &'static str = match c.type_.as_str() {
                    "integer" => "integer",
                    "number" => "number",
                    "boolean" => "boolean",
                    "date" => "date",
                    _ => "string",
                };
                let path = c.json_path.clone();
                let is_date = type_ == "date";
                out.push(Column {
                    name: c.name.clone(),
                    type_,
                    format: "",
                    description: c.description.clone(),
                    priority: c.priority,
                    cell: Box::new(move |o: &Value| {
                        let value = json_path(o, &path);
                        if is_date {
                            match value.as_ref().and_then(Value::as_str).map(|s| s.parse::<k8s_openapi::jiff::Timestamp>()) {
                                Some(Ok(t)) => json!(human_duration(now.as_second() - t.as_second())),
                                Some(Err(_)) => json!("<invalid>"),
                                None => json!("<unknown>"),
                            }
                        } else {
                            value.unwrap_or(Value::Null)
                        }
                    }),
                });
            }
            out
        }
        Kind::ConfigMap => vec![
            name,
            Column { name: "Data".into(), type_: "integer", format: "", description: "Data contains the configuration data".into(), priority: 0, cell: Box::new(data_count) },
            age_column(),
        ],
        Kind::Secret => vec![
            name,
            Column { name: "Type".into(), type_: "string", format: "", description: "The type of the secret".into(), priority: 0, cell: Box::new(|o: &Value| o.get("type").cloned().unwrap_or(Value::Null)) },
            Column { name: "Data".into(), type_: "integer", format: "", description: "The number of data entries".into(), priority: 0, cell: Box::new(data_count) },
            age_column(),
        ],
        Kind::Namespace => vec![
            name,
            Column { name: "Status".into(), type_: "string", format: "", description: "The status of the namespace".into(), priority: 0, cell: Box::new(|o: &Value| o.pointer("/status/phase").cloned().unwrap_or(Value::Null)) },
            age_column(),
        ],
        Kind::Lease => vec![
            name,
            Column { name: "Holder".into(), type_: "string", format: "", description: "The holder of the lease".into(), priority: 0, cell: Box::new(|o: &Value| o.pointer("/spec/holderIdentity").cloned().unwrap_or(json!(""))) },
            age_column(),
        ],
        _ => vec![
            name,
            Column {
                name: "Created At".into(),
                type_: "date",
                format: "",
                description: "CreationTimestamp is a timestamp representing the server time when this object was created.".into(),
                priority: 0,
                cell: Box::new(|o: &Value| o.pointer("/metadata/creationTimestamp").cloned().unwrap_or(Value::Null)),
            },
        ],
    }
}

/// A Table of `objects`; `headers` includes the column definitions.
pub fn table(
    resource: &ResourceType,
    version: &str,
    objects: &[Value],
    headers: bool,
    include: IncludeObject,
) -> Value {
    let columns = columns(resource, version);
    let definitions: Vec<Value> = columns
        .iter()
        .map(|c| json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority}))
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let cells: Vec<Value> = columns.iter().map(|c| (c.cell)(o)).collect();
            let mut row = json!({"cells": cells});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => row["object"] = partial_object_metadata(o),
                IncludeObject::Object => row["object"] = o.clone(),
            }
            row
        })
        .collect();
    let mut out =
        json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "rows": rows});
    if headers {
        out["columnDefinitions"] = json!(definitions);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(3600 * 5 + 60), "5h1m");
        assert_eq!(human_duration(86400 * 3), "3d");
        assert_eq!(human_duration(-5), "<invalid>");
    }

    #[test]
    fn printer_column_paths() {
        let object = json!({"metadata": {"labels": {"cluster.x-k8s.io/cluster-name": "c1"}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Available", "status": "False"}]}});
        assert_eq!(
            json_path(
                &object,
                r".metadata.labels['cluster\.x-k8s\.io/cluster-name']"
            ),
            Some(json!("c1"))
        );
        assert_eq!(
            json_path(
                &object,
                r#".status.conditions[?(@.type=="Available")].status"#
            ),
            Some(json!("False"))
        );
        assert_eq!(json_path(&object, ".spec.missing"), None);
    }
}
