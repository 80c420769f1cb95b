//! Discovery documents: legacy (`/api`, `/apis`, per group and group-version) and aggregated v2.

use serde_json::{Value, json};

use crate::registry::{Registry, ResourceType};

fn resource_entry(t: &ResourceType) -> Vec<Value> {
    let mut main = json!({
        "name": t.plural,
        "singularName": t.singular,
        "namespaced": t.namespaced,
        "kind": t.kind_name,
        "verbs": t.verbs(),
    });
    if !t.short_names.is_empty() {
        main["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        main["categories"] = json!(t.categories);
    }
    let mut entries = vec![main];
    if t.status_subresource {
        entries.push(json!({"name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced, "kind": t.kind_name, "verbs": ["get", "patch", "update"]}));
    }
    if t.scale.is_some() {
        entries.push(json!({"name": format!("{}/scale", t.plural), "singularName": "", "namespaced": t.namespaced, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
    }
    if t.group.is_empty() && t.plural == "namespaces" {
        entries.push(json!({"name": "namespaces/finalize", "singularName": "", "namespaced": false, "kind": "Namespace", "verbs": ["update"]}));
    }
    entries
}

/// `/api/v1` or `/apis/<g>/<v>`.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types = registry.served(group, version);
    if types.is_empty() {
        return None;
    }
    let resources: Vec<Value> = types.iter().flat_map(|t| resource_entry(t)).collect();
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut list =
        json!({"kind": "APIResourceList", "groupVersion": group_version, "resources": resources});
    if !group.is_empty() {
        list["apiVersion"] = json!("v1");
    }
    Some(list)
}

fn group_document(registry: &Registry, group: &str) -> Value {
    let versions: Vec<Value> = registry
        .group_versions(group)
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}

/// `/apis/<g>`.
pub fn api_group(registry: &Registry, group: &str) -> Option<Value> {
    if group.is_empty() || registry.group_versions(group).is_empty() {
        return None;
    }
    let mut document = group_document(registry, group);
    document["kind"] = json!("APIGroup");
    document["apiVersion"] = json!("v1");
    Some(document)
}

/// `/apis` (legacy).
pub fn api_group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .map(|g| group_document(registry, g))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/api` (legacy).
pub fn api_versions(server_address: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]})
}

fn aggregated_group(registry: &Registry, group: &str) -> Value {
    let versions: Vec<Value> = registry
        .group_versions(group)
        .iter()
        .map(|version| {
            let resources: Vec<Value> = registry
                .served(group, version)
                .into_iter()
                .map(|t| {
                    let response_kind = json!({"group": group, "version": version, "kind": t.kind_name});
                    let mut entry = json!({
                        "resource": t.plural,
                        "responseKind": response_kind,
                        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": t.singular,
                        "verbs": t.verbs(),
                    });
                    if !t.short_names.is_empty() {
                        entry["shortNames"] = json!(t.short_names);
                    }
                    if !t.categories.is_empty() {
                        entry["categories"] = json!(t.categories);
                    }
                    let mut subresources = Vec::new();
                    if t.status_subresource {
                        subresources.push(json!({"subresource": "status", "responseKind": response_kind, "verbs": ["get", "patch", "update"]}));
                    }
                    if t.scale.is_some() {
                        subresources.push(json!({"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"}, "verbs": ["get", "patch", "update"]}));
                    }
                    if !subresources.is_empty() {
                        entry["subresources"] = json!(subresources);
                    }
                    entry
                })
                .collect();
            json!({"version": version, "freshness": "Current", "resources": resources})
        })
        .collect();
    let mut item = json!({"metadata": {"creationTimestamp": null}, "versions": versions});
    if !group.is_empty() {
        item["metadata"]["name"] = json!(group);
    }
    item
}

/// Aggregated discovery for `/api` (core only) or `/apis` (every named group).
pub fn aggregated(registry: &Registry, core: bool, api_version: &str) -> Value {
    let items: Vec<Value> = if core {
        vec![aggregated_group(registry, "")]
    } else {
        registry
            .groups()
            .iter()
            .map(|g| aggregated_group(registry, g))
            .collect()
    };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items})
}
