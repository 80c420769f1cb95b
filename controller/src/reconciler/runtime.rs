//! How a Kany8s controller runs: the options every controller takes ([MGR-01]), the primary
//! watch, the error policy with its per-object backoff ([CP-54]), the instrumented reconcile,
//! and the watch mappers the three controllers share (RGD → objects that reference it,
//! Cluster → objects it names or owns).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};

use super::{Error, lock};
use crate::capi::Cluster;
use crate::metrics::{self, Metrics};

/// What every controller watches and how it runs ([MGR-01]).
#[derive(Clone, Debug)]
pub struct Options {
    /// Restrict every namespaced watch to this namespace.
    pub namespace: Option<String>,
    /// Only objects with this `cluster.x-k8s.io/watch-filter` label value.
    pub watch_filter: Option<String>,
    /// The `reportingInstance` of events (the pod name).
    pub instance: Option<String>,
    /// Periodic re-enqueue after a successful reconcile ([CP-53]).
    pub sync_period: Duration,
    /// Maximum concurrent reconciles per controller.
    pub concurrency: u16,
    pub metrics: Arc<Metrics>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            namespace: None,
            watch_filter: None,
            instance: None,
            sync_period: Duration::from_secs(600),
            concurrency: 10,
            metrics: Arc::new(Metrics::new(
                &[
                    metrics::CONTROL_PLANE,
                    metrics::KUBEADM,
                    metrics::INFRASTRUCTURE,
                ],
                10,
                None,
            )),
        }
    }
}

impl Options {
    /// The API of a namespaced kind, restricted to `--namespace` when set.
    pub fn api<K>(&self, client: &Client) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match &self.namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }

    /// The API of a dynamic kind, restricted to `--namespace` when set.
    pub fn dynamic_api(
        &self,
        client: &Client,
        resource: &kube::api::ApiResource,
    ) -> Api<kube::core::PartialObjectMeta<DynamicObject>> {
        match &self.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
            None => Api::all_with(client.clone(), resource),
        }
    }

    /// The events recorder ([CP-56]: `reportingController: kany8s`, the pod as instance).
    pub fn recorder(&self, client: &Client) -> kube::runtime::events::Recorder {
        kube::runtime::events::Recorder::new(
            client.clone(),
            kube::runtime::events::Reporter {
                controller: "kany8s".into(),
                instance: self.instance.clone(),
            },
        )
    }

    /// The primary watch of a controller ([CP-50], [IC-16]): restricted by `--namespace` and
    /// `--watch-filter`, cached without managedFields (never read, the bulk of an object),
    /// passing only changes of generation, labels, annotations, owners, finalizers or deletion.
    pub fn primary<K>(
        &self,
        client: &Client,
    ) -> (
        Store<K>,
        impl futures::Stream<Item = Result<K, kube::runtime::watcher::Error>> + Send + use<K>,
    )
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        use kube::runtime::{PredicateConfig, WatchStreamExt, reflector, watcher};
        let mut config = watcher::Config::default();
        if let Some(filter) = &self.watch_filter {
            config = config.labels(&format!("{}={filter}", crate::capi::WATCH_FILTER_LABEL));
        }
        let (reader, writer) = reflector::store();
        let events = watcher::watcher(self.api::<K>(client), config)
            .modify(|o| o.managed_fields_mut().clear());
        let stream = reflector::reflector(writer, events)
            .default_backoff()
            .touched_objects()
            .predicate_filter(crate::owner::relevant, PredicateConfig::default());
        (reader, stream)
    }
}

/// [CP-54]: per-object error backoff, 1 s doubling to 300 s, reset by a successful reconcile.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<std::collections::HashMap<(String, String), u32>>,
}

impl Backoff {
    /// The delay before retrying `object` after one more failure.
    pub fn next<K: Resource>(&self, object: &K) -> Duration {
        let mut failures = lock(&self.failures);
        let count = failures.entry(key(object)).or_insert(0);
        let delay = 1u64 << (*count).min(9);
        *count = count.saturating_add(1);
        Duration::from_secs(delay.min(300))
    }

    pub fn reset<K: Resource>(&self, object: &K) {
        lock(&self.failures).remove(&key(object));
    }
}

fn key<K: Resource>(object: &K) -> (String, String) {
    let meta = object.meta();
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// `namespace/name` of an object, formatted only when a log line is written.
struct ObjectName<'a>(&'a kube::api::ObjectMeta);

impl std::fmt::Display for ObjectName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let namespace = self.0.namespace.as_deref().unwrap_or_default();
        let name = self.0.name.as_deref().unwrap_or_default();
        write!(f, "{namespace}/{name}")
    }
}

/// What every controller's context holds: the client, the events recorder, the dynamic
/// backend watches, backend discovery and the per-object backoff. A controller's own context
/// dereferences to it and adds what only that controller needs.
pub struct Shared<K: Resource> {
    pub client: Client,
    pub recorder: kube::runtime::events::Recorder,
    pub watches: Arc<crate::dynamic::DynamicWatches<K>>,
    pub backends: crate::backends::Backends,
    pub backoff: Backoff,
}

