//! The I/O edges of the Kany8sKubeadmControlPlane reconcile (provider.md §7): the owner
//! Cluster, certificate Secrets, the infrastructure cluster, the admin kubeconfig, the
//! KubeadmConfig, the infrastructure machine and the Machine, in that order; then the pure
//! decide step and one status write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, PropagationPolicy,
};
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::certs::{self, CertKeyPair, KeyAlgorithm};
use super::decide::{self, CONTROL_PLANE_LABEL, Inputs, Machine, Progress, types};
use crate::api::{Kany8sKubeadmControlPlane, Kany8sKubeadmControlPlaneStatus};
use crate::backend::{
    Backends, Backoff, Error, Owner, lock, now, owner_cluster, paused_message, publish,
};
use crate::capi::{self, ApiEndpoint, CLUSTER_NAME_LABEL, DELETE_FOR_MOVE_ANNOTATION};
use crate::controlplane::decide::{
    Verdict, put, put_deleting, put_deletion_paused, waiting_for_deletion,
};
use crate::dynamic::DynamicWatches;
use crate::kubeconfig::CLUSTER_SECRET_TYPE;
use crate::metrics::Metrics;

/// Field manager of every write of this controller ([CP-49]).
pub const FIELD_MANAGER: &str = "kany8s-kubeadm";
/// The facade's finalizer (§2.8).
pub const FINALIZER: &str = "kany8skubeadmcontrolplane.controlplane.cluster.x-k8s.io";
/// kubeadm's default certificates directory ([KK-04]).
const KUBEADM_PKI: &str = "/etc/kubernetes/pki";
/// Where the bootstrap writes the certificates unless the spec says otherwise ([KK-10]).
const DEFAULT_CERTIFICATES_DIR: &str = "/run/kubeadm/pki";
const CLONED_FROM_NAME: &str = "cluster.x-k8s.io/cloned-from-name";
const CLONED_FROM_GROUPKIND: &str = "cluster.x-k8s.io/cloned-from-groupkind";
const CONTRACT_LABEL: &str = "cluster.x-k8s.io/v1beta2";

/// The Machine kind of Cluster API core.
pub fn machine_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta2", "Machine"),
        "machines",
    )
}

/// The KubeadmConfig kind of the kubeadm bootstrap provider.
pub fn kubeadm_config_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("bootstrap.cluster.x-k8s.io", "v1beta2", "KubeadmConfig"),
        "kubeadmconfigs",
    )
}

/// Name of the one control-plane Machine and of its KubeadmConfig and infrastructure machine.
pub fn machine_name(cluster: &str) -> String {
    format!("{cluster}-control-plane-0")
}

/// Shared state of the controller.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub backends: Backends,
    pub backoff: Backoff,
    pub metrics: Arc<Metrics>,
    pub watches: Arc<DynamicWatches<Kany8sKubeadmControlPlane>>,
    pub sync_period: Duration,
    /// Contract-versioned kinds by (group, kind) ([KK-06]).
    contract: Mutex<HashMap<(String, String), ApiResource>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("watches", &self.watches)
            .finish_non_exhaustive()
    }
}

impl Context {
    pub fn new(
        client: Client,
        recorder: Recorder,
        watches: Arc<DynamicWatches<Kany8sKubeadmControlPlane>>,
        metrics: Arc<Metrics>,
        sync_period: Duration,
    ) -> Self {
        Self {
            backends: Backends::new(client.clone()),
            backoff: Backoff::default(),
            client,
            recorder,
            metrics,
            watches,
            sync_period,
            contract: Mutex::default(),
        }
    }
}

/// A step that stopped the pass: Ready's verdict, and whether to back off (failures) or wait
/// for a watch (waits).
struct Stop {
    verdict: Verdict,
    retry: bool,
}

impl Stop {
    fn failed(reason: &str, message: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::new("False", reason, message),
            retry: true,
        }
    }

    fn waiting(reason: &str, message: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::new("False", reason, message),
            retry: false,
        }
    }
}

/// Kubernetes API version order: GA above beta above alpha, then by major and minor.
fn version_rank(version: &str) -> (u8, u64, u64) {
    let Some(rest) = version.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u64>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    let (stability, minor) = if tail.is_empty() {
        (3, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n.parse().unwrap_or(0))
    } else {
        (0, 0)
    };
    (stability, major, minor)
}

/// [KK-06]: the highest version in a CRD's contract label (`v1beta1_v1beta2`).
pub fn contract_version(label: &str) -> Option<String> {
    label
        .split('_')
        .map(str::trim)
        .filter(|v| version_rank(v).0 > 0)
        .max_by_key(|v| version_rank(v))
        .map(str::to_string)
}

