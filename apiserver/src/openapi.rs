//! OpenAPI v3: the root index with content hashes and one document per group-version, with the
//! operations and schemas kubectl's validation and `explain` read.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::LazyLock;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::registry::{Kind, Registry, ResourceType};

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// Every schema the built-in kinds need, keyed like upstream (`io.k8s.api.core.v1.ConfigMap`).
static BUILTIN_SCHEMAS: LazyLock<Map<String, Value>> = LazyLock::new(|| {
    use k8s_openapi::api::{apps, batch, coordination, core, events, rbac};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    let mut generator = SchemaSettings::openapi3()
        .with(|s| {
            s.meta_schema = None;
        })
        .into_generator();
    fn add<T: JsonSchema>(generator: &mut schemars::SchemaGenerator) {
        let _ = generator.subschema_for::<T>();
    }
    add::<core::v1::Namespace>(&mut generator);
    add::<core::v1::ConfigMap>(&mut generator);
    add::<core::v1::Secret>(&mut generator);
    add::<core::v1::Event>(&mut generator);
    add::<events::v1::Event>(&mut generator);
    add::<coordination::v1::Lease>(&mut generator);
    add::<core::v1::Service>(&mut generator);
    add::<core::v1::ServiceAccount>(&mut generator);
    add::<apps::v1::Deployment>(&mut generator);
    add::<apps::v1::StatefulSet>(&mut generator);
    add::<apps::v1::ReplicaSet>(&mut generator);
    add::<batch::v1::Job>(&mut generator);
    add::<apps::v1::DaemonSet>(&mut generator);
    add::<core::v1::PodTemplate>(&mut generator);
    add::<rbac::v1::Role>(&mut generator);
    add::<rbac::v1::ClusterRole>(&mut generator);
    add::<rbac::v1::RoleBinding>(&mut generator);
    add::<rbac::v1::ClusterRoleBinding>(&mut generator);
    add::<CustomResourceDefinition>(&mut generator);
    add::<ObjectMeta>(&mut generator);
    generator.take_definitions(true).into_iter().collect()
});

/// The builtin schema key of a kind.
fn builtin_key(resource: &ResourceType) -> &'static str {
    match (resource.kind, resource.group.as_str()) {
        (Kind::Namespace, _) => "io.k8s.api.core.v1.Namespace",
        (Kind::ConfigMap, _) => "io.k8s.api.core.v1.ConfigMap",
        (Kind::Secret, _) => "io.k8s.api.core.v1.Secret",
        (Kind::Event, "") => "io.k8s.api.core.v1.Event",
        (Kind::Event, _) => "io.k8s.api.events.v1.Event",
        (Kind::Lease, _) => "io.k8s.api.coordination.v1.Lease",
        (Kind::Service, _) => "io.k8s.api.core.v1.Service",
        (Kind::ServiceAccount, _) => "io.k8s.api.core.v1.ServiceAccount",
        (Kind::Deployment, _) => "io.k8s.api.apps.v1.Deployment",
        (Kind::StatefulSet, _) => "io.k8s.api.apps.v1.StatefulSet",
        (Kind::ReplicaSet, _) => "io.k8s.api.apps.v1.ReplicaSet",
        (Kind::Job, _) => "io.k8s.api.batch.v1.Job",
        (Kind::DaemonSet, _) => "io.k8s.api.apps.v1.DaemonSet",
        (Kind::PodTemplate, _) => "io.k8s.api.core.v1.PodTemplate",
        (Kind::Role, _) => "io.k8s.api.rbac.v1.Role",
        (Kind::ClusterRole, _) => "io.k8s.api.rbac.v1.ClusterRole",
        (Kind::RoleBinding, _) => "io.k8s.api.rbac.v1.RoleBinding",
        (Kind::ClusterRoleBinding, _) => "io.k8s.api.rbac.v1.ClusterRoleBinding",
        (Kind::CustomResourceDefinition, _) => {
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"
        }
        (Kind::Custom, _) => "",
    }
}

