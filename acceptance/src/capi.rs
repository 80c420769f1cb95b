//! The simulated Cluster API core for the embedded target (provider.md [ACC-03]): what the real
//! Cluster and topology controllers do that the scenarios depend on, through an ordinary
//! client. It owns Cluster status, the owner references and labels of the referenced objects,
//! the one-time endpoint copy, deletion order, and ClusterClass topology generation.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy,
};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::{Map, Value, json};

pub use crate::sim_common::cluster_resource;
use crate::sim_common::{Error, docker_cluster, put, resource, valid_endpoint, write_status};

/// The Cluster finalizer of the real core.
pub const FINALIZER: &str = "cluster.cluster.x-k8s.io";
const CLUSTER_NAME_LABEL: &str = "cluster.x-k8s.io/cluster-name";
const MANAGER: &str = "capi-cluster-sim";
const TOPOLOGY_MANAGER: &str = "capi-topology-sim";

/// The referenced kinds whose changes re-trigger their Cluster (by the cluster-name label).
pub fn watched_kinds() -> Vec<ApiResource> {
    vec![
        resource(
            "controlplane.cluster.x-k8s.io",
            "v1alpha1",
            "Kany8sControlPlane",
            "kany8scontrolplanes",
        ),
        resource(
            "infrastructure.cluster.x-k8s.io",
            "v1alpha1",
            "Kany8sCluster",
            "kany8sclusters",
        ),
        docker_cluster(),
    ]
}

struct Context {
    client: Client,
    /// Discovered kinds by (group, kind).
    kinds: std::sync::Mutex<BTreeMap<(String, String), ApiResource>>,
    /// The caches of the [`watched_kinds`] by (group, kind).
    caches: BTreeMap<(String, String), (ApiResource, Store<DynamicObject>)>,
}

/// A referenced object: from the cache of its kind when it holds it; a GET otherwise (a kind not
/// watched, or an object just created whose event has not arrived — it carries no
/// cluster-name label yet, so its event would not trigger the Cluster again).
async fn referenced(
    ctx: &Context,
    kind: &ApiResource,
    namespace: &str,
    name: &str,
) -> Result<Option<DynamicObject>, Error> {
    // The store's keys carry the watched kind's ApiResource, which discovery's need not equal.
    if let Some((watched, cache)) = ctx.caches.get(&(kind.group.clone(), kind.kind.clone()))
        && let Some(found) =
            cache.get(&ObjectRef::new_with(name, watched.clone()).within(namespace))
    {
        return Ok(Some(found.as_ref().clone()));
    }
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, kind);
    Ok(api.get_opt(name).await?)
}

/// Runs the simulated core until dropped.
pub async fn run(client: Client) {
    let clusters: Api<DynamicObject> = Api::all_with(client.clone(), &cluster_resource());
    let mut controller =
        Controller::new_with(clusters, watcher::Config::default(), cluster_resource());
    let mut caches = BTreeMap::new();
    for kind in watched_kinds() {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &kind);
        // The referenced objects are read from the watch's cache, as Cluster API's
        // controllers read theirs: GETs of them were a third of the simulated core's load.
        let writer = reflector::store::Writer::new(kind.clone());
        caches.insert(
            (kind.group.clone(), kind.kind.clone()),
            (kind.clone(), writer.as_reader()),
        );
        let stream =
            reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
                .default_backoff()
                .touched_objects();
        controller = controller.watches_stream_with(stream, by_label, kind);
    }
    let secrets: Api<PartialObjectMeta<Secret>> = Api::all(client.clone());
    controller
        .watches(secrets, watcher::Config::default(), |secret| {
            by_label(secret)
        })
        .run(
            reconcile,
            error_policy,
            Arc::new(Context {
                client,
                kinds: std::sync::Mutex::default(),
                caches,
            }),
        )
        .for_each(|_| async {})
        .await;
}

fn by_label<K: kube::Resource>(object: K) -> Option<ObjectRef<DynamicObject>> {
    let name = object
        .meta()
        .labels
        .as_ref()?
        .get(CLUSTER_NAME_LABEL)?
        .clone();
    let namespace = object.meta().namespace.clone()?;
    Some(ObjectRef::new_with(&name, cluster_resource()).within(&namespace))
}

/// How soon a deleting Cluster looks again at the objects it waits for, besides their watch.
const DELETE_REQUEUE: Duration = Duration::from_secs(5);