/// [KK-06]: the resource of a contract-versioned kind: the version named by the
/// `cluster.x-k8s.io/v1beta2` label of its CRD, else the discovery-preferred version.
async fn contract_resource(ctx: &Context, group: &str, kind: &str) -> Result<ApiResource, Error> {
    let key = (group.to_string(), kind.to_string());
    if let Some(found) = lock(&ctx.contract).get(&key) {
        return Ok(found.clone());
    }
    let discovered = kube::discovery::group(&ctx.client, group).await?;
    let (preferred, _) = discovered
        .recommended_kind(kind)
        .ok_or_else(|| Error::Transient(format!("the API server does not serve {kind}.{group}")))?;
    let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    let labelled = match crds
        .get_opt(&format!("{}.{group}", preferred.plural))
        .await?
    {
        Some(crd) => crd
            .labels()
            .get(CONTRACT_LABEL)
            .and_then(|l| contract_version(l)),
        None => None,
    };
    let resource = match labelled {
        Some(version) if version != preferred.version => ApiResource {
            api_version: format!("{group}/{version}"),
            version,
            ..preferred
        },
        _ => preferred,
    };
    lock(&ctx.contract).insert(key, resource.clone());
    Ok(resource)
}

fn cluster_owner_reference(cluster: &capi::Cluster) -> Value {
    json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
        "name": cluster.name_any(), "uid": cluster.uid()})
}

/// Makes a missing key pair.
type Generate = fn(KeyAlgorithm, time::OffsetDateTime) -> Result<CertKeyPair, certs::CertError>;

/// One cluster certificate Secret ([KK-04]).
struct CertificateSecret {
    suffix: &'static str,
    /// File names under the certificates directory: certificate, key (`None`: not written).
    files: (&'static str, Option<&'static str>),
    /// How a missing one is made; `None`: looked up only (external etcd).
    generate: Option<Generate>,
}

fn certificate_secrets(external_etcd: bool) -> Vec<CertificateSecret> {
    let ca = |suffix, files| CertificateSecret {
        suffix,
        files,
        generate: Some(certs::generate_ca),
    };
    let mut all = vec![ca("ca", ("ca.crt", Some("ca.key")))];
    if external_etcd {
        all.push(CertificateSecret {
            suffix: "etcd",
            files: ("etcd/ca.crt", None),
            generate: None,
        });
        all.push(CertificateSecret {
            suffix: "apiserver-etcd-client",
            files: (
                "apiserver-etcd-client.crt",
                Some("apiserver-etcd-client.key"),
            ),
            generate: None,
        });
    } else {
        all.push(ca("etcd", ("etcd/ca.crt", Some("etcd/ca.key"))));
    }
    all.push(ca(
        "proxy",
        ("front-proxy-ca.crt", Some("front-proxy-ca.key")),
    ));
    all.push(CertificateSecret {
        suffix: "sa",
        files: ("sa.pub", Some("sa.key")),
        generate: Some(|algorithm, _| certs::generate_service_account_key(algorithm)),
    });
    all
}

/// A kubeadm `files` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub content: String,
    pub key: bool,
}

/// The certificates, as read or made.
struct Certificates {
    ca: CertKeyPair,
    files: Vec<File>,
}

fn data(secret: &Secret, key: &str) -> Result<String, String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .filter(|v| !v.0.is_empty())
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .ok_or_else(|| format!("missing data for key {key}"))
}

/// [KK-04]: looks up every certificate Secret, creating the missing ones; never modifies one.
async fn certificates(
    ctx: &Context,
    namespace: &str,
    cluster: &capi::Cluster,
    config: &Value,
    directory: &str,
) -> Result<Certificates, String> {
    let cluster_config = &config["clusterConfiguration"];
    let algorithm = KeyAlgorithm::parse(cluster_config["encryptionAlgorithm"].as_str())
        .map_err(|e| e.to_string())?;
    let external_etcd = cluster_config
        .pointer("/etcd/external")
        .is_some_and(|e| !e.is_null());
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let cluster_name = cluster.name_any();
    let mut ca = None;
    let mut files = Vec::new();
    for wanted in certificate_secrets(external_etcd) {
        let name = format!("{cluster_name}-{}", wanted.suffix);
        let existing = secrets
            .get_opt(&name)
            .await
            .map_err(|e| format!("get secret {namespace}/{name}: {e}"))?;
        let secret = match (existing, wanted.generate) {
            (Some(secret), _) => secret,
            (None, None) => return Err(format!("secret {namespace}/{name} not found")),
            (None, Some(generate)) => {
                let pair = generate(algorithm, time::OffsetDateTime::now_utc())
                    .map_err(|e| e.to_string())?;
                let body: Secret = serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": name, "namespace": namespace,
                        "labels": {CLUSTER_NAME_LABEL: cluster_name},
                        "ownerReferences": [cluster_owner_reference(cluster)]},
                    "type": CLUSTER_SECRET_TYPE,
                    "data": {"tls.crt": k8s_openapi::ByteString(pair.cert.into_bytes()),
                        "tls.key": k8s_openapi::ByteString(pair.key.into_bytes())},
                }))
                .map_err(|e| e.to_string())?;
                match secrets
                    .create(
                        &PostParams {
                            field_manager: Some(FIELD_MANAGER.into()),
                            ..PostParams::default()
                        },
                        &body,
                    )
                    .await
                {
                    Ok(created) => {
                        tracing::info!(secret = %format!("{namespace}/{name}"), "cluster certificate generated");
                        created
                    }
                    Err(kube::Error::Api(e)) if e.code == 409 => secrets
                        .get(&name)
                        .await
                        .map_err(|e| format!("get secret {namespace}/{name}: {e}"))?,
                    Err(e) => return Err(format!("create secret {namespace}/{name}: {e}")),
                }
            }
        };
        let cert =
            data(&secret, "tls.crt").map_err(|e| format!("secret {namespace}/{name}: {e}"))?;
        files.push(File {
            path: format!("{directory}/{}", wanted.files.0),
            content: cert.clone(),
            key: false,
        });
        let key = match wanted.files.1 {
            Some(file) => {
                let key = data(&secret, "tls.key")
                    .map_err(|e| format!("secret {namespace}/{name}: {e}"))?;
                files.push(File {
                    path: format!("{directory}/{file}"),
                    content: key.clone(),
                    key: true,
                });
                key
            }
            None => String::new(),
        };
        if wanted.suffix == "ca" {
            ca = Some(CertKeyPair { cert, key });
        }
    }
    let ca = ca.ok_or_else(|| "the cluster CA is missing".to_string())?;
    Ok(Certificates { ca, files })
}

