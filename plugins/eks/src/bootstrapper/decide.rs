//! The bootstrapper's decisions, pure (no client in scope): which path a Cluster takes
//! ([KB-01], [KB-06]), what blocks it ([KB-02], [KB-03]), the objects it wants ([KB-04],
//! [KB-05]), how each existing object is treated ([PLG-06]), the Cluster metadata it owns, the
//! rollout restarts, the events and the requeue ([KB-07]). [`super::reconcile`] reads what these
//! functions take and writes what they return.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kube::ResourceExt;
use kube::api::DynamicObject;
use serde_json::{Value, json};

use super::apis::Api;
use super::ec2::Verdict;
use super::flags::Timing;
use super::objects::{self, AckInputs, Aws, Desired, Identity, ObjectNames};
use super::{FINALIZER, keys as kb, reasons};
use crate::BOOTSTRAPPER;
use crate::ack::AckCluster;
use crate::cluster::Cluster;
use crate::events::Notice;
use crate::keys;
use crate::names;

/// Which path a Cluster takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not opted in, or being deleted without the finalizer: nothing to do.
    Ignore,
    /// [KB-06]: being deleted with the finalizer: clean up, then release it.
    Cleanup,
    /// [KB-02]–[KB-05]: opted in and alive.
    Bootstrap,
}

/// [KB-01], [KB-06].
pub fn phase(cluster: &Cluster) -> Phase {
    let finalizer = cluster.finalizers().iter().any(|f| f == FINALIZER);
    if cluster.metadata.deletion_timestamp.is_some() {
        if finalizer {
            Phase::Cleanup
        } else {
            Phase::Ignore
        }
    } else if keys::karpenter_enabled(cluster.metadata.labels.as_ref()) {
        Phase::Bootstrap
    } else {
        Phase::Ignore
    }
}

/// A reconcile that stops early: its event (if any), when to look again, and the resource of
/// an ownership conflict (metric label).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stop {
    pub notice: Option<Notice>,
    pub requeue: Duration,
    pub conflict: Option<&'static str>,
}

impl Stop {
    fn warning(reason: &'static str, message: String, requeue: Duration) -> Self {
        Self {
            notice: Some(Notice::warning(reason, message)),
            requeue,
            conflict: None,
        }
    }

    fn normal(reason: &'static str, message: String, requeue: Duration) -> Self {
        Self {
            notice: Some(Notice::normal(reason, message)),
            requeue,
            conflict: None,
        }
    }
}

/// The topology variables of [KB-02], normalised (trimmed, de-duplicated, sorted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopologyInputs {
    pub node_subnets: Vec<String>,
    pub control_plane_security_groups: Vec<String>,
    /// `vpc-node-security-group-ids`, else the control-plane SGs; empty → the bootstrapper
    /// manages a node SecurityGroup.
    pub node_security_groups: Vec<String>,
    pub additional_node_policies: Vec<String>,
}

