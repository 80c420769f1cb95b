//! `eks-rotator`: the EKS pack end to end with the eks-kubeconfig-rotator (provider.md §9.2; the
//! spec gives the scenario no ACC id, so the steps cite [ROT-..] and [PLG-..]). The eks-ack RGD
//! over this project's minimal ACK CRDs; an opted-in Cluster whose Kany8sControlPlane uses it;
//! ACK played by [`crate::ack`] (ACTIVE, endpoint, CA data); the rotator writes
//! `<cluster>-kubeconfig`, the control plane verifies it (Option A) and is initialized, the
//! Cluster gets its endpoint; the token is refreshed before it expires and nothing else is
//! written; a user-owned Secret is never overwritten, and is taken over only when allowed.
//!
//! The rotator runs in this process (the library the `eks-kubeconfig-rotator` binary runs) with
//! the arguments the chart renders, static test credentials from a shared credentials file read
//! by the AWS SDK's profile provider (no AWS network call; no other credentials source is
//! consulted) and a refresh schedule that makes a token due 8 s after it is issued. On the
//! upstream target the chart is `helm install`ed first, and the rotator runs as the chart's
//! ServiceAccount with the chart's arguments and credentials Secret, so kube-apiserver enforces
//! the chart's RBAC; its Deployment never runs a container (there is no container engine).

use std::sync::Arc;
use std::time::SystemTime;

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kany8s_eks::flags::{Flags, LEASE_NAME};
use kany8s_eks::lease::Election;
use kany8s_eks::manager::{self, Config};
use kany8s_eks::metrics::Metrics;
use kany8s_eks::rotator::run::Options;
use kany8s_eks::token::TokenSource;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

use super::common::{
    CAPI, CLUSTERS, CP, Task, annotation, apply_rgds, base64_text, check_cluster_owner,
    check_cluster_secret, container_args, initialized, install_chart, merge_patch, object,
    plugin_process_args, uninstall_chart, wait_count, wait_event, wait_lease_held,
};
use crate::ack::Published;
use crate::harness::{Failure, Harness, Target, check, check_eq, has_condition, writers};

/// The Cluster the rotator serves, and the one whose `<cluster>-kubeconfig` a user owns.
const CLUSTER: &str = "eks-demo";
const USER_CLUSTER: &str = "eks-user";
const REGION: &str = "eu-west-1";
/// The Cluster API version (semver) and the EKS version the RGD derives from it.
const VERSION: &str = "v1.34.2";
const EKS_VERSION: &str = "1.34";
const EKS_ACK_RGD: (&str, &str) = ("control-plane/eks-ack.yaml", "eks-ack.kro.run");
const ACK: &str = "eks.services.k8s.aws/v1alpha1";
const INSTANCE: (&str, &str) = ("eks.kany8s.io/v1alpha1", "EksControlPlane");
const ROTATOR: &str = kany8s_eks::ROTATOR;
const MANAGED_BY: &str = "eks.kany8s.io/managed-by";
const EXPIRATION: &str = "eks.kany8s.io/token-expiration-rfc3339";
/// The chart's release and the credentials Secret its values name (key: the chart's default).
const RELEASE: &str = "eks-kubeconfig-rotator";
const CREDENTIALS_SECRET: &str = "eks-rotator-aws-credentials";
const PROFILE: &str = "kany8s-acceptance";
const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
/// A shared credentials file with AWS's documentation example keys: never real, never sent.
const CREDENTIALS_FILE: &str = "[kany8s-acceptance]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\naws_session_token = kany8s-acceptance-session-token-EXAMPLE\n";
/// [ROT-08] driven fast: a token is valid 14 min for the rotator, so refreshing 13m52s before
/// expiry makes it due 8 s after it is issued; every cluster is looked at every 2 s, and again
/// 1 s after a missing prerequisite.
const SCHEDULE: [(&str, &str, &str); 3] = [
    ("args.refreshBefore", "refresh-before", "13m52s"),
    ("args.maxRefreshInterval", "max-refresh-interval", "2s"),
    ("args.failureBackoff", "failure-backoff", "1s"),
];

/// The AWS SDK's HTTP connector here: it refuses every request. With static credentials the
/// rotator makes no network call; were a credentials provider ever to reach for STS or instance
/// metadata, the token would fail instead of reaching AWS.
#[derive(Debug)]
struct NoNetwork;