fn error_policy(_: Arc<DynamicObject>, error: &Error, _: Arc<Context>) -> Action {
    tracing::debug!(%error, "simulated cluster reconcile failed");
    Action::requeue(Duration::from_millis(500))
}

/// Resolves `{apiGroup, kind}` to a served resource through discovery (cached).
async fn resolve(ctx: &Context, group: &str, kind: &str) -> Result<ApiResource, Error> {
    let key = (group.to_string(), kind.to_string());
    if let Some(found) = ctx.kinds.lock().ok().and_then(|k| k.get(&key).cloned()) {
        return Ok(found);
    }
    let api_group = kube::discovery::group(&ctx.client, group).await?;
    let resource = api_group
        .recommended_kind(kind)
        .map(|(resource, _)| resource)
        .ok_or_else(|| Error::Invalid(format!("{group} does not serve {kind}")))?;
    if let Ok(mut kinds) = ctx.kinds.lock() {
        kinds.insert(key, resource.clone());
    }
    Ok(resource)
}

fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn condition_true(object: &Value, type_: &str) -> bool {
    condition(object, type_).is_some_and(|c| c["status"] == "True")
}

/// A kubeconfig with at least one cluster that has a server ([ACC-03] (5), no connection).
fn kubeconfig_valid(secret: &Secret, cluster: &str) -> bool {
    let typed = secret.type_.as_deref() == Some("cluster.x-k8s.io/secret");
    let labelled = secret.labels().get(CLUSTER_NAME_LABEL).map(String::as_str) == Some(cluster);
    let Some(value) = secret.data.as_ref().and_then(|d| d.get("value")) else {
        return false;
    };
    let Ok(document) = yaml_serde::from_slice::<Value>(&value.0) else {
        return false;
    };
    let server = document["clusters"]
        .as_array()
        .and_then(|c| c.first())
        .and_then(|c| c["cluster"]["server"].as_str())
        .is_some_and(|s| !s.is_empty());
    typed && labelled && server
}

