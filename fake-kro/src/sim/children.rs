//! Children of an instance in the two child modes of kro.md §5.11 — kept in memory (Virtual) or
//! server-side applied to the API (Applied) — with kro's child labels, the ApplySet identity and
//! the simulated controllers that fill child status.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::discovery::Scope;
use serde_json::{Value, json};
use sha2::Digest;
use tokio::time::Instant;

use super::script::Script;
use super::{Shared, lock, now};
use crate::graph::{COLLECTION_INDEX_LABEL, Item, merge};

/// Where children live (kro.md §5.11).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChildMode {
    /// Never written to the API; kept per instance in memory.
    #[default]
    Virtual,
    /// Server-side applied to the API exactly as kro does.
    Applied,
}

/// `applyset-<base64url(sha256(name.namespace.Kind.group))>-v1` (kro.md §5.1).
pub fn applyset_id(name: &str, namespace: &str, kind: &str, group: &str) -> String {
    let digest = sha2::Sha256::digest(format!("{name}.{namespace}.{kind}.{group}"));
    format!(
        "applyset-{}-v1",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

/// kro's label of a collection's size on each of its items.
pub const COLLECTION_SIZE_LABEL: &str = "kro.run/collection-size";

/// The key a child is remembered and observed under: the node id, and for a collection item
/// `<id>[<namespace>/<name>]`, its identity (no node id contains brackets), so that an item
/// keeps its key when the collection around it changes, as kro's ApplySet tracks identities.
pub fn child_key(id: &str, item: Option<Item>, desired: &Value) -> String {
    match item {
        Some(_) => format!(
            "{id}[{}/{}]",
            text(desired, "/metadata/namespace"),
            text(desired, "/metadata/name")
        ),
        None => id.to_string(),
    }
}

/// The instance a child belongs to, as kro labels it.
pub struct Owner<'a> {
    pub uid: &'a str,
    pub name: &'a str,
    /// Empty for cluster-scoped instances.
    pub namespace: &'a str,
    pub resource: &'a ApiResource,
    pub kro_version: &'a str,
}

impl Owner<'_> {
    pub fn applyset_id(&self) -> String {
        applyset_id(
            self.name,
            self.namespace,
            &self.resource.kind,
            &self.resource.group,
        )
    }

    /// Adds kro's child labels (kro.md §5.1) to a rendered child.
    pub fn label(&self, id: &str, child: &mut Value) {
        let mut labels = BTreeMap::from([
            ("kro.run/owned", "true".to_string()),
            ("kro.run/kro-version", self.kro_version.replace('+', "-")),
            ("kro.run/instance-id", self.uid.to_string()),
            ("kro.run/instance-name", self.name.to_string()),
            ("kro.run/instance-group", self.resource.group.clone()),
            ("kro.run/instance-version", self.resource.version.clone()),
            ("kro.run/instance-kind", self.resource.kind.clone()),
            ("app.kubernetes.io/managed-by", "kro".to_string()),
            ("kro.run/node-id", id.to_string()),
            ("applyset.kubernetes.io/part-of", self.applyset_id()),
        ]);
        if !self.namespace.is_empty() {
            labels.insert("kro.run/instance-namespace", self.namespace.to_string());
        }
        let metadata = &mut child["metadata"];
        if !metadata.get("labels").is_some_and(Value::is_object) {
            metadata["labels"] = json!({});
        }
        for (key, value) in labels {
            metadata["labels"][key] = json!(value);
        }
    }

    /// Adds kro's labels of a collection item (kro.md §5.11): its index and the collection's
    /// size, beside the child labels.
    pub fn label_item(&self, id: &str, item: Item, child: &mut Value) {
        self.label(id, child);
        child["metadata"]["labels"][COLLECTION_INDEX_LABEL] = json!(item.index.to_string());
        child["metadata"]["labels"][COLLECTION_SIZE_LABEL] = json!(item.size.to_string());
    }

    /// The ApplySet parent metadata kro applies to the instance before its children.
    pub fn applyset_parent(&self, children: &[&Value]) -> Value {
        let mut group_kinds: Vec<String> = children
            .iter()
            .map(|c| {
                let (group, _) = split_api_version(text(c, "/apiVersion"));
                let kind = text(c, "/kind");
                if group.is_empty() {
                    kind.to_string()
                } else {
                    format!("{kind}.{group}")
                }
            })
            .collect();
        group_kinds.sort();
        group_kinds.dedup();
        let mut namespaces: Vec<&str> = children
            .iter()
            .map(|c| text(c, "/metadata/namespace"))
            .filter(|n| !n.is_empty() && *n != self.namespace)
            .collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        let mut metadata = json!({
            "name": self.name,
            "labels": {"applyset.kubernetes.io/id": self.applyset_id()},
            "annotations": {
                "applyset.kubernetes.io/tooling": format!("kro/{}", self.kro_version),
                "applyset.kubernetes.io/contains-group-kinds": group_kinds.join(","),
                "applyset.kubernetes.io/additional-namespaces": namespaces.join(","),
            }
        });
        if !self.namespace.is_empty() {
            metadata["namespace"] = json!(self.namespace);
        }
        json!({"apiVersion": self.resource.api_version, "kind": self.resource.kind, "metadata": metadata})
    }
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// What the simulated controller of a kind writes into a child (kro.md §5.11 child simulators).
pub fn simulate_status(object: &mut Value) {
    let kind = text(object, "/kind").to_string();
    let generation = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    match kind.as_str() {
        "Deployment" | "StatefulSet" | "ReplicaSet" => {
            let replicas = object
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let mut status = json!({"observedGeneration": generation, "replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas, "updatedReplicas": replicas});
            if kind == "Deployment" {
                status["conditions"] = json!([
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
                ]);
            }
            object["status"] = status;
        }
        "Service" => {
            if object.pointer("/spec/clusterIP").is_none() {
                object["spec"]["clusterIP"] = json!("10.96.0.10");
            }
            if text(object, "/spec/type") == "LoadBalancer" {
                let hostname = format!(
                    "{}.{}.lb.local",
                    text(object, "/metadata/name"),
                    text(object, "/metadata/namespace")
                );
                object["status"] = json!({"loadBalancer": {"ingress": [{"hostname": hostname}]}});
            }
        }
        "Job" => {
            object["status"] =
                json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})
        }
        _ => {}
    }
}

/// The children of one instance during one pass: reads, applies and deletes them in the
/// configured mode, and plays the children's controllers.
pub struct Children<'a> {
    pub mode: ChildMode,
    pub simulators: bool,
    pub client: &'a Client,
    pub shared: &'a Arc<Mutex<Shared>>,
    pub instance_uid: &'a str,
    pub first_pass: Instant,
    pub script: &'a Script,
}

