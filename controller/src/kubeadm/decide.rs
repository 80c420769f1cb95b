//! The pure decide step of the Kany8sKubeadmControlPlane reconcile: from how far the pass got
//! and what the control-plane Machines report to the complete status and the events to emit
//! (provider.md §7.5, §7.6, §7.9).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{
    ControlPlaneInitialization, ControlPlaneVersion, Kany8sKubeadmControlPlaneStatus,
};
use crate::capi::remove_condition;
use crate::owner::Owner;
use crate::reconciler::conditions::{
    Status, Verdict, condition_events, put, put_settled, reasons, rolling_out, types,
};

/// The control-plane label ([KK-14]).
pub const CONTROL_PLANE_LABEL: &str = "cluster.x-k8s.io/control-plane";

/// What a control-plane Machine reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    pub version: Option<String>,
    pub ready: bool,
    pub available: bool,
}

/// How far the pass got ([KK-13]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A step failed or waits: Ready's verdict.
    Blocked(Verdict),
    /// Every step ran; the kubeconfig Secret holds a valid kubeconfig.
    Built {
        /// The owner Cluster's `RemoteConnectionProbe` is True.
        remote_connection_probe: bool,
        machines: Vec<Machine>,
    },
}

/// Everything the decide step reads.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub generation: i64,
    pub now: Time,
    pub spec_version: String,
    pub cluster_name: String,
    pub previous: Kany8sKubeadmControlPlaneStatus,
    /// `OwnerClusterResolved`.
    pub owner: Verdict,
    /// `CertificatesAvailable`, once the certificate step ran.
    pub certificates: Option<Verdict>,
    /// `spec.controlPlaneEndpoint` is set.
    pub endpoint_set: bool,
    pub progress: Progress,
}

/// What the reconcile writes (the facade applies its endpoint in its own step, [KK-08]).
pub type Decision = crate::reconciler::Decision<Kany8sKubeadmControlPlaneStatus>;

/// [KK-01], [KKC-01], [KKC-02]: `OwnerClusterResolved` from the owner lookup.
pub fn owner_verdict(owner: &Owner) -> Verdict {
    match owner {
        Owner::Found(_) => Verdict::new(
            Status::True,
            reasons::OWNER_CLUSTER_RESOLVED,
            "owner Cluster resolved",
        ),
        Owner::NotSet => Verdict::new(
            Status::False,
            reasons::OWNER_CLUSTER_NOT_SET,
            "waiting for owner Cluster reference to be set",
        ),
        Owner::NotFound(e) => {
            Verdict::new(Status::False, reasons::OWNER_CLUSTER_NOT_FOUND, e.clone())
        }
        Owner::GetFailed(e) => Verdict::new(
            Status::False,
            reasons::OWNER_CLUSTER_GET_FAILED,
            format!("get owner Cluster: {e}"),
        ),
    }
}

/// Orders Kubernetes versions oldest first; unparseable ones sort last, by text.
fn version_key(version: &str) -> (u8, Vec<u64>, String) {
    let core = version
        .trim()
        .trim_start_matches(['v', 'V'])
        .split(['-', '+'])
        .next()
        .unwrap_or_default();
    let numbers: Option<Vec<u64>> = core.split('.').map(|p| p.parse().ok()).collect();
    match numbers {
        Some(n) if !n.is_empty() => (0, n, version.to_string()),
        _ => (1, Vec::new(), version.to_string()),
    }
}