impl HttpConnector for NoNetwork {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let refused = format!(
            "the eks-rotator scenario allows no network call ({} {})",
            request.method(),
            request.uri()
        );
        HttpConnectorFuture::ready(Err(ConnectorError::other(refused.into(), None)))
    }
}

/// The rotator running in this process.
struct Rotator {
    metrics: Arc<Metrics>,
    /// The chart's objects' name on the upstream target (None elsewhere).
    chart: Option<String>,
    _task: Task,
    /// The "mounted" credentials file.
    _credentials: tempfile::TempDir,
}

/// What the chart's Pod would run.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pod {
    service_account: String,
    /// The container's arguments (program name excluded).
    args: Vec<String>,
    /// The credentials Secret, its key, and the profile (`AWS_PROFILE`).
    credentials: (String, String, String),
}

/// The arguments the chart renders for the values this scenario sets (`args.*`), in its order.
fn expected_args(namespace: &str) -> Vec<String> {
    let mut args = plugin_process_args(namespace);
    args.extend(SCHEDULE.map(|(_, flag, value)| format!("--{flag}={value}")));
    args
}

/// The Pod of the chart's Deployment (its JSON): ServiceAccount, arguments and credentials.
fn pod_of(deployment: &Value) -> Result<Pod, Failure> {
    let spec = &deployment["spec"]["template"]["spec"];
    let container = &spec["containers"][0];
    let env = |name: &str| {
        container["env"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .map(str::to_string)
    };
    let volume = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == "aws-credentials")
        .ok_or_else(|| Failure::new("the chart's Deployment mounts no aws-credentials volume"))?;
    let key = volume["secret"]["items"][0]["key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let file = env("AWS_SHARED_CREDENTIALS_FILE").unwrap_or_default();
    check(file == format!("/var/run/secrets/aws/{key}"), || {
        format!("AWS_SHARED_CREDENTIALS_FILE {file} is not the mounted key {key}")
    })?;
    Ok(Pod {
        service_account: spec["serviceAccountName"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        args: container_args(deployment),
        credentials: (
            volume["secret"]["secretName"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            key,
            env("AWS_PROFILE").unwrap_or_default(),
        ),
    })
}

/// The presigned STS URL inside an EKS token ([ROT-04]).
fn presigned_url(token: &str) -> Option<String> {
    let encoded = token.strip_prefix("k8s-aws-v1.")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// The value of query parameter `name` of `url` (as written, percent-encoded).
fn query<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    url.split_once('?')?
        .1
        .split('&')
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
}

/// `url` with its secret parts elided: the signature, the session token and the access key id
/// of the credential (its scope — date, region, service — stays).
fn elided(url: &str) -> String {
    let Some((base, parameters)) = url.split_once('?') else {
        return url.to_string();
    };
    let parameters: Vec<String> = parameters
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k @ ("X-Amz-Signature" | "X-Amz-Security-Token"), _)) => format!("{k}=<elided>"),
            Some((k @ "X-Amz-Credential", v)) => match v.split_once("%2F") {
                Some((_, scope)) => format!("{k}=<elided>%2F{scope}"),
                None => format!("{k}=<elided>"),
            },
            _ => p.to_string(),
        })
        .collect();
    format!("{base}?{}", parameters.join("&"))
}

/// The kubeconfig in a Secret's `value`, parsed.
fn kubeconfig_of(secret: &Value) -> Value {
    yaml_serde::from_str(&base64_text(&secret["data"]["value"])).unwrap_or_default()
}

/// The bearer token of a probe Secret's kubeconfig.
fn token_of(secret: &Value) -> String {
    kubeconfig_of(secret)["users"][0]["user"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The managers of an object's managedFields.
fn managers(object: &Value) -> Vec<String> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["manager"].as_str().map(str::to_string))
        .collect()
}

/// An RFC 3339 annotation as a time.
fn time_of(text: &str) -> Option<SystemTime> {
    text.parse::<k8s_openapi::jiff::Timestamp>()
        .ok()
        .map(SystemTime::from)
}

pub(super) async fn run(h: &Harness) -> Result<(), Failure> {
    a_pack_installed(h).await?;
    let rotator = b_rotator_started(h).await?;
    c_cluster_waits_for_ack(h).await?;
    let (published, _ack) = d_kubeconfig_written_and_verified(h).await?;
    e_token_refreshed_nothing_else_rewritten(h, &published).await?;
    f_user_owned_secret_never_overwritten(h, &rotator).await?;
    g_takeover_when_allowed(h).await?;
    h_chart_uninstalled(h, rotator).await
}

