//! Watches of kinds known only at runtime (provider.md [CP-55]): one metadata-only watch per
//! backend kind, started on first use, feeding the owning controller through a bounded trigger
//! channel that coalesces per object instead of dropping; unused watches stop after a while.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::reconciler::lock;

/// Capacity of the trigger channel ([CP-55]).
pub const TRIGGER_CAPACITY: usize = 1024;

/// How long a kind nobody referenced keeps its watch, at least. Every object reconciles at least
/// once per sync period and marks its kinds as used then, so the idle time is derived from it
/// ([`idle_timeout`]): a kind some object still references is never stopped between resyncs.
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The idle time after which a watch stops: two sync periods (resyncs are jittered by ±10 %),
/// never less than [`MIN_IDLE_TIMEOUT`].
pub fn idle_timeout(sync_period: Duration) -> Duration {
    (sync_period * 2).max(MIN_IDLE_TIMEOUT)
}

struct Watch {
    handle: JoinHandle<()>,
    last_used: Instant,
}

struct State<K: Resource> {
    watches: HashMap<(String, String), Watch>,
    /// Objects whose events are waiting for room in the channel (coalesced).
    pending: BTreeSet<(String, String)>,
    _kind: std::marker::PhantomData<K>,
}

/// Where the watches of one controller report ([MET-02]).
#[derive(Clone, Debug)]
pub struct Probe {
    pub metrics: Arc<Metrics>,
    pub controller: &'static str,
}

/// Maps a watched object's metadata to the (namespace, name) of the primary objects it concerns.
pub type Route = Arc<dyn Fn(&kube::api::ObjectMeta) -> Vec<(String, String)> + Send + Sync>;

/// Backend objects map 1:1 to the primary object of the same namespace and name.
pub fn same_name() -> Route {
    Arc::new(|meta| match (&meta.namespace, &meta.name) {
        (Some(namespace), Some(name)) => vec![(namespace.clone(), name.clone())],
        // Cluster-scoped objects are ignored.
        _ => Vec::new(),
    })
}

/// The dynamic watches of one controller (whose primary kind is `K`); watched objects reach
/// the primary objects their `Route` names.
pub struct DynamicWatches<K: Resource> {
    client: Client,
    probe: Probe,
    route: Route,
    idle: Duration,
    namespace: Option<String>,
    state: Arc<Mutex<State<K>>>,
    wake: Arc<Notify>,
}

impl<K: Resource> Debug for DynamicWatches<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<String> = lock(&self.state)
            .watches
            .keys()
            .map(|(v, k)| format!("{v}/{k}"))
            .collect();
        f.debug_struct("DynamicWatches")
            .field("kinds", &kinds)
            .finish()
    }
}

impl<K> DynamicWatches<K>
where
    K: Resource + Clone + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Debug + Unpin + Send + Sync,
{
    /// The watches and the trigger stream to pass to [`Triggers::refs`](crate::reconciler::runtime::Triggers::refs).
    pub fn new(
        client: Client,
        namespace: Option<String>,
        probe: Probe,
        route: Route,
        sync_period: Duration,
    ) -> (
        Arc<Self>,
        tokio_stream::wrappers::ReceiverStream<ObjectRef<K>>,
    ) {
        let (sender, receiver) = mpsc::channel(TRIGGER_CAPACITY);
        let watches = Arc::new(Self {
            client,
            probe,
            route,
            idle: idle_timeout(sync_period),
            namespace,
            state: Arc::new(Mutex::new(State {
                watches: HashMap::new(),
                pending: BTreeSet::new(),
                _kind: std::marker::PhantomData,
            })),
            wake: Arc::new(Notify::new()),
        });
        let forwarder = watches.clone();
        tokio::spawn(async move { forwarder.forward(sender).await });
        let sweeper = Arc::downgrade(&watches);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let Some(watches) = sweeper.upgrade() else {
                    return;
                };
                watches.stop_idle(watches.idle);
            }
        });
        (
            watches,
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )
    }

    /// Moves pending triggers into the channel, waiting for room (no event is lost).
    async fn forward(&self, sender: mpsc::Sender<ObjectRef<K>>) {
        loop {
            let next = lock(&self.state).pending.pop_first();
            match next {
                Some((namespace, name)) => {
                    if sender
                        .send(ObjectRef::new(&name).within(&namespace))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                None => {
                    // The controller is gone once its end of the channel is dropped.
                    tokio::select! {
                        () = self.wake.notified() => {}
                        () = sender.closed() => return,
                    }
                }
            }
        }
    }

    /// Ensures a watch on `resource` is running; marks the kind as used.
    pub fn ensure(&self, resource: &ApiResource) {
        let key = (resource.api_version.clone(), resource.kind.clone());
        let mut state = lock(&self.state);
        if let Some(watch) = state.watches.get_mut(&key)
            && !watch.handle.is_finished()
        {
            watch.last_used = Instant::now();
            return;
        }
        let api: Api<PartialObjectMeta<DynamicObject>> = match &self.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        };
        let shared = self.state.clone();
        let wake = self.wake.clone();
        let kind = resource.kind.clone();
        let probe = self.probe.clone();
        let route = self.route.clone();
        let handle = tokio::spawn(async move {
            let stream = watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .touched_objects();
            futures::pin_mut!(stream);
            let mut started = false;
            while let Some(event) = stream.next().await {
                match event {
                    Ok(object) => {
                        started = true;
                        let targets = route(&object.metadata);
                        if targets.is_empty() {
                            continue;
                        }
                        {
                            let mut state = lock(&shared);
                            for target in targets {
                                if !state.pending.insert(target) {
                                    probe.metrics.channel_full();
                                }
                            }
                        }
                        wake.notify_one();
                    }
                    Err(error) => {
                        if !started {
                            probe.metrics.dynamic_watch_start_failed(probe.controller);
                        }
                        tracing::warn!(%kind, %error, "dynamic watch error");
                    }
                }
            }
        });
        state.watches.insert(
            key,
            Watch {
                handle,
                last_used: Instant::now(),
            },
        );
        self.probe
            .metrics
            .set_dynamic_watches(self.probe.controller, state.watches.len());
    }

    /// Whether a watch for `resource` is running.
    pub fn is_running(&self, resource: &ApiResource) -> bool {
        lock(&self.state)
            .watches
            .get(&(resource.api_version.clone(), resource.kind.clone()))
            .is_some_and(|w| !w.handle.is_finished())
    }

    /// Stops the watches of kinds nobody used for `idle`.
    pub fn stop_idle(&self, idle: Duration) {
        let mut state = lock(&self.state);
        state.watches.retain(|(_, kind), watch| {
            let keep = watch.last_used.elapsed() < idle;
            if !keep {
                tracing::info!(%kind, "stopping unused dynamic watch");
                watch.handle.abort();
            }
            keep
        });
        self.probe
            .metrics
            .set_dynamic_watches(self.probe.controller, state.watches.len());
    }
}

impl<K: Resource> Drop for DynamicWatches<K> {
    /// A stopped controller stops its watches.
    fn drop(&mut self) {
        for watch in lock(&self.state).watches.values() {
            watch.handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [CP-55]: a kind still referenced is ensured at every resync, so it outlives the idle
    /// time; short sync periods keep the floor.
    #[test]
    fn cp55_idle_timeout_outlasts_the_resync() {
        let ten_minutes = Duration::from_secs(600);
        assert!(idle_timeout(ten_minutes) > ten_minutes + ten_minutes / 10);
        assert_eq!(idle_timeout(Duration::from_secs(30)), MIN_IDLE_TIMEOUT);
    }
}
