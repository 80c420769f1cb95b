//! The Kany8sCluster controller (provider.md §5): stub mode or a kro instance per Kany8sCluster,
//! observed through a watch on the instance kind; decide purely; apply with SSA.

pub mod decide;
pub mod reconcile;

use std::sync::Arc;

use kube::Client;

use crate::api::Kany8sCluster;
use crate::cache::ClusterFeed;
use crate::capi::Cluster;
use crate::dynamic::{DynamicWatches, Probe};
use crate::manager::Options;
use crate::metrics;
use crate::reconciler::queue::Lane;
use crate::reconciler::runtime::{Triggers, by_cluster, by_rgd, rgd_watch, run_controller};
use reconcile::Context;

/// The RGD a Kany8sCluster names.
fn rgd_name(ic: &Kany8sCluster) -> Option<&str> {
    ic.spec
        .backend
        .resource_graph_definition_ref
        .as_ref()
        .map(|r| r.name.as_str())
}

/// [IC-16]: the Kany8sCluster a Cluster's `spec.infrastructureRef` names.
fn named_by(cluster: &Cluster) -> Option<String> {
    cluster
        .spec
        .infrastructure_ref
        .as_ref()
        .filter(|r| reconcile::names_kany8s_cluster(&r.api_group, &r.kind))
        .map(|r| r.name.clone())
}

/// Runs the controller until the future is dropped.
pub async fn run(client: Client, options: Options, clusters: ClusterFeed) {
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
    let (rgd_cache, rgd_events) = rgd_watch(&client);
    let context = Arc::new(Context::new(
        client.clone(),
        clusters.store,
        Some(rgd_cache),
        recorder,
        watches,
    ));
    let triggers = Triggers::default()
        .primary(primary)
        .watch(rgd_events, Lane::Normal, by_rgd(reader.clone(), rgd_name))
        // [IC-16]: the Kany8sCluster named by spec.infrastructureRef and those it owns.
        .watch(
            clusters.events,
            Lane::Normal,
            by_cluster(reader.clone(), named_by),
        )
        // [CP-55]: a backend object's status is progress.
        .refs(triggers, Lane::Fast);
    run_controller(
        reader,
        triggers,
        &options,
        metrics::INFRASTRUCTURE,
        context,
        reconcile::reconcile,
    )
    .await;
}
