//! A real kube-rs controller (Controller with owns(), the finalizer helper, the events
//! Recorder and server-side apply) runs unchanged against the in-process server ([API-01]).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kany8s_apiserver::Server;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use crate::common;

const FINALIZER: &str = "example.com/cleanup";

/// Creates the widget CRD through kube-rs and waits until it is Established.
async fn install_widgets(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(
        &PostParams::default(),
        &serde_json::from_value(common::widget_crd()).unwrap(),
    )
    .await
    .unwrap();
    let established = await_condition(
        crds,
        "widgets.example.com",
        conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(5), established)
        .await
        .unwrap()
        .unwrap();
}

struct Context {
    client: Client,
    resource: ApiResource,
    recorder: Recorder,
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

async fn reconcile(
    widget: Arc<DynamicObject>,
    ctx: Arc<Context>,
) -> Result<Action, kube::runtime::finalizer::Error<Error>> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), "default", &ctx.resource);
    let ctx2 = ctx.clone();
    finalizer(&api, FINALIZER, widget, |event| async move {
        let ctx = ctx2;
        match event {
            Finalizer::Apply(widget) => {
                let owner = widget.controller_owner_ref(&ctx.resource).unwrap();
                let cm = json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": widget.name_any(), "ownerReferences": [owner]},
                    "data": {"size": widget.data["spec"]["size"].to_string()}
                });
                let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), "default");
                cms.patch(
                    &widget.name_any(),
                    &PatchParams::apply("widget-controller").force(),
                    &Patch::Apply(cm),
                )
                .await?;
                let reference = widget.object_ref(&ctx.resource);
                ctx.recorder
                    .publish(
                        &Event {
                            type_: EventType::Normal,
                            reason: "Reconciled".into(),
                            note: Some("config map applied".into()),
                            action: "Apply".into(),
                            secondary: None,
                        },
                        &reference,
                    )
                    .await?;
                Ok(Action::await_change())
            }
            Finalizer::Cleanup(widget) => {
                let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), "default");
                let _ = cms
                    .delete(&widget.name_any(), &DeleteParams::default())
                    .await;
                Ok(Action::await_change())
            }
        }
    })
    .await
}

fn error_policy(
    _: Arc<DynamicObject>,
    _: &kube::runtime::finalizer::Error<Error>,
    _: Arc<Context>,
) -> Action {
    Action::requeue(Duration::from_millis(50))
}

/// [API-01] The controller creates an owned ConfigMap with SSA, records events, and its
/// finalizer runs the cleanup on deletion; the watch machinery, JSON patches of the finalizer
/// helper and the events API all work as on a real cluster.
#[tokio::test]
async fn kube_runtime_controller_runs_unchanged() {
    let server = Server::builder().build();
    let client = server.client();
    install_widgets(&client).await;

    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "widget-controller".into(),
            instance: None,
        },
    );
    let ctx = Arc::new(Context {
        client: client.clone(),
        resource: resource.clone(),
        recorder,
    });
    let controller = Controller::new_with(
        widgets.clone(),
        watcher::Config::default(),
        resource.clone(),
    )
    .owns(cms.clone(), watcher::Config::default())
    .run(reconcile, error_policy, ctx)
    .for_each(|_| async {});
    let running = tokio::spawn(controller);

    let widget: DynamicObject =
        serde_json::from_value(common::widget("w1", json!({"size": 3}))).unwrap();
    widgets
        .create(&PostParams::default(), &widget)
        .await
        .unwrap();
    let cm = tokio::time::timeout(
        Duration::from_secs(5),
        await_condition(cms.clone(), "w1", |cm: Option<&ConfigMap>| cm.is_some()),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    assert_eq!(cm.data.unwrap()["size"], "3");
    assert_eq!(cm.metadata.owner_references.unwrap()[0].name, "w1");
    assert!(
        cm.metadata
            .managed_fields
            .unwrap()
            .iter()
            .any(|m| m.manager.as_deref() == Some("widget-controller"))
    );
    let stored = widgets.get("w1").await.unwrap();
    assert_eq!(stored.finalizers(), [FINALIZER.to_string()]);

    // A spec change reaches the child (the controller re-applies); Events were recorded.
    widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 5}})),
        )
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        await_condition(cms.clone(), "w1", |cm: Option<&ConfigMap>| {
            cm.and_then(|c| c.data.as_ref())
                .is_some_and(|d| d["size"] == "5")
        }),
    )
    .await
    .unwrap()
    .unwrap();
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), "default");
    let recorded = events.list(&Default::default()).await.unwrap();
    assert!(
        recorded
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Reconciled"))
    );

    // Deletion runs the finalizer's cleanup; the widget and its ConfigMap go away.
    widgets
        .delete("w1", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        await_condition(
            widgets.clone(),
            "w1",
            conditions::is_deleted(&stored.uid().unwrap()),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        await_condition(cms.clone(), "w1", |cm: Option<&ConfigMap>| cm.is_none()),
    )
    .await
    .unwrap()
    .unwrap();
    running.abort();
}

/// [API-03] kube-rs `Discovery` (legacy endpoints) finds built-in and CRD-defined kinds.
#[tokio::test]
async fn kube_discovery_sees_builtins_and_crds() {
    let server = Server::builder().build();
    let client = server.client();
    install_widgets(&client).await;
    let discovery = kube::Discovery::new(client).run().await.unwrap();
    let groups: Vec<String> = discovery.groups().map(|g| g.name().to_string()).collect();
    assert!(
        groups.contains(&String::new()) || groups.iter().any(|g| g.is_empty()),
        "{groups:?}"
    );
    assert!(groups.contains(&"example.com".to_string()), "{groups:?}");
    let (resource, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .unwrap();
    assert_eq!(resource.plural, "widgets");
    assert!(
        caps.subresources
            .iter()
            .any(|(r, _)| r.plural == "widgets/status" || r.plural == "status")
    );
}