/// [KK-10]: the KubeadmConfig spec: the user's, with the endpoint, the certificates directory,
/// the bind port and the certificate files injected.
pub fn kubeadm_config_spec(
    user: Option<&Value>,
    endpoint: &ApiEndpoint,
    files: &[File],
) -> Result<Value, String> {
    let mut spec = match user.cloned().unwrap_or_else(|| json!({})) {
        Value::Object(map) => map,
        other => {
            return Err(format!(
                "spec.kubeadmConfigSpec must be a JSON object, got {}",
                crate::backend_status::json_type(&other)
            ));
        }
    };
    let object = |map: &mut serde_json::Map<String, Value>,
                  key: &str|
     -> Result<serde_json::Map<String, Value>, String> {
        match map.remove(key) {
            None | Some(Value::Null) => Ok(serde_json::Map::new()),
            Some(Value::Object(m)) => Ok(m),
            Some(other) => Err(format!(
                "{key} must be a JSON object, got {}",
                crate::backend_status::json_type(&other)
            )),
        }
    };
    let mut cluster = object(&mut spec, "clusterConfiguration")?;
    cluster.insert("controlPlaneEndpoint".into(), json!(endpoint.host_port()));
    let directory = match cluster
        .get("certificatesDir")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
    {
        Some(d) => d.trim_end_matches('/').to_string(),
        None => DEFAULT_CERTIFICATES_DIR.to_string(),
    };
    cluster.insert("certificatesDir".into(), json!(directory));
    spec.insert("clusterConfiguration".into(), Value::Object(cluster));
    let mut init = object(&mut spec, "initConfiguration")?;
    let mut local = match init.remove("localAPIEndpoint") {
        Some(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    if local.get("bindPort").and_then(Value::as_i64).unwrap_or(0) <= 0 {
        local.insert("bindPort".into(), json!(endpoint.port.unwrap_or_default()));
    }
    init.insert("localAPIEndpoint".into(), Value::Object(local));
    spec.insert("initConfiguration".into(), Value::Object(init));
    let rewrite = |path: &str| match path.strip_prefix(&format!("{KUBEADM_PKI}/")) {
        Some(rest) if directory != KUBEADM_PKI => format!("{directory}/{rest}"),
        _ => path.to_string(),
    };
    let injected: Vec<Value> = files
        .iter()
        .map(|f| {
            json!({"path": rewrite(&f.path), "owner": "root:root",
                "permissions": if f.key { "0600" } else { "0640" }, "content": f.content})
        })
        .collect();
    let paths: Vec<&str> = injected.iter().filter_map(|f| f["path"].as_str()).collect();
    let mut all: Vec<Value> = spec
        .get("files")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| !f["path"].as_str().is_some_and(|p| paths.contains(&p)))
        .collect();
    all.extend(injected.iter().cloned());
    spec.insert("files".into(), Value::Array(all));
    Ok(Value::Object(spec))
}

/// The certificates directory of [KK-04] (before [KK-10]'s default).
fn certificates_dir(config: &Value) -> String {
    config
        .pointer("/clusterConfiguration/certificatesDir")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .map_or_else(
            || KUBEADM_PKI.to_string(),
            |d| d.trim_end_matches('/').to_string(),
        )
}

fn condition_true(object: &Value, type_: &str) -> bool {
    object["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == type_ && c["status"] == "True")
    })
}

