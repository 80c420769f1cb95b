//! The condition vocabulary of the three kinds: condition types and reasons as constants (with
//! the spec ids that define them), a condition's verdict, how a verdict is written into a
//! status, and which changes become events ([CP-56], [KC-14]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::capi::{find_condition, set_condition};

/// Condition types. Every kind has `Ready`, `Paused`, `Deleting`; the rest are per kind.
pub mod types {
    pub const READY: &str = "Ready";
    pub const CREATING: &str = "Creating";
    pub const AVAILABLE: &str = "Available";
    pub const PAUSED: &str = "Paused";
    pub const DELETING: &str = "Deleting";
    pub const ROLLING_OUT: &str = "RollingOut";
    /// Kany8sControlPlane and Kany8sCluster in kro mode ([RG-07]).
    pub const RGD_RESOLVED: &str = "ResourceGraphDefinitionResolved";
    /// Kany8sControlPlane ([KC-12]).
    pub const KUBECONFIG: &str = "KubeconfigSecretReconciled";
    /// Kany8sKubeadmControlPlane ([KK-01]).
    pub const OWNER: &str = "OwnerClusterResolved";
    /// Kany8sKubeadmControlPlane ([KK-04]).
    pub const CERTIFICATES: &str = "CertificatesAvailable";
    /// Kany8sKubeadmControlPlane ([KK-15]).
    pub const MACHINES_UP_TO_DATE: &str = "MachinesUpToDate";
}