/// Trimmed, without blanks, de-duplicated and sorted.
pub fn normalise(values: impl IntoIterator<Item = String>) -> Vec<String> {
    values
        .into_iter()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A variable's value: `None` when absent, `Some(Err)` when not an array of strings.
fn variable(cluster: &Cluster, name: &str) -> Option<Result<Vec<String>, ()>> {
    let topology = cluster.spec.topology.as_ref()?;
    let variable = topology.variables.iter().find(|v| v.name == name)?;
    Some(
        serde_json::from_value::<Vec<String>>(variable.value.clone())
            .map(normalise)
            .map_err(|_| ()),
    )
}

/// [KB-02]: `spec.topology` with a non-empty `vpc-node-subnet-ids`; the optional variables
/// must be string arrays when present.
pub fn topology(cluster: &Cluster, timing: &Timing) -> Result<TopologyInputs, Stop> {
    let backoff = timing.failure_backoff;
    if cluster.spec.topology.is_none() {
        return Err(Stop::warning(
            reasons::TOPOLOGY_MISSING,
            format!(
                "Cluster.spec.topology is required; cause: the bootstrapper reads the topology variable \"{}\" (required) and \"{}\", \"{}\" (optional: a node SecurityGroup is created when both are empty); action: create the Cluster from a ClusterClass with these variables before labelling it {}=enabled",
                kb::NODE_SUBNET_IDS,
                kb::NODE_SECURITY_GROUP_IDS,
                kb::SECURITY_GROUP_IDS,
                keys::KARPENTER_OPT_IN
            ),
            backoff,
        ));
    }
    let node_subnets = match variable(cluster, kb::NODE_SUBNET_IDS) {
        Some(Ok(ids)) if !ids.is_empty() => ids,
        _ => {
            return Err(Stop::warning(
                reasons::TOPOLOGY_VARIABLE_MISSING,
                format!(
                    "missing or invalid topology variable \"{0}\"; cause: Karpenter nodes need at least one private subnet ID; action: set Cluster.spec.topology.variables[\"{0}\"] to private subnet IDs (2 or more zones recommended)",
                    kb::NODE_SUBNET_IDS
                ),
                backoff,
            ));
        }
    };
    let optional = |name: &str| -> Result<Option<Vec<String>>, Stop> {
        match variable(cluster, name) {
            None => Ok(None),
            Some(Ok(values)) => Ok(Some(values)),
            Some(Err(())) => Err(Stop::warning(
                reasons::TOPOLOGY_VARIABLE_MISSING,
                format!(
                    "invalid topology variable \"{name}\"; cause: it is not an array of strings; action: set Cluster.spec.topology.variables[\"{name}\"] to a list of IDs or remove it"
                ),
                backoff,
            )),
        }
    };
    let control_plane_security_groups = optional(kb::SECURITY_GROUP_IDS)?.unwrap_or_default();
    let node_security_groups = optional(kb::NODE_SECURITY_GROUP_IDS)?
        .unwrap_or_else(|| control_plane_security_groups.clone());
    let additional_node_policies =
        optional(kb::NODE_ROLE_ADDITIONAL_POLICY_ARNS)?.unwrap_or_default();
    Ok(TopologyInputs {
        node_subnets,
        control_plane_security_groups,
        node_security_groups,
        additional_node_policies,
    })
}

/// [KB-03]: the required ACK APIs (the EC2 SecurityGroup when the bootstrapper creates the node
/// SecurityGroup) that discovery does not list.
pub fn missing_apis(
    served: &BTreeSet<Api>,
    topology: &TopologyInputs,
    timing: &Timing,
) -> Option<Stop> {
    let mut required: Vec<Api> = Api::REQUIRED_ACK.to_vec();
    if topology.node_security_groups.is_empty() {
        required.push(Api::SecurityGroup);
    }
    let missing: Vec<String> = required
        .into_iter()
        .filter(|api| !served.contains(api))
        .map(Api::describe)
        .collect();
    (!missing.is_empty()).then(|| {
        Stop::warning(
            reasons::PREREQUISITE_API_MISSING,
            format!(
                "missing prerequisite APIs {}; cause: the ACK objects cannot be reconciled; action: install the ACK EKS and IAM controllers and CRDs (and the ACK EC2 SecurityGroup CRD when \"{}\" is empty)",
                missing.join(", "),
                kb::NODE_SECURITY_GROUP_IDS
            ),
            timing.failure_backoff,
        )
    })
}

/// The ACK Cluster fields the bootstrapper reads ([KB-03]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AckFacts {
    /// Name, endpoint, CA and the region sources ([PLG-03]).
    pub cluster: AckCluster,
    pub status: String,
    pub issuer: String,
    pub account: String,
    pub authentication_mode: Option<String>,
    pub vpc_id: String,
}

impl AckFacts {
    pub fn from_object(object: &DynamicObject) -> Self {
        let text = |pointer: &str| crate::ack::text_at(object, pointer);
        Self {
            cluster: AckCluster::from_object(object),
            status: text("/status/status"),
            issuer: text("/status/identity/oidc/issuer"),
            account: text("/status/ackResourceMetadata/ownerAccountID"),
            authentication_mode: object
                .data
                .pointer("/spec/accessConfig/authenticationMode")
                .and_then(Value::as_str)
                .map(|s| s.trim().to_string()),
            vpc_id: text("/status/resourcesVPCConfig/vpcID"),
        }
    }
}

/// What the ACK lookup found (the API itself is checked by [`missing_apis`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AckLookup {
    NotFound,
    Found(Box<AckFacts>),
}

