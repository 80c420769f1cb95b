//! The events recorder ([CP-56]): publishes `events.k8s.io/v1` Events and folds a repeat of the
//! same event about the same object into the first one's `series`, remembering only a bounded
//! number of recent events, so its memory and its work per publish do not grow with the fleet.
//!
//! Why not kube-rs's `Recorder`: it keeps every event it published for six minutes (whole
//! `Event` objects) and scans all of them on every publish — at 10,000 clusters ≈ 60,000 entries,
//! megabytes held and a full scan per event. This one keeps a fingerprint, the Event's name and
//! its count per recent event (at most [`CAPACITY`], least recently published first out, as
//! client-go's event correlator bounds its cache), and expires them in publish order.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::conditions::Event;
use super::lock;

/// How long a published event can take repeats into its series (the `events.k8s.io` series
/// window client-go and kube-rs use).
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// How many recent events the recorder remembers; an event pushed out publishes its next repeat
/// as a new Event instead of a series update, which loses nothing but the fold.
pub const CAPACITY: usize = 4096;

/// The `action` of every event Kany8s publishes ([CP-56]).
const ACTION: &str = "Reconcile";

/// Who publishes: `reportingController` and `reportingInstance`.
#[derive(Clone, Debug)]
pub struct Reporter {
    pub controller: String,
    /// The pod; the controller's name when unset.
    pub instance: Option<String>,
}

/// Publishes events; clones share the memory of recent events.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    reporter: Reporter,
    recent: Arc<Mutex<Recent>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("reporter", &self.reporter)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self {
            client,
            reporter,
            recent: Arc::new(Mutex::new(Recent::new(CAPACITY, SERIES_WINDOW))),
        }
    }

    /// Publishes `event` about `regarding`: a new Event, or — when the same event about the same
    /// object was published within the series window — a series update of that Event. A series
    /// update whose Event is gone (expired on the server) publishes a new Event.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<KubeEvent> = Api::namespaced(self.client.clone(), namespace);
        let fingerprint = fingerprint(event, regarding);
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let repeat = lock(&self.recent).repeat(fingerprint, Instant::now());
        if let Some(Repeat { name, count }) = repeat {
            let series = json!({"series": {"count": count, "lastObservedTime": now}});
            match events
                .patch(&name, &PatchParams::default(), &Patch::Merge(&series))
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    lock(&self.recent).forget(fingerprint);
                }
                Err(error) => return Err(error),
            }
        }
        let created = events
            .create(
                &PostParams::default(),
                &self.new_event(event, regarding, now),
            )
            .await?;
        if let Some(name) = created.metadata.name {
            lock(&self.recent).remember(fingerprint, name, Instant::now());
        }
        Ok(())
    }

    fn new_event(&self, event: &Event, regarding: &ObjectReference, now: MicroTime) -> KubeEvent {
        let base = regarding
            .name
            .as_deref()
            .unwrap_or(&self.reporter.controller);
        KubeEvent {
            metadata: ObjectMeta {
                // The `<object>.<hex nanoseconds>` names client-go gives events.
                name: Some(format!("{base}.{:x}", now.0.as_nanosecond())),
                namespace: regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            event_time: Some(now),
            action: Some(ACTION.into()),
            reason: Some(event.reason.clone()),
            note: Some(event.note.clone()),
            type_: Some(if event.warning { "Warning" } else { "Normal" }.into()),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            ..KubeEvent::default()
        }
    }
}

/// What makes two events the same: type, reason, note and the object (by uid, and by kind,
/// namespace and name for a reference without one). A 64-bit fingerprint stands for them; two
/// different events sharing one among at most [`CAPACITY`] would fold into one series
/// (probability ≈ 10⁻¹²).
fn fingerprint(event: &Event, regarding: &ObjectReference) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    (event.warning, &event.reason, &event.note).hash(&mut hasher);
    (
        &regarding.uid,
        &regarding.api_version,
        &regarding.kind,
        &regarding.namespace,
        &regarding.name,
    )
        .hash(&mut hasher);
    hasher.finish()
}

/// A repeat to fold: the Event to update and its new count.
#[derive(Debug, PartialEq, Eq)]
struct Repeat {
    name: String,
    count: i32,
}

#[derive(Debug)]
struct Remembered {
    name: String,
    count: i32,
    /// The last publish; the entry expires [`SERIES_WINDOW`] after it.
    last: Instant,
}

/// The recent events, least recently published first: a map by fingerprint and a queue of
/// (fingerprint, publish time) in publish order. A republished event leaves a stale queue entry
/// behind (its time no longer matches the map's), skipped when it reaches the front.
#[derive(Debug)]
struct Recent {
    entries: HashMap<u64, Remembered>,
    order: VecDeque<(u64, Instant)>,
    capacity: usize,
    window: Duration,
}