async fn reconcile(cluster: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let client = &ctx.client;
    let namespace = cluster.namespace().unwrap_or_default();
    let name = cluster.name_any();
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &namespace, &cluster_resource());
    let object = serde_json::to_value(cluster.as_ref())?;
    let spec = &object["spec"];
    let references: Vec<Value> = ["controlPlaneRef", "infrastructureRef"]
        .iter()
        .filter_map(|k| spec.get(*k).filter(|r| r.is_object()).cloned())
        .collect();

    // [ACC-03] (7): control plane first, then infrastructure, then the finalizer.
    if cluster.metadata.deletion_timestamp.is_some() {
        for reference in &references {
            let kind = resolve(
                &ctx,
                reference["apiGroup"].as_str().unwrap_or_default(),
                reference["kind"].as_str().unwrap_or_default(),
            )
            .await?;
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &kind);
            let ref_name = reference["name"].as_str().unwrap_or_default();
            if let Some(found) = referenced(&ctx, &kind, &namespace, ref_name).await? {
                if found.metadata.deletion_timestamp.is_none() {
                    let params = DeleteParams {
                        propagation_policy: Some(PropagationPolicy::Background),
                        ..DeleteParams::default()
                    };
                    api.delete(ref_name, &params).await?;
                }
                // The watch of the referenced kinds brings the Cluster back when the object is
                // gone; the requeue is only a safety net, after Cluster API's own delete
                // requeue (5 s) — every 500 ms it was 20,000 passes a second while 10,000
                // Clusters waited, the harness's own load on the server under test.
                return Ok(Action::requeue(DELETE_REQUEUE));
            }
        }
        let finalizers: Vec<String> = cluster
            .finalizers()
            .iter()
            .filter(|f| *f != FINALIZER)
            .cloned()
            .collect();
        if finalizers.len() != cluster.finalizers().len() {
            clusters.patch(&name, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": finalizers, "resourceVersion": cluster.resource_version()}}))).await?;
        }
        return Ok(Action::await_change());
    }
    if !cluster.finalizers().iter().any(|f| f == FINALIZER) {
        let mut finalizers = cluster.finalizers().to_vec();
        finalizers.push(FINALIZER.to_string());
        clusters.patch(&name, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": finalizers, "resourceVersion": cluster.resource_version()}}))).await?;
        return Ok(Action::await_change());
    }
    let generation = cluster.metadata.generation.unwrap_or(0);
    let mut conditions: Vec<Value> = object["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if spec["paused"] == true {
        put(
            &mut conditions,
            "Paused",
            true,
            "Paused",
            "Cluster spec.paused is set to true",
            generation,
        );
        write_status(
            &clusters,
            &name,
            &object["status"],
            json!({"conditions": conditions}),
        )
        .await?;
        return Ok(Action::await_change());
    }
    put(
        &mut conditions,
        "Paused",
        false,
        "NotPaused",
        "",
        generation,
    );

    let topology = spec.get("topology").filter(|t| t.is_object()).cloned();
    if let Some(topology) = &topology
        && reconcile_topology(&ctx, &object, topology).await?
    {
        // The Cluster's references changed; the update re-triggers.
        return Ok(Action::await_change());
    }

    // [ACC-03] (1): owner reference and cluster-name label on the referenced objects.
    let mut control_plane = None;
    let mut infrastructure = None;
    for (key, slot) in [
        ("controlPlaneRef", &mut control_plane),
        ("infrastructureRef", &mut infrastructure),
    ] {
        let Some(reference) = spec.get(key).filter(|r| r.is_object()) else {
            continue;
        };
        let kind = resolve(
            &ctx,
            reference["apiGroup"].as_str().unwrap_or_default(),
            reference["kind"].as_str().unwrap_or_default(),
        )
        .await?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &kind);
        let ref_name = reference["name"].as_str().unwrap_or_default();
        let Some(found) = referenced(&ctx, &kind, &namespace, ref_name).await? else {
            continue;
        };
        let owned = found
            .owner_references()
            .iter()
            .any(|o| Some(&o.uid) == cluster.metadata.uid.as_ref());
        let labelled = found.labels().get(CLUSTER_NAME_LABEL) == Some(&name);
        if !owned || !labelled {
            let body = json!({"apiVersion": kind.api_version, "kind": kind.kind,
                "metadata": {"name": ref_name, "namespace": namespace, "labels": {CLUSTER_NAME_LABEL: name},
                    "ownerReferences": [{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "name": name,
                        "uid": cluster.metadata.uid, "controller": topology.is_some(), "blockOwnerDeletion": true}]}});
            api.patch(
                ref_name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await?;
        }
        *slot = Some(serde_json::to_value(found)?);
    }

    // (2) infrastructure, (3) control plane and the one-time endpoint copy, (4) mirrors.
    let has_infra = spec.get("infrastructureRef").is_some_and(Value::is_object);
    let infra_provisioned = !has_infra
        || infrastructure
            .as_ref()
            .is_some_and(|i| i["status"]["initialization"]["provisioned"] == true);
    let cp_initialized = control_plane
        .as_ref()
        .is_some_and(|c| c["status"]["initialization"]["controlPlaneInitialized"] == true);
    if cp_initialized && !valid_endpoint(&spec["controlPlaneEndpoint"]) {
        let from_infra = infrastructure
            .as_ref()
            .map(|i| i["spec"]["controlPlaneEndpoint"].clone())
            .filter(valid_endpoint);
        let from_cp = control_plane
            .as_ref()
            .map(|c| c["spec"]["controlPlaneEndpoint"].clone())
            .filter(valid_endpoint);
        if let Some(endpoint) = from_infra.or(from_cp) {
            clusters
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"controlPlaneEndpoint": endpoint}})),
                )
                .await?;
            return Ok(Action::await_change());
        }
    }
    let infra_ready = !has_infra
        || infrastructure
            .as_ref()
            .is_some_and(|i| condition_true(i, "Ready"));
    let mirror = |object: &Option<Value>, type_: &str| -> (bool, String, String) {
        match object.as_ref().and_then(|o| condition(o, type_)) {
            Some(c) => (
                c["status"] == "True",
                c["reason"].as_str().unwrap_or("Unknown").to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            ),
            None => (
                false,
                "NotReported".to_string(),
                format!("{type_} not reported yet"),
            ),
        }
    };
    let (infra_ok, infra_reason, infra_message) = if has_infra {
        mirror(&infrastructure, "Ready")
    } else {
        (true, "NoInfrastructure".into(), String::new())
    };
    put(
        &mut conditions,
        "InfrastructureReady",
        infra_ok && infra_ready,
        &infra_reason,
        &infra_message,
        generation,
    );
    let (cp_available, cp_reason, cp_message) = mirror(&control_plane, "Available");
    put(
        &mut conditions,
        "ControlPlaneAvailable",
        cp_available,
        &cp_reason,
        &cp_message,
        generation,
    );
    put(
        &mut conditions,
        "ControlPlaneInitialized",
        cp_initialized,
        if cp_initialized {
            "Initialized"
        } else {
            "NotInitialized"
        },
        "",
        generation,
    );

    // (5) the remote connection probe, from the kubeconfig Secret alone; like Cluster API's
    // ClusterCache it is tried once the infrastructure is provisioned (not only after the
    // control plane is initialized: a kubeadm control plane is initialized by the probe).
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let probe = infra_provisioned
        && secrets
            .get_opt(&format!("{name}-kubeconfig"))
            .await?
            .is_some_and(|s| kubeconfig_valid(&s, &name));
    put(
        &mut conditions,
        "RemoteConnectionProbe",
        probe,
        if probe {
            "ProbeSucceeded"
        } else {
            "ProbeFailed"
        },
        "",
        generation,
    );
    // (6)
    let available = probe && infra_ok && infra_ready && cp_available;
    put(
        &mut conditions,
        "Available",
        available,
        if available {
            "Available"
        } else {
            "NotAvailable"
        },
        "",
        generation,
    );
    let phase = if available || (cp_initialized && infra_provisioned) {
        "Provisioned"
    } else {
        "Provisioning"
    };
    write_status(&clusters, &name, &object["status"], json!({
        "initialization": {"infrastructureProvisioned": infra_provisioned, "controlPlaneInitialized": cp_initialized},
        "conditions": conditions, "phase": phase, "observedGeneration": generation})).await?;
    Ok(Action::await_change())
}