/// Reconciles one facade.
pub async fn reconcile(
    kkcp: Arc<Kany8sKubeadmControlPlane>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let namespace = kkcp.namespace().unwrap_or_default();
    let api: Api<Kany8sKubeadmControlPlane> = Api::namespaced(ctx.client.clone(), &namespace);
    let owner = owner_cluster(&ctx.client, kkcp.as_ref()).await;
    if kkcp.metadata.deletion_timestamp.is_some() {
        return delete(&kkcp, &ctx, &api, &owner).await;
    }
    let generation = kkcp.metadata.generation.unwrap_or(0);
    if let Some(message) = paused_message("Kany8sKubeadmControlPlane", kkcp.annotations(), &owner) {
        // [KK-02]: nothing but the condition.
        let mut status = kkcp.status.clone().unwrap_or_default();
        put(
            &mut status.conditions,
            types::PAUSED,
            &Verdict::new("True", "Paused", message),
            generation,
            &now(),
        );
        write_status(&api, &kkcp, status).await?;
        return Ok(Action::await_change());
    }
    let owner_verdict = decide::owner_verdict(&owner);
    let mut inputs = Inputs {
        generation,
        now: now(),
        spec_version: kkcp.spec.version.clone(),
        cluster_name: owner
            .cluster()
            .map(ResourceExt::name_any)
            .unwrap_or_default(),
        previous: kkcp.status.clone().unwrap_or_default(),
        owner: owner_verdict.clone(),
        certificates: None,
        endpoint_set: kkcp
            .spec
            .control_plane_endpoint
            .as_ref()
            .is_some_and(ApiEndpoint::is_valid),
        progress: Progress::Blocked(owner_verdict.clone()),
    };
    // [KK-01]: without an owner Cluster nothing else happens.
    let Some(cluster) = owner.cluster() else {
        apply_decision(&ctx, &kkcp, &api, &inputs).await?;
        return match owner {
            Owner::GetFailed(e) => Err(Error::Transient(format!("get owner Cluster: {e}"))),
            _ => Ok(Action::await_change()),
        };
    };
    // [KK-03]
    if !kkcp.finalizers().iter().any(|f| f == FINALIZER) {
        own_apply(&kkcp, &api, true, kkcp.spec.control_plane_endpoint.clone()).await?;
    }
    let mut requeue = None;
    let outcome = steps(&ctx, &kkcp, &api, cluster, &mut inputs, &mut requeue).await;
    let stop = match outcome {
        Ok(progress) => {
            inputs.progress = progress;
            None
        }
        Err(stop) => {
            inputs.progress = Progress::Blocked(stop.verdict.clone());
            Some(stop)
        }
    };
    apply_decision(&ctx, &kkcp, &api, &inputs).await?;
    match stop {
        Some(stop) if stop.retry => Err(Error::Transient(stop.verdict.message)),
        Some(_) => Ok(Action::await_change()),
        None => Ok(requeue.map_or_else(Action::await_change, Action::requeue)),
    }
}

