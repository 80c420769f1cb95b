//! The object store: one global resourceVersion, objects by key, a bounded event history and the
//! broadcast feed every watch reads from.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

/// Where an object lives. Ordered by resource, then namespace, then name (list order).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(group: &str, plural: &str, namespace: &str, name: &str) -> Self {
        Self {
            group: group.into(),
            plural: plural.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One committed change.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreEvent {
    pub resource_version: u64,
    pub type_: EventType,
    pub key: ObjectKey,
    /// The object after the change (for DELETED: the last stored state, stamped with the
    /// deletion resourceVersion).
    pub object: Arc<Value>,
    /// The object before the change, for selector transitions.
    pub old: Option<Arc<Value>>,
    /// The watch line of this event in the storage version, rendered once for every watcher
    /// that sees the event unchanged.
    pub line: std::sync::OnceLock<bytes::Bytes>,
}

/// History after a resourceVersion plus the live feed continuing right after it.
pub type Subscription = (Vec<Arc<StoreEvent>>, broadcast::Receiver<Arc<StoreEvent>>);

/// Default size of the event history.
pub const DEFAULT_HISTORY: usize = 10_000;

#[derive(Debug)]
pub struct Store {
    resource_version: u64,
    /// Objects are shared with the events that carry them, never copied.
    objects: BTreeMap<ObjectKey, Arc<Value>>,
    uids: HashMap<String, ObjectKey>,
    /// Owner uid → objects whose ownerReferences name it (the garbage collector's graph).
    dependents: HashMap<String, BTreeSet<ObjectKey>>,
    history: VecDeque<Arc<StoreEvent>>,
    history_limit: usize,
    /// Every event with a resourceVersion ≤ this is gone from the history.
    compacted: u64,
    feed: broadcast::Sender<Arc<StoreEvent>>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new(DEFAULT_HISTORY)
    }
}

