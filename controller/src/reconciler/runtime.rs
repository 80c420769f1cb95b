//! How a Kany8s controller runs: the options every controller takes ([MGR-01]), the primary
//! watch, the triggers that feed the work queue ([`queue`](super::queue)) in their lanes, the
//! workers, the error policy with its per-object backoff ([CP-54]), the instrumented reconcile,
//! and the watch mappers the three controllers share (RGD → objects that reference it,
//! Cluster → objects it names or owns).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::fresh::{self, Overlay};
use super::queue::{Action, Lane, WorkQueue};
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
    pub fn recorder(&self, client: &Client) -> super::events::Recorder {
        super::events::Recorder::new(
            client.clone(),
            super::events::Reporter {
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

/// How often the runtime drops read-your-own-writes entries the cache has caught up with.
const OVERLAY_PRUNE_PERIOD: Duration = Duration::from_secs(5);

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

/// What every controller's context holds: the client, the owner-Cluster lookup, the events
/// recorder, the dynamic backend watches, backend discovery and the per-object backoff. A controller's own context
/// dereferences to it and adds what only that controller needs.
pub struct Shared<K: Resource> {
    pub client: Client,
    /// The owner-Cluster lookup over the manager's shared Cluster cache.
    pub clusters: crate::cache::ClusterLookup,
    pub recorder: super::events::Recorder,
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
        clusters: Store<Cluster>,
        rgds: Option<Store<DynamicObject>>,
        recorder: super::events::Recorder,
        watches: Arc<crate::dynamic::DynamicWatches<K>>,
    ) -> Self {
        Self {
            backends: crate::backends::Backends::new(client.clone(), rgds),
            clusters: crate::cache::ClusterLookup {
                client: client.clone(),
                cache: clusters,
            },
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

/// What queues reconciles of a controller over primary kind `K`: each source is a stream of
/// watched objects mapped to the primary objects they concern, in a [`Lane`].
pub struct Triggers<K: Resource> {
    sources: Vec<BoxStream<'static, (ObjectRef<K>, Lane)>>,
}

impl<K: Resource> std::fmt::Debug for Triggers<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Triggers")
            .field("sources", &self.sources.len())
            .finish()
    }
}

impl<K> Default for Triggers<K>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Self {
            sources: Vec::new(),
        }
    }
}

impl<K> Triggers<K>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    /// The primary objects' own relevant changes ([`Options::primary`]), in the normal lane.
    pub fn primary(
        self,
        stream: impl Stream<Item = Result<K, kube::runtime::watcher::Error>> + Send + 'static,
    ) -> Self {
        self.watch(stream, Lane::Normal, |object: K| {
            Some(ObjectRef::from(&object))
        })
    }

    /// Objects of another watch, mapped by `map` to the primary objects they concern.
    pub fn watch<T, I>(
        mut self,
        stream: impl Stream<Item = Result<T, kube::runtime::watcher::Error>> + Send + 'static,
        lane: Lane,
        map: impl Fn(T) -> I + Send + 'static,
    ) -> Self
    where
        T: Send + 'static,
        I: IntoIterator<Item = ObjectRef<K>>,
        I::IntoIter: Send + 'static,
    {
        let mapped = stream
            .filter_map(|event| async move {
                match event {
                    Ok(object) => Some(object),
                    Err(error) => {
                        // The watch restarts itself with backoff ([CP-55]).
                        tracing::debug!(%error, "watch error");
                        None
                    }
                }
            })
            .flat_map(move |object| futures::stream::iter(map(object)))
            .map(move |object| (object, lane));
        self.sources.push(mapped.boxed());
        self
    }

    /// Primary object references from a stream that already names them (the dynamic watches,
    /// [CP-55]).
    pub fn refs(
        mut self,
        stream: impl Stream<Item = ObjectRef<K>> + Send + 'static,
        lane: Lane,
    ) -> Self {
        self.sources
            .push(stream.map(move |object| (object, lane)).boxed());
        self
    }

    /// The objects of `stream` whose controller ownerReference is a `K` ([CP-41]).
    pub fn owned<T>(
        self,
        stream: impl Stream<Item = Result<T, kube::runtime::watcher::Error>> + Send + 'static,
        lane: Lane,
    ) -> Self
    where
        T: Resource + Send + 'static,
    {
        self.watch(stream, lane, |object: T| {
            let namespace = object.meta().namespace.clone();
            object
                .meta()
                .owner_references
                .iter()
                .flatten()
                .find(|o| {
                    o.controller == Some(true)
                        && o.kind == K::kind(&())
                        && o.api_version == K::api_version(&())
                })
                .map(|o| {
                    let reference = ObjectRef::new(&o.name);
                    match &namespace {
                        Some(ns) => reference.within(ns),
                        None => reference,
                    }
                })
        })
    }
}

