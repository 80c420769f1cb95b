//! How the bootstrapper runs: the Cluster watch ([KB-01]), the periodic discovery of the
//! optional APIs ([PLG-05]: every 5 minutes; a Cluster waiting on a missing API is re-enqueued
//! when it appears) and, per API once it is served, a metadata watch mapped back to Clusters:
//! ACK Clusters through the resolved ACK names ([PLG-04]), FargateProfiles through their
//! names, the managed objects through their cluster-name label.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api as KubeApi, DynamicObject, PartialObjectMeta};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::{mpsc, watch};

use super::apis::{Api, Availability};
use super::decide::{self, Phase};
use super::ec2::Ec2;
use super::flags::Timing;
use super::objects::ObjectNames;
use super::reconcile::{Context, Error, reconcile};
use crate::BOOTSTRAPPER;
use crate::cluster::Cluster;
use crate::events::{Dedup, Emitter};
use crate::keys;
use crate::metrics::Metrics;
use crate::names;

/// What the bootstrapper watches and how it runs ([KB-01]).
#[derive(Clone, Debug)]
pub struct Options {
    /// `--watch-namespace`: restrict the watches to one namespace.
    pub namespace: Option<String>,
    pub timing: Timing,
    /// `--karpenter-chart-version` with its default.
    pub chart_version: String,
    /// [PLG-05]: how often the optional APIs' availability is checked again.
    pub api_recheck: Duration,
    /// The events' `reportingInstance` (the pod name).
    pub instance: Option<String>,
    pub metrics: Arc<Metrics>,
    /// [KB-04]: how OIDC thumbprints are computed (the platform's trust anchors by default).
    pub thumbprints: super::thumbprint::Resolver,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            namespace: None,
            timing: Timing::default(),
            chart_version: super::DEFAULT_CHART_VERSION.into(),
            api_recheck: Duration::from_secs(5 * 60),
            instance: None,
            metrics: Arc::new(Metrics::new(BOOTSTRAPPER, 1, None)),
            thumbprints: super::thumbprint::Resolver::default(),
        }
    }
}

/// A Cluster the bootstrapper has work on (opted in, or being cleaned up).
fn active(cluster: &Cluster) -> bool {
    decide::phase(cluster) != Phase::Ignore
}

/// Where an object of `api` in `namespace` named `name` with `labels` leads.
pub fn clusters_for<'a>(
    api: Api,
    clusters: impl IntoIterator<Item = &'a Cluster>,
    namespace: &str,
    name: &str,
    labels: Option<&std::collections::BTreeMap<String, String>>,
    annotations: Option<&std::collections::BTreeMap<String, String>>,
) -> Vec<ObjectRef<Cluster>> {
    match api {
        Api::AckCluster => names::clusters_for_ack(clusters, namespace, name, active),
        Api::FargateProfile => clusters
            .into_iter()
            .filter(|c| c.namespace().as_deref() == Some(namespace) && active(c))
            .filter(|c| {
                let n = ObjectNames::of(&c.name_any(), &names::resolve(c).eks);
                n.fargate_karpenter == name || n.fargate_coredns == name
            })
            .map(ObjectRef::from_obj)
            .collect(),
        _ => {
            let owner = keys::trimmed(labels, keys::CAPI_CLUSTER_NAME);
            if owner.is_empty() || !keys::managed_by(annotations, BOOTSTRAPPER) {
                return Vec::new();
            }
            clusters
                .into_iter()
                .filter(|c| {
                    c.namespace().as_deref() == Some(namespace)
                        && c.name_any() == owner
                        && active(c)
                })
                .map(ObjectRef::from_obj)
                .collect()
        }
    }
}

/// [PLG-05]: discovery of every optional API now and every `recheck`; when one appears, the
/// active Clusters are enqueued again (they were waiting on the failure backoff) and its watch
/// starts.
async fn check_apis(
    client: Client,
    availability: Arc<Availability>,
    recheck: Duration,
    store: Store<Cluster>,
    triggers: mpsc::Sender<ObjectRef<Cluster>>,
    served_tx: watch::Sender<BTreeSet<Api>>,
) {
    loop {
        let mut served = BTreeSet::new();
        for api in Api::OPTIONAL {
            if crate::discovery::served(&client, &api.resource()).await {
                served.insert(api);
            }
        }
        let appeared = availability.record(served.clone());
        let _ = served_tx.send(served);
        if !appeared.is_empty() {
            tracing::info!(apis = ?appeared, "APIs became available");
            // The store may still be filling on the first pass: the Cluster watch enqueues
            // those itself.
            for cluster in store.state() {
                if active(&cluster) && triggers.send(ObjectRef::from_obj(&*cluster)).await.is_err()
                {
                    return;
                }
            }
        }
        tokio::time::sleep(recheck).await;
    }
}

