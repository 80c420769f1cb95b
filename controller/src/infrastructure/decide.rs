//! The pure decide step of the Kany8sCluster reconcile: from what was observed (mode, RGD
//! resolution, owner wait, instance status) to the complete status, the endpoint to apply and
//! the events to emit (provider.md §5.2–§5.4).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{BackendReference, ClusterInitialization, Kany8sClusterStatus};
use crate::backend_status::{BackendStatus, InvalidBackendStatus, sanitize_reason};
use crate::capi::ApiEndpoint;
use crate::observation::{Observed, put_rgd_resolved, unreflected_resolution_error};
use crate::reconciler::conditions::{
    Status, Verdict, condition_events, put, put_settled, reasons, types,
};
use crate::rgd::{InstanceKind, RgdError};

/// `Ready` reasons that set the failure fields besides an instance's `terminal` ([IC-15]).
const TERMINAL_REASONS: &[&str] = &[reasons::INVALID_KRO_SPEC, reasons::INVALID_ENDPOINT];

/// What the infrastructure is made of ([IC-04], §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No RGD referenced: nothing to provision.
    Stub,
    /// A kro instance.
    Kro,
}

/// Everything the decide step reads.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub generation: i64,
    pub previous: Kany8sClusterStatus,
    pub spec_endpoint: Option<ApiEndpoint>,
    pub mode: Mode,
    /// [IC-08]: `spec.kroSpec` not an object: (reason, message).
    pub spec_error: Option<(String, String)>,
    pub rgd_name: String,
    /// The RGD resolution (kro mode), `None` when it was not attempted.
    pub resolution: Option<Result<InstanceKind, RgdError>>,
    /// [IC-03]: the [CP-12] message when the previous backend still exists and is owned.
    pub backend_changed: Option<String>,
    /// The API server refused the backend's apply: the error ([`reasons::BACKEND_APPLY_FAILED`]).
    pub apply_error: Option<String>,
    /// [IC-06]: the wait message while the owner Cluster is needed but not there.
    pub waiting_for_owner: Option<String>,
    /// The instance's status, if an instance was read.
    pub observed: Option<Result<BackendStatus, InvalidBackendStatus>>,
    pub backend_ref: Option<BackendReference>,
    pub now: Time,
}

/// What the reconcile writes.
pub type Decision = crate::reconciler::Decision<Kany8sClusterStatus>;

