//! What a backend object's status says, read the same way by the control-plane and the
//! infrastructure decide steps: the status or its type error ([ST-01]–[ST-05]), the endpoint it
//! publishes ([EP-01]–[EP-05]), the RGD condition ([RG-07]) and the Ready rows both kinds share
//! after their own ([CPC-10]–[CPC-12], [ICC-07]–[ICC-09]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::backend_status::{BackendStatus, InvalidBackendStatus};
use crate::capi::{ApiEndpoint, remove_condition};
use crate::endpoint::parse_endpoint;
use crate::reconciler::conditions::{Status, Verdict, put, reasons, types};
use crate::rgd::{InstanceKind, RgdError};

/// A backend object's status as the decide steps use it.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The normalised status, when it could be read.
    pub status: Option<BackendStatus>,
    /// Why it could not ([ST-02]).
    pub invalid: Option<String>,
    /// The endpoint it publishes, parsed ([EP-01]).
    pub endpoint: Option<ApiEndpoint>,
    /// Why the published endpoint is unusable ([CP-18], [IC-12]).
    pub endpoint_error: Option<String>,
}

impl Observed {
    /// Reads what the reconcile observed of the backend (`None`: no backend object read).
    pub fn of(observed: Option<&Result<BackendStatus, InvalidBackendStatus>>) -> Self {
        let (status, invalid) = match observed {
            Some(Ok(s)) => (Some(s.clone()), None),
            Some(Err(e)) => (None, Some(e.to_string())),
            None => (None, None),
        };
        let mut endpoint = None;
        let mut endpoint_error = None;
        if let Some(s) = status.as_ref().filter(|s| !s.endpoint.trim().is_empty()) {
            match parse_endpoint(&s.endpoint) {
                Ok(parsed) => {
                    endpoint = Some(ApiEndpoint {
                        host: Some(parsed.host),
                        port: Some(i32::from(parsed.port)),
                    });
                }
                Err(e) => endpoint_error = Some(format!("invalid status.endpoint: {e}")),
            }
        }
        Self {
            status,
            invalid,
            endpoint,
            endpoint_error,
        }
    }

    /// The shared Ready rows, in precedence order: a status that cannot be read, an unusable
    /// endpoint, a stale status ([CPC-10]–[CPC-12], [ICC-07]–[ICC-09]).
    pub fn problem(&self) -> Option<Verdict> {
        if let Some(message) = &self.invalid {
            return Some(Verdict::new(
                Status::False,
                reasons::INVALID_BACKEND_STATUS,
                message.clone(),
            ));
        }
        if let Some(message) = &self.endpoint_error {
            return Some(Verdict::new(
                Status::False,
                reasons::INVALID_ENDPOINT,
                message.clone(),
            ));
        }
        self.status
            .as_ref()
            .and_then(|s| s.stale.clone())
            .map(|message| Verdict::new(Status::False, reasons::BACKEND_STATUS_STALE, message))
    }
}

/// [RG-07], [CPC-28]–[CPC-33], [ICC-13]: `ResourceGraphDefinitionResolved` for a kro backend
/// (left as it was while unresolved), removed for any other.
pub fn put_rgd_resolved(
    conditions: &mut Vec<Condition>,
    kro: bool,
    resolution: Option<&Result<InstanceKind, RgdError>>,
    rgd_name: &str,
    generation: i64,
    now: &Time,
) {
    match (kro, resolution) {
        (true, Some(Ok(kind))) => put(
            conditions,
            types::RGD_RESOLVED,
            &Verdict::new(
                Status::True,
                reasons::RESOLVED,
                kind.resolved_message(rgd_name),
            ),
            generation,
            now,
        ),
        (true, Some(Err(e))) => put(
            conditions,
            types::RGD_RESOLVED,
            &Verdict::new(Status::False, e.reason(), e.to_string()),
            generation,
            now,
        ),
        (true, None) => {}
        (false, _) => {
            remove_condition(conditions, types::RGD_RESOLVED);
        }
    }
}

/// The resolution error the Ready ladder reports, only while no backend object could be read
/// ([RG-08], [CPC-09], [ICC-05]).
pub fn unreflected_resolution_error(
    resolution: Option<&Result<InstanceKind, RgdError>>,
    observed: bool,
) -> Option<Verdict> {
    match resolution {
        Some(Err(e)) if !observed => Some(Verdict::new(Status::False, e.reason(), e.to_string())),
        _ => None,
    }
}