impl Recent {
    fn new(capacity: usize, window: Duration) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            window,
        }
    }

    /// The series update for a publish of `fingerprint` at `now`, counting it; `None` when the
    /// event is new (or its entry expired).
    fn repeat(&mut self, fingerprint: u64, now: Instant) -> Option<Repeat> {
        self.expire(now);
        let entry = self.entries.get_mut(&fingerprint)?;
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        self.order.push_back((fingerprint, now));
        let repeat = Repeat {
            name: entry.name.clone(),
            count: entry.count,
        };
        self.compact();
        Some(repeat)
    }

    /// Remembers a newly created Event.
    fn remember(&mut self, fingerprint: u64, name: String, now: Instant) {
        self.entries.insert(
            fingerprint,
            Remembered {
                name,
                count: 1,
                last: now,
            },
        );
        self.order.push_back((fingerprint, now));
        self.expire(now);
        self.compact();
    }

    fn forget(&mut self, fingerprint: u64) {
        self.entries.remove(&fingerprint);
    }

    /// Drops the front of the queue while it is stale, expired, or over capacity.
    fn expire(&mut self, now: Instant) {
        while let Some(&(fingerprint, at)) = self.order.front() {
            let current = self.entries.get(&fingerprint).is_some_and(|e| e.last == at);
            let expired = now.saturating_duration_since(at) >= self.window;
            if current && !expired && self.entries.len() <= self.capacity {
                break;
            }
            self.order.pop_front();
            if current {
                self.entries.remove(&fingerprint);
            }
        }
    }

    /// Rebuilds the queue when stale entries (left by repeats) make up most of it, so it stays
    /// within twice the live entries.
    fn compact(&mut self) {
        if self.order.len() <= 2 * self.entries.len().max(16) {
            return;
        }
        let entries = &self.entries;
        self.order
            .retain(|(fingerprint, at)| entries.get(fingerprint).is_some_and(|e| e.last == *at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(reason: &str, note: &str) -> Event {
        Event {
            reason: reason.into(),
            note: note.into(),
            warning: false,
        }
    }

    fn object(name: &str, uid: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("controlplane.cluster.x-k8s.io/v1alpha1".into()),
            kind: Some("Kany8sControlPlane".into()),
            namespace: Some("default".into()),
            name: Some(name.into()),
            uid: Some(uid.into()),
            ..ObjectReference::default()
        }
    }

    #[test]
    fn a_repeat_within_the_window_folds_into_the_series_and_counts_up() {
        let mut recent = Recent::new(8, SERIES_WINDOW);
        let start = Instant::now();
        let key = fingerprint(&event("Waiting", "backend not ready"), &object("a", "u1"));
        assert_eq!(recent.repeat(key, start), None);
        recent.remember(key, "a.1".into(), start);
        let second = recent.repeat(key, start + Duration::from_secs(1));
        assert_eq!(
            second,
            Some(Repeat {
                name: "a.1".into(),
                count: 2
            })
        );
        let third = recent.repeat(key, start + Duration::from_secs(300));
        assert_eq!(third.map(|r| r.count), Some(3));
    }

    #[test]
    fn the_window_runs_from_the_last_publish_and_an_expired_event_starts_anew() {
        let mut recent = Recent::new(8, SERIES_WINDOW);
        let start = Instant::now();
        recent.remember(1, "a.1".into(), start);
        assert!(recent.repeat(1, start + SERIES_WINDOW / 2).is_some());
        // Still inside the window of the repeat.
        assert!(recent.repeat(1, start + SERIES_WINDOW).is_some());
        assert_eq!(recent.repeat(1, start + 3 * SERIES_WINDOW), None);
        assert!(recent.entries.is_empty());
    }

    #[test]
    fn different_notes_types_or_objects_are_different_events() {
        let base = fingerprint(&event("Waiting", "x"), &object("a", "u1"));
        assert_ne!(
            base,
            fingerprint(&event("Waiting", "y"), &object("a", "u1"))
        );
        assert_ne!(base, fingerprint(&event("Ready", "x"), &object("a", "u1")));
        assert_ne!(
            base,
            fingerprint(
                &Event {
                    warning: true,
                    ..event("Waiting", "x")
                },
                &object("a", "u1")
            )
        );
        // The same name after a delete and re-create is another object.
        assert_ne!(
            base,
            fingerprint(&event("Waiting", "x"), &object("a", "u2"))
        );
        assert_eq!(
            base,
            fingerprint(&event("Waiting", "x"), &object("a", "u1"))
        );
    }

    #[test]
    fn memory_stays_within_capacity_least_recently_published_out_first() {
        let mut recent = Recent::new(4, SERIES_WINDOW);
        let start = Instant::now();
        for key in 0..4u64 {
            recent.remember(key, format!("e.{key}"), start);
        }
        // 0 is published again, so 1 is now the least recent.
        assert!(recent.repeat(0, start + Duration::from_secs(1)).is_some());
        recent.remember(4, "e.4".into(), start + Duration::from_secs(2));
        assert_eq!(recent.entries.len(), 4);
        assert!(!recent.entries.contains_key(&1));
        assert!(recent.entries.contains_key(&0));
        for key in 5..1000u64 {
            recent.remember(key, format!("e.{key}"), start + Duration::from_secs(3));
            let _ = recent.repeat(key, start + Duration::from_secs(3));
        }
        assert_eq!(recent.entries.len(), 4);
        assert!(recent.order.len() <= 2 * 16);
    }

    #[test]
    fn a_forgotten_event_is_published_anew() {
        let mut recent = Recent::new(4, SERIES_WINDOW);
        let start = Instant::now();
        recent.remember(7, "e.7".into(), start);
        recent.forget(7);
        assert_eq!(recent.repeat(7, start), None);
    }
}
