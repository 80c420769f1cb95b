//! The APIs the bootstrapper reads and writes, and which of them the management cluster serves
//! ([KB-03], [PLG-05]). Availability is a set refreshed by discovery every 5 minutes; the
//! reconcile reads it, never discovery itself.

use std::collections::BTreeSet;
use std::sync::Mutex;

use kube::api::{ApiResource, GroupVersionKind};

/// One kind the bootstrapper uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Api {
    AckCluster,
    AccessEntry,
    FargateProfile,
    OidcProvider,
    Policy,
    Role,
    InstanceProfile,
    SecurityGroup,
    OciRepository,
    HelmRelease,
    ClusterResourceSet,
    ConfigMap,
}

impl Api {
    /// Group, version, kind, plural.
    pub const fn coordinates(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Api::AckCluster => ("eks.services.k8s.aws", "v1alpha1", "Cluster", "clusters"),
            Api::AccessEntry => (
                "eks.services.k8s.aws",
                "v1alpha1",
                "AccessEntry",
                "accessentries",
            ),
            Api::FargateProfile => (
                "eks.services.k8s.aws",
                "v1alpha1",
                "FargateProfile",
                "fargateprofiles",
            ),
            Api::OidcProvider => (
                "iam.services.k8s.aws",
                "v1alpha1",
                "OpenIDConnectProvider",
                "openidconnectproviders",
            ),
            Api::Policy => ("iam.services.k8s.aws", "v1alpha1", "Policy", "policies"),
            Api::Role => ("iam.services.k8s.aws", "v1alpha1", "Role", "roles"),
            Api::InstanceProfile => (
                "iam.services.k8s.aws",
                "v1alpha1",
                "InstanceProfile",
                "instanceprofiles",
            ),
            Api::SecurityGroup => (
                "ec2.services.k8s.aws",
                "v1alpha1",
                "SecurityGroup",
                "securitygroups",
            ),
            Api::OciRepository => (
                "source.toolkit.fluxcd.io",
                "v1beta2",
                "OCIRepository",
                "ocirepositories",
            ),
            Api::HelmRelease => (
                "helm.toolkit.fluxcd.io",
                "v2",
                "HelmRelease",
                "helmreleases",
            ),
            Api::ClusterResourceSet => (
                "addons.cluster.x-k8s.io",
                "v1beta2",
                "ClusterResourceSet",
                "clusterresourcesets",
            ),
            Api::ConfigMap => ("", "v1", "ConfigMap", "configmaps"),
        }
    }

    pub fn kind(self) -> &'static str {
        self.coordinates().2
    }

    /// `group/version` (`v1` for the core group).
    pub fn api_version(self) -> String {
        let (group, version, _, _) = self.coordinates();
        if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        }
    }

    pub fn resource(self) -> ApiResource {
        let (group, version, kind, plural) = self.coordinates();
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    }

    /// `Kind (group/version)` for messages.
    pub fn describe(self) -> String {
        format!("{} ({})", self.kind(), self.api_version())
    }

    /// The custom resources whose availability is checked ([PLG-05]); ConfigMaps are core.
    pub const OPTIONAL: [Api; 11] = [
        Api::AckCluster,
        Api::AccessEntry,
        Api::FargateProfile,
        Api::OidcProvider,
        Api::Policy,
        Api::Role,
        Api::InstanceProfile,
        Api::SecurityGroup,
        Api::OciRepository,
        Api::HelmRelease,
        Api::ClusterResourceSet,
    ];

    /// [KB-03]: the ACK APIs without which nothing is written (the EC2 SecurityGroup only when
    /// the bootstrapper must create the node SecurityGroup).
    pub const REQUIRED_ACK: [Api; 7] = [
        Api::AckCluster,
        Api::OidcProvider,
        Api::Policy,
        Api::Role,
        Api::InstanceProfile,
        Api::AccessEntry,
        Api::FargateProfile,
    ];
}

/// The custom APIs the last discovery found ([PLG-05]).
#[derive(Debug, Default)]
pub struct Availability {
    served: Mutex<BTreeSet<Api>>,
}

impl Availability {
    /// A copy of the served set (ConfigMaps always served).
    pub fn snapshot(&self) -> BTreeSet<Api> {
        let mut set = self
            .served
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        set.insert(Api::ConfigMap);
        set
    }

    /// Records a discovery pass; returns the APIs that just appeared.
    pub fn record(&self, now_served: BTreeSet<Api>) -> BTreeSet<Api> {
        let mut served = self
            .served
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let appeared = now_served.difference(&served).copied().collect();
        *served = now_served;
        appeared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [PLG-05]: a pass reports what appeared; a vanished API is dropped and reported again
    /// when it comes back.
    #[test]
    fn plg05_availability_reports_appearances() {
        let availability = Availability::default();
        assert_eq!(
            availability.record([Api::AckCluster].into()),
            [Api::AckCluster].into()
        );
        assert!(availability.record([Api::AckCluster].into()).is_empty());
        assert_eq!(
            availability.record([Api::AckCluster, Api::HelmRelease].into()),
            [Api::HelmRelease].into()
        );
        assert!(availability.record([Api::HelmRelease].into()).is_empty());
        assert_eq!(
            availability.record([Api::AckCluster, Api::HelmRelease].into()),
            [Api::AckCluster].into()
        );
        assert!(availability.snapshot().contains(&Api::ConfigMap));
        assert_eq!(Api::ConfigMap.api_version(), "v1");
        assert_eq!(
            Api::HelmRelease.describe(),
            "HelmRelease (helm.toolkit.fluxcd.io/v2)"
        );
    }
}