async fn a_pack_installed(h: &Harness) -> Result<(), Failure> {
    h.step(
        "A",
        "the minimal ACK CRDs, the role for eks.kany8s.io instances and the eks-ack RGD (Active)",
    );
    for crd in [
        "crds/ack/iam.services.k8s.aws_roles.yaml",
        "crds/ack/eks.services.k8s.aws_clusters.yaml",
    ] {
        h.apply_fixture(crd, &[]).await?;
    }
    h.apply_fixture("rbac/eks-ack-role.yaml", &[]).await?;
    h.wait("the ACK EKS API to be served", || async {
        Ok(h.api(ACK, "Cluster").await.map(|_| ()).map_err(|e| e.0))
    })
    .await?;
    apply_rgds(h, &[EKS_ACK_RGD]).await
}

/// The values the chart is installed with: this namespace, only its Clusters, the fast
/// schedule, the credentials Secret and profile.
fn chart_values(namespace: &str, fullname: &str) -> Vec<(&'static str, String)> {
    let mut values = vec![
        ("fullnameOverride", fullname.to_string()),
        ("namespace", namespace.to_string()),
        ("createNamespace", "false".to_string()),
        ("args.watchNamespace", namespace.to_string()),
        ("aws.credentials.secretName", CREDENTIALS_SECRET.to_string()),
        ("aws.credentials.profile", PROFILE.to_string()),
    ];
    values.extend(SCHEDULE.map(|(key, _, value)| (key, value.to_string())));
    values
}

/// On the upstream target: `helm install`s the chart and returns its Pod and a client
/// authenticated as its ServiceAccount, after checking that the real authorizer answers for
/// that account with the chart's rules.
async fn chart_installed(h: &Harness, fullname: &str) -> Result<(Pod, kube::Client), Failure> {
    let installed = install_chart(
        h,
        "eks-kubeconfig-rotator",
        RELEASE,
        fullname,
        &chart_values(&h.namespace, fullname),
    )
    .await?;
    let pod = pod_of(&installed.deployment)?;
    // One thing the chart does not grant: Secrets are read live, never listed ([ROT-10]).
    match Api::<Secret>::namespaced(installed.client.clone(), &h.namespace)
        .list(&ListParams::default())
        .await
    {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => {
            return Err(Failure(format!(
                "listing Secrets as the rotator: expected kube-apiserver's forbidden, got {:?}",
                other.map(|l| l.items.len())
            )));
        }
    }
    Ok((pod, installed.client))
}

/// [ROT-01], [ROT-10]: the rotator starts with the chart's arguments (upstream: installed with
/// helm and run as the chart's ServiceAccount).
async fn b_rotator_started(h: &Harness) -> Result<Rotator, Failure> {
    h.step(
        "B",
        "the rotator starts (upstream: the chart installed with helm, the rotator as its ServiceAccount)",
    );
    h.apply(
        &serde_json::to_string(&json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": CREDENTIALS_SECRET, "namespace": h.namespace},
            "stringData": {"credentials": CREDENTIALS_FILE}}))?,
        &[],
    )
    .await?;
    let fullname = format!("{}-rotator", h.namespace);
    let (pod, client, chart) = if h.target == Target::Upstream {
        let (pod, client) = chart_installed(h, &fullname).await?;
        (pod, client, Some(fullname))
    } else {
        let pod = Pod {
            service_account: RELEASE.into(),
            args: expected_args(&h.namespace),
            credentials: (
                CREDENTIALS_SECRET.into(),
                "credentials".into(),
                PROFILE.into(),
            ),
        };
        (pod, h.client.clone(), None)
    };
    run_rotator(h, &pod, client, chart).await
}