/// A Cluster whose EKS side is ready for the bootstrap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ready {
    pub aws: Aws,
    pub issuer_host_path: String,
    /// The VPC the ACK Cluster reports (empty when it does not).
    pub cluster_vpc: String,
}

const AUTHENTICATION_MODE: &str = "API_AND_CONFIG_MAP";

/// [KB-03]: the ACK Cluster is ACTIVE with endpoint, OIDC issuer and owner account, its
/// authentication mode is `API_AND_CONFIG_MAP`, and a region resolves ([PLG-03]).
pub fn ready(cluster: &Cluster, lookup: &AckLookup, timing: &Timing) -> Result<Ready, Stop> {
    let backoff = timing.failure_backoff;
    let namespace = cluster.namespace().unwrap_or_default();
    let ack_name = names::resolve(cluster).ack;
    let facts = match lookup {
        AckLookup::NotFound => {
            return Err(Stop::normal(
                reasons::ACK_CLUSTER_NOT_FOUND,
                format!("waiting for ACK EKS Cluster {namespace}/{ack_name}"),
                backoff,
            ));
        }
        AckLookup::Found(facts) => facts,
    };
    if facts.cluster.endpoint.is_empty() || facts.issuer.is_empty() || facts.account.is_empty() {
        return Err(Stop::normal(
            reasons::ACK_CLUSTER_NOT_READY,
            format!(
                "waiting for ACK EKS status fields endpoint/identity.oidc.issuer/ackResourceMetadata.ownerAccountID on {namespace}/{ack_name}"
            ),
            backoff,
        ));
    }
    if !facts.status.eq_ignore_ascii_case("ACTIVE") {
        return Err(Stop::normal(
            reasons::ACK_CLUSTER_NOT_READY,
            format!(
                "waiting for ACK EKS Cluster status.status to become ACTIVE (current \"{}\") on {namespace}/{ack_name}",
                facts.status
            ),
            backoff,
        ));
    }
    match facts.authentication_mode.as_deref() {
        Some(AUTHENTICATION_MODE) => {}
        mode => {
            let got = mode.map_or_else(|| "unset".to_string(), |m| format!("\"{m}\""));
            return Err(Stop::warning(
                reasons::AWS_PREREQUISITES_NOT_READY,
                format!(
                    "ACK EKS Cluster {namespace}/{ack_name} spec.accessConfig.authenticationMode is {got}; cause: nodes join through an AccessEntry, which needs \"{AUTHENTICATION_MODE}\"; action: set spec.accessConfig.authenticationMode to \"{AUTHENTICATION_MODE}\""
                ),
                backoff,
            ));
        }
    }
    let Some(region) = names::region(cluster.metadata.annotations.as_ref(), &facts.cluster) else {
        return Err(Stop::warning(
            reasons::REGION_NOT_RESOLVED,
            names::region_sources(),
            backoff,
        ));
    };
    let issuer_host_path = objects::issuer_host_path(&facts.issuer).map_err(|error| {
        Stop::warning(
            reasons::ACK_CLUSTER_NOT_READY,
            format!("ACK EKS Cluster {namespace}/{ack_name} status.identity.oidc.issuer: {error}"),
            backoff,
        )
    })?;
    Ok(Ready {
        aws: Aws {
            region,
            account: facts.account.clone(),
            issuer: facts.issuer.clone(),
            endpoint: facts.cluster.endpoint.clone(),
        },
        issuer_host_path,
        cluster_vpc: facts.vpc_id.clone(),
    })
}