/// Condition reasons, each with the spec rows that use it. Whether a reason is a failure
/// (a Warning event) is declared in [`FAILURES`].
pub mod reasons {
    // Ready / Available / Creating successes and waits ([CPC-01], [CPC-13], [CPC-16], [ICC-01], [ICC-10]).
    pub const READY: &str = "Ready";
    pub const AVAILABLE: &str = "Available";
    pub const CREATING: &str = "Creating";
    pub const PROVISIONING: &str = "Provisioning";
    /// [CPC-18]
    pub const NOT_INITIALIZED: &str = "NotInitialized";
    // Paused / Deleting ([CT-07], [CT-17], [CT-25], [CPC-02], [ICC-02]).
    pub const PAUSED: &str = "Paused";
    pub const NOT_PAUSED: &str = "NotPaused";
    pub const DELETING: &str = "Deleting";
    pub const NOT_DELETING: &str = "NotDeleting";
    pub const WAITING_FOR_UNPAUSE: &str = "WaitingForUnpause";
    pub const WAITING_FOR_BACKEND_DELETION: &str = "WaitingForBackendDeletion";
    /// [KK-18]
    pub const WAITING_FOR_MACHINE_DELETION: &str = "WaitingForMachineDeletion";
    /// [CT-05]
    pub const ROLLING_OUT: &str = "RollingOut";
    pub const NOT_ROLLING_OUT: &str = "NotRollingOut";
    // Spec and backend selection errors ([CPC-03]–[CPC-08], [ICC-03], [ICC-04]).
    pub const BACKEND_NOT_SELECTED: &str = "BackendNotSelected";
    pub const MULTIPLE_BACKENDS_SELECTED: &str = "MultipleBackendsSelected";
    pub const INVALID_KRO_SPEC: &str = "InvalidKroSpec";
    pub const INVALID_EXTERNAL_BACKEND: &str = "InvalidExternalBackend";
    pub const INVALID_EXTERNAL_BACKEND_SPEC: &str = "InvalidExternalBackendSpec";
    pub const BACKEND_CHANGED: &str = "BackendChanged";
    /// Beyond the spec's tables: the API server refused the backend's apply (RBAC, admission,
    /// validation); the message is its error.
    pub const BACKEND_APPLY_FAILED: &str = "BackendApplyFailed";
    // RGD resolution ([CPC-28]–[CPC-33], [ICC-05]).
    pub const RESOLVED: &str = "Resolved";
    pub const RGD_NOT_FOUND: &str = "ResourceGraphDefinitionNotFound";
    pub const RGD_INVALID: &str = "ResourceGraphDefinitionInvalid";
    pub const RGD_NOT_ACCEPTED: &str = "ResourceGraphDefinitionNotAccepted";
    pub const RGD_GET_FAILED: &str = "ResourceGraphDefinitionGetFailed";
    pub const BACKEND_KIND_NOT_SERVED: &str = "BackendKindNotServed";
    // Backend status ([CPC-10]–[CPC-12], [ICC-07]–[ICC-09]).
    pub const INVALID_BACKEND_STATUS: &str = "InvalidBackendStatus";
    pub const INVALID_ENDPOINT: &str = "InvalidEndpoint";
    pub const BACKEND_STATUS_STALE: &str = "BackendStatusStale";
    /// [ICC-06]
    pub const WAITING_FOR_OWNER_CLUSTER: &str = "WaitingForOwnerCluster";
    // Kubeconfig ([CPC-34]–[CPC-46]).
    pub const RECONCILED: &str = "Reconciled";
    pub const PROVIDED_BY_BACKEND: &str = "ProvidedByBackend";
    pub const OWNER_CLUSTER_NOT_SET: &str = "OwnerClusterNotSet";
    pub const OWNER_CLUSTER_NOT_FOUND: &str = "OwnerClusterNotFound";
    pub const OWNER_CLUSTER_GET_FAILED: &str = "OwnerClusterGetFailed";
    pub const KUBECONFIG_SOURCE_CROSS_NAMESPACE: &str = "KubeconfigSourceSecretCrossNamespace";
    pub const KUBECONFIG_SOURCE_NOT_FOUND: &str = "KubeconfigSourceSecretNotFound";
    pub const KUBECONFIG_SOURCE_GET_FAILED: &str = "KubeconfigSourceSecretGetFailed";
    pub const KUBECONFIG_SOURCE_DATA_MISSING: &str = "KubeconfigSourceSecretDataMissing";
    pub const INVALID_KUBECONFIG: &str = "InvalidKubeconfig";
    pub const KUBECONFIG_OWNERSHIP_CONFLICT: &str = "KubeconfigSecretOwnershipConflict";
    pub const KUBECONFIG_SECRET_NOT_FOUND: &str = "KubeconfigSecretNotFound";
    pub const KUBECONFIG_NOT_COMPLIANT: &str = "KubeconfigSecretNotCompliant";
    // The kubeadm facade ([KKC-01]–[KKC-12], §7.9).
    pub const OWNER_CLUSTER_RESOLVED: &str = "OwnerClusterResolved";
    pub const CERTIFICATES_AVAILABLE: &str = "Available";
    pub const CERTIFICATES_UNAVAILABLE: &str = "CertificatesUnavailable";
    pub const WAITING_FOR_INFRASTRUCTURE_REF: &str = "WaitingForInfrastructureRef";
    pub const WAITING_FOR_INFRASTRUCTURE_ENDPOINT: &str = "WaitingForInfrastructureEndpoint";
    pub const INFRASTRUCTURE_GET_FAILED: &str = "InfrastructureGetFailed";
    pub const KUBECONFIG_GENERATION_FAILED: &str = "KubeconfigGenerationFailed";
    pub const BOOTSTRAP_CONFIG_FAILED: &str = "BootstrapConfigFailed";
    pub const INFRASTRUCTURE_MACHINE_FAILED: &str = "InfrastructureMachineFailed";
    pub const MACHINE_FAILED: &str = "MachineFailed";
    pub const WAITING_FOR_CONTROL_PLANE_MACHINE: &str = "WaitingForControlPlaneMachineCreated";
    pub const WAITING_FOR_REMOTE_CONNECTION_PROBE: &str = "WaitingForRemoteConnectionProbe";
    pub const UP_TO_DATE: &str = "UpToDate";
    pub const UPGRADE_NOT_SUPPORTED: &str = "UpgradeNotSupported";
    // Events only ([CP-19], [CT-02], [CT-25]).
    pub const CONTROL_PLANE_ENDPOINT_CHANGED: &str = "ControlPlaneEndpointChanged";
    pub const INVALID_BACKEND_VERSION: &str = "InvalidBackendVersion";
    pub const BACKEND_UNRESOLVABLE: &str = "BackendUnresolvable";
    /// [CP-22]: the RGD's schema has no `spec.version` to inject into.
    pub const RGD_MISSING_VERSION_FIELD: &str = "ResourceGraphDefinitionMissingVersionField";
}