/// Runs a controller until the future is dropped: `triggers` feed its work queue; once the
/// primary cache `store` is filled, `options.concurrency` workers take objects from the queue
/// (fast lane first, never one object twice at once) and run `reconcile` on the cached object,
/// instrumented under the metrics label `name` ([`Metrics::reconcile`]: counts, duration,
/// panics, the sync-period requeue); the object's backoff is reset on success and
/// [`retry_later`] decides the retry on error.
pub async fn run_controller<K, C, F, Fut>(
    store: Store<K>,
    triggers: Triggers<K>,
    options: &Options,
    name: &'static str,
    context: Arc<C>,
    reconcile: F,
) where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + Sync + 'static,
    C: Context,
    F: Fn(Arc<K>, Arc<C>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Action, Error>> + Send + 'static,
{
    let queue: Mutex<WorkQueue<ObjectRef<K>>> = Mutex::default();
    let work = Notify::new();
    let timer = Notify::new();
    let feed = async {
        let mut sources = futures::stream::select_all(triggers.sources);
        while let Some((object, lane)) = sources.next().await {
            if lock(&queue).add(object, lane) {
                work.notify_one();
            }
        }
    };
    let timers = async {
        loop {
            let changed = timer.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let (released, next) = {
                let mut queue = lock(&queue);
                (queue.release_due(Instant::now()), queue.next_deadline())
            };
            for _ in 0..released.min(usize::from(options.concurrency.max(1))) {
                work.notify_one();
            }
            match next {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = &mut changed => {}
                    }
                }
                None => changed.await,
            }
        }
    };
    // What this controller's own writes returned, until the cache has them ([`fresh`]).
    let overlay: Mutex<Overlay<ObjectRef<K>, K>> = Mutex::default();
    let worker = || async {
        loop {
            let object = next_object(&queue, &work).await;
            match store.get(&object) {
                Some(cached) => {
                    let current = lock(&overlay).current(&object, cached);
                    let (action, written) = fresh::scope::<K, _>(reconcile_one(
                        options,
                        name,
                        &context,
                        &reconcile,
                        current.clone(),
                    ))
                    .await;
                    if let Some(written) = written {
                        lock(&overlay).wrote(object.clone(), current.as_ref(), written);
                    }
                    if let Some(after) = action.requeue_after()
                        && lock(&queue).add_at(object.clone(), Instant::now() + after)
                    {
                        timer.notify_one();
                    }
                }
                None => lock(&overlay).forget(&object),
            }
            if lock(&queue).done(&object) {
                work.notify_one();
            }
        }
    };
    // Entries the cache caught up with without another reconcile of their object are dropped
    // now and then, so the overlay stays as small as the writes in flight.
    let prune = async {
        loop {
            tokio::time::sleep(OVERLAY_PRUNE_PERIOD).await;
            let mut overlay = lock(&overlay);
            if !overlay.is_empty() {
                overlay.prune(|key| {
                    store
                        .get(key)
                        .and_then(|o| o.meta().resource_version.clone())
                });
            }
        }
    };
    let workers = async {
        // Reconciles read the primary object from the cache: none runs before it is filled.
        if store.wait_until_ready().await.is_err() {
            return;
        }
        let workers: Vec<_> = (0..options.concurrency.max(1)).map(|_| worker()).collect();
        futures::future::join_all(workers).await;
    };
    tokio::join!(feed, timers, workers, prune);
}

