//! Kubeconfig checks (provider.md §4.5): structural validity of kubeconfig bytes ([KC-07]) and
//! the rules that decide whether a target Secret may be written ([KC-08], [KC-11]). Pure; the
//! controller reads the Secrets.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;

/// The Secret type Cluster API expects for `<cluster>-kubeconfig`.
pub const CLUSTER_SECRET_TYPE: &str = "cluster.x-k8s.io/secret";

/// [KC-07]: `Ok` when the bytes are a usable kubeconfig, else the spec's detail.
pub fn validate(bytes: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(bytes);
    if text.trim().is_empty() {
        return Err("kubeconfig is empty".into());
    }
    let document: Value = yaml_serde::from_str(&text).map_err(|e| parse_error(&e))?;
    let Value::Object(root) = &document else {
        return Err("not a YAML mapping".into());
    };
    let text_of = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    if let Some(kind) = root.get("kind").filter(|k| !k.is_null()) {
        let kind = kind.as_str().unwrap_or_default();
        if kind != "Config" {
            return Err(format!("unsupported kind \"{kind}\""));
        }
    }
    if let Some(version) = root.get("apiVersion").filter(|k| !k.is_null()) {
        let version = version.as_str().unwrap_or_default();
        if version != "v1" {
            return Err(format!("unsupported apiVersion \"{version}\""));
        }
    }
    let list = |key: &str| -> Vec<Value> {
        root.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let clusters = list("clusters");
    if clusters.is_empty() {
        return Err("no clusters".into());
    }
    let mut cluster_names = BTreeSet::new();
    for cluster in &clusters {
        let name = text_of(cluster.get("name"));
        if name.is_empty() || text_of(cluster.pointer("/cluster/server")).is_empty() {
            return Err(format!("cluster \"{name}\" has no server"));
        }
        cluster_names.insert(name);
    }
    let mut user_names = BTreeSet::new();
    for user in list("users") {
        let name = text_of(user.get("name"));
        if name.is_empty() {
            return Err("user \"\" has no name".into());
        }
        user_names.insert(name);
    }
    let contexts = list("contexts");
    if contexts.is_empty() {
        return Err("no contexts".into());
    }
    let mut context_names = BTreeSet::new();
    for context in &contexts {
        let name = text_of(context.get("name"));
        let cluster = text_of(context.pointer("/context/cluster"));
        if name.is_empty() || !cluster_names.contains(&cluster) {
            return Err(format!(
                "context \"{name}\" references unknown cluster \"{cluster}\""
            ));
        }
        let user = text_of(context.pointer("/context/user"));
        if !user.is_empty() && !user_names.contains(&user) {
            return Err(format!(
                "context \"{name}\" references unknown user \"{user}\""
            ));
        }
        context_names.insert(name);
    }
    let current = text_of(root.get("current-context"));
    if !current.is_empty() && !context_names.contains(&current) {
        return Err(format!("current-context \"{current}\" not found"));
    }
    Ok(())
}

/// A YAML error without the document text (the parser reports positions, not content).
fn parse_error(error: &yaml_serde::Error) -> String {
    let text = error.to_string();
    match text.split_once(" at line ") {
        Some((what, at)) => format!("yaml: {what} at line {at}"),
        None => format!("yaml: {text}"),
    }
}

/// [KC-08]: why an existing target Secret must not be overwritten by the control plane `cp_uid`.
pub fn ownership_conflict(target: &Secret, cp_uid: &str) -> Option<String> {
    let metadata = &target.metadata;
    if let Some(owner) = metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true) && o.uid != cp_uid)
    {
        return Some(format!("is controlled by {}/{}", owner.kind, owner.name));
    }
    if let Some(value) = metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("eks.kany8s.io/managed-by"))
    {
        return Some(format!("is managed by {value}"));
    }
    if let Some(value) = metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("app.kubernetes.io/managed-by"))
    {
        return Some(format!("is managed by {value}"));
    }
    // The API server defaults an unset type to Opaque.
    let type_ = target.type_.as_deref().unwrap_or("Opaque");
    (type_ != CLUSTER_SECRET_TYPE).then(|| format!("has type {type_}, want {CLUSTER_SECRET_TYPE}"))
}

/// [KC-11]: whether a backend-provided Secret is what Cluster API expects.
pub fn compliant(secret: &Secret, cluster_name: &str) -> bool {
    secret.type_.as_deref() == Some(CLUSTER_SECRET_TYPE)
        && secret
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(crate::capi::CLUSTER_NAME_LABEL))
            .is_some_and(|v| v == cluster_name)
}

