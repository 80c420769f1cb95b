//! Watch streams: start points, selector transitions, bookmarks, timeouts and the in-stream
//! 410 for history that is gone.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast, mpsc};

use crate::engine::{Engine, ListOptions, field_value, parse_field_selector};
use crate::registry::ResourceType;
use crate::selector::{FieldSelector, LabelSelector, labels_of};
use crate::status::ApiError;
use crate::store::{EventType, StoreEvent};

/// How events are rendered for the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rendering {
    Full,
    PartialObjectMetadata,
    Table,
}

/// A watch request.
#[derive(Clone, Debug)]
pub struct WatchRequest {
    pub resource: Arc<ResourceType>,
    pub version: String,
    pub namespace: Option<String>,
    pub list: ListOptions,
    pub allow_bookmarks: bool,
    pub timeout: Duration,
    pub send_initial_events: bool,
    pub bookmark_interval: Duration,
    pub rendering: Rendering,
}

struct Filter {
    resource: Arc<ResourceType>,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

/// How a watcher sees a committed change (§6.3).
enum Seen {
    /// The event as committed.
    AsCommitted,
    /// The object entered the selector: ADDED with the new object.
    Entered,
    /// The object left the selector: DELETED with the old object at the new resourceVersion.
    Left,
}

impl Filter {
    fn matches(&self, object: &Value) -> bool {
        self.labels.matches(&labels_of(object))
            && self
                .fields
                .matches(&|f| field_value(&self.resource, object, f))
    }

    fn concerns(&self, event: &StoreEvent) -> bool {
        event.key.group == crate::events::storage_group(&self.resource)
            && event.key.plural == self.resource.plural
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| event.key.namespace == ns)
    }

    fn translate(&self, event: &StoreEvent) -> Option<Seen> {
        if !self.concerns(event) {
            return None;
        }
        let now = self.matches(&event.object);
        match event.type_ {
            EventType::Added | EventType::Deleted => now.then_some(Seen::AsCommitted),
            EventType::Modified => {
                let before = event.old.as_ref().is_some_and(|o| self.matches(o));
                match (before, now) {
                    (true, true) => Some(Seen::AsCommitted),
                    (false, true) => Some(Seen::Entered),
                    (true, false) => Some(Seen::Left),
                    (false, false) => None,
                }
            }
        }
    }
}

fn line(value: &Value) -> Bytes {
    let mut text = value.to_string();
    text.push('\n');
    Bytes::from(text)
}

/// Renders one event object for the client.
pub fn render_object(request: &WatchRequest, object: &Value, first: &mut bool) -> Value {
    let presented = Engine::present(&request.resource, &request.version, object);
    match request.rendering {
        Rendering::Full => presented,
        Rendering::PartialObjectMetadata => crate::table::partial_object_metadata(&presented),
        Rendering::Table => {
            let table = crate::table::table(
                &request.resource,
                &request.version,
                std::slice::from_ref(&presented),
                *first,
                crate::table::IncludeObject::Metadata,
            );
            *first = false;
            table
        }
    }
}

