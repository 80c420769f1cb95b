//! The Kany8sCluster controller (provider.md §5): stub mode or a kro instance per Kany8sCluster,
//! observed through a watch on the instance kind; decide purely; apply with SSA.

pub mod decide;
pub mod reconcile;

use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};

use crate::api::Kany8sCluster;
use crate::backend::{Error, rgd_resource};
use crate::capi::Cluster;
use crate::dynamic::{DynamicWatches, Probe};
use crate::manager::Options;
use crate::metrics;
use reconcile::Context;

/// [CP-54] as for the control plane: per-object error backoff.
fn error_policy(ic: Arc<Kany8sCluster>, error: &Error, ctx: Arc<Context>) -> Action {
    crate::backend::retry_later(ic.as_ref(), error, &ctx.backoff)
}

/// Runs the controller until the future is dropped.
pub async fn run(client: Client, options: Options) {
    let (reader, primary) = options.primary::<Kany8sCluster>(&client);
    let (watches, triggers) = DynamicWatches::new(
        client.clone(),
        options.namespace.clone(),
        Probe {
            metrics: options.metrics.clone(),
            controller: metrics::INFRASTRUCTURE,
        },
        crate::dynamic::same_name(),
        options.sync_period,
    );
    let recorder = options.recorder(&client);
    let context = Arc::new(Context::new(client.clone(), recorder, watches));
    let rgds: Api<DynamicObject> = Api::all_with(client.clone(), &rgd_resource());
    let by_rgd = reader.clone();
    let clusters: Api<Cluster> = options.api(&client);
    let by_cluster = reader.clone();
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
                    .filter(|ic| {
                        ic.spec
                            .backend
                            .resource_graph_definition_ref
                            .as_ref()
                            .is_some_and(|r| r.name.trim() == name)
                    })
                    .map(|ic| ObjectRef::from(ic.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        // [IC-16]: the Kany8sCluster named by spec.infrastructureRef and those it owns.
        .watches_stream(crate::backend::cluster_events(clusters), move |cluster| {
            let namespace = cluster.namespace().unwrap_or_default();
            let uid = cluster.uid().unwrap_or_default();
            let named = cluster
                .spec
                .infrastructure_ref
                .as_ref()
                .filter(|r| reconcile::names_kany8s_cluster(&r.api_group, &r.kind))
                .map(|r| r.name.clone());
            by_cluster
                .state()
                .into_iter()
                .filter(|ic| {
                    ic.namespace().as_deref() == Some(namespace.as_str())
                        && (named.as_deref() == Some(ic.name_any().as_str())
                            || ic.owner_references().iter().any(|o| o.uid == uid))
                })
                .map(|ic| ObjectRef::from(ic.as_ref()))
                .collect::<Vec<_>>()
        })
        .reconcile_on(triggers)
        .with_config(controller::Config::default().concurrency(options.concurrency))
        .run(
            move |ic, ctx: Arc<Context>| {
                let metrics = options.metrics.clone();
                async move {
                    let reconcile = reconcile::reconcile(ic.clone(), ctx.clone());
                    crate::backend::instrumented(
                        metrics,
                        metrics::INFRASTRUCTURE,
                        options.sync_period,
                        &ctx.backoff,
                        ic.as_ref(),
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
