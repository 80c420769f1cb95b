//! Component tests of the rotator: the real controller against the embedded API server in
//! process, ACK played by the test, static credentials (nothing reaches AWS). Negative
//! assertions wait for proof that a reconcile happened (an event or the reconcile counter),
//! never for a fixed time.

use std::time::Duration;

use crate::common::*;
use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kany8s_eks::schedule::Policy;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The presigned URL inside a token, and the query parameters with values.
fn decode_token(token: &str) -> (String, Vec<(String, String)>) {
    let url = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.strip_prefix("k8s-aws-v1.").unwrap())
            .unwrap(),
    )
    .unwrap();
    let query = url.split_once('?').unwrap().1;
    let params = query
        .split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    (url, params)
}

/// The token URL with the signature, credential and session token elided (for figures).
fn elided(token: &str) -> String {
    let (url, params) = decode_token(token);
    let base = url.split_once('?').unwrap().0;
    let shown: Vec<String> = params
        .iter()
        .map(|(k, v)| match k.as_str() {
            "X-Amz-Signature" | "X-Amz-Security-Token" => format!("{k}=<elided>"),
            "X-Amz-Credential" => format!("{k}=<access key>{}", &v[v.find("%2F").unwrap_or(0)..]),
            _ => format!("{k}={v}"),
        })
        .collect();
    format!("{base}?{}", shown.join("&"))
}