/// Runs the rotator in this process as `pod` would, with `client`: its arguments, its
/// credentials Secret's key as a file (as the kubelet would mount it), the profile provider
/// alone, leader election; waits until it holds the Lease.
async fn run_rotator(
    h: &Harness,
    pod: &Pod,
    client: kube::Client,
    chart: Option<String>,
) -> Result<Rotator, Failure> {
    check_eq(
        "the rotator's arguments",
        &pod.args,
        &expected_args(&h.namespace),
    )?;
    let flags = Flags::parse_args(std::iter::once(ROTATOR.to_string()).chain(pod.args.clone()))
        .map_err(|e| Failure(format!("the chart's arguments: {e}")))?;
    let settings = flags.settings().map_err(Failure)?;
    let (secret, key, profile) = &pod.credentials;
    let mounted = object(h, "v1", "Secret", secret).await?;
    let credentials =
        tempfile::tempdir().map_err(|e| Failure(format!("a temporary folder: {e}")))?;
    let file = credentials.path().join(key);
    std::fs::write(&file, base64_text(&mounted["data"][key]))
        .map_err(|e| Failure(format!("{}: {e}", file.display())))?;
    let files = EnvConfigFiles::builder()
        .with_file(EnvConfigFileKind::Credentials, &file)
        .build();
    let tokens = TokenSource::new(
        ProfileFileCredentialsProvider::builder()
            .configure(
                &ProviderConfig::default()
                    .with_http_client(http_client_fn(|_, _| SharedHttpConnector::new(NoNetwork))),
            )
            .profile_files(files)
            .profile_name(profile)
            .build(),
    );

    let identity = format!("{}-acceptance", h.namespace);
    let election = settings
        .leader_elect
        .then(|| Election::new(LEASE_NAME, &h.namespace, &identity));
    let metrics = Arc::new(Metrics::new(
        ROTATOR,
        1,
        election.as_ref().map(|e| e.name.as_str()),
    ));
    let config = Config {
        options: Options {
            namespace: settings.watch_namespace.clone(),
            policy: settings.policy,
            instance: Some(identity),
            metrics: metrics.clone(),
            ..Options::default()
        },
        tokens,
        election,
        // No kubelet probes this process, and nothing scrapes it: no listener.
        health_address: None,
        metrics_address: None,
    };
    let task = tokio::spawn(async move {
        if let Err(error) = manager::run(client, config, std::future::pending(), None).await {
            tracing::error!(%error, "eks-kubeconfig-rotator stopped");
        }
    });
    // Leading: the Lease of [ROT-01] is held (on upstream, through the chart's Role).
    wait_lease_held(h, LEASE_NAME, "rotator").await?;
    Ok(Rotator {
        metrics,
        chart,
        _task: Task(task),
        _credentials: credentials,
    })
}

/// [ROT-03]: the ACK Cluster kro rendered has no endpoint or CA yet: Normal
/// `ACKClusterNotReady`, no Secret, and the control plane waits for its kubeconfig.
async fn c_cluster_waits_for_ack(h: &Harness) -> Result<(), Failure> {
    h.step(
        "C",
        "an opted-in Cluster on the eks-ack RGD: kro renders the ACK Cluster; not ready, so no kubeconfig",
    );
    apply_cluster(h, CLUSTER).await?;
    let ack = h
        .wait_object(ACK, "Cluster", CLUSTER, "rendered by kro", |_| true)
        .await?;
    check_eq("ACK spec.name", &ack["spec"]["name"], &json!(CLUSTER))?;
    check_eq(
        "ACK spec.version (mapped)",
        &ack["spec"]["version"],
        &json!(EKS_VERSION),
    )?;
    check_eq(
        "ACK region annotation",
        annotation(&ack, "services.k8s.aws/region"),
        REGION,
    )?;
    let (kind, note) = wait_event(h, CLUSTER, "ACKClusterNotReady").await?;
    check_eq("event type", kind.as_str(), "Normal")?;
    check_eq(
        "event note",
        note,
        format!(
            "waiting for ACK status fields endpoint/CA on {}/{CLUSTER}",
            h.namespace
        ),
    )?;
    h.wait_object(
        CP,
        "Kany8sControlPlane",
        CLUSTER,
        "KubeconfigSecretNotFound",
        |o| {
            has_condition(
                o,
                "KubeconfigSecretReconciled",
                "False",
                Some("KubeconfigSecretNotFound"),
            ) && !initialized(o)
        },
    )
    .await?;
    check(
        h.get("v1", "Secret", &format!("{CLUSTER}-kubeconfig"))
            .await?
            .is_none(),
        || "a kubeconfig Secret was written for an ACK Cluster that is not ready".into(),
    )
}

async fn apply_cluster(h: &Harness, name: &str) -> Result<(), Failure> {
    h.apply_fixture(
        "acceptance/eks-cluster.yaml",
        &[
            ("CLUSTER_NAME", name),
            ("KUBERNETES_VERSION", VERSION),
            ("REGION", REGION),
        ],
    )
    .await
}

