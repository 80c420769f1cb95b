//! The I/O edges of the Kany8sKubeadmControlPlane reconcile (provider.md §7): the owner
//! Cluster, certificate Secrets, the infrastructure cluster, the admin kubeconfig, the
//! KubeadmConfig, the infrastructure machine and the Machine, in that order; then the pure
//! decide step and one status write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::reconciler::Action;
use crate::reconciler::events::Recorder;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, PropagationPolicy,
};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::build::{self, CONTRACT_LABEL, Certificates, contract_version};
use super::certs::{self, CertKeyPair};
use super::decide::{self, CONTROL_PLANE_LABEL, Inputs, Progress};
use crate::api::{Kany8sKubeadmControlPlane, Kany8sKubeadmControlPlaneStatus};
use crate::capi::{self, ApiEndpoint, CLUSTER_NAME_LABEL};
use crate::dynamic::DynamicWatches;
use crate::metrics::Metrics;
use crate::owner::{Owner, owner_cluster, paused_message};
use crate::reconciler::conditions::{Status, Verdict, reasons, types, waiting_for_deletion};
use crate::reconciler::lifecycle::{self, Dependents, Kany8sObject};
use crate::reconciler::runtime::Shared;
use crate::reconciler::{Error, lock, now};

/// Field manager of every write of this controller ([CP-49]).
pub const FIELD_MANAGER: &str = "kany8s-kubeadm";
/// The facade's finalizer (§2.8).
pub const FINALIZER: &str = "kany8skubeadmcontrolplane.controlplane.cluster.x-k8s.io";
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

// [KK-03]: the facade's control plane carries block-move, not the facade.
crate::kany8s_object!(
    Kany8sKubeadmControlPlane,
    Kany8sKubeadmControlPlaneStatus,
    kind: "Kany8sKubeadmControlPlane",
    finalizer: FINALIZER,
    field_manager: FIELD_MANAGER,
    block_move: false,
    deleting_also: &[types::AVAILABLE],
    deleting_message: "control plane is being deleted",
);

/// The controller's context: what every controller holds, plus the metrics, the sync period
/// (which bounds the rotation timer, [KK-17]) and the contract-versioned kinds found so far.
#[derive(Debug)]
pub struct Context {
    shared: Shared<Kany8sKubeadmControlPlane>,
    pub metrics: Arc<Metrics>,
    pub sync_period: Duration,
    /// Contract-versioned kinds by (group, kind) ([KK-06]).
    contract: Mutex<HashMap<(String, String), ApiResource>>,
}

impl std::ops::Deref for Context {
    type Target = Shared<Kany8sKubeadmControlPlane>;

    fn deref(&self) -> &Self::Target {
        &self.shared
    }
}

impl Context {
    pub fn new(
        client: Client,
        clusters: kube::runtime::reflector::Store<crate::capi::Cluster>,
        recorder: Recorder,
        watches: Arc<DynamicWatches<Kany8sKubeadmControlPlane>>,
        metrics: Arc<Metrics>,
        sync_period: Duration,
    ) -> Self {
        Self {
            shared: Shared::new(client, clusters, None, recorder, watches),
            metrics,
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
            verdict: Verdict::new(Status::False, reason, message),
            retry: true,
        }
    }

    fn waiting(reason: &str, message: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::new(Status::False, reason, message),
            retry: false,
        }
    }
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

/// [KK-04]: looks up every certificate Secret, creating the missing ones; never modifies one.
async fn certificates(
    ctx: &Context,
    namespace: &str,
    cluster: &capi::Cluster,
    config: &Value,
    directory: &str,
) -> Result<Certificates, String> {
    let cluster_config = &config["clusterConfiguration"];
    let algorithm = build::key_algorithm(config)?;
    let external_etcd = cluster_config
        .pointer("/etcd/external")
        .is_some_and(|e| !e.is_null());
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let cluster_name = cluster.name_any();
    let mut ca = None;
    let mut files = Vec::new();
    for wanted in build::certificate_secrets(external_etcd) {
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
                let body: Secret = serde_json::from_value(build::certificate_secret(
                    namespace, &name, cluster, pair,
                ))
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
        let (mut more, pair) = build::certificate_files(&wanted, &secret, directory)
            .map_err(|e| format!("secret {namespace}/{name}: {e}"))?;
        files.append(&mut more);
        if wanted.suffix == "ca" {
            ca = Some(pair);
        }
    }
    let ca = ca.ok_or_else(|| "the cluster CA is missing".to_string())?;
    Ok(Certificates { ca, files })
}

