//! The kubeconfig step of the Kany8sControlPlane reconcile, decided purely (provider.md §4.5,
//! [KC-01]–[KC-14], rows [CPC-34]–[CPC-46]): from the owner Cluster, the backend's
//! `status.kubeconfigSecretRef` and the Secrets read, the `KubeconfigSecretReconciled` verdict and
//! the `<cluster>-kubeconfig` Secret to write, if any. The reconcile reads only what
//! [`Plan::reads`] asks for, in that order, then writes what [`decide`] returns.

use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};

use super::decide::KubeconfigOutcome;
use crate::capi::CLUSTER_NAME_LABEL;
use crate::kubeconfig;
use crate::owner::Owner;
use crate::reconciler::conditions::{Status, Verdict, reasons};

/// Who asks: the control plane's namespace, name and uid.
#[derive(Clone, Debug)]
pub struct ControlPlane {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// What the step reads, decided before any read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Nothing to read: the verdict is known (no owner Cluster, a cross-namespace source).
    Done(Verdict),
    /// Option A: read `<cluster>-kubeconfig` only.
    Provided { target: String },
    /// Option B: read the source, then (when it is usable) the target.
    Copy { source: String, target: String },
}

impl Plan {
    /// The Secrets (namespace, name) this plan reads, for the Secret index ([KC-13]).
    pub fn reads(&self, namespace: &str) -> Vec<(String, String)> {
        match self {
            Plan::Done(_) => Vec::new(),
            Plan::Provided { target } => vec![(namespace.to_string(), target.clone())],
            Plan::Copy { source, target } => vec![
                (namespace.to_string(), target.clone()),
                (namespace.to_string(), source.clone()),
            ],
        }
    }
}

/// What a finished kubeconfig step read and decided: while the plan, the Cluster and the
/// resourceVersions of the Secrets it reads are the same, the verdict is the same and nothing
/// needs writing, so the step is not run again ([KC-13] re-triggers on every change of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Memo {
    pub uid: String,
    pub plan: Plan,
    pub cluster: String,
    /// The resourceVersion of each Secret of [`Plan::reads`], in that order (`None`: absent).
    pub versions: Vec<Option<String>>,
    pub verdict: Verdict,
}

impl Memo {
    /// The remembered verdict, if it still holds for `uid`, `plan`, `cluster` and `versions`.
    pub fn verdict_for(
        &self,
        uid: &str,
        plan: &Plan,
        cluster: &str,
        versions: &[Option<String>],
    ) -> Option<&Verdict> {
        (self.uid == uid
            && &self.plan == plan
            && self.cluster == cluster
            && self.versions == versions)
            .then_some(&self.verdict)
    }
}

/// The Secrets whose changes re-trigger the control plane ([KC-13]): what the plan reads, and
/// the target even when the step stops before reading (a cross-namespace source); `None` while
/// there is no owner Cluster (the index keeps what it had).
pub fn dependencies(
    plan: &Plan,
    cp: &ControlPlane,
    owner: &Owner,
) -> Option<Vec<(String, String)>> {
    use kube::ResourceExt;
    let cluster = owner.cluster()?;
    let mut reads = plan.reads(&cp.namespace);
    if let Plan::Done(_) = plan {
        reads.push((
            cp.namespace.clone(),
            format!("{}-kubeconfig", cluster.name_any()),
        ));
    }
    Some(reads)
}

/// [KC-01]–[KC-04]: what to read, from the owner and the backend's reference (name, namespace).
pub fn plan(
    cp: &ControlPlane,
    owner: &Owner,
    reference: Option<&(String, Option<String>)>,
) -> Plan {
    use kube::ResourceExt;
    let cluster = match owner {
        Owner::NotSet => {
            return Plan::Done(Verdict::new(
                Status::False,
                reasons::OWNER_CLUSTER_NOT_SET,
                "waiting for owner Cluster reference to be set",
            ));
        }
        Owner::NotFound(e) => {
            return Plan::Done(Verdict::new(
                Status::False,
                reasons::OWNER_CLUSTER_NOT_FOUND,
                format!("owner Cluster not found: {e}"),
            ));
        }
        Owner::GetFailed(e) => {
            return Plan::Done(Verdict::new(
                Status::False,
                reasons::OWNER_CLUSTER_GET_FAILED,
                format!("get owner Cluster: {e}"),
            ));
        }
        Owner::Found(cluster) => cluster,
    };
    let target = format!("{}-kubeconfig", cluster.name_any());
    let Some((source_name, source_namespace)) = reference else {
        return Plan::Provided { target };
    };
    let source_namespace = source_namespace
        .clone()
        .unwrap_or_else(|| cp.namespace.clone());
    if source_namespace != cp.namespace {
        return Plan::Done(Verdict::new(
            Status::False,
            reasons::KUBECONFIG_SOURCE_CROSS_NAMESPACE,
            format!(
                "cross-namespace source secret {source_namespace}/{source_name} is not allowed (control plane namespace: {})",
                cp.namespace
            ),
        ));
    }
    if *source_name == target {
        return Plan::Provided { target };
    }
    Plan::Copy {
        source: source_name.clone(),
        target,
    }
}