/// What the simulated ACK publishes: on the upstream target the target's own API server and CA
/// (refused unless it is a loopback port of the target), elsewhere a `.test` name and a CA made
/// here.
fn published(h: &Harness) -> Result<Published, Failure> {
    let (endpoint, ca) = match &h.upstream {
        Some(upstream) => {
            check(
                crate::upstream::manifests::dialable(&upstream.server, &upstream.ports),
                || format!("{} is not a loopback port of the target", upstream.server),
            )?;
            (upstream.server.clone(), upstream.ca.clone())
        }
        None => {
            let authority = crate::upstream::pki::Authority::new()
                .map_err(|e| Failure(format!("a CA: {e}")))?;
            ("https://eks.kany8s.test".to_string(), authority.ca.cert)
        }
    };
    Ok(Published {
        endpoint,
        certificate_authority: base64::engine::general_purpose::STANDARD.encode(ca),
    })
}

/// [ROT-04]–[ROT-07], [ROT-09]: ACK reports ACTIVE; the rotator writes both Secrets; the
/// control plane verifies the probe Secret (Option A) and is initialized; the Cluster gets the
/// endpoint. Returns what ACK published and the running ACK actor.
async fn d_kubeconfig_written_and_verified(h: &Harness) -> Result<(Published, Task), Failure> {
    h.step(
        "D",
        "ACK reports ACTIVE: the rotator writes the kubeconfig, the control plane verifies it, the Cluster gets its endpoint",
    );
    let published = published(h)?;
    let actor = Task(tokio::spawn(crate::ack::run(
        h.client.clone(),
        h.namespace.clone(),
        published.clone(),
    )));
    let probe_name = format!("{CLUSTER}-kubeconfig");
    let probe = h
        .wait_object("v1", "Secret", &probe_name, "written by the rotator", |s| {
            annotation(s, MANAGED_BY) == ROTATOR
        })
        .await?;
    let cluster = object(h, CAPI, "Cluster", CLUSTER).await?;
    check_secret(&probe, &cluster)?;
    check(
        time_of(annotation(&probe, EXPIRATION)).is_some_and(|t| t > SystemTime::now()),
        || format!("expiration {:?}", annotation(&probe, EXPIRATION)),
    )?;
    let config = kubeconfig_of(&probe);
    check_eq(
        "probe kubeconfig cluster",
        &config["clusters"][0],
        &json!({"name": CLUSTER, "cluster": {"server": published.endpoint,
            "certificate-authority-data": published.certificate_authority}}),
    )?;
    check_eq(
        "probe kubeconfig current-context",
        &config["current-context"],
        &json!(CLUSTER),
    )?;
    let token = token_of(&probe);
    let url = presigned_url(&token).ok_or_else(|| {
        Failure(format!(
            "the probe token is no EKS token ({} bytes)",
            token.len()
        ))
    })?;
    check_token(&url)?;
    println!(
        "[{}] step D: the token, decoded (secret parts elided): k8s-aws-v1. + base64url({})",
        h.scenario,
        elided(&url)
    );
    let exec = object(h, "v1", "Secret", &format!("{CLUSTER}-kubeconfig-exec")).await?;
    check_secret(&exec, &cluster)?;
    check_eq(
        "exec kubeconfig user",
        &kubeconfig_of(&exec)["users"][0]["user"]["exec"],
        &json!({"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
            "args": ["eks", "get-token", "--region", REGION, "--cluster-name", CLUSTER]}),
    )?;
    let (kind, note) = wait_event(h, CLUSTER, "SecretSynced").await?;
    check_eq(
        "SecretSynced",
        (kind.as_str(), note.as_str()),
        ("Normal", "kubeconfig secrets reconciled"),
    )?;

    let instance = h
        .wait_object(INSTANCE.0, INSTANCE.1, CLUSTER, "ready", |o| {
            o["status"]["ready"] == true
        })
        .await?;
    check_eq(
        "instance endpoint",
        &instance["status"]["endpoint"],
        &json!(published.endpoint),
    )?;
    check(instance["status"]["kubeconfigSecretRef"].is_null(), || {
        "the eks-ack RGD published a kubeconfigSecretRef".into()
    })?;
    let cp = h
        .wait_object(
            CP,
            "Kany8sControlPlane",
            CLUSTER,
            "initialized with the rotator's kubeconfig (Option A)",
            |o| {
                has_condition(
                    o,
                    "KubeconfigSecretReconciled",
                    "True",
                    Some("ProvidedByBackend"),
                ) && initialized(o)
            },
        )
        .await?;
    let endpoint = cp["spec"]["controlPlaneEndpoint"].clone();
    let host = published
        .endpoint
        .trim_start_matches("https://")
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string();
    check_eq(
        "control plane endpoint host",
        &endpoint["host"],
        &json!(host),
    )?;
    h.wait_object(CAPI, "Cluster", CLUSTER, "the endpoint copied", |o| {
        o["spec"]["controlPlaneEndpoint"] == endpoint
    })
    .await?;
    Ok((published, actor))
}