/// The decide step of a non-paused, non-deleting reconcile.
pub fn decide(inputs: &Inputs) -> Decision {
    let generation = inputs.generation;
    let now = &inputs.now;
    let previous = &inputs.previous;
    let mut status = previous.clone();
    let conditions = &mut status.conditions;
    put(conditions, types::OWNER, &inputs.owner, generation, now);
    if let Some(certificates) = &inputs.certificates {
        put(
            conditions,
            types::CERTIFICATES,
            certificates,
            generation,
            now,
        );
    }
    let was_initialized = previous
        .initialization
        .as_ref()
        .and_then(|i| i.control_plane_initialized)
        == Some(true);

    // [KK-14]: initialization and Ready.
    let (initialized, ready) = match &inputs.progress {
        Progress::Blocked(verdict) => (was_initialized, verdict.clone()),
        Progress::Built {
            remote_connection_probe,
            machines,
        } => {
            let initialized = was_initialized
                || (inputs.endpoint_set
                    && (*remote_connection_probe || machines.iter().any(|m| m.ready)));
            let ready = if initialized {
                Verdict::new(Status::True, reasons::READY, "control plane is ready")
            } else {
                Verdict::new(
                    Status::False,
                    reasons::WAITING_FOR_REMOTE_CONNECTION_PROBE,
                    "waiting for Cluster RemoteConnectionProbe=True",
                )
            };
            (initialized, ready)
        }
    };
    put(conditions, types::READY, &ready, generation, now);
    let available = if ready.is_true() {
        remove_condition(conditions, types::CREATING);
        Verdict::new(
            Status::True,
            reasons::AVAILABLE,
            "control plane is available",
        )
    } else {
        // [KKC-07]
        let creating = Verdict {
            status: Status::True,
            ..ready.clone()
        };
        put(conditions, types::CREATING, &creating, generation, now);
        Verdict::new(Status::False, &ready.reason, ready.message.clone())
    };
    put(conditions, types::AVAILABLE, &available, generation, now);
    status.initialization = initialized.then_some(ControlPlaneInitialization {
        control_plane_initialized: Some(true),
    });
    if ready.is_true() {
        status.failure_reason = None;
        status.failure_message = None;
    }

    // [KK-15]: counters, versions and MachinesUpToDate from the Machines just listed.
    status.selector = Some(format!(
        "{}={},{CONTROL_PLANE_LABEL}",
        crate::capi::CLUSTER_NAME_LABEL,
        inputs.cluster_name
    ));
    if let Progress::Built { machines, .. } = &inputs.progress {
        let count = |f: &dyn Fn(&Machine) -> bool| {
            i32::try_from(machines.iter().filter(|m| f(m)).count()).unwrap_or(i32::MAX)
        };
        status.replicas = Some(count(&|_| true));
        status.ready_replicas = Some(count(&|m| m.ready));
        status.available_replicas = Some(count(&|m| m.available));
        status.up_to_date_replicas = Some(count(&|m| {
            m.version.as_deref() == Some(&inputs.spec_version)
        }));
        let outdated = machines
            .iter()
            .find(|m| m.version.as_deref() != Some(&inputs.spec_version));
        match (machines.is_empty(), outdated) {
            (true, _) => {
                remove_condition(conditions, types::MACHINES_UP_TO_DATE);
            }
            (false, None) => put(
                conditions,
                types::MACHINES_UP_TO_DATE,
                &Verdict::new(Status::True, reasons::UP_TO_DATE, ""),
                generation,
                now,
            ),
            (false, Some(machine)) => put(
                conditions,
                types::MACHINES_UP_TO_DATE,
                &Verdict::new(
                    Status::False,
                    reasons::UPGRADE_NOT_SUPPORTED,
                    format!(
                        "in-place upgrade from {} to {} is not supported; re-create the control plane",
                        machine.version.as_deref().unwrap_or("(none)"),
                        inputs.spec_version
                    ),
                ),
                generation,
                now,
            ),
        }
        if initialized {
            let mut by_version: BTreeMap<(u8, Vec<u64>, String), i32> = BTreeMap::new();
            for machine in machines {
                if let Some(v) = machine.version.as_deref().filter(|v| !v.is_empty()) {
                    *by_version.entry(version_key(v)).or_default() += 1;
                }
            }
            if !by_version.is_empty() {
                status.versions = by_version
                    .into_iter()
                    .map(|((_, _, version), replicas)| ControlPlaneVersion {
                        version,
                        replicas: Some(replicas),
                    })
                    .collect();
                status.version = status.versions.first().map(|v| v.version.clone());
            }
        }
    }

    // [CT-05]
    let rolling = rolling_out(status.version.as_deref(), &inputs.spec_version);
    put(
        &mut status.conditions,
        types::ROLLING_OUT,
        &rolling,
        generation,
        now,
    );
    put_settled(&mut status.conditions, generation, now);
    status.observed_generation = Some(generation);
    let events = condition_events(
        &previous.conditions,
        &status.conditions,
        &[
            types::OWNER,
            types::CERTIFICATES,
            types::READY,
            types::MACHINES_UP_TO_DATE,
        ],
    );
    Decision {
        status,
        endpoint: None,
        events,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capi::find_condition;
    use rstest::rstest;

    fn time() -> Time {
        crate::reconciler::now()
    }

    fn machine(version: &str, ready: bool) -> Machine {
        Machine {
            version: Some(version.into()),
            ready,
            available: ready,
        }
    }

    fn inputs(progress: Progress) -> Inputs {
        Inputs {
            generation: 3,
            now: time(),
            spec_version: "v1.34.0".into(),
            cluster_name: "demo".into(),
            previous: Kany8sKubeadmControlPlaneStatus::default(),
            owner: Verdict::new(
                Status::True,
                "OwnerClusterResolved",
                "owner Cluster resolved",
            ),
            certificates: Some(Verdict::new(
                Status::True,
                "Available",
                "cluster certificates are available",
            )),
            endpoint_set: true,
            progress,
        }
    }

    fn condition<'a>(d: &'a Decision, t: &str) -> Option<(&'a str, &'a str, &'a str)> {
        find_condition(&d.status.conditions, t)
            .map(|c| (c.status.as_str(), c.reason.as_str(), c.message.as_str()))
    }

    fn built(probe: bool, machines: Vec<Machine>) -> Progress {
        Progress::Built {
            remote_connection_probe: probe,
            machines,
        }
    }

    /// [KK-14], [KKC-04], [KKC-06], [KKC-07], [KKC-08]: Ready, Creating and Available for each
    /// way a pass ends.
    #[rstest]
    #[case::blocked(Progress::Blocked(Verdict::new(Status::False, "WaitingForInfrastructureEndpoint", "waiting for infrastructure controlPlaneEndpoint to be set")), false, ("False", "WaitingForInfrastructureEndpoint", "waiting for infrastructure controlPlaneEndpoint to be set"))]
    #[case::no_machine_ready(built(false, vec![machine("v1.34.0", false)]), false, ("False", "WaitingForRemoteConnectionProbe", "waiting for Cluster RemoteConnectionProbe=True"))]
    #[case::machine_ready(built(false, vec![machine("v1.34.0", true)]), true, ("True", "Ready", "control plane is ready"))]
    #[case::probe(built(true, vec![]), true, ("True", "Ready", "control plane is ready"))]
    fn kk14_ready_rows(
        #[case] progress: Progress,
        #[case] initialized: bool,
        #[case] ready: (&str, &str, &str),
    ) {
        let d = decide(&inputs(progress));
        assert_eq!(condition(&d, types::READY), Some(ready));
        assert_eq!(d.status.initialization.is_some(), initialized);
        if ready.0 == "True" {
            assert_eq!(condition(&d, types::CREATING), None);
            assert_eq!(
                condition(&d, types::AVAILABLE),
                Some(("True", "Available", "control plane is available"))
            );
        } else {
            assert_eq!(
                condition(&d, types::CREATING),
                Some(("True", ready.1, ready.2))
            );
            assert_eq!(
                condition(&d, types::AVAILABLE),
                Some(("False", ready.1, ready.2))
            );
        }
        assert_eq!(
            condition(&d, types::PAUSED),
            Some(("False", "NotPaused", ""))
        );
        assert_eq!(
            condition(&d, types::DELETING),
            Some(("False", "NotDeleting", ""))
        );
        assert_eq!(d.status.observed_generation, Some(3));
    }

    /// [KK-14]: without the endpoint nothing initializes; once initialized it stays so.
    #[test]
    fn kk14_initialization_needs_endpoint_and_is_sticky() {
        let mut i = inputs(built(true, vec![machine("v1.34.0", true)]));
        i.endpoint_set = false;
        assert!(decide(&i).status.initialization.is_none());
        i.endpoint_set = true;
        let first = decide(&i);
        assert!(first.status.initialization.is_some());
        i.previous = first.status;
        i.progress = built(false, vec![machine("v1.34.0", false)]);
        let later = decide(&i);
        assert!(later.status.initialization.is_some());
        assert_eq!(condition(&later, types::READY).map(|c| c.0), Some("True"));
        // A failing step still says so after initialization ([KK-13]).
        i.progress = Progress::Blocked(Verdict::new(
            Status::False,
            "KubeconfigGenerationFailed",
            "generate kubeconfig: boom",
        ));
        let failed = decide(&i);
        assert!(failed.status.initialization.is_some());
        assert_eq!(
            condition(&failed, types::READY),
            Some((
                "False",
                "KubeconfigGenerationFailed",
                "generate kubeconfig: boom"
            ))
        );
        assert!(
            failed
                .events
                .iter()
                .any(|e| e.warning && e.reason == "KubeconfigGenerationFailed")
        );
    }

    /// [KK-15], [KKC-11], [KKC-12]: versions oldest first, counters, selector, MachinesUpToDate
    /// and RollingOut.
    #[test]
    fn kk15_versions_counters_and_upgrade_report() {
        let d = decide(&inputs(built(false, vec![machine("v1.34.0", true)])));
        assert_eq!(
            d.status.versions,
            vec![ControlPlaneVersion {
                version: "v1.34.0".into(),
                replicas: Some(1)
            }]
        );
        assert_eq!(d.status.version.as_deref(), Some("v1.34.0"));
        assert_eq!(
            (
                d.status.replicas,
                d.status.ready_replicas,
                d.status.available_replicas,
                d.status.up_to_date_replicas
            ),
            (Some(1), Some(1), Some(1), Some(1))
        );
        assert_eq!(
            d.status.selector.as_deref(),
            Some("cluster.x-k8s.io/cluster-name=demo,cluster.x-k8s.io/control-plane")
        );
        assert_eq!(
            condition(&d, types::MACHINES_UP_TO_DATE),
            Some(("True", "UpToDate", ""))
        );
        assert_eq!(
            condition(&d, types::ROLLING_OUT),
            Some(("False", "NotRollingOut", ""))
        );

        let mut i = inputs(built(
            false,
            vec![
                machine("v1.34.0", true),
                machine("v1.9.2", true),
                machine("v1.34.0", false),
            ],
        ));
        i.spec_version = "v1.35.0".into();
        let d = decide(&i);
        let versions: Vec<(&str, Option<i32>)> = d
            .status
            .versions
            .iter()
            .map(|v| (v.version.as_str(), v.replicas))
            .collect();
        assert_eq!(versions, vec![("v1.9.2", Some(1)), ("v1.34.0", Some(2))]);
        assert_eq!(d.status.version.as_deref(), Some("v1.9.2"));
        assert_eq!(
            (
                d.status.replicas,
                d.status.ready_replicas,
                d.status.up_to_date_replicas
            ),
            (Some(3), Some(2), Some(0))
        );
        assert_eq!(
            condition(&d, types::MACHINES_UP_TO_DATE),
            Some((
                "False",
                "UpgradeNotSupported",
                "in-place upgrade from v1.34.0 to v1.35.0 is not supported; re-create the control plane"
            ))
        );
        assert_eq!(
            condition(&d, types::ROLLING_OUT),
            Some((
                "True",
                "RollingOut",
                "rolling out version v1.35.0 (current: v1.9.2)"
            ))
        );
        assert!(
            d.events
                .iter()
                .any(|e| e.warning && e.reason == "UpgradeNotSupported")
        );

        // No Machine yet: no MachinesUpToDate, no versions.
        let d = decide(&inputs(built(false, vec![])));
        assert_eq!(condition(&d, types::MACHINES_UP_TO_DATE), None);
        assert!(d.status.versions.is_empty());
        assert_eq!(d.status.replicas, Some(0));
    }

    /// [KKC-01]–[KKC-03]: the owner and certificate conditions are written as observed; a
    /// repeated decision is quiet.
    #[test]
    fn kkc01_03_owner_and_certificates_and_quiet_repeat() {
        let mut i = inputs(Progress::Blocked(Verdict::new(
            Status::False,
            "CertificatesUnavailable",
            "missing data for key tls.crt",
        )));
        i.certificates = Some(Verdict::new(
            Status::False,
            "CertificatesUnavailable",
            "missing data for key tls.crt",
        ));
        let d = decide(&i);
        assert_eq!(
            condition(&d, types::OWNER),
            Some(("True", "OwnerClusterResolved", "owner Cluster resolved"))
        );
        assert_eq!(
            condition(&d, types::CERTIFICATES),
            Some((
                "False",
                "CertificatesUnavailable",
                "missing data for key tls.crt"
            ))
        );
        assert!(
            d.events
                .iter()
                .any(|e| e.warning && e.reason == "CertificatesUnavailable")
        );
        i.previous = d.status.clone();
        let again = decide(&i);
        assert!(again.events.is_empty());
        assert_eq!(again.status, d.status);
    }

    /// [KKC-01], [KKC-02]: every owner lookup outcome.
    #[rstest]
    #[case::found(Owner::Found(Box::new(crate::capi::Cluster::new("c", crate::capi::ClusterSpec::default()))), ("True", "OwnerClusterResolved", "owner Cluster resolved"))]
    #[case::not_set(Owner::NotSet, ("False", "OwnerClusterNotSet", "waiting for owner Cluster reference to be set"))]
    #[case::not_found(Owner::NotFound("Cluster ns/c not found".into()), ("False", "OwnerClusterNotFound", "Cluster ns/c not found"))]
    #[case::get_failed(Owner::GetFailed("boom".into()), ("False", "OwnerClusterGetFailed", "get owner Cluster: boom"))]
    fn kkc02_owner_rows(#[case] owner: Owner, #[case] expected: (&str, &str, &str)) {
        let verdict = owner_verdict(&owner);
        assert_eq!(
            (
                verdict.status.as_str(),
                verdict.reason.as_str(),
                verdict.message.as_str()
            ),
            expected
        );
        // Without an owner, Ready carries the same reason and message ([KK-01]).
        let mut i = inputs(Progress::Blocked(verdict.clone()));
        i.owner = verdict;
        let d = decide(&i);
        assert_eq!(condition(&d, types::OWNER), Some(expected));
        if expected.0 == "False" {
            assert_eq!(condition(&d, types::READY), Some(expected));
        }
    }

    /// [KKC-05], [KKC-10], [KK-18]: while the Machine goes, Ready and Available say Deleting.
    #[test]
    fn kkc05_kkc10_deleting() {
        use crate::reconciler::conditions::{put_deleting, waiting_for_deletion};
        let mut conditions = decide(&inputs(built(true, vec![machine("v1.34.0", true)])))
            .status
            .conditions;
        let waiting = waiting_for_deletion(
            "WaitingForMachineDeletion",
            "Machine",
            "ns",
            "c-control-plane-0",
        );
        put_deleting(
            &mut conditions,
            &waiting,
            "control plane is being deleted",
            &[types::AVAILABLE],
            4,
            &time(),
        );
        let d = Decision {
            status: Kany8sKubeadmControlPlaneStatus {
                conditions,
                ..Default::default()
            },
            endpoint: None,
            events: Vec::new(),
        };
        assert_eq!(
            condition(&d, types::DELETING),
            Some((
                "True",
                "WaitingForMachineDeletion",
                "waiting for Machine ns/c-control-plane-0 to be deleted"
            ))
        );
        assert_eq!(
            condition(&d, types::READY),
            Some(("False", "Deleting", "control plane is being deleted"))
        );
        assert_eq!(
            condition(&d, types::AVAILABLE),
            Some(("False", "Deleting", "control plane is being deleted"))
        );
        assert_eq!(
            condition(&d, types::PAUSED),
            Some(("False", "NotPaused", ""))
        );
    }

    fn arbitrary_progress() -> impl proptest::strategy::Strategy<Value = Progress> {
        use proptest::prelude::*;
        let machine = (
            proptest::option::of(prop_oneof![
                Just("v1.34.0"),
                Just("v1.33.1"),
                Just("v1.35.0")
            ]),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(version, ready, available)| Machine {
                version: version.map(str::to_string),
                ready,
                available,
            });
        prop_oneof![
            prop_oneof![
                Just("CertificatesUnavailable"),
                Just("WaitingForInfrastructureEndpoint"),
                Just("MachineFailed"),
            ]
            .prop_map(|r| Progress::Blocked(Verdict::new(
                Status::False,
                r,
                format!("{r} happened")
            ))),
            (any::<bool>(), proptest::collection::vec(machine, 0..3)).prop_map(
                |(remote_connection_probe, machines)| Progress::Built {
                    remote_connection_probe,
                    machines,
                }
            ),
        ]
    }

    proptest::proptest! {
        /// Random passes, each decided on the previous status: initialization never flips
        /// back and never comes without the endpoint; Ready=True only when initialized;
        /// Creating exactly while not ready; versions, once written, are never removed; a
        /// repeated pass writes the same status and emits nothing.
        #[test]
        fn kk14_decide_invariants(steps in proptest::collection::vec((arbitrary_progress(), proptest::prelude::any::<bool>()), 1..10)) {
            let mut previous = Kany8sKubeadmControlPlaneStatus::default();
            let mut endpoint_set = false;
            for (progress, endpoint) in steps {
                endpoint_set |= endpoint;
                let mut i = inputs(progress);
                i.endpoint_set = endpoint_set;
                i.previous = previous.clone();
                let d = decide(&i);
                let was = previous.initialization.is_some();
                let now = d.status.initialization.is_some();
                proptest::prop_assert!(!was || now, "initialization flipped back");
                proptest::prop_assert!(!now || endpoint_set, "initialized without an endpoint");
                let ready = condition(&d, types::READY).map(|c| c.0 == "True");
                proptest::prop_assert!(ready != Some(true) || now);
                proptest::prop_assert_eq!(condition(&d, types::CREATING).is_some(), ready == Some(false));
                proptest::prop_assert!(previous.versions.is_empty() || !d.status.versions.is_empty());
                i.previous = d.status.clone();
                let again = decide(&i);
                proptest::prop_assert_eq!(&again.status, &d.status);
                proptest::prop_assert!(again.events.is_empty());
                previous = d.status;
            }
        }
    }
}
