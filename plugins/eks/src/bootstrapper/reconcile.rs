//! One reconcile of the bootstrapper: observe (API availability, the ACK Cluster, EC2 subnet
//! facts, the node SecurityGroup, the FargateProfiles, the template ConfigMap and every object
//! it would write, read live), [`super::decide`], then apply (server-side apply with the field
//! manager `eks-karpenter-bootstrapper` after the managed-by check, the Cluster metadata it owns,
//! the workload-cluster steps, events, metrics) and return the requeue. Nothing here logs a
//! Secret, a kubeconfig or a credential.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use kube::api::{Api as KubeApi, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Client, Resource, ResourceExt};
use serde_json::Value;

use super::apis::{Api, Availability};
use super::decide::{
    self, AckLookup, Fargate, Inputs, NodeSecurityGroup, Phase, Stop, Template, Thumbprint,
};
use super::ec2::{self, Ec2};
use super::flags::Timing;
use super::objects::{Desired, Identity, ObjectNames};
use super::{keys as kb, reasons, thumbprint, workload};
use crate::BOOTSTRAPPER;
use crate::cluster::Cluster;
use crate::events::{Emitter, Notice};
use crate::keys;
use crate::metrics::Metrics;
use crate::names;

/// Errors of one reconcile (API reads and writes); retried after the failure backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("reconcile panicked")]
    Panicked,
}

/// What a reconcile needs.
pub struct Context {
    pub client: Client,
    pub timing: Timing,
    /// `--karpenter-chart-version` with its default.
    pub chart_version: String,
    pub emitter: Emitter,
    pub metrics: Arc<Metrics>,
    pub availability: Arc<Availability>,
    pub ec2: Ec2,
    /// [KB-04]: the OIDC thumbprint lookup.
    pub thumbprints: thumbprint::Resolver,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("timing", &self.timing)
            .field("chart_version", &self.chart_version)
            .finish_non_exhaustive()
    }
}

fn identity(cluster: &Cluster) -> Identity {
    let names = names::resolve(cluster);
    Identity {
        namespace: cluster.namespace().unwrap_or_default(),
        capi: names.capi,
        eks: names.eks,
        ack: names.ack,
        cluster_uid: cluster.uid().unwrap_or_default(),
    }
}

fn api(ctx: &Context, namespace: &str, api: Api) -> KubeApi<DynamicObject> {
    KubeApi::namespaced_with(ctx.client.clone(), namespace, &api.resource())
}

/// GET that reads "no such object" and "no such resource" alike as absent.
async fn get(
    ctx: &Context,
    namespace: &str,
    kind: Api,
    name: &str,
) -> Result<Option<DynamicObject>, Error> {
    match api(ctx, namespace, kind).get_opt(name).await {
        Ok(object) => Ok(object),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(error) => Err(error.into()),
    }
}

async fn post(ctx: &Context, cluster: &Cluster, notices: &[Notice], now: SystemTime) {
    let regarding = cluster.object_ref(&());
    for notice in notices {
        ctx.emitter.post(&regarding, notice, now).await;
    }
}

async fn stop(ctx: &Context, cluster: &Cluster, stop: Stop, now: SystemTime) -> Action {
    tracing::debug!(
        namespace = cluster.namespace().unwrap_or_default(),
        cluster = cluster.name_any(),
        reason = stop.notice.as_ref().map(|n| n.reason).unwrap_or_default(),
        requeue_s = stop.requeue.as_secs(),
        "waiting"
    );
    if let Some(resource) = stop.conflict {
        ctx.metrics.ownership_conflict(resource);
    }
    if let Some(notice) = &stop.notice {
        post(ctx, cluster, std::slice::from_ref(notice), now).await;
    }
    Action::requeue(stop.requeue)
}

/// Applies the Cluster metadata the bootstrapper owns when the Cluster lacks some of it;
/// returns the Cluster as the server has it afterwards.
async fn ensure_metadata(
    ctx: &Context,
    cluster: Cluster,
    annotations: &BTreeMap<String, String>,
) -> Result<Cluster, Error> {
    let Some(body) = decide::cluster_metadata(&cluster, annotations) else {
        return Ok(cluster);
    };
    let clusters: KubeApi<Cluster> =
        KubeApi::namespaced(ctx.client.clone(), &cluster.namespace().unwrap_or_default());
    let updated = clusters
        .patch(
            &cluster.name_any(),
            &PatchParams::apply(BOOTSTRAPPER).force(),
            &Patch::Apply(&body),
        )
        .await?;
    Ok(updated)
}

