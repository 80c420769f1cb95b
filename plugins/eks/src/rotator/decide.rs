//! The rotator's decisions, pure (no client in scope): what blocks a cluster ([ROT-03]), whether
//! the token in the probe Secret can stay ([ROT-08]), the two Secret bodies ([ROT-05]–[ROT-07]),
//! the takeover rules ([PLG-06]), the events and the requeue. [`super::reconcile`] reads what
//! these functions take and writes what they return.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use serde_json::{Value, json};

use super::reasons;
use crate::ROTATOR;
use crate::ack::{self, AckCluster};
use crate::cluster::Cluster;
use crate::events::Notice;
use crate::keys;
use crate::kubeconfig::{self, Target};
use crate::names::{self, Names};
use crate::schedule::Policy;
use crate::token::Token;

/// What the ACK lookup found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AckLookup {
    /// Discovery does not list `eks.services.k8s.aws/v1alpha1` `Cluster` ([PLG-05]).
    ApiMissing,
    /// The GET was answered "no such resource" although discovery listed it.
    NotServed,
    NotFound,
    Found(AckCluster),
}

/// A reconcile that stops early: its event (if any) and when to look again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stop {
    pub notice: Notice,
    pub requeue: Duration,
}

/// Everything about one cluster that the Secrets are built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    pub namespace: String,
    pub names: Names,
    pub region: String,
    pub endpoint: String,
    pub certificate_authority: String,
    pub cluster_uid: String,
    pub takeover: bool,
}

impl Prepared {
    pub fn probe_name(&self) -> String {
        format!("{}-kubeconfig", self.names.capi)
    }

    pub fn exec_name(&self) -> String {
        format!("{}-kubeconfig-exec", self.names.capi)
    }

    fn target(&self) -> Target<'_> {
        Target {
            capi: &self.names.capi,
            server: &self.endpoint,
            certificate_authority: &self.certificate_authority,
        }
    }
}

/// [ROT-02]: the Cluster is to be reconciled at all (opted in, not being deleted).
pub fn wanted(cluster: &Cluster) -> bool {
    keys::rotator_enabled(cluster.metadata.annotations.as_ref())
        && cluster.metadata.deletion_timestamp.is_none()
}

fn api_missing(cause: &str, policy: &Policy) -> Stop {
    Stop {
        notice: Notice::warning(
            reasons::PREREQUISITE_API_MISSING,
            format!(
                "ACK EKS API ({}/{} {}) is not available; cause: {cause}; action: install the ACK EKS controller and its CRDs, or remove the {} annotation from the Cluster",
                ack::GROUP,
                ack::VERSION,
                ack::KIND,
                keys::ROTATOR_OPT_IN
            ),
        ),
        requeue: policy.with_defaults().failure_backoff,
    }
}

/// [ROT-03] steps 1–4 and [ROT-05]'s CA check: from the Cluster and the ACK lookup, either
/// what the Secrets are built from or why not (event and failure backoff).
pub fn prepare(cluster: &Cluster, lookup: &AckLookup, policy: &Policy) -> Result<Prepared, Stop> {
    let backoff = policy.with_defaults().failure_backoff;
    let names = names::resolve(cluster);
    let namespace = cluster.namespace().unwrap_or_default();
    let ack = match lookup {
        AckLookup::ApiMissing => {
            return Err(api_missing("discovery does not list the resource", policy));
        }
        AckLookup::NotServed => {
            return Err(api_missing(
                "the API server answered the GET with no such resource",
                policy,
            ));
        }
        AckLookup::NotFound => {
            return Err(Stop {
                notice: Notice::normal(
                    reasons::ACK_CLUSTER_NOT_FOUND,
                    format!("waiting for ACK EKS Cluster {namespace}/{}", names.ack),
                ),
                requeue: backoff,
            });
        }
        AckLookup::Found(ack) => ack,
    };
    if !ack.ready() {
        return Err(Stop {
            notice: Notice::normal(
                reasons::ACK_CLUSTER_NOT_READY,
                format!(
                    "waiting for ACK status fields endpoint/CA on {namespace}/{}",
                    names.ack
                ),
            ),
            requeue: backoff,
        });
    }
    let Some(region) = names::region(cluster.metadata.annotations.as_ref(), ack) else {
        return Err(Stop {
            notice: Notice::warning(reasons::REGION_NOT_RESOLVED, names::region_sources()),
            requeue: backoff,
        });
    };
    if let Err(error) = kubeconfig::decode_certificate_authority(&ack.certificate_authority) {
        return Err(Stop {
            notice: Notice::warning(
                reasons::INVALID_CERTIFICATE_AUTHORITY,
                format!(
                    "ACK EKS Cluster {namespace}/{} status.certificateAuthority.data: {error}",
                    names.ack
                ),
            ),
            requeue: backoff,
        });
    }
    Ok(Prepared {
        namespace,
        names,
        region,
        endpoint: ack.endpoint.clone(),
        certificate_authority: ack.certificate_authority.clone(),
        cluster_uid: cluster.uid().unwrap_or_default(),
        takeover: keys::takeover_allowed(cluster.metadata.annotations.as_ref()),
    })
}