/// [ROT-06], [ROT-07]: type, label, the rotator's annotations, a non-controller owner.
fn check_secret(secret: &Value, cluster: &Value) -> Result<(), Failure> {
    check_cluster_secret(secret, CLUSTER)?;
    let name = secret["metadata"]["name"].as_str().unwrap_or_default();
    for (key, value) in [
        (MANAGED_BY, ROTATOR),
        ("eks.kany8s.io/region", REGION),
        ("eks.kany8s.io/cluster-name", CLUSTER),
    ] {
        check_eq(&format!("{name} {key}"), annotation(secret, key), value)?;
    }
    check_cluster_owner(secret, cluster, name)
}

/// [ROT-04]: what STS would be asked: the regional endpoint, GetCallerIdentity, 60 s, the
/// signed headers, the session token, and the credential of the shared credentials file.
fn check_token(url: &str) -> Result<(), Failure> {
    check(
        url.starts_with(&format!("https://sts.{REGION}.amazonaws.com/?")),
        || format!("token host: {}", elided(url)),
    )?;
    for (name, value) in [
        ("Action", "GetCallerIdentity"),
        ("Version", "2011-06-15"),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Expires", "60"),
        ("X-Amz-SignedHeaders", "host%3Bx-k8s-aws-id"),
    ] {
        check_eq(&format!("token {name}"), query(url, name), Some(value))?;
    }
    let credential = query(url, "X-Amz-Credential").unwrap_or_default();
    check(
        credential.starts_with(&format!("{ACCESS_KEY}%2F"))
            && credential.ends_with(&format!("%2F{REGION}%2Fsts%2Faws4_request")),
        || format!("token credential scope: {}", elided(url)),
    )?;
    check(
        query(url, "X-Amz-Security-Token").is_some_and(|t| !t.is_empty())
            && query(url, "X-Amz-Signature").is_some_and(|s| s.len() == 64),
        || format!("token session token or signature missing: {}", elided(url)),
    )
}

