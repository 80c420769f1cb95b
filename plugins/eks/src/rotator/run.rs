//! How the rotator runs: the Cluster watch ([ROT-02]), the ACK Cluster watch mapped through the
//! resolved ACK names ([PLG-04]), the periodic ACK API check that starts that watch once the CRD
//! appears ([PLG-05]), and the instrumented reconcile loop ([PLG-08]).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::mpsc;

use super::decide;
use super::reconcile::{AckApi, Clock, Context, Error, reconcile};
use crate::ROTATOR;
use crate::ack;
use crate::cluster::Cluster;
use crate::events::{Dedup, Emitter};
use crate::metrics::Metrics;
use crate::names;
use crate::schedule::Policy;
use crate::token::TokenSource;

/// What the rotator watches and how it runs ([ROT-01]).
#[derive(Clone, Debug)]
pub struct Options {
    /// `--watch-namespace`: restrict the watches to one namespace.
    pub namespace: Option<String>,
    pub policy: Policy,
    /// [PLG-05]: how often the ACK API's availability is checked again.
    pub api_recheck: Duration,
    /// The events' `reportingInstance` (the pod name).
    pub instance: Option<String>,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            namespace: None,
            policy: Policy::default(),
            api_recheck: Duration::from_secs(5 * 60),
            instance: None,
            metrics: Arc::new(Metrics::new(ROTATOR, 1, None)),
            clock: Clock::Wall,
        }
    }
}

/// [PLG-04]: the opted-in Clusters of `namespace` whose resolved ACK name is `ack_name`, once each.
pub fn clusters_for_ack<'a>(
    clusters: impl IntoIterator<Item = &'a Cluster>,
    namespace: &str,
    ack_name: &str,
) -> Vec<ObjectRef<Cluster>> {
    names::clusters_for_ack(clusters, namespace, ack_name, decide::wanted)
}

/// [PLG-05]: whether discovery lists the ACK `Cluster` kind in `eks.services.k8s.aws/v1alpha1`.
pub async fn ack_api_served(client: &Client) -> bool {
    crate::discovery::served(client, &ack::resource()).await
}

/// [PLG-05]: checks the ACK API now and every `recheck`; when it appears, re-enqueues every
/// opted-in Cluster (they were waiting on the failure backoff) and wakes the ACK watch.
async fn watch_ack_api(
    client: Client,
    api: Arc<AckApi>,
    recheck: Duration,
    store: Store<Cluster>,
    triggers: mpsc::Sender<ObjectRef<Cluster>>,
    appeared: tokio::sync::watch::Sender<bool>,
) {
    loop {
        let served = ack_api_served(&client).await;
        if api.set(served) {
            tracing::info!(api = %ack::group_version(), "ACK EKS API is available; watching ACK Clusters");
            let _ = appeared.send(true);
            for cluster in store.state() {
                if decide::wanted(&cluster)
                    && triggers.send(ObjectRef::from_obj(&*cluster)).await.is_err()
                {
                    return;
                }
            }
        } else if !served {
            tracing::debug!(api = %ack::group_version(), "ACK EKS API is not available");
        }
        tokio::time::sleep(recheck).await;
    }
}

/// [PLG-04]: once the ACK API is available, maps every ACK Cluster change (metadata only is
/// enough: the mapping needs names) to the Clusters that resolve to it.
async fn watch_ack_clusters(
    client: Client,
    namespace: Option<String>,
    mut appeared: tokio::sync::watch::Receiver<bool>,
    store: Store<Cluster>,
    triggers: mpsc::Sender<ObjectRef<Cluster>>,
) {
    if appeared.wait_for(|a| *a).await.is_err() {
        return;
    }
    let resource = ack::resource();
    let api: Api<kube::core::PartialObjectMeta<kube::api::DynamicObject>> = match &namespace {
        Some(ns) => Api::namespaced_with(client, ns, &resource),
        None => Api::all_with(client, &resource),
    };
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .touched_objects()
        .boxed();
    while let Some(event) = events.next().await {
        let Ok(object) = event else {
            continue;
        };
        let namespace = object.namespace().unwrap_or_default();
        let state = store.state();
        for target in clusters_for_ack(
            state.iter().map(|c| c.as_ref()),
            &namespace,
            &object.name_any(),
        ) {
            if triggers.send(target).await.is_err() {
                return;
            }
        }
    }
}