/// Reconciles one facade.
pub async fn reconcile(
    kkcp: Arc<Kany8sKubeadmControlPlane>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let namespace = kkcp.namespace().unwrap_or_default();
    let api: Api<Kany8sKubeadmControlPlane> = Api::namespaced(ctx.client.clone(), &namespace);
    let owner = owner_cluster(&ctx.clusters, kkcp.as_ref()).await;
    if kkcp.metadata.deletion_timestamp.is_some() {
        return lifecycle::delete(&api, &ctx.recorder, kkcp.as_ref(), &owner, &now(), || {
            delete_machines(&ctx, &kkcp, &owner)
        })
        .await;
    }
    let generation = kkcp.metadata.generation.unwrap_or(0);
    if let Some(message) =
        paused_message(Kany8sKubeadmControlPlane::KIND, kkcp.annotations(), &owner)
    {
        // [KK-02]: nothing but the condition.
        return lifecycle::pause(&api, kkcp.as_ref(), message, &now(), async { Ok(()) }).await;
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
    lifecycle::ensure_own(&api, kkcp.as_ref()).await?;
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
        &build::certificates_dir(&config),
    )
    .await
    {
        Ok(c) => {
            inputs.certificates = Some(Verdict::new(
                Status::True,
                reasons::CERTIFICATES_AVAILABLE,
                "cluster certificates are available",
            ));
            c
        }
        Err(e) => {
            inputs.certificates = Some(Verdict::new(
                Status::False,
                reasons::CERTIFICATES_UNAVAILABLE,
                e.clone(),
            ));
            return Err(Stop::failed(reasons::CERTIFICATES_UNAVAILABLE, e));
        }
    };

    // [KK-05]–[KK-08]
    let Some(reference) = cluster.spec.infrastructure_ref.clone() else {
        return Err(Stop::waiting(
            reasons::WAITING_FOR_INFRASTRUCTURE_REF,
            "waiting for Cluster spec.infrastructureRef to be set",
        ));
    };
    let infra_error = |e: &dyn std::fmt::Display| {
        Stop::failed(
            reasons::INFRASTRUCTURE_GET_FAILED,
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
            reasons::WAITING_FOR_INFRASTRUCTURE_ENDPOINT,
            "waiting for infrastructure controlPlaneEndpoint to be set",
        ));
    };
    if kkcp.spec.control_plane_endpoint.as_ref() != Some(&endpoint) {
        lifecycle::own_apply(api, kkcp, true, false, Some(endpoint.clone()))
            .await
            .map_err(|e| {
                Stop::failed(
                    reasons::INFRASTRUCTURE_GET_FAILED,
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
            reasons::KUBECONFIG_GENERATION_FAILED,
            format!("generate kubeconfig: {e}"),
        )
    })?;
    *requeue = Some(build::rotation_delay(
        expires,
        time::OffsetDateTime::now_utc(),
        ctx.sync_period,
    ));

    // [KK-10]
    let name = machine_name(&cluster_name);
    let bootstrap_error = |e: &dyn std::fmt::Display| {
        Stop::failed(
            reasons::BOOTSTRAP_CONFIG_FAILED,
            format!("reconcile KubeadmConfig {namespace}/{name}: {e}"),
        )
    };
    let spec = build::kubeadm_config_spec(
        kkcp.spec.kubeadm_config_spec.as_ref(),
        &endpoint,
        &certificates.files,
    )
    .map_err(|e| bootstrap_error(&e))?;
    let body = build::kubeadm_config(&namespace, &name, cluster, spec);
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
                reasons::INFRASTRUCTURE_MACHINE_FAILED,
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
                reasons::MACHINE_FAILED,
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
                reasons::WAITING_FOR_CONTROL_PLANE_MACHINE,
                format!("list control plane Machines: {e}"),
            )
        })?;
    let machines = listed
        .items
        .iter()
        .map(|m| build::machine_report(&serde_json::to_value(m).unwrap_or_default()))
        .collect();
    Ok(Progress::Built {
        remote_connection_probe: build::remote_connection_probe(cluster),
        machines,
    })
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
    let now = time::OffsetDateTime::now_utc();
    let (value, expires) = match build::kubeconfig_plan(existing.as_ref(), cluster, &server, now) {
        build::KubeconfigPlan::Keep(expires) => return Ok(expires),
        build::KubeconfigPlan::Repair(value, expires) => (value, expires),
        build::KubeconfigPlan::Regenerate(reason) => {
            let algorithm = build::key_algorithm(config)?;
            let text = certs::admin_kubeconfig(&cluster_name, &server, ca, algorithm, now)
                .map_err(|e| e.to_string())?;
            tracing::info!(secret = %format!("{namespace}/{name}"), %reason, "admin kubeconfig generated");
            let expires = certs::regeneration_reason(Some(text.as_bytes()), &server, now)?;
            (text.into_bytes(), expires)
        }
    };
    secrets
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&build::kubeconfig_secret(namespace, cluster, value)),
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
    let kind = build::machine_kind(&template_kind.kind).to_string();
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
    let template = serde_json::to_value(template)?;
    let body = build::infrastructure_machine(
        &namespace,
        name,
        cluster,
        &build::MachineTemplate {
            api_group: &template_ref.api_group,
            name: &template_ref.name,
            kind: &template_kind.kind,
            api_version: &resource.api_version,
            object: &template,
        },
    );
    create_once(&machines, &serde_json::from_value(body)?).await?;
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
    match machines.get_opt(name).await? {
        None => {
            let body = build::machine(
                &kkcp.namespace().unwrap_or_default(),
                name,
                cluster,
                &kkcp.spec.version,
                infrastructure,
            );
            create_once(machines, &serde_json::from_value(body)?).await
        }
        Some(machine) => {
            if let Some(repair) = build::machine_repair(&machine.metadata, name, cluster) {
                machines
                    .patch(
                        name,
                        &PatchParams::apply(FIELD_MANAGER).force(),
                        &Patch::Apply(&repair),
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
    lifecycle::apply_decision(
        api,
        &ctx.recorder,
        kkcp,
        None,
        decision.status,
        &decision.events,
    )
    .await
}

/// [KK-18]: deletes the control-plane Machines and says which one deletion waits for.
async fn delete_machines(
    ctx: &Context,
    kkcp: &Kany8sKubeadmControlPlane,
    owner: &Owner,
) -> Result<Dependents, Error> {
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
    Ok(match remaining.first() {
        None => Dependents::Released,
        Some(first) => Dependents::Waiting(
            waiting_for_deletion(
                reasons::WAITING_FOR_MACHINE_DELETION,
                "Machine",
                &namespace,
                first,
            ),
            None,
        ),
    })
}
