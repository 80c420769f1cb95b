//! Which user did what: every resource request classified as RBAC sees it (user, verb, group,
//! resource[/subresource]), so a test can check a role against what a controller really does.
//! The user is the `Impersonate-User` header (the server authenticates nobody).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use http::Method;

/// One distinct kind of access.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    pub user: String,
    pub verb: String,
    pub group: String,
    /// `plural` or `plural/subresource`.
    pub resource: String,
    /// The client asked for metadata only (`Accept: …;as=PartialObjectMetadata[List]`), so the
    /// objects' contents never reached it.
    pub metadata_only: bool,
}

/// Whether an `Accept` header asks for metadata only.
pub fn metadata_only(accept: &str) -> bool {
    accept.split(',').any(|media| {
        media
            .split(';')
            .any(|p| p.trim().starts_with("as=PartialObjectMetadata"))
    })
}

/// How often each distinct access happened (bounded by the distinct tuples, not by requests).
#[derive(Debug, Default)]
pub struct AccessLog {
    counts: Mutex<BTreeMap<Access, u64>>,
}

const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

impl AccessLog {
    pub fn record(&self, access: Access) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry(access).or_default() += 1;
        }
    }

    /// The accesses of `user` matching `filter`, with their counts.
    fn counts_of(&self, user: &str, filter: impl Fn(&Access) -> bool) -> BTreeMap<Access, u64> {
        self.counts
            .lock()
            .map(|c| {
                c.iter()
                    .filter(|(a, _)| a.user == user && filter(a))
                    .map(|(a, n)| (a.clone(), *n))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Writes made so far by `user`, per kind of access.
    pub fn write_counts(&self, user: &str) -> BTreeMap<Access, u64> {
        self.counts_of(user, |a| WRITE_VERBS.contains(&a.verb.as_str()))
    }

    /// Every access of every user so far, with its count.
    pub fn all(&self) -> BTreeMap<Access, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Reads (get, list, watch) made so far by `user`, per kind of access.
    pub fn read_counts(&self, user: &str) -> BTreeMap<Access, u64> {
        self.counts_of(user, |a| {
            matches!(a.verb.as_str(), "get" | "list" | "watch")
        })
    }

    /// Every distinct access of `user`.
    pub fn of(&self, user: &str) -> BTreeSet<Access> {
        self.counts_of(user, |_| true).into_keys().collect()
    }
}

/// The RBAC (verb, group, resource) of a request to `/api/v1/...` or `/apis/{g}/{v}/...`;
/// `None` for non-resource paths (discovery, OpenAPI, version).
pub fn classify(method: &Method, path: &str, watch: bool) -> Option<(String, String, String)> {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, mut rest): (&str, &[&str]) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (group, rest),
        _ => return None,
    };
    let mut watch = watch;
    if rest.first() == Some(&"watch") {
        watch = true;
        rest = &rest[1..];
    }
    // Namespaced paths, except the Namespace object itself (namespaces/{name}[/{sub}]).
    if rest.len() >= 3
        && rest[0] == "namespaces"
        && !(group.is_empty() && matches!(rest[2], "status" | "finalize") && rest.len() == 3)
    {
        rest = &rest[2..];
    }
    let (plural, name, sub) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub, ..] => (*plural, Some(*name), Some(*sub)),
        [] => return None,
    };
    let verb = match (method, name.is_some()) {
        (&Method::GET, _) if watch => "watch",
        (&Method::GET, true) => "get",
        (&Method::GET, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => return None,
    };
    let resource = match sub {
        Some(sub) => format!("{plural}/{sub}"),
        None => plural.to_string(),
    };
    Some((verb.to_string(), group.to_string(), resource))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(method: Method, path: &str, watch: bool) -> Option<(String, String, String)> {
        classify(&method, path, watch)
    }

    fn t(verb: &str, group: &str, resource: &str) -> Option<(String, String, String)> {
        Some((verb.into(), group.into(), resource.into()))
    }

    #[test]
    fn counts_writes_per_user() {
        let log = AccessLog::default();
        let access = |user: &str, verb: &str| Access {
            user: user.into(),
            verb: verb.into(),
            group: "".into(),
            resource: "secrets".into(),
            metadata_only: false,
        };
        log.record(access("a", "patch"));
        log.record(access("a", "patch"));
        log.record(access("a", "get"));
        log.record(access("b", "create"));
        assert_eq!(log.write_counts("a").into_values().collect::<Vec<_>>(), [2]);
        assert_eq!(log.of("a").len(), 2);
        assert_eq!(log.write_counts("b").len(), 1);
    }

    #[test]
    fn metadata_only_from_accept() {
        assert!(metadata_only(
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
        ));
        assert!(!metadata_only("application/json"));
        assert!(!metadata_only(
            "application/json;as=Table;g=meta.k8s.io;v=v1"
        ));
    }

    #[test]
    fn classifies_like_rbac() {
        assert_eq!(
            c(Method::GET, "/api/v1/namespaces/ns/secrets/s", false),
            t("get", "", "secrets")
        );
        assert_eq!(
            c(Method::GET, "/api/v1/secrets", true),
            t("watch", "", "secrets")
        );
        assert_eq!(
            c(Method::GET, "/api/v1/namespaces/ns/secrets", false),
            t("list", "", "secrets")
        );
        assert_eq!(
            c(Method::GET, "/api/v1/namespaces/ns", false),
            t("get", "", "namespaces")
        );
        assert_eq!(
            c(Method::PUT, "/api/v1/namespaces/ns/finalize", false),
            t("update", "", "namespaces/finalize")
        );
        assert_eq!(
            c(
                Method::PATCH,
                "/apis/controlplane.cluster.x-k8s.io/v1alpha1/namespaces/ns/kany8scontrolplanes/cp/status",
                false
            ),
            t(
                "patch",
                "controlplane.cluster.x-k8s.io",
                "kany8scontrolplanes/status"
            )
        );
        assert_eq!(
            c(
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/ns/events",
                false
            ),
            t("create", "events.k8s.io", "events")
        );
        assert_eq!(
            c(
                Method::GET,
                "/apis/kro.run/v1alpha1/watch/resourcegraphdefinitions",
                false
            ),
            t("watch", "kro.run", "resourcegraphdefinitions")
        );
        assert_eq!(
            c(
                Method::DELETE,
                "/apis/kro.run/v1alpha1/namespaces/ns/demos",
                false
            ),
            t("deletecollection", "kro.run", "demos")
        );
        assert_eq!(c(Method::GET, "/apis/kro.run/v1alpha1", false), None);
        assert_eq!(c(Method::GET, "/openapi/v3", false), None);
    }
}