/// [KB-03]: the subnet verdict as events: an error stops (failure backoff), warnings go on.
pub fn subnets(verdict: &Verdict, timing: &Timing) -> Result<Vec<Notice>, Stop> {
    if let Some(error) = &verdict.error {
        return Err(Stop::warning(
            reasons::AWS_PREREQUISITES_NOT_READY,
            format!(
                "invalid topology variable \"{0}\": {error}; cause: Karpenter nodes need private subnets in the cluster's VPC; action: set Cluster.spec.topology.variables[\"{0}\"] to private subnet IDs with NAT egress or VPC endpoints",
                kb::NODE_SUBNET_IDS
            ),
            timing.failure_backoff,
        ));
    }
    let mut notices = Vec::new();
    if !verdict.without_nat.is_empty() {
        notices.push(Notice::warning(
            reasons::AWS_PREREQUISITES_NOT_READY,
            format!(
                "subnets {} have no default route via a NAT gateway or instance; cause: image pulls may fail without egress; action: add a NAT route or VPC endpoints (ecr.api, ecr.dkr, s3, sts)",
                verdict.without_nat.join(", ")
            ),
        ));
    }
    if verdict.zones < 2 {
        notices.push(Notice::warning(
            reasons::AWS_PREREQUISITES_NOT_READY,
            format!(
                "node subnets span {} availability zone(s); cause: Karpenter nodes are not highly available; action: add private subnets in other zones to \"{}\"",
                verdict.zones,
                kb::NODE_SUBNET_IDS
            ),
        ));
    }
    Ok(notices)
}

/// The node SecurityGroup situation ([KB-04]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeSecurityGroup {
    /// The topology names the node SGs.
    Provided(Vec<String>),
    /// The bootstrapper manages `<capi>-karpenter-node-sg` in `vpc_id`; `id` is its
    /// `status.id` once ACK created it.
    Managed {
        vpc_id: String,
        vpc_cidrs: Vec<String>,
        id: Option<String>,
    },
}

/// The NodePool template override ([KB-05]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Template {
    Default,
    /// The annotation names a ConfigMap: its data at the key, or why it cannot be used.
    Override(Result<String, String>),
}

/// Whether the two monitored FargateProfiles are ACTIVE ([KB-04]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fargate {
    pub karpenter: bool,
    pub coredns: bool,
}

/// Everything the bootstrap plan is computed from.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub identity: Identity,
    pub names: ObjectNames,
    pub annotations: BTreeMap<String, String>,
    pub topology: TopologyInputs,
    pub ready: Ready,
    pub served: BTreeSet<Api>,
    pub node_security_group: NodeSecurityGroup,
    pub template: Template,
    pub fargate: Fargate,
    /// `--karpenter-chart-version` with its default.
    pub chart_version: String,
    pub thumbprint: Thumbprint,
    pub timing: Timing,
}

/// [KB-04]: what the thumbprint lookup of `eks.kany8s.io/oidc-thumbprint-auto` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Thumbprint {
    /// The annotation is not `enabled`/`true`: no `spec.thumbprints`.
    Off,
    /// The top intermediate CA's SHA-1 (lowercase hex).
    Resolved(String),
    /// The issuer's chain is not verifiable or has no intermediate: go on with the thumbprints
    /// the managed provider already has (`kept`, maybe none), so nothing is overwritten.
    Skipped { error: String, kept: Vec<String> },
    /// The issuer could not be asked (bad URL, unreachable, failed handshake).
    Failed(String),
}

/// [KB-04]: the annotation asks for the thumbprint (`enabled` or `true`, trimmed, any case).
pub fn thumbprint_auto(annotations: &BTreeMap<String, String>) -> bool {
    let value = annotation(annotations, kb::OIDC_THUMBPRINT_AUTO);
    value.eq_ignore_ascii_case("enabled") || value.eq_ignore_ascii_case("true")
}

fn annotation<'a>(annotations: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    annotations.get(key).map_or("", |v| v.trim())
}