impl Children<'_> {
    /// The observed object of node `id` whose desired object is `desired` (None: not found).
    pub async fn get(&self, id: &str, desired: &Value) -> Result<Option<Value>, String> {
        match self.mode {
            ChildMode::Virtual => {
                let stored = lock(self.shared)
                    .instances
                    .get(self.instance_uid)
                    .and_then(|m| m.children.get(id).cloned());
                Ok(stored.map(|s| self.observe_virtual(id, s)))
            }
            ChildMode::Applied => {
                let api = self.api_for(desired).await?;
                match api.get_opt(text(desired, "/metadata/name")).await {
                    Ok(found) => found.map(to_value).transpose(),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }

    /// The object an external reference points at (Virtual: the reference itself, as if it
    /// existed, with the script's overlay).
    pub async fn get_external(&self, id: &str, desired: &Value) -> Result<Option<Value>, String> {
        match self.mode {
            ChildMode::Virtual => Ok(Some(self.observe_virtual(id, desired.clone()))),
            ChildMode::Applied => self.get(id, desired).await,
        }
    }

    /// The items of collection `id` last applied, by child key (what pruning deletes).
    pub fn remembered_items(&self, id: &str) -> Vec<(String, Value)> {
        let prefix = format!("{id}[");
        lock(self.shared)
            .instances
            .get(self.instance_uid)
            .map(|m| {
                m.children
                    .iter()
                    .filter(|(key, _)| key.starts_with(&prefix))
                    .map(|(key, v)| (key.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The desired object last applied for node `id` (what pruning deletes).
    pub fn remembered(&self, id: &str) -> Option<Value> {
        lock(self.shared)
            .instances
            .get(self.instance_uid)
            .and_then(|m| m.children.get(id).cloned())
    }

    fn remember(&self, id: &str, desired: &Value) -> bool {
        let mut shared = lock(self.shared);
        let memory = shared
            .instances
            .entry(self.instance_uid.to_string())
            .or_default();
        let changed = memory.children.get(id) != Some(desired);
        if changed {
            memory.children.insert(id.to_string(), desired.clone());
        }
        changed
    }

    /// Applies `desired`; returns the observed object and whether the cluster changed.
    pub async fn apply(
        &self,
        id: &str,
        desired: &Value,
        before: Option<&Value>,
    ) -> Result<(Value, bool), String> {
        match self.mode {
            ChildMode::Virtual => {
                let mutated = self.remember(id, desired);
                Ok((self.observe_virtual(id, desired.clone()), mutated))
            }
            ChildMode::Applied => {
                let api = self.api_for(desired).await?;
                let name = text(desired, "/metadata/name");
                let applied = api
                    .patch(
                        name,
                        &PatchParams::apply("kro.run/applyset").force(),
                        &Patch::Apply(desired),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                let applied = to_value(applied)?;
                self.remember(id, desired);
                let version = |o: &Value| text(o, "/metadata/resourceVersion").to_string();
                let mutated = before.is_none_or(|b| version(b) != version(&applied));
                let observed = self.play_controllers(id, &api, applied).await?;
                Ok((observed, mutated))
            }
        }
    }

    /// Deletes the child of node `id` (observed as `object`).
    pub async fn delete(&self, id: &str, object: &Value) -> Result<(), String> {
        if let Some(memory) = lock(self.shared).instances.get_mut(self.instance_uid) {
            memory.children.remove(id);
        }
        match self.mode {
            ChildMode::Virtual => Ok(()),
            ChildMode::Applied => {
                let api = self.api_for(object).await?;
                match api
                    .delete(text(object, "/metadata/name"), &DeleteParams::default())
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }

    /// A virtual child as an observer sees it: server metadata synthesised, simulated status,
    /// then the script's overlay.
    fn observe_virtual(&self, id: &str, mut object: Value) -> Value {
        object["metadata"]["uid"] = json!(format!("{}-{id}", self.instance_uid));
        object["metadata"]["resourceVersion"] = json!("1");
        object["metadata"]["generation"] = json!(1);
        object["metadata"]["creationTimestamp"] = json!(now());
        simulate_status(&mut object);
        if let Some(overlay) = self.overlay(id) {
            merge(&mut object, overlay);
        }
        object
    }

    fn overlay(&self, id: &str) -> Option<&Value> {
        self.script.overlay(id, self.first_pass)
    }

    /// Applied mode: the simulated controller's status and the script's overlay are written
    /// to the API (status through `/status`, the rest by merge patch) when they change it.
    async fn play_controllers(
        &self,
        id: &str,
        api: &Api<DynamicObject>,
        current: Value,
    ) -> Result<Value, String> {
        let mut target = current.clone();
        if self.simulators {
            simulate_status(&mut target);
        }
        let overlay = self.overlay(id);
        if let Some(overlay) = overlay {
            merge(&mut target, overlay);
        }
        let name = text(&current, "/metadata/name").to_string();
        let mut latest = current.clone();
        let without_status = |o: &Value| {
            let mut o = o.clone();
            if let Some(map) = o.as_object_mut() {
                map.remove("status");
            }
            o
        };
        if let Some(overlay) = overlay
            && without_status(&target) != without_status(&current)
        {
            let patch = without_status(overlay);
            let patched = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map_err(|e| e.to_string())?;
            latest = to_value(patched)?;
        }
        if target.get("status").is_some() && target.get("status") != latest.get("status") {
            let mut body = latest.clone();
            body["status"] = target["status"].clone();
            let object: DynamicObject = serde_json::from_value(body).map_err(|e| e.to_string())?;
            let written = api
                .replace_status(&name, &PostParams::default(), &object)
                .await
                .map_err(|e| e.to_string())?;
            latest = to_value(written)?;
        }
        Ok(latest)
    }

    /// The API of a child's kind, found by discovery once and cached.
    async fn api_for(&self, object: &Value) -> Result<Api<DynamicObject>, String> {
        let api_version = text(object, "/apiVersion").to_string();
        let kind = text(object, "/kind").to_string();
        let key = (api_version.clone(), kind.clone());
        let cached = lock(self.shared).kinds.get(&key).cloned();
        let (resource, namespaced) = match cached {
            Some(found) => found,
            None => {
                let (group, version) = split_api_version(&api_version);
                let gvk = GroupVersionKind::gvk(group, version, &kind);
                let (resource, capabilities) = kube::discovery::pinned_kind(self.client, &gvk)
                    .await
                    .map_err(|e| format!("resolving {api_version}, Kind={kind}: {e}"))?;
                let found = (resource, capabilities.scope == Scope::Namespaced);
                lock(self.shared).kinds.insert(key, found.clone());
                found
            }
        };
        Ok(if namespaced {
            Api::namespaced_with(
                self.client.clone(),
                text(object, "/metadata/namespace"),
                &resource,
            )
        } else {
            Api::all_with(self.client.clone(), &resource)
        })
    }
}

/// Discovered child kinds: (apiVersion, kind) → (resource, namespaced).
pub type KindCache = HashMap<(String, String), (ApiResource, bool)>;

fn to_value(object: DynamicObject) -> Result<Value, String> {
    serde_json::to_value(object).map_err(|e| e.to_string())
}

/// Whether a child is terminating.
pub fn is_terminating(object: &Value) -> bool {
    object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applyset_id_is_sha256_base64url() {
        let id = applyset_id("demo", "default", "DemoControlPlane", "kro.run");
        assert!(id.starts_with("applyset-") && id.ends_with("-v1"));
        // 32 bytes of sha256 → 43 base64url characters without padding.
        assert_eq!(id.len(), "applyset-".len() + 43 + "-v1".len());
        assert!(!id.contains('=') && !id.contains('+') && !id.contains('/'));
        assert_ne!(
            id,
            applyset_id("demo", "other", "DemoControlPlane", "kro.run")
        );
    }

    #[test]
    fn applyset_parent_lists_group_kinds_and_other_namespaces() {
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("kro.run", "v1alpha1", "Demo"),
            "demos",
        );
        let owner = Owner {
            uid: "u",
            name: "demo",
            namespace: "default",
            resource: &resource,
            kro_version: "v0.9.3",
        };
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"namespace": "default"}});
        let service =
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "infra"}});
        let parent = owner.applyset_parent(&[&service, &deployment, &service]);
        let annotations = &parent["metadata"]["annotations"];
        assert_eq!(
            annotations["applyset.kubernetes.io/contains-group-kinds"],
            "Deployment.apps,Service"
        );
        assert_eq!(
            annotations["applyset.kubernetes.io/additional-namespaces"],
            "infra"
        );
        assert_eq!(annotations["applyset.kubernetes.io/tooling"], "kro/v0.9.3");
        let mut child = json!({"metadata": {"labels": {"app": "x"}}});
        owner.label("deployment", &mut child);
        let labels = &child["metadata"]["labels"];
        assert_eq!(labels["app"], "x");
        assert_eq!(labels["kro.run/node-id"], "deployment");
        assert_eq!(labels["kro.run/instance-namespace"], "default");
        assert_eq!(
            labels["applyset.kubernetes.io/part-of"],
            parent["metadata"]["labels"]["applyset.kubernetes.io/id"]
        );
    }
}
