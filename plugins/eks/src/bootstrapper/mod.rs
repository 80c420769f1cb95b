//! The `eks-karpenter-bootstrapper` (provider.md §9.3): for every Cluster labelled
//! `eks.kany8s.io/karpenter: enabled` it provisions what Karpenter needs on an EKS cluster made
//! by Kany8s — ACK IAM/EKS/EC2 objects ([KB-04]), Karpenter through Flux and a default NodePool
//! through a ClusterResourceSet ([KB-05]) — and cleans up on deletion ([KB-06]). Shaped like
//! every Kany8s reconciler: [`reconcile`] observes (the Cluster, API availability, the ACK
//! Cluster, EC2 subnet facts, the objects it would write), [`decide`] computes the plan without a
//! client (objects, Cluster metadata, events, requeue — on every path, deletion and opt-out
//! included), and [`reconcile`] applies it with server-side apply after the managed-by check
//! of [PLG-06]. [`run`] wires the watches ([PLG-04], [PLG-05]); [`ec2`] and [`workload`] are the
//! AWS and workload-cluster calls.

pub mod apis;
pub mod decide;
pub mod ec2;
pub mod flags;
pub mod objects;
pub mod reconcile;
pub mod run;
pub mod thumbprint;
pub mod workload;

/// [KB-02]: the finalizer that holds a Cluster until the cleanup of [KB-06] ran.
pub const FINALIZER: &str = "eks.kany8s.io/karpenter-cleanup";
/// [KB-05]: the Karpenter chart tag when neither the annotation nor the flag sets one.
pub const DEFAULT_CHART_VERSION: &str = "1.0.8";

/// The Cluster annotations and topology variables the bootstrapper reads ([KB-02], [KB-05]).
pub mod keys {
    /// [KB-05] Cluster annotation: the Karpenter chart tag (beats the flag).
    pub const CHART_VERSION: &str = "eks.kany8s.io/karpenter-chart-version";
    /// [KB-05] Cluster annotation: a JSON object merged into the HelmRelease values.
    pub const HELM_VALUES_OVERRIDE: &str = "eks.kany8s.io/karpenter-helm-values-override-json";
    /// [KB-05] Cluster annotation: Karpenter's `settings.interruptionQueue`.
    pub const INTERRUPTION_QUEUE: &str = "eks.kany8s.io/karpenter-interruption-queue";
    /// [KB-05] Cluster annotation: a ConfigMap (same namespace) whose data replaces the default
    /// EC2NodeClass/NodePool YAML.
    pub const NODEPOOL_TEMPLATE_CONFIGMAP: &str =
        "eks.kany8s.io/karpenter-nodepool-template-configmap";
    /// [KB-05] Cluster annotation: the key in that ConfigMap (default `resources.yaml`).
    pub const NODEPOOL_TEMPLATE_KEY: &str = "eks.kany8s.io/karpenter-nodepool-template-key";
    /// [KB-04] Cluster annotation: `enabled` (or `true`) sets the OIDC provider's
    /// `spec.thumbprints` to the SHA-1 of the top intermediate CA of the issuer's verified chain
    /// ([`super::thumbprint`]).
    pub const OIDC_THUMBPRINT_AUTO: &str = "eks.kany8s.io/oidc-thumbprint-auto";
    /// [KB-05] Cluster annotations recording the one-shot rollout restarts.
    pub const COREDNS_RESTARTED_AT: &str =
        "eks.kany8s.io/karpenter-bootstrapper.coredns-restarted-at";
    pub const KARPENTER_RESTARTED_AT: &str =
        "eks.kany8s.io/karpenter-bootstrapper.karpenter-restarted-at";

    /// [KB-02] topology variables.
    pub const NODE_SUBNET_IDS: &str = "vpc-node-subnet-ids";
    pub const SECURITY_GROUP_IDS: &str = "vpc-security-group-ids";
    pub const NODE_SECURITY_GROUP_IDS: &str = "vpc-node-security-group-ids";
    pub const NODE_ROLE_ADDITIONAL_POLICY_ARNS: &str = "karpenter-node-role-additional-policy-arns";
}