/// What one bootstrap pass wants.
#[derive(Clone, Debug, PartialEq)]
pub struct Wanted {
    /// In apply order.
    pub objects: Vec<Desired>,
    pub notices: Vec<Notice>,
    pub requeue: Duration,
    /// The Flux objects are among `objects`.
    pub flux: bool,
    /// A new value for the node SG variables: `(variable, ids)`.
    pub variables: Vec<(&'static str, Vec<String>)>,
}

/// [KB-04], [KB-05]: the objects of one pass, the notices of what is missing and the requeue
/// (failure backoff while something is missing, else steady state). A stop is a problem that
/// leaves nothing worth writing.
pub fn wanted(inputs: &Inputs) -> Result<Wanted, Stop> {
    let timing = &inputs.timing;
    let backoff = timing.failure_backoff;
    let identity = &inputs.identity;
    let names = &inputs.names;
    let mut wanted = Wanted {
        objects: Vec::new(),
        notices: Vec::new(),
        requeue: timing.steady_state,
        flux: false,
        variables: Vec::new(),
    };
    let node_security_groups = match &inputs.node_security_group {
        NodeSecurityGroup::Provided(ids) => Some(ids.clone()),
        NodeSecurityGroup::Managed {
            vpc_id,
            vpc_cidrs,
            id,
        } => {
            if vpc_cidrs.is_empty() {
                return Err(Stop::warning(
                    reasons::AWS_PREREQUISITES_NOT_READY,
                    format!(
                        "VPC {vpc_id} of the node subnets reports no CIDR block; the node SecurityGroup cannot be built"
                    ),
                    backoff,
                ));
            }
            wanted.objects.push(objects::node_security_group(
                identity,
                names,
                &inputs.ready.aws.region,
                vpc_id,
                vpc_cidrs,
            ));
            match id.as_deref().map(str::trim).filter(|i| !i.is_empty()) {
                Some(id) => {
                    let ids = vec![id.to_string()];
                    wanted
                        .variables
                        .push((kb::NODE_SECURITY_GROUP_IDS, ids.clone()));
                    if inputs.topology.control_plane_security_groups.is_empty() {
                        wanted.variables.push((kb::SECURITY_GROUP_IDS, ids.clone()));
                    }
                    Some(ids)
                }
                None => {
                    wanted.notices.push(Notice::normal(
                        reasons::NODE_SECURITY_GROUP_NOT_READY,
                        format!(
                            "waiting for ACK EC2 SecurityGroup {}/{} to report status.id",
                            identity.namespace, names.node_security_group
                        ),
                    ));
                    wanted.requeue = backoff;
                    None
                }
            }
        }
    };
    let thumbprints = match &inputs.thumbprint {
        Thumbprint::Off => None,
        Thumbprint::Resolved(thumbprint) => Some(vec![thumbprint.clone()]),
        Thumbprint::Skipped { error, kept } => {
            wanted.notices.push(Notice::warning(
                reasons::OIDC_THUMBPRINT_SKIPPED,
                format!(
                    "skipped OIDC thumbprint auto-setting: {error}; continuing with the current spec.thumbprints of {}/{} ({}); action: serve a chain that verifies against the trusted roots with an intermediate CA, or remove the \"{}\" annotation",
                    identity.namespace,
                    names.oidc_provider,
                    if kept.is_empty() { "none".to_string() } else { kept.join(", ") },
                    kb::OIDC_THUMBPRINT_AUTO
                ),
            ));
            wanted.requeue = backoff;
            (!kept.is_empty()).then(|| kept.clone())
        }
        Thumbprint::Failed(error) => {
            return Err(Stop::warning(
                reasons::AWS_PREREQUISITES_NOT_READY,
                format!(
                    "failed to resolve the OIDC thumbprint of issuer {}: {error}; action: fix the issuer's reachability or remove the \"{}\" annotation",
                    inputs.ready.aws.issuer,
                    kb::OIDC_THUMBPRINT_AUTO
                ),
                backoff,
            ));
        }
    };
    wanted.objects.extend(objects::ack_objects(
        identity,
        names,
        &AckInputs {
            aws: inputs.ready.aws.clone(),
            issuer_host_path: inputs.ready.issuer_host_path.clone(),
            additional_node_policies: inputs.topology.additional_node_policies.clone(),
            thumbprints,
        },
    ));
    if !(inputs.fargate.karpenter && inputs.fargate.coredns) {
        wanted.notices.push(Notice::warning(
            reasons::AWS_PREREQUISITES_NOT_READY,
            format!(
                "waiting for FargateProfiles {}/{} and {}/{} to become ACTIVE; cause: the ClusterClass provisions them; action: check the ResourceGraphDefinition and the ACK EKS controller if this persists",
                identity.namespace, names.fargate_karpenter, identity.namespace, names.fargate_coredns
            ),
        ));
        wanted.requeue = backoff;
    }
    let role_arn = inputs.ready.aws.role_arn(&names.aws_controller_role);
    let values = objects::helm_values(
        &identity.eks,
        &inputs.ready.aws.endpoint,
        &role_arn,
        annotation(&inputs.annotations, kb::INTERRUPTION_QUEUE),
        annotation(&inputs.annotations, kb::HELM_VALUES_OVERRIDE),
    )
    .map_err(|error| {
        Stop::warning(
            reasons::KARPENTER_VALUES_INVALID,
            format!(
                "invalid \"{}\" annotation: {error}; action: set a JSON object or remove the annotation",
                kb::HELM_VALUES_OVERRIDE
            ),
            backoff,
        )
    })?;
    if inputs.served.contains(&Api::OciRepository) && inputs.served.contains(&Api::HelmRelease) {
        let tag = Some(annotation(&inputs.annotations, kb::CHART_VERSION))
            .filter(|t| !t.is_empty())
            .unwrap_or(&inputs.chart_version);
        wanted
            .objects
            .extend(objects::flux_objects(identity, names, tag, &values));
        wanted.flux = true;
    } else {
        wanted.notices.push(Notice::warning(
            reasons::FLUX_NOT_INSTALLED,
            format!(
                "Flux APIs ({}, {}) are not available; cause: Karpenter cannot be installed into the workload cluster; action: install the Flux source-controller and helm-controller",
                Api::OciRepository.describe(),
                Api::HelmRelease.describe()
            ),
        ));
        wanted.requeue = backoff;
    }
    if let Some(security_groups) = node_security_groups {
        let resources = match &inputs.template {
            Template::Default => objects::default_nodepool_yaml(
                &identity.eks,
                &names.aws_instance_profile,
                &inputs.topology.node_subnets,
                &security_groups,
            ),
            Template::Override(Ok(text)) => text.clone(),
            Template::Override(Err(error)) => {
                return Err(Stop::warning(
                    reasons::NODEPOOL_TEMPLATE_INVALID,
                    format!(
                        "invalid NodePool template: {error}; action: fix the ConfigMap named by \"{}\"/\"{}\" or remove the annotations to use the default",
                        kb::NODEPOOL_TEMPLATE_CONFIGMAP,
                        kb::NODEPOOL_TEMPLATE_KEY
                    ),
                    backoff,
                ));
            }
        };
        wanted
            .objects
            .push(objects::nodepool_configmap(identity, names, &resources));
        if inputs.served.contains(&Api::ClusterResourceSet) {
            wanted
                .objects
                .push(objects::cluster_resource_set(identity, names));
        } else {
            wanted.notices.push(Notice::warning(
                reasons::PREREQUISITE_API_MISSING,
                format!(
                    "ClusterResourceSet API ({}) is not available; cause: the default NodePool/EC2NodeClass cannot be delivered; action: install the Cluster API addons CRDs",
                    Api::ClusterResourceSet.api_version()
                ),
            ));
            wanted.requeue = backoff;
        }
    }
    Ok(wanted)
}

/// Whether `want` is contained in `have`: objects key by key, arrays element by element (same
/// length), scalars equal. Owner references only need to be among the existing ones.
pub fn contained(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(want), Value::Object(have)) => want.iter().all(|(key, value)| {
            let Some(existing) = have.get(key) else {
                return false;
            };
            if key == "ownerReferences" {
                return value.as_array().is_some_and(|owners| {
                    owners.iter().all(|owner| {
                        existing
                            .as_array()
                            .is_some_and(|e| e.iter().any(|h| contained(owner, h)))
                    })
                });
            }
            contained(value, existing)
        }),
        (Value::Array(want), Value::Array(have)) => {
            want.len() == have.len() && want.iter().zip(have).all(|(w, h)| contained(w, h))
        }
        (Value::Number(want), Value::Number(have)) => want.as_f64() == have.as_f64(),
        _ => want == have,
    }
}

