//! When the rotator looks at a cluster again ([ROT-08]): shortly before the token expires, at
//! most every `--max-refresh-interval`, and after `--failure-backoff` while something is
//! missing. This timed requeue is the plugin's documented exception to event-driven
//! reconciliation: nothing in the API changes when a token ages.

use std::time::{Duration, SystemTime};

/// The refresh policy of `--refresh-before`, `--max-refresh-interval` and `--failure-backoff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Refresh this long before the token expires.
    pub refresh_before: Duration,
    /// Never wait longer than this.
    pub max_refresh: Duration,
    /// Wait this long while a prerequisite is missing or a token could not be made.
    pub failure_backoff: Duration,
    /// The wait when the refresh point has already passed.
    pub min_requeue: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            refresh_before: Duration::from_secs(5 * 60),
            max_refresh: Duration::from_secs(10 * 60),
            failure_backoff: Duration::from_secs(30),
            min_requeue: Duration::from_secs(15),
        }
    }
}

impl Policy {
    /// Zero fields take the defaults.
    pub fn with_defaults(self) -> Self {
        let defaults = Self::default();
        let or = |value: Duration, default: Duration| {
            if value.is_zero() { default } else { value }
        };
        Self {
            refresh_before: or(self.refresh_before, defaults.refresh_before),
            max_refresh: or(self.max_refresh, defaults.max_refresh),
            failure_backoff: or(self.failure_backoff, defaults.failure_backoff),
            min_requeue: or(self.min_requeue, defaults.min_requeue),
        }
    }

    /// The moment from which a token expiring at `expiration` is due for replacement.
    pub fn refresh_at(&self, expiration: SystemTime) -> SystemTime {
        let policy = self.with_defaults();
        expiration
            .checked_sub(policy.refresh_before)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }

    /// [ROT-08] `next(now, exp)`: no expiration → failure-backoff; past the refresh point →
    /// the minimum requeue; otherwise the time until the refresh point, capped at max-refresh.
    pub fn next(&self, now: SystemTime, expiration: Option<SystemTime>) -> Duration {
        let policy = self.with_defaults();
        let Some(expiration) = expiration.filter(|e| *e > SystemTime::UNIX_EPOCH) else {
            return policy.failure_backoff;
        };
        match self.refresh_at(expiration).duration_since(now) {
            Ok(until) if !until.is_zero() => until.min(policy.max_refresh),
            _ => policy.min_requeue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const MIN: u64 = 60;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
    }

    /// [ROT-08]: the spec's table, the boundaries and the real-token figure (9 min).
    #[rstest]
    #[case(Some(30 * MIN), 10 * MIN)]
    #[case(Some(8 * MIN), 3 * MIN)]
    #[case(Some(2 * MIN), 15)]
    #[case(Some(5 * MIN), 15)]
    #[case(Some(0), 15)]
    #[case(Some(14 * MIN), 9 * MIN)]
    #[case(Some(15 * MIN), 10 * MIN)]
    #[case(None, 30)]
    fn rot08_next(#[case] expires_in: Option<u64>, #[case] expected: u64) {
        let now = at(0);
        let expiration = expires_in.map(at);
        assert_eq!(
            Policy::default().next(now, expiration),
            Duration::from_secs(expected)
        );
    }

    /// [ROT-08]: a token that expired long ago, and the zero expiration.
    #[test]
    fn rot08_past_and_zero_expiration() {
        let policy = Policy::default();
        assert_eq!(policy.next(at(3600), Some(at(0))), Duration::from_secs(15));
        assert_eq!(
            policy.next(at(0), Some(SystemTime::UNIX_EPOCH)),
            Duration::from_secs(30)
        );
    }

    /// [ROT-08]: zero policy fields take the defaults (5m, 10m, 30s, 15s).
    #[test]
    fn rot08_zero_fields_take_defaults() {
        let zero = Policy {
            refresh_before: Duration::ZERO,
            max_refresh: Duration::ZERO,
            failure_backoff: Duration::ZERO,
            min_requeue: Duration::ZERO,
        };
        assert_eq!(zero.with_defaults(), Policy::default());
        assert_eq!(
            zero.next(at(0), Some(at(30 * MIN))),
            Duration::from_secs(600)
        );
        assert_eq!(zero.next(at(0), None), Duration::from_secs(30));
        let short = Policy {
            refresh_before: Duration::from_secs(13 * MIN + 58),
            max_refresh: Duration::from_secs(MIN),
            ..Policy::default()
        };
        assert_eq!(
            short.next(at(0), Some(at(14 * MIN))),
            Duration::from_secs(2)
        );
    }
}