fn conflict(namespace: &str, name: &str) -> Notice {
    Notice::warning(
        reasons::SECRET_OWNERSHIP_CONFLICT,
        format!("secret {namespace}/{name} exists and is not managed by {ROTATOR}"),
    )
}

/// What to do about the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenPlan {
    /// [ROT-06]: the probe Secret belongs to someone else: nothing is written.
    Conflict(Stop),
    /// The managed probe Secret holds a token for this region and EKS name that is not due.
    Reuse(Token),
    Generate,
}

/// The expiration annotation of a managed Secret.
fn expiration_of(secret: &Secret) -> Option<SystemTime> {
    let text = keys::trimmed(secret.metadata.annotations.as_ref(), keys::TOKEN_EXPIRATION);
    let timestamp: k8s_openapi::jiff::Timestamp = text.parse().ok()?;
    Some(SystemTime::from(timestamp))
}

/// [ROT-06], [PLG-06], [ROT-08]: the probe Secret decides whether a token is needed.
pub fn plan_token(
    prepared: &Prepared,
    probe: Option<&Secret>,
    now: SystemTime,
    policy: &Policy,
) -> TokenPlan {
    let Some(probe) = probe else {
        return TokenPlan::Generate;
    };
    let annotations = probe.metadata.annotations.as_ref();
    if !keys::managed_by(annotations, ROTATOR) {
        if prepared.takeover {
            return TokenPlan::Generate;
        }
        return TokenPlan::Conflict(Stop {
            notice: conflict(&prepared.namespace, &prepared.probe_name()),
            requeue: policy.with_defaults().max_refresh,
        });
    }
    let same_identity = keys::trimmed(annotations, keys::REGION) == prepared.region
        && keys::trimmed(annotations, keys::CLUSTER_NAME) == prepared.names.eks;
    let token = probe
        .data
        .as_ref()
        .and_then(|d| d.get("value"))
        .and_then(|v| kubeconfig::embedded_token(&v.0))
        // Only a token this rotator could have made is worth keeping.
        .filter(|t| t.starts_with(crate::token::TOKEN_PREFIX));
    match (same_identity, token, expiration_of(probe)) {
        (true, Some(value), Some(expiration)) if policy.refresh_at(expiration) > now => {
            TokenPlan::Reuse(Token { value, expiration })
        }
        _ => TokenPlan::Generate,
    }
}

/// [ROT-06]: a token failure's event and backoff.
pub fn token_failed(error: &crate::token::TokenError, policy: &Policy) -> Stop {
    Stop {
        notice: Notice::warning(
            reasons::TOKEN_GENERATION_FAILED,
            format!("failed to generate EKS token: {error}"),
        ),
        requeue: policy.with_defaults().failure_backoff,
    }
}

/// One Secret as the rotator wants it.
#[derive(Clone, PartialEq, Eq)]
pub struct DesiredSecret {
    pub name: String,
    pub annotations: BTreeMap<String, String>,
    /// The kubeconfig (`data.value`). Secret: never logged.
    pub value: String,
}