/// [KK-04]–[KK-14]: the steps in order; the first that fails or waits stops the pass.
async fn steps(
    ctx: &Context,
    kkcp: &Kany8sKubeadmControlPlane,
    api: &Api<Kany8sKubeadmControlPlane>,
    cluster: &capi::Cluster,
    inputs: &mut Inputs,
    requeue: &mut Option<Duration>,
) -> Result<Progress, Stop> {
    let namespace = kkcp.namespace().unwrap_or_default();
    let cluster_name = cluster.name_any();
    let config = kkcp
        .spec
        .kubeadm_config_spec
        .clone()
        .unwrap_or_else(|| json!({}));

    // [KK-04]
    let certificates = match certificates(
        ctx,
        &namespace,
        cluster,
        &config,
        &certificates_dir(&config),
    )
    .await
    {
        Ok(c) => {
            inputs.certificates = Some(Verdict::new(
                "True",
                "Available",
                "cluster certificates are available",
            ));
            c
        }
        Err(e) => {
            inputs.certificates = Some(Verdict::new("False", "CertificatesUnavailable", e.clone()));
            return Err(Stop::failed("CertificatesUnavailable", e));
        }
    };

    // [KK-05]–[KK-08]
    let Some(reference) = cluster.spec.infrastructure_ref.clone() else {
        return Err(Stop::waiting(
            "WaitingForInfrastructureRef",
            "waiting for Cluster spec.infrastructureRef to be set",
        ));
    };
    let infra_error = |e: &dyn std::fmt::Display| {
        Stop::failed(
            "InfrastructureGetFailed",
            format!(
                "get infrastructure cluster {} {namespace}/{}: {e}",
                reference.kind, reference.name
            ),
        )
    };
    let resource = contract_resource(ctx, &reference.api_group, &reference.kind)
        .await
        .map_err(|e| infra_error(&e))?;
    ctx.watches.ensure(&resource);
    let infrastructure =
        Api::<DynamicObject>::namespaced_with(ctx.client.clone(), &namespace, &resource)
            .get(&reference.name)
            .await
            .map_err(|e| infra_error(&e))?;
    let endpoint: Option<ApiEndpoint> = infrastructure
        .data
        .pointer("/spec/controlPlaneEndpoint")
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .filter(ApiEndpoint::is_valid);
    let Some(endpoint) = endpoint else {
        return Err(Stop::waiting(
            "WaitingForInfrastructureEndpoint",
            "waiting for infrastructure controlPlaneEndpoint to be set",
        ));
    };
    if kkcp.spec.control_plane_endpoint.as_ref() != Some(&endpoint) {
        own_apply(kkcp, api, true, Some(endpoint.clone()))
            .await
            .map_err(|e| {
                Stop::failed(
                    "InfrastructureGetFailed",
                    format!("apply spec.controlPlaneEndpoint: {e}"),
                )
            })?;
    }
    inputs.endpoint_set = true;

    // [KK-09]
    let expires = kubeconfig(
        ctx,
        &namespace,
        cluster,
        &endpoint,
        &certificates.ca,
        &config,
    )
    .await
    .map_err(|e| {
        Stop::failed(
            "KubeconfigGenerationFailed",
            format!("generate kubeconfig: {e}"),
        )
    })?;
    *requeue = Some(rotation_delay(
        expires,
        time::OffsetDateTime::now_utc(),
        ctx.sync_period,
    ));

    // [KK-10]
    let name = machine_name(&cluster_name);
    let bootstrap_error = |e: &dyn std::fmt::Display| {
        Stop::failed(
            "BootstrapConfigFailed",
            format!("reconcile KubeadmConfig {namespace}/{name}: {e}"),
        )
    };
    let spec = kubeadm_config_spec(
        kkcp.spec.kubeadm_config_spec.as_ref(),
        &endpoint,
        &certificates.files,
    )
    .map_err(|e| bootstrap_error(&e))?;
    let body = json!({"apiVersion": "bootstrap.cluster.x-k8s.io/v1beta2", "kind": "KubeadmConfig",
        "metadata": {"name": name, "namespace": namespace, "labels": {CLUSTER_NAME_LABEL: cluster_name},
            "ownerReferences": [cluster_owner_reference(cluster)]},
        "spec": spec});
    let configs = Api::<DynamicObject>::namespaced_with(
        ctx.client.clone(),
        &namespace,
        &kubeadm_config_resource(),
    );
    ctx.backends
        .apply_if_changed(&configs, &name, body, FIELD_MANAGER)
        .await
        .map_err(|e| bootstrap_error(&e))?;

    // [KK-11]
    let infra_machine = infrastructure_machine(ctx, kkcp, cluster, &name)
        .await
        .map_err(|e| {
            Stop::failed(
                "InfrastructureMachineFailed",
                format!("reconcile infrastructure machine: {e}"),
            )
        })?;

    // [KK-12]
    let machines =
        Api::<DynamicObject>::namespaced_with(ctx.client.clone(), &namespace, &machine_resource());
    control_plane_machine(&machines, kkcp, cluster, &name, &infra_machine)
        .await
        .map_err(|e| {
            Stop::failed(
                "MachineFailed",
                format!("reconcile Machine {namespace}/{name}: {e}"),
            )
        })?;

    // [KK-14]
    let listed = machines
        .list(&ListParams::default().labels(&format!(
            "{CLUSTER_NAME_LABEL}={cluster_name},{CONTROL_PLANE_LABEL}"
        )))
        .await
        .map_err(|e| {
            Stop::failed(
                "WaitingForControlPlaneMachineCreated",
                format!("list control plane Machines: {e}"),
            )
        })?;
    let machines = listed
        .items
        .iter()
        .map(|m| {
            let object = serde_json::to_value(m).unwrap_or_default();
            Machine {
                version: object["spec"]["version"].as_str().map(str::to_string),
                ready: condition_true(&object, "Ready"),
                available: condition_true(&object, "Available"),
            }
        })
        .collect();
    let remote_connection_probe = cluster
        .status
        .as_ref()
        .and_then(|s| capi::find_condition(&s.conditions, "RemoteConnectionProbe"))
        .is_some_and(|c| c.status == "True");
    Ok(Progress::Built {
        remote_connection_probe,
        machines,
    })
}

/// [KK-17]: when to come back for the client certificate's rotation (at NotAfter − 180 days),
/// bounded by the sync period; at least a second, so an overdue rotation does not spin.
pub fn rotation_delay(
    expires: time::OffsetDateTime,
    now: time::OffsetDateTime,
    sync_period: Duration,
) -> Duration {
    let due = (expires - certs::ROTATE_BEFORE) - now;
    Duration::try_from(due).unwrap_or(Duration::ZERO).clamp(
        Duration::from_secs(1),
        sync_period.max(Duration::from_secs(1)),
    )
}

/// [KK-09]: keeps a usable admin kubeconfig or writes a new one; returns its client
/// certificate's NotAfter.
async fn kubeconfig(
    ctx: &Context,
    namespace: &str,
    cluster: &capi::Cluster,
    endpoint: &ApiEndpoint,
    ca: &CertKeyPair,
    config: &Value,
) -> Result<time::OffsetDateTime, String> {
    let cluster_name = cluster.name_any();
    let name = format!("{cluster_name}-kubeconfig");
    let server = format!("https://{}", endpoint.host_port());
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let existing = secrets
        .get_opt(&name)
        .await
        .map_err(|e| format!("get secret {namespace}/{name}: {e}"))?;
    let value = existing.as_ref().and_then(crate::kubeconfig::value_of);
    let now = time::OffsetDateTime::now_utc();
    let (value, expires) = match certs::regeneration_reason(value, &server, now) {
        Ok(expires) => {
            let compliant = existing.as_ref().is_some_and(|s| {
                crate::kubeconfig::compliant(s, &cluster_name)
                    && s.owner_references()
                        .iter()
                        .any(|o| Some(&o.uid) == cluster.metadata.uid.as_ref())
            });
            if compliant {
                return Ok(expires);
            }
            (value.map(<[u8]>::to_vec).unwrap_or_default(), expires)
        }
        Err(reason) => {
            let algorithm = KeyAlgorithm::parse(
                config
                    .pointer("/clusterConfiguration/encryptionAlgorithm")
                    .and_then(Value::as_str),
            )
            .map_err(|e| e.to_string())?;
            let text = certs::admin_kubeconfig(&cluster_name, &server, ca, algorithm, now)
                .map_err(|e| e.to_string())?;
            tracing::info!(secret = %format!("{namespace}/{name}"), %reason, "admin kubeconfig generated");
            let expires = certs::regeneration_reason(Some(text.as_bytes()), &server, now)?;
            (text.into_bytes(), expires)
        }
    };
    let body = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {CLUSTER_NAME_LABEL: cluster_name},
            "ownerReferences": [cluster_owner_reference(cluster)]},
        "type": CLUSTER_SECRET_TYPE,
        "data": {"value": k8s_openapi::ByteString(value)}});
    secrets
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|e| format!("apply secret {namespace}/{name}: {e}"))?;
    ctx.metrics
        .kubeconfig_secret_written(crate::metrics::KUBEADM);
    Ok(expires)
}

