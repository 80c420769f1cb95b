//! The request sequences, one module per area. Each sequence is plain code against a [`Ctx`]:
//! the same function runs on both servers; `check`, `until`, `collect` and `kubectl` record
//! what is compared, `send` is setup. Each sequence works in its own namespace (`c.ns`) and
//! names its cluster-scoped objects with `c.prefix`.

use serde_json::{Value, json};

use crate::{Ctx, FidelityError, Req, Sequence};

mod crd;
mod crud;
mod discovery;
mod events;
mod kro;
mod lifecycle;
mod patch;
mod watch;

/// Every sequence of the suite.
pub fn all() -> Vec<Sequence> {
    let mut all = Vec::new();
    all.extend(crud::sequences());
    all.extend(patch::sequences());
    all.extend(crd::sequences());
    all.extend(watch::sequences());
    all.extend(lifecycle::sequences());
    all.extend(events::sequences());
    all.extend(discovery::sequences());
    all.extend(kro::sequences());
    all
}

/// A ConfigMap.
pub fn configmap(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

/// The test CRD of a sequence: `widgets.<prefix>.example.com`, namespaced, `v1`, with status
/// and scale subresources, printer columns, defaults, OpenAPI and CEL validations, and the
/// list/map topologies SSA distinguishes.
pub fn widget_crd(c: &Ctx) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{}", group(c))},
        "spec": {
            "group": group(c),
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList", "shortNames": ["wd"]},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".status.selector"}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Mode", "type": "string", "jsonPath": ".spec.mode", "priority": 1}
                ],
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "size": {"type": "integer", "minimum": 1, "maximum": 100},
                        "replicas": {"type": "integer"},
                        "mode": {"type": "string", "default": "fast", "enum": ["fast", "slow"]},
                        "name": {"type": "string", "maxLength": 8, "pattern": "^[a-z]+$"},
                        "id": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "id is immutable"}]},
                        "low": {"type": "integer"},
                        "high": {"type": "integer"},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                            "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
                        "args": {"type": "array", "items": {"type": "string"}},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}}
                    }, "x-kubernetes-validations": [
                        {"rule": "!has(self.low) || !has(self.high) || self.low <= self.high", "message": "low must not exceed high"},
                        {"rule": "!has(oldSelf.size) || !has(self.size) || self.size >= oldSelf.size", "message": "size may only grow"}
                    ]},
                    "status": {"type": "object", "properties": {
                        "ready": {"type": "boolean"},
                        "replicas": {"type": "integer"},
                        "selector": {"type": "string"},
                        "observedGeneration": {"type": "integer"}
                    }}
                }}}
            }]
        }
    })
}

/// The API group of the sequence's CRDs.
pub fn group(c: &Ctx) -> String {
    format!("{}.example.com", c.prefix)
}

/// The widgets collection of the sequence's namespace.
pub fn widgets(c: &Ctx) -> String {
    format!("/apis/{}/v1/namespaces/{}/widgets", group(c), c.ns)
}

pub fn widget(c: &Ctx, name: &str, spec: Value) -> Value {
    json!({"apiVersion": format!("{}/v1", group(c)), "kind": "Widget", "metadata": {"name": name}, "spec": spec})
}

/// Installs the widget CRD (unrecorded).
pub async fn install_widgets(c: &Ctx) -> Result<(), FidelityError> {
    c.install_crd(widget_crd(c)).await
}

/// Waits until `req` answers 404 (the object is gone): the proof a negative step waits for.
pub async fn gone(c: &Ctx, path: &str) -> Result<(), FidelityError> {
    c.wait_for(&Req::get(path), |r| r.status == 404).await?;
    Ok(())
}