async fn apply(ctx: &Context, namespace: &str, desired: &Desired) -> Result<DynamicObject, Error> {
    let applied = api(ctx, namespace, desired.api)
        .patch(
            &desired.name,
            &PatchParams::apply(BOOTSTRAPPER).force(),
            &Patch::Apply(&desired.body),
        )
        .await?;
    tracing::info!(%namespace, kind = desired.api.kind(), name = %desired.name, "applied");
    Ok(applied)
}

/// [KB-04]: the thumbprint the annotation asks for. An unverifiable chain keeps the thumbprints
/// the managed provider already has; they are read only then.
async fn thumbprint(
    ctx: &Context,
    cluster: &Cluster,
    names: &ObjectNames,
    issuer: &str,
) -> Result<Thumbprint, Error> {
    let annotations = cluster.metadata.annotations.clone().unwrap_or_default();
    if !decide::thumbprint_auto(&annotations) {
        return Ok(Thumbprint::Off);
    }
    match ctx.thumbprints.thumbprint(issuer).await {
        Ok(thumbprint) => Ok(Thumbprint::Resolved(thumbprint)),
        Err(error) if error.is_unverified() => {
            let namespace = cluster.namespace().unwrap_or_default();
            let kept = get(ctx, &namespace, Api::OidcProvider, &names.oidc_provider)
                .await?
                .filter(|o| keys::managed_by(o.metadata.annotations.as_ref(), BOOTSTRAPPER))
                .and_then(|o| o.data.pointer("/spec/thumbprints").cloned())
                .and_then(|t| serde_json::from_value::<Vec<String>>(t).ok())
                .unwrap_or_default();
            Ok(Thumbprint::Skipped {
                error: error.to_string(),
                kept,
            })
        }
        Err(error) => Ok(Thumbprint::Failed(error.to_string())),
    }
}

/// One pass over `cluster` ([KB-01]–[KB-07]).
pub async fn reconcile(cluster: Arc<Cluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    match decide::phase(&cluster) {
        Phase::Ignore => Ok(Action::await_change()),
        Phase::Cleanup => cleanup(&cluster, &ctx).await,
        Phase::Bootstrap => bootstrap((*cluster).clone(), &ctx).await,
    }
}

fn active(profile: Option<&DynamicObject>) -> bool {
    profile
        .and_then(|p| p.data.pointer("/status/status"))
        .and_then(Value::as_str)
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("ACTIVE"))
}