/// The body of an existing object as JSON (metadata included).
fn as_json(object: &DynamicObject) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}

/// The writes of one pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub applies: Vec<Desired>,
    pub notices: Vec<Notice>,
    /// Resources left untouched because someone else manages them (metric label).
    pub conflicts: Vec<&'static str>,
}

/// [PLG-06]: absent → create; managed → apply when something differs; unmanaged → untouched
/// (Warning, conflict) unless the Cluster allows takeover (then applied, Normal event).
pub fn treat(
    wanted: &[Desired],
    existing: &BTreeMap<(Api, String), DynamicObject>,
    takeover: bool,
    namespace: &str,
) -> Plan {
    let mut plan = Plan::default();
    for desired in wanted {
        let Some(current) = existing.get(&(desired.api, desired.name.clone())) else {
            plan.applies.push(desired.clone());
            continue;
        };
        let what = format!("{} {namespace}/{}", desired.api.kind(), desired.name);
        if keys::managed_by(current.metadata.annotations.as_ref(), BOOTSTRAPPER) {
            if !contained(&desired.body, &as_json(current)) {
                plan.applies.push(desired.clone());
            }
        } else if takeover {
            plan.notices.push(Notice::normal(
                reasons::RESOURCE_TAKEOVER_APPLIED,
                format!(
                    "{what} was not managed by {BOOTSTRAPPER}; taken over as {} allows",
                    keys::ALLOW_UNMANAGED_TAKEOVER
                ),
            ));
            plan.applies.push(desired.clone());
        } else {
            plan.notices.push(Notice::warning(
                reasons::RESOURCE_OWNERSHIP_CONFLICT,
                format!("{what} exists and is not managed by {BOOTSTRAPPER}"),
            ));
            plan.conflicts.push(desired.api.kind());
        }
    }
    plan
}