/// The objects the rotation must leave alone, as (what, api version, kind, name).
fn untouched() -> [(&'static str, &'static str, &'static str, String); 5] {
    [
        (
            "exec Secret",
            "v1",
            "Secret",
            format!("{CLUSTER}-kubeconfig-exec"),
        ),
        ("ACK Cluster", ACK, "Cluster", CLUSTER.to_string()),
        ("instance", INSTANCE.0, INSTANCE.1, CLUSTER.to_string()),
        (
            "control plane",
            CP,
            "Kany8sControlPlane",
            CLUSTER.to_string(),
        ),
        ("Cluster", CAPI, "Cluster", CLUSTER.to_string()),
    ]
}

/// [ROT-08], [ROT-07]: a new token before the old one expires, waited for (the proof the
/// rotator ran); the control plane stays initialized; nothing but the probe Secret is written
/// by the rotation.
async fn e_token_refreshed_nothing_else_rewritten(
    h: &Harness,
    published: &Published,
) -> Result<(), Failure> {
    h.step(
        "E",
        "the token is refreshed before it expires; the control plane stays initialized; nothing else is written",
    );
    let probe_name = format!("{CLUSTER}-kubeconfig");
    let first = object(h, "v1", "Secret", &probe_name).await?;
    let mut before = Vec::new();
    for (_, api_version, kind, name) in untouched() {
        before.push(object(h, api_version, kind, &name).await?);
    }
    let first_token = token_of(&first);
    let first_expiration = time_of(annotation(&first, EXPIRATION))
        .ok_or_else(|| Failure::new("the first token has no expiration"))?;
    let second = h
        .wait_object("v1", "Secret", &probe_name, "a new token", |s| {
            let token = token_of(s);
            !token.is_empty() && token != first_token
        })
        .await?;
    check(SystemTime::now() < first_expiration, || {
        "the token was replaced only after it had expired".into()
    })?;
    let second_expiration = time_of(annotation(&second, EXPIRATION));
    check(
        second_expiration.is_some_and(|t| t > first_expiration),
        || {
            format!(
                "the new expiration {:?} is not after the old one",
                annotation(&second, EXPIRATION)
            )
        },
    )?;
    check_token(&presigned_url(&token_of(&second)).unwrap_or_default())?;
    check_eq(
        "probe kubeconfig cluster after the rotation",
        &kubeconfig_of(&second)["clusters"][0]["cluster"]["server"],
        &json!(published.endpoint),
    )?;
    check_eq(
        "the probe Secret's managers",
        managers(&second),
        vec![ROTATOR.to_string()],
    )?;
    for ((what, api_version, kind, name), old) in untouched().into_iter().zip(&before) {
        let new = object(h, api_version, kind, &name).await?;
        // The exec Secret is the rotator's own; nothing else ever had a field of it.
        check(
            kind == "Secret" || !managers(&new).iter().any(|m| m == ROTATOR),
            || format!("the rotator wrote the {what}: {}", writers(old, &new)),
        )?;
        // Only the rotator writes the exec Secret; the ACK Cluster, the instance and the control
        // plane have nothing to react to; Cluster API may refresh the Cluster's status, never its
        // spec.
        let same = if kind == "Cluster" && api_version == CAPI {
            new["metadata"]["generation"] == old["metadata"]["generation"]
        } else {
            new["metadata"]["resourceVersion"] == old["metadata"]["resourceVersion"]
        };
        check(same, || {
            format!(
                "the {what} was written during the rotation: {}",
                writers(old, &new)
            )
        })?;
        if kind == "Kany8sControlPlane" {
            check(
                initialized(&new)
                    && has_condition(&new, "KubeconfigSecretReconciled", "True", None),
                || "the control plane lost its kubeconfig during the rotation".into(),
            )?;
        }
    }
    Ok(())
}

/// The ownership conflicts the rotator has counted.
fn conflicts(metrics: &Metrics) -> f64 {
    metrics
        .sample("kany8s_eks_plugin_ownership_conflicts_total{")
        .unwrap_or(0.0)
}

/// [ROT-06], [PLG-06]: a `<cluster>-kubeconfig` the user created is never overwritten: Warning
/// `SecretOwnershipConflict`, proved on two passes of the rotator (the conflict metric), and the
/// exec Secret is skipped.
async fn f_user_owned_secret_never_overwritten(
    h: &Harness,
    rotator: &Rotator,
) -> Result<(), Failure> {
    h.step(
        "F",
        "a user-owned <cluster>-kubeconfig is never overwritten (SecretOwnershipConflict)",
    );
    let name = format!("{USER_CLUSTER}-kubeconfig");
    h.apply(
        &super::common::secret_manifest(
            &name,
            &h.namespace,
            Some(USER_CLUSTER),
            &h.workload_kubeconfig("user").await?,
        ),
        &[],
    )
    .await?;
    let before = object(h, "v1", "Secret", &name).await?;
    let counted = conflicts(&rotator.metrics);
    apply_cluster(h, USER_CLUSTER).await?;
    let (kind, note) = wait_event(h, USER_CLUSTER, "SecretOwnershipConflict").await?;
    check_eq("event type", kind.as_str(), "Warning")?;
    check_eq(
        "event note",
        note,
        format!(
            "secret {}/{name} exists and is not managed by {ROTATOR}",
            h.namespace
        ),
    )?;
    wait_count(
        h,
        "two passes of the rotator that refused to write (conflicts counted)",
        || conflicts(&rotator.metrics),
        counted + 2.0,
    )
    .await?;
    let after = object(h, "v1", "Secret", &name).await?;
    check_eq(
        "the user's Secret",
        &after["metadata"]["resourceVersion"],
        &before["metadata"]["resourceVersion"],
    )
    .map_err(|e| Failure(format!("{e}: {}", writers(&before, &after))))?;
    check(
        h.get("v1", "Secret", &format!("{name}-exec"))
            .await?
            .is_none(),
        || "the exec Secret was written despite the conflict".into(),
    )?;
    // Option A verifies any compliant Secret: the user's.
    h.wait_object(
        CP,
        "Kany8sControlPlane",
        USER_CLUSTER,
        "initialized with the user's kubeconfig",
        initialized,
    )
    .await?;
    Ok(())
}

/// [PLG-06]: allowing the takeover on the Cluster hands the Secret to the rotator.
async fn g_takeover_when_allowed(h: &Harness) -> Result<(), Failure> {
    h.step(
        "G",
        "eks.kany8s.io/allow-unmanaged-takeover: the rotator takes the Secret over (SecretTakeoverApplied)",
    );
    merge_patch(
        h,
        CLUSTERS,
        USER_CLUSTER,
        r#"{"metadata":{"annotations":{"eks.kany8s.io/allow-unmanaged-takeover":"enabled"}}}"#,
    )
    .await?;
    let (kind, _) = wait_event(h, USER_CLUSTER, "SecretTakeoverApplied").await?;
    check_eq("event type", kind.as_str(), "Normal")?;
    let name = format!("{USER_CLUSTER}-kubeconfig");
    h.wait_object("v1", "Secret", &name, "managed by the rotator", |s| {
        annotation(s, MANAGED_BY) == ROTATOR && token_of(s).starts_with("k8s-aws-v1.")
    })
    .await?;
    h.wait_object("v1", "Secret", &format!("{name}-exec"), "written", |s| {
        annotation(s, MANAGED_BY) == ROTATOR
    })
    .await?;
    Ok(())
}

/// The rotator stops; on the upstream target `helm uninstall` removes the chart's cluster-wide
/// objects.
async fn h_chart_uninstalled(h: &Harness, rotator: Rotator) -> Result<(), Failure> {
    let Some(fullname) = rotator.chart.clone() else {
        return Ok(());
    };
    drop(rotator);
    h.step(
        "H",
        "helm uninstall removes the chart's ClusterRole and binding",
    );
    uninstall_chart(h, RELEASE, &fullname).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_decode_and_their_secret_parts_are_elided() {
        let url = "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261206%2Feu-west-1%2Fsts%2Faws4_request&X-Amz-Date=20261206T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Security-Token=SESSION&X-Amz-Signature=abc";
        let token = format!(
            "k8s-aws-v1.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
        );
        assert_eq!(presigned_url(&token).as_deref(), Some(url));
        assert_eq!(presigned_url("Bearer x"), None);
        assert_eq!(query(url, "X-Amz-Expires"), Some("60"));
        assert_eq!(query(url, "X-Amz"), None);
        let shown = elided(url);
        assert!(
            !shown.contains("AKIDEXAMPLE") && !shown.contains("SESSION"),
            "{shown}"
        );
        assert!(shown.contains("X-Amz-Signature=<elided>"), "{shown}");
        assert!(
            shown.contains("X-Amz-Credential=<elided>%2F20261206%2Feu-west-1%2Fsts%2Faws4_request"),
            "{shown}"
        );
        assert!(shown.contains("X-Amz-Security-Token=<elided>&"), "{shown}");
    }

    #[test]
    fn the_charts_pod_is_read_from_its_deployment() {
        let deployment = json!({"spec": {"template": {"spec": {
            "serviceAccountName": "rotator",
            "containers": [{"args": ["--leader-elect=true"], "env": [
                {"name": "AWS_SHARED_CREDENTIALS_FILE", "value": "/var/run/secrets/aws/credentials"},
                {"name": "AWS_PROFILE", "value": "p"}]}],
            "volumes": [{"name": "aws-credentials", "secret": {"secretName": "creds",
                "items": [{"key": "credentials", "path": "credentials"}]}}]}}}});
        assert_eq!(
            pod_of(&deployment).unwrap(),
            Pod {
                service_account: "rotator".into(),
                args: vec!["--leader-elect=true".into()],
                credentials: ("creds".into(), "credentials".into(), "p".into()),
            }
        );
        let mut unmounted = deployment.clone();
        unmounted["spec"]["template"]["spec"]["volumes"] = json!([]);
        assert!(pod_of(&unmounted).is_err());
    }

    #[test]
    fn the_chart_values_give_the_expected_arguments() {
        let values = chart_values("ns", "ns-rotator");
        let args = expected_args("ns");
        for (key, flag, value) in SCHEDULE {
            assert!(values.contains(&(key, value.to_string())), "{key}");
            assert!(args.contains(&format!("--{flag}={value}")), "{flag}");
        }
        assert!(values.contains(&("args.watchNamespace", "ns".to_string())));
        assert!(args.contains(&"--watch-namespace=ns".to_string()));
    }
}
