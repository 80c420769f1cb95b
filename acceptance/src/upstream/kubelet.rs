//! The scheduler and kubelet of the upstream target, simulated: there is no container runtime on
//! these machines, so one Node is registered Ready, every unscheduled Pod is bound to it through
//! the `binding` subresource, a bound Pod is reported Running and Ready, and a terminating Pod is
//! confirmed deleted (grace period 0) as a kubelet does. Everything above Pods — the Deployment
//! and ReplicaSet controllers, the garbage collector — is the real kube-controller-manager.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;

/// The simulated node every Pod runs on.
pub const NODE: &str = "kany8s-upstream-node";

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// The current time as Kubernetes writes it (RFC 3339, whole seconds).
pub fn now() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::Timestamp::from_second(now.as_second())
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Registers the node (Ready) and runs the simulated scheduler + kubelet until dropped.
pub async fn run(client: Client) {
    if let Err(error) = register_node(&client).await {
        tracing::error!(%error, "simulated kubelet: registering the node failed");
    }
    let pods: Api<Pod> = Api::all(client.clone());
    Controller::new(pods, watcher::Config::default())
        .run(reconcile, error_policy, Arc::new(client))
        .for_each(|_| async {})
        .await;
}

/// The conditions a healthy kubelet reports (Cluster API's NodeHealthy reads all four).
pub fn node_conditions(time: &str) -> serde_json::Value {
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": time, "lastTransitionTime": time})
    };
    json!([
        condition(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available"
        ),
        condition(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure"
        ),
        condition(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available"
        ),
        condition(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status (simulated)"
        ),
    ])
}

async fn register_node(client: &Client) -> Result<(), Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux"}},
        "spec": {"providerID": format!("kany8s-upstream://{NODE}")},
    }))
    .map_err(|e| Error::Kube(kube::Error::SerdeError(e)))?;
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let time = now();
    let status = json!({"status": {
        "conditions": crate::upstream::kubelet::node_conditions(&time),
        "capacity": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
        "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": NODE}],
        "nodeInfo": {"kubeletVersion": "v0.0.0-simulated", "containerRuntimeVersion": "none://0",
            "architecture": "amd64", "operatingSystem": "linux", "kernelVersion": "", "osImage": "",
            "kubeProxyVersion": "", "bootID": "", "machineID": "", "systemUUID": ""},
    }});
    nodes
        .patch_status(NODE, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

async fn reconcile(pod: Arc<Pod>, client: Arc<Client>) -> Result<Action, Error> {
    let namespace = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced((*client).clone(), &namespace);
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    if pod.metadata.deletion_timestamp.is_some() {
        if node.as_deref() == Some(NODE) {
            // The kubelet's confirmation that the containers are gone.
            match api
                .delete(&name, &DeleteParams::default().grace_period(0))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(Action::await_change());
    }
    let Some(node) = node else {
        let binding = json!({"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": NODE}});
        let request = http::Request::post(format!(
            "/api/v1/namespaces/{namespace}/pods/{name}/binding"
        ))
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(&binding).unwrap_or_default())
        .map_err(|e| Error::Kube(kube::Error::HttpError(e)))?;
        match client.request_text(request).await {
            Ok(_) => {}
            // Already bound (a watch event behind) or gone.
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        return Ok(Action::await_change());
    };
    if node != NODE {
        return Ok(Action::await_change());
    }
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    if ready {
        return Ok(Action::await_change());
    }
    let time = now();
    let containers: Vec<_> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            json!({"name": c.name, "image": c.image.unwrap_or_default(), "imageID": "",
                "ready": true, "started": true, "restartCount": 0,
                "state": {"running": {"startedAt": time}}})
        })
        .collect();
    let condition =
        |type_: &str| json!({"type": type_, "status": "True", "lastTransitionTime": time});
    let status = json!({"status": {
        "phase": "Running",
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "startTime": time,
        "conditions": [condition("PodScheduled"), condition("Initialized"),
            condition("ContainersReady"), condition("Ready")],
        "containerStatuses": containers,
    }});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(Action::await_change())
}

fn error_policy(_: Arc<Pod>, error: &Error, _: Arc<Client>) -> Action {
    tracing::debug!(%error, "simulated kubelet: retrying");
    Action::requeue(Duration::from_millis(500))
}
