//! The manager's Prometheus metrics ([MET-01], [MET-02]): controller-runtime-compatible names
//! so existing dashboards work, plus the `kany8s_*` ones, and the reconcile wrapper that
//! records them.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::reconciler::Action;
use futures::FutureExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Controller label values ([MET-01]).
pub const CONTROL_PLANE: &str = "kany8scontrolplane";
pub const INFRASTRUCTURE: &str = "infrastructure-kany8scluster";
pub const KUBEADM: &str = "controlplane-kany8skubeadmcontrolplane";

/// controller-runtime's reconcile-time buckets.
const BUCKETS: [f64; 40] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0,
    25.0, 30.0, 40.0, 50.0, 60.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabel {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    controller: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NameLabel {
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    git_commit: String,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Every metric of the manager, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconcile_total: Family<ResultLabels, Counter>,
    reconcile_errors: Family<ControllerLabel, Counter>,
    reconcile_time: Family<ControllerLabel, Histogram, fn() -> Histogram>,
    reconcile_panics: Family<ControllerLabel, Counter>,
    max_concurrent: Family<ControllerLabel, Gauge>,
    active_workers: Family<ControllerLabel, Gauge>,
    leader: Family<NameLabel, Gauge>,
    dynamic_watches: Family<ControllerLabel, Gauge>,
    dynamic_watch_start_failures: Family<ControllerLabel, Counter>,
    channel_full: Counter,
    kubeconfig_writes: Family<ControllerLabel, Counter>,
}

fn controller(name: &str) -> ControllerLabel {
    ControllerLabel {
        controller: name.to_string(),
    }
}

impl Metrics {
    /// The registry with every family of `controllers` pre-initialised to 0 ([MET-01]).
    pub fn new(controllers: &[&str], concurrency: u16, lease: Option<&str>) -> Self {
        let mut metrics = Self {
            reconcile_total: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_time: Family::new_with_constructor(histogram as fn() -> Histogram),
            reconcile_panics: Family::default(),
            max_concurrent: Family::default(),
            active_workers: Family::default(),
            leader: Family::default(),
            dynamic_watches: Family::default(),
            dynamic_watch_start_failures: Family::default(),
            channel_full: Counter::default(),
            kubeconfig_writes: Family::default(),
            registry: Registry::default(),
        };
        metrics.registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            metrics.reconcile_total.clone(),
        );
        metrics.registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            metrics.reconcile_errors.clone(),
        );
        metrics.registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            metrics.reconcile_time.clone(),
        );
        metrics.registry.register(
            "controller_runtime_reconcile_panics",
            "Total number of reconciliation panics per controller",
            metrics.reconcile_panics.clone(),
        );
        metrics.registry.register(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            metrics.max_concurrent.clone(),
        );
        metrics.registry.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            metrics.active_workers.clone(),
        );
        metrics.registry.register(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master",
            metrics.leader.clone(),
        );
        metrics.registry.register(
            "kany8s_dynamic_watches",
            "Running dynamic backend watches per controller",
            metrics.dynamic_watches.clone(),
        );
        metrics.registry.register(
            "kany8s_dynamic_watch_start_failures",
            "Dynamic backend watches that failed to start",
            metrics.dynamic_watch_start_failures.clone(),
        );
        metrics.registry.register(
            "kany8s_dynamicwatch_channel_full",
            "Dynamic watch events coalesced with one already pending",
            metrics.channel_full.clone(),
        );
        metrics.registry.register(
            "kany8s_kubeconfig_secret_writes",
            "Writes of <cluster>-kubeconfig Secrets",
            metrics.kubeconfig_writes.clone(),
        );
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
                git_commit: option_env!("KANY8S_GIT_COMMIT")
                    .unwrap_or("unknown")
                    .to_string(),
            })
            .set(1);
        metrics
            .registry
            .register("kany8s_build_info", "Build identification", build);
        for name in controllers {
            let label = controller(name);
            for result in ["success", "error", "requeue", "requeue_after"] {
                let _ = metrics.reconcile_total.get_or_create(&ResultLabels {
                    controller: name.to_string(),
                    result: result.to_string(),
                });
            }
            let _ = metrics.reconcile_errors.get_or_create(&label);
            let _ = metrics.reconcile_time.get_or_create(&label);
            let _ = metrics.reconcile_panics.get_or_create(&label);
            metrics
                .max_concurrent
                .get_or_create(&label)
                .set(i64::from(concurrency));
            let _ = metrics.active_workers.get_or_create(&label);
            let _ = metrics.dynamic_watches.get_or_create(&label);
            let _ = metrics.dynamic_watch_start_failures.get_or_create(&label);
            let _ = metrics.kubeconfig_writes.get_or_create(&label);
        }
        if let Some(lease) = lease {
            metrics.set_leader(lease, false);
        }
        metrics
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn set_leader(&self, lease: &str, leading: bool) {
        self.leader
            .get_or_create(&NameLabel {
                name: lease.to_string(),
            })
            .set(i64::from(leading));
    }

    pub fn set_dynamic_watches(&self, name: &str, running: usize) {
        self.dynamic_watches
            .get_or_create(&controller(name))
            .set(i64::try_from(running).unwrap_or(i64::MAX));
    }

    pub fn dynamic_watch_start_failed(&self, name: &str) {
        self.dynamic_watch_start_failures
            .get_or_create(&controller(name))
            .inc();
    }

    pub fn channel_full(&self) {
        self.channel_full.inc();
    }

    pub fn kubeconfig_secret_written(&self, name: &str) {
        self.kubeconfig_writes
            .get_or_create(&controller(name))
            .inc();
    }

    /// Runs one reconcile of controller `name`, recording its duration, result, panics and the
    /// workers in flight; a successful reconcile that awaits a change is re-enqueued after the
    /// sync period ([CP-53]).
    pub async fn reconcile<E, F>(
        self: Arc<Self>,
        name: &'static str,
        sync_period: Duration,
        object: impl std::fmt::Display,
        reconcile: F,
    ) -> Result<Action, E>
    where
        F: Future<Output = Result<Action, E>>,
        E: From<Panicked>,
    {
        let label = controller(name);
        self.active_workers.get_or_create(&label).inc();
        let started = Instant::now();
        let outcome = AssertUnwindSafe(reconcile).catch_unwind().await;
        self.active_workers.get_or_create(&label).dec();
        self.reconcile_time
            .get_or_create(&label)
            .observe(started.elapsed().as_secs_f64());
        let (result, outcome) = match outcome {
            Ok(Ok(action)) if action == Action::await_change() => {
                ("success", Ok(Action::requeue(jittered(sync_period))))
            }
            Ok(Ok(action)) if action == Action::requeue(Duration::ZERO) => ("requeue", Ok(action)),
            Ok(Ok(action)) => ("requeue_after", Ok(action)),
            Ok(Err(e)) => ("error", Err(e)),
            Err(_) => {
                self.reconcile_panics.get_or_create(&label).inc();
                tracing::error!(controller = name, "reconcile panicked");
                ("error", Err(E::from(Panicked)))
            }
        };
        if result == "error" {
            self.reconcile_errors.get_or_create(&label).inc();
        }
        tracing::debug!(
            controller = name,
            %object,
            result,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "reconciled"
        );
        self.reconcile_total
            .get_or_create(&ResultLabels {
                controller: name.to_string(),
                result: result.to_string(),
            })
            .inc();
        outcome
    }
}

