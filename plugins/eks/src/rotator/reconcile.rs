//! One reconcile of the rotator: observe (the ACK Cluster and the two Secrets, read live; the
//! Cluster comes from the watch), [`super::decide`], then apply (server-side apply with the
//! field manager `eks-kubeconfig-rotator`, events, metrics) and return the requeue. Nothing here
//! logs a token, a kubeconfig or a credential: log lines carry names, reasons and durations.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Client, Resource, ResourceExt};

use super::decide::{self, AckLookup, Stop, TokenPlan};
use crate::ROTATOR;
use crate::ack::{self, AckCluster};
use crate::cluster::Cluster;
use crate::events::Emitter;
use crate::metrics::Metrics;
use crate::schedule::Policy;
use crate::token::TokenSource;

/// Errors of one reconcile (API reads and writes); retried after the failure backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("reconcile panicked")]
    Panicked,
}

/// The time the rotator signs and schedules with. Tests shift it to drive expirations.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    Wall,
    /// Wall time plus a fixed offset.
    Shifted(Duration),
}

impl Clock {
    pub fn now(&self) -> SystemTime {
        match self {
            Clock::Wall => SystemTime::now(),
            Clock::Shifted(offset) => SystemTime::now() + *offset,
        }
    }
}

/// Whether the ACK EKS API is served ([PLG-05]); set by the periodic discovery check.
#[derive(Debug, Default)]
pub struct AckApi {
    available: AtomicBool,
}

impl AckApi {
    pub fn available(&self) -> bool {
        self.available.load(Ordering::SeqCst)
    }

    /// Records a check; true when the API just became available.
    pub fn set(&self, available: bool) -> bool {
        !self.available.swap(available, Ordering::SeqCst) && available
    }
}

/// What a reconcile needs.
pub struct Context {
    pub client: Client,
    pub policy: Policy,
    pub tokens: TokenSource,
    pub emitter: Emitter,
    pub metrics: Arc<Metrics>,
    pub ack_api: Arc<AckApi>,
    pub clock: Clock,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("policy", &self.policy)
            .field("ack_api", &self.ack_api)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// [ROT-03]: the ACK Cluster, looked up only when discovery lists its API.
async fn lookup_ack(ctx: &Context, namespace: &str, name: &str) -> Result<AckLookup, Error> {
    if !ctx.ack_api.available() {
        return Ok(AckLookup::ApiMissing);
    }
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), namespace, &ack::resource());
    match api.get_opt(name).await {
        Ok(Some(object)) => Ok(AckLookup::Found(AckCluster::from_object(&object))),
        Ok(None) => Ok(AckLookup::NotFound),
        // A 404 that is not an object's NotFound: the resource itself is not served.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(AckLookup::NotServed),
        Err(error) => Err(error.into()),
    }
}

async fn stop(ctx: &Context, cluster: &Cluster, stop: &Stop, now: SystemTime) -> Action {
    tracing::debug!(
        namespace = cluster.namespace().unwrap_or_default(),
        cluster = cluster.name_any(),
        reason = stop.notice.reason,
        requeue_s = stop.requeue.as_secs(),
        "waiting"
    );
    ctx.emitter
        .post(&cluster.object_ref(&()), &stop.notice, now)
        .await;
    Action::requeue(stop.requeue)
}

/// One pass over `cluster` ([ROT-02]–[ROT-08]).
pub async fn reconcile(cluster: Arc<Cluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !decide::wanted(&cluster) {
        return Ok(Action::await_change());
    }
    let now = ctx.clock.now();
    let namespace = cluster.namespace().unwrap_or_default();
    let names = crate::names::resolve(&cluster);
    let lookup = lookup_ack(&ctx, &namespace, &names.ack).await?;
    let prepared = match decide::prepare(&cluster, &lookup, &ctx.policy) {
        Ok(prepared) => prepared,
        Err(halt) => return Ok(stop(&ctx, &cluster, &halt, now).await),
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let probe = secrets.get_opt(&prepared.probe_name()).await?;
    let token = match decide::plan_token(&prepared, probe.as_ref(), now, &ctx.policy) {
        TokenPlan::Conflict(halt) => {
            ctx.metrics.ownership_conflict("Secret");
            return Ok(stop(&ctx, &cluster, &halt, now).await);
        }
        TokenPlan::Reuse(token) => token,
        TokenPlan::Generate => {
            match ctx
                .tokens
                .token(&prepared.region, &prepared.names.eks, now)
                .await
            {
                Ok(token) => token,
                Err(error) => {
                    ctx.metrics.token_generation_failed();
                    let halt = decide::token_failed(&error, &ctx.policy);
                    return Ok(stop(&ctx, &cluster, &halt, now).await);
                }
            }
        }
    };
    let exec = secrets.get_opt(&prepared.exec_name()).await?;
    let decision = match decide::decide(
        &prepared,
        &token,
        probe.as_ref(),
        exec.as_ref(),
        now,
        &ctx.policy,
    ) {
        Ok(decision) => decision,
        Err(halt) => return Ok(stop(&ctx, &cluster, &halt, now).await),
    };
    let params = PatchParams::apply(ROTATOR).force();
    for desired in &decision.writes {
        let body = decide::apply_body(&prepared, desired);
        secrets
            .patch(&desired.name, &params, &Patch::Apply(&body))
            .await?;
        tracing::info!(
            %namespace,
            secret = %desired.name,
            expiration = desired.annotations.get(crate::keys::TOKEN_EXPIRATION).map(String::as_str).unwrap_or(""),
            "kubeconfig secret written"
        );
    }
    for resource in &decision.conflicts {
        ctx.metrics.ownership_conflict(resource);
    }
    let regarding = cluster.object_ref(&());
    for notice in &decision.notices {
        ctx.emitter.post(&regarding, notice, now).await;
    }
    ctx.metrics.synced(now);
    Ok(Action::requeue(decision.requeue))
}