fn bookmark(request: &WatchRequest, resource_version: u64, initial_end: bool) -> Value {
    let mut object = json!({
        "kind": request.resource.kind_name,
        "apiVersion": request.resource.api_version(&request.version),
        "metadata": {"resourceVersion": resource_version.to_string()}
    });
    if initial_end {
        object["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"type": "BOOKMARK", "object": object})
}

/// Where a stream starts: the synthetic initial events, the replayed history and the positions.
struct StreamStart {
    initial: Vec<Value>,
    history: Vec<Arc<StoreEvent>>,
    start_rv: u64,
    snapshot_rv: u64,
    first_table: bool,
}

/// Starts a watch: returns the channel the response body reads, or an error answered before
/// the stream starts. `dropped` ends the stream when raised (fault injection).
pub fn start(
    engine: Arc<Engine>,
    request: WatchRequest,
    expire: bool,
    dropped: Arc<Notify>,
) -> Result<mpsc::Receiver<Bytes>, ApiError> {
    let labels = LabelSelector::parse(request.list.label_selector.as_deref().unwrap_or(""))?;
    let fields = parse_field_selector(
        &request.resource,
        request.list.field_selector.as_deref().unwrap_or(""),
    )?;
    let namespace = if request.resource.namespaced {
        request.namespace.clone()
    } else {
        None
    };
    let filter = Filter {
        resource: request.resource.clone(),
        namespace,
        labels,
        fields,
    };
    let (sender, receiver) = mpsc::channel::<Bytes>(1024);
    let requested: Option<u64> = match request.list.resource_version.as_deref() {
        None | Some("") | Some("0") => None,
        Some(rv) => Some(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?,
        ),
    };
    let mut initial: Vec<Value> = Vec::new();
    let mut first_table = true;
    // The initial list and the subscription are read under one lock, so no change falls
    // between them.
    let (current, start_rv, oldest, subscription) = engine.with_store(|store| {
        let current = store.resource_version();
        let mut expired = false;
        let start_rv = match requested {
            Some(rv) if !request.send_initial_events => {
                expired = expire || rv < store.oldest_watchable();
                rv
            }
            _ => {
                let objects = store.list(
                    &request.resource.group,
                    &request.resource.plural,
                    filter.namespace.as_deref(),
                );
                for (_, object) in objects {
                    if filter.matches(object) {
                        let rendered = render_object(&request, object, &mut first_table);
                        initial.push(json!({"type": "ADDED", "object": rendered}));
                    }
                }
                current
            }
        };
        let oldest = store.oldest_watchable();
        let subscription = if expired {
            None
        } else {
            store.watch_from(start_rv.min(current))
        };
        (current, start_rv, oldest, subscription)
    });
    let Some((history, feed)) = subscription else {
        let message = format!(
            "too old resource version: {start_rv} ({})",
            oldest.saturating_sub(1).max(1)
        );
        let status = ApiError::expired(message).to_status();
        let _ = sender.try_send(line(&json!({"type": "ERROR", "object": status})));
        return Ok(receiver);
    };
    let start = StreamStart {
        initial,
        history,
        start_rv,
        snapshot_rv: current,
        first_table,
    };
    tokio::spawn(stream(request, filter, start, feed, sender, dropped));
    Ok(receiver)
}

async fn stream(
    request: WatchRequest,
    filter: Filter,
    start: StreamStart,
    mut feed: broadcast::Receiver<Arc<StoreEvent>>,
    sender: mpsc::Sender<Bytes>,
    dropped: Arc<Notify>,
) {
    let StreamStart {
        initial,
        history,
        start_rv,
        snapshot_rv,
        mut first_table,
    } = start;
    let deadline = tokio::time::Instant::now() + request.timeout;
    let mut last_rv = start_rv;
    for event in &initial {
        if sender.send(line(event)).await.is_err() {
            return;
        }
    }
    if request.send_initial_events
        && request.allow_bookmarks
        && sender
            .send(line(&bookmark(&request, snapshot_rv, true)))
            .await
            .is_err()
    {
        return;
    }
    // Watchers of the storage version that see an event as committed share one rendering.
    // (The events.k8s.io view of the Event store renders the same events differently.)
    let shareable = request.rendering == Rendering::Full
        && request.version == request.resource.storage_version
        && !crate::events::is_events_api(&request.resource);
    let mut deliver = |event: &StoreEvent, last_rv: &mut u64| -> Option<Bytes> {
        if event.resource_version <= *last_rv {
            return None;
        }
        *last_rv = event.resource_version;
        let (type_, object) = match filter.translate(event)? {
            Seen::AsCommitted if shareable => {
                let shared = event.line.get_or_init(|| {
                    let rendered =
                        Engine::present(&request.resource, &request.version, &event.object);
                    line(&json!({"type": event.type_.as_str(), "object": rendered}))
                });
                return Some(shared.clone());
            }
            Seen::AsCommitted => (event.type_, Value::clone(&event.object)),
            Seen::Entered => (EventType::Added, Value::clone(&event.object)),
            Seen::Left => {
                let mut last = event.old.as_deref().cloned().unwrap_or(Value::Null);
                last["metadata"]["resourceVersion"] = json!(event.resource_version.to_string());
                (EventType::Deleted, last)
            }
        };
        let rendered = render_object(&request, &object, &mut first_table);
        Some(line(&json!({"type": type_.as_str(), "object": rendered})))
    };
    for event in history {
        if let Some(bytes) = deliver(&event, &mut last_rv)
            && sender.send(bytes).await.is_err()
        {
            return;
        }
    }
    let mut bookmarks = tokio::time::interval_at(
        tokio::time::Instant::now() + request.bookmark_interval,
        request.bookmark_interval,
    );
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return,
            _ = sender.closed() => return,
            _ = dropped.notified() => return,
            _ = bookmarks.tick(), if request.allow_bookmarks => {
                if sender.send(line(&bookmark(&request, last_rv, false))).await.is_err() {
                    return;
                }
            }
            received = feed.recv() => match received {
                Ok(event) => {
                    if let Some(bytes) = deliver(&event, &mut last_rv)
                        && sender.send(bytes).await.is_err() {
                            return;
                        }
                }
                // A watcher that fell behind ends cleanly; the client resumes from its last
                // resourceVersion out of the history.
                Err(_) => return,
            }
        }
    }
}