/// `run.kro.v1alpha1.DemoControlPlane` for custom resources.
fn schema_key(resource: &ResourceType, version: &str) -> String {
    if resource.kind != Kind::Custom {
        return builtin_key(resource).to_string();
    }
    let reversed: Vec<&str> = resource.group.split('.').rev().collect();
    format!("{}.{version}.{}", reversed.join("."), resource.kind_name)
}

fn gvk(resource: &ResourceType, version: &str) -> Value {
    json!({"group": resource.group, "version": version, "kind": resource.kind_name})
}

fn reference(key: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{key}")})
}

/// Collects the builtin schemas `key` refers to, transitively.
fn collect_builtin(key: &str, out: &mut Map<String, Value>) {
    if out.contains_key(key) {
        return;
    }
    let Some(schema) = BUILTIN_SCHEMAS.get(key) else {
        return;
    };
    out.insert(key.to_string(), schema.clone());
    let mut refs = Vec::new();
    find_refs(schema, &mut refs);
    for r in refs {
        collect_builtin(&r, out);
    }
}

fn find_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(r) = map.get("$ref").and_then(Value::as_str)
                && let Some(key) = r.strip_prefix("#/components/schemas/")
            {
                out.push(key.to_string());
            }
            map.values().for_each(|v| find_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| find_refs(v, out)),
        _ => {}
    }
}

fn parameter(name: &str, location: &str, description: &str) -> Value {
    let mut p = json!({"name": name, "in": location, "description": description, "schema": {"type": "string", "uniqueItems": true}});
    if location == "path" {
        p["required"] = json!(true);
    }
    p
}

fn operation(resource: &ResourceType, version: &str, verb: &str, id: &str, body: bool) -> Value {
    let key = schema_key(resource, version);
    let mut op = json!({
        "operationId": id,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference(&key)}}}},
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": gvk(resource, version),
    });
    let mut params = vec![parameter(
        "dryRun",
        "query",
        "When present, indicates that modifications should not be persisted.",
    )];
    if matches!(verb, "post" | "put" | "patch") {
        params.push(parameter(
            "fieldManager",
            "query",
            "A name associated with the actor or entity that is making these changes.",
        ));
        params.push(parameter("fieldValidation", "query", "Instructs the server on how to handle objects in the request containing unknown or duplicate fields."));
    }
    if verb == "patch" {
        params.push(json!({"name": "force", "in": "query", "description": "Force is going to \"force\" Apply requests.", "schema": {"type": "boolean", "uniqueItems": true}}));
        let mut content = json!({
            "application/apply-patch+yaml": {"schema": {"type": "object"}},
            "application/json-patch+json": {"schema": {"type": "object"}},
            "application/merge-patch+json": {"schema": {"type": "object"}}
        });
        // kubectl picks strategic merge only where the PATCH operation lists it: built-ins.
        if resource.kind.accepts_strategic_merge() {
            content["application/strategic-merge-patch+json"] =
                json!({"schema": {"type": "object"}});
        }
        op["requestBody"] = json!({"content": content, "required": true});
    } else if body {
        op["requestBody"] = json!({"content": {"application/json": {"schema": reference(&key)}, "application/yaml": {"schema": reference(&key)}}, "required": true});
    }
    op["parameters"] = Value::Array(params);
    op
}

