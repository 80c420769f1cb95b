//! The plugins' Prometheus metrics ([PLG-08]): the `kany8s_eks_plugin_*` families and the
//! controller-runtime set of [MET-01] (reconcile totals, errors, time, panics, workers,
//! leader status), each pre-initialised to 0 for the plugin's controller label.

use std::time::SystemTime;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// controller-runtime's reconcile-time buckets ([MET-01]).
const RECONCILE_BUCKETS: [f64; 40] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0,
    25.0, 30.0, 40.0, 50.0, 60.0,
];

/// The results controller-runtime counts.
pub const RESULTS: [&str; 4] = ["success", "error", "requeue", "requeue_after"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Controller {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerResult {
    controller: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerResource {
    controller: String,
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Lease {
    name: String,
}

fn reconcile_histogram() -> Histogram {
    Histogram::new(RECONCILE_BUCKETS)
}

/// Every metric of one plugin process.
#[derive(Debug)]
pub struct Metrics {
    controller: Controller,
    registry: Registry,
    reconcile_total: Family<ControllerResult, Counter>,
    reconcile_errors: Family<Controller, Counter>,
    reconcile_time: Family<Controller, Histogram, fn() -> Histogram>,
    reconcile_panics: Family<Controller, Counter>,
    active_workers: Family<Controller, Gauge>,
    leader: Family<Lease, Gauge>,
    plugin_errors: Family<Controller, Counter>,
    token_failures: Family<Controller, Counter>,
    ownership_conflicts: Family<ControllerResource, Counter>,
    last_sync: Family<Controller, Gauge>,
}

impl Metrics {
    /// The registry for `controller`, every family pre-initialised ([MET-01]).
    pub fn new(controller: &str, concurrency: u16, lease: Option<&str>) -> Self {
        let label = Controller {
            controller: controller.to_string(),
        };
        let mut registry = Registry::default();
        let reconcile_total = Family::<ControllerResult, Counter>::default();
        let reconcile_errors = Family::<Controller, Counter>::default();
        let reconcile_time = Family::new_with_constructor(reconcile_histogram as fn() -> Histogram);
        let reconcile_panics = Family::<Controller, Counter>::default();
        let max_concurrent = Family::<Controller, Gauge>::default();
        let active_workers = Family::<Controller, Gauge>::default();
        let leader = Family::<Lease, Gauge>::default();
        let plugin_errors = Family::<Controller, Counter>::default();
        let token_failures = Family::<Controller, Counter>::default();
        let ownership_conflicts = Family::<ControllerResource, Counter>::default();
        let last_sync = Family::<Controller, Gauge>::default();
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            reconcile_total.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            reconcile_errors.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            reconcile_time.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_panics",
            "Total number of reconciliation panics per controller",
            reconcile_panics.clone(),
        );
        registry.register(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            max_concurrent.clone(),
        );
        registry.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            active_workers.clone(),
        );
        registry.register(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master",
            leader.clone(),
        );
        registry.register(
            "kany8s_eks_plugin_reconcile_errors",
            "Reconciles of an EKS plugin that failed",
            plugin_errors.clone(),
        );
        registry.register(
            "kany8s_eks_plugin_token_generation_failures",
            "EKS tokens that could not be generated",
            token_failures.clone(),
        );
        registry.register(
            "kany8s_eks_plugin_ownership_conflicts",
            "Objects left untouched because another owner manages them",
            ownership_conflicts.clone(),
        );
        registry.register(
            "kany8s_eks_plugin_last_successful_sync_unix_seconds",
            "When an EKS plugin last reconciled a cluster completely",
            last_sync.clone(),
        );
        for result in RESULTS {
            let _ = reconcile_total.get_or_create(&ControllerResult {
                controller: controller.to_string(),
                result: result.to_string(),
            });
        }
        let _ = reconcile_errors.get_or_create(&label);
        let _ = reconcile_time.get_or_create(&label);
        let _ = reconcile_panics.get_or_create(&label);
        max_concurrent
            .get_or_create(&label)
            .set(i64::from(concurrency));
        let _ = active_workers.get_or_create(&label);
        let _ = plugin_errors.get_or_create(&label);
        let _ = token_failures.get_or_create(&label);
        let _ = ownership_conflicts.get_or_create(&ControllerResource {
            controller: controller.to_string(),
            resource: "Secret".into(),
        });
        let _ = last_sync.get_or_create(&label);
        if let Some(lease) = lease {
            leader
                .get_or_create(&Lease {
                    name: lease.to_string(),
                })
                .set(0);
        }
        Self {
            controller: label,
            registry,
            reconcile_total,
            reconcile_errors,
            reconcile_time,
            reconcile_panics,
            active_workers,
            leader,
            plugin_errors,
            token_failures,
            ownership_conflicts,
            last_sync,
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// One finished reconcile: its result ([`RESULTS`]) and duration.
    pub fn reconciled(&self, result: &str, seconds: f64) {
        self.reconcile_total
            .get_or_create(&ControllerResult {
                controller: self.controller.controller.clone(),
                result: result.to_string(),
            })
            .inc();
        self.reconcile_time
            .get_or_create(&self.controller)
            .observe(seconds);
        if result == "error" {
            self.reconcile_errors.get_or_create(&self.controller).inc();
            self.plugin_errors.get_or_create(&self.controller).inc();
        }
    }

    pub fn panicked(&self) {
        self.reconcile_panics.get_or_create(&self.controller).inc();
    }

    /// A reconcile started (`+1`) or ended (`-1`).
    pub fn workers(&self, delta: i64) {
        self.active_workers
            .get_or_create(&self.controller)
            .inc_by(delta);
    }

    pub fn token_generation_failed(&self) {
        self.token_failures.get_or_create(&self.controller).inc();
    }

    pub fn ownership_conflict(&self, resource: &str) {
        self.ownership_conflicts
            .get_or_create(&ControllerResource {
                controller: self.controller.controller.clone(),
                resource: resource.to_string(),
            })
            .inc();
    }

    pub fn synced(&self, at: SystemTime) {
        let seconds = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.last_sync.get_or_create(&self.controller).set(seconds);
    }

    pub fn set_leader(&self, lease: &str, leading: bool) {
        self.leader
            .get_or_create(&Lease {
                name: lease.to_string(),
            })
            .set(i64::from(leading));
    }

    /// The value of one sample line `name{labels}` (tests and figures).
    pub fn sample(&self, line_start: &str) -> Option<f64> {
        self.encode()
            .lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

/// Runs one reconcile under the metrics of [MET-01]/[PLG-08]: duration, result, workers,
/// panics (a panic is a failed reconcile, `panicked()` its error, retried).
pub async fn instrumented<E>(
    metrics: &Metrics,
    work: impl std::future::Future<Output = Result<kube::runtime::controller::Action, E>>,
    panicked: impl FnOnce() -> E,
) -> Result<kube::runtime::controller::Action, E> {
    use futures::FutureExt;
    use kube::runtime::controller::Action;
    metrics.workers(1);
    let started = std::time::Instant::now();
    let outcome = std::panic::AssertUnwindSafe(work).catch_unwind().await;
    metrics.workers(-1);
    let outcome = outcome.unwrap_or_else(|_| {
        metrics.panicked();
        tracing::error!("reconcile panicked");
        Err(panicked())
    });
    let result = match &outcome {
        Err(_) => "error",
        Ok(action) if *action == Action::await_change() => "success",
        Ok(action) if *action == Action::requeue(std::time::Duration::ZERO) => "requeue",
        Ok(_) => "requeue_after",
    };
    metrics.reconciled(result, started.elapsed().as_secs_f64());
    outcome
}

/// A failed reconcile of `cluster`: logged, retried after `backoff`.
pub fn retry_after(
    cluster: &crate::cluster::Cluster,
    error: &dyn std::fmt::Display,
    backoff: std::time::Duration,
) -> kube::runtime::controller::Action {
    use kube::ResourceExt;
    tracing::warn!(
        %error,
        namespace = cluster.namespace().unwrap_or_default(),
        cluster = cluster.name_any(),
        "reconcile failed"
    );
    kube::runtime::controller::Action::requeue(backoff)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const C: &str = "controller=\"eks-kubeconfig-rotator\"";

    /// [PLG-08], [MET-01]: names, labels, zeros at start, and the counters moving.
    #[test]
    fn plg08_metric_families() {
        let metrics = Metrics::new(
            "eks-kubeconfig-rotator",
            1,
            Some("f6b95f95.cluster.x-k8s.io"),
        );
        for line in [
            format!("kany8s_eks_plugin_reconcile_errors_total{{{C}}}"),
            format!("kany8s_eks_plugin_token_generation_failures_total{{{C}}}"),
            format!("kany8s_eks_plugin_ownership_conflicts_total{{{C},resource=\"Secret\"}}"),
            format!("kany8s_eks_plugin_last_successful_sync_unix_seconds{{{C}}}"),
            format!("controller_runtime_reconcile_total{{{C},result=\"requeue_after\"}}"),
            format!("controller_runtime_reconcile_errors_total{{{C}}}"),
            format!("controller_runtime_reconcile_panics_total{{{C}}}"),
            format!("controller_runtime_active_workers{{{C}}}"),
            "leader_election_master_status{name=\"f6b95f95.cluster.x-k8s.io\"}".to_string(),
        ] {
            assert_eq!(metrics.sample(&line), Some(0.0), "{line}");
        }
        assert_eq!(
            metrics.sample(&format!(
                "controller_runtime_max_concurrent_reconciles{{{C}}}"
            )),
            Some(1.0)
        );
        metrics.reconciled("error", 0.01);
        metrics.reconciled("requeue_after", 0.01);
        metrics.token_generation_failed();
        metrics.ownership_conflict("Secret");
        metrics.synced(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1234));
        metrics.set_leader("f6b95f95.cluster.x-k8s.io", true);
        for (line, value) in [
            (
                format!("kany8s_eks_plugin_reconcile_errors_total{{{C}}}"),
                1.0,
            ),
            (
                format!("controller_runtime_reconcile_errors_total{{{C}}}"),
                1.0,
            ),
            (
                format!("controller_runtime_reconcile_total{{{C},result=\"requeue_after\"}}"),
                1.0,
            ),
            (
                format!("kany8s_eks_plugin_token_generation_failures_total{{{C}}}"),
                1.0,
            ),
            (
                format!("kany8s_eks_plugin_ownership_conflicts_total{{{C},resource=\"Secret\"}}"),
                1.0,
            ),
            (
                format!("kany8s_eks_plugin_last_successful_sync_unix_seconds{{{C}}}"),
                1234.0,
            ),
            (
                "leader_election_master_status{name=\"f6b95f95.cluster.x-k8s.io\"}".to_string(),
                1.0,
            ),
            (
                format!("controller_runtime_reconcile_time_seconds_count{{{C}}}"),
                2.0,
            ),
        ] {
            assert_eq!(metrics.sample(&line), Some(value), "{line}");
        }
    }
}
