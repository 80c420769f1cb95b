//! The `eks-kubeconfig-rotator` reconciler (provider.md §9.2). For every opted-in Cluster it
//! keeps `<capi>-kubeconfig` (a kubeconfig with a short-lived EKS token, what Cluster API and
//! Kany8s read in Option A, [ROT-09]) and `<capi>-kubeconfig-exec` current from the ACK EKS
//! `Cluster`. Shaped like every Kany8s reconciler: [`reconcile`] observes (the Cluster, the ACK
//! Cluster, the two Secrets, read live), [`decide`] computes names, region, documents, Secret
//! bodies, events and the requeue without a client, and [`reconcile`] applies them with
//! server-side apply. [`run`] wires the watches ([ROT-02], [PLG-04], [PLG-05]).

pub mod decide;
pub mod reconcile;
pub mod run;

/// Event reasons of the rotator ([ROT-03], [ROT-06], [ROT-07]), one place.
pub mod reasons {
    /// [ROT-03] Warning: the ACK EKS API is not served.
    pub const PREREQUISITE_API_MISSING: &str = "PrerequisiteAPIMissing";
    /// [ROT-03] Normal: the ACK Cluster does not exist (yet).
    pub const ACK_CLUSTER_NOT_FOUND: &str = "ACKClusterNotFound";
    /// [ROT-03] Normal: the ACK Cluster has no endpoint or CA yet.
    pub const ACK_CLUSTER_NOT_READY: &str = "ACKClusterNotReady";
    /// [ROT-03] Warning: no region from the three sources of [PLG-03].
    pub const REGION_NOT_RESOLVED: &str = "RegionNotResolved";
    /// [ROT-05] Warning: the ACK CA data does not decode (no kubeconfig can be built).
    pub const INVALID_CERTIFICATE_AUTHORITY: &str = "InvalidCertificateAuthority";
    /// [ROT-03] Warning: credentials or signing failed.
    pub const TOKEN_GENERATION_FAILED: &str = "TokenGenerationFailed";
    /// [ROT-06], [ROT-07] Warning: a Secret exists and is managed by someone else.
    pub const SECRET_OWNERSHIP_CONFLICT: &str = "SecretOwnershipConflict";
    /// [PLG-06] Normal: an unmanaged Secret was taken over as the Cluster allows.
    pub const SECRET_TAKEOVER_APPLIED: &str = "SecretTakeoverApplied";
    /// [ROT-07] Normal: a Secret was written.
    pub const SECRET_SYNCED: &str = "SecretSynced";
}