/// A reconcile panicked; it is reported as a failed reconcile and retried with backoff.
#[derive(Debug, thiserror::Error)]
#[error("reconcile panicked")]
pub struct Panicked;

/// `period` ± 10 %, spread by the clock so resyncs of many objects do not line up.
fn jittered(period: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // A factor in [0.9, 1.1).
    let factor = 0.9 + f64::from(nanos % 1000) / 5000.0;
    period.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[derive(Debug)]
    struct Failed;
    impl From<Panicked> for Failed {
        fn from(_: Panicked) -> Self {
            Failed
        }
    }

    fn sample(text: &str, line_start: &str) -> f64 {
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no sample {line_start} in\n{text}"))
    }

    /// [MET-01]: names, labels and pre-initialised zeros; results classified as controller-runtime does.
    #[tokio::test]
    async fn met01_reconcile_metrics() {
        let metrics = Arc::new(Metrics::new(&[CONTROL_PLANE], 10, Some("lease-a")));
        let text = metrics.encode();
        for result in ["success", "error", "requeue", "requeue_after"] {
            let line = format!(
                "controller_runtime_reconcile_total{{controller=\"kany8scontrolplane\",result=\"{result}\"}}"
            );
            assert_eq!(sample(&text, &line), 0.0);
        }
        assert_eq!(
            sample(
                &text,
                "controller_runtime_max_concurrent_reconciles{controller=\"kany8scontrolplane\"}"
            ),
            10.0
        );
        assert_eq!(
            sample(&text, "leader_election_master_status{name=\"lease-a\"}"),
            0.0
        );
        assert!(text.contains("controller_runtime_reconcile_time_seconds_bucket{le=\"60.0\",controller=\"kany8scontrolplane\"}"), "{text}");
        assert!(text.contains("kany8s_build_info{"), "{text}");

        let sync = Duration::from_secs(600);
        let resync = metrics
            .clone()
            .reconcile(CONTROL_PLANE, sync, "ns/x", async {
                Ok::<_, Failed>(Action::await_change())
            })
            .await
            .unwrap();
        assert_ne!(
            resync,
            Action::await_change(),
            "await_change becomes the periodic resync"
        );
        metrics
            .clone()
            .reconcile(CONTROL_PLANE, sync, "ns/x", async {
                Ok::<_, Failed>(Action::requeue(Duration::from_secs(30)))
            })
            .await
            .unwrap();
        let failed = metrics
            .clone()
            .reconcile(CONTROL_PLANE, sync, "ns/x", async {
                Err::<Action, _>(Failed)
            })
            .await;
        assert!(failed.is_err());
        let panicked = metrics
            .clone()
            .reconcile(CONTROL_PLANE, sync, "ns/x", async {
                if sync > Duration::ZERO {
                    panic!("boom");
                }
                Ok::<_, Failed>(Action::await_change())
            })
            .await;
        assert!(panicked.is_err());
        let text = metrics.encode();
        let total = |r: &str| {
            sample(
                &text,
                &format!(
                    "controller_runtime_reconcile_total{{controller=\"kany8scontrolplane\",result=\"{r}\"}}"
                ),
            )
        };
        assert_eq!(
            (total("success"), total("requeue_after"), total("error")),
            (1.0, 1.0, 2.0)
        );
        assert_eq!(
            sample(
                &text,
                "controller_runtime_reconcile_errors_total{controller=\"kany8scontrolplane\"}"
            ),
            2.0
        );
        assert_eq!(
            sample(
                &text,
                "controller_runtime_reconcile_panics_total{controller=\"kany8scontrolplane\"}"
            ),
            1.0
        );
        assert_eq!(
            sample(
                &text,
                "controller_runtime_reconcile_time_seconds_count{controller=\"kany8scontrolplane\"}"
            ),
            4.0
        );
        assert_eq!(
            sample(
                &text,
                "controller_runtime_active_workers{controller=\"kany8scontrolplane\"}"
            ),
            0.0
        );
    }

    #[test]
    fn resync_jitter_is_within_ten_percent() {
        let period = Duration::from_secs(600);
        let j = jittered(period);
        assert!(
            j >= Duration::from_secs(540) && j < Duration::from_secs(660),
            "{j:?}"
        );
    }
}