fn token_of(secret: &Secret) -> String {
    kubeconfig_of(secret)["users"][0]["user"]["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// [ROT-02], [ROT-03], [ROT-05], [ROT-06], [ROT-07], [PLG-04], [ROT-09]: an opted-in Cluster
/// waits for its ACK Cluster (missing → not ready → ready), each step driven by the ACK watch
/// (the failure backoff is an hour), then gets the probe and exec Secrets with every
/// annotation, label and owner; the probe Secret passes the core's Option A check ([KC-11]).
#[tokio::test]
async fn rot03_missing_not_ready_ready_then_secrets() {
    let sandbox = start(Setup::default()).await;
    let client = &sandbox.client;
    let cluster = create_cluster(
        client,
        "demo",
        json!({"eks.kany8s.io/kubeconfig-rotator": "Enabled"}),
    )
    .await;

    let (type_, note) = wait_event(client, "demo", "ACKClusterNotFound").await;
    assert_eq!(
        (type_.as_str(), note.as_str()),
        ("Normal", "waiting for ACK EKS Cluster default/demo")
    );
    create_ack_cluster(client, "demo").await;
    let (type_, note) = wait_event(client, "demo", "ACKClusterNotReady").await;
    assert_eq!(
        (type_.as_str(), note.as_str()),
        (
            "Normal",
            "waiting for ACK status fields endpoint/CA on default/demo"
        )
    );
    set_ack_status(
        client,
        "demo",
        json!({"status": "CREATING", "endpoint": ENDPOINT}),
    )
    .await;
    set_ack_status(client, "demo", active()).await;

    let probe = wait_secret(client, "demo-kubeconfig").await;
    let exec = wait_secret(client, "demo-kubeconfig-exec").await;
    for secret in [&probe, &exec] {
        assert_eq!(secret.type_.as_deref(), Some("cluster.x-k8s.io/secret"));
        assert_eq!(
            secret
                .labels()
                .get("cluster.x-k8s.io/cluster-name")
                .map(String::as_str),
            Some("demo")
        );
        assert_eq!(
            annotation(secret, "eks.kany8s.io/managed-by"),
            "eks-kubeconfig-rotator"
        );
        assert_eq!(annotation(secret, "eks.kany8s.io/region"), "eu-west-1");
        assert_eq!(annotation(secret, "eks.kany8s.io/cluster-name"), "demo");
        let owners = secret.owner_references();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].kind, "Cluster");
        assert_eq!(owners[0].api_version, "cluster.x-k8s.io/v1beta2");
        assert_eq!(owners[0].name, "demo");
        assert_eq!(Some(owners[0].uid.clone()), cluster.metadata.uid);
        assert_ne!(owners[0].controller, Some(true));
    }
    // Probe: token kubeconfig, expiration 14 min after generation.
    let expiration: k8s_openapi::jiff::Timestamp =
        annotation(&probe, "eks.kany8s.io/token-expiration-rfc3339")
            .parse()
            .unwrap();
    let left = expiration
        .duration_since(k8s_openapi::jiff::Timestamp::now())
        .as_secs();
    assert!((13 * 60..=14 * 60).contains(&left), "{left}");
    let config = kubeconfig_of(&probe);
    assert_eq!(config["current-context"], "demo");
    assert_eq!(config["clusters"][0]["cluster"]["server"], ENDPOINT);
    assert_eq!(
        config["clusters"][0]["cluster"]["certificate-authority-data"],
        CA
    );
    assert_eq!(
        config["contexts"][0]["context"],
        json!({"cluster": "demo", "user": "aws"})
    );
    let token = token_of(&probe);
    let (url, params) = decode_token(&token);
    assert!(
        url.starts_with(
            "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"
        ),
        "{url}"
    );
    let param = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert!(param("X-Amz-Credential").starts_with("AKIDEXAMPLEROTATOR%2F"));
    assert!(param("X-Amz-Credential").ends_with("%2Feu-west-1%2Fsts%2Faws4_request"));
    assert_eq!(param("X-Amz-Expires"), "60");
    assert_eq!(param("X-Amz-SignedHeaders"), "host%3Bx-k8s-aws-id");
    assert_eq!(param("X-Amz-Security-Token"), SESSION_TOKEN);
    eprintln!("decoded token (component test): {}", elided(&token));
    // Exec: aws eks get-token for the region and the EKS name.
    let config = kubeconfig_of(&exec);
    assert_eq!(
        config["users"][0]["user"]["exec"]["args"],
        json!([
            "eks",
            "get-token",
            "--region",
            "eu-west-1",
            "--cluster-name",
            "demo"
        ])
    );
    assert_eq!(config["users"][0]["user"]["exec"]["command"], "aws");
    let (type_, note) = wait_event(client, "demo", "SecretSynced").await;
    assert_eq!(
        (type_.as_str(), note.as_str()),
        ("Normal", "kubeconfig secrets reconciled")
    );
    assert!(
        sandbox.metrics.sample("kany8s_eks_plugin_last_successful_sync_unix_seconds{controller=\"eks-kubeconfig-rotator\"}").unwrap() > 0.0
    );
    rot09_option_a_check(&probe, "demo");
}

/// [ROT-09], [KC-11], [KC-07]: what the core verifies in Option A — type, cluster-name label,
/// and a structurally valid kubeconfig in `value` (clusters with servers, contexts naming
/// existing clusters and users, an existing current-context).
fn rot09_option_a_check(secret: &Secret, cluster: &str) {
    assert_eq!(secret.type_.as_deref(), Some("cluster.x-k8s.io/secret"));
    assert_eq!(secret.labels()["cluster.x-k8s.io/cluster-name"], cluster);
    let config = kubeconfig_of(secret);
    assert_eq!(config["apiVersion"], "v1");
    assert_eq!(config["kind"], "Config");
    let names = |key: &str| -> Vec<Value> {
        config[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].clone())
            .collect()
    };
    assert!(config["clusters"].as_array().unwrap().iter().all(|c| {
        c["cluster"]["server"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    }));
    for context in config["contexts"].as_array().unwrap() {
        assert!(names("clusters").contains(&context["context"]["cluster"]));
        assert!(names("users").contains(&context["context"]["user"]));
    }
    assert!(names("contexts").contains(&config["current-context"]));
}