/// [KC-05]–[KC-07]: whether a source Secret (as read) can be copied; `Err` is the verdict.
pub fn usable_source(
    cp: &ControlPlane,
    source: &str,
    read: &Result<Option<Secret>, String>,
) -> Result<Vec<u8>, Verdict> {
    let key = format!("{}/{source}", cp.namespace);
    let secret = match read {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(Verdict::new(
                Status::False,
                reasons::KUBECONFIG_SOURCE_NOT_FOUND,
                format!("waiting for source secret {key} to be created"),
            ));
        }
        Err(e) => {
            return Err(Verdict::new(
                Status::False,
                reasons::KUBECONFIG_SOURCE_GET_FAILED,
                format!("get source secret {key}: {e}"),
            ));
        }
    };
    let Some(value) = kubeconfig::value_of(secret) else {
        return Err(Verdict::new(
            Status::False,
            reasons::KUBECONFIG_SOURCE_DATA_MISSING,
            format!("source secret {key} missing data[\"value\"]"),
        ));
    };
    if let Err(detail) = kubeconfig::validate(value) {
        return Err(Verdict::new(
            Status::False,
            reasons::INVALID_KUBECONFIG,
            format!("source secret {key} contains invalid kubeconfig: {detail}"),
        ));
    }
    Ok(value.to_vec())
}

/// [KC-11], [KC-12]: Option A, the Secret the backend provides.
pub fn provided(
    cp: &ControlPlane,
    cluster: &str,
    target: &str,
    secret: Option<&Secret>,
) -> Verdict {
    let key = format!("{}/{target}", cp.namespace);
    match secret {
        None => Verdict::new(
            Status::False,
            reasons::KUBECONFIG_SECRET_NOT_FOUND,
            format!("waiting for secret {key} to be provided by the backend"),
        ),
        Some(s) if !kubeconfig::compliant(s, cluster) => Verdict::new(
            Status::False,
            reasons::KUBECONFIG_NOT_COMPLIANT,
            format!(
                "secret {key} must have type {} and label {CLUSTER_NAME_LABEL}={cluster}",
                kubeconfig::CLUSTER_SECRET_TYPE
            ),
        ),
        Some(s) => match kubeconfig::value_of(s).map(kubeconfig::validate) {
            None => Verdict::new(
                Status::False,
                reasons::INVALID_KUBECONFIG,
                format!("secret {key} contains invalid kubeconfig: kubeconfig is empty"),
            ),
            Some(Err(detail)) => Verdict::new(
                Status::False,
                reasons::INVALID_KUBECONFIG,
                format!("secret {key} contains invalid kubeconfig: {detail}"),
            ),
            Some(Ok(())) => Verdict::new(
                Status::True,
                reasons::PROVIDED_BY_BACKEND,
                format!("kubeconfig secret {key} is provided by the backend"),
            ),
        },
    }
}

/// [KC-08]–[KC-10]: Option B, copying `value` into the target: the verdict and, unless the
/// target already holds it as the control plane's compliant Secret, the body to apply.
pub fn copy(
    cp: &ControlPlane,
    cluster: &str,
    target_name: &str,
    value: &[u8],
    target: Option<&Secret>,
) -> (Verdict, Option<Value>) {
    if let Some(target) = target
        && let Some(detail) = kubeconfig::ownership_conflict(target, &cp.uid)
    {
        return (
            Verdict::new(
                Status::False,
                reasons::KUBECONFIG_OWNERSHIP_CONFLICT,
                format!(
                    "secret {}/{target_name} {detail}; refusing to overwrite",
                    cp.namespace
                ),
            ),
            None,
        );
    }
    let in_place = target.is_some_and(|t| {
        kubeconfig::value_of(t) == Some(value)
            && kubeconfig::compliant(t, cluster)
            && t.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == cp.uid && o.controller == Some(true))
    });
    let write = (!in_place).then(|| {
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": target_name, "namespace": cp.namespace,
                "labels": {CLUSTER_NAME_LABEL: cluster},
                "ownerReferences": [{"apiVersion": "controlplane.cluster.x-k8s.io/v1alpha1", "kind": "Kany8sControlPlane",
                    "name": cp.name, "uid": cp.uid, "controller": true, "blockOwnerDeletion": true}]},
            "type": kubeconfig::CLUSTER_SECRET_TYPE,
            "data": {"value": k8s_openapi::ByteString(value.to_vec())}})
    });
    (
        Verdict::new(
            Status::True,
            reasons::RECONCILED,
            "kubeconfig secret reconciled",
        ),
        write,
    )
}

