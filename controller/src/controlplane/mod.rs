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

/// The Secrets' metadata ([KC-13]): a cache of their resourceVersions only (what the kubeconfig
/// step compares), and the stream of changed Secrets.
fn secret_watch(
    options: &Options,
    client: &Client,
) -> (
    reconcile::SecretVersions,
    impl futures::Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>> + Send + use<>,
) {
    use futures::StreamExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    let api: Api<PartialObjectMeta<Secret>> = options.api(client);
    let writer = kube::runtime::reflector::store::Writer::default();
    let listed = Arc::new(AtomicBool::new(false));
    let versions = reconcile::SecretVersions {
        store: writer.as_reader(),
        listed: listed.clone(),
    };
    let events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|secret| {
            let meta = &mut secret.metadata;
            *meta = kube::api::ObjectMeta {
                name: meta.name.take(),
                namespace: meta.namespace.take(),
                resource_version: meta.resource_version.take(),
                ..Default::default()
            };
        })
        .reflect(writer)
        .inspect(move |event| {
            if matches!(event, Ok(watcher::Event::InitDone)) {
                listed.store(true, Ordering::Release);
            }
        })
        .touched_objects();
    (versions, events)
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
    let (secret_versions, secret_events) = secret_watch(&options, &client);
    let context = Arc::new(Context::new(
        client.clone(),
        clusters.store,
        Some(rgd_cache),
        recorder,
        watches,
        options.metrics.clone(),
        secret_versions,
    ));
    let secrets = context.secrets.clone();

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