/// Event reasons of the bootstrapper ([KB-02], [KB-03], [KB-05]–[KB-07], [PLG-06]), one place.
pub mod reasons {
    /// [KB-02] Warning: the Cluster has no `spec.topology`.
    pub const TOPOLOGY_MISSING: &str = "TopologyMissing";
    /// [KB-02] Warning: `vpc-node-subnet-ids` is absent, empty or not a string array.
    pub const TOPOLOGY_VARIABLE_MISSING: &str = "TopologyVariableMissing";
    /// [KB-04] Normal: the managed node SecurityGroup's id was written into the variables.
    pub const TOPOLOGY_VARIABLE_PATCHED: &str = "TopologyVariablePatched";
    /// [KB-03] Warning: a required ACK API (or the ClusterResourceSet API) is not served.
    pub const PREREQUISITE_API_MISSING: &str = "PrerequisiteAPIMissing";
    /// [KB-03] Normal: no ACK Cluster of the resolved name.
    pub const ACK_CLUSTER_NOT_FOUND: &str = "ACKClusterNotFound";
    /// [KB-03] Normal: the ACK Cluster is not ACTIVE or lacks endpoint/issuer/account.
    pub const ACK_CLUSTER_NOT_READY: &str = "ACKClusterNotReady";
    /// [KB-03] Warning: authentication mode, subnets, node SecurityGroup or FargateProfiles.
    pub const AWS_PREREQUISITES_NOT_READY: &str = "AWSPrerequisitesNotReady";
    /// [KB-03] Warning: no region from the three sources of [PLG-03].
    pub const REGION_NOT_RESOLVED: &str = "RegionNotResolved";
    /// [KB-04] Normal: the managed node SecurityGroup has no `status.id` yet.
    pub const NODE_SECURITY_GROUP_NOT_READY: &str = "NodeSecurityGroupNotReady";
    /// [KB-04] Warning: the thumbprint was asked for but the issuer's chain does not verify
    /// or has no intermediate CA; the provider keeps the thumbprints it has (requeue: failure
    /// backoff). An issuer that cannot be reached is `AWSPrerequisitesNotReady` instead.
    pub const OIDC_THUMBPRINT_SKIPPED: &str = "OIDCThumbprintSkipped";
    /// [KB-05] Warning: the Flux APIs are not served.
    pub const FLUX_NOT_INSTALLED: &str = "FluxNotInstalled";
    /// [KB-05] Warning: the values override annotation is not a JSON object.
    pub const KARPENTER_VALUES_INVALID: &str = "KarpenterValuesInvalid";
    /// [KB-05] Warning: the NodePool template ConfigMap is missing or empty.
    pub const NODEPOOL_TEMPLATE_INVALID: &str = "NodePoolTemplateInvalid";
    /// [KB-05] Normal: a one-shot rollout restart in the workload cluster.
    pub const WORKLOAD_ROLLOUT_RESTARTED: &str = "WorkloadRolloutRestarted";
    /// [KB-06] Normal: the Flux objects were suspended for the deletion.
    pub const FLUX_SUSPENDED: &str = "FluxSuspendedForDeletion";
    /// [KB-06] Warning: the ENI cleanup failed.
    pub const ORPHAN_ENI_CLEANUP: &str = "OrphanENICleanup";
    /// [PLG-06] Warning: an object of the same name exists and is not managed by the bootstrapper.
    pub const RESOURCE_OWNERSHIP_CONFLICT: &str = "ResourceOwnershipConflict";
    /// [PLG-06] Normal: an unmanaged object was taken over as the Cluster allows.
    pub const RESOURCE_TAKEOVER_APPLIED: &str = "ResourceTakeoverApplied";
    /// [KB-07] Normal: everything is in place (steady state).
    pub const BOOTSTRAPPER_RECONCILED: &str = "BootstrapperReconciled";
}