/// [ROT-08], [ROT-07]: with a short refresh point (refresh-before 13m57s: due 3 s after
/// generation) the token is replaced before it expires, only the probe Secret is rewritten,
/// and each rotation moves the expiration forward.
#[tokio::test]
async fn rot08_token_rotates_before_expiry() {
    let sandbox = start(Setup {
        policy: Policy {
            refresh_before: Duration::from_secs(13 * 60 + 57),
            max_refresh: Duration::from_secs(600),
            failure_backoff: Duration::from_secs(3600),
            ..Policy::default()
        },
        ..Setup::default()
    })
    .await;
    let client = &sandbox.client;
    create_opted_in_cluster(client, "demo").await;
    create_active_ack_cluster(client, "demo").await;
    let first = wait_secret(client, "demo-kubeconfig").await;
    let exec = wait_secret(client, "demo-kubeconfig-exec").await;
    let first_token = token_of(&first);
    let api = secrets(client);
    let mut rotated = None;
    for _ in 0..300 {
        let now = api.get("demo-kubeconfig").await.unwrap();
        if token_of(&now) != first_token {
            rotated = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rotated = rotated.expect("the token was never rotated");
    let expiration = |s: &Secret| annotation(s, "eks.kany8s.io/token-expiration-rfc3339");
    assert!(
        expiration(&rotated) > expiration(&first),
        "{} !> {}",
        expiration(&rotated),
        expiration(&first)
    );
    assert_eq!(
        api.get("demo-kubeconfig-exec")
            .await
            .unwrap()
            .resource_version(),
        exec.resource_version(),
        "the exec Secret does not change with the token"
    );
    eprintln!("rotated: {} → {}", expiration(&first), expiration(&rotated));
}

/// [ROT-08], [ROT-07]: a settled cluster is reconciled (a Cluster label change passes the
/// watch) without any write: the token is not due, so the Secrets keep their resourceVersions.
#[tokio::test]
async fn rot08_settled_reconcile_writes_nothing() {
    let sandbox = start(Setup::default()).await;
    let client = &sandbox.client;
    create_opted_in_cluster(client, "demo").await;
    create_active_ack_cluster(client, "demo").await;
    let probe = wait_secret(client, "demo-kubeconfig").await;
    let exec = wait_secret(client, "demo-kubeconfig-exec").await;
    wait_event(client, "demo", "SecretSynced").await;
    let before = reconciles(&sandbox.metrics);
    clusters(client)
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touch": "1"}}})),
        )
        .await
        .unwrap();
    wait_reconciles_after(&sandbox.metrics, before).await;
    let api = secrets(client);
    assert_eq!(
        api.get("demo-kubeconfig").await.unwrap().resource_version(),
        probe.resource_version()
    );
    assert_eq!(
        api.get("demo-kubeconfig-exec")
            .await
            .unwrap()
            .resource_version(),
        exec.resource_version()
    );
}

fn user_secret(name: &str) -> Secret {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": NS,
            "labels": {"cluster.x-k8s.io/cluster-name": "demo"}},
        "type": "cluster.x-k8s.io/secret",
        "data": {"value": base64::engine::general_purpose::STANDARD.encode("user-provided kubeconfig")},
    }))
    .unwrap()
}

