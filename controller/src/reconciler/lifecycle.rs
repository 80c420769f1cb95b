//! The object lifecycle every Kany8s kind shares, written once: the own-object apply
//! (finalizer, `block-move`, `spec.controlPlaneEndpoint`), the one status write, the paused path
//! and the deletion sequence (finalizer, delete-for-move, wait while paused, delete what the
//! object owns, wait, release). What is kind-specific — how to suspend a backend, what to
//! delete — comes in as a closure; what the status says on each path is decided by pure
//! functions ([`paused_status`], [`deletion_plan`], [`deleting_status`]).

use std::future::Future;
use std::time::Duration;

use crate::reconciler::Action;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::Error;
use super::conditions::{
    Event, Verdict, condition_events, put_deleting, put_deletion_paused, put_paused, types,
};
use super::events::Recorder;
use crate::capi::{
    self, ApiEndpoint, BLOCK_MOVE_ANNOTATION, ConditionedStatus, DELETE_FOR_MOVE_ANNOTATION,
};
use crate::owner::{Owner, paused_message};

/// What a kind tells the shared lifecycle about itself.
pub trait Kany8sObject:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + serde::de::DeserializeOwned
    + serde::Serialize
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    type Status: capi::ConditionedStatus + Default + std::fmt::Debug + Send + Sync;
    /// The kind, as the `Paused` message names it.
    const KIND: &'static str;
    const FINALIZER: &'static str;
    /// The field manager of every write the controller makes ([CP-48]).
    const FIELD_MANAGER: &'static str;
    /// Whether the kind carries `block-move` while not safely paused ([CT-21]); the kubeadm
    /// facade does not (its control plane does).
    const BLOCK_MOVE: bool;
    /// The condition types set false with reason `Deleting` besides `Ready` ([CT-28]).
    const DELETING_ALSO: &'static [&'static str];
    /// Their message while deleting.
    const DELETING_MESSAGE: &'static str;

    fn status(&self) -> Option<&Self::Status>;
    fn conditions(status: &mut Self::Status) -> &mut Vec<Condition>;
    fn set_observed_generation(status: &mut Self::Status, generation: i64);
    /// `spec.controlPlaneEndpoint`, which every own-object apply carries.
    fn endpoint(&self) -> Option<ApiEndpoint>;
}

/// Implements [`Kany8sObject`] for a kind whose status carries `conditions` and
/// `observed_generation` and whose spec carries `control_plane_endpoint` (all three kinds).
#[macro_export]
macro_rules! kany8s_object {
    ($kind:ty, $status:ty, kind: $name:expr, finalizer: $finalizer:expr,
     field_manager: $manager:expr, block_move: $block_move:expr,
     deleting_also: $also:expr, deleting_message: $message:expr $(,)?) => {
        impl $crate::reconciler::lifecycle::Kany8sObject for $kind {
            type Status = $status;
            const KIND: &'static str = $name;
            const FINALIZER: &'static str = $finalizer;
            const FIELD_MANAGER: &'static str = $manager;
            const BLOCK_MOVE: bool = $block_move;
            const DELETING_ALSO: &'static [&'static str] = $also;
            const DELETING_MESSAGE: &'static str = $message;

            fn status(&self) -> Option<&Self::Status> {
                self.status.as_ref()
            }

            fn conditions(
                status: &mut Self::Status,
            ) -> &mut Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
                &mut status.conditions
            }

            fn set_observed_generation(status: &mut Self::Status, generation: i64) {
                status.observed_generation = Some(generation);
            }

            fn endpoint(&self) -> Option<$crate::capi::ApiEndpoint> {
                self.spec.control_plane_endpoint.clone()
            }
        }
    };
}

fn has_finalizer<K: Kany8sObject>(object: &K) -> bool {
    object.finalizers().iter().any(|f| f == K::FINALIZER)
}

fn has_block_move<K: Kany8sObject>(object: &K) -> bool {
    object
        .annotations()
        .get(BLOCK_MOVE_ANNOTATION)
        .map(String::as_str)
        == Some("true")
}

