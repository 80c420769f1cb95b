//! Just enough of CAPD, the kubeadm bootstrap provider and the Cluster API Machine controller
//! for [ACC-50] on the embedded target: a DockerCluster publishes an endpoint and is
//! provisioned, a KubeadmConfig gets its bootstrap data Secret, a Machine takes that Secret, its
//! DockerMachine then becomes provisioned, and a Machine with both becomes Ready once its
//! Cluster's control plane is initialized. Deleting a
//! Machine deletes its DockerMachine and KubeadmConfig first, as the real controller does.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

pub use crate::sim_common::docker_cluster;
use crate::sim_common::{Error, cluster_resource, put, resource, valid_endpoint, write_status};

const CLUSTER_NAME_LABEL: &str = "cluster.x-k8s.io/cluster-name";
const MACHINE_FINALIZER: &str = "machine.cluster.x-k8s.io";
/// The endpoint every simulated DockerCluster publishes ([ACC-50] (E)).
pub const ENDPOINT: (&str, i64) = ("127.0.0.1", 6443);

/// The DockerMachine kind (CAPD).
pub fn docker_machine() -> ApiResource {
    resource(
        "infrastructure.cluster.x-k8s.io",
        "v1beta2",
        "DockerMachine",
        "dockermachines",
    )
}

/// The KubeadmConfig kind (the kubeadm bootstrap provider).
pub fn kubeadm_config() -> ApiResource {
    resource(
        "bootstrap.cluster.x-k8s.io",
        "v1beta2",
        "KubeadmConfig",
        "kubeadmconfigs",
    )
}

/// The Machine kind.
pub fn machine_kind() -> ApiResource {
    resource("cluster.x-k8s.io", "v1beta2", "Machine", "machines")
}

struct Context {
    client: Client,
    /// The endpoint every DockerCluster publishes.
    endpoint: (String, i64),
    /// Register a Ready Node for each provisioned DockerMachine in the cluster the client talks
    /// to: on the upstream target that cluster also plays the workload cluster, where the real
    /// Machine controller looks for the node of the machine's providerID.
    register_nodes: bool,
}

fn api(ctx: &Context, object: &DynamicObject, kind: &ApiResource) -> Api<DynamicObject> {
    Api::namespaced_with(
        ctx.client.clone(),
        &object.namespace().unwrap_or_default(),
        kind,
    )
}

fn error_policy(_: Arc<DynamicObject>, error: &Error, _: Arc<Context>) -> Action {
    tracing::debug!(%error, "simulated provider reconcile failed");
    Action::requeue(Duration::from_millis(500))
}

fn conditions(object: &DynamicObject) -> Vec<Value> {
    object.data["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Reports `object` ready: `Ready=True` plus the provider's own `status` fields.
async fn report_ready(
    api: &Api<DynamicObject>,
    object: &DynamicObject,
    mut status: Value,
) -> Result<Action, Error> {
    let mut conditions = conditions(object);
    let generation = object.metadata.generation.unwrap_or(0);
    put(&mut conditions, "Ready", true, "Ready", "", generation);
    status["conditions"] = Value::Array(conditions);
    write_status(api, &object.name_any(), &object.data["status"], status).await?;
    Ok(Action::await_change())
}

/// The controller owner of kind `kind`.
fn controller_owner(object: &DynamicObject, kind: &str) -> Option<String> {
    object
        .owner_references()
        .iter()
        .find(|o| o.kind == kind && o.controller == Some(true))
        .map(|o| o.name.clone())
}

async fn reconcile_docker_cluster(
    cluster: Arc<DynamicObject>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    if cluster.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let api = api(&ctx, &cluster, &docker_cluster());
    if !valid_endpoint(&cluster.data["spec"]["controlPlaneEndpoint"]) {
        api.patch(
            &cluster.name_any(),
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"controlPlaneEndpoint": {"host": ctx.endpoint.0, "port": ctx.endpoint.1}}}),
            ),
        )
        .await?;
        return Ok(Action::await_change());
    }
    report_ready(
        &api,
        &cluster,
        json!({"initialization": {"provisioned": true}}),
    )
    .await
}