/// [KB-07]: the requeue of a pass: conflicts → steady state (10 min), anything missing →
/// failure backoff, else steady state.
pub fn requeue(wanted: &Wanted, plan: &Plan, timing: &Timing) -> Duration {
    if plan.conflicts.is_empty() {
        wanted.requeue
    } else {
        wanted.requeue.min(timing.steady_state)
    }
}

/// [KB-07]: steady when nothing is missing and nothing conflicts.
pub fn steady(wanted: &Wanted, plan: &Plan, timing: &Timing) -> Option<Notice> {
    (plan.conflicts.is_empty() && wanted.requeue == timing.steady_state).then(|| {
        Notice::normal(
            reasons::BOOTSTRAPPER_RECONCILED,
            "karpenter bootstrap resources reconciled",
        )
    })
}

/// A one-shot rollout restart ([KB-05]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restart {
    pub namespace: &'static str,
    pub name: &'static str,
    /// The Cluster annotation that records it.
    pub record: &'static str,
}

/// [KB-05]: CoreDNS once its FargateProfile is ACTIVE, Karpenter once Flux installs it and its
/// profile is ACTIVE; each only when the Cluster has no record of it.
pub fn restarts(
    annotations: &BTreeMap<String, String>,
    fargate: Fargate,
    flux: bool,
) -> Vec<Restart> {
    let mut restarts = Vec::new();
    if fargate.coredns && annotation(annotations, kb::COREDNS_RESTARTED_AT).is_empty() {
        restarts.push(Restart {
            namespace: "kube-system",
            name: "coredns",
            record: kb::COREDNS_RESTARTED_AT,
        });
    }
    if flux && fargate.karpenter && annotation(annotations, kb::KARPENTER_RESTARTED_AT).is_empty() {
        restarts.push(Restart {
            namespace: "karpenter",
            name: "karpenter",
            record: kb::KARPENTER_RESTARTED_AT,
        });
    }
    restarts
}

/// The annotations the bootstrapper owns on the Cluster: their current values, then `updates`.
pub fn owned_annotations(cluster: &Cluster, updates: &[(&str, &str)]) -> BTreeMap<String, String> {
    let current = cluster.metadata.annotations.clone().unwrap_or_default();
    let mut owned: BTreeMap<String, String> = [
        keys::REGION,
        keys::CLUSTER_NAME,
        kb::COREDNS_RESTARTED_AT,
        kb::KARPENTER_RESTARTED_AT,
    ]
    .into_iter()
    .filter_map(|key| {
        current
            .get(key)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (key.to_string(), v.clone()))
    })
    .collect();
    for (key, value) in updates {
        owned.insert((*key).to_string(), (*value).to_string());
    }
    owned
}

