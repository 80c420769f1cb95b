//! The Cluster cache the controllers of one manager share: one watch, one store of Clusters
//! trimmed to what the providers read, and one event stream per controller. Reconciles read
//! their owner Cluster from it instead of asking the API server ([CP-50], [IC-16], [KK-16]).

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use kube::api::Api;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};

use crate::capi::Cluster;

/// Events a controller has not taken yet before the shared watch waits for it.
const SUBSCRIBER_BUFFER: usize = 1024;

/// The one condition of a Cluster's status a provider reads ([KK-16]).
const REMOTE_CONNECTION_PROBE: &str = "RemoteConnectionProbe";

/// The shared Cluster watch: subscribe every controller, then run it.
pub struct SharedClusters {
    store: Store<Cluster>,
    writer: Writer<Cluster>,
}

impl std::fmt::Debug for SharedClusters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedClusters")
            .field("cached", &self.store.len())
            .finish()
    }
}

impl Default for SharedClusters {
    fn default() -> Self {
        let (store, writer) = reflector::store_shared(SUBSCRIBER_BUFFER);
        Self { store, writer }
    }
}

impl SharedClusters {
    /// The cache (filled once [`run`](Self::run) lists the Clusters).
    pub fn store(&self) -> Store<Cluster> {
        self.store.clone()
    }

    /// The cache and the Clusters that changed in a way `relevant` tells apart, for one more
    /// controller; subscribe before [`run`](Self::run). A Cluster seen again unchanged (a
    /// re-list, a status update the controller does not read) is not passed on.
    pub fn subscribe(&self, relevant: fn(&Cluster) -> Option<u64>) -> ClusterFeed {
        let mut seen: HashMap<ObjectRef<Cluster>, u64> = HashMap::new();
        let cached = self.store.clone();
        let events = match self.writer.subscribe() {
            Some(handle) => handle.boxed(),
            // Only a writer made by `store_shared` has subscribers; this one always is.
            None => futures::stream::empty().boxed(),
        };
        let events = events.filter_map(move |cluster| {
            // Deleted Clusters are not announced: forget them once they are a good part of
            // what is remembered.
            if seen.len() > 2 * cached.len() + SUBSCRIBER_BUFFER {
                seen.retain(|key, _| cached.get(key).is_some());
            }
            let key = ObjectRef::from(cluster.as_ref());
            let passed = match relevant(&cluster) {
                Some(hash) => seen.insert(key, hash) != Some(hash),
                None => true,
            };
            futures::future::ready(passed.then(|| Ok(Cluster::clone(&cluster))))
        });
        ClusterFeed {
            store: self.store(),
            events: events.boxed(),
        }
    }

    /// Runs the watch until the future is dropped; `api` decides the namespaces ([MGR-01]).
    pub async fn run(self, api: Api<Cluster>) {
        watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(trim)
            .reflect_shared(self.writer)
            .for_each(|event| async move {
                if let Err(error) = event {
                    tracing::debug!(%error, "cluster watch error");
                }
            })
            .await;
    }
}

/// What one controller gets of the shared Cluster watch.
pub struct ClusterFeed {
    pub store: Store<Cluster>,
    pub events: BoxStream<'static, Result<Cluster, watcher::Error>>,
}

impl std::fmt::Debug for ClusterFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterFeed").finish_non_exhaustive()
    }
}

/// Drops what no provider reads, so 10,000 Clusters fit the manager's memory: managedFields and
/// every status condition but `RemoteConnectionProbe`.
fn trim(cluster: &mut Cluster) {
    cluster.meta_mut().managed_fields = None;
    if let Some(status) = cluster.status.as_mut() {
        status
            .conditions
            .retain(|c| c.type_ == REMOTE_CONNECTION_PROBE);
    }
}

/// The owner-Cluster lookup of a reconcile: the shared cache first, the API server when the
/// cache does not hold the Cluster the ownerReference names (not listed yet, or replaced).
#[derive(Clone)]
pub struct ClusterLookup {
    pub client: Client,
    pub cache: Store<Cluster>,
}

impl std::fmt::Debug for ClusterLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLookup").finish_non_exhaustive()
    }
}

impl ClusterLookup {
    /// The cached Cluster `namespace/name` with `uid`, if the cache holds exactly that one.
    pub fn cached(&self, namespace: &str, name: &str, uid: &str) -> Option<Arc<Cluster>> {
        self.cache
            .get(&ObjectRef::new(name).within(namespace))
            .filter(|c| c.metadata.uid.as_deref() == Some(uid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// [KK-16]: the trimmed Cluster keeps its spec, metadata and the probe condition.
    #[test]
    fn trim_keeps_what_providers_read() {
        let mut cluster: Cluster = serde_json::from_value(json!({
            "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
            "metadata": {"name": "c", "namespace": "ns", "uid": "u",
                "annotations": {"a": "b"},
                "managedFields": [{"manager": "m", "operation": "Apply"}]},
            "spec": {"paused": true},
            "status": {"conditions": [
                {"type": "Available", "status": "False", "reason": "R", "message": "",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "RemoteConnectionProbe", "status": "True", "reason": "R",
                 "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}))
        .unwrap();
        trim(&mut cluster);
        assert!(cluster.metadata.managed_fields.is_none());
        assert_eq!(cluster.spec.paused, Some(true));
        assert_eq!(cluster.metadata.annotations.unwrap()["a"], "b");
        let types: Vec<_> = cluster
            .status
            .unwrap()
            .conditions
            .into_iter()
            .map(|c| c.type_)
            .collect();
        assert_eq!(types, ["RemoteConnectionProbe"]);
    }
}