impl std::fmt::Debug for DesiredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesiredSecret")
            .field("name", &self.name)
            .field("annotations", &self.annotations)
            .field("value", &"** redacted **")
            .finish()
    }
}

/// [ROT-06], [ROT-07]: the server-side apply body of `desired`: type, cluster-name label, the
/// rotator's annotations, `data.value` and a non-controller ownerReference to the Cluster.
pub fn apply_body(prepared: &Prepared, desired: &DesiredSecret) -> Value {
    use base64::Engine;
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": desired.name,
            "namespace": prepared.namespace,
            "labels": {keys::CAPI_CLUSTER_NAME: prepared.names.capi},
            "annotations": desired.annotations,
            "ownerReferences": [{
                "apiVersion": "cluster.x-k8s.io/v1beta2",
                "kind": "Cluster",
                "name": prepared.names.capi,
                "uid": prepared.cluster_uid,
            }],
        },
        "type": keys::CLUSTER_SECRET_TYPE,
        "data": {"value": base64::engine::general_purpose::STANDARD.encode(&desired.value)},
    })
}

/// Whether `existing` already carries everything [`apply_body`] would write.
pub fn up_to_date(existing: &Secret, prepared: &Prepared, desired: &DesiredSecret) -> bool {
    let metadata = &existing.metadata;
    let label_ok =
        keys::trimmed(metadata.labels.as_ref(), keys::CAPI_CLUSTER_NAME) == prepared.names.capi;
    let annotations_ok = desired.annotations.iter().all(|(k, v)| {
        metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(k))
            .is_some_and(|have| have == v)
    });
    let owner_ok = metadata.owner_references.iter().flatten().any(|o| {
        o.uid == prepared.cluster_uid
            && o.kind == "Cluster"
            && o.controller != Some(true)
            && o.api_version.starts_with("cluster.x-k8s.io/")
    });
    let value_ok = existing
        .data
        .as_ref()
        .and_then(|d| d.get("value"))
        .is_some_and(|v| v.0 == desired.value.as_bytes());
    label_ok
        && annotations_ok
        && owner_ok
        && value_ok
        && existing.type_.as_deref() == Some(keys::CLUSTER_SECRET_TYPE)
}

/// [ROT-05]–[ROT-07]: the probe and exec Secrets for `token`.
pub fn desired_secrets(
    prepared: &Prepared,
    token: &Token,
) -> Result<(DesiredSecret, DesiredSecret), kubeconfig::KubeconfigError> {
    let common = BTreeMap::from([
        (keys::MANAGED_BY.to_string(), ROTATOR.to_string()),
        (keys::REGION.to_string(), prepared.region.clone()),
        (keys::CLUSTER_NAME.to_string(), prepared.names.eks.clone()),
    ]);
    let mut probe_annotations = common.clone();
    probe_annotations.insert(
        keys::TOKEN_EXPIRATION.to_string(),
        rfc3339(token.expiration),
    );
    let probe = DesiredSecret {
        name: prepared.probe_name(),
        annotations: probe_annotations,
        value: kubeconfig::probe(&prepared.target(), &token.value)?,
    };
    let exec = DesiredSecret {
        name: prepared.exec_name(),
        annotations: common,
        value: kubeconfig::exec(&prepared.target(), &prepared.region, &prepared.names.eks)?,
    };
    Ok((probe, exec))
}

/// RFC 3339 at second precision in UTC (`2026-01-02T03:04:05Z`).
pub fn rfc3339(at: SystemTime) -> String {
    k8s_openapi::jiff::Timestamp::try_from(at)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The outcome of one full pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Secrets to server-side apply, in order (probe first).
    pub writes: Vec<DesiredSecret>,
    pub notices: Vec<Notice>,
    /// Resources left untouched because another owner manages them (metric label).
    pub conflicts: Vec<&'static str>,
    pub requeue: Duration,
}

