//! Fault injection: injected write failures, added latency, dropped watches and forced 410s.
//! Deterministic (seeded) and off by default.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use http::Method;
use tokio::sync::Notify;

use crate::status::ApiError;

#[derive(Debug, Default)]
struct State {
    /// Fail the write with this ordinal (1-based) with this code.
    fail_nth: Option<(u64, u16)>,
    /// Probabilities of an injected 409 and 500 per write.
    conflict_ratio: f64,
    error_ratio: f64,
    writes: u64,
    latency: Duration,
    expire_next: HashSet<String>,
    rng: u64,
}

/// The fault knobs of one server.
#[derive(Debug)]
pub struct Faults {
    state: Mutex<State>,
    drop_watches: Arc<Notify>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                rng: 0x9E37_79B9_7F4A_7C15,
                ..State::default()
            }),
            drop_watches: Arc::new(Notify::new()),
        }
    }
}

fn injected(code: u16) -> ApiError {
    match code {
        409 => ApiError::new(
            409,
            "Conflict",
            "Operation cannot be fulfilled: injected conflict; please apply your changes to the latest version and try again",
        ),
        429 => ApiError::new(429, "TooManyRequests", "injected: too many requests"),
        503 => ApiError::new(503, "ServiceUnavailable", "injected: service unavailable"),
        504 => ApiError::new(504, "Timeout", "injected: timeout"),
        _ => ApiError::new(
            500,
            "InternalError",
            "Internal error occurred: injected failure",
        ),
    }
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Seeds the random choices of ratio-based failures.
    pub fn seed(&self, seed: u64) {
        self.lock().rng = seed.max(1);
    }

    /// Fail the `n`-th write from now with `code`.
    pub fn fail_nth_write(&self, n: u64, code: u16) {
        let mut state = self.lock();
        let at = state.writes + n;
        state.fail_nth = Some((at, code));
    }

    /// Fail writes at random: `conflicts` of them with 409, `errors` with 500.
    pub fn fail_writes(&self, conflicts: f64, errors: f64) {
        let mut state = self.lock();
        state.conflict_ratio = conflicts;
        state.error_ratio = errors;
    }

    /// Add latency to every request.
    pub fn latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// The next watch resume on `plural` gets the 200 + ERROR 410 sequence.
    pub fn expire_next_watch(&self, plural: &str) {
        self.lock().expire_next.insert(plural.to_string());
    }

    /// Closes every open watch stream cleanly.
    pub fn drop_watches(&self) {
        self.drop_watches.notify_waiters();
    }

    pub(crate) fn take_expire(&self, plural: &str) -> bool {
        self.lock().expire_next.remove(plural)
    }

    pub(crate) async fn before_request(&self, method: &Method) -> Option<ApiError> {
        let (latency, failure) = {
            let mut state = self.lock();
            let latency = state.latency;
            let write = matches!(
                *method,
                Method::POST | Method::PUT | Method::PATCH | Method::DELETE
            );
            let mut failure = None;
            if write {
                state.writes += 1;
                if let Some((at, code)) = state.fail_nth
                    && at == state.writes
                {
                    state.fail_nth = None;
                    failure = Some(injected(code));
                }
                if failure.is_none() && (state.conflict_ratio > 0.0 || state.error_ratio > 0.0) {
                    // xorshift64: deterministic for a given seed.
                    let mut x = state.rng;
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    state.rng = x;
                    let roll = (x % 1_000_000) as f64 / 1_000_000.0;
                    if roll < state.conflict_ratio {
                        failure = Some(injected(409));
                    } else if roll < state.conflict_ratio + state.error_ratio {
                        failure = Some(injected(500));
                    }
                }
            }
            (latency, failure)
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        failure
    }

    /// The signal `drop_watches` raises; every watch stream listens to it.
    pub(crate) fn drop_signal(&self) -> Arc<Notify> {
        self.drop_watches.clone()
    }
}