/// [KK-11]: the infrastructure machine, cloned once from the machine template; returns its
/// `{apiGroup, kind, name}` reference.
async fn infrastructure_machine(
    ctx: &Context,
    kkcp: &Kany8sKubeadmControlPlane,
    cluster: &capi::Cluster,
    name: &str,
) -> Result<Value, Error> {
    let namespace = kkcp.namespace().unwrap_or_default();
    let template_ref = &kkcp.spec.machine_template.infrastructure_ref;
    let template_kind = contract_resource(ctx, &template_ref.api_group, &template_ref.kind).await?;
    let kind = template_kind
        .kind
        .strip_suffix("Template")
        .unwrap_or(&template_kind.kind)
        .to_string();
    let reference = json!({"apiGroup": template_ref.api_group, "kind": kind, "name": name});
    let (resource, _) = ctx
        .backends
        .resource_of(&template_kind.api_version, &kind)
        .await
        .ok_or_else(|| {
            Error::Transient(format!(
                "the API server does not serve {}/{kind}",
                template_kind.api_version
            ))
        })?;
    let machines = Api::<DynamicObject>::namespaced_with(ctx.client.clone(), &namespace, &resource);
    if machines.get_opt(name).await?.is_some() {
        return Ok(reference);
    }
    let template =
        Api::<DynamicObject>::namespaced_with(ctx.client.clone(), &namespace, &template_kind)
            .get(&template_ref.name)
            .await?;
    let template = &template.data["spec"]["template"];
    let mut labels = template["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    labels.insert(CLUSTER_NAME_LABEL.into(), json!(cluster.name_any()));
    let mut annotations = template["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    annotations.insert(CLONED_FROM_NAME.into(), json!(template_ref.name));
    annotations.insert(
        CLONED_FROM_GROUPKIND.into(),
        json!(format!("{}.{}", template_kind.kind, template_ref.api_group)),
    );
    let body: DynamicObject = serde_json::from_value(json!({
        "apiVersion": resource.api_version, "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations,
            "ownerReferences": [cluster_owner_reference(cluster)]},
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    }))?;
    create_once(&machines, &body).await?;
    Ok(reference)
}

/// Creates `body` unless an object of that name exists (AlreadyExists tolerated); objects
/// created this way are never updated.
async fn create_once(api: &Api<DynamicObject>, body: &DynamicObject) -> Result<(), Error> {
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    match api.create(&params, body).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// [KK-12]: the Machine, created once; afterwards only its labels and owner are kept.
async fn control_plane_machine(
    machines: &Api<DynamicObject>,
    kkcp: &Kany8sKubeadmControlPlane,
    cluster: &capi::Cluster,
    name: &str,
    infrastructure: &Value,
) -> Result<(), Error> {
    let cluster_name = cluster.name_any();
    let labels = json!({CLUSTER_NAME_LABEL: cluster_name, CONTROL_PLANE_LABEL: "true"});
    let owner = cluster_owner_reference(cluster);
    match machines.get_opt(name).await? {
        None => {
            let body: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
                "metadata": {"name": name, "namespace": kkcp.namespace(), "labels": labels, "ownerReferences": [owner]},
                "spec": {"clusterName": cluster_name, "version": kkcp.spec.version,
                    "bootstrap": {"configRef": {"apiGroup": "bootstrap.cluster.x-k8s.io", "kind": "KubeadmConfig", "name": name}},
                    "infrastructureRef": infrastructure},
            }))?;
            create_once(machines, &body).await
        }
        Some(machine) => {
            let labelled = machine.labels().get(CLUSTER_NAME_LABEL) == Some(&cluster_name)
                && machine
                    .labels()
                    .get(CONTROL_PLANE_LABEL)
                    .map(String::as_str)
                    == Some("true");
            let owned = machine
                .owner_references()
                .iter()
                .any(|o| Some(&o.uid) == cluster.metadata.uid.as_ref());
            if !labelled || !owned {
                let body = json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
                    "metadata": {"name": name, "labels": labels, "ownerReferences": [owner]}});
                machines
                    .patch(
                        name,
                        &PatchParams::apply(FIELD_MANAGER).force(),
                        &Patch::Apply(&body),
                    )
                    .await?;
            }
            Ok(())
        }
    }
}

