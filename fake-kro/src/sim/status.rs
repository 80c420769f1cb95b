//! The instance status write (kro.md §5.1, §5.4): one PUT `/status` per pass, none when nothing
//! changed.

use std::time::Duration;

use kube::ResourceExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::Action;
use serde_json::{Map, Value, json};

use super::{SimError, kro_post};
use crate::conditions::Conditions;
use crate::graph::{AuthoredConditions, InstanceState, StatusError};

/// The status of one pass: kro's conditions, the state, the author's fields and, when the RGD
/// declares them, the author's conditions (kro.md §5.10).
pub(super) struct StatusParts {
    pub conditions: Conditions,
    pub state: InstanceState,
    /// An error when kro could not write the status at all (a field holding bytes).
    pub author: Result<Map<String, Value>, StatusError>,
    pub authored: Option<AuthoredConditions>,
}

/// Writes `{conditions, state, author fields}` when it differs from the stored status: replace
/// `.status` of the observed (cached) instance, PUT `/status` with its resourceVersion, and on a
/// 409 retry from a fresh GET (kro.md §5.1).
/// `state` is ACTIVE whenever the root condition is ready, and ERROR when author conditions
/// degraded; author conditions replace the built-in ones on the wire.
pub(super) async fn write_status(
    api: &Api<DynamicObject>,
    observed: &DynamicObject,
    parts: StatusParts,
    requeue: Duration,
) -> Result<Action, SimError> {
    let StatusParts {
        conditions,
        state,
        author,
        authored,
    } = parts;
    let name = observed.name_any();
    let name = name.as_str();
    let ready = conditions.is_root_ready();
    let mut status = match author {
        Ok(author) => author,
        Err(e) => {
            // kro's reconcile fails in its status write and retries; nothing is written.
            tracing::warn!(instance = %name, error = %e, "instance status not written, as kro");
            return Ok(Action::requeue(requeue));
        }
    };
    let mut state = if ready { InstanceState::Active } else { state };
    match authored {
        Some(authored) => {
            if authored.degraded.is_some() {
                state = InstanceState::Error;
            }
            status.insert("conditions".into(), Value::Array(authored.conditions));
        }
        None => {
            status.insert("conditions".into(), Value::Array(conditions.list));
        }
    }
    status.insert("state".into(), json!(state.as_str()));
    let status = Value::Object(status);
    let mut attempts = 0;
    // The first attempt goes from the observed (cached) object, with its resourceVersion as the
    // precondition; a 409 says it was stale and the retries read the latest.
    let mut cached = Some(observed.clone());
    loop {
        let latest = match cached.take() {
            Some(object) => Some(object),
            None => api.get_opt(name).await?,
        };
        let Some(mut latest) = latest else {
            return Ok(Action::await_change());
        };
        if latest.data.get("status") == Some(&status) {
            break;
        }
        latest.data["status"] = status.clone();
        match api.replace_status(name, &kro_post(), &latest).await {
            Ok(_) => break,
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(Action::await_change()),
            Err(kube::Error::Api(e)) if e.code == 409 && attempts < 5 => attempts += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(if ready {
        Action::requeue(requeue * 10)
    } else {
        Action::requeue(requeue)
    })
}
