//! Read-your-own-writes for the primary cache: a reconcile that writes its object (the own
//! apply, the status write) leaves the server's answer here, and the next reconcile of that
//! object runs on it while the watch has not yet brought the write into the cache. Without it a
//! pass that starts in that window decides from the state before the write: it can skip a
//! needed status write because the stale copy already looks right, or drop a sticky field
//! such as `initialized` — and, status changes of the primary not being triggers, nothing
//! would correct it before the next resync.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use kube::Resource;

tokio::task_local! {
    /// The last primary object a write of the running reconcile returned.
    static WRITTEN: RefCell<Option<Box<dyn Any + Send>>>;
}

/// Records what the server answered to a write of the primary object; called by the writes
/// of [`lifecycle`](super::lifecycle). Outside a reconcile scope ([`scope`]) it does nothing.
pub fn record<K: Resource + Send + 'static>(mut written: K) {
    // The cache holds objects without managedFields; so does what stands in for it.
    written.meta_mut().managed_fields = None;
    let _ = WRITTEN.try_with(|slot| *slot.borrow_mut() = Some(Box::new(written)));
}

/// Runs `reconcile` so that its writes can be [`record`]ed; returns its output and the last
/// object written, if any.
pub async fn scope<K, T>(reconcile: impl Future<Output = T>) -> (T, Option<K>)
where
    K: 'static,
{
    WRITTEN
        .scope(RefCell::new(None), async move {
            let output = reconcile.await;
            let written = WRITTEN
                .with(|slot| slot.borrow_mut().take())
                .and_then(|boxed| boxed.downcast::<K>().ok())
                .map(|boxed| *boxed);
            (output, written)
        })
        .await
}

/// Newer copies of objects than the cache holds, until the cache catches up.
#[derive(Debug)]
pub struct Overlay<T, K> {
    entries: HashMap<T, Entry<K>>,
}

#[derive(Debug)]
struct Entry<K> {
    /// Resource versions this controller's writes have replaced: a cached copy at one of them
    /// is older than `latest`.
    replaced: Vec<String>,
    latest: Arc<K>,
}

/// Past this many writes the cache has not caught up with, the entry is dropped: the cache is
/// trusted again rather than holding on to an ever longer chain.
const MAX_REPLACED: usize = 16;

impl<T, K> Default for Overlay<T, K> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }
}

fn version<K: Resource>(object: &K) -> Option<&str> {
    object.meta().resource_version.as_deref()
}

impl<T: Eq + Hash, K: Resource> Overlay<T, K> {
    /// The copy of `key` to reconcile: the written one while the cache still shows a version
    /// it replaced, else the cached one (and the entry is dropped: the cache caught up, or
    /// someone else wrote since).
    pub fn current(&mut self, key: &T, cached: Arc<K>) -> Arc<K> {
        if let Some(entry) = self.entries.get(key) {
            if version(cached.as_ref()).is_some_and(|v| entry.replaced.iter().any(|r| r == v)) {
                return entry.latest.clone();
            }
            self.entries.remove(key);
        }
        cached
    }

    /// A reconcile of `base` wrote `written`.
    pub fn wrote(&mut self, key: T, base: &K, written: K) {
        let (Some(before), Some(after)) = (version(base), version(&written)) else {
            return;
        };
        if before == after {
            // A write that changed nothing: the cache is as fresh as the answer.
            return;
        }
        let before = before.to_string();
        let latest = Arc::new(written);
        match self.entries.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut occupied) => {
                let entry = occupied.get_mut();
                entry.replaced.push(before);
                entry.latest = latest;
                if entry.replaced.len() > MAX_REPLACED {
                    entry.replaced.drain(..entry.replaced.len() - MAX_REPLACED);
                }
            }
            std::collections::hash_map::Entry::Vacant(vacant) => {
                vacant.insert(Entry {
                    replaced: vec![before],
                    latest,
                });
            }
        }
    }

    /// Forgets `key` (the object is gone from the cache).
    pub fn forget(&mut self, key: &T) {
        self.entries.remove(key);
    }

    /// Drops the entries whose object the cache has caught up with; `cached_version` looks the
    /// object up in the cache.
    pub fn prune(&mut self, cached_version: impl Fn(&T) -> Option<String>) {
        self.entries
            .retain(|key, entry| cached_version(key).is_some_and(|v| entry.replaced.contains(&v)));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Kany8sCluster;
    use kube::ResourceExt;

    fn at(version: &str) -> Kany8sCluster {
        let mut object = Kany8sCluster::new("c1", Default::default());
        object.metadata.resource_version = Some(version.into());
        object
    }

    /// The written copy stands in while the cache shows any version it replaced, also across
    /// two writes the cache has not seen; once the cache moves on it is the cache again.
    #[test]
    fn the_written_copy_stands_in_until_the_cache_catches_up() {
        let mut overlay: Overlay<&str, Kany8sCluster> = Overlay::default();
        assert_eq!(
            overlay
                .current(&"c1", Arc::new(at("1")))
                .resource_version()
                .as_deref(),
            Some("1")
        );
        overlay.wrote("c1", &at("1"), at("2"));
        assert_eq!(
            overlay
                .current(&"c1", Arc::new(at("1")))
                .resource_version()
                .as_deref(),
            Some("2")
        );
        // The second pass ran on version 2 and wrote again; the cache is still at 1.
        overlay.wrote("c1", &at("2"), at("3"));
        assert_eq!(
            overlay
                .current(&"c1", Arc::new(at("1")))
                .resource_version()
                .as_deref(),
            Some("3")
        );
        assert_eq!(
            overlay
                .current(&"c1", Arc::new(at("2")))
                .resource_version()
                .as_deref(),
            Some("3")
        );
        // The cache has version 3 (or a later one of someone else): the entry goes.
        assert_eq!(
            overlay
                .current(&"c1", Arc::new(at("3")))
                .resource_version()
                .as_deref(),
            Some("3")
        );
        assert!(overlay.is_empty());
    }

    /// A write that changed nothing (same version) leaves no entry; pruning drops caught-up
    /// and vanished objects.
    #[test]
    fn no_op_writes_and_caught_up_entries_leave_nothing() {
        let mut overlay: Overlay<&str, Kany8sCluster> = Overlay::default();
        overlay.wrote("c1", &at("1"), at("1"));
        assert!(overlay.is_empty());
        overlay.wrote("c1", &at("1"), at("2"));
        overlay.wrote("c2", &at("5"), at("6"));
        overlay.wrote("c3", &at("7"), at("8"));
        overlay.prune(|key| match *key {
            "c1" => Some("1".into()),
            "c2" => Some("6".into()),
            _ => None,
        });
        assert_eq!(overlay.len(), 1, "only c1's cache is behind");
    }

    /// Writes are recorded only inside a reconcile's scope, and the last one wins.
    #[tokio::test]
    async fn scope_returns_the_last_write() {
        let ((), written) = scope::<Kany8sCluster, _>(async {
            record(at("2"));
            record(at("3"));
        })
        .await;
        assert_eq!(
            written.and_then(|o| o.metadata.resource_version).as_deref(),
            Some("3")
        );
        record(at("4"));
        let ((), nothing) = scope::<Kany8sCluster, _>(async {}).await;
        assert!(nothing.is_none());
    }
}