/// Decides, writes the status (once, when changed) and emits the events.
async fn apply_decision(
    ctx: &Context,
    kkcp: &Kany8sKubeadmControlPlane,
    api: &Api<Kany8sKubeadmControlPlane>,
    inputs: &Inputs,
) -> Result<(), Error> {
    let decision = decide::decide(inputs);
    write_status(api, kkcp, decision.status).await?;
    for event in &decision.events {
        publish(&ctx.recorder, kkcp, event).await;
    }
    Ok(())
}

/// The own-object apply: the finalizer and `spec.controlPlaneEndpoint` ([KK-03], [KK-08]).
async fn own_apply(
    kkcp: &Kany8sKubeadmControlPlane,
    api: &Api<Kany8sKubeadmControlPlane>,
    finalizer: bool,
    endpoint: Option<ApiEndpoint>,
) -> Result<(), Error> {
    let finalizer = finalizer.then_some(FINALIZER);
    crate::backend::apply_own(api, kkcp, finalizer, false, endpoint, FIELD_MANAGER).await
}

/// The one status write of a pass ([CP-14], [CP-47]).
async fn write_status(
    api: &Api<Kany8sKubeadmControlPlane>,
    kkcp: &Kany8sKubeadmControlPlane,
    status: Kany8sKubeadmControlPlaneStatus,
) -> Result<bool, Error> {
    crate::backend::apply_status(api, kkcp, kkcp.status.as_ref(), status, FIELD_MANAGER).await
}

