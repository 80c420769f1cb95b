//! [ROT-10], [KB-07]: the API access each plugin needs, as data. The Helm charts' ClusterRoles
//! and Roles are checked against these rules, and the component tests check that the plugins'
//! real requests stay inside them.

/// One RBAC rule: API group, resource, verbs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub group: &'static str,
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
}

/// Cluster-wide rules (the ClusterRole). Secrets are read live and never watched, so no
/// list/watch on them.
pub const CLUSTER_RULES: &[Rule] = &[
    Rule {
        group: "cluster.x-k8s.io",
        resource: "clusters",
        verbs: &["get", "list", "watch"],
    },
    Rule {
        group: "eks.services.k8s.aws",
        resource: "clusters",
        verbs: &["get", "list", "watch"],
    },
    Rule {
        group: "",
        resource: "secrets",
        verbs: &["get", "create", "patch", "update"],
    },
    Rule {
        group: "",
        resource: "events",
        verbs: &["create", "patch"],
    },
    Rule {
        group: "events.k8s.io",
        resource: "events",
        verbs: &["create", "patch"],
    },
];

const WRITE: &[&str] = &["create", "get", "list", "patch", "update", "watch"];

/// [KB-07]: the bootstrapper's cluster-wide rules, as the Go reference implementation grants
/// them: no delete verb anywhere on the management cluster (owner references let the garbage
/// collector remove the managed objects), Secrets `get` only (the workload kubeconfig).
pub const BOOTSTRAPPER_CLUSTER_RULES: &[Rule] = &[
    Rule {
        group: "cluster.x-k8s.io",
        resource: "clusters",
        verbs: &["get", "list", "patch", "watch"],
    },
    Rule {
        group: "eks.services.k8s.aws",
        resource: "clusters",
        verbs: WRITE,
    },
    Rule {
        group: "eks.services.k8s.aws",
        resource: "fargateprofiles",
        verbs: WRITE,
    },
    Rule {
        group: "eks.services.k8s.aws",
        resource: "accessentries",
        verbs: WRITE,
    },
    Rule {
        group: "iam.services.k8s.aws",
        resource: "openidconnectproviders",
        verbs: WRITE,
    },
    Rule {
        group: "iam.services.k8s.aws",
        resource: "roles",
        verbs: WRITE,
    },
    Rule {
        group: "iam.services.k8s.aws",
        resource: "policies",
        verbs: WRITE,
    },
    Rule {
        group: "iam.services.k8s.aws",
        resource: "instanceprofiles",
        verbs: WRITE,
    },
    Rule {
        group: "ec2.services.k8s.aws",
        resource: "securitygroups",
        verbs: WRITE,
    },
    Rule {
        group: "source.toolkit.fluxcd.io",
        resource: "ocirepositories",
        verbs: WRITE,
    },
    Rule {
        group: "helm.toolkit.fluxcd.io",
        resource: "helmreleases",
        verbs: WRITE,
    },
    Rule {
        group: "addons.cluster.x-k8s.io",
        resource: "clusterresourcesets",
        verbs: WRITE,
    },
    Rule {
        group: "",
        resource: "configmaps",
        verbs: WRITE,
    },
    Rule {
        group: "",
        resource: "secrets",
        verbs: &["get"],
    },
    Rule {
        group: "",
        resource: "events",
        verbs: &["create", "patch"],
    },
    Rule {
        group: "events.k8s.io",
        resource: "events",
        verbs: &["create", "patch"],
    },
];

/// [KB-07]: the AWS permissions the bootstrapper's EC2 calls need.
pub const BOOTSTRAPPER_AWS_ACTIONS: &[&str] = &[
    "ec2:DescribeSubnets",
    "ec2:DescribeRouteTables",
    "ec2:DescribeVpcs",
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:TerminateInstances",
    "ec2:DeleteNetworkInterface",
];

/// Rules in the plugin's own namespace (the leader-election Role); the same for both.
pub const NAMESPACE_RULES: &[Rule] = &[Rule {
    group: "coordination.k8s.io",
    resource: "leases",
    verbs: &[
        "get", "list", "watch", "create", "update", "patch", "delete",
    ],
}];

/// Whether `rules` allow `verb` on `group`/`resource`.
pub fn allows(rules: &[Rule], group: &str, resource: &str, verb: &str) -> bool {
    rules
        .iter()
        .any(|r| r.group == group && r.resource == resource && r.verbs.contains(&verb))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [KB-07]: no delete verb on the management cluster; Secrets get only.
    #[test]
    fn kb07_bootstrapper_rules() {
        assert!(
            BOOTSTRAPPER_CLUSTER_RULES
                .iter()
                .all(|r| !r.verbs.contains(&"delete") && !r.verbs.contains(&"deletecollection"))
        );
        assert!(allows(BOOTSTRAPPER_CLUSTER_RULES, "", "secrets", "get"));
        for verb in ["list", "watch", "create", "patch", "update"] {
            assert!(
                !allows(BOOTSTRAPPER_CLUSTER_RULES, "", "secrets", verb),
                "{verb}"
            );
        }
        assert!(allows(
            BOOTSTRAPPER_CLUSTER_RULES,
            "cluster.x-k8s.io",
            "clusters",
            "patch"
        ));
    }
}