fn suffix(uid: &str) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    uid.hash(&mut hasher);
    let mut n = hasher.finish();
    let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| {
            let c = alphabet[(n % alphabet.len() as u64) as usize] as char;
            n /= alphabet.len() as u64;
            c
        })
        .collect()
}

/// Whether `whole` holds every field of `part` with the same value (objects key by key,
/// anything else by equality): a generated object is up to date when its spec contains the
/// template's. The simulated core carries its own rather than the provider's helper, so a
/// scenario passes because the provider behaves as specified, not because both share code.
fn json_contains(whole: &Value, part: &Value) -> bool {
    match (whole.as_object(), part.as_object()) {
        (Some(whole), Some(part)) => part
            .iter()
            .all(|(key, value)| whole.get(key).is_some_and(|w| json_contains(w, value))),
        _ => whole == part,
    }
}

/// Sets `path` (a JSON pointer) in `target`, creating missing objects on the way.
fn set_path(target: &mut Value, path: &str, value: Value) -> Result<(), Error> {
    let tokens: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut cursor = target;
    for (i, token) in tokens.iter().enumerate() {
        let last = i + 1 == tokens.len();
        let map = cursor
            .as_object_mut()
            .ok_or_else(|| Error::Invalid(format!("patch path {path}: not an object")))?;
        if last {
            map.insert(token.clone(), value);
            return Ok(());
        }
        cursor = map.entry(token.clone()).or_insert_with(|| json!({}));
    }
    Ok(())
}

