//! One store for both Event APIs (API-35): kube-apiserver keeps `events.k8s.io/v1` and core `v1`
//! Events in one registry, so an Event written through either API is read, listed, watched and
//! deleted through both (`kubectl describe` shows what kube-rs's `Recorder` wrote). The store
//! keeps the core form; `events.k8s.io/v1` objects are converted on the way in and out, field
//! for field as kube-apiserver's conversion does, with the fields Go always serialises.

use serde_json::{Map, Value, json};

use crate::registry::{Kind, ResourceType};

/// The `events.k8s.io` group.
pub const GROUP: &str = "events.k8s.io";

/// `events.k8s.io/v1` name ↔ core `v1` name of each renamed field.
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// Whether `resource` is the `events.k8s.io` view of the core Event store.
pub fn is_events_api(resource: &ResourceType) -> bool {
    resource.kind == Kind::Event && resource.group == GROUP
}

/// The group under which a resource's objects are stored: core for both Event APIs.
pub fn storage_group(resource: &ResourceType) -> &str {
    if is_events_api(resource) {
        ""
    } else {
        &resource.group
    }
}

fn rename(object: &mut Value, from_events: bool) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    let mut out = Map::new();
    for (key, value) in std::mem::take(map) {
        let renamed = RENAMED.iter().find_map(|(events, core)| {
            if from_events && key == *events {
                Some(*core)
            } else if !from_events && key == *core {
                Some(*events)
            } else {
                None
            }
        });
        out.insert(renamed.map_or(key, str::to_string), value);
    }
    *map = out;
}

/// An `events.k8s.io/v1` Event in its stored (core `v1`) form; other objects unchanged.
pub fn to_storage(resource: &ResourceType, mut object: Value) -> Value {
    if !is_events_api(resource) || object["apiVersion"] == "v1" {
        return object;
    }
    rename(&mut object, true);
    object["apiVersion"] = json!("v1");
    object
}

/// An Event as the API of `resource` shows it: the `events.k8s.io/v1` form of a stored core
/// Event, or the core form; with the fields kube-apiserver always writes (Go types without
/// `omitempty`: the timestamps as null, the reporting strings as "", the source as {}).
pub fn present(resource: &ResourceType, object: &mut Value) {
    if resource.kind != Kind::Event || !object.is_object() {
        return;
    }
    if is_events_api(resource) {
        if object["apiVersion"] == "v1" {
            rename(object, false);
        }
        for key in [
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
            "eventTime",
        ] {
            object
                .as_object_mut()
                .map(|m| m.entry(key).or_insert(Value::Null));
        }
        object
            .as_object_mut()
            .map(|m| m.entry("deprecatedSource").or_insert_with(|| json!({})));
    } else {
        for key in ["firstTimestamp", "lastTimestamp", "eventTime"] {
            object
                .as_object_mut()
                .map(|m| m.entry(key).or_insert(Value::Null));
        }
        for key in ["reportingComponent", "reportingInstance"] {
            object
                .as_object_mut()
                .map(|m| m.entry(key).or_insert_with(|| json!("")));
        }
        object
            .as_object_mut()
            .map(|m| m.entry("involvedObject").or_insert_with(|| json!({})));
        object
            .as_object_mut()
            .map(|m| m.entry("source").or_insert_with(|| json!({})));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn resource(group: &str) -> std::sync::Arc<ResourceType> {
        Registry::with_builtins().get(group, "events").unwrap()
    }

    #[test]
    fn events_api_round_trips_through_the_core_form() {
        let events = resource(GROUP);
        let written = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "n", "reportingController": "c",
            "reportingInstance": "i", "action": "A", "reason": "R", "type": "Normal"});
        let stored = to_storage(&events, written.clone());
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["involvedObject"]["name"], "p");
        assert_eq!(stored["message"], "n");
        assert_eq!(stored["reportingComponent"], "c");
        let mut shown = stored.clone();
        present(&events, &mut shown);
        assert_eq!(shown["regarding"], written["regarding"]);
        assert_eq!(shown["note"], "n");
        assert_eq!(shown["deprecatedSource"], json!({}));
        let core = resource("");
        let mut as_core = stored;
        present(&core, &mut as_core);
        assert_eq!(as_core["firstTimestamp"], Value::Null);
        assert_eq!(as_core["source"], json!({}));
    }
}