/// How one existing Secret is treated ([PLG-06]).
fn treat(
    prepared: &Prepared,
    existing: Option<&Secret>,
    desired: DesiredSecret,
    decision: &mut Decision,
) {
    let Some(existing) = existing else {
        decision.writes.push(desired);
        return;
    };
    if keys::managed_by(existing.metadata.annotations.as_ref(), ROTATOR) {
        if !up_to_date(existing, prepared, &desired) {
            decision.writes.push(desired);
        }
        return;
    }
    if prepared.takeover {
        decision.notices.push(Notice::normal(
            reasons::SECRET_TAKEOVER_APPLIED,
            format!(
                "secret {}/{} was not managed by {ROTATOR}; taken over as {} allows",
                prepared.namespace,
                desired.name,
                keys::ALLOW_UNMANAGED_TAKEOVER
            ),
        ));
        decision.writes.push(desired);
    } else {
        decision
            .notices
            .push(conflict(&prepared.namespace, &desired.name));
        decision.conflicts.push("Secret");
    }
}

/// [ROT-06], [ROT-07], [ROT-08]: the writes, events and requeue of a pass that has a token.
/// The caller has already stopped on a probe conflict ([`plan_token`]).
pub fn decide(
    prepared: &Prepared,
    token: &Token,
    probe: Option<&Secret>,
    exec: Option<&Secret>,
    now: SystemTime,
    policy: &Policy,
) -> Result<Decision, Stop> {
    let (probe_desired, exec_desired) = desired_secrets(prepared, token).map_err(|error| Stop {
        notice: Notice::warning(
            reasons::INVALID_CERTIFICATE_AUTHORITY,
            format!("building the kubeconfig: {error}"),
        ),
        requeue: policy.with_defaults().failure_backoff,
    })?;
    let mut decision = Decision {
        writes: Vec::new(),
        notices: Vec::new(),
        conflicts: Vec::new(),
        requeue: policy.next(now, Some(token.expiration)),
    };
    treat(prepared, probe, probe_desired, &mut decision);
    treat(prepared, exec, exec_desired, &mut decision);
    if !decision.writes.is_empty() {
        decision.notices.push(Notice::normal(
            reasons::SECRET_SYNCED,
            "kubeconfig secrets reconciled",
        ));
    }
    Ok(decision)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    const CA: &str =
        "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
    }

    fn cluster(extra: &[(&str, &str)]) -> Cluster {
        let mut annotations = vec![(keys::ROTATOR_OPT_IN, "enabled")];
        annotations.extend_from_slice(extra);
        let mut cluster = crate::cluster::sample("ns", "demo", &annotations);
        cluster.metadata.uid = Some("uid-1".into());
        cluster
    }

    fn ready_ack() -> AckCluster {
        AckCluster {
            namespace: "ns".into(),
            name: "demo".into(),
            endpoint: "https://ABC.gr7.eu-west-1.eks.amazonaws.com".into(),
            certificate_authority: CA.into(),
            status_region: "eu-west-1".into(),
            annotations: BTreeMap::new(),
        }
    }

    fn prepared(extra: &[(&str, &str)]) -> Prepared {
        prepare(
            &cluster(extra),
            &AckLookup::Found(ready_ack()),
            &Policy::default(),
        )
        .unwrap()
    }

    fn token(value: &str, expiration: SystemTime) -> Token {
        Token {
            value: value.into(),
            expiration,
        }
    }

    fn secret_from(prepared: &Prepared, desired: &DesiredSecret) -> Secret {
        serde_json::from_value(apply_body(prepared, desired)).unwrap()
    }

    fn unmanaged(name: &str) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                ..ObjectMeta::default()
            },
            type_: Some(keys::CLUSTER_SECRET_TYPE.into()),
            data: Some([("value".to_string(), ByteString(b"user".to_vec()))].into()),
            ..Secret::default()
        }
    }

    /// [ROT-02]: not opted in, or being deleted → not reconciled.
    #[test]
    fn rot02_wanted() {
        assert!(wanted(&cluster(&[])));
        let mut off = cluster(&[]);
        off.metadata.annotations = None;
        assert!(!wanted(&off));
        let mut deleting = cluster(&[]);
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        assert!(!wanted(&deleting));
    }

    /// [ROT-03]: each missing prerequisite has its event and the failure backoff.
    #[test]
    fn rot03_prerequisite_steps() {
        let policy = Policy::default();
        let stop = |lookup: AckLookup, extra: &[(&str, &str)]| {
            prepare(&cluster(extra), &lookup, &policy).unwrap_err()
        };
        let missing = stop(AckLookup::ApiMissing, &[]);
        assert_eq!(missing.notice.reason, "PrerequisiteAPIMissing");
        assert_eq!(missing.notice.severity, crate::events::Severity::Warning);
        assert!(
            missing.notice.message.starts_with(
                "ACK EKS API (eks.services.k8s.aws/v1alpha1 Cluster) is not available; cause: "
            ),
            "{}",
            missing.notice.message
        );
        assert!(missing.notice.message.contains("action: "));
        assert_eq!(missing.requeue, Duration::from_secs(30));
        assert_eq!(
            stop(AckLookup::NotServed, &[]).notice.reason,
            "PrerequisiteAPIMissing"
        );
        let not_found = stop(AckLookup::NotFound, &[(keys::ACK_CLUSTER_NAME, "ack-x")]);
        assert_eq!(
            not_found.notice,
            Notice::normal("ACKClusterNotFound", "waiting for ACK EKS Cluster ns/ack-x")
        );
        let not_ready = stop(
            AckLookup::Found(AckCluster {
                certificate_authority: String::new(),
                ..ready_ack()
            }),
            &[],
        );
        assert_eq!(
            not_ready.notice,
            Notice::normal(
                "ACKClusterNotReady",
                "waiting for ACK status fields endpoint/CA on ns/demo"
            )
        );
        let no_region = stop(
            AckLookup::Found(AckCluster {
                status_region: String::new(),
                ..ready_ack()
            }),
            &[],
        );
        assert_eq!(no_region.notice.reason, "RegionNotResolved");
        assert_eq!(no_region.notice.severity, crate::events::Severity::Warning);
        assert_eq!(no_region.notice.message, crate::names::region_sources());
        let bad_ca = stop(
            AckLookup::Found(AckCluster {
                certificate_authority: "%%%".into(),
                ..ready_ack()
            }),
            &[],
        );
        assert_eq!(bad_ca.notice.reason, "InvalidCertificateAuthority");
        assert!(
            !bad_ca.notice.message.contains("%%%"),
            "{}",
            bad_ca.notice.message
        );
        let short = Policy {
            failure_backoff: Duration::from_secs(7),
            ..Policy::default()
        };
        assert_eq!(
            prepare(&cluster(&[]), &AckLookup::NotFound, &short)
                .unwrap_err()
                .requeue,
            Duration::from_secs(7)
        );
    }

    /// [ROT-03], [PLG-02], [PLG-03]: what a ready ACK Cluster prepares.
    #[test]
    fn rot03_prepared() {
        let prepared = prepared(&[
            (keys::CLUSTER_NAME, "eks-demo"),
            (keys::REGION, "us-east-2"),
        ]);
        assert_eq!(prepared.names.eks, "eks-demo");
        assert_eq!(prepared.region, "us-east-2");
        assert_eq!(prepared.probe_name(), "demo-kubeconfig");
        assert_eq!(prepared.exec_name(), "demo-kubeconfig-exec");
        assert_eq!(prepared.cluster_uid, "uid-1");
        assert!(!prepared.takeover);
    }

    /// [ROT-05], [ROT-06], [ROT-07]: a first pass writes both Secrets with every annotation,
    /// label and owner; then SecretSynced and the [ROT-08] requeue.
    #[test]
    fn rot06_first_pass_writes_both_secrets() {
        let prepared = prepared(&[]);
        let now = at(0);
        let fresh = token("k8s-aws-v1.first", now + Duration::from_secs(14 * 60));
        let decision = decide(&prepared, &fresh, None, None, now, &Policy::default()).unwrap();
        assert_eq!(decision.writes.len(), 2);
        assert_eq!(decision.requeue, Duration::from_secs(9 * 60));
        assert_eq!(
            decision.notices,
            [Notice::normal(
                "SecretSynced",
                "kubeconfig secrets reconciled"
            )]
        );
        let probe = apply_body(&prepared, &decision.writes[0]);
        assert_eq!(probe["metadata"]["name"], "demo-kubeconfig");
        assert_eq!(probe["type"], "cluster.x-k8s.io/secret");
        assert_eq!(
            probe["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"],
            "demo"
        );
        let annotations = &probe["metadata"]["annotations"];
        assert_eq!(
            annotations["eks.kany8s.io/managed-by"],
            "eks-kubeconfig-rotator"
        );
        assert_eq!(annotations["eks.kany8s.io/region"], "eu-west-1");
        assert_eq!(annotations["eks.kany8s.io/cluster-name"], "demo");
        assert_eq!(
            annotations["eks.kany8s.io/token-expiration-rfc3339"],
            "2023-11-14T22:27:20Z"
        );
        assert_eq!(
            probe["metadata"]["ownerReferences"],
            json!([{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "name": "demo", "uid": "uid-1"}])
        );
        let exec = apply_body(&prepared, &decision.writes[1]);
        assert_eq!(exec["metadata"]["name"], "demo-kubeconfig-exec");
        assert!(
            exec["metadata"]["annotations"]
                .get("eks.kany8s.io/token-expiration-rfc3339")
                .is_none()
        );
        assert_eq!(
            exec["metadata"]["annotations"]["eks.kany8s.io/managed-by"],
            "eks-kubeconfig-rotator"
        );
        assert!(!decision.writes[1].value.contains("k8s-aws-v1."));
        assert!(format!("{:?}", decision.writes[0]).contains("redacted"));
        assert!(!format!("{:?}", decision.writes[0]).contains("k8s-aws-v1.first"));
    }

    /// [ROT-08], [ROT-07]: a managed, current probe keeps its token until the refresh point;
    /// a settled pass writes nothing and posts nothing; after the refresh point, or when the
    /// region or EKS name changed, a new token is generated.
    #[test]
    fn rot08_token_reuse_until_due() {
        let prepared = prepared(&[]);
        let policy = Policy::default();
        let issued = at(0);
        let first = token("k8s-aws-v1.first", issued + Duration::from_secs(14 * 60));
        let (probe, exec) = desired_secrets(&prepared, &first).unwrap();
        let (probe, exec) = (
            secret_from(&prepared, &probe),
            secret_from(&prepared, &exec),
        );
        let later = at(60);
        assert_eq!(
            plan_token(&prepared, Some(&probe), later, &policy),
            TokenPlan::Reuse(Token {
                value: "k8s-aws-v1.first".into(),
                expiration: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + 14 * 60),
            })
        );
        let settled = decide(&prepared, &first, Some(&probe), Some(&exec), later, &policy).unwrap();
        assert!(
            settled.writes.is_empty() && settled.notices.is_empty(),
            "{settled:?}"
        );
        assert_eq!(settled.requeue, Duration::from_secs(8 * 60));
        // At the refresh point (expiration − refresh-before) a new token is due.
        assert_eq!(
            plan_token(&prepared, Some(&probe), at(9 * 60), &policy),
            TokenPlan::Generate
        );
        let renewed = token(
            "k8s-aws-v1.second",
            at(9 * 60) + Duration::from_secs(14 * 60),
        );
        let rotated = decide(
            &prepared,
            &renewed,
            Some(&probe),
            Some(&exec),
            at(9 * 60),
            &policy,
        )
        .unwrap();
        assert_eq!(rotated.writes.len(), 1, "only the probe changes");
        assert_eq!(rotated.writes[0].name, "demo-kubeconfig");
        let moved = Prepared {
            region: "us-east-1".into(),
            ..prepared.clone()
        };
        assert_eq!(
            plan_token(&moved, Some(&probe), later, &policy),
            TokenPlan::Generate
        );
        let renamed = Prepared {
            names: Names {
                eks: "other".into(),
                ..prepared.names.clone()
            },
            ..prepared.clone()
        };
        assert_eq!(
            plan_token(&renamed, Some(&probe), later, &policy),
            TokenPlan::Generate
        );
        // A managed Secret whose token was edited by hand gets a new one.
        let mut edited = probe.clone();
        let text = String::from_utf8(edited.data.as_ref().unwrap()["value"].0.clone()).unwrap();
        edited.data.as_mut().unwrap().insert(
            "value".into(),
            ByteString(
                text.replace("k8s-aws-v1.first", "hand-written")
                    .into_bytes(),
            ),
        );
        assert_eq!(
            plan_token(&prepared, Some(&edited), later, &policy),
            TokenPlan::Generate
        );
    }

    /// [PLG-06], [ROT-06]: an unmanaged probe is never written without takeover: Warning,
    /// max-refresh requeue, no token; with takeover it is written with SecretTakeoverApplied.
    #[test]
    fn plg06_probe_takeover() {
        let policy = Policy::default();
        let user = unmanaged("demo-kubeconfig");
        let plain = prepared(&[]);
        let TokenPlan::Conflict(stop) = plan_token(&plain, Some(&user), at(0), &policy) else {
            panic!("no conflict");
        };
        assert_eq!(
            stop.notice,
            Notice::warning(
                "SecretOwnershipConflict",
                "secret ns/demo-kubeconfig exists and is not managed by eks-kubeconfig-rotator"
            )
        );
        assert_eq!(stop.requeue, Duration::from_secs(600));
        let allowed = prepared(&[(keys::ALLOW_UNMANAGED_TAKEOVER, "true")]);
        assert!(allowed.takeover);
        assert_eq!(
            plan_token(&allowed, Some(&user), at(0), &policy),
            TokenPlan::Generate
        );
        let fresh = token("k8s-aws-v1.t", at(14 * 60));
        let decision = decide(&allowed, &fresh, Some(&user), None, at(0), &policy).unwrap();
        assert_eq!(decision.writes.len(), 2);
        assert_eq!(decision.notices[0].reason, "SecretTakeoverApplied");
        assert_eq!(decision.notices[1].reason, "SecretSynced");
        assert!(decision.conflicts.is_empty());
    }

    /// [ROT-07], [PLG-06]: an unmanaged exec Secret is reported (Warning + metric) and the
    /// probe is still written.
    #[test]
    fn rot07_exec_conflict_does_not_stop() {
        let prepared = prepared(&[]);
        let fresh = token("k8s-aws-v1.t", at(14 * 60));
        let user = unmanaged("demo-kubeconfig-exec");
        let decision = decide(
            &prepared,
            &fresh,
            None,
            Some(&user),
            at(0),
            &Policy::default(),
        )
        .unwrap();
        assert_eq!(decision.writes.len(), 1);
        assert_eq!(decision.writes[0].name, "demo-kubeconfig");
        assert_eq!(decision.conflicts, ["Secret"]);
        assert_eq!(decision.notices[0].reason, "SecretOwnershipConflict");
        assert!(
            decision.notices[0]
                .message
                .contains("ns/demo-kubeconfig-exec")
        );
        assert_eq!(decision.notices[1].reason, "SecretSynced");
    }

    /// [PLG-06]: a managed Secret that drifted (label removed, owner removed) is rewritten.
    #[test]
    fn plg06_managed_drift_is_rewritten() {
        let prepared = prepared(&[]);
        let fresh = token("k8s-aws-v1.t", at(14 * 60));
        let (probe, _) = desired_secrets(&prepared, &fresh).unwrap();
        let mut existing = secret_from(&prepared, &probe);
        assert!(up_to_date(&existing, &prepared, &probe));
        existing.metadata.labels = None;
        assert!(!up_to_date(&existing, &prepared, &probe));
        let mut existing = secret_from(&prepared, &probe);
        existing.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "cluster.x-k8s.io/v1beta2".into(),
            kind: "Cluster".into(),
            name: "demo".into(),
            uid: "other-uid".into(),
            ..OwnerReference::default()
        }]);
        assert!(!up_to_date(&existing, &prepared, &probe));
    }

    /// [ROT-06]: a token failure's event and backoff.
    #[test]
    fn rot06_token_failure() {
        let stop = token_failed(
            &crate::token::TokenError::EmptyClusterName,
            &Policy::default(),
        );
        assert_eq!(
            stop.notice,
            Notice::warning(
                "TokenGenerationFailed",
                "failed to generate EKS token: EKS cluster name is empty"
            )
        );
        assert_eq!(stop.requeue, Duration::from_secs(30));
    }
}