/// The reasons that are failures: a condition that turns to one of them (not True) gets a
/// Warning event; waits and successes, backend reasons included, are Normal ([CP-56], [KC-14]).
pub const FAILURES: &[&str] = &[
    reasons::BACKEND_NOT_SELECTED,
    reasons::MULTIPLE_BACKENDS_SELECTED,
    reasons::INVALID_KRO_SPEC,
    reasons::INVALID_EXTERNAL_BACKEND,
    reasons::INVALID_EXTERNAL_BACKEND_SPEC,
    reasons::INVALID_ENDPOINT,
    reasons::BACKEND_KIND_NOT_SERVED,
    reasons::BACKEND_CHANGED,
    reasons::BACKEND_APPLY_FAILED,
    reasons::INVALID_BACKEND_STATUS,
    reasons::OWNER_CLUSTER_GET_FAILED,
    reasons::KUBECONFIG_SOURCE_CROSS_NAMESPACE,
    reasons::KUBECONFIG_SOURCE_GET_FAILED,
    reasons::KUBECONFIG_SOURCE_DATA_MISSING,
    reasons::INVALID_KUBECONFIG,
    reasons::KUBECONFIG_OWNERSHIP_CONFLICT,
    reasons::KUBECONFIG_NOT_COMPLIANT,
    reasons::CERTIFICATES_UNAVAILABLE,
    reasons::INFRASTRUCTURE_GET_FAILED,
    reasons::KUBECONFIG_GENERATION_FAILED,
    reasons::BOOTSTRAP_CONFIG_FAILED,
    reasons::INFRASTRUCTURE_MACHINE_FAILED,
    reasons::MACHINE_FAILED,
    reasons::UPGRADE_NOT_SUPPORTED,
];

/// Whether `reason` is a failure: one of [`FAILURES`] or any RGD resolution failure.
pub fn is_failure(reason: &str) -> bool {
    FAILURES.contains(&reason) || reason.starts_with("ResourceGraphDefinition")
}

/// A condition's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    True,
    False,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
        }
    }

    pub fn of(value: bool) -> Self {
        if value { Status::True } else { Status::False }
    }
}

/// A condition's (status, reason, message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    pub reason: String,
    pub message: String,
}

impl Verdict {
    pub fn new(status: Status, reason: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.to_string(),
            message: message.into(),
        }
    }

    pub fn is_true(&self) -> bool {
        self.status == Status::True
    }
}

/// An event to emit (reason and note are the condition's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

/// Sets `type_` to `verdict` with the current generation.
pub fn put(
    conditions: &mut Vec<Condition>,
    type_: &str,
    verdict: &Verdict,
    generation: i64,
    now: &Time,
) {
    set_condition(
        conditions,
        Condition {
            type_: type_.to_string(),
            status: verdict.status.as_str().to_string(),
            reason: verdict.reason.clone(),
            message: verdict.message.clone(),
            observed_generation: Some(generation),
            last_transition_time: now.clone(),
        },
        now,
    );
}

/// Events for the conditions whose (status, reason, message) changed ([CP-56], [KC-14]).
pub fn condition_events(before: &[Condition], after: &[Condition], types: &[&str]) -> Vec<Event> {
    types
        .iter()
        .filter_map(|t| {
            let new = find_condition(after, t)?;
            let old = find_condition(before, t);
            let same = old.is_some_and(|o| {
                o.status == new.status && o.reason == new.reason && o.message == new.message
            });
            (!same).then(|| Event {
                warning: new.status != Status::True.as_str() && is_failure(&new.reason),
                reason: new.reason.clone(),
                note: new.message.clone(),
            })
        })
        .collect()
}

