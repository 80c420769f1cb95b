//! The events recorder against the embedded API server ([CP-56]): a repeat of an event folds
//! into the first Event's series, another note is another Event, and a repeat whose Event is
//! gone from the server is published anew.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kany8s::reconciler::conditions::Event;
use kany8s::reconciler::events::{Recorder, Reporter};
use kube::api::{Api, DeleteParams, ListParams};

fn regarding() -> ObjectReference {
    ObjectReference {
        api_version: Some("controlplane.cluster.x-k8s.io/v1alpha1".into()),
        kind: Some("Kany8sControlPlane".into()),
        namespace: Some("default".into()),
        name: Some("demo".into()),
        uid: Some("6f1c1d7e-0000-4000-8000-000000000001".into()),
        ..ObjectReference::default()
    }
}

fn event(note: &str) -> Event {
    Event {
        warning: false,
        reason: "Waiting".into(),
        note: note.into(),
    }
}

async fn listed(events: &Api<KubeEvent>) -> Vec<KubeEvent> {
    let mut items = events.list(&ListParams::default()).await.unwrap().items;
    items.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    items
}

#[tokio::test]
async fn cp56_a_repeat_updates_the_series_of_the_first_event() {
    let server = kany8s_apiserver::Server::builder().build();
    let client = server.client();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "kany8s".into(),
            instance: Some("kany8s-0".into()),
        },
    );
    let events: Api<KubeEvent> = Api::namespaced(client.clone(), "default");

    for _ in 0..3 {
        recorder
            .publish(&event("backend not ready"), &regarding())
            .await
            .unwrap();
    }
    let items = listed(&events).await;
    assert_eq!(items.len(), 1, "{items:#?}");
    let first = &items[0];
    assert_eq!(first.series.as_ref().map(|s| s.count), Some(3));
    assert_eq!(first.reporting_controller.as_deref(), Some("kany8s"));
    assert_eq!(first.reporting_instance.as_deref(), Some("kany8s-0"));
    assert_eq!(first.action.as_deref(), Some("Reconcile"));
    assert_eq!(first.type_.as_deref(), Some("Normal"));
    assert_eq!(first.note.as_deref(), Some("backend not ready"));
    assert_eq!(
        first.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("demo")
    );
    assert!(first.metadata.name.as_deref().unwrap().starts_with("demo."));

    // Another note is another event.
    recorder
        .publish(&event("backend ready"), &regarding())
        .await
        .unwrap();
    let items = listed(&events).await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].note.as_deref(), Some("backend ready"));
    assert_eq!(items[1].series, None);

    // The server dropped the Events (their TTL): the next repeat is a new Event, not an error.
    events
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .unwrap();
    recorder
        .publish(&event("backend not ready"), &regarding())
        .await
        .unwrap();
    let items = listed(&events).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].series, None);
    assert_eq!(items[0].note.as_deref(), Some("backend not ready"));
}