fn paths_for(resource: &ResourceType, version: &str, paths: &mut Map<String, Value>) {
    let prefix = if resource.group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{}/{version}", resource.group)
    };
    let collection = if resource.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", resource.plural)
    } else {
        format!("{prefix}/{}", resource.plural)
    };
    let kind = &resource.kind_name;
    let mut shared = vec![parameter(
        "pretty",
        "query",
        "If 'true', then the output is pretty printed.",
    )];
    if resource.namespaced {
        shared.push(parameter(
            "namespace",
            "path",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    paths.insert(collection.clone(), json!({
        "get": operation(resource, version, "list", &format!("list{kind}"), false),
        "post": operation(resource, version, "post", &format!("create{kind}"), true),
        "delete": operation(resource, version, "deletecollection", &format!("deletecollection{kind}"), false),
        "parameters": shared.clone(),
    }));
    let mut item_params = shared;
    item_params.push(parameter("name", "path", &format!("name of the {kind}")));
    let item = format!("{collection}/{{name}}");
    paths.insert(
        item.clone(),
        json!({
            "get": operation(resource, version, "get", &format!("read{kind}"), false),
            "put": operation(resource, version, "put", &format!("replace{kind}"), true),
            "patch": operation(resource, version, "patch", &format!("patch{kind}"), false),
            "delete": operation(resource, version, "delete", &format!("delete{kind}"), false),
            "parameters": item_params.clone(),
        }),
    );
    if resource.status_subresource {
        paths.insert(format!("{item}/status"), json!({
            "get": operation(resource, version, "get", &format!("read{kind}Status"), false),
            "put": operation(resource, version, "put", &format!("replace{kind}Status"), true),
            "patch": operation(resource, version, "patch", &format!("patch{kind}Status"), false),
            "parameters": item_params,
        }));
    }
}

/// The schema of a custom resource version: the CRD schema with metadata as a reference.
fn custom_schema(resource: &ResourceType, version: &str) -> Value {
    let mut schema = resource
        .version(version)
        .and_then(|v| v.schema.clone())
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    if let Some(object) = schema.as_object_mut() {
        let properties = object.entry("properties").or_insert_with(|| json!({}));
        properties["metadata"] = reference(OBJECT_META);
        properties["apiVersion"] = json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."});
        properties["kind"] = json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."});
        object.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([gvk(resource, version)]),
        );
    }
    schema
}

/// The document of one group-version, or `None` when nothing is served there.
pub fn group_version_document(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types = registry.served(group, version);
    if types.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    collect_builtin(OBJECT_META, &mut schemas);
    for resource in &types {
        paths_for(resource, version, &mut paths);
        let key = schema_key(resource, version);
        if resource.kind == Kind::Custom {
            schemas.insert(key, custom_schema(resource, version));
        } else {
            collect_builtin(&key, &mut schemas);
            if let Some(Value::Object(schema)) = schemas.get_mut(&key) {
                schema.insert(
                    "x-kubernetes-group-version-kind".into(),
                    json!([gvk(resource, version)]),
                );
            }
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.13"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// A content hash (uppercase hex) that changes whenever the document does.
pub fn hash(document: &Value) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    document.to_string().hash(&mut hasher);
    format!("{:016X}", hasher.finish())
}

/// `api/v1` or `apis/<g>/<v>`.
pub fn path_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The root index: every served group-version with the URL of its current document.
pub fn root(registry: &Registry) -> Value {
    let mut gvs: BTreeMap<String, (String, String)> = BTreeMap::new();
    for t in registry.all().filter(|t| t.established) {
        for v in &t.versions {
            gvs.insert(
                path_key(&t.group, &v.name),
                (t.group.clone(), v.name.clone()),
            );
        }
    }
    let mut paths = Map::new();
    for (key, (group, version)) in gvs {
        if let Some(document) = group_version_document(registry, &group, &version) {
            paths.insert(
                key.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={}", hash(&document))}),
            );
        }
    }
    json!({"paths": paths})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [API-05] the PATCH operation carries an operation-level fieldValidation parameter and a
    /// GVK extension object; schemas carry the GVK list.
    #[test]
    fn configmap_document() {
        let registry = Registry::with_builtins();
        let doc = group_version_document(&registry, "", "v1").unwrap();
        let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "", "version": "v1", "kind": "ConfigMap"})
        );
        let schema = &doc["components"]["schemas"]["io.k8s.api.core.v1.ConfigMap"];
        assert_eq!(
            schema["x-kubernetes-group-version-kind"],
            json!([{"group": "", "version": "v1", "kind": "ConfigMap"}])
        );
        assert!(doc["components"]["schemas"][OBJECT_META]["description"].is_string());
        let root = root(&registry);
        assert!(
            root["paths"]["api/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/api/v1?hash=")
        );
    }
}
