//! Events of the plugins and their de-duplication ([PLG-07]): one signature
//! `type|reason|message` remembered per `<controller>/<ns>/<name>`; the same signature again
//! within 30 minutes is not re-emitted, so a cluster waiting for ACK does not post an event on
//! every backoff. At most 10000 keys are kept (the oldest go first; expired ones are compacted
//! on every call).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// How long an identical signature stays suppressed.
pub const DEDUP_TTL: Duration = Duration::from_secs(30 * 60);
/// How many objects the de-duplication remembers.
pub const DEDUP_MAX_KEYS: usize = 10_000;

/// Normal or Warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Normal,
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Normal => "Normal",
            Severity::Warning => "Warning",
        }
    }
}

/// One event to post about the reconciled object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub severity: Severity,
    pub reason: &'static str,
    pub message: String,
}

impl Notice {
    pub fn normal(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Normal,
            reason,
            message: message.into(),
        }
    }

    pub fn warning(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            reason,
            message: message.into(),
        }
    }

    fn signature(&self) -> String {
        format!(
            "{}|{}|{}",
            self.severity.as_str(),
            self.reason,
            self.message
        )
    }
}

/// [PLG-07]: the last signature per object and when it was posted.
#[derive(Debug)]
pub struct Dedup {
    ttl: Duration,
    max_keys: usize,
    last: Mutex<HashMap<String, (String, SystemTime)>>,
}

impl Default for Dedup {
    fn default() -> Self {
        Self::new(DEDUP_TTL, DEDUP_MAX_KEYS)
    }
}

impl Dedup {
    pub fn new(ttl: Duration, max_keys: usize) -> Self {
        Self {
            ttl,
            max_keys,
            last: Mutex::default(),
        }
    }

    fn expired(&self, now: SystemTime, at: SystemTime) -> bool {
        now.duration_since(at).is_ok_and(|age| age > self.ttl)
    }

    /// Whether `notice` about `<controller>/<namespace>/<name>` is to be posted at `now`;
    /// records it when it is.
    pub fn admit(
        &self,
        controller: &str,
        namespace: &str,
        name: &str,
        notice: &Notice,
        now: SystemTime,
    ) -> bool {
        let key = format!("{controller}/{namespace}/{name}");
        let signature = notice.signature();
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        last.retain(|_, (_, at)| !self.expired(now, *at));
        if last
            .get(&key)
            .is_some_and(|(previous, _)| *previous == signature)
        {
            return false;
        }
        last.insert(key, (signature, now));
        while last.len() > self.max_keys {
            let oldest = last
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(key) => last.remove(&key),
                None => break,
            };
        }
        true
    }

    /// How many objects are remembered.
    pub fn len(&self) -> usize {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Posts `events.k8s.io/v1` events through the de-duplication.
#[derive(Clone)]
pub struct Emitter {
    recorder: Recorder,
    controller: &'static str,
    dedup: std::sync::Arc<Dedup>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("controller", &self.controller)
            .finish_non_exhaustive()
    }
}

impl Emitter {
    pub fn new(
        client: kube::Client,
        controller: &'static str,
        instance: Option<String>,
        dedup: std::sync::Arc<Dedup>,
    ) -> Self {
        let reporter = Reporter {
            controller: controller.into(),
            instance,
        };
        Self {
            recorder: Recorder::new(client, reporter),
            controller,
            dedup,
        }
    }

    /// Posts `notice` about `regarding` unless [PLG-07] suppresses it. A failed post is logged,
    /// not returned: an event is never worth failing a reconcile for.
    pub async fn post(&self, regarding: &ObjectReference, notice: &Notice, now: SystemTime) {
        let namespace = regarding.namespace.as_deref().unwrap_or_default();
        let name = regarding.name.as_deref().unwrap_or_default();
        if !self
            .dedup
            .admit(self.controller, namespace, name, notice, now)
        {
            return;
        }
        let event = Event {
            type_: match notice.severity {
                Severity::Normal => EventType::Normal,
                Severity::Warning => EventType::Warning,
            },
            reason: notice.reason.into(),
            note: Some(notice.message.clone()),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, regarding).await {
            tracing::warn!(%error, reason = notice.reason, %namespace, %name, "posting an event failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
    }

    /// [PLG-07]: an identical signature within 30 min is suppressed; a different one, or the
    /// same after the TTL, is posted; keys are per controller and object.
    #[test]
    fn plg07_suppresses_identical_signatures_for_thirty_minutes() {
        let dedup = Dedup::default();
        let waiting = Notice::normal("ACKClusterNotFound", "waiting for ACK EKS Cluster ns/a");
        assert!(dedup.admit("rot", "ns", "a", &waiting, at(0)));
        assert!(!dedup.admit("rot", "ns", "a", &waiting, at(60)));
        assert!(!dedup.admit("rot", "ns", "a", &waiting, at(30 * 60)));
        assert!(dedup.admit("rot", "ns", "a", &waiting, at(30 * 60 + 1)));
        // Another object, another controller: their own keys.
        assert!(dedup.admit("rot", "ns", "b", &waiting, at(60)));
        assert!(dedup.admit("other", "ns", "a", &waiting, at(60)));
        // A change of type, reason or message is posted, and then the old one is new again.
        let warning = Notice::warning("ACKClusterNotFound", "waiting for ACK EKS Cluster ns/a");
        assert!(dedup.admit("rot", "ns", "a", &warning, at(2000)));
        assert!(dedup.admit("rot", "ns", "a", &waiting, at(2001)));
    }

    /// [PLG-07]: at most `max_keys` keys, the oldest evicted; expired keys are compacted.
    #[test]
    fn plg07_bounded_and_compacted() {
        let dedup = Dedup::new(Duration::from_secs(100), 3);
        let notice = Notice::normal("R", "m");
        for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
            assert!(dedup.admit("rot", "ns", name, &notice, at(i as u64)));
        }
        assert_eq!(dedup.len(), 3);
        // "a" was evicted, so it is posted again; "d" is still remembered.
        assert!(!dedup.admit("rot", "ns", "d", &notice, at(10)));
        assert!(dedup.admit("rot", "ns", "a", &notice, at(10)));
        // Everything older than the TTL is dropped on the next call.
        assert!(dedup.admit("rot", "ns", "z", &notice, at(500)));
        assert_eq!(dedup.len(), 1);
        assert_eq!(DEDUP_MAX_KEYS, 10_000);
        assert_eq!(DEDUP_TTL, Duration::from_secs(1800));
    }
}