/// Topology: the control plane and infrastructure cluster generated from the ClusterClass
/// templates, the version from `topology.version`, variables applied through the class's
/// JSON patches; returns whether the Cluster's references were set now.
async fn reconcile_topology(
    ctx: &Context,
    cluster: &Value,
    topology: &Value,
) -> Result<bool, Error> {
    let client = &ctx.client;
    let namespace = cluster["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    let name = cluster["metadata"]["name"].as_str().unwrap_or_default();
    let uid = cluster["metadata"]["uid"].as_str().unwrap_or_default();
    let class_name = topology["classRef"]["name"].as_str().unwrap_or_default();
    let classes: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &resource(
            "cluster.x-k8s.io",
            "v1beta2",
            "ClusterClass",
            "clusterclasses",
        ),
    );
    let Some(class) = classes.get_opt(class_name).await? else {
        return Err(Error::Invalid(format!(
            "ClusterClass {namespace}/{class_name} not found"
        )));
    };
    let class = serde_json::to_value(class)?;
    let variables: BTreeMap<String, Value> = topology["variables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| Some((v["name"].as_str()?.to_string(), v["value"].clone())))
        .collect();
    let mut references = Map::new();
    for (slot, reference_key, selector_key) in [
        ("controlPlane", "controlPlaneRef", "controlPlane"),
        (
            "infrastructure",
            "infrastructureRef",
            "infrastructureCluster",
        ),
    ] {
        let template_ref = &class["spec"][slot]["templateRef"];
        let (Some(api_version), Some(template_kind), Some(template_name)) = (
            template_ref["apiVersion"].as_str(),
            template_ref["kind"].as_str(),
            template_ref["name"].as_str(),
        ) else {
            continue;
        };
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let template_resource = resolve(ctx, group, template_kind).await?;
        let templates: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &template_resource);
        let template = serde_json::to_value(templates.get(template_name).await?)?;
        let kind = template_kind.trim_end_matches("Template").to_string();
        let object_resource = resolve(ctx, group, &kind).await?;
        let object_name = cluster["spec"][reference_key]["name"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{name}-{}", suffix(&format!("{uid}/{slot}"))));
        let mut spec = template["spec"]["template"]["spec"].clone();
        if spec.is_null() {
            spec = json!({});
        }
        if slot == "controlPlane" {
            spec["version"] = topology["version"].clone();
        }
        let mut object = json!({"spec": spec});
        for patch in class["spec"]["patches"].as_array().into_iter().flatten() {
            for definition in patch["definitions"].as_array().into_iter().flatten() {
                let selector = &definition["selector"];
                let matches = selector["kind"] == template_kind
                    && selector["apiVersion"] == api_version
                    && selector["matchResources"][selector_key] == true;
                if !matches {
                    continue;
                }
                for operation in definition["jsonPatches"].as_array().into_iter().flatten() {
                    let value = match operation["valueFrom"]["variable"].as_str() {
                        Some(variable) => match variables.get(variable) {
                            Some(v) => v.clone(),
                            None => continue,
                        },
                        None => operation["value"].clone(),
                    };
                    let path = operation["path"].as_str().unwrap_or_default();
                    // Templates patch `/spec/template/spec/...`; the generated object has it at `/spec/...`.
                    let path = path.strip_prefix("/spec/template").unwrap_or(path);
                    set_path(&mut object, path, value)?;
                }
            }
        }
        let mut labels = template["spec"]["template"]["metadata"]["labels"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        labels.insert(CLUSTER_NAME_LABEL.into(), json!(name));
        labels.insert("topology.cluster.x-k8s.io/owned".into(), json!(""));
        let mut annotations = template["spec"]["template"]["metadata"]["annotations"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        annotations.insert(
            "cluster.x-k8s.io/cloned-from-name".into(),
            json!(template_name),
        );
        annotations.insert(
            "cluster.x-k8s.io/cloned-from-groupkind".into(),
            json!(format!("{template_kind}.{group}")),
        );
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &object_resource);
        let existing = api
            .get_opt(&object_name)
            .await?
            .map(serde_json::to_value)
            .transpose()?;
        let up_to_date = existing
            .as_ref()
            .is_some_and(|e| json_contains(&e["spec"], &object["spec"]));
        if !up_to_date {
            let body = json!({"apiVersion": object_resource.api_version, "kind": object_resource.kind,
                "metadata": {"name": object_name, "namespace": namespace, "labels": labels, "annotations": annotations,
                    "ownerReferences": [{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}]},
                "spec": object["spec"]});
            api.patch(
                &object_name,
                &PatchParams::apply(TOPOLOGY_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await?;
        }
        let _ = version;
        references.insert(
            reference_key.into(),
            json!({"apiGroup": group, "kind": kind, "name": object_name}),
        );
    }
    let missing = references.iter().any(|(k, v)| &cluster["spec"][k] != v);
    if missing {
        let clusters: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &cluster_resource());
        clusters
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": references})),
            )
            .await?;
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn set_path_creates_parents() {
        let mut object = json!({"spec": {"kroSpec": {"a": 1}}});
        set_path(&mut object, "/spec/kroSpec/region", json!("eu")).unwrap();
        set_path(&mut object, "/spec/x/y", json!(2)).unwrap();
        assert_eq!(
            object,
            json!({"spec": {"kroSpec": {"a": 1, "region": "eu"}, "x": {"y": 2}}})
        );
        assert!(json_contains(
            &object,
            &json!({"spec": {"kroSpec": {"region": "eu"}}})
        ));
        assert!(!json_contains(
            &object,
            &json!({"spec": {"kroSpec": {"region": "us"}}})
        ));
    }

    #[test]
    fn generated_names_are_stable_and_dns() {
        let a = suffix("uid-1/controlPlane");
        assert_eq!(a, suffix("uid-1/controlPlane"));
        assert_ne!(a, suffix("uid-1/infrastructure"));
        assert!(
            a.len() == 5
                && a.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
    }
}