/// Waits for the next object the queue hands out.
async fn next_object<T: Clone + Eq + std::hash::Hash>(
    queue: &Mutex<WorkQueue<T>>,
    work: &Notify,
) -> T {
    loop {
        // Registered before looking, so an add between the look and the wait is not missed.
        let added = work.notified();
        tokio::pin!(added);
        added.as_mut().enable();
        if let Some(object) = lock(queue).take() {
            return object;
        }
        added.await;
    }
}

/// One instrumented reconcile of `object`; returns what the queue does next.
async fn reconcile_one<K, C, F, Fut>(
    options: &Options,
    name: &'static str,
    context: &Arc<C>,
    reconcile: &F,
    object: Arc<K>,
) -> Action
where
    K: Resource<DynamicType = ()> + Send + Sync + 'static,
    C: Context,
    F: Fn(Arc<K>, Arc<C>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Action, Error>> + Send + 'static,
{
    let result = options
        .metrics
        .clone()
        .reconcile(
            name,
            options.sync_period,
            ObjectName(object.meta()),
            reconcile(object.clone(), context.clone()),
        )
        .await;
    match result {
        Ok(action) => {
            context.backoff().reset(object.as_ref());
            action
        }
        Err(error) => retry_later(object, &error, context.clone()),
    }
}

/// The ResourceGraphDefinitions, cached (for [`Backends::resolve_rgd`](crate::backends::Backends::resolve_rgd))
/// and as a stream of changed ones for [`by_rgd`] ([RG-08]).
pub fn rgd_watch(
    client: &Client,
) -> (
    Store<DynamicObject>,
    impl Stream<Item = Result<DynamicObject, kube::runtime::watcher::Error>> + Send + use<>,
) {
    use kube::runtime::{WatchStreamExt, reflector, watcher};
    let resource = crate::rgd::rgd_resource();
    let writer = reflector::store::Writer::new(resource.clone());
    let store = writer.as_reader();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|rgd| rgd.managed_fields_mut().clear())
        .reflect(writer)
        .touched_objects();
    (store, stream)
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

    struct Recorded {
        backoff: Backoff,
        order: Mutex<Vec<String>>,
    }

    impl Context for Recorded {
        fn backoff(&self) -> &Backoff {
            &self.backoff
        }
    }

    /// The runtime serves the fast lane first: with one worker busy on the first of a burst of
    /// normal triggers, a fast trigger that arrives later runs next, and every object runs
    /// once (docs/controller.md, "Work queue and caches").
    #[tokio::test]
    async fn fast_trigger_overtakes_a_queued_burst() {
        use kube::runtime::reflector::store::Writer;
        use kube::runtime::watcher::Event;
        let mut writer: Writer<Kany8sCluster> = Writer::default();
        let store = writer.as_reader();
        writer.apply_watcher_event(&Event::Init);
        for i in 0..20 {
            let mut object = Kany8sCluster::new(&format!("c{i:02}"), Default::default());
            object.metadata.namespace = Some("ns".into());
            writer.apply_watcher_event(&Event::InitApply(object));
        }
        writer.apply_watcher_event(&Event::InitDone);
        let (normal_tx, normal_rx) = tokio::sync::mpsc::unbounded_channel();
        let (fast_tx, fast_rx) = tokio::sync::mpsc::unbounded_channel();
        let triggers = Triggers::default()
            .refs(
                tokio_stream::wrappers::UnboundedReceiverStream::new(normal_rx),
                Lane::Normal,
            )
            .refs(
                tokio_stream::wrappers::UnboundedReceiverStream::new(fast_rx),
                Lane::Fast,
            );
        let context = Arc::new(Recorded {
            backoff: Backoff::default(),
            order: Mutex::default(),
        });
        let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
        let release = Arc::new(tokio::sync::Semaphore::new(0));
        let options = Options {
            concurrency: 1,
            ..Options::default()
        };
        let gate = release.clone();
        let run = run_controller(
            store,
            triggers,
            &options,
            crate::metrics::INFRASTRUCTURE,
            context.clone(),
            move |object: Arc<Kany8sCluster>, ctx: Arc<Recorded>| {
                let started = started_tx.clone();
                let gate = gate.clone();
                async move {
                    let name = object.name_any();
                    lock(&ctx.order).push(name.clone());
                    let _ = started.send(name);
                    // Each reconcile waits for the test, so the queue's order is what runs.
                    gate.acquire().await.map(|p| p.forget()).ok();
                    Ok(Action::await_change())
                }
            },
        );
        let driver = async {
            for i in 0..20 {
                normal_tx
                    .send(ObjectRef::new(&format!("c{i:02}")).within("ns"))
                    .unwrap();
            }
            assert_eq!(started_rx.recv().await.as_deref(), Some("c00"));
            // c00 runs; c01..c19 wait in the normal lane; c17 becomes ready.
            fast_tx.send(ObjectRef::new("c17").within("ns")).unwrap();
            // Everything runs on this task: a few turns let the feeder queue the trigger.
            for _ in 0..5 {
                tokio::task::yield_now().await;
            }
            release.add_permits(1);
            assert_eq!(started_rx.recv().await.as_deref(), Some("c17"));
            release.add_permits(100);
            while lock(&context.order).len() < 20 {
                started_rx.recv().await;
            }
        };
        tokio::select! {
            () = run => panic!("the runtime stopped"),
            () = driver => {}
        }
        let order = lock(&context.order).clone();
        assert_eq!(order[..3], ["c00", "c17", "c01"]);
        assert_eq!(order.len(), 20, "every object once: {order:?}");
    }

    /// A pass that starts before the watch has brought the last write into the cache runs on
    /// what the write returned, not on the copy from before it (read-your-own-writes; a stale
    /// copy once skipped a needed status write and dropped `initialized`).
    #[tokio::test]
    async fn a_pass_after_a_write_sees_the_write_before_the_cache_does() {
        use kube::runtime::reflector::store::Writer;
        use kube::runtime::watcher::Event;
        let mut writer: Writer<Kany8sCluster> = Writer::default();
        let store = writer.as_reader();
        let mut object = Kany8sCluster::new("c1", Default::default());
        object.metadata.namespace = Some("ns".into());
        object.metadata.resource_version = Some("1".into());
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitApply(object.clone()));
        writer.apply_watcher_event(&Event::InitDone);
        let (trigger_tx, trigger_rx) = tokio::sync::mpsc::unbounded_channel();
        let triggers = Triggers::default().refs(
            tokio_stream::wrappers::UnboundedReceiverStream::new(trigger_rx),
            Lane::Normal,
        );
        let context = Arc::new(Recorded {
            backoff: Backoff::default(),
            order: Mutex::default(),
        });
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
        let options = Options {
            concurrency: 1,
            ..Options::default()
        };
        let run = run_controller(
            store,
            triggers,
            &options,
            crate::metrics::INFRASTRUCTURE,
            context,
            move |object: Arc<Kany8sCluster>, _ctx: Arc<Recorded>| {
                let seen = seen_tx.clone();
                async move {
                    let version = object.resource_version().unwrap_or_default();
                    // The first pass writes the object: the server answers with version 2.
                    if version == "1" {
                        let mut written = object.as_ref().clone();
                        written.metadata.resource_version = Some("2".into());
                        crate::reconciler::fresh::record(written);
                    }
                    let _ = seen.send(version);
                    Ok(Action::await_change())
                }
            },
        );
        let driver = async {
            trigger_tx.send(ObjectRef::new("c1").within("ns")).unwrap();
            assert_eq!(seen_rx.recv().await.as_deref(), Some("1"));
            // The cache still holds version 1.
            trigger_tx.send(ObjectRef::new("c1").within("ns")).unwrap();
            assert_eq!(seen_rx.recv().await.as_deref(), Some("2"));
            // The watch delivers version 2, then someone else's version 3: the cache again.
            let mut newer = object.clone();
            newer.metadata.resource_version = Some("3".into());
            writer.apply_watcher_event(&Event::Apply(newer));
            trigger_tx.send(ObjectRef::new("c1").within("ns")).unwrap();
            assert_eq!(seen_rx.recv().await.as_deref(), Some("3"));
        };
        tokio::select! {
            () = run => panic!("the runtime stopped"),
            () = driver => {}
        }
    }

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