/// [PLG-06], [ROT-06], [PLG-08]: a user-owned `<cluster>-kubeconfig` is never overwritten
/// (Warning event, conflict metric, the exec Secret skipped); with the takeover annotation it
/// is taken over (Normal event), annotated, owned and filled with a token.
#[tokio::test]
async fn plg06_user_owned_secret_then_takeover() {
    let sandbox = start(Setup::default()).await;
    let client = &sandbox.client;
    let api = secrets(client);
    let user = api
        .create(&PostParams::default(), &user_secret("demo-kubeconfig"))
        .await
        .unwrap();
    create_active_ack_cluster(client, "demo").await;
    create_opted_in_cluster(client, "demo").await;
    let (type_, note) = wait_event(client, "demo", "SecretOwnershipConflict").await;
    assert_eq!(
        (type_.as_str(), note.as_str()),
        (
            "Warning",
            "secret default/demo-kubeconfig exists and is not managed by eks-kubeconfig-rotator"
        )
    );
    assert_eq!(
        sandbox.metrics.sample("kany8s_eks_plugin_ownership_conflicts_total{controller=\"eks-kubeconfig-rotator\",resource=\"Secret\"}"),
        Some(1.0)
    );
    let unchanged = api.get("demo-kubeconfig").await.unwrap();
    assert_eq!(unchanged.resource_version(), user.resource_version());
    assert_eq!(
        unchanged.data.unwrap()["value"],
        ByteString(b"user-provided kubeconfig".to_vec())
    );
    assert!(
        api.get_opt("demo-kubeconfig-exec").await.unwrap().is_none(),
        "exec skipped on a probe conflict"
    );

    annotate_cluster(
        client,
        "demo",
        json!({"eks.kany8s.io/allow-unmanaged-takeover": "true"}),
    )
    .await;
    let (type_, note) = wait_event(client, "demo", "SecretTakeoverApplied").await;
    assert_eq!(type_, "Normal");
    assert!(
        note.starts_with(
            "secret default/demo-kubeconfig was not managed by eks-kubeconfig-rotator"
        ),
        "{note}"
    );
    let taken = wait_secret(client, "demo-kubeconfig-exec").await;
    assert_eq!(
        annotation(&taken, "eks.kany8s.io/managed-by"),
        "eks-kubeconfig-rotator"
    );
    let probe = api.get("demo-kubeconfig").await.unwrap();
    assert_eq!(
        annotation(&probe, "eks.kany8s.io/managed-by"),
        "eks-kubeconfig-rotator"
    );
    assert_eq!(probe.owner_references()[0].kind, "Cluster");
    assert!(token_of(&probe).starts_with("k8s-aws-v1."));
}

/// [ROT-02]: a Cluster that did not opt in is reconciled and left alone: no Secret, no event.
#[tokio::test]
async fn rot02_unopted_cluster_is_ignored() {
    let sandbox = start(Setup::default()).await;
    let client = &sandbox.client;
    create_active_ack_cluster(client, "demo").await;
    let before = reconciles(&sandbox.metrics);
    create_cluster(
        client,
        "demo",
        json!({"eks.kany8s.io/kubeconfig-rotator": "disabled"}),
    )
    .await;
    wait_reconciles_after(&sandbox.metrics, before).await;
    assert!(
        secrets(client)
            .get_opt("demo-kubeconfig")
            .await
            .unwrap()
            .is_none()
    );
    let events: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(client.clone(), NS);
    assert!(
        events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// [PLG-05], [ROT-03]: without the ACK CRD the Cluster gets PrerequisiteAPIMissing; once the
/// CRD appears the periodic check starts the ACK watch and the Secrets follow.
#[tokio::test]
async fn plg05_ack_api_appears_later() {
    let sandbox = start(Setup {
        with_ack_crd: false,
        api_recheck: Duration::from_millis(200),
        ..Setup::default()
    })
    .await;
    let client = &sandbox.client;
    create_opted_in_cluster(client, "demo").await;
    let (type_, note) = wait_event(client, "demo", "PrerequisiteAPIMissing").await;
    assert_eq!(type_, "Warning");
    assert!(
        note.starts_with(
            "ACK EKS API (eks.services.k8s.aws/v1alpha1 Cluster) is not available; cause: "
        ),
        "{note}"
    );
    install_crd(client, ack_crd()).await;
    create_active_ack_cluster(client, "demo").await;
    wait_secret(client, "demo-kubeconfig").await;
}

/// Bad input ([ROT-03], [ROT-05], [ROT-06], [PLG-03]): an unresolved region, bad CA data and
/// missing credentials each get their Warning and change nothing that exists.
#[tokio::test]
async fn rot03_bad_input_events_and_nothing_overwritten() {
    let sandbox = start(Setup::default()).await;
    let client = &sandbox.client;
    create_opted_in_cluster(client, "demo").await;
    create_active_ack_cluster(client, "demo").await;
    let probe = wait_secret(client, "demo-kubeconfig").await;
    let api = secrets(client);

    // Bad CA data on the ACK Cluster.
    set_ack_status(
        client,
        "demo",
        json!({"certificateAuthority": {"data": "!!not base64!!"}}),
    )
    .await;
    let (type_, note) = wait_event(client, "demo", "InvalidCertificateAuthority").await;
    assert_eq!(type_, "Warning");
    assert_eq!(
        note,
        "ACK EKS Cluster default/demo status.certificateAuthority.data: certificate authority data is not valid base64"
    );
    assert_eq!(
        api.get("demo-kubeconfig").await.unwrap().resource_version(),
        probe.resource_version()
    );

    // No region anywhere: ACK status and annotation cleared, no Cluster annotation.
    set_ack_status(
        client,
        "demo",
        json!({"certificateAuthority": {"data": CA}, "ackResourceMetadata": {"region": ""}}),
    )
    .await;
    ack_clusters(client)
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"services.k8s.aws/region": null}}})),
        )
        .await
        .unwrap();
    let (type_, note) = wait_event(client, "demo", "RegionNotResolved").await;
    assert_eq!(type_, "Warning");
    assert!(
        note.contains("eks.kany8s.io/region") && note.contains("services.k8s.aws/region"),
        "{note}"
    );
    assert_eq!(
        api.get("demo-kubeconfig").await.unwrap().resource_version(),
        probe.resource_version()
    );
}