/// [KB-02], [KB-03], [KB-05]: the server-side apply body of the Cluster metadata the
/// bootstrapper owns (finalizer, cluster-name label, `annotations`), or `None` when the Cluster
/// already carries all of it.
pub fn cluster_metadata(
    cluster: &Cluster,
    annotations: &BTreeMap<String, String>,
) -> Option<Value> {
    let body = json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2",
        "kind": "Cluster",
        "metadata": {
            "name": cluster.name_any(),
            "namespace": cluster.namespace(),
            "finalizers": [FINALIZER],
            "labels": {keys::CAPI_CLUSTER_NAME: cluster.name_any()},
            "annotations": annotations,
        },
    });
    let has_finalizer = cluster.finalizers().iter().any(|f| f == FINALIZER);
    let current = serde_json::to_value(&cluster.metadata).unwrap_or(Value::Null);
    let rest = json!({"labels": body["metadata"]["labels"], "annotations": annotations});
    (!has_finalizer || !contained(&rest, &current)).then_some(body)
}

/// [KB-04]: the merge patch of `spec.topology.variables` that sets `updates` (only the
/// variables whose value differs), guarded by the resourceVersion; `None` when nothing differs.
pub fn variables_patch(
    cluster: &Cluster,
    updates: &[(&'static str, Vec<String>)],
) -> Option<(Value, Vec<String>)> {
    let topology = cluster.spec.topology.as_ref()?;
    let mut variables: Vec<Value> = topology
        .variables
        .iter()
        .map(|v| json!({"name": v.name, "value": v.value}))
        .collect();
    let mut changed = Vec::new();
    for (name, ids) in updates {
        let value = json!(ids);
        match variables.iter_mut().find(|v| v["name"] == *name) {
            Some(existing) if existing["value"] == value => {}
            Some(existing) => {
                existing["value"] = value;
                changed.push((*name).to_string());
            }
            None => {
                variables.push(json!({"name": name, "value": value}));
                changed.push((*name).to_string());
            }
        }
    }
    (!changed.is_empty()).then(|| {
        (
            json!({
                "metadata": {"resourceVersion": cluster.resource_version()},
                "spec": {"topology": {"variables": variables}},
            }),
            changed,
        )
    })
}

/// [KB-06]: what the deletion path does.
#[derive(Clone, Debug, PartialEq)]
pub struct Cleanup {
    /// The managed Flux objects to suspend.
    pub suspend: Vec<Desired>,
    /// Region and EKS name for the AWS cleanup (`None`: skipped).
    pub aws: Option<(String, String)>,
    /// The managed node SecurityGroup's id (its orphan ENIs are deleted).
    pub security_group: Option<String>,
}

/// [KB-06]: suspend the managed Flux objects; the AWS cleanup runs when a region resolves
/// (Cluster annotation, the kubeconfig Secret's annotation, the ACK Cluster) and an EKS name is
/// known; only a node SecurityGroup the bootstrapper manages has its ENIs cleaned.
pub fn cleanup(
    identity: &Identity,
    names: &ObjectNames,
    region: Option<String>,
    existing: &BTreeMap<(Api, String), DynamicObject>,
) -> Cleanup {
    let managed = |api: Api, name: &str| {
        existing
            .get(&(api, name.to_string()))
            .filter(|o| keys::managed_by(o.metadata.annotations.as_ref(), BOOTSTRAPPER))
    };
    let suspend = [Api::OciRepository, Api::HelmRelease]
        .into_iter()
        .filter_map(|api| managed(api, &names.flux).map(|o| (api, o)))
        .filter(|(_, o)| o.data.pointer("/spec/suspend") != Some(&Value::Bool(true)))
        .map(|(api, _)| objects::suspended(api, identity, &names.flux))
        .collect();
    let security_group = managed(Api::SecurityGroup, &names.node_security_group)
        .and_then(|o| o.data.pointer("/status/id").and_then(Value::as_str))
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty());
    let eks = identity.eks.trim();
    Cleanup {
        suspend,
        aws: region
            .filter(|r| !r.trim().is_empty() && !eks.is_empty())
            .map(|r| (r, eks.to_string())),
        security_group,
    }
}

/// [KB-06]: the finalizers without the bootstrapper's, guarded by the resourceVersion.
pub fn release(cluster: &Cluster) -> Value {
    let rest: Vec<&String> = cluster
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .collect();
    json!({"metadata": {"resourceVersion": cluster.resource_version(), "finalizers": rest}})
}

#[cfg(test)]
mod tests;