/// The kubeconfig bytes of a Secret (`data.value`).
pub fn value_of(secret: &Secret) -> Option<&[u8]> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get("value"))
        .map(|v| v.0.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
    use rstest::rstest;

    const VALID: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: https://x:6443}\ncontexts:\n- name: ctx\n  context: {cluster: c, user: u}\ncurrent-context: ctx\nusers:\n- name: u\n  user: {token: t}\n";

    /// [KC-07] every detail.
    #[rstest]
    #[case(VALID, Ok(()))]
    #[case(r#"{"clusters":[{"name":"c","cluster":{"server":"s"}}],"contexts":[{"name":"x","context":{"cluster":"c"}}]}"#, Ok(()))]
    #[case("", Err("kubeconfig is empty"))]
    #[case("  \n", Err("kubeconfig is empty"))]
    #[case("- a\n- b\n", Err("not a YAML mapping"))]
    #[case("kind: Pod\n", Err("unsupported kind \"Pod\""))]
    #[case("apiVersion: v2\n", Err("unsupported apiVersion \"v2\""))]
    #[case("kind: Config\n", Err("no clusters"))]
    #[case(
        "clusters:\n- name: c\n  cluster: {}\n",
        Err("cluster \"c\" has no server")
    )]
    #[case("clusters:\n- name: c\n  cluster: {server: s}\n", Err("no contexts"))]
    #[case(
        "clusters:\n- name: c\n  cluster: {server: s}\ncontexts:\n- name: x\n  context: {cluster: d}\n",
        Err("context \"x\" references unknown cluster \"d\"")
    )]
    #[case(
        "clusters:\n- name: c\n  cluster: {server: s}\ncontexts:\n- name: x\n  context: {cluster: c, user: nobody}\n",
        Err("context \"x\" references unknown user \"nobody\"")
    )]
    #[case(
        "clusters:\n- name: c\n  cluster: {server: s}\ncontexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: y\n",
        Err("current-context \"y\" not found")
    )]
    fn kc07_validity(#[case] text: &str, #[case] expected: Result<(), &str>) {
        assert_eq!(validate(text.as_bytes()), expected.map_err(str::to_string));
    }

    #[test]
    fn kc07_parse_errors_do_not_echo_the_document() {
        let secret_text = "token: hunter2-secret\nclusters: [unclosed";
        let error = validate(secret_text.as_bytes()).unwrap_err();
        assert!(error.starts_with("yaml: "), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    fn secret(
        type_: Option<&str>,
        owner: Option<(&str, bool)>,
        label: Option<&str>,
        annotation: Option<&str>,
    ) -> Secret {
        Secret {
            metadata: ObjectMeta {
                owner_references: owner.map(|(uid, controller)| {
                    vec![OwnerReference {
                        api_version: "x/v1".into(),
                        kind: "Other".into(),
                        name: "o".into(),
                        uid: uid.into(),
                        controller: Some(controller),
                        block_owner_deletion: None,
                    }]
                }),
                labels: label
                    .map(|v| [("app.kubernetes.io/managed-by".to_string(), v.to_string())].into()),
                annotations: annotation
                    .map(|v| [("eks.kany8s.io/managed-by".to_string(), v.to_string())].into()),
                ..ObjectMeta::default()
            },
            type_: type_.map(str::to_string),
            ..Secret::default()
        }
    }

    /// [KC-08] refusal rules.
    #[rstest]
    #[case(secret(Some(CLUSTER_SECRET_TYPE), None, None, None), None)]
    #[case(secret(Some(CLUSTER_SECRET_TYPE), Some(("cp", true)), None, None), None)]
    #[case(secret(Some(CLUSTER_SECRET_TYPE), Some(("other", false)), None, None), None)]
    #[case(secret(Some(CLUSTER_SECRET_TYPE), Some(("other", true)), None, None), Some("is controlled by Other/o"))]
    #[case(
        secret(Some(CLUSTER_SECRET_TYPE), None, None, Some("rotator")),
        Some("is managed by rotator")
    )]
    #[case(
        secret(Some(CLUSTER_SECRET_TYPE), None, Some("kro"), None),
        Some("is managed by kro")
    )]
    #[case(
        secret(Some("Opaque"), None, None, None),
        Some("has type Opaque, want cluster.x-k8s.io/secret")
    )]
    fn kc08_refusals(#[case] target: Secret, #[case] expected: Option<&str>) {
        assert_eq!(ownership_conflict(&target, "cp").as_deref(), expected);
    }
}