/// [ROT-03], [ROT-04], [PLG-08]: missing credentials → TokenGenerationFailed, the failure
/// metric, and no Secret.
#[tokio::test]
async fn rot04_missing_credentials() {
    let sandbox = start(Setup {
        tokens: kany8s_eks::token::TokenSource::new(kany8s_eks::token::NoCredentials),
        ..Setup::default()
    })
    .await;
    let client = &sandbox.client;
    create_active_ack_cluster(client, "demo").await;
    create_opted_in_cluster(client, "demo").await;
    let (type_, note) = wait_event(client, "demo", "TokenGenerationFailed").await;
    assert_eq!(type_, "Warning");
    assert!(
        note.starts_with("failed to generate EKS token: loading AWS credentials: "),
        "{note}"
    );
    assert_eq!(
        sandbox.metrics.sample("kany8s_eks_plugin_token_generation_failures_total{controller=\"eks-kubeconfig-rotator\"}"),
        Some(1.0)
    );
    assert!(
        secrets(client)
            .get_opt("demo-kubeconfig")
            .await
            .unwrap()
            .is_none()
    );
}

/// [PLG-07]: the same wait reported twice is one event (a second reconcile, proven by the
/// counter, posts nothing new).
#[tokio::test]
async fn plg07_repeated_waits_post_one_event() {
    let sandbox = start(Setup::default()).await;
    let client = &sandbox.client;
    create_opted_in_cluster(client, "demo").await;
    wait_event(client, "demo", "ACKClusterNotFound").await;
    let before = reconciles(&sandbox.metrics);
    annotate_cluster(client, "demo", json!({"touch": "again"})).await;
    wait_reconciles_after(&sandbox.metrics, before).await;
    let found = events(client, "demo", "ACKClusterNotFound").await;
    assert_eq!(found.len(), 1);
    assert!(
        found[0].series.is_none(),
        "not re-posted as a series either"
    );
}

