//! The pure decide step of the Kany8sControlPlane reconcile: from what was observed (spec,
//! previous status, RGD resolution, backend status, kubeconfig outcome) to the complete status,
//! the endpoint to apply and the events to emit (provider.md §3.1–§3.8, §4.7–§4.9, §4.12).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{BackendReference, ControlPlaneVersion};
use crate::api::{ControlPlaneInitialization, Kany8sControlPlaneStatus};
use crate::backend_status::{BackendStatus, InvalidBackendStatus, KubeadmReport, sanitize_reason};
use crate::capi::{ApiEndpoint, remove_condition};
use crate::observation::{Observed, put_rgd_resolved, unreflected_resolution_error};
use crate::reconciler::conditions::{
    Event, Status, Verdict, condition_events, put, put_settled, reasons, rolling_out, types,
};
use crate::rgd::{InstanceKind, RgdError};
use crate::version::{Reported, reported};

/// Reasons that set the failure fields ([CP-46]).
const TERMINAL_REASONS: &[&str] = &[
    reasons::BACKEND_NOT_SELECTED,
    reasons::MULTIPLE_BACKENDS_SELECTED,
    reasons::INVALID_KRO_SPEC,
    reasons::INVALID_EXTERNAL_BACKEND,
    reasons::INVALID_EXTERNAL_BACKEND_SPEC,
    reasons::INVALID_ENDPOINT,
];

/// Which backend the spec selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Kro,
    External,
    Kubeadm,
}

/// The outcome of the kubeconfig step (§4.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeconfigOutcome {
    /// `KubeconfigSecretReconciled`.
    pub condition: Verdict,
    /// Option B (copy from a source Secret); Option A otherwise.
    pub copied: bool,
}

impl KubeconfigOutcome {
    pub fn in_place(&self) -> bool {
        self.condition.is_true()
    }
}

/// Everything the decide step reads.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub generation: i64,
    pub spec_version: String,
    pub spec_endpoint: Option<ApiEndpoint>,
    pub previous: Kany8sControlPlaneStatus,
    /// `None` when no backend is selected or several are (see `spec_error`).
    pub backend: Option<Backend>,
    /// A selection or spec error ([CP-06], [CP-20], [CP-30], [CP-31]): (reason, message).
    pub spec_error: Option<(String, String)>,
    /// The RGD name (kro backend).
    pub rgd_name: String,
    /// kro backend: the RGD resolution; external backend: the served check as `NotServed`.
    pub resolution: Option<Result<InstanceKind, RgdError>>,
    pub backend_changed: Option<String>,
    /// The API server refused the backend's apply: the error ([`reasons::BACKEND_APPLY_FAILED`]).
    pub apply_error: Option<String>,
    /// The backend object's status, if a backend object was read.
    pub observed: Option<Result<BackendStatus, InvalidBackendStatus>>,
    pub backend_ref: Option<BackendReference>,
    pub kubeconfig: Option<KubeconfigOutcome>,
    /// Kubeadm backend: what the facade reports.
    pub kubeadm: Option<KubeadmReport>,
    pub now: Time,
}

/// What the reconcile writes.
pub type Decision = crate::reconciler::Decision<Kany8sControlPlaneStatus>;

