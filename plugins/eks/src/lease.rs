//! Leader election on a `coordination.k8s.io/v1` Lease ([ROT-01]: `f6b95f95.cluster.x-k8s.io`),
//! client-go's rules: take the Lease when it is free, expired or ours; renew every retry period;
//! stop leading when a renewal has not succeeded within the renew deadline. The rule itself is
//! the pure [`claim`]; [`Elector`] does the reads and writes.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};

use crate::metrics::Metrics;

/// Who competes for which Lease, and the timings.
#[derive(Clone, Debug)]
pub struct Election {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Election {
    /// controller-runtime's timings: 15 s lease, 10 s renew deadline, 2 s retry period.
    pub fn new(name: &str, namespace: &str, identity: &str) -> Self {
        Self {
            name: name.to_string(),
            namespace: namespace.to_string(),
            identity: identity.to_string(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// The Lease spec `identity` may write at `now`, or `None` while another holder's is valid.
pub fn claim(
    current: Option<&LeaseSpec>,
    election: &Election,
    now: Timestamp,
) -> Option<LeaseSpec> {
    let seconds = i32::try_from(election.lease_duration.as_secs()).unwrap_or(i32::MAX);
    let stamp = Some(MicroTime(now));
    let Some(current) = current else {
        return Some(LeaseSpec {
            holder_identity: Some(election.identity.clone()),
            lease_duration_seconds: Some(seconds),
            acquire_time: stamp.clone(),
            renew_time: stamp,
            lease_transitions: Some(0),
            ..LeaseSpec::default()
        });
    };
    let holder = current.holder_identity.as_deref().unwrap_or_default();
    let ours = holder == election.identity;
    if !ours && !holder.is_empty() {
        let valid_for = current
            .lease_duration_seconds
            .map_or(election.lease_duration, |s| {
                Duration::from_secs(u64::try_from(s).unwrap_or(0))
            });
        let expired = current.renew_time.as_ref().is_none_or(|renewed| {
            now.duration_since(renewed.0).as_secs_f64() > valid_for.as_secs_f64()
        });
        if !expired {
            return None;
        }
    }
    let mut next = current.clone();
    next.holder_identity = Some(election.identity.clone());
    next.lease_duration_seconds = Some(seconds);
    next.renew_time = stamp.clone();
    if !ours {
        next.acquire_time = stamp;
        next.lease_transitions = Some(current.lease_transitions.unwrap_or(0) + 1);
    }
    Some(next)
}

/// Why leading stopped other than by shutdown.
#[derive(Debug, thiserror::Error)]
#[error("leader election lost: the lease {0} was not renewed within the renew deadline")]
pub struct LeaseLost(pub String);

/// Runs work only while holding the Lease.
#[derive(Debug)]
pub struct Elector {
    leases: Api<Lease>,
    election: Election,
}

impl Elector {
    pub fn new(client: kube::Client, election: Election) -> Self {
        Self {
            leases: Api::namespaced(client, &election.namespace),
            election,
        }
    }

    /// One read and, when [`claim`] allows, one create or resourceVersion-guarded replace.
    async fn try_lead(&self) -> Result<bool, kube::Error> {
        let current = self.leases.get_opt(&self.election.name).await?;
        let Some(spec) = claim(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &self.election,
            Timestamp::now(),
        ) else {
            return Ok(false);
        };
        match current {
            Some(mut lease) => {
                lease.spec = Some(spec);
                self.leases
                    .replace(&self.election.name, &PostParams::default(), &lease)
                    .await?;
            }
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.election.name.clone()),
                        namespace: Some(self.election.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                self.leases.create(&PostParams::default(), &lease).await?;
            }
        }
        Ok(true)
    }

    /// Hands the Lease over on shutdown so a standby takes over at once.
    async fn release(&self) {
        let Ok(Some(mut lease)) = self.leases.get_opt(&self.election.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.election.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        if let Err(error) = self
            .leases
            .replace(&self.election.name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(%error, lease = %self.election.name, "releasing the lease failed");
        }
    }

    /// Waits for the Lease, then runs `work` while renewing it. Returns on `shutdown` (after
    /// releasing the Lease), when `work` ends, or with [`LeaseLost`].
    pub async fn lead(
        &self,
        work: impl Future<Output = ()>,
        shutdown: impl Future<Output = ()>,
        metrics: &Metrics,
    ) -> Result<(), LeaseLost> {
        let name = &self.election.name;
        futures::pin_mut!(shutdown);
        loop {
            let leading = tokio::select! {
                () = &mut shutdown => return Ok(()),
                attempt = self.try_lead() => attempt,
            };
            match leading {
                Ok(true) => break,
                Ok(false) => {}
                Err(error) => tracing::debug!(%error, lease = %name, "acquiring the lease"),
            }
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(self.election.retry_period) => {}
            }
        }
        tracing::info!(lease = %name, identity = %self.election.identity, "became leader");
        metrics.set_leader(name, true);
        futures::pin_mut!(work);
        let mut renewed = tokio::time::Instant::now();
        let outcome = loop {
            tokio::select! {
                () = &mut shutdown => break Ok(()),
                () = &mut work => break Ok(()),
                () = tokio::time::sleep(self.election.retry_period) => match self.try_lead().await {
                    Ok(true) => renewed = tokio::time::Instant::now(),
                    Ok(false) => break Err(LeaseLost(name.clone())),
                    Err(error) => {
                        tracing::warn!(%error, lease = %name, "renewing the lease failed");
                        if renewed.elapsed() > self.election.renew_deadline {
                            break Err(LeaseLost(name.clone()));
                        }
                    }
                },
            }
        };
        metrics.set_leader(name, false);
        if outcome.is_ok() {
            self.release().await;
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn election(identity: &str) -> Election {
        Election::new("f6b95f95.cluster.x-k8s.io", "kany8s-eks-system", identity)
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    /// [ROT-01]: free Lease → taken; a valid foreign holder → wait; expired → taken over with
    /// a transition; ours → renewed without one.
    #[test]
    fn rot01_lease_claims() {
        let a = election("a");
        let first = claim(None, &a, at(0)).unwrap();
        assert_eq!(first.holder_identity.as_deref(), Some("a"));
        assert_eq!(first.lease_duration_seconds, Some(15));
        assert_eq!(first.lease_transitions, Some(0));
        let b = election("b");
        assert_eq!(claim(Some(&first), &b, at(10)), None);
        let taken = claim(Some(&first), &b, at(16)).unwrap();
        assert_eq!(taken.holder_identity.as_deref(), Some("b"));
        assert_eq!(taken.lease_transitions, Some(1));
        assert_eq!(taken.acquire_time, Some(MicroTime(at(16))));
        let renewed = claim(Some(&taken), &b, at(18)).unwrap();
        assert_eq!(renewed.lease_transitions, Some(1));
        assert_eq!(renewed.acquire_time, Some(MicroTime(at(16))));
        assert_eq!(renewed.renew_time, Some(MicroTime(at(18))));
        let released = LeaseSpec {
            holder_identity: None,
            ..renewed
        };
        assert!(claim(Some(&released), &a, at(19)).is_some());
    }
}