impl<K: Resource> std::fmt::Debug for Shared<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("watches", &self.watches)
            .finish_non_exhaustive()
    }
}

impl<K: Resource> Shared<K> {
    pub fn new(
        client: Client,
        recorder: kube::runtime::events::Recorder,
        watches: Arc<crate::dynamic::DynamicWatches<K>>,
    ) -> Self {
        Self {
            backends: crate::backends::Backends::new(client.clone()),
            backoff: Backoff::default(),
            client,
            recorder,
            watches,
        }
    }
}

/// A controller's context as the runtime needs it.
pub trait Context: Send + Sync + 'static {
    fn backoff(&self) -> &Backoff;
}

impl<K> Context for Shared<K>
where
    K: Resource + Send + Sync + 'static,
{
    fn backoff(&self) -> &Backoff {
        &self.backoff
    }
}

impl<T, K> Context for T
where
    T: std::ops::Deref<Target = Shared<K>> + Send + Sync + 'static,
    K: Resource + 'static,
{
    fn backoff(&self) -> &Backoff {
        &self.backoff
    }
}

/// [CP-54]: the error policy of every controller: log, then retry after the object's backoff.
pub fn retry_later<K: Resource, C: Context>(object: Arc<K>, error: &Error, ctx: Arc<C>) -> Action {
    let (namespace, name) = key(object.as_ref());
    tracing::warn!(%error, %namespace, %name, "reconcile failed");
    Action::requeue(ctx.backoff().next(object.as_ref()))
}

/// Runs `controller` with `reconcile` until the future is dropped: the concurrency of
/// `options`, every reconcile instrumented under the metrics label `name`
/// ([`Metrics::reconcile`]: counts, duration, panics, the sync-period requeue), the object's
/// backoff reset on success and [`retry_later`] on error.
pub async fn run_controller<K, C, F, Fut>(
    controller: Controller<K>,
    options: &Options,
    name: &'static str,
    context: Arc<C>,
    reconcile: F,
) where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    C: Context,
    F: Fn(Arc<K>, Arc<C>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Action, Error>> + Send + 'static,
{
    let metrics = options.metrics.clone();
    let sync_period = options.sync_period;
    let reconcile = Arc::new(reconcile);
    controller
        .with_config(controller::Config::default().concurrency(options.concurrency))
        .run(
            move |object, ctx: Arc<C>| {
                let metrics = metrics.clone();
                let reconcile = reconcile.clone();
                async move {
                    let result = metrics
                        .reconcile(
                            name,
                            sync_period,
                            ObjectName(object.meta()),
                            reconcile(object.clone(), ctx.clone()),
                        )
                        .await;
                    if result.is_ok() {
                        ctx.backoff().reset(object.as_ref());
                    }
                    result
                }
            },
            retry_later,
            context,
        )
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        })
        .await;
}

/// Maps an RGD to the objects in `store` whose `rgd_name` is its name ([RG-08]: a missing or
/// changed RGD is re-read when it appears or changes).
pub fn by_rgd<K>(
    store: Store<K>,
    rgd_name: fn(&K) -> Option<&str>,
) -> impl Fn(DynamicObject) -> Vec<ObjectRef<K>> + Send + Sync + 'static
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    move |rgd| {
        let name = rgd.name_any();
        store
            .state()
            .into_iter()
            .filter(|o| rgd_name(o).is_some_and(|r| r.trim() == name))
            .map(|o| ObjectRef::from(o.as_ref()))
            .collect()
    }
}

/// Maps a Cluster to the objects in `store` of its namespace that it names (`named` picks the
/// reference, e.g. `spec.controlPlaneRef` of the right kind) or that it owns ([CP-51], [IC-16]).
pub fn by_cluster<K>(
    store: Store<K>,
    named: fn(&Cluster) -> Option<String>,
) -> impl Fn(Cluster) -> Vec<ObjectRef<K>> + Send + Sync + 'static
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    move |cluster| {
        let namespace = cluster.namespace().unwrap_or_default();
        let uid = cluster.uid().unwrap_or_default();
        let named = named(&cluster);
        store
            .state()
            .into_iter()
            .filter(|o| {
                o.namespace().as_deref() == Some(namespace.as_str())
                    && (named.as_deref() == Some(o.name_any().as_str())
                        || o.owner_references().iter().any(|r| r.uid == uid))
            })
            .map(|o| ObjectRef::from(o.as_ref()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Kany8sCluster;

    /// [CP-54]
    #[test]
    fn cp54_backoff_doubles_caps_and_resets() {
        let backoff = Backoff::default();
        let object = Kany8sCluster::new("c1", Default::default());
        let delays: Vec<u64> = (0..11).map(|_| backoff.next(&object).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        backoff.reset(&object);
        assert_eq!(backoff.next(&object).as_secs(), 1);
    }
}