/// The step's outcome for the decide step: Option B when the backend names a source.
pub fn outcome(condition: Verdict, copied: bool) -> KubeconfigOutcome {
    KubeconfigOutcome { condition, copied }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capi::Cluster;

    /// [KC-13]: a remembered verdict holds only for the same control plane, plan, Cluster and
    /// Secret versions; any change (a rotated source, a touched target, a new Cluster) runs the
    /// step again.
    #[test]
    fn kc13_memo_holds_only_while_inputs_are_unchanged() {
        let plan = Plan::Copy {
            source: "src".into(),
            target: "c-kubeconfig".into(),
        };
        let versions = vec![Some("7".to_string()), Some("3".to_string())];
        let memo = Memo {
            uid: "u".into(),
            plan: plan.clone(),
            cluster: "c".into(),
            versions: versions.clone(),
            verdict: Verdict::new(Status::True, "Reconciled", ""),
        };
        assert!(memo.verdict_for("u", &plan, "c", &versions).is_some());
        let rotated = vec![Some("7".to_string()), Some("4".to_string())];
        assert!(memo.verdict_for("u", &plan, "c", &rotated).is_none());
        let deleted = vec![None, Some("3".to_string())];
        assert!(memo.verdict_for("u", &plan, "c", &deleted).is_none());
        assert!(memo.verdict_for("u2", &plan, "c", &versions).is_none());
        assert!(memo.verdict_for("u", &plan, "other", &versions).is_none());
        let provided = Plan::Provided {
            target: "c-kubeconfig".into(),
        };
        assert!(memo.verdict_for("u", &provided, "c", &versions).is_none());
    }

    fn cp() -> ControlPlane {
        ControlPlane {
            namespace: "ns".into(),
            name: "cp".into(),
            uid: "u1".into(),
        }
    }

    fn owner() -> Owner {
        let cluster: Cluster = serde_json::from_value(json!({
            "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
            "metadata": {"name": "demo", "namespace": "ns", "uid": "c1"}, "spec": {}}))
        .unwrap();
        Owner::Found(Box::new(cluster))
    }

    fn secret(value: Option<&str>, compliant: bool, owner_uid: Option<&str>) -> Secret {
        let mut s = json!({"metadata": {"name": "demo-kubeconfig", "namespace": "ns"}});
        if let Some(v) = value {
            s["data"] = json!({"value": k8s_openapi::ByteString(v.as_bytes().to_vec())});
        }
        if compliant {
            s["type"] = json!(kubeconfig::CLUSTER_SECRET_TYPE);
            s["metadata"]["labels"] = json!({CLUSTER_NAME_LABEL: "demo"});
        }
        if let Some(uid) = owner_uid {
            s["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Kany8sControlPlane",
                "name": "cp", "uid": uid, "controller": true}]);
        }
        serde_json::from_value(s).unwrap()
    }

    const CONFIG: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://demo.kany8s.test:6443\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n";

    /// [CPC-36], [CPC-37], [CPC-38], [CPC-39]: verdicts known before any read.
    #[test]
    fn cpc36_to_39_plans_without_reads() {
        let reason = |p: Plan| match p {
            Plan::Done(v) => v.reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            reason(plan(&cp(), &Owner::NotSet, None)),
            reasons::OWNER_CLUSTER_NOT_SET
        );
        assert_eq!(
            reason(plan(&cp(), &Owner::NotFound("x".into()), None)),
            reasons::OWNER_CLUSTER_NOT_FOUND
        );
        assert_eq!(
            reason(plan(&cp(), &Owner::GetFailed("x".into()), None)),
            reasons::OWNER_CLUSTER_GET_FAILED
        );
        let cross = plan(&cp(), &owner(), Some(&("src".into(), Some("other".into()))));
        assert_eq!(
            cross,
            Plan::Done(Verdict::new(
                Status::False,
                reasons::KUBECONFIG_SOURCE_CROSS_NAMESPACE,
                "cross-namespace source secret other/src is not allowed (control plane namespace: ns)"
            ))
        );
        assert_eq!(
            plan(&cp(), &owner(), None),
            Plan::Provided {
                target: "demo-kubeconfig".into()
            }
        );
        // A source named like the target is Option A.
        assert_eq!(
            plan(&cp(), &owner(), Some(&("demo-kubeconfig".into(), None))),
            Plan::Provided {
                target: "demo-kubeconfig".into()
            }
        );
        assert_eq!(
            plan(&cp(), &owner(), Some(&("src".into(), None))).reads("ns"),
            vec![
                ("ns".into(), "demo-kubeconfig".into()),
                ("ns".into(), "src".into())
            ]
        );
    }

    /// [CPC-40]–[CPC-43]: the source Secret's verdicts.
    #[test]
    fn cpc40_to_43_source_verdicts() {
        let reason =
            |r: Result<Option<Secret>, String>| usable_source(&cp(), "src", &r).unwrap_err().reason;
        assert_eq!(reason(Ok(None)), reasons::KUBECONFIG_SOURCE_NOT_FOUND);
        assert_eq!(
            reason(Err("boom".into())),
            reasons::KUBECONFIG_SOURCE_GET_FAILED
        );
        assert_eq!(
            reason(Ok(Some(secret(None, false, None)))),
            reasons::KUBECONFIG_SOURCE_DATA_MISSING
        );
        assert_eq!(
            reason(Ok(Some(secret(Some("not a kubeconfig"), false, None)))),
            reasons::INVALID_KUBECONFIG
        );
        assert!(usable_source(&cp(), "src", &Ok(Some(secret(Some(CONFIG), false, None)))).is_ok());
    }

    /// [CPC-34], [CPC-44]: copying writes once, never over a foreign Secret.
    #[test]
    fn cpc34_cpc44_copy() {
        let (verdict, write) = copy(&cp(), "demo", "demo-kubeconfig", CONFIG.as_bytes(), None);
        assert_eq!(verdict.reason, reasons::RECONCILED);
        let body = write.unwrap();
        assert_eq!(body["type"], kubeconfig::CLUSTER_SECRET_TYPE);
        assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "u1");
        let ours = secret(Some(CONFIG), true, Some("u1"));
        let (_, write) = copy(
            &cp(),
            "demo",
            "demo-kubeconfig",
            CONFIG.as_bytes(),
            Some(&ours),
        );
        assert!(write.is_none(), "in place: no write");
        // Controlled by another object, or of another type: never overwritten.
        for foreign in [
            secret(Some(CONFIG), true, Some("u2")),
            secret(Some(CONFIG), false, None),
        ] {
            let (verdict, write) = copy(
                &cp(),
                "demo",
                "demo-kubeconfig",
                CONFIG.as_bytes(),
                Some(&foreign),
            );
            assert_eq!(verdict.reason, reasons::KUBECONFIG_OWNERSHIP_CONFLICT);
            assert!(write.is_none());
        }
        // A compliant Secret nobody controls is adopted: written with our controller reference.
        let unowned = secret(Some(CONFIG), true, None);
        let (verdict, write) = copy(
            &cp(),
            "demo",
            "demo-kubeconfig",
            CONFIG.as_bytes(),
            Some(&unowned),
        );
        assert_eq!(verdict.reason, reasons::RECONCILED);
        assert!(write.is_some());
    }

    /// [CPC-35], [CPC-43], [CPC-45], [CPC-46]: Option A's verdicts.
    #[test]
    fn cpc35_cpc45_cpc46_provided() {
        let reason =
            |s: Option<Secret>| provided(&cp(), "demo", "demo-kubeconfig", s.as_ref()).reason;
        assert_eq!(reason(None), reasons::KUBECONFIG_SECRET_NOT_FOUND);
        assert_eq!(
            reason(Some(secret(Some(CONFIG), false, None))),
            reasons::KUBECONFIG_NOT_COMPLIANT
        );
        assert_eq!(
            reason(Some(secret(Some("- no"), true, None))),
            reasons::INVALID_KUBECONFIG
        );
        assert_eq!(
            reason(Some(secret(Some(CONFIG), true, None))),
            reasons::PROVIDED_BY_BACKEND
        );
    }
}