/// [ROT-10]: every request the rotator makes is allowed by the rules the chart grants, and it
/// never lists or watches Secrets.
#[tokio::test]
async fn rot10_requests_stay_inside_the_rbac() {
    let sandbox = start(Setup {
        record_access: true,
        ..Setup::default()
    })
    .await;
    let client = &sandbox.client;
    create_opted_in_cluster(client, "demo").await;
    wait_event(client, "demo", "ACKClusterNotFound").await;
    create_active_ack_cluster(client, "demo").await;
    wait_secret(client, "demo-kubeconfig-exec").await;
    wait_event(client, "demo", "SecretSynced").await;
    let log = sandbox.server.access_log().unwrap();
    let accesses = log.of(ROTATOR_USER);
    assert!(!accesses.is_empty());
    for access in &accesses {
        assert!(
            kany8s_eks::rbac::allows(
                kany8s_eks::rbac::CLUSTER_RULES,
                &access.group,
                &access.resource,
                &access.verb
            ),
            "{access:?} is not granted"
        );
    }
    for verb in ["list", "watch"] {
        assert!(
            !accesses
                .iter()
                .any(|a| a.resource == "secrets" && a.verb == verb)
        );
    }
    for (group, resource, verb) in [
        ("cluster.x-k8s.io", "clusters", "watch"),
        ("eks.services.k8s.aws", "clusters", "get"),
        ("", "secrets", "patch"),
        ("events.k8s.io", "events", "create"),
    ] {
        assert!(
            accesses
                .iter()
                .any(|a| a.group == group && a.resource == resource && a.verb == verb),
            "{verb} {group}/{resource} never happened: {accesses:#?}"
        );
    }
}

/// [ROT-10], [ROT-02]: removing the opt-in stops the rotation and removes nothing: the Secrets
/// stay (garbage collection takes them with the Cluster).
#[tokio::test]
async fn rot10_opt_out_keeps_the_secrets() {
    let sandbox = start(Setup::default()).await;
    let client = &sandbox.client;
    create_opted_in_cluster(client, "demo").await;
    create_active_ack_cluster(client, "demo").await;
    let probe = wait_secret(client, "demo-kubeconfig").await;
    let before = reconciles(&sandbox.metrics);
    annotate_cluster(
        client,
        "demo",
        json!({"eks.kany8s.io/kubeconfig-rotator": null}),
    )
    .await;
    wait_reconciles_after(&sandbox.metrics, before).await;
    let kept = secrets(client).get("demo-kubeconfig").await.unwrap();
    assert_eq!(kept.resource_version(), probe.resource_version());
    assert!(
        secrets(client)
            .get_opt("demo-kubeconfig-exec")
            .await
            .unwrap()
            .is_some()
    );
}

/// [ROT-01] `--watch-namespace`: a Cluster outside the namespace is not seen.
#[tokio::test]
async fn rot01_watch_namespace() {
    let sandbox = start(Setup {
        namespace: Some("tenant-a".into()),
        ..Setup::default()
    })
    .await;
    let client = &sandbox.client;
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(client.clone());
    let tenant: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": "tenant-a"}})).unwrap();
    namespaces
        .create(&PostParams::default(), &tenant)
        .await
        .unwrap();
    // Outside: `default`, fully ready, never reconciled.
    create_active_ack_cluster(client, "demo").await;
    create_opted_in_cluster(client, "demo").await;
    // Inside: tenant-a waits for its ACK Cluster — proof the rotator runs and sees only it.
    let inside: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
        "metadata": {"name": "inside", "namespace": "tenant-a",
            "annotations": {"eks.kany8s.io/kubeconfig-rotator": "enabled"}},
        "spec": {},
    }))
    .unwrap();
    kube::Api::<kube::api::DynamicObject>::namespaced_with(
        client.clone(),
        "tenant-a",
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta2", "Cluster"),
            "clusters",
        ),
    )
    .create(&PostParams::default(), &inside)
    .await
    .unwrap();
    let events: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(client.clone(), "tenant-a");
    wait("the tenant-a Cluster reconciled", || async {
        events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("ACKClusterNotFound"))
    })
    .await;
    assert!(
        secrets(client)
            .get_opt("demo-kubeconfig")
            .await
            .unwrap()
            .is_none()
    );
    assert!(events_in_default_are_empty(client).await);
}

async fn events_in_default_are_empty(client: &kube::Client) -> bool {
    let events: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(client.clone(), NS);
    events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .is_empty()
}
