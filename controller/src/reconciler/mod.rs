//! What the three Kany8s reconcilers share: the condition vocabulary ([`conditions`]), the
//! events recorder ([`events`]), the object lifecycle — finalizer, pause, deletion, delete-for-move, own apply and the one status
//! write — written once over the three kinds ([`lifecycle`]), read-your-own-writes over the
//! primary cache ([`fresh`]), the work queue with its lanes
//! ([`queue`]) and the runtime wiring: options, triggers, workers, error policy, backoff,
//! instrumentation and watch mappers ([`runtime`]).

pub mod conditions;
pub mod events;
pub mod fresh;
pub mod lifecycle;
pub mod queue;
pub mod runtime;

pub use queue::Action;

use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// What a normal pass of the decide step returns ([CP-13]): the complete status, a new
/// `spec.controlPlaneEndpoint` for the own-object apply, and the events to emit.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision<S> {
    pub status: S,
    pub endpoint: Option<crate::capi::ApiEndpoint>,
    pub events: Vec<conditions::Event>,
}

/// Errors of one reconcile; the error policy backs off and retries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("encoding: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Transient(String),
    #[error(transparent)]
    Panicked(#[from] crate::metrics::Panicked),
}

impl Error {
    /// What to say in a condition: the API server's own message for a refused request (its
    /// Status `message`), the error otherwise.
    pub fn condition_message(&self) -> String {
        match self {
            Error::Kube(kube::Error::Api(status)) if !status.message.is_empty() => {
                status.message.clone()
            }
            other => other.to_string(),
        }
    }
}

/// Locks a mutex, taking the data of a poisoned one (every critical section leaves it whole).
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The current time, at the second precision conditions carry on the wire.
pub fn now() -> Time {
    let seconds = k8s_openapi::jiff::Timestamp::now().as_second();
    Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap_or_default())
}