/// [PLG-04], [PLG-05]: once `api` is served, maps its objects' changes to Clusters.
async fn watch_api(
    client: Client,
    api: Api,
    namespace: Option<String>,
    mut served: watch::Receiver<BTreeSet<Api>>,
    store: Store<Cluster>,
    triggers: mpsc::Sender<ObjectRef<Cluster>>,
) {
    if served.wait_for(|s| s.contains(&api)).await.is_err() {
        return;
    }
    let resource = api.resource();
    let objects: KubeApi<PartialObjectMeta<DynamicObject>> = match &namespace {
        Some(ns) => KubeApi::namespaced_with(client, ns, &resource),
        None => KubeApi::all_with(client, &resource),
    };
    let config = match api {
        Api::AckCluster | Api::FargateProfile => watcher::Config::default(),
        // Only what carries a cluster-name label can be the bootstrapper's.
        _ => watcher::Config::default().labels(keys::CAPI_CLUSTER_NAME),
    };
    let mut events = watcher(objects, config)
        .default_backoff()
        .touched_objects()
        .boxed();
    while let Some(event) = events.next().await {
        let Ok(object) = event else {
            continue;
        };
        let namespace = object.namespace().unwrap_or_default();
        let state = store.state();
        for target in clusters_for(
            api,
            state.iter().map(|c| c.as_ref()),
            &namespace,
            &object.name_any(),
            object.metadata.labels.as_ref(),
            object.metadata.annotations.as_ref(),
        ) {
            if triggers.send(target).await.is_err() {
                return;
            }
        }
    }
}

async fn instrumented(cluster: Arc<Cluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let metrics = ctx.metrics.clone();
    crate::metrics::instrumented(&metrics, reconcile(cluster, ctx), || Error::Panicked).await
}

fn retry_later(cluster: Arc<Cluster>, error: &Error, ctx: Arc<Context>) -> Action {
    crate::metrics::retry_after(&cluster, error, ctx.timing.failure_backoff)
}

/// Runs the bootstrapper until the future is dropped.
pub async fn run(client: Client, options: Options, ec2: Ec2) {
    let (store, cluster_events) = crate::cluster::watch(&client, options.namespace.as_deref());
    let (triggers, triggered) = mpsc::channel(1024);
    let (served_tx, served_rx) = watch::channel(BTreeSet::new());
    let availability = Arc::new(Availability::default());
    let context = Arc::new(Context {
        client: client.clone(),
        timing: options.timing,
        chart_version: options.chart_version.clone(),
        emitter: Emitter::new(
            client.clone(),
            BOOTSTRAPPER,
            options.instance.clone(),
            Arc::new(Dedup::default()),
        ),
        metrics: options.metrics.clone(),
        availability: availability.clone(),
        ec2,
        thumbprints: options.thumbprints.clone(),
    });
    let api_check = check_apis(
        client.clone(),
        availability,
        options.api_recheck,
        store.clone(),
        triggers.clone(),
        served_tx,
    );
    let watches = futures::future::join_all(Api::OPTIONAL.into_iter().map(|api| {
        watch_api(
            client.clone(),
            api,
            options.namespace.clone(),
            served_rx.clone(),
            store.clone(),
            triggers.clone(),
        )
    }));
    drop(triggers);
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
        _ = watches => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::sample as cluster;

    fn labelled(
        namespace: &str,
        name: &str,
        labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
    ) -> Cluster {
        let mut c = cluster(namespace, name, annotations);
        c.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        c
    }

    /// [PLG-04], [KB-01]: ACK Clusters map to the opted-in Clusters resolving to them; managed
    /// objects map to the Cluster of their label only when the bootstrapper manages them;
    /// FargateProfiles map through their names (`aioc-` for `eks-` Clusters).
    #[test]
    fn plg04_object_mapping() {
        let on = (keys::KARPENTER_OPT_IN, "enabled");
        let clusters = [
            labelled("ns", "a", &[on], &[]),
            labelled("ns", "b", &[on], &[(keys::ACK_CLUSTER_NAME, "a")]),
            labelled("ns", "c", &[], &[]),
            labelled("ns", "eks-d", &[on], &[]),
        ];
        let names = |refs: Vec<ObjectRef<Cluster>>| -> Vec<String> {
            refs.into_iter().map(|r| r.name).collect()
        };
        assert_eq!(
            names(clusters_for(
                Api::AckCluster,
                &clusters,
                "ns",
                "a",
                None,
                None
            )),
            ["a", "b"]
        );
        let label: std::collections::BTreeMap<String, String> =
            [(keys::CAPI_CLUSTER_NAME.to_string(), "a".to_string())].into();
        let managed: std::collections::BTreeMap<String, String> =
            [(keys::MANAGED_BY.to_string(), BOOTSTRAPPER.to_string())].into();
        assert_eq!(
            names(clusters_for(
                Api::Role,
                &clusters,
                "ns",
                "x",
                Some(&label),
                Some(&managed)
            )),
            ["a"]
        );
        assert!(clusters_for(Api::Role, &clusters, "ns", "x", Some(&label), None).is_empty());
        assert!(
            clusters_for(
                Api::Role,
                &clusters,
                "other",
                "x",
                Some(&label),
                Some(&managed)
            )
            .is_empty()
        );
        assert_eq!(
            names(clusters_for(
                Api::FargateProfile,
                &clusters,
                "ns",
                "aioc-eks-d-coredns",
                None,
                None
            )),
            ["eks-d"]
        );
        assert!(
            clusters_for(
                Api::FargateProfile,
                &clusters,
                "ns",
                "c-karpenter",
                None,
                None
            )
            .is_empty()
        );
    }
}