/// Runs one reconcile under the metrics of [MET-01]/[PLG-08].
async fn instrumented(cluster: Arc<Cluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let metrics = ctx.metrics.clone();
    crate::metrics::instrumented(&metrics, reconcile(cluster, ctx), || Error::Panicked).await
}

fn retry_later(cluster: Arc<Cluster>, error: &Error, ctx: Arc<Context>) -> Action {
    crate::metrics::retry_after(&cluster, error, ctx.policy.with_defaults().failure_backoff)
}

/// Runs the rotator until the future is dropped.
pub async fn run(client: Client, options: Options, tokens: TokenSource) {
    let (store, cluster_events) = crate::cluster::watch(&client, options.namespace.as_deref());
    let (triggers, triggered) = mpsc::channel(1024);
    let (appeared_tx, appeared_rx) = tokio::sync::watch::channel(false);
    let ack_api = Arc::new(AckApi::default());
    let context = Arc::new(Context {
        client: client.clone(),
        policy: options.policy,
        tokens,
        emitter: Emitter::new(
            client.clone(),
            ROTATOR,
            options.instance.clone(),
            Arc::new(Dedup::default()),
        ),
        metrics: options.metrics.clone(),
        ack_api: ack_api.clone(),
        clock: options.clock.clone(),
    });
    let api_check = watch_ack_api(
        client.clone(),
        ack_api,
        options.api_recheck,
        store.clone(),
        triggers.clone(),
        appeared_tx,
    );
    let ack_watch = watch_ack_clusters(
        client.clone(),
        options.namespace.clone(),
        appeared_rx,
        store.clone(),
        triggers,
    );
    let controller = Controller::for_stream(cluster_events, store)
        .reconcile_on(tokio_stream::wrappers::ReceiverStream::new(triggered))
        .with_config(controller::Config::default().concurrency(1))
        .run(instrumented, retry_later, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        });
    tokio::select! {
        () = controller => {}
        () = api_check => {}
        () = ack_watch => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{relevant, sample as cluster};
    use crate::keys;

    /// [PLG-04]: an ACK Cluster maps to the opted-in Clusters of its namespace that resolve to
    /// its name — by default name, EKS override or ACK override — each once.
    #[test]
    fn plg04_ack_cluster_mapping() {
        let on = (keys::ROTATOR_OPT_IN, "enabled");
        let clusters = [
            cluster("ns", "a", &[on]),
            cluster("ns", "b", &[on, (keys::CLUSTER_NAME, "a")]),
            cluster("ns", "c", &[on, (keys::ACK_CLUSTER_NAME, "a")]),
            cluster("ns", "d", &[(keys::CLUSTER_NAME, "a")]),
            cluster("other", "a", &[on]),
            cluster(
                "ns",
                "e",
                &[on, (keys::CLUSTER_NAME, "a"), (keys::ACK_CLUSTER_NAME, "x")],
            ),
            cluster("ns", "a", &[on]),
        ];
        let names: Vec<String> = clusters_for_ack(&clusters, "ns", "a")
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(clusters_for_ack(&clusters, "ns", "zzz").is_empty());
    }

    /// [ROT-02]: status-only changes do not pass the Cluster predicate; opt-in changes do.
    #[test]
    fn rot02_cluster_predicate() {
        let base = cluster("ns", "a", &[]);
        let mut status_only = base.clone();
        status_only.metadata.resource_version = Some("2".into());
        assert_eq!(relevant(&base), relevant(&status_only));
        let opted = cluster("ns", "a", &[(keys::ROTATOR_OPT_IN, "enabled")]);
        assert_ne!(relevant(&base), relevant(&opted));
    }
}