/// The decide step of a non-paused, non-deleting reconcile.
pub fn decide(inputs: &Inputs) -> Decision {
    let generation = inputs.generation;
    let now = &inputs.now;
    let previous = &inputs.previous;
    let mut conditions = previous.conditions.clone();
    let was_provisioned =
        previous.initialization.as_ref().and_then(|i| i.provisioned) == Some(true);

    // [IC-12]: an optional endpoint, never cleared once written.
    let observed = Observed::of(inputs.observed.as_ref());
    let status = observed.status.clone();
    let new_endpoint = observed
        .endpoint
        .clone()
        .filter(|e| inputs.spec_endpoint.as_ref() != Some(e));

    // [ICC-13]: the RGD condition, kro mode only.
    put_rgd_resolved(
        &mut conditions,
        inputs.mode == Mode::Kro,
        inputs.resolution.as_ref(),
        &inputs.rgd_name,
        generation,
        now,
    );

    // Ready, rows of §5.4 in precedence order ([ICC-01]–[ICC-10]).
    let ready = if let Some((reason, message)) = &inputs.spec_error {
        Verdict::new(Status::False, reason, message.clone())
    } else if let Some(message) = &inputs.backend_changed {
        Verdict::new(Status::False, reasons::BACKEND_CHANGED, message.clone())
    } else if let Some(message) = &inputs.apply_error {
        Verdict::new(
            Status::False,
            reasons::BACKEND_APPLY_FAILED,
            message.clone(),
        )
    } else if inputs.mode == Mode::Stub {
        Verdict::new(Status::True, reasons::READY, "infrastructure is ready")
    } else if let Some(verdict) =
        unreflected_resolution_error(inputs.resolution.as_ref(), inputs.observed.is_some())
    {
        verdict
    } else if let Some(message) = &inputs.waiting_for_owner {
        Verdict::new(
            Status::False,
            reasons::WAITING_FOR_OWNER_CLUSTER,
            message.clone(),
        )
    } else if let Some(verdict) = observed.problem() {
        verdict
    } else {
        let s = status.clone().unwrap_or_default();
        let pick = |value: &str, fallback: &str, sanitize: bool| {
            if value.is_empty() {
                fallback.to_string()
            } else if sanitize {
                sanitize_reason(value, fallback)
            } else {
                value.to_string()
            }
        };
        if s.ready {
            Verdict::new(
                Status::True,
                &pick(&s.reason, reasons::READY, true),
                pick(&s.message, "infrastructure is ready", false),
            )
        } else {
            Verdict::new(
                Status::False,
                &pick(&s.reason, reasons::PROVISIONING, true),
                pick(
                    &s.message,
                    "waiting for infrastructure to become ready",
                    false,
                ),
            )
        }
    };
    put(&mut conditions, types::READY, &ready, generation, now);
    put_settled(&mut conditions, generation, now);

    // [IC-04], [IC-13]: provisioned once ready (stub mode at once); sticky ([CT-31]).
    let provisioned = was_provisioned || ready.is_true();
    // [IC-15]
    let terminal = !ready.is_true()
        && (TERMINAL_REASONS.contains(&ready.reason.as_str())
            || status.as_ref().is_some_and(|s| s.terminal));
    let backend_ref = match inputs.mode {
        // A stub has no backend once the old instance is gone ([IC-03], [IC-04]).
        Mode::Stub if inputs.backend_changed.is_none() => None,
        _ => inputs
            .backend_ref
            .clone()
            .or_else(|| previous.backend_ref.clone()),
    };
    let new_status = Kany8sClusterStatus {
        initialization: provisioned.then_some(ClusterInitialization {
            provisioned: Some(true),
        }),
        conditions,
        observed_generation: Some(generation),
        backend_ref,
        failure_reason: terminal.then(|| ready.reason.clone()),
        failure_message: terminal.then(|| ready.message.clone()),
    };
    let events = condition_events(
        &previous.conditions,
        &new_status.conditions,
        &[types::READY, types::RGD_RESOLVED],
    );
    Decision {
        status: new_status,
        endpoint: new_endpoint.filter(|_| inputs.mode == Mode::Kro),
        events,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend_status::read;
    use crate::capi::find_condition;
    use proptest::prelude::*;
    use rstest::rstest;
    use serde_json::{Value, json};

    fn time() -> Time {
        Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
    }

    fn kind() -> InstanceKind {
        InstanceKind {
            group: "kro.run".into(),
            version: "v1alpha1".into(),
            kind: "Network".into(),
        }
    }

    fn inputs(instance_status: Value) -> Inputs {
        Inputs {
            generation: 3,
            previous: Kany8sClusterStatus::default(),
            spec_endpoint: None,
            mode: Mode::Kro,
            spec_error: None,
            rgd_name: "network".into(),
            resolution: Some(Ok(kind())),
            backend_changed: None,
            apply_error: None,
            waiting_for_owner: None,
            observed: Some(read(
                &json!({"metadata": {"generation": 1}, "status": instance_status}),
            )),
            backend_ref: Some(BackendReference {
                api_version: "kro.run/v1alpha1".into(),
                kind: "Network".into(),
                name: "c1".into(),
            }),
            now: time(),
        }
    }

    fn ready_of(d: &Decision) -> (&str, &str, &str) {
        let c =
            find_condition(&d.status.conditions, types::READY).unwrap_or_else(|| panic!("Ready"));
        (&c.status, &c.reason, &c.message)
    }

    fn provisioned(d: &Decision) -> bool {
        d.status.initialization.as_ref().and_then(|i| i.provisioned) == Some(true)
    }

    /// [ICC-01]…[ICC-10] (Deleting, [ICC-02], is the deletion path's): the Ready rows in
    /// precedence order, with the provisioned flag and failure fields of each.
    #[rstest]
    #[case::icc01_ready(|_: &mut Inputs| {}, ("True", "Ready", "infrastructure is ready"), true, false)]
    #[case::icc01_instance_reason(|i: &mut Inputs| i.observed = Some(read(&json!({"status": {"ready": true, "reason": "VpcAvailable", "message": "vpc ok"}}))), ("True", "VpcAvailable", "vpc ok"), true, false)]
    #[case::icc01_stub(|i: &mut Inputs| { i.mode = Mode::Stub; i.resolution = None; i.observed = None; }, ("True", "Ready", "infrastructure is ready"), true, false)]
    #[case::icc03_kro_spec(|i: &mut Inputs| { i.spec_error = Some(("InvalidKroSpec".into(), "spec.kroSpec must be a JSON object, got string".into())); i.observed = None; }, ("False", "InvalidKroSpec", "spec.kroSpec must be a JSON object, got string"), false, true)]
    #[case::icc04_backend_changed(|i: &mut Inputs| i.backend_changed = Some("backend changed from a/v1/X to none (stub mode); delete X ns/c1 or revert the spec".into()), ("False", "BackendChanged", "backend changed from a/v1/X to none (stub mode); delete X ns/c1 or revert the spec"), false, false)]
    #[case::icc04_kro_to_stub(|i: &mut Inputs| { i.mode = Mode::Stub; i.backend_changed = Some("changed".into()); }, ("False", "BackendChanged", "changed"), false, false)]
    #[case::apply_refused(|i: &mut Inputs| { i.apply_error = Some("apply DemoInfrastructure ns/c1: forbidden".into()); i.observed = None; }, ("False", "BackendApplyFailed", "apply DemoInfrastructure ns/c1: forbidden"), false, false)]
    #[case::icc05_rgd_not_found(|i: &mut Inputs| { i.resolution = Some(Err(RgdError::NotFound("network".into()))); i.observed = None; }, ("False", "ResourceGraphDefinitionNotFound", "ResourceGraphDefinition \"network\" not found"), false, false)]
    #[case::icc05_reflected(|i: &mut Inputs| i.resolution = Some(Err(RgdError::NotFound("network".into()))), ("True", "Ready", "infrastructure is ready"), true, false)]
    #[case::icc05_not_served(|i: &mut Inputs| { i.resolution = Some(Err(RgdError::NotServed("kro.run".into(), "v1alpha1".into(), "Network".into()))); i.observed = None; }, ("False", "BackendKindNotServed", "kro.run/v1alpha1, Kind=Network is not served by the API server"), false, false)]
    #[case::icc06_owner(|i: &mut Inputs| { i.waiting_for_owner = Some("waiting for owner Cluster reference to be set".into()); i.observed = None; }, ("False", "WaitingForOwnerCluster", "waiting for owner Cluster reference to be set"), false, false)]
    #[case::icc07_invalid_status(|i: &mut Inputs| i.observed = Some(read(&json!({"status": {"ready": 1}}))), ("False", "InvalidBackendStatus", "read status.ready: expected boolean, got integer"), false, false)]
    #[case::icc08_invalid_endpoint(|i: &mut Inputs| i.observed = Some(read(&json!({"status": {"ready": true, "endpoint": "https://user:pw@lb:6443"}}))), ("False", "InvalidEndpoint", "invalid status.endpoint: userinfo is not supported"), false, true)]
    #[case::icc09_stale(|i: &mut Inputs| i.observed = Some(read(&json!({"metadata": {"generation": 5}, "status": {"ready": true, "observedGeneration": 4}}))), ("False", "BackendStatusStale", "waiting for backend to observe generation 5 (observed 4)"), false, false)]
    #[case::icc10_default(|i: &mut Inputs| i.observed = Some(read(&json!({"status": {"ready": false}}))), ("False", "Provisioning", "waiting for infrastructure to become ready"), false, false)]
    #[case::icc10_no_instance_yet(|i: &mut Inputs| i.observed = Some(read(&json!({}))), ("False", "Provisioning", "waiting for infrastructure to become ready"), false, false)]
    #[case::icc10_instance_reason(|i: &mut Inputs| i.observed = Some(read(&json!({"status": {"ready": false, "reason": "VpcPending", "message": "creating VPC"}}))), ("False", "VpcPending", "creating VPC"), false, false)]
    #[case::ic15_terminal(|i: &mut Inputs| i.observed = Some(read(&json!({"status": {"ready": false, "reason": "QuotaExceeded", "message": "no EIPs left", "terminal": true}}))), ("False", "QuotaExceeded", "no EIPs left"), false, true)]
    fn ready_rows(
        #[case] edit: fn(&mut Inputs),
        #[case] expected: (&str, &str, &str),
        #[case] is_provisioned: bool,
        #[case] failure: bool,
    ) {
        let mut i = inputs(json!({"ready": true}));
        edit(&mut i);
        let d = decide(&i);
        assert_eq!(ready_of(&d), expected);
        assert_eq!(provisioned(&d), is_provisioned, "provisioned");
        assert_eq!(d.status.failure_reason.is_some(), failure, "failure fields");
        if failure {
            assert_eq!(d.status.failure_reason.as_deref(), Some(expected.1));
            assert_eq!(d.status.failure_message.as_deref(), Some(expected.2));
        }
        assert_eq!(d.status.observed_generation, Some(3));
        assert!(
            d.status
                .conditions
                .iter()
                .all(|c| c.observed_generation == Some(3))
        );
    }

    /// [IC-04]: stub mode writes no endpoint, removes the RGD condition and the backend.
    #[test]
    fn ic04_stub_mode() {
        let mut i = inputs(json!({"ready": true, "endpoint": "lb.example.com:6443"}));
        i.previous = decide(&i).status;
        i.mode = Mode::Stub;
        i.resolution = None;
        i.observed = None;
        i.backend_ref = None;
        let d = decide(&i);
        assert!(find_condition(&d.status.conditions, types::RGD_RESOLVED).is_none());
        assert_eq!(d.status.backend_ref, None);
        assert_eq!(d.endpoint, None);
        assert!(provisioned(&d));
    }

    /// [IC-12]: a valid endpoint is applied once, never cleared; [ICC-13] resolved message.
    #[test]
    fn ic12_endpoint_applied_once() {
        let i = inputs(json!({"ready": true, "endpoint": "https://[2001:db8::1]:6443"}));
        let d = decide(&i);
        let expected = ApiEndpoint {
            host: Some("2001:db8::1".into()),
            port: Some(6443),
        };
        assert_eq!(d.endpoint, Some(expected.clone()));
        let mut again = i.clone();
        again.spec_endpoint = Some(expected);
        assert_eq!(decide(&again).endpoint, None);
        again.observed = Some(read(&json!({"status": {"ready": true}})));
        assert_eq!(
            decide(&again).endpoint,
            None,
            "no endpoint: nothing to clear"
        );
        let rgd = find_condition(&d.status.conditions, types::RGD_RESOLVED).unwrap();
        assert_eq!(rgd.status, "True");
        assert_eq!(rgd.reason, "Resolved");
    }

    /// [IC-17]: events on change only; a failure is a Warning.
    #[test]
    fn ic17_events_on_change_only() {
        let mut i = inputs(json!({"ready": false}));
        let first = decide(&i);
        assert_eq!(first.events.len(), 2, "{:?}", first.events);
        i.previous = first.status;
        assert!(decide(&i).events.is_empty());
        i.observed = Some(read(&json!({"status": {"ready": "no"}})));
        let failed = decide(&i);
        assert_eq!(failed.events.len(), 1);
        assert!(failed.events[0].warning);
        assert_eq!(failed.events[0].reason, "InvalidBackendStatus");
    }

    fn arbitrary_status() -> impl Strategy<Value = Value> {
        (
            any::<bool>(),
            prop_oneof![Just(None), Just(Some("lb:6443")), Just(Some("ftp://x"))],
            any::<bool>(),
            prop_oneof![Just(json!(null)), Just(json!(1)), Just(json!(9))],
        )
            .prop_map(|(ready, endpoint, terminal, observed)| {
                json!({"metadata": {"generation": 1}, "status": {"ready": ready, "endpoint": endpoint,
                    "terminal": terminal, "observedGeneration": observed}})
            })
    }

    proptest! {
        /// [IC-13], [CT-31]: provisioned is earned by a ready, fresh instance and never lost;
        /// the step is idempotent (a second pass over its own output emits no event).
        #[test]
        fn provisioned_sticky_and_earned(statuses in proptest::collection::vec(arbitrary_status(), 1..12)) {
            let mut previous = Kany8sClusterStatus::default();
            let mut ever_ready = false;
            for object in statuses {
                let mut i = inputs(json!({}));
                i.observed = Some(read(&object));
                i.previous = previous.clone();
                let d = decide(&i);
                let ready = ready_of(&d).0 == "True";
                ever_ready |= ready;
                prop_assert_eq!(provisioned(&d), ever_ready);
                let mut again = i.clone();
                again.previous = d.status.clone();
                prop_assert!(decide(&again).events.is_empty());
                previous = d.status;
            }
        }
    }
}
