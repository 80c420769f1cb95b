//! The server's clock: wall time at start plus tokio's monotonic time since, so tests with
//! paused tokio time control every timestamp and delay.

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use tokio::time::Instant;

#[derive(Clone, Debug)]
pub struct Clock {
    base: Timestamp,
    start: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self {
            base: Timestamp::now(),
            start: Instant::now(),
        }
    }
}

impl Clock {
    /// A clock that reads `base` now.
    pub fn starting_at(base: Timestamp) -> Self {
        Self {
            base,
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> Timestamp {
        let elapsed =
            SignedDuration::try_from(self.start.elapsed()).unwrap_or(SignedDuration::ZERO);
        self.base.checked_add(elapsed).unwrap_or(self.base)
    }

    /// RFC 3339 at second precision in UTC (`2026-01-02T03:04:05Z`), as Kubernetes writes
    /// timestamps.
    pub fn timestamp(&self) -> String {
        format_seconds(self.now())
    }
}

pub fn format_seconds(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [API-17] T28: timestamps are second precision, UTC, `Z`.
    #[test]
    fn timestamps_are_second_precision_utc() {
        let clock = Clock::starting_at("2026-01-02T03:04:05.678Z".parse().unwrap());
        let ts = clock.timestamp();
        assert!(
            regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
                .unwrap()
                .is_match(&ts),
            "{ts}"
        );
        assert!(ts.starts_with("2026-01-02T03:04:0"));
    }
}