async fn reconcile_kubeadm_config(
    config: Arc<DynamicObject>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    if config.metadata.deletion_timestamp.is_some()
        || config.data["status"]["dataSecretName"].is_string()
    {
        return Ok(Action::await_change());
    }
    let name = config.name_any();
    let namespace = config.namespace().unwrap_or_default();
    let cluster = config
        .labels()
        .get(CLUSTER_NAME_LABEL)
        .cloned()
        .unwrap_or_default();
    // The paths only: the simulated node needs no key material.
    let paths: Vec<Value> = config.data["spec"]["files"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| json!({"path": f["path"]}))
        .collect();
    let cloud_config = format!(
        "## template: jinja\n#cloud-config\n{}",
        yaml_serde::to_string(&json!({"write_files": paths}))
            .map_err(|e| Error::Invalid(e.to_string()))?
    );
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {CLUSTER_NAME_LABEL: cluster},
            "ownerReferences": [{"apiVersion": "bootstrap.cluster.x-k8s.io/v1beta2", "kind": "KubeadmConfig",
                "name": name, "uid": config.uid(), "controller": true}]},
        "type": "cluster.x-k8s.io/secret",
        "data": {"value": k8s_openapi::ByteString(cloud_config.into_bytes()), "format": k8s_openapi::ByteString(b"cloud-config".to_vec())},
    }))?;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(ctx.client.clone(), &namespace);
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    report_ready(
        &api(&ctx, &config, &kubeadm_config()),
        &config,
        json!({"dataSecretName": name, "initialization": {"dataSecretCreated": true}}),
    )
    .await
}

async fn reconcile_docker_machine(
    docker: Arc<DynamicObject>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    if docker.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(owner) = controller_owner(&docker, "Machine") else {
        return Ok(Action::await_change());
    };
    let Some(machine) = api(&ctx, &docker, &machine_kind()).get_opt(&owner).await? else {
        return Ok(Action::await_change());
    };
    // CAPD waits for the bootstrap data before it starts the container.
    if !machine.data["spec"]["bootstrap"]["dataSecretName"].is_string() {
        return Ok(Action::await_change());
    }
    let api = api(&ctx, &docker, &docker_machine());
    let provider_id = format!("docker:////{}", docker.name_any());
    if docker.data["spec"]["providerID"] != json!(provider_id) {
        api.patch(
            &docker.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"providerID": provider_id}})),
        )
        .await?;
        return Ok(Action::await_change());
    }
    if ctx.register_nodes {
        register_node(&ctx.client, &docker.name_any(), &provider_id).await?;
    }
    report_ready(
        &api,
        &docker,
        json!({"initialization": {"provisioned": true},
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}),
    )
    .await
}

/// The Node the machine's kubelet would register: named after the machine, with its
/// providerID, Ready.
async fn register_node(client: &Client, name: &str, provider_id: &str) -> Result<(), Error> {
    use k8s_openapi::api::core::v1::Node;
    let nodes: Api<Node> = Api::all(client.clone());
    if nodes.get_opt(name).await?.is_none() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                "node-role.kubernetes.io/control-plane": ""}},
            "spec": {"providerID": provider_id},
        }))?;
        match nodes.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let now = crate::upstream::kubelet::now();
    let status = json!({"status": {
        "conditions": crate::upstream::kubelet::node_conditions(&now),
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
    }});
    let current = nodes.get_status(name).await?;
    let ready = current
        .status
        .and_then(|s| s.conditions)
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    if !ready {
        nodes
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
    }
    Ok(())
}