/// [KK-18]: deletion deletes the control-plane Machine and waits for it.
async fn delete(
    kkcp: &Kany8sKubeadmControlPlane,
    ctx: &Context,
    api: &Api<Kany8sKubeadmControlPlane>,
    owner: &Owner,
) -> Result<Action, Error> {
    if !kkcp.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let release = || own_apply(kkcp, api, false, kkcp.spec.control_plane_endpoint.clone());
    if kkcp.annotations().contains_key(DELETE_FOR_MOVE_ANNOTATION) {
        release().await?;
        return Ok(Action::await_change());
    }
    let generation = kkcp.metadata.generation.unwrap_or(0);
    let now = now();
    let mut status = kkcp.status.clone().unwrap_or_default();
    let owner = match owner {
        Owner::Found(c) => Owner::Found(c.clone()),
        _ => Owner::NotSet,
    };
    if let Some(message) = paused_message("Kany8sKubeadmControlPlane", kkcp.annotations(), &owner) {
        put_deletion_paused(&mut status.conditions, message, generation, &now);
        write_status(api, kkcp, status).await?;
        return Ok(Action::await_change());
    }
    let cluster_name = owner.cluster().map(ResourceExt::name_any).or_else(|| {
        kkcp.owner_references()
            .iter()
            .find(|o| {
                o.kind == "Cluster" && capi::api_group_of(&o.api_version) == capi::CLUSTER_API_GROUP
            })
            .map(|o| o.name.clone())
    });
    let namespace = kkcp.namespace().unwrap_or_default();
    let mut remaining = Vec::new();
    if let Some(cluster_name) = &cluster_name {
        let machines = Api::<DynamicObject>::namespaced_with(
            ctx.client.clone(),
            &namespace,
            &machine_resource(),
        );
        let prefix = format!("{cluster_name}-control-plane-");
        let listed = machines
            .list(&ListParams::default().labels(&format!("{CLUSTER_NAME_LABEL}={cluster_name}")))
            .await?;
        for machine in listed.items.iter().filter(|m| {
            m.name_any()
                .strip_prefix(&prefix)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        }) {
            if machine.metadata.deletion_timestamp.is_none() {
                let params = DeleteParams {
                    propagation_policy: Some(PropagationPolicy::Background),
                    ..DeleteParams::default()
                };
                match machines.delete(&machine.name_any(), &params).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            remaining.push(machine.name_any());
        }
    }
    let Some(first) = remaining.first() else {
        release().await?;
        return Ok(Action::await_change());
    };
    let waiting = waiting_for_deletion("WaitingForMachineDeletion", "Machine", &namespace, first);
    put_deleting(
        &mut status.conditions,
        &waiting,
        "control plane is being deleted",
        &[types::AVAILABLE],
        generation,
        &now,
    );
    capi::remove_condition(&mut status.conditions, types::CREATING);
    status.observed_generation = Some(generation);
    let before = kkcp.status.clone().unwrap_or_default().conditions;
    if write_status(api, kkcp, status.clone()).await? {
        for event in crate::controlplane::decide::condition_events(
            &before,
            &status.conditions,
            &[types::DELETING],
        ) {
            publish(&ctx.recorder, kkcp, &event).await;
        }
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(host: &str, port: i32) -> ApiEndpoint {
        ApiEndpoint {
            host: Some(host.into()),
            port: Some(port),
        }
    }

    fn files(directory: &str) -> Vec<File> {
        vec![
            File {
                path: format!("{directory}/ca.crt"),
                content: "CERT".into(),
                key: false,
            },
            File {
                path: format!("{directory}/ca.key"),
                content: "KEY".into(),
                key: true,
            },
        ]
    }

    /// [KK-10]: defaults, the endpoint, the bind port and the certificate files.
    #[test]
    fn kk10_kubeadm_config_defaults() {
        let spec =
            kubeadm_config_spec(None, &endpoint("127.0.0.1", 6443), &files(KUBEADM_PKI)).unwrap();
        assert_eq!(
            spec["clusterConfiguration"]["controlPlaneEndpoint"],
            "127.0.0.1:6443"
        );
        assert_eq!(
            spec["clusterConfiguration"]["certificatesDir"],
            "/run/kubeadm/pki"
        );
        assert_eq!(
            spec["initConfiguration"]["localAPIEndpoint"]["bindPort"],
            6443
        );
        assert_eq!(
            spec["files"],
            json!([
                {"path": "/run/kubeadm/pki/ca.crt", "owner": "root:root", "permissions": "0640", "content": "CERT"},
                {"path": "/run/kubeadm/pki/ca.key", "owner": "root:root", "permissions": "0600", "content": "KEY"},
            ])
        );
    }

    /// [KK-10]: the user's values are kept where the spec says defaults; user files at the
    /// injected paths are replaced, others kept first; IPv6 hosts are bracketed.
    #[test]
    fn kk10_kubeadm_config_keeps_user_values() {
        let user = json!({
            "clusterConfiguration": {"certificatesDir": "/etc/kubernetes/pki", "apiServer": {"extraArgs": [{"name": "v", "value": "2"}]}},
            "initConfiguration": {"localAPIEndpoint": {"bindPort": 8443}},
            "files": [{"path": "/etc/kubernetes/pki/ca.crt", "content": "user"}, {"path": "/etc/motd", "content": "hi"}],
        });
        let spec =
            kubeadm_config_spec(Some(&user), &endpoint("fd00::1", 6443), &files(KUBEADM_PKI))
                .unwrap();
        assert_eq!(
            spec["clusterConfiguration"]["controlPlaneEndpoint"],
            "[fd00::1]:6443"
        );
        assert_eq!(
            spec["clusterConfiguration"]["certificatesDir"],
            "/etc/kubernetes/pki"
        );
        assert_eq!(
            spec["clusterConfiguration"]["apiServer"],
            user["clusterConfiguration"]["apiServer"]
        );
        assert_eq!(
            spec["initConfiguration"]["localAPIEndpoint"]["bindPort"],
            8443
        );
        let paths: Vec<&str> = spec["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            paths,
            [
                "/etc/motd",
                "/etc/kubernetes/pki/ca.crt",
                "/etc/kubernetes/pki/ca.key"
            ]
        );
        assert_eq!(spec["files"][1]["content"], "CERT");
        let error = kubeadm_config_spec(Some(&json!([1])), &endpoint("h", 1), &[]).unwrap_err();
        assert_eq!(
            error,
            "spec.kubeadmConfigSpec must be a JSON object, got array"
        );
    }

    /// [KK-17]: the rotation timer, bounded by the sync period.
    #[test]
    fn kk17_rotation_delay() {
        let now = time::OffsetDateTime::now_utc();
        let sync = Duration::from_secs(600);
        let in_days = |d: i64| now + time::Duration::days(d);
        assert_eq!(rotation_delay(in_days(365), now, sync), sync);
        assert_eq!(
            rotation_delay(in_days(180) + time::Duration::seconds(90), now, sync),
            Duration::from_secs(90)
        );
        assert_eq!(
            rotation_delay(in_days(10), now, sync),
            Duration::from_secs(1)
        );
    }

    /// [KK-06]: the highest Kubernetes-ordered version of a contract label.
    #[test]
    fn kk06_contract_version_order() {
        assert_eq!(
            contract_version("v1beta1_v1beta2").as_deref(),
            Some("v1beta2")
        );
        assert_eq!(
            contract_version("v1alpha3_v1beta1_v1").as_deref(),
            Some("v1")
        );
        assert_eq!(contract_version("v2beta1_v1").as_deref(), Some("v1"));
        assert_eq!(
            contract_version("v1alpha4_v1alpha10").as_deref(),
            Some("v1alpha10")
        );
        assert_eq!(contract_version("garbage"), None);
    }

    /// [KK-04]: which Secrets exist, and which are generated, with local and external etcd.
    #[test]
    fn kk04_certificate_set() {
        let local: Vec<(&str, bool)> = certificate_secrets(false)
            .iter()
            .map(|c| (c.suffix, c.generate.is_some()))
            .collect();
        assert_eq!(
            local,
            [("ca", true), ("etcd", true), ("proxy", true), ("sa", true)]
        );
        let external: Vec<(&str, bool)> = certificate_secrets(true)
            .iter()
            .map(|c| (c.suffix, c.generate.is_some()))
            .collect();
        assert_eq!(
            external,
            [
                ("ca", true),
                ("etcd", false),
                ("apiserver-etcd-client", false),
                ("proxy", true),
                ("sa", true)
            ]
        );
    }
}
