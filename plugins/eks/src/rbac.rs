//! [ROT-10]: the API access the rotator needs, as data. The Helm chart's ClusterRole and Role
//! are checked against these rules, and the component tests check that the rotator's real
//! requests stay inside them.

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

/// Rules in the rotator's own namespace (the leader-election Role).
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