/// Adds the Machine as controller owner of one of its referenced objects.
async fn adopt(
    ctx: &Context,
    machine: &DynamicObject,
    kind: &ApiResource,
    name: &str,
) -> Result<Option<DynamicObject>, Error> {
    let api = api(ctx, machine, kind);
    let Some(object) = api.get_opt(name).await? else {
        return Ok(None);
    };
    if controller_owner(&object, "Machine").is_some() {
        return Ok(Some(object));
    }
    let mut owners = serde_json::to_value(object.owner_references())?;
    if let Some(list) = owners.as_array_mut() {
        list.push(json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
            "name": machine.name_any(), "uid": machine.uid(), "controller": true, "blockOwnerDeletion": true}));
    }
    let patched = api
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"ownerReferences": owners,
                "resourceVersion": object.resource_version()}})),
        )
        .await?;
    Ok(Some(patched))
}

async fn reconcile_machine(
    machine: Arc<DynamicObject>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let machines = api(&ctx, &machine, &machine_kind());
    let spec = &machine.data["spec"];
    let bootstrap_name = spec["bootstrap"]["configRef"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let infra_name = spec["infrastructureRef"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let has_finalizer = machine.finalizers().iter().any(|f| f == MACHINE_FINALIZER);
    if machine.metadata.deletion_timestamp.is_some() {
        if !has_finalizer {
            return Ok(Action::await_change());
        }
        // The infrastructure and bootstrap objects go first.
        for (kind, name) in [
            (docker_machine(), &infra_name),
            (kubeadm_config(), &bootstrap_name),
        ] {
            let api = api(&ctx, &machine, &kind);
            if api.get_opt(name).await?.is_some() {
                api.delete(name, &DeleteParams::default()).await?;
                return Ok(Action::requeue(Duration::from_millis(200)));
            }
        }
        let finalizers: Vec<String> = machine
            .finalizers()
            .iter()
            .filter(|f| *f != MACHINE_FINALIZER)
            .cloned()
            .collect();
        machines
            .patch(
                &machine.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": finalizers,
                    "resourceVersion": machine.resource_version()}})),
            )
            .await?;
        return Ok(Action::await_change());
    }
    if !has_finalizer {
        let mut finalizers = machine.finalizers().to_vec();
        finalizers.push(MACHINE_FINALIZER.into());
        machines
            .patch(
                &machine.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": finalizers,
                    "resourceVersion": machine.resource_version()}})),
            )
            .await?;
        return Ok(Action::await_change());
    }
    let config = adopt(&ctx, &machine, &kubeadm_config(), &bootstrap_name).await?;
    let infrastructure = adopt(&ctx, &machine, &docker_machine(), &infra_name).await?;
    let data_secret = config.as_ref().and_then(|c| {
        c.data["status"]["dataSecretName"]
            .as_str()
            .map(str::to_string)
    });
    if let Some(secret) = &data_secret
        && spec["bootstrap"]["dataSecretName"].as_str() != Some(secret)
    {
        machines
            .patch(
                &machine.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"bootstrap": {"dataSecretName": secret}}})),
            )
            .await?;
        return Ok(Action::await_change());
    }
    let bootstrapped = data_secret.is_some();
    let provisioned = infrastructure
        .as_ref()
        .is_some_and(|i| i.data["status"]["initialization"]["provisioned"] == true);
    // The real Machine controller reads its node's health only once the Cluster's control
    // plane is initialized, so a Machine turns Ready after that, never before.
    let cluster_name = spec["clusterName"].as_str().unwrap_or_default();
    let cluster_initialized = api(&ctx, &machine, &cluster_resource())
        .get_opt(cluster_name)
        .await?
        .is_some_and(|c| c.data["status"]["initialization"]["controlPlaneInitialized"] == true);
    let generation = machine.metadata.generation.unwrap_or(0);
    let mut conditions = conditions(&machine);
    let reason = |ok: bool, yes: &str, no: &str| if ok { yes.to_string() } else { no.to_string() };
    put(
        &mut conditions,
        "BootstrapConfigReady",
        bootstrapped,
        &reason(bootstrapped, "Ready", "NotReady"),
        "",
        generation,
    );
    put(
        &mut conditions,
        "InfrastructureReady",
        provisioned,
        &reason(provisioned, "Ready", "NotReady"),
        "",
        generation,
    );
    let ready = bootstrapped && provisioned && cluster_initialized;
    for type_ in ["Ready", "Available"] {
        put(
            &mut conditions,
            type_,
            ready,
            &reason(ready, type_, &format!("Not{type_}")),
            "",
            generation,
        );
    }
    let phase = if ready { "Running" } else { "Provisioning" };
    write_status(&machines, &machine.name_any(), &machine.data["status"], json!({
        "initialization": {"bootstrapDataSecretCreated": bootstrapped, "infrastructureProvisioned": provisioned},
        "conditions": conditions, "phase": phase})).await?;
    if bootstrapped && provisioned && !cluster_initialized {
        // Clusters are not watched here: look again shortly.
        return Ok(Action::requeue(Duration::from_millis(300)));
    }
    Ok(Action::await_change())
}