/// [KB-05]: the NodePool template ConfigMap named by the annotation, if any.
async fn template(ctx: &Context, cluster: &Cluster) -> Result<Template, Error> {
    let annotations = cluster.metadata.annotations.as_ref();
    let name = keys::trimmed(annotations, kb::NODEPOOL_TEMPLATE_CONFIGMAP);
    if name.is_empty() {
        return Ok(Template::Default);
    }
    let key = Some(keys::trimmed(annotations, kb::NODEPOOL_TEMPLATE_KEY))
        .filter(|k| !k.is_empty())
        .unwrap_or("resources.yaml");
    let namespace = cluster.namespace().unwrap_or_default();
    let Some(config_map) = get(ctx, &namespace, Api::ConfigMap, name).await? else {
        return Ok(Template::Override(Err(format!(
            "ConfigMap {namespace}/{name} does not exist"
        ))));
    };
    let text = config_map
        .data
        .pointer(&format!(
            "/data/{}",
            key.replace('~', "~0").replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or_default();
    Ok(Template::Override(if text.is_empty() {
        Err(format!(
            "ConfigMap {namespace}/{name} has no data[\"{key}\"]"
        ))
    } else {
        Ok(format!("{text}\n"))
    }))
}

async fn bootstrap(cluster: Cluster, ctx: &Context) -> Result<Action, Error> {
    let now = SystemTime::now();
    let timing = ctx.timing;
    let served = ctx.availability.snapshot();
    let identity = identity(&cluster);
    let names = ObjectNames::of(&identity.capi, &identity.eks);
    let namespace = identity.namespace.clone();
    // [KB-02]: the finalizer and the label come first, so whatever is created is cleaned up.
    let carried = decide::owned_annotations(&cluster, &[]);
    let mut cluster = ensure_metadata(ctx, cluster, &carried).await?;
    let topology = match decide::topology(&cluster, &timing) {
        Ok(topology) => topology,
        Err(halt) => return Ok(stop(ctx, &cluster, halt, now).await),
    };
    if let Some(halt) = decide::missing_apis(&served, &topology, &timing) {
        return Ok(stop(ctx, &cluster, halt, now).await);
    }
    let lookup = match get(ctx, &namespace, Api::AckCluster, &identity.ack).await? {
        Some(object) => AckLookup::Found(Box::new(decide::AckFacts::from_object(&object))),
        None => AckLookup::NotFound,
    };
    let ready = match decide::ready(&cluster, &lookup, &timing) {
        Ok(ready) => ready,
        Err(halt) => return Ok(stop(ctx, &cluster, halt, now).await),
    };
    // [KB-03]: region and EKS name persisted on the Cluster (the deletion path reads them).
    let persisted = decide::owned_annotations(
        &cluster,
        &[
            (keys::REGION, ready.aws.region.as_str()),
            (keys::CLUSTER_NAME, identity.eks.as_str()),
        ],
    );
    cluster = ensure_metadata(ctx, cluster, &persisted).await?;
    let report = match ctx
        .ec2
        .subnets(&ready.aws.region, &topology.node_subnets)
        .await
    {
        Ok(report) => report,
        Err(error) => {
            let halt = Stop {
                notice: Some(Notice::warning(
                    reasons::AWS_PREREQUISITES_NOT_READY,
                    format!(
                        "cannot validate topology variable \"{}\" with EC2: {error}; action: grant ec2:DescribeSubnets, ec2:DescribeRouteTables and ec2:DescribeVpcs",
                        kb::NODE_SUBNET_IDS
                    ),
                )),
                requeue: timing.failure_backoff,
                conflict: None,
            };
            return Ok(stop(ctx, &cluster, halt, now).await);
        }
    };
    let verdict = ec2::verdict(&report, Some(ready.cluster_vpc.as_str()));
    let mut notices = match decide::subnets(&verdict, &timing) {
        Ok(notices) => notices,
        Err(halt) => return Ok(stop(ctx, &cluster, halt, now).await),
    };
    let node_security_group = if topology.node_security_groups.is_empty() {
        let existing = get(
            ctx,
            &namespace,
            Api::SecurityGroup,
            &names.node_security_group,
        )
        .await?;
        let id = existing
            .filter(|o| keys::managed_by(o.metadata.annotations.as_ref(), BOOTSTRAPPER))
            .and_then(|o| {
                o.data
                    .pointer("/status/id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
        NodeSecurityGroup::Managed {
            vpc_cidrs: report
                .vpc_cidrs
                .get(&verdict.vpc_id)
                .cloned()
                .unwrap_or_default(),
            vpc_id: verdict.vpc_id.clone(),
            id,
        }
    } else {
        NodeSecurityGroup::Provided(topology.node_security_groups.clone())
    };
    let fargate = Fargate {
        karpenter: active(
            get(
                ctx,
                &namespace,
                Api::FargateProfile,
                &names.fargate_karpenter,
            )
            .await?
            .as_ref(),
        ),
        coredns: active(
            get(ctx, &namespace, Api::FargateProfile, &names.fargate_coredns)
                .await?
                .as_ref(),
        ),
    };
    let thumbprint = thumbprint(ctx, &cluster, &names, &ready.aws.issuer).await?;
    let inputs = Inputs {
        identity: identity.clone(),
        names: names.clone(),
        annotations: cluster.metadata.annotations.clone().unwrap_or_default(),
        topology,
        ready,
        served,
        node_security_group,
        template: template(ctx, &cluster).await?,
        fargate,
        chart_version: ctx.chart_version.clone(),
        thumbprint,
        timing,
    };
    let wanted = match decide::wanted(&inputs) {
        Ok(wanted) => wanted,
        Err(halt) => {
            post(ctx, &cluster, &notices, now).await;
            return Ok(stop(ctx, &cluster, halt, now).await);
        }
    };
    let mut existing = BTreeMap::new();
    for desired in &wanted.objects {
        if let Some(object) = get(ctx, &namespace, desired.api, &desired.name).await? {
            existing.insert((desired.api, desired.name.clone()), object);
        }
    }
    let takeover = keys::takeover_allowed(cluster.metadata.annotations.as_ref());
    let plan = decide::treat(&wanted.objects, &existing, takeover, &namespace);
    for desired in &plan.applies {
        apply(ctx, &namespace, desired).await?;
    }
    for resource in &plan.conflicts {
        ctx.metrics.ownership_conflict(resource);
    }
    notices.extend(wanted.notices.iter().cloned());
    notices.extend(plan.notices.iter().cloned());
    let mut requeue = decide::requeue(&wanted, &plan, &timing);
    // [KB-04]: the managed node SecurityGroup's id goes into the topology variables (unless
    // someone else owns an object of that name).
    let security_group_conflict = plan.conflicts.contains(&Api::SecurityGroup.kind());
    if !security_group_conflict
        && let Some((patch, changed)) = decide::variables_patch(&cluster, &wanted.variables)
    {
        let clusters: KubeApi<Cluster> = KubeApi::namespaced(ctx.client.clone(), &namespace);
        cluster = clusters
            .patch(
                &cluster.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        for variable in changed {
            notices.push(Notice::normal(
                reasons::TOPOLOGY_VARIABLE_PATCHED,
                format!("patched Cluster.spec.topology.variables[\"{variable}\"] with the node SecurityGroup"),
            ));
        }
        // Cluster API's topology controller propagates the new values first.
        requeue = timing.failure_backoff;
    }
    // [KB-05]: one-shot rollout restarts in the workload cluster.
    let flux_applied = wanted.flux
        && !plan.conflicts.contains(&Api::HelmRelease.kind())
        && !plan.conflicts.contains(&Api::OciRepository.kind());
    let annotations = cluster.metadata.annotations.clone().unwrap_or_default();
    let restarts = decide::restarts(&annotations, fargate, flux_applied);
    let mut records: Vec<(&str, String)> = Vec::new();
    if !restarts.is_empty() {
        match workload::client(&ctx.client, &namespace, &identity.capi).await {
            Ok(Some(workload)) => {
                let at = crate::rotator::decide::rfc3339(now);
                for restart in &restarts {
                    match workload::rollout_restart(&workload, restart.namespace, restart.name, &at)
                        .await
                    {
                        Ok(true) => {
                            records.push((restart.record, at.clone()));
                            notices.push(Notice::normal(
                                reasons::WORKLOAD_ROLLOUT_RESTARTED,
                                format!(
                                    "rolled out a restart of {}/{}",
                                    restart.namespace, restart.name
                                ),
                            ));
                        }
                        Ok(false) => requeue = timing.failure_backoff,
                        Err(error) => {
                            tracing::warn!(%error, deployment = restart.name, "workload rollout restart failed");
                            requeue = timing.failure_backoff;
                        }
                    }
                }
            }
            Ok(None) => requeue = timing.failure_backoff,
            Err(error) => {
                tracing::warn!(%error, "workload cluster client");
                requeue = timing.failure_backoff;
            }
        }
    }
    if !records.is_empty() {
        let updates: Vec<(&str, &str)> = records.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let owned = decide::owned_annotations(&cluster, &updates);
        cluster = ensure_metadata(ctx, cluster, &owned).await?;
    }
    if requeue == timing.steady_state
        && let Some(steady) = decide::steady(&wanted, &plan, &timing)
    {
        notices.push(steady);
    }
    post(ctx, &cluster, &notices, now).await;
    ctx.metrics.synced(now);
    tracing::debug!(%namespace, cluster = %identity.capi, requeue_s = requeue.as_secs(), applied = plan.applies.len(), "reconciled");
    Ok(Action::requeue(requeue))
}

/// [KB-06]: the region for the cleanup: the Cluster's annotation, the kubeconfig Secret's, the
/// ACK Cluster's ([PLG-03]).
async fn cleanup_region(
    ctx: &Context,
    cluster: &Cluster,
    identity: &Identity,
) -> Result<Option<String>, Error> {
    let from_cluster = keys::trimmed(cluster.metadata.annotations.as_ref(), keys::REGION);
    if !from_cluster.is_empty() {
        return Ok(Some(from_cluster.to_string()));
    }
    let secrets: KubeApi<k8s_openapi::api::core::v1::Secret> =
        KubeApi::namespaced(ctx.client.clone(), &identity.namespace);
    if let Some(secret) = secrets
        .get_opt(&format!("{}-kubeconfig", identity.capi))
        .await?
    {
        let region = keys::trimmed(secret.metadata.annotations.as_ref(), keys::REGION);
        if !region.is_empty() {
            return Ok(Some(region.to_string()));
        }
    }
    if ctx.availability.snapshot().contains(&Api::AckCluster)
        && let Some(object) = get(ctx, &identity.namespace, Api::AckCluster, &identity.ack).await?
    {
        let facts = decide::AckFacts::from_object(&object);
        return Ok(names::region(
            cluster.metadata.annotations.as_ref(),
            &facts.cluster,
        ));
    }
    Ok(None)
}

async fn cleanup(cluster: &Cluster, ctx: &Context) -> Result<Action, Error> {
    let now = SystemTime::now();
    let timing = ctx.timing;
    let served = ctx.availability.snapshot();
    let identity = identity(cluster);
    let names = ObjectNames::of(&identity.capi, &identity.eks);
    let namespace = identity.namespace.clone();
    let mut existing = BTreeMap::new();
    for (kind, name) in [
        (Api::OciRepository, &names.flux),
        (Api::HelmRelease, &names.flux),
        (Api::SecurityGroup, &names.node_security_group),
    ] {
        if served.contains(&kind)
            && let Some(object) = get(ctx, &namespace, kind, name).await?
        {
            existing.insert((kind, name.clone()), object);
        }
    }
    let region = cleanup_region(ctx, cluster, &identity).await?;
    let plan = decide::cleanup(&identity, &names, region, &existing);
    let mut notices = Vec::new();
    for desired in &plan.suspend {
        apply(ctx, &namespace, desired).await?;
    }
    if !plan.suspend.is_empty() {
        notices.push(Notice::normal(
            reasons::FLUX_SUSPENDED,
            "suspended Flux OCIRepository/HelmRelease for cluster deletion",
        ));
    }
    // Best effort: a workload cluster that cannot be reached does not hold the deletion.
    match workload::client(&ctx.client, &namespace, &identity.capi).await {
        Ok(Some(workload)) => match workload::stop_provisioning(&workload).await {
            Ok(stopped) => {
                tracing::info!(%namespace, cluster = %identity.capi, scaled_down = stopped.scaled_down, deleted = stopped.deleted.len(), "stopped Karpenter provisioning")
            }
            Err(error) => {
                tracing::warn!(%error, %namespace, cluster = %identity.capi, "stopping Karpenter provisioning failed")
            }
        },
        Ok(None) => {
            tracing::info!(%namespace, cluster = %identity.capi, "no workload kubeconfig; Karpenter provisioning not stopped")
        }
        Err(error) => {
            tracing::warn!(%error, %namespace, cluster = %identity.capi, "workload cluster client")
        }
    }
    if let Some((region, eks)) = &plan.aws {
        match ctx.ec2.terminate_discovered(region, eks).await {
            Ok(instances) if instances.done => {
                tracing::info!(%region, %eks, terminated = instances.terminated.len(), "Karpenter instances terminated");
            }
            Ok(instances) => {
                tracing::info!(%region, %eks, shutting_down = instances.shutting_down, "Karpenter instances still shutting down");
                post(ctx, cluster, &notices, now).await;
                return Ok(Action::requeue(timing.failure_backoff));
            }
            Err(error) => {
                tracing::warn!(%error, %region, %eks, "terminating Karpenter instances failed");
                post(ctx, cluster, &notices, now).await;
                return Ok(Action::requeue(timing.failure_backoff));
            }
        }
        if let Some(security_group) = &plan.security_group {
            match ctx.ec2.delete_orphan_enis(region, security_group).await {
                Ok(enis) => {
                    tracing::info!(%region, %security_group, deleted = enis.deleted.len(), "orphan CNI network interfaces deleted")
                }
                Err(error) => {
                    notices.push(Notice::warning(
                        reasons::ORPHAN_ENI_CLEANUP,
                        format!(
                            "failed to delete the orphan ENIs of node SecurityGroup {security_group}: {error}; cause: the SecurityGroup's deletion may stick with DependencyViolation; action: grant ec2:DescribeNetworkInterfaces and ec2:DeleteNetworkInterface"
                        ),
                    ));
                    post(ctx, cluster, &notices, now).await;
                    return Ok(Action::requeue(timing.failure_backoff));
                }
            }
        }
    } else {
        tracing::info!(%namespace, cluster = %identity.capi, "region or EKS name unresolved; AWS cleanup skipped");
    }
    post(ctx, cluster, &notices, now).await;
    let clusters: KubeApi<Cluster> = KubeApi::namespaced(ctx.client.clone(), &namespace);
    clusters
        .patch(
            &cluster.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&decide::release(cluster)),
        )
        .await?;
    tracing::info!(%namespace, cluster = %identity.capi, "cleanup finished; finalizer released");
    Ok(Action::await_change())
}
