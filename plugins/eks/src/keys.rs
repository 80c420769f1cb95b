//! The plugins' annotation and label keys ([PLG-01]) and the opt-in and takeover tests on them.

use std::collections::BTreeMap;

/// Cluster annotation that opts a Cluster into the rotator (`enabled`, trimmed, any case).
pub const ROTATOR_OPT_IN: &str = "eks.kany8s.io/kubeconfig-rotator";
/// Cluster label that opts a Cluster into the Karpenter bootstrapper.
pub const KARPENTER_OPT_IN: &str = "eks.kany8s.io/karpenter";
/// EKS cluster name override (Cluster annotation); also written on the Secrets.
pub const CLUSTER_NAME: &str = "eks.kany8s.io/cluster-name";
/// ACK `Cluster` object name override (Cluster annotation).
pub const ACK_CLUSTER_NAME: &str = "eks.kany8s.io/ack-cluster-name";
/// Region override (Cluster annotation); also written on the Secrets.
pub const REGION: &str = "eks.kany8s.io/region";
/// The plugin that manages an object (on every object a plugin writes).
pub const MANAGED_BY: &str = "eks.kany8s.io/managed-by";
/// Cluster annotation allowing a plugin to take over an object it did not create.
pub const ALLOW_UNMANAGED_TAKEOVER: &str = "eks.kany8s.io/allow-unmanaged-takeover";
/// When the token in the probe Secret expires (RFC 3339, UTC).
pub const TOKEN_EXPIRATION: &str = "eks.kany8s.io/token-expiration-rfc3339";
/// The region annotation ACK itself honours on its objects.
pub const ACK_REGION: &str = "services.k8s.aws/region";
/// Cluster API's cluster-name label.
pub const CAPI_CLUSTER_NAME: &str = "cluster.x-k8s.io/cluster-name";
/// The Secret type Cluster API expects for `<cluster>-kubeconfig`.
pub const CLUSTER_SECRET_TYPE: &str = "cluster.x-k8s.io/secret";

/// The value of `key`, trimmed; empty when absent.
pub fn trimmed<'a>(map: Option<&'a BTreeMap<String, String>>, key: &str) -> &'a str {
    map.and_then(|m| m.get(key)).map_or("", |v| v.trim())
}

/// [PLG-01]: the Cluster opted into the rotator.
pub fn rotator_enabled(annotations: Option<&BTreeMap<String, String>>) -> bool {
    trimmed(annotations, ROTATOR_OPT_IN).eq_ignore_ascii_case("enabled")
}

/// [PLG-01], [KB-01]: the Cluster opted into the Karpenter bootstrapper (a label, `enabled`,
/// trimmed, any case).
pub fn karpenter_enabled(labels: Option<&BTreeMap<String, String>>) -> bool {
    trimmed(labels, KARPENTER_OPT_IN).eq_ignore_ascii_case("enabled")
}

/// [PLG-01], [PLG-06]: the Cluster allows taking over objects the plugin did not create.
pub fn takeover_allowed(annotations: Option<&BTreeMap<String, String>>) -> bool {
    let value = trimmed(annotations, ALLOW_UNMANAGED_TAKEOVER);
    value.eq_ignore_ascii_case("enabled") || value.eq_ignore_ascii_case("true")
}

/// [PLG-06]: the object carries `eks.kany8s.io/managed-by: <plugin>`.
pub fn managed_by(annotations: Option<&BTreeMap<String, String>>, plugin: &str) -> bool {
    trimmed(annotations, MANAGED_BY) == plugin
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn map(key: &str, value: &str) -> BTreeMap<String, String> {
        [(key.to_string(), value.to_string())].into()
    }

    /// [PLG-01]: the opt-in value is trimmed and case-insensitive.
    #[rstest]
    #[case("enabled", true)]
    #[case("  Enabled ", true)]
    #[case("ENABLED", true)]
    #[case("true", false)]
    #[case("", false)]
    #[case("disabled", false)]
    fn plg01_rotator_opt_in(#[case] value: &str, #[case] enabled: bool) {
        assert_eq!(rotator_enabled(Some(&map(ROTATOR_OPT_IN, value))), enabled);
        assert!(!rotator_enabled(None));
        // A label or another key does not opt in.
        assert!(!rotator_enabled(Some(&map(KARPENTER_OPT_IN, value))));
    }

    /// [PLG-01], [PLG-06]: takeover accepts `enabled` and `true`, any case.
    #[rstest]
    #[case("enabled", true)]
    #[case("TRUE", true)]
    #[case(" true ", true)]
    #[case("yes", false)]
    #[case("", false)]
    fn plg01_takeover_values(#[case] value: &str, #[case] allowed: bool) {
        assert_eq!(
            takeover_allowed(Some(&map(ALLOW_UNMANAGED_TAKEOVER, value))),
            allowed
        );
    }

    #[test]
    fn plg06_managed_by_is_exact_after_trimming() {
        assert!(managed_by(
            Some(&map(MANAGED_BY, " eks-kubeconfig-rotator ")),
            "eks-kubeconfig-rotator"
        ));
        assert!(!managed_by(
            Some(&map(MANAGED_BY, "eks-karpenter-bootstrapper")),
            "eks-kubeconfig-rotator"
        ));
        assert!(!managed_by(None, "eks-kubeconfig-rotator"));
    }
}