/// [CT-05]: `RollingOut` while the reported version `current` differs from `spec`.
pub fn rolling_out(current: Option<&str>, spec: &str) -> Verdict {
    match current {
        Some(current) if current != spec => Verdict::new(
            Status::True,
            reasons::ROLLING_OUT,
            format!("rolling out version {spec} (current: {current})"),
        ),
        _ => Verdict::new(Status::False, reasons::NOT_ROLLING_OUT, ""),
    }
}

/// [CT-07]: a reconcile that is neither paused nor deleting: `Paused` and `Deleting` false,
/// every condition at `generation`.
pub fn put_settled(conditions: &mut Vec<Condition>, generation: i64, now: &Time) {
    put(
        conditions,
        types::PAUSED,
        &Verdict::new(Status::False, reasons::NOT_PAUSED, ""),
        generation,
        now,
    );
    put(
        conditions,
        types::DELETING,
        &Verdict::new(Status::False, reasons::NOT_DELETING, ""),
        generation,
        now,
    );
    for c in conditions.iter_mut() {
        c.observed_generation = Some(generation);
    }
}

/// [CT-17]: the paused path writes only `Paused=True` with the pause message.
pub fn put_paused(conditions: &mut Vec<Condition>, message: String, generation: i64, now: &Time) {
    put(
        conditions,
        types::PAUSED,
        &Verdict::new(Status::True, reasons::PAUSED, message),
        generation,
        now,
    );
}

/// [CT-25] step 3: deletion waits while the object is paused.
pub fn put_deletion_paused(
    conditions: &mut Vec<Condition>,
    paused: String,
    generation: i64,
    now: &Time,
) {
    put_paused(conditions, paused, generation, now);
    put(
        conditions,
        types::DELETING,
        &Verdict::new(
            Status::True,
            reasons::WAITING_FOR_UNPAUSE,
            "deletion is blocked while paused",
        ),
        generation,
        now,
    );
}

/// `Deleting=True` with `reason`: waiting for `<kind> <namespace>/<name>` to be deleted.
pub fn waiting_for_deletion(reason: &str, kind: &str, namespace: &str, name: &str) -> Verdict {
    Verdict::new(
        Status::True,
        reason,
        format!("waiting for {kind} {namespace}/{name} to be deleted"),
    )
}

/// [CT-25] step 6, [CT-28], [KK-18]: waiting for an object to go: `Deleting` is `waiting`,
/// `Ready` and the condition types in `also` false with reason `Deleting` and `message`,
/// `Paused` false.
pub fn put_deleting(
    conditions: &mut Vec<Condition>,
    waiting: &Verdict,
    message: &str,
    also: &[&str],
    generation: i64,
    now: &Time,
) {
    put(conditions, types::DELETING, waiting, generation, now);
    let deleting = Verdict::new(Status::False, reasons::DELETING, message);
    for type_ in std::iter::once(&types::READY).chain(also) {
        put(conditions, type_, &deleting, generation, now);
    }
    put(
        conditions,
        types::PAUSED,
        &Verdict::new(Status::False, reasons::NOT_PAUSED, ""),
        generation,
        now,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [CP-56], [KC-14]: failures are declared once; RGD resolution failures by prefix.
    #[test]
    fn failures_are_warnings_and_waits_are_not() {
        for reason in FAILURES {
            assert!(is_failure(reason), "{reason}");
        }
        assert!(is_failure(reasons::RGD_NOT_FOUND));
        for reason in [
            reasons::CREATING,
            reasons::KUBECONFIG_SOURCE_NOT_FOUND,
            reasons::KUBECONFIG_SECRET_NOT_FOUND,
            reasons::WAITING_FOR_OWNER_CLUSTER,
            reasons::WAITING_FOR_INFRASTRUCTURE_ENDPOINT,
            reasons::OWNER_CLUSTER_NOT_SET,
        ] {
            assert!(!is_failure(reason), "{reason}");
        }
    }
}