fn set_resource_version(object: &mut Value, rv: u64) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("resourceVersion".into(), json!(rv.to_string()));
    }
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        let (feed, _) = broadcast::channel(65_536);
        Self {
            resource_version: 1,
            objects: BTreeMap::new(),
            uids: HashMap::new(),
            dependents: HashMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 1,
            feed,
        }
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    /// The oldest resourceVersion a watch can still start from.
    pub fn oldest_watchable(&self) -> u64 {
        self.compacted
    }

    pub fn get(&self, key: &ObjectKey) -> Option<&Value> {
        self.objects.get(key).map(Arc::as_ref)
    }

    /// The objects whose ownerReferences name `uid`.
    pub fn dependents_of(&self, uid: &str) -> Vec<ObjectKey> {
        self.dependents
            .get(uid)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn index_owners(&mut self, key: &ObjectKey, object: Option<&Value>, old: Option<&Value>) {
        let owners = |o: Option<&Value>| -> Vec<String> {
            o.and_then(|o| o.pointer("/metadata/ownerReferences"))
                .and_then(Value::as_array)
                .map(|refs| {
                    refs.iter()
                        .filter_map(|r| r.get("uid")?.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        for uid in owners(old) {
            if let Some(set) = self.dependents.get_mut(&uid) {
                set.remove(key);
                if set.is_empty() {
                    self.dependents.remove(&uid);
                }
            }
        }
        for uid in owners(object) {
            self.dependents.entry(uid).or_default().insert(key.clone());
        }
    }

    pub fn by_uid(&self, uid: &str) -> Option<(&ObjectKey, &Value)> {
        let key = self.uids.get(uid)?;
        self.objects
            .get_key_value(key)
            .map(|(k, v)| (k, v.as_ref()))
    }

    /// Objects of one resource, optionally in one namespace, in key order.
    pub fn list<'a>(
        &'a self,
        group: &'a str,
        plural: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a ObjectKey, &'a Value)> + 'a {
        let start = ObjectKey::new(group, plural, namespace.unwrap_or(""), "");
        self.objects
            .range(start..)
            .take_while(move |(k, _)| {
                k.group == group
                    && k.plural == plural
                    && namespace.is_none_or(|ns| k.namespace == ns)
            })
            .map(|(k, v)| (k, v.as_ref()))
    }

    /// Every object (for the garbage collector and the namespace controller).
    pub fn iter(&self) -> impl Iterator<Item = (&ObjectKey, &Value)> {
        self.objects.iter().map(|(k, v)| (k, v.as_ref()))
    }

    fn commit(
        &mut self,
        type_: EventType,
        key: ObjectKey,
        object: Arc<Value>,
        old: Option<Arc<Value>>,
    ) {
        let event = Arc::new(StoreEvent {
            resource_version: self.resource_version,
            type_,
            key,
            object,
            old,
            line: std::sync::OnceLock::new(),
        });
        self.history.push_back(event.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.resource_version;
            }
        }
        // Nobody listening is fine: watches subscribe before they read the history.
        let _ = self.feed.send(event);
    }

    /// Stores a new object; returns it with its resourceVersion.
    pub fn create(&mut self, key: ObjectKey, mut object: Value) -> Arc<Value> {
        self.resource_version += 1;
        set_resource_version(&mut object, self.resource_version);
        if let Some(uid) = crate::meta::str_field(&object, "uid") {
            self.uids.insert(uid.to_string(), key.clone());
        }
        self.index_owners(&key, Some(&object), None);
        let object = Arc::new(object);
        self.objects.insert(key.clone(), object.clone());
        self.commit(EventType::Added, key, object.clone(), None);
        object
    }

    /// Replaces a stored object; returns it with its new resourceVersion.
    pub fn update(&mut self, key: ObjectKey, mut object: Value) -> Arc<Value> {
        self.resource_version += 1;
        set_resource_version(&mut object, self.resource_version);
        let object = Arc::new(object);
        let old = self.objects.insert(key.clone(), object.clone());
        self.index_owners(&key, Some(&object), old.as_deref());
        self.commit(EventType::Modified, key, object.clone(), old);
        object
    }

    /// Removes an object; the DELETED event carries its last stored state with the new
    /// resourceVersion. Returns that state.
    pub fn delete(&mut self, key: &ObjectKey) -> Option<Arc<Value>> {
        let old = self.objects.remove(key)?;
        if let Some(uid) = crate::meta::str_field(&old, "uid") {
            self.uids.remove(uid);
        }
        self.index_owners(key, None, Some(&old));
        self.resource_version += 1;
        let mut last = Value::clone(&old);
        set_resource_version(&mut last, self.resource_version);
        let last = Arc::new(last);
        self.commit(EventType::Deleted, key.clone(), last.clone(), Some(old));
        Some(last)
    }

    /// Events after `resource_version`, or `None` when the history no longer reaches back
    /// that far; plus a subscription that continues right after them.
    pub fn watch_from(&self, resource_version: u64) -> Option<Subscription> {
        if resource_version < self.compacted {
            return None;
        }
        let receiver = self.feed.subscribe();
        let events = self
            .history
            .iter()
            .filter(|e| e.resource_version > resource_version)
            .cloned()
            .collect();
        Some((events, receiver))
    }

    /// A subscription to changes after now.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoreEvent>> {
        self.feed.subscribe()
    }

    /// Discards history up to and including `resource_version` (test hook).
    pub fn compact(&mut self, resource_version: u64) {
        while self
            .history
            .front()
            .is_some_and(|e| e.resource_version <= resource_version)
        {
            self.history.pop_front();
        }
        self.compacted = self
            .compacted
            .max(resource_version.min(self.resource_version));
    }

    pub fn set_history_limit(&mut self, limit: usize) {
        self.history_limit = limit.max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(name: &str) -> Value {
        json!({"metadata": {"name": name, "uid": format!("uid-{name}")}})
    }

    /// [API-15] resourceVersions increase by one per write and history replays in order.
    #[test]
    fn writes_and_history() {
        let mut store = Store::new(3);
        let key = ObjectKey::new("", "configmaps", "default", "a");
        let created = store.create(key.clone(), object("a"));
        assert_eq!(created["metadata"]["resourceVersion"], "2");
        store.update(key.clone(), object("a"));
        let deleted = store.delete(&key).unwrap();
        assert_eq!(deleted["metadata"]["resourceVersion"], "4");
        let (events, _) = store.watch_from(2).unwrap();
        let types: Vec<_> = events
            .iter()
            .map(|e| (e.resource_version, e.type_))
            .collect();
        assert_eq!(types, [(3, EventType::Modified), (4, EventType::Deleted)]);
        store.create(
            ObjectKey::new("", "configmaps", "default", "b"),
            object("b"),
        );
        store.create(
            ObjectKey::new("", "configmaps", "default", "c"),
            object("c"),
        );
        assert!(
            store.watch_from(2).is_none(),
            "history of 3 no longer reaches rv 2"
        );
        store.compact(6);
        assert!(store.watch_from(5).is_none());
        assert!(store.watch_from(6).is_some());
    }

    #[test]
    fn list_is_scoped() {
        let mut store = Store::default();
        store.create(ObjectKey::new("", "configmaps", "a", "x"), object("x"));
        store.create(ObjectKey::new("", "configmaps", "b", "y"), object("y"));
        store.create(ObjectKey::new("", "secrets", "a", "z"), object("z"));
        assert_eq!(store.list("", "configmaps", None).count(), 2);
        assert_eq!(store.list("", "configmaps", Some("b")).count(), 1);
        assert!(store.by_uid("uid-z").is_some());
    }

    /// The garbage collector's index follows ownerReferences through updates and deletes.
    #[test]
    fn dependents_index() {
        let mut store = Store::default();
        let dep = ObjectKey::new("", "configmaps", "a", "dep");
        let owned = |uid: &str| json!({"metadata": {"name": "dep", "uid": "d", "ownerReferences": [{"uid": uid}]}});
        store.create(dep.clone(), owned("o1"));
        assert_eq!(store.dependents_of("o1"), std::slice::from_ref(&dep));
        store.update(dep.clone(), owned("o2"));
        assert!(store.dependents_of("o1").is_empty());
        assert_eq!(store.dependents_of("o2"), std::slice::from_ref(&dep));
        store.delete(&dep);
        assert!(store.dependents_of("o2").is_empty());
    }
}