/// Runs the simulated providers until dropped (embedded target: CAPD, the kubeadm bootstrap
/// provider and the Machine controller).
pub async fn run(client: Client) {
    let ctx = Arc::new(Context {
        client: client.clone(),
        endpoint: (ENDPOINT.0.to_string(), ENDPOINT.1),
        register_nodes: false,
    });
    let (infrastructure, bootstrap_and_machines) = (
        infrastructure(client.clone(), ctx.clone()),
        bootstrap_and_machines(client, ctx),
    );
    futures::join!(infrastructure, bootstrap_and_machines);
}

/// Runs only the simulated CAPD (upstream target: the kubeadm bootstrap provider and the
/// Machine controller are the real ones): DockerClusters publish `endpoint`, provisioned
/// DockerMachines register their Node.
pub async fn run_infrastructure(client: Client, endpoint: (String, i64)) {
    let ctx = Arc::new(Context {
        client: client.clone(),
        endpoint,
        register_nodes: true,
    });
    infrastructure(client, ctx).await;
}

async fn infrastructure(client: Client, ctx: Arc<Context>) {
    let all = |kind: &ApiResource| Api::<DynamicObject>::all_with(client.clone(), kind);
    let controller =
        |kind: ApiResource| Controller::new_with(all(&kind), watcher::Config::default(), kind);
    let docker_clusters = controller(docker_cluster())
        .run(reconcile_docker_cluster, error_policy, ctx.clone())
        .for_each(|_| async {});
    let dockers = controller(docker_machine())
        .watches_with(
            all(&machine_kind()),
            machine_kind(),
            watcher::Config::default(),
            |machine: DynamicObject| {
                let namespace = machine.namespace()?;
                let name = machine.data["spec"]["infrastructureRef"]["name"].as_str()?;
                Some(ObjectRef::new_with(name, docker_machine()).within(&namespace))
            },
        )
        .run(reconcile_docker_machine, error_policy, ctx)
        .for_each(|_| async {});
    futures::join!(docker_clusters, dockers);
}

async fn bootstrap_and_machines(client: Client, ctx: Arc<Context>) {
    let all = |kind: &ApiResource| Api::<DynamicObject>::all_with(client.clone(), kind);
    let controller =
        |kind: ApiResource| Controller::new_with(all(&kind), watcher::Config::default(), kind);
    let by_owner = |kind: &'static str| {
        move |object: DynamicObject| {
            let namespace = object.namespace()?;
            let owner = controller_owner(&object, kind)?;
            Some(ObjectRef::new_with(&owner, machine_kind()).within(&namespace))
        }
    };
    let configs = controller(kubeadm_config())
        .run(reconcile_kubeadm_config, error_policy, ctx.clone())
        .for_each(|_| async {});
    let machines = controller(machine_kind())
        .watches_with(
            all(&kubeadm_config()),
            kubeadm_config(),
            watcher::Config::default(),
            by_owner("Machine"),
        )
        .watches_with(
            all(&docker_machine()),
            docker_machine(),
            watcher::Config::default(),
            by_owner("Machine"),
        )
        .run(reconcile_machine, error_policy, ctx)
        .for_each(|_| async {});
    futures::join!(configs, machines);
}
