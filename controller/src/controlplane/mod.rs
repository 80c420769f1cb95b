//! The Kany8sControlPlane controller (provider.md §4): observe the control plane, its owner
//! Cluster, RGD, backend object and Secrets; decide the status purely; apply with SSA.

pub mod decide;
pub mod kubeconfig;
pub mod reconcile;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use crate::api::{Kany8sControlPlane, Kany8sKubeadmControlPlane};
use crate::cache::ClusterFeed;
use crate::capi::Cluster;
use crate::dynamic::{DynamicWatches, Probe};
use crate::metrics;
use crate::reconciler::queue::Lane;
use crate::reconciler::runtime::{Triggers, by_cluster, by_rgd, rgd_watch, run_controller};
use reconcile::Context;

pub use crate::manager::Options;

/// The RGD a control plane names.
fn rgd_name(cp: &Kany8sControlPlane) -> Option<&str> {
    cp.spec
        .backend
        .resource_graph_definition_ref
        .as_ref()
        .map(|r| r.name.as_str())
}

/// [CP-51]: the control plane a Cluster's `spec.controlPlaneRef` names.
fn named_by(cluster: &Cluster) -> Option<String> {
    cluster
        .spec
        .control_plane_ref
        .as_ref()
        .filter(|r| {
            r.api_group == crate::api::CONTROL_PLANE_GROUP && r.kind == "Kany8sControlPlane"
        })
        .map(|r| r.name.clone())
}

/// Runs the controller until the future is dropped.
pub async fn run(client: Client, options: Options, clusters: ClusterFeed) {
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
    let (rgd_cache, rgd_events) = rgd_watch(&client);
    let context = Arc::new(Context::new(
        client.clone(),
        clusters.store,
        Some(rgd_cache),
        recorder,
        watches,
        options.metrics.clone(),
    ));
    let secrets = context.secrets.clone();

    let secret_api: Api<PartialObjectMeta<Secret>> = options.api(&client);
    let secret_events = watcher::watcher(secret_api, watcher::Config::default())
        .default_backoff()
        .touched_objects();
    let facades = options.api::<Kany8sKubeadmControlPlane>(&client);
    let triggers = Triggers::default()
        .primary(primary)
        .watch(rgd_events, Lane::Normal, by_rgd(reader.clone(), rgd_name))
        .watch(
            clusters.events,
            Lane::Normal,
            by_cluster(reader.clone(), named_by),
        )
        // [KC-13]: the Secrets a control plane's kubeconfig step read; a source appearing is
        // progress.
        .watch(secret_events, Lane::Fast, move |secret| {
            let namespace = secret.namespace().unwrap_or_default();
            let dependents =
                reconcile::lock_index(&secrets).dependents(&namespace, &secret.name_any());
            dependents
                .into_iter()
                .map(|name| reconcile::by_name(&namespace, &name))
                .collect::<Vec<_>>()
        })
        // [CP-41]: the facade kind is watched statically, mapped by its controller owner.
        .owned(
            watcher::watcher(facades, watcher::Config::default())
                .default_backoff()
                .touched_objects(),
            Lane::Fast,
        )
        // [CP-55]: a backend object's status is progress.
        .refs(triggers, Lane::Fast);
    run_controller(
        reader,
        triggers,
        &options,
        metrics::CONTROL_PLANE,
        context,
        reconcile::reconcile,
    )
    .await;
}