/// The decide step of a non-paused, non-deleting reconcile ([CP-13]).
pub fn decide(inputs: &Inputs) -> Decision {
    let generation = inputs.generation;
    let now = &inputs.now;
    let previous = &inputs.previous;
    let mut conditions = previous.conditions.clone();
    let mut events = Vec::new();
    let was_initialized = previous
        .initialization
        .as_ref()
        .and_then(|i| i.control_plane_initialized)
        == Some(true);

    // The backend's status and endpoint, when one could be read ([CP-17]–[CP-19]).
    let observed = Observed::of(inputs.observed.as_ref());
    let status = observed.status.clone();
    let spec_endpoint = inputs.spec_endpoint.clone().filter(ApiEndpoint::is_valid);
    let backend_endpoint_valid = observed.endpoint.is_some();
    let mut new_endpoint = None;
    if let Some(parsed) = observed.endpoint.clone()
        && spec_endpoint.as_ref() != Some(&parsed)
    {
        if let Some(old) = spec_endpoint.as_ref().filter(|_| was_initialized) {
            events.push(Event {
                warning: true,
                reason: reasons::CONTROL_PLANE_ENDPOINT_CHANGED.into(),
                note: format!(
                    "control plane endpoint changed from {} to {}; Cluster API does not update Cluster.spec.controlPlaneEndpoint after initialization",
                    old.host_port(),
                    parsed.host_port()
                ),
            });
        }
        new_endpoint = Some(parsed);
    }
    let endpoint_known = spec_endpoint.is_some() || new_endpoint.is_some();

    // RGD resolution condition (kro only) and reflection ([RG-07], [RG-08], [CP-16]).
    put_rgd_resolved(
        &mut conditions,
        inputs.backend == Some(Backend::Kro),
        inputs.resolution.as_ref(),
        &inputs.rgd_name,
        generation,
        now,
    );

    // Kubeconfig ([KC-01]–[KC-12]).
    if let Some(k) = &inputs.kubeconfig {
        put(
            &mut conditions,
            types::KUBECONFIG,
            &k.condition,
            generation,
            now,
        );
    }
    let kubeadm = inputs.backend == Some(Backend::Kubeadm);
    if kubeadm {
        // [CP-43]: the facade writes the kubeconfig; nothing to gate on here.
        remove_condition(&mut conditions, types::KUBECONFIG);
    }
    let kubeconfig_in_place = kubeadm
        || inputs
            .kubeconfig
            .as_ref()
            .is_some_and(KubeconfigOutcome::in_place);

    // Ready ([CP-44], [CP-45], rows of §4.9 in precedence order).
    let backend_ready = status
        .as_ref()
        .is_some_and(|s| s.ready && backend_endpoint_valid && s.stale.is_none());
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
    } else if let Some(verdict) =
        unreflected_resolution_error(inputs.resolution.as_ref(), inputs.observed.is_some())
    {
        verdict
    } else if let Some(verdict) = observed.problem() {
        verdict
    } else if !backend_ready {
        let (reason, message) = status
            .as_ref()
            .map(|s| (s.reason.clone(), s.message.clone()))
            .unwrap_or_default();
        Verdict::new(
            Status::False,
            &if reason.is_empty() {
                reasons::CREATING.to_string()
            } else {
                sanitize_reason(&reason, reasons::CREATING)
            },
            if message.is_empty() {
                "waiting for control plane to become ready".to_string()
            } else {
                message
            },
        )
    } else if let Some(k) = inputs
        .kubeconfig
        .as_ref()
        .filter(|k| k.copied && !k.in_place())
    {
        k.condition.clone()
    } else {
        let s = status.clone().unwrap_or_default();
        Verdict::new(
            Status::True,
            &if s.reason.is_empty() {
                reasons::READY.to_string()
            } else {
                sanitize_reason(&s.reason, reasons::READY)
            },
            if s.message.is_empty() {
                "control plane is ready".to_string()
            } else {
                s.message
            },
        )
    };
    put(&mut conditions, types::READY, &ready, generation, now);
    if ready.is_true() {
        remove_condition(&mut conditions, types::CREATING);
    } else {
        // [CPC-15]: Creating is True, with Ready's reason and message.
        put(
            &mut conditions,
            types::CREATING,
            &Verdict {
                status: Status::True,
                ..ready.clone()
            },
            generation,
            now,
        );
    }

    // Initialization ([CT-29], [CT-31]): endpoint and kubeconfig in place; sticky.
    let report = inputs.kubeadm.clone().unwrap_or_default();
    let initialized = was_initialized
        || (inputs.spec_error.is_none()
            && endpoint_known
            && kubeconfig_in_place
            && (!kubeadm || report.initialized));

    // Available ([CT-08]).
    let available = if initialized && ready.is_true() && kubeconfig_in_place {
        Verdict::new(
            Status::True,
            reasons::AVAILABLE,
            "control plane is available",
        )
    } else if !initialized {
        let detail = if !endpoint_known {
            "waiting for a valid endpoint".to_string()
        } else if kubeadm {
            "waiting for the Kany8sKubeadmControlPlane to be initialized".to_string()
        } else {
            inputs
                .kubeconfig
                .as_ref()
                .map(|k| k.condition.message.clone())
                .unwrap_or_else(|| "waiting for kubeconfig secret to be reconciled".into())
        };
        Verdict::new(
            Status::False,
            reasons::NOT_INITIALIZED,
            format!("control plane is not initialized: {detail}"),
        )
    } else if !ready.is_true() {
        Verdict::new(Status::False, &ready.reason, ready.message.clone())
    } else {
        let k = inputs
            .kubeconfig
            .as_ref()
            .map(|k| k.condition.clone())
            .unwrap_or_else(|| {
                Verdict::new(Status::False, reasons::KUBECONFIG_SECRET_NOT_FOUND, "")
            });
        Verdict::new(Status::False, &k.reason, k.message)
    };
    put(
        &mut conditions,
        types::AVAILABLE,
        &available,
        generation,
        now,
    );

    // Versions ([CT-03]).
    let mut version = previous.version.clone();
    let mut versions = None;
    if kubeadm {
        // [CT-04]: copied verbatim from the facade.
        if initialized && !report.versions.is_empty() {
            version = report.version.clone();
            versions = Some(report.versions.clone());
        }
    } else if initialized {
        let backend_version = status.as_ref().and_then(|s| s.version.clone());
        match reported(&inputs.spec_version, backend_version.as_deref()) {
            Reported::Version(v) => version = Some(v),
            other => {
                if other == Reported::Unparseable {
                    events.push(Event {
                        warning: true,
                        reason: reasons::INVALID_BACKEND_VERSION.into(),
                        note: format!(
                            "backend reported unparseable version \"{}\"",
                            backend_version.unwrap_or_default()
                        ),
                    });
                }
                if ready.is_true() {
                    version = Some(inputs.spec_version.clone());
                }
            }
        }
    }
    put(
        &mut conditions,
        types::ROLLING_OUT,
        &rolling_out(version.as_deref(), &inputs.spec_version),
        generation,
        now,
    );
    put_settled(&mut conditions, generation, now);

    // Failure fields ([CP-46]).
    let terminal = !ready.is_true()
        && (TERMINAL_REASONS.contains(&ready.reason.as_str())
            || status.as_ref().is_some_and(|s| s.terminal));
    let new_status = Kany8sControlPlaneStatus {
        initialization: initialized.then_some(ControlPlaneInitialization {
            control_plane_initialized: Some(true),
        }),
        versions: match versions {
            Some(v) => v,
            None if kubeadm => previous.versions.clone(),
            None => version
                .iter()
                .map(|v| ControlPlaneVersion {
                    version: v.clone(),
                    replicas: None,
                })
                .collect(),
        },
        version,
        // [CT-06]
        external_managed_control_plane: (!kubeadm).then_some(true),
        conditions,
        observed_generation: Some(generation),
        backend_ref: inputs
            .backend_ref
            .clone()
            .or_else(|| previous.backend_ref.clone()),
        failure_reason: terminal.then(|| ready.reason.clone()),
        failure_message: terminal.then(|| ready.message.clone()),
    };
    events.extend(condition_events(
        &previous.conditions,
        &new_status.conditions,
        &[types::READY, types::RGD_RESOLVED, types::KUBECONFIG],
    ));
    Decision {
        status: new_status,
        endpoint: new_endpoint,
        events,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend_status::read;
    use crate::capi::find_condition;
    use crate::reconciler::conditions::{put_deleting, put_deletion_paused, waiting_for_deletion};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    fn endpoint_of(host: String, port: u16) -> ApiEndpoint {
        ApiEndpoint {
            host: Some(host),
            port: Some(i32::from(port)),
        }
    }
    use rstest::rstest;
    use serde_json::{Value, json};

    fn time() -> Time {
        Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
    }

    fn kind() -> InstanceKind {
        InstanceKind {
            group: "kro.run".into(),
            version: "v1alpha1".into(),
            kind: "Demo".into(),
        }
    }

    fn kubeconfig(status: &'static str, reason: &str, copied: bool) -> Option<KubeconfigOutcome> {
        Some(KubeconfigOutcome {
            condition: Verdict::new(Status::of(status == "True"), reason, format!("kc {reason}")),
            copied,
        })
    }

    fn inputs(backend_status: Value) -> Inputs {
        Inputs {
            generation: 2,
            spec_version: "v1.30.5".into(),
            spec_endpoint: None,
            previous: Kany8sControlPlaneStatus::default(),
            backend: Some(Backend::Kro),
            spec_error: None,
            rgd_name: "demo".into(),
            resolution: Some(Ok(kind())),
            backend_changed: None,
            apply_error: None,
            observed: Some(read(
                &json!({"metadata": {"generation": 1}, "status": backend_status}),
            )),
            backend_ref: None,
            kubeconfig: kubeconfig("True", "Reconciled", true),
            kubeadm: None,
            now: time(),
        }
    }

    /// A control plane whose facade object is `kkcp`.
    fn kubeadm_inputs(kkcp: Value) -> Inputs {
        Inputs {
            backend: Some(Backend::Kubeadm),
            resolution: None,
            observed: Some(Ok(crate::backend_status::read_kubeadm(&kkcp))),
            kubeconfig: None,
            kubeadm: Some(crate::backend_status::kubeadm_report(&kkcp)),
            ..inputs(json!({}))
        }
    }

    /// [CP-42], [CP-43], [CT-04], [CT-06], [CT-30]: the kubeadm backend reads the facade's
    /// endpoint, Ready condition, initialization and versions; it has no kubeconfig condition
    /// and no externalManagedControlPlane.
    #[test]
    fn cp42_kubeadm_adapter() {
        let creating = json!({"spec": {"controlPlaneEndpoint": {"host": "127.0.0.1", "port": 6443}}, "status": {}});
        let mut i = kubeadm_inputs(creating);
        i.previous.conditions = decide(&inputs(ready_backend())).status.conditions;
        let d = decide(&i);
        assert_eq!(
            condition(&d, types::READY),
            (
                "False",
                "Creating",
                "waiting for control plane to become ready"
            )
        );
        assert!(find_condition(&d.status.conditions, types::KUBECONFIG).is_none());
        assert_eq!(d.status.external_managed_control_plane, None);
        assert!(d.status.initialization.is_none());
        assert_eq!(d.endpoint, Some(endpoint_of("127.0.0.1".into(), 6443)));
        assert!(
            condition(&d, types::AVAILABLE)
                .2
                .contains("waiting for the Kany8sKubeadmControlPlane to be initialized")
        );

        let ready = json!({"spec": {"controlPlaneEndpoint": {"host": "fd00::1", "port": 6443}}, "status": {
            "initialization": {"controlPlaneInitialized": true},
            "versions": [{"version": "v1.34.0", "replicas": 1}], "version": "v1.34.0",
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "control plane is ready"}]}});
        let mut i = kubeadm_inputs(ready);
        i.spec_version = "v1.34.0".into();
        let d = decide(&i);
        assert_eq!(
            condition(&d, types::READY),
            ("True", "Ready", "control plane is ready")
        );
        assert_eq!(
            condition(&d, types::AVAILABLE),
            ("True", "Available", "control plane is available")
        );
        assert!(d.status.initialization.is_some());
        assert_eq!(d.endpoint, Some(endpoint_of("fd00::1".into(), 6443)));
        assert_eq!(
            d.status.versions,
            vec![ControlPlaneVersion {
                version: "v1.34.0".into(),
                replicas: Some(1)
            }]
        );
        assert_eq!(d.status.version.as_deref(), Some("v1.34.0"));
        assert_eq!(d.status.external_managed_control_plane, None);

        // Not initialized by the facade: the CP is not either, even with an endpoint.
        let mut i = kubeadm_inputs(
            json!({"spec": {"controlPlaneEndpoint": {"host": "h", "port": 1}},
            "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "WaitingForRemoteConnectionProbe", "message": "m"}]}}),
        );
        i.spec_endpoint = Some(endpoint_of("h".into(), 1));
        let d = decide(&i);
        assert!(d.status.initialization.is_none());
        assert_eq!(
            condition(&d, types::READY),
            ("False", "WaitingForRemoteConnectionProbe", "m")
        );

        // Failure fields are terminal.
        let d = decide(&kubeadm_inputs(
            json!({"status": {"failureReason": "Broken", "failureMessage": "it broke",
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": ""}]}}),
        ));
        assert_eq!(condition(&d, types::READY), ("False", "Broken", "it broke"));
        assert_eq!(d.status.failure_reason.as_deref(), Some("Broken"));
    }

    fn condition<'a>(d: &'a Decision, t: &str) -> (&'a str, &'a str, &'a str) {
        let c = find_condition(&d.status.conditions, t).unwrap_or_else(|| panic!("no {t}"));
        (&c.status, &c.reason, &c.message)
    }

    fn ready_backend() -> Value {
        json!({"ready": true, "endpoint": "https://cp.example.com:6443", "version": "1.30"})
    }

    /// [CPC-01]…[CPC-14]: the Ready rows, in precedence order.
    #[rstest]
    #[case::cpc01_ready(|_: &mut Inputs| {}, ("True", "Ready", "control plane is ready"))]
    #[case::cpc03_not_selected(|i: &mut Inputs| i.spec_error = Some(("BackendNotSelected".into(), "exactly one backend must be selected".into())), ("False", "BackendNotSelected", "exactly one backend must be selected"))]
    #[case::cpc05_kro_spec(|i: &mut Inputs| i.spec_error = Some(("InvalidKroSpec".into(), "spec.kroSpec must be a JSON object, got array".into())), ("False", "InvalidKroSpec", "spec.kroSpec must be a JSON object, got array"))]
    #[case::cpc08_backend_changed(|i: &mut Inputs| i.backend_changed = Some("backend changed".into()), ("False", "BackendChanged", "backend changed"))]
    #[case::apply_refused(|i: &mut Inputs| { i.apply_error = Some("apply Demo ns/c: forbidden".into()); i.observed = None; }, ("False", "BackendApplyFailed", "apply Demo ns/c: forbidden"))]
    #[case::cpc09_rgd_not_found(|i: &mut Inputs| { i.resolution = Some(Err(RgdError::NotFound("demo".into()))); i.observed = None; }, ("False", "ResourceGraphDefinitionNotFound", "ResourceGraphDefinition \"demo\" not found"))]
    #[case::cpc09_reflected(|i: &mut Inputs| i.resolution = Some(Err(RgdError::NotFound("demo".into()))), ("True", "Ready", "control plane is ready"))]
    #[case::cpc10_invalid_status(|i: &mut Inputs| i.observed = Some(read(&json!({"status": {"ready": "yes"}}))), ("False", "InvalidBackendStatus", "read status.ready: expected boolean, got string"))]
    #[case::cpc11_invalid_endpoint(|i: &mut Inputs| i.observed = Some(read(&json!({"status": {"ready": true, "endpoint": "http://x"}}))), ("False", "InvalidEndpoint", "invalid status.endpoint: unsupported scheme \"http\""))]
    #[case::cpc12_stale(|i: &mut Inputs| i.observed = Some(read(&json!({"metadata": {"generation": 4}, "status": {"ready": true, "endpoint": "x:1", "observedGeneration": 3}}))), ("False", "BackendStatusStale", "waiting for backend to observe generation 4 (observed 3)"))]
    #[case::cpc13_not_ready(|i: &mut Inputs| i.observed = Some(read(&json!({"status": {"ready": false}}))), ("False", "Creating", "waiting for control plane to become ready"))]
    #[case::cpc13_backend_reason(|i: &mut Inputs| i.observed = Some(read(&json!({"status": {"ready": false, "reason": "ClusterCreating", "message": "EKS is CREATING"}}))), ("False", "ClusterCreating", "EKS is CREATING"))]
    #[case::cpc13_no_endpoint(|i: &mut Inputs| i.observed = Some(read(&json!({"status": {"ready": true}}))), ("False", "Creating", "waiting for control plane to become ready"))]
    #[case::cpc14_kubeconfig_gate(|i: &mut Inputs| i.kubeconfig = kubeconfig("False", "KubeconfigSourceSecretNotFound", true), ("False", "KubeconfigSourceSecretNotFound", "kc KubeconfigSourceSecretNotFound"))]
    #[case::option_a_no_gate(|i: &mut Inputs| i.kubeconfig = kubeconfig("False", "KubeconfigSecretNotFound", false), ("True", "Ready", "control plane is ready"))]
    fn ready_rows(#[case] edit: fn(&mut Inputs), #[case] expected: (&str, &str, &str)) {
        let mut i = inputs(ready_backend());
        edit(&mut i);
        let d = decide(&i);
        assert_eq!(condition(&d, types::READY), expected);
        // [CPC-15] Creating mirrors Ready while not ready.
        match find_condition(&d.status.conditions, types::CREATING) {
            Some(c) => {
                assert_eq!(expected.0, "False");
                assert_eq!(
                    (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
                    ("True", expected.1, expected.2)
                );
            }
            None => assert_eq!(expected.0, "True"),
        }
        // [CT-06], [CT-07].
        assert_eq!(d.status.external_managed_control_plane, Some(true));
        assert_eq!(d.status.observed_generation, Some(2));
        assert!(
            d.status
                .conditions
                .iter()
                .all(|c| c.observed_generation == Some(2))
        );
    }

    /// [CP-46] failure fields only for terminal reasons or a terminal backend.
    #[rstest]
    #[case(json!({"ready": true, "endpoint": "http://x"}), Some("InvalidEndpoint"))]
    #[case(json!({"ready": false}), None)]
    #[case(json!({"ready": false, "reason": "QuotaExceeded", "terminal": true}), Some("QuotaExceeded"))]
    #[case(ready_backend(), None)]
    fn cp46_failure_fields(#[case] backend: Value, #[case] expected: Option<&str>) {
        let d = decide(&inputs(backend));
        assert_eq!(d.status.failure_reason.as_deref(), expected);
        assert_eq!(d.status.failure_message.is_some(), expected.is_some());
    }

    /// [CT-29], [CT-31], [CT-03], [CPC-16]: endpoint + kubeconfig → initialized, available,
    /// reported version; the endpoint is applied to the spec.
    #[test]
    fn ct29_initialization_and_versions() {
        let d = decide(&inputs(ready_backend()));
        assert_eq!(
            d.endpoint,
            Some(ApiEndpoint {
                host: Some("cp.example.com".into()),
                port: Some(6443)
            })
        );
        assert_eq!(
            d.status
                .initialization
                .as_ref()
                .and_then(|i| i.control_plane_initialized),
            Some(true)
        );
        assert_eq!(d.status.version.as_deref(), Some("v1.30.5"));
        assert_eq!(d.status.versions[0].version, "v1.30.5");
        assert_eq!(
            condition(&d, types::AVAILABLE),
            ("True", "Available", "control plane is available")
        );
        assert_eq!(condition(&d, types::ROLLING_OUT).1, "NotRollingOut");
        assert_eq!(
            condition(&d, types::RGD_RESOLVED),
            (
                "True",
                "Resolved",
                "ResourceGraphDefinition \"demo\" resolved to kro.run/v1alpha1, Kind=Demo"
            )
        );
    }

    /// [CT-31] never initialized without the kubeconfig; [CPC-18] says why.
    #[test]
    fn ct31_not_initialized_without_kubeconfig() {
        let mut i = inputs(ready_backend());
        i.kubeconfig = kubeconfig("False", "OwnerClusterNotSet", true);
        let d = decide(&i);
        assert!(d.status.initialization.is_none());
        assert!(d.status.versions.is_empty() && d.status.version.is_none());
        assert_eq!(
            condition(&d, types::AVAILABLE),
            (
                "False",
                "NotInitialized",
                "control plane is not initialized: kc OwnerClusterNotSet"
            )
        );
        let mut i = inputs(json!({"ready": true}));
        i.kubeconfig = kubeconfig("True", "Reconciled", true);
        let d = decide(&i);
        assert!(d.status.initialization.is_none());
        assert_eq!(
            condition(&d, types::AVAILABLE).2,
            "control plane is not initialized: waiting for a valid endpoint"
        );
    }

    /// [CT-31] sticky: once initialized, losing the kubeconfig does not reset it; Available
    /// takes Ready's reason while not ready ([CPC-19]) and follows the kubeconfig ([CPC-20]);
    /// versions are kept ([CT-03] c).
    #[test]
    fn ct31_initialized_is_sticky() {
        let first = decide(&inputs(ready_backend()));
        let mut i = inputs(json!({"ready": false}));
        i.previous = first.status.clone();
        i.spec_endpoint = first.endpoint.clone();
        i.kubeconfig = kubeconfig("False", "KubeconfigSourceSecretNotFound", true);
        let d = decide(&i);
        assert_eq!(d.status.initialization, first.status.initialization);
        assert_eq!(d.status.version.as_deref(), Some("v1.30.5"));
        assert_eq!(
            condition(&d, types::AVAILABLE),
            (
                "False",
                "Creating",
                "waiting for control plane to become ready"
            )
        );
        let mut i = inputs(ready_backend());
        i.previous = first.status.clone();
        i.spec_endpoint = first.endpoint.clone();
        i.kubeconfig = kubeconfig("False", "KubeconfigSecretNotFound", false);
        assert_eq!(
            condition(&decide(&i), types::AVAILABLE).1,
            "KubeconfigSecretNotFound"
        );
    }

    /// [CT-05], [CPC-26], [CPC-27]: RollingOut while the reported version differs; [CT-02]
    /// rule 5.
    #[test]
    fn ct05_rolling_out() {
        let mut i = inputs(ready_backend());
        i.spec_version = "v1.31.0".into();
        let d = decide(&i);
        assert_eq!(d.status.version.as_deref(), Some("v1.30.0"));
        assert_eq!(
            condition(&d, types::ROLLING_OUT),
            (
                "True",
                "RollingOut",
                "rolling out version v1.31.0 (current: v1.30.0)"
            )
        );
        let settled = decide(&inputs(ready_backend()));
        assert_eq!(
            condition(&settled, types::ROLLING_OUT),
            ("False", "NotRollingOut", "")
        );
    }

    /// [CPC-28]–[CPC-33]: `ResourceGraphDefinitionResolved` for each resolution outcome; it is
    /// removed for the other backends.
    #[rstest]
    #[case::cpc28_resolved(Ok(kind()), ("True", "Resolved", "ResourceGraphDefinition \"demo\" resolved to kro.run/v1alpha1, Kind=Demo"))]
    #[case::cpc29_not_found(Err(RgdError::NotFound("demo".into())), ("False", "ResourceGraphDefinitionNotFound", "ResourceGraphDefinition \"demo\" not found"))]
    #[case::cpc30_invalid(Err(RgdError::Invalid("spec.schema.kind is empty".into())), ("False", "ResourceGraphDefinitionInvalid", "spec.schema.kind is empty"))]
    #[case::cpc31_not_accepted(Err(RgdError::NotAccepted("not accepted yet".into())), ("False", "ResourceGraphDefinitionNotAccepted", "not accepted yet"))]
    #[case::cpc32_get_failed(Err(RgdError::GetFailed("demo".into(), "timeout".into())), ("False", "ResourceGraphDefinitionGetFailed", "get ResourceGraphDefinition \"demo\": timeout"))]
    #[case::cpc33_not_served(Err(RgdError::NotServed("kro.run".into(), "v1alpha1".into(), "Demo".into())), ("False", "BackendKindNotServed", "kro.run/v1alpha1, Kind=Demo is not served by the API server"))]
    fn cpc28_33_resolution_condition(
        #[case] resolution: Result<InstanceKind, RgdError>,
        #[case] expected: (&str, &str, &str),
    ) {
        let mut i = inputs(ready_backend());
        i.resolution = Some(resolution);
        let d = decide(&i);
        assert_eq!(condition(&d, types::RGD_RESOLVED), expected);
        i.previous = d.status;
        i.backend = Some(Backend::External);
        let external = decide(&i);
        assert!(find_condition(&external.status.conditions, types::RGD_RESOLVED).is_none());
    }

    /// [CPC-02], [CPC-17], [CPC-21]–[CPC-25]: the paused, settled and deleting condition sets.
    #[test]
    fn cpc21_25_paused_settled_and_deleting() {
        let now = time();
        let mut conditions = decide(&inputs(ready_backend())).status.conditions;
        let check = |c: &[Condition], t: &str, expected: (&str, &str, &str)| {
            let found = find_condition(c, t).unwrap_or_else(|| panic!("no {t}"));
            assert_eq!(
                (
                    found.status.as_str(),
                    found.reason.as_str(),
                    found.message.as_str()
                ),
                expected,
                "{t}"
            );
        };
        check(&conditions, types::PAUSED, ("False", "NotPaused", ""));
        check(&conditions, types::DELETING, ("False", "NotDeleting", ""));
        put_deletion_paused(
            &mut conditions,
            "Cluster spec.paused is set to true".into(),
            3,
            &now,
        );
        check(
            &conditions,
            types::PAUSED,
            ("True", "Paused", "Cluster spec.paused is set to true"),
        );
        check(
            &conditions,
            types::DELETING,
            (
                "True",
                "WaitingForUnpause",
                "deletion is blocked while paused",
            ),
        );
        let waiting = waiting_for_deletion("WaitingForBackendDeletion", "Demo", "ns", "c");
        put_deleting(
            &mut conditions,
            &waiting,
            "control plane is being deleted",
            &[types::AVAILABLE],
            3,
            &now,
        );
        check(
            &conditions,
            types::DELETING,
            (
                "True",
                "WaitingForBackendDeletion",
                "waiting for Demo ns/c to be deleted",
            ),
        );
        check(
            &conditions,
            types::READY,
            ("False", "Deleting", "control plane is being deleted"),
        );
        check(
            &conditions,
            types::AVAILABLE,
            ("False", "Deleting", "control plane is being deleted"),
        );
        check(&conditions, types::PAUSED, ("False", "NotPaused", ""));
    }

    /// [CP-19] an endpoint change after initialization warns; [CP-47]/[CP-56] a repeated
    /// reconcile changes nothing and emits nothing.
    #[test]
    fn cp19_endpoint_change_and_quiet_steady_state() {
        let first = decide(&inputs(ready_backend()));
        assert!(
            first
                .events
                .iter()
                .any(|e| e.reason == "Ready" && !e.warning)
        );
        let mut again = inputs(ready_backend());
        again.previous = first.status.clone();
        again.spec_endpoint = first.endpoint.clone();
        let second = decide(&again);
        assert_eq!(second.status, first.status);
        assert_eq!(second.endpoint, None);
        assert!(second.events.is_empty(), "{:?}", second.events);
        let mut moved = inputs(json!({"ready": true, "endpoint": "[::1]:443", "version": "1.30"}));
        moved.previous = first.status.clone();
        moved.spec_endpoint = first.endpoint.clone();
        let third = decide(&moved);
        assert_eq!(
            third.endpoint.as_ref().and_then(|e| e.host.as_deref()),
            Some("::1")
        );
        let warning = third
            .events
            .iter()
            .find(|e| e.reason == "ControlPlaneEndpointChanged")
            .unwrap();
        assert!(warning.warning);
        assert_eq!(
            warning.note,
            "control plane endpoint changed from cp.example.com:6443 to [::1]:443; Cluster API does not update Cluster.spec.controlPlaneEndpoint after initialization"
        );
    }

    /// [CP-56] Warning for failures, Normal for waits.
    #[rstest]
    #[case("InvalidKroSpec", true)]
    #[case("ResourceGraphDefinitionNotFound", true)]
    #[case("KubeconfigSourceSecretNotFound", false)]
    #[case("ClusterCreating", false)]
    #[case("InvalidKubeconfig", true)]
    fn cp56_event_types(#[case] reason: &str, #[case] warning: bool) {
        let before = Vec::new();
        let mut after = Vec::new();
        put(
            &mut after,
            types::READY,
            &Verdict::new(Status::False, reason, "m"),
            1,
            &time(),
        );
        let events = condition_events(&before, &after, &[types::READY]);
        assert_eq!(events[0].warning, warning);
    }

    fn arbitrary_backend() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        (
            any::<bool>(),
            prop::sample::select(vec!["", "cp.example.com:6443", "http://bad", "[::1]:443"]),
            prop::sample::select(vec![None, Some("1.30"), Some("1.29.9"), Some("latest")]),
            prop::sample::select(vec![Value::Null, json!(1), json!("yes")]),
        )
            .prop_map(|(ready, endpoint, version, odd)| {
                let mut status = json!({"ready": ready, "endpoint": endpoint});
                if let Some(v) = version {
                    status["version"] = json!(v);
                }
                if !odd.is_null() {
                    status["terminal"] = odd;
                }
                status
            })
    }

    proptest::proptest! {
        /// Random sequences of backend and kubeconfig observations, each decided on the
        /// previous decision: initialized never flips back, is never set without a valid
        /// endpoint and the kubeconfig in place, versions are never removed once written, and
        /// deciding the same observation twice changes nothing and emits nothing.
        #[test]
        fn decide_invariants(steps in proptest::collection::vec((arbitrary_backend(), 0usize..4), 1..12)) {
            let kubeconfigs = [
                kubeconfig("True", "Reconciled", true),
                kubeconfig("False", "KubeconfigSourceSecretNotFound", true),
                kubeconfig("True", "ProvidedByBackend", false),
                kubeconfig("False", "OwnerClusterNotSet", true),
            ];
            let mut previous = Kany8sControlPlaneStatus::default();
            let mut spec_endpoint: Option<ApiEndpoint> = None;
            for (backend, k) in steps {
                let mut i = inputs(backend);
                i.previous = previous.clone();
                i.spec_endpoint = spec_endpoint.clone();
                i.kubeconfig = kubeconfigs[k].clone();
                let d = decide(&i);
                let was = previous.initialization.is_some();
                let now_initialized = d.status.initialization.is_some();
                proptest::prop_assert!(!was || now_initialized, "initialized flipped back");
                if now_initialized && !was {
                    proptest::prop_assert!(spec_endpoint.is_some() || d.endpoint.is_some());
                    proptest::prop_assert!(i.kubeconfig.as_ref().is_some_and(KubeconfigOutcome::in_place));
                }
                if previous.version.is_some() {
                    proptest::prop_assert!(d.status.version.is_some(), "version removed");
                }
                proptest::prop_assert_eq!(d.status.version.is_some(), !d.status.versions.is_empty());
                if let Some(e) = d.endpoint.clone() {
                    spec_endpoint = Some(e);
                }
                let mut again = i.clone();
                again.previous = d.status.clone();
                again.spec_endpoint = spec_endpoint.clone();
                let repeated = decide(&again);
                proptest::prop_assert_eq!(&repeated.status, &d.status);
                proptest::prop_assert!(repeated.events.iter().all(|e| e.reason == "InvalidBackendVersion"));
                previous = d.status;
            }
        }
    }
}
