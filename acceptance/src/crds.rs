//! The Cluster API CRDs the scenarios use on the embedded target, written for this project:
//! the fields the simulated core and the providers read are typed, the rest is preserved.

use serde_json::{Value, json};

fn open() -> Value {
    json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

fn reference() -> Value {
    json!({"type": "object", "required": ["apiGroup", "kind", "name"], "properties": {
        "apiGroup": {"type": "string", "minLength": 1}, "kind": {"type": "string", "minLength": 1},
        "name": {"type": "string", "minLength": 1}}})
}

fn conditions() -> Value {
    json!({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
        "items": {"type": "object", "required": ["type", "status", "lastTransitionTime", "reason"],
            "properties": {"type": {"type": "string"}, "status": {"type": "string"},
                "observedGeneration": {"type": "integer", "format": "int64"},
                "lastTransitionTime": {"type": "string", "format": "date-time"},
                "reason": {"type": "string"}, "message": {"type": "string"}}}})
}

#[allow(clippy::too_many_arguments)]
fn crd(
    provider: &str,
    group: &str,
    kind: &str,
    plural: &str,
    short: &[&str],
    spec: Value,
    status: Value,
    columns: Value,
) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}"),
            "labels": {"cluster.x-k8s.io/provider": provider, "cluster.x-k8s.io/v1beta2": "v1beta2"}},
        "spec": {"group": group, "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(),
                "listKind": format!("{kind}List"), "shortNames": short, "categories": ["cluster-api"]},
            "versions": [{"name": "v1beta2", "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": spec, "status": status}}}}]}})
}

/// `Cluster`, `ClusterClass` and `Machine` of `cluster.x-k8s.io/v1beta2`.
pub fn cluster_api() -> Vec<Value> {
    let endpoint = json!({"type": "object", "properties": {
        "host": {"type": "string"}, "port": {"type": "integer", "format": "int32"}}});
    let cluster_spec = json!({"type": "object", "properties": {
        "paused": {"type": "boolean"},
        "controlPlaneEndpoint": endpoint,
        "controlPlaneRef": reference(),
        "infrastructureRef": reference(),
        "topology": {"type": "object", "required": ["classRef", "version"], "properties": {
            "classRef": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string", "minLength": 1}, "namespace": {"type": "string"}}},
            "version": {"type": "string", "minLength": 1},
            "variables": {"type": "array", "items": {"type": "object", "required": ["name", "value"],
                "properties": {"name": {"type": "string"}, "value": {"x-kubernetes-preserve-unknown-fields": true}}}},
            "controlPlane": open(), "workers": open()}}},
        // Cluster API's validating webhook, as a CEL rule with the same error.
        "x-kubernetes-validations": [{
            "rule": "has(self.controlPlaneRef) || has(self.infrastructureRef) || has(self.topology)",
            "message": "one of spec.controlPlaneRef, spec.infrastructureRef or spec.topology must be set",
            "reason": "FieldValueForbidden"}],
        "x-kubernetes-preserve-unknown-fields": true});
    let cluster_status = json!({"type": "object", "properties": {
        "initialization": {"type": "object", "properties": {
            "infrastructureProvisioned": {"type": "boolean"},
            "controlPlaneInitialized": {"type": "boolean"}}},
        "conditions": conditions(),
        "phase": {"type": "string"},
        "observedGeneration": {"type": "integer", "format": "int64"}},
        "x-kubernetes-preserve-unknown-fields": true});
    let cluster_columns = json!([
        {"name": "ClusterClass", "type": "string", "jsonPath": ".spec.topology.classRef.name"},
        {"name": "Available", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Available\")].status"},
        {"name": "Paused", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Paused\")].status", "priority": 10},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Version", "type": "string", "jsonPath": ".spec.topology.version"}]);
    let template_ref = json!({"type": "object", "required": ["templateRef"], "properties": {
        "templateRef": {"type": "object", "required": ["apiVersion", "kind", "name"], "properties": {
            "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "name": {"type": "string"}}}},
        "x-kubernetes-preserve-unknown-fields": true});
    let class_spec = json!({"type": "object", "properties": {
        "controlPlane": template_ref, "infrastructure": template_ref,
        "variables": {"type": "array", "items": open()},
        "patches": {"type": "array", "items": open()}},
        "x-kubernetes-preserve-unknown-fields": true});
    let machine_spec = json!({"type": "object", "required": ["clusterName"], "properties": {
        "clusterName": {"type": "string", "minLength": 1},
        "version": {"type": "string"},
        "bootstrap": open(), "infrastructureRef": reference()},
        "x-kubernetes-preserve-unknown-fields": true});
    vec![
        crd(
            "cluster-api",
            "cluster.x-k8s.io",
            "Cluster",
            "clusters",
            &["cl"],
            cluster_spec,
            cluster_status,
            cluster_columns,
        ),
        crd(
            "cluster-api",
            "cluster.x-k8s.io",
            "ClusterClass",
            "clusterclasses",
            &["cc"],
            class_spec,
            open(),
            json!([{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]),
        ),
        crd(
            "cluster-api",
            "cluster.x-k8s.io",
            "Machine",
            "machines",
            &["ma"],
            machine_spec,
            json!({"type": "object", "properties": {"conditions": conditions()}, "x-kubernetes-preserve-unknown-fields": true}),
            json!([{"name": "Cluster", "type": "string", "jsonPath": ".spec.clusterName"},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]),
        ),
    ]
}

/// Just enough of CAPD (`DockerCluster`, `DockerMachine`, `DockerMachineTemplate`) and of the
/// kubeadm bootstrap provider (`KubeadmConfig`) for [ACC-50] on the embedded target.
pub fn capd_kubeadm() -> Vec<Value> {
    let endpoint = json!({"type": "object", "properties": {
        "host": {"type": "string"}, "port": {"type": "integer", "format": "int32"}}});
    let status = json!({"type": "object", "properties": {"conditions": conditions()},
        "x-kubernetes-preserve-unknown-fields": true});
    let age = json!([{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]);
    let infrastructure = "infrastructure.cluster.x-k8s.io";
    vec![
        crd(
            "infrastructure-docker",
            infrastructure,
            "DockerCluster",
            "dockerclusters",
            &[],
            json!({"type": "object", "properties": {"controlPlaneEndpoint": endpoint},
                "x-kubernetes-preserve-unknown-fields": true}),
            status.clone(),
            age.clone(),
        ),
        crd(
            "infrastructure-docker",
            infrastructure,
            "DockerMachine",
            "dockermachines",
            &[],
            json!({"type": "object", "properties": {"customImage": {"type": "string"}, "providerID": {"type": "string"}},
                "x-kubernetes-preserve-unknown-fields": true}),
            status.clone(),
            age.clone(),
        ),
        crd(
            "infrastructure-docker",
            infrastructure,
            "DockerMachineTemplate",
            "dockermachinetemplates",
            &[],
            json!({"type": "object", "required": ["template"], "properties": {"template": {
                "type": "object", "required": ["spec"], "properties": {"metadata": open(), "spec": open()}}}}),
            open(),
            age.clone(),
        ),
        crd(
            "bootstrap-kubeadm",
            "bootstrap.cluster.x-k8s.io",
            "KubeadmConfig",
            "kubeadmconfigs",
            &[],
            open(),
            status,
            age,
        ),
    ]
}
