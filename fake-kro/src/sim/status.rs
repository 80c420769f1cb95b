//! The instance status write (kro.md §5.1, §5.4): one PUT `/status` per pass, none when nothing
//! changed.

use std::time::Duration;

use kube::api::{Api, DynamicObject, PostParams};
use kube::runtime::controller::Action;
use serde_json::{Map, Value, json};

use super::SimError;
use crate::conditions::Conditions;
use crate::graph::InstanceState;

/// Writes `{conditions, state, author fields}` when it differs from the stored status: GET the
/// instance, replace `.status`, PUT `/status`, retrying on 409 with a fresh GET (kro.md §5.1).
/// `state` is ACTIVE whenever the root condition is ready.
pub(super) async fn write_status(
    api: &Api<DynamicObject>,
    name: &str,
    conditions: Conditions,
    state: InstanceState,
    author: Map<String, Value>,
    requeue: Duration,
) -> Result<Action, SimError> {
    let ready = conditions.is_root_ready();
    let mut status = author;
    status.insert("conditions".into(), Value::Array(conditions.list));
    let state = if ready { InstanceState::Active } else { state };
    status.insert("state".into(), json!(state.as_str()));
    let status = Value::Object(status);
    let mut attempts = 0;
    loop {
        let Some(mut latest) = api.get_opt(name).await? else {
            return Ok(Action::await_change());
        };
        if latest.data.get("status") == Some(&status) {
            break;
        }
        latest.data["status"] = status.clone();
        match api
            .replace_status(name, &PostParams::default(), &latest)
            .await
        {
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