/// [CP-05], [CT-21], [CT-24], [CP-49]: the own-object apply: the finalizer, `block-move` and
/// `spec.controlPlaneEndpoint`. The apply carries every field the controller owns there, so a
/// field left out is removed.
pub async fn own_apply<K: Kany8sObject>(
    api: &Api<K>,
    object: &K,
    finalizer: bool,
    block_move: bool,
    endpoint: Option<ApiEndpoint>,
) -> Result<(), Error> {
    let meta = object.meta();
    let mut body = json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()),
        "metadata": {"name": meta.name, "namespace": meta.namespace}});
    if finalizer {
        body["metadata"]["finalizers"] = json!([K::FINALIZER]);
    }
    if block_move {
        body["metadata"]["annotations"] = json!({BLOCK_MOVE_ANNOTATION: "true"});
    }
    if let Some(endpoint) = endpoint {
        body["spec"] = json!({ "controlPlaneEndpoint": endpoint });
    }
    let written = api
        .patch(
            meta.name.as_deref().unwrap_or_default(),
            &PatchParams::apply(K::FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
    super::fresh::record(written);
    Ok(())
}

/// [CP-05], [IC-02], [KK-03]: the finalizer (and `block-move`, for kinds that carry it), applied
/// only when missing.
pub async fn ensure_own<K: Kany8sObject>(api: &Api<K>, object: &K) -> Result<(), Error> {
    if has_finalizer(object) && (!K::BLOCK_MOVE || has_block_move(object)) {
        return Ok(());
    }
    own_apply(api, object, true, K::BLOCK_MOVE, object.endpoint()).await
}

/// [CP-14], [CP-47]: the one status write of a pass, a server-side apply of the complete
/// status, skipped when it says the same as the stored one. Returns whether it wrote.
pub async fn write_status<K: Kany8sObject>(
    api: &Api<K>,
    object: &K,
    status: K::Status,
) -> Result<bool, Error> {
    if object
        .status()
        .cloned()
        .unwrap_or_default()
        .same_as(&status)
    {
        return Ok(false);
    }
    let meta = object.meta();
    let body = json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()),
        "metadata": {"name": meta.name, "namespace": meta.namespace}, "status": status});
    let written = api
        .patch_status(
            meta.name.as_deref().unwrap_or_default(),
            &PatchParams::apply(K::FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
    super::fresh::record(written);
    Ok(true)
}

/// Publishes `event` about `object`; a failure is logged, never fatal.
pub async fn publish<K: Resource<DynamicType = ()>>(
    recorder: &Recorder,
    object: &K,
    event: &Event,
) {
    let result = recorder.publish(event, &object.object_ref(&())).await;
    if let Err(error) = result {
        tracing::warn!(%error, reason = %event.reason, "publishing an event failed");
    }
}

/// Applies a normal pass's decision: the endpoint first (it must land before the status that
/// reports it, [CT-29], [IC-12]), then the one status write, then the events.
pub async fn apply_decision<K: Kany8sObject>(
    api: &Api<K>,
    recorder: &Recorder,
    object: &K,
    endpoint: Option<ApiEndpoint>,
    status: K::Status,
    events: &[Event],
) -> Result<(), Error> {
    if let Some(endpoint) = endpoint {
        own_apply(api, object, true, K::BLOCK_MOVE, Some(endpoint)).await?;
    }
    write_status(api, object, status).await?;
    for event in events {
        publish(recorder, object, event).await;
    }
    Ok(())
}

/// [CT-17], [KK-02]: the status of the paused path: only `Paused=True` with `message`.
pub fn paused_status<K: Kany8sObject>(object: &K, message: String, now: &Time) -> K::Status {
    let mut status = object.status().cloned().unwrap_or_default();
    let generation = object.meta().generation.unwrap_or(0);
    put_paused(K::conditions(&mut status), message, generation, now);
    status
}

/// [CT-17], [CT-18], [KK-02]: the paused path: the `Paused` condition, then `suspend` (the
/// kind's backend suspension, if any), then — safely paused — the removal of `block-move`.
pub async fn pause<K, F>(
    api: &Api<K>,
    object: &K,
    message: String,
    now: &Time,
    suspend: F,
) -> Result<Action, Error>
where
    K: Kany8sObject,
    F: Future<Output = Result<(), Error>>,
{
    write_status(api, object, paused_status(object, message, now)).await?;
    suspend.await?;
    if object.annotations().contains_key(BLOCK_MOVE_ANNOTATION) {
        own_apply(api, object, has_finalizer(object), false, object.endpoint()).await?;
    }
    Ok(Action::await_change())
}

/// The first step of a deletion pass ([CT-25]–[CT-27], [KK-18]).
#[derive(Debug, PartialEq)]
pub enum DeletionPlan<S> {
    /// No finalizer of ours: nothing to do.
    Nothing,
    /// `delete-for-move`: release the finalizer and leave everything else ([CT-26]).
    Release,
    /// Paused: deletion waits; this status says so ([CT-25] step 3).
    WaitForUnpause(S),
    /// Delete what the object owns, then wait for it or release.
    DeleteDependents,
}

/// [CT-25]–[CT-27]: what a deletion pass does first. Owner lookup errors leave only the
/// annotation to decide whether it is paused ([CT-27]).
pub fn deletion_plan<K: Kany8sObject>(
    object: &K,
    owner: &Owner,
    now: &Time,
) -> DeletionPlan<K::Status> {
    if !has_finalizer(object) {
        return DeletionPlan::Nothing;
    }
    if object
        .annotations()
        .contains_key(DELETE_FOR_MOVE_ANNOTATION)
    {
        return DeletionPlan::Release;
    }
    let owner = match owner {
        Owner::Found(c) => Owner::Found(c.clone()),
        _ => Owner::NotSet,
    };
    if let Some(message) = paused_message(K::KIND, object.annotations(), &owner) {
        let mut status = object.status().cloned().unwrap_or_default();
        let generation = object.meta().generation.unwrap_or(0);
        put_deletion_paused(K::conditions(&mut status), message, generation, now);
        return DeletionPlan::WaitForUnpause(status);
    }
    DeletionPlan::DeleteDependents
}

/// [CT-25] step 6, [CT-28], [KK-18]: the status while waiting for a dependent to go:
/// `Deleting` is `waiting`, `Ready` (and the kind's [`Kany8sObject::DELETING_ALSO`]) false with
/// reason `Deleting`, `Paused` false, no `Creating`; with the events of the `Deleting` change.
pub fn deleting_status<K: Kany8sObject>(
    object: &K,
    waiting: &Verdict,
    now: &Time,
) -> (K::Status, Vec<Event>) {
    let before = object.status().cloned().unwrap_or_default();
    let mut status = before.clone();
    let generation = object.meta().generation.unwrap_or(0);
    let conditions = K::conditions(&mut status);
    put_deleting(
        conditions,
        waiting,
        K::DELETING_MESSAGE,
        K::DELETING_ALSO,
        generation,
        now,
    );
    capi::remove_condition(conditions, types::CREATING);
    K::set_observed_generation(&mut status, generation);
    let mut old = before;
    let events = condition_events(
        K::conditions(&mut old),
        K::conditions(&mut status),
        &[types::DELETING],
    );
    (status, events)
}

/// What became of the dependents a deletion pass deletes.
#[derive(Debug)]
pub enum Dependents {
    /// Nothing (left) to wait for: the finalizer may go.
    Released,
    /// The dependents cannot be determined: say so with this event, then release ([CT-25]).
    Unresolvable(Event),
    /// Waiting for a dependent to disappear: `Deleting`'s verdict, and a timed requeue when no
    /// watch will report its deletion.
    Waiting(Verdict, Option<Duration>),
}

/// [CT-25]–[CT-28], [KK-18]: a deletion pass. `dependents` deletes what the object owns and
/// reports where that stands; it runs only when neither released nor paused.
pub async fn delete<K, F, Fut>(
    api: &Api<K>,
    recorder: &Recorder,
    object: &K,
    owner: &Owner,
    now: &Time,
    dependents: F,
) -> Result<Action, Error>
where
    K: Kany8sObject,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Dependents, Error>>,
{
    let release = || own_apply(api, object, false, false, object.endpoint());
    match deletion_plan(object, owner, now) {
        DeletionPlan::Nothing => Ok(Action::await_change()),
        DeletionPlan::Release => {
            release().await?;
            Ok(Action::await_change())
        }
        DeletionPlan::WaitForUnpause(status) => {
            write_status(api, object, status).await?;
            Ok(Action::await_change())
        }
        DeletionPlan::DeleteDependents => match dependents().await? {
            Dependents::Released => {
                release().await?;
                Ok(Action::await_change())
            }
            Dependents::Unresolvable(event) => {
                publish(recorder, object, &event).await;
                release().await?;
                Ok(Action::await_change())
            }
            Dependents::Waiting(waiting, requeue) => {
                let (status, events) = deleting_status(object, &waiting, now);
                if write_status(api, object, status).await? {
                    for event in &events {
                        publish(recorder, object, event).await;
                    }
                }
                Ok(requeue.map_or_else(Action::await_change, Action::requeue))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Kany8sCluster;
    use crate::reconciler::conditions::{Status, reasons, waiting_for_deletion};

    fn time() -> Time {
        Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
    }

    fn object(finalizer: bool, annotations: &[(&str, &str)]) -> Kany8sCluster {
        let mut ic = Kany8sCluster::new("c", Default::default());
        ic.metadata.namespace = Some("ns".into());
        ic.metadata.generation = Some(3);
        if finalizer {
            ic.metadata.finalizers = Some(vec![Kany8sCluster::FINALIZER.into()]);
        }
        ic.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        ic
    }

    fn condition(
        status: &<Kany8sCluster as Kany8sObject>::Status,
        type_: &str,
    ) -> Option<(String, String)> {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| (c.status.clone(), c.reason.clone()))
    }

    /// [CT-25]–[CT-27]: the deletion pass's first step on every path.
    #[test]
    fn ct25_deletion_plan_on_every_path() {
        assert_eq!(
            deletion_plan(&object(false, &[]), &Owner::NotSet, &time()),
            DeletionPlan::Nothing
        );
        assert_eq!(
            deletion_plan(
                &object(true, &[(DELETE_FOR_MOVE_ANNOTATION, "")]),
                &Owner::NotSet,
                &time()
            ),
            DeletionPlan::Release
        );
        assert_eq!(
            deletion_plan(&object(true, &[]), &Owner::NotSet, &time()),
            DeletionPlan::DeleteDependents
        );
        let paused = object(true, &[(capi::PAUSED_ANNOTATION, "")]);
        let DeletionPlan::WaitForUnpause(status) = deletion_plan(&paused, &Owner::NotSet, &time())
        else {
            panic!("a paused object waits");
        };
        assert_eq!(
            condition(&status, types::DELETING),
            Some(("True".into(), reasons::WAITING_FOR_UNPAUSE.into()))
        );
        assert_eq!(
            condition(&status, types::PAUSED),
            Some(("True".into(), reasons::PAUSED.into()))
        );
        // [CT-27]: an owner lookup error is no reason to wait.
        assert_eq!(
            deletion_plan(
                &object(true, &[]),
                &Owner::GetFailed("boom".into()),
                &time()
            ),
            DeletionPlan::DeleteDependents
        );
    }

    /// [CT-28], [ICC-12]: waiting for the backend; the Deleting change is an event once.
    #[test]
    fn ct28_deleting_status_and_its_event() {
        let ic = object(true, &[]);
        let waiting = waiting_for_deletion(
            reasons::WAITING_FOR_BACKEND_DELETION,
            "DemoInfrastructure",
            "ns",
            "c",
        );
        let (status, events) = deleting_status(&ic, &waiting, &time());
        assert_eq!(
            condition(&status, types::READY),
            Some(("False".into(), reasons::DELETING.into()))
        );
        assert_eq!(
            condition(&status, types::PAUSED),
            Some(("False".into(), reasons::NOT_PAUSED.into()))
        );
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, reasons::WAITING_FOR_BACKEND_DELETION);
        let mut again = ic.clone();
        again.status = Some(status);
        let (_, events) = deleting_status(&again, &waiting, &time());
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(waiting.status, Status::True);
    }

    /// [CT-17]: the paused path writes only the Paused condition.
    #[test]
    fn ct17_paused_status_touches_only_paused() {
        let ic = object(true, &[]);
        let status = paused_status(&ic, "Cluster spec.paused is set to true".into(), &time());
        assert_eq!(status.conditions.len(), 1);
        assert_eq!(
            condition(&status, types::PAUSED),
            Some(("True".into(), reasons::PAUSED.into()))
        );
    }
}
