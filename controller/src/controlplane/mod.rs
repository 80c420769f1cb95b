//! The Kany8sControlPlane controller (provider.md §4): observe the control plane, its owner
//! Cluster, RGD, backend object and Secrets; decide the status purely; apply with SSA.

pub mod decide;
pub mod reconcile;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use crate::api::{Kany8sControlPlane, Kany8sKubeadmControlPlane};
use crate::capi::Cluster;
use crate::dynamic::{DynamicWatches, Probe};
use crate::metrics;
use reconcile::{Context, Error, rgd_resource};

pub use crate::manager::Options;

/// [CP-54]: per-object error backoff.
fn error_policy(cp: Arc<Kany8sControlPlane>, error: &Error, ctx: Arc<Context>) -> Action {
    crate::backend::retry_later(cp.as_ref(), error, &ctx.backoff)
}

/// Runs the controller until the future is dropped.
pub async fn run(client: Client, options: Options) {
    let (reader, primary) = options.primary::<Kany8sControlPlane>(&client);
    let (watches, triggers) = DynamicWatches::new(
        client.clone(),
        options.namespace.clone(),
        Probe {
            metrics: options.metrics.clone(),
            controller: metrics::CONTROL_PLANE,
        },
        crate::dynamic::same_name(),
        options.sync_period,
    );
    let recorder = options.recorder(&client);
    let context = Arc::new(Context::new(
        client.clone(),
        recorder,
        watches,
        options.metrics.clone(),
    ));
    let secrets = context.secrets.clone();

    let rgds: Api<DynamicObject> = Api::all_with(client.clone(), &rgd_resource());
    let by_rgd = reader.clone();
    let clusters: Api<Cluster> = options.api(&client);
    let by_cluster = reader.clone();
    let secret_api: Api<PartialObjectMeta<Secret>> = options.api(&client);
    let secret_events = watcher::watcher(secret_api, watcher::Config::default())
        .default_backoff()
        .touched_objects();
    Controller::for_stream(primary, reader)
        .watches_with(
            rgds,
            rgd_resource(),
            watcher::Config::default(),
            move |rgd| {
                let name = rgd.name_any();
                by_rgd
                    .state()
                    .into_iter()
                    .filter(|cp| {
                        cp.spec
                            .backend
                            .resource_graph_definition_ref
                            .as_ref()
                            .is_some_and(|r| r.name.trim() == name)
                    })
                    .map(|cp| ObjectRef::from(cp.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .watches_stream(crate::backend::cluster_events(clusters), move |cluster| {
            let namespace = cluster.namespace().unwrap_or_default();
            let uid = cluster.uid().unwrap_or_default();
            let named = cluster
                .spec
                .control_plane_ref
                .as_ref()
                .filter(|r| {
                    r.api_group == crate::api::CONTROL_PLANE_GROUP && r.kind == "Kany8sControlPlane"
                })
                .map(|r| r.name.clone());
            by_cluster
                .state()
                .into_iter()
                .filter(|cp| {
                    cp.namespace().as_deref() == Some(namespace.as_str())
                        && (named.as_deref() == Some(cp.name_any().as_str())
                            || cp.owner_references().iter().any(|o| o.uid == uid))
                })
                .map(|cp| ObjectRef::from(cp.as_ref()))
                .collect::<Vec<_>>()
        })
        .watches_stream(secret_events, move |secret| {
            let namespace = secret.namespace().unwrap_or_default();
            let dependents =
                reconcile::lock_index(&secrets).dependents(&namespace, &secret.name_any());
            dependents
                .into_iter()
                .map(|name| reconcile::by_name(&namespace, &name))
                .collect::<Vec<_>>()
        })
        // [CP-41]: the facade kind is watched statically, mapped by its controller owner.
        .owns(
            options.api::<Kany8sKubeadmControlPlane>(&client),
            watcher::Config::default(),
        )
        .reconcile_on(triggers)
        .with_config(controller::Config::default().concurrency(options.concurrency))
        .run(
            move |cp, ctx: Arc<Context>| {
                let metrics = options.metrics.clone();
                async move {
                    let reconcile = reconcile::reconcile(cp.clone(), ctx.clone());
                    crate::backend::instrumented(
                        metrics,
                        metrics::CONTROL_PLANE,
                        options.sync_period,
                        &ctx.backoff,
                        cp.as_ref(),
                        reconcile,
                    )
                    .await
                }
            },
            error_policy,
            context,
        )
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        })
        .await;
}
