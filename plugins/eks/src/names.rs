//! Name and region resolution shared by the plugins ([PLG-02], [PLG-03]) and the ACK Cluster →
//! Cluster mapping of [PLG-04]. Pure.

use std::collections::BTreeMap;

use kube::ResourceExt;

use crate::ack::AckCluster;
use crate::cluster::{Cluster, KANY8S_CONTROL_PLANE_GROUP, KANY8S_CONTROL_PLANE_KIND};
use crate::keys;

/// The three names of one cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// The Cluster API name (the Secrets are `<capi>-kubeconfig[-exec]`).
    pub capi: String,
    /// The EKS cluster name (in the token's `x-k8s-aws-id` and the exec kubeconfig).
    pub eks: String,
    /// The ACK `Cluster` object's name in the Cluster's namespace.
    pub ack: String,
}

/// [PLG-02]: EKS name = annotation, else a Kany8sControlPlane `controlPlaneRef`'s name, else the
/// Cluster's name; ACK name = annotation, else the EKS name.
pub fn resolve(cluster: &Cluster) -> Names {
    let annotations = cluster.metadata.annotations.as_ref();
    let capi = cluster.name_any();
    let from_control_plane = cluster
        .spec
        .control_plane_ref
        .as_ref()
        .filter(|r| {
            r.api_group.trim() == KANY8S_CONTROL_PLANE_GROUP
                && r.kind.trim() == KANY8S_CONTROL_PLANE_KIND
        })
        .map(|r| r.name.trim())
        .filter(|n| !n.is_empty());
    let eks = Some(keys::trimmed(annotations, keys::CLUSTER_NAME))
        .filter(|n| !n.is_empty())
        .or(from_control_plane)
        .unwrap_or(capi.as_str())
        .to_string();
    let ack = Some(keys::trimmed(annotations, keys::ACK_CLUSTER_NAME))
        .filter(|n| !n.is_empty())
        .map_or_else(|| eks.clone(), str::to_string);
    Names { capi, eks, ack }
}

/// [PLG-04]: the Clusters of `namespace` that `wanted` accepts and whose resolved ACK name is
/// `ack_name`, once each.
pub fn clusters_for_ack<'a>(
    clusters: impl IntoIterator<Item = &'a Cluster>,
    namespace: &str,
    ack_name: &str,
    wanted: impl Fn(&Cluster) -> bool,
) -> Vec<kube::runtime::reflector::ObjectRef<Cluster>> {
    let mut seen = std::collections::BTreeSet::new();
    clusters
        .into_iter()
        .filter(|c| {
            c.namespace().as_deref() == Some(namespace) && wanted(c) && resolve(c).ack == ack_name
        })
        .filter(|c| seen.insert(c.name_any()))
        .map(kube::runtime::reflector::ObjectRef::from_obj)
        .collect()
}

/// [PLG-03]: Cluster annotation `eks.kany8s.io/region` → ACK `status.ackResourceMetadata.region`
/// → ACK annotation `services.k8s.aws/region`; `None` when all three are empty.
pub fn region(
    cluster_annotations: Option<&BTreeMap<String, String>>,
    ack: &AckCluster,
) -> Option<String> {
    [
        keys::trimmed(cluster_annotations, keys::REGION),
        ack.status_region.as_str(),
        keys::trimmed(Some(&ack.annotations), keys::ACK_REGION),
    ]
    .into_iter()
    .find(|r| !r.is_empty())
    .map(str::to_string)
}

/// The message of `RegionNotResolved`, naming the three sources [PLG-03] reads.
pub fn region_sources() -> String {
    format!(
        "failed to resolve region (checked \"{}\" annotation, ACK status.ackResourceMetadata.region, ACK metadata.annotations[\"{}\"])",
        keys::REGION,
        keys::ACK_REGION
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::cluster::ControlPlaneRef;
    use rstest::rstest;

    fn cluster(annotations: &[(&str, &str)], reference: Option<(&str, &str, &str)>) -> Cluster {
        let mut cluster = crate::cluster::sample("ns", "capi", annotations);
        cluster.spec.control_plane_ref = reference.map(|(g, k, n)| ControlPlaneRef {
            api_group: g.into(),
            kind: k.into(),
            name: n.into(),
        });
        cluster
    }

    const CP: (&str, &str, &str) = (
        "controlplane.cluster.x-k8s.io",
        "Kany8sControlPlane",
        "cp-name",
    );

    /// [PLG-02]: every source of the EKS and ACK names, in precedence order.
    #[rstest]
    #[case(&[], None, ("capi", "capi", "capi"))]
    #[case(&[], Some(CP), ("capi", "cp-name", "cp-name"))]
    #[case(&[], Some(("controlplane.cluster.x-k8s.io", "KubeadmControlPlane", "kcp")), ("capi", "capi", "capi"))]
    #[case(&[], Some(("other.io", "Kany8sControlPlane", "x")), ("capi", "capi", "capi"))]
    #[case(&[], Some((" controlplane.cluster.x-k8s.io ", "Kany8sControlPlane", "  ")), ("capi", "capi", "capi"))]
    #[case(&[(keys::CLUSTER_NAME, " eks-name ")], Some(CP), ("capi", "eks-name", "eks-name"))]
    #[case(&[(keys::ACK_CLUSTER_NAME, "ack-name")], Some(CP), ("capi", "cp-name", "ack-name"))]
    #[case(&[(keys::CLUSTER_NAME, "eks-name"), (keys::ACK_CLUSTER_NAME, "ack-name")], None, ("capi", "eks-name", "ack-name"))]
    #[case(&[(keys::CLUSTER_NAME, "  "), (keys::ACK_CLUSTER_NAME, "")], None, ("capi", "capi", "capi"))]
    fn plg02_names(
        #[case] annotations: &[(&str, &str)],
        #[case] reference: Option<(&str, &str, &str)>,
        #[case] expected: (&str, &str, &str),
    ) {
        let names = resolve(&cluster(annotations, reference));
        assert_eq!(
            (names.capi.as_str(), names.eks.as_str(), names.ack.as_str()),
            expected
        );
    }

    /// [PLG-03]: annotation, then ACK status, then ACK annotation; blanks are skipped.
    #[rstest]
    #[case(" us-west-2 ", "eu-west-1", "ap-northeast-1", Some("us-west-2"))]
    #[case("", "eu-west-1", "ap-northeast-1", Some("eu-west-1"))]
    #[case("  ", "", "ap-northeast-1", Some("ap-northeast-1"))]
    #[case("", "", " ", None)]
    fn plg03_region_order(
        #[case] annotation: &str,
        #[case] status: &str,
        #[case] ack_annotation: &str,
        #[case] expected: Option<&str>,
    ) {
        let cluster = cluster(&[(keys::REGION, annotation)], None);
        let ack = AckCluster {
            status_region: status.into(),
            annotations: [(keys::ACK_REGION.to_string(), ack_annotation.to_string())].into(),
            ..AckCluster::default()
        };
        assert_eq!(
            region(cluster.metadata.annotations.as_ref(), &ack).as_deref(),
            expected
        );
    }

    #[test]
    fn plg03_message_names_the_three_sources() {
        let message = region_sources();
        assert!(message.contains("eks.kany8s.io/region"), "{message}");
        assert!(
            message.contains("status.ackResourceMetadata.region"),
            "{message}"
        );
        assert!(message.contains("services.k8s.aws/region"), "{message}");
    }
}
