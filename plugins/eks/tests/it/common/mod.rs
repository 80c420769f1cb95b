//! Shared setup of the rotator's component tests: the embedded API server (in process) with the
//! Cluster API `Cluster` CRD and the project's minimal ACK EKS CRD, the rotator with static
//! credentials, and polling helpers that wait for proof instead of sleeping.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kany8s_eks::ROTATOR;
use kany8s_eks::metrics::Metrics;
use kany8s_eks::rotator::run::Options;
use kany8s_eks::schedule::Policy;
use kany8s_eks::token::TokenSource;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

/// Static credentials (no provider behind them).
fn static_keys(access: &str, secret: &str, session: Option<String>) -> Credentials {
    Credentials::new(access, secret, session, None, "static")
}

pub const NS: &str = "default";
pub const ACCESS_KEY: &str = "AKIDEXAMPLEROTATOR";
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
pub const SESSION_TOKEN: &str = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN";
/// Base64 of a PEM block, as ACK publishes `status.certificateAuthority.data`.
pub const CA: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJrekNDQVRxZ0F3SUJBZ0lJRVhBTVBMRQotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg==";
pub const ENDPOINT: &str = "https://0123456789ABCDEF.gr7.eu-west-1.eks.amazonaws.com";

pub fn static_credentials() -> TokenSource {
    TokenSource::new(static_keys(
        ACCESS_KEY,
        SECRET_KEY,
        Some(SESSION_TOKEN.into()),
    ))
}

/// A Cluster API `Cluster` CRD with an open schema.
pub fn cluster_crd() -> Value {
    let open = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "clusters.cluster.x-k8s.io"},
        "spec": {"group": "cluster.x-k8s.io", "scope": "Namespaced",
            "names": {"kind": "Cluster", "plural": "clusters", "singular": "cluster", "listKind": "ClusterList"},
            "versions": [{"name": "v1beta2", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": open, "status": open}}}}]}})
}

/// The project's minimal ACK CRD (`fixtures/crds/ack/`).
pub fn ack_crd() -> Value {
    let path = format!(
        "{}/../../fixtures/crds/ack/eks.services.k8s.aws_clusters.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub async fn install_crd(client: &Client, crd: Value) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(crd).unwrap();
    let name = crd.name_any();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    wait("CRD established", || async {
        crds.get_opt(&name)
            .await
            .unwrap()
            .and_then(|c| c.status)
            .and_then(|s| s.conditions)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            })
    })
    .await;
}

/// Polls `check` every 50 ms for up to 20 s.
pub async fn wait<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A running rotator against an embedded API server.
pub struct Sandbox {
    pub server: kany8s_apiserver::Server,
    pub client: Client,
    pub metrics: Arc<Metrics>,
    rotator: tokio::task::JoinHandle<()>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.rotator.abort();
    }
}

/// How a test wants the rotator.
pub struct Setup {
    pub with_ack_crd: bool,
    pub policy: Policy,
    pub api_recheck: Duration,
    pub tokens: TokenSource,
    pub record_access: bool,
    /// `--watch-namespace`.
    pub namespace: Option<String>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            with_ack_crd: true,
            // An hour of failure backoff: whatever happens sooner is event-driven.
            policy: Policy {
                failure_backoff: Duration::from_secs(3600),
                ..Policy::default()
            },
            api_recheck: Duration::from_secs(300),
            tokens: static_credentials(),
            record_access: false,
            namespace: None,
        }
    }
}

pub async fn start(setup: Setup) -> Sandbox {
    let server = kany8s_apiserver::Server::builder()
        .record_access(setup.record_access)
        .build();
    let client = server.client();
    install_crd(&client, cluster_crd()).await;
    if setup.with_ack_crd {
        install_crd(&client, ack_crd()).await;
    }
    let metrics = Arc::new(Metrics::new(ROTATOR, 1, None));
    let options = Options {
        policy: setup.policy,
        api_recheck: setup.api_recheck,
        namespace: setup.namespace,
        metrics: metrics.clone(),
        ..Options::default()
    };
    let rotator = tokio::spawn(kany8s_eks::rotator::run::run(
        rotated_client(&server, setup.record_access),
        options,
        setup.tokens,
    ));
    Sandbox {
        server,
        client,
        metrics,
        rotator,
    }
}

/// The rotator's client: impersonating its ServiceAccount when the access log is on, so the
/// log attributes its requests.
fn rotated_client(server: &kany8s_apiserver::Server, impersonate: bool) -> Client {
    if !impersonate {
        return server.client();
    }
    let router = server.router();
    let service = tower::ServiceBuilder::new()
        .map_request(|mut request: http::Request<kube::client::Body>| {
            request.headers_mut().insert(
                "impersonate-user",
                http::HeaderValue::from_static(ROTATOR_USER),
            );
            request
        })
        .service(router);
    Client::new(service, NS)
}

/// The user the rotator's requests are recorded under.
pub const ROTATOR_USER: &str = "system:serviceaccount:kany8s-eks-system:eks-kubeconfig-rotator";

pub fn clusters(client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        NS,
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta2", "Cluster"),
            "clusters",
        ),
    )
}

pub fn ack_clusters(client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), NS, &kany8s_eks::ack::resource())
}

pub fn secrets(client: &Client) -> Api<Secret> {
    Api::namespaced(client.clone(), NS)
}

/// Creates Cluster `name` with `annotations` and a Kany8sControlPlane reference named like it.
pub async fn create_cluster(client: &Client, name: &str, annotations: Value) -> DynamicObject {
    let cluster: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
        "metadata": {"name": name, "namespace": NS, "annotations": annotations},
        "spec": {"controlPlaneRef": {"apiGroup": "controlplane.cluster.x-k8s.io",
            "kind": "Kany8sControlPlane", "name": name}},
    }))
    .unwrap();
    clusters(client)
        .create(&PostParams::default(), &cluster)
        .await
        .unwrap()
}

/// Creates Cluster `name` opted into the rotator.
pub async fn create_opted_in_cluster(client: &Client, name: &str) -> DynamicObject {
    create_cluster(
        client,
        name,
        json!({"eks.kany8s.io/kubeconfig-rotator": "enabled"}),
    )
    .await
}

/// Creates the ACK Cluster `name` and plays ACK up to ACTIVE.
pub async fn create_active_ack_cluster(client: &Client, name: &str) {
    create_ack_cluster(client, name).await;
    set_ack_status(client, name, active()).await;
}

pub async fn annotate_cluster(client: &Client, name: &str, annotations: Value) {
    clusters(client)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": annotations}})),
        )
        .await
        .unwrap();
}

/// Creates the ACK Cluster `name` (as the eks-ack RGD would) without status.
pub async fn create_ack_cluster(client: &Client, name: &str) {
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "eks.services.k8s.aws/v1alpha1", "kind": "Cluster",
        "metadata": {"name": name, "namespace": NS,
            "annotations": {"services.k8s.aws/region": "eu-west-1"}},
        "spec": {"name": name, "version": "1.34"},
    }))
    .unwrap();
    ack_clusters(client)
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
}

/// Plays ACK: merges `status` into the ACK Cluster's status.
pub async fn set_ack_status(client: &Client, name: &str, status: Value) {
    ack_clusters(client)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .unwrap();
}

/// An ACTIVE ACK status with endpoint, CA and region.
pub fn active() -> Value {
    json!({"status": "ACTIVE", "endpoint": ENDPOINT, "version": "1.34",
        "certificateAuthority": {"data": CA},
        "ackResourceMetadata": {"region": "eu-west-1", "ownerAccountID": "111122223333"}})
}

/// The events about Cluster `regarding` with `reason`.
pub async fn events(client: &Client, regarding: &str, reason: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client.clone(), NS);
    api.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some(reason)
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(regarding)
        })
        .collect()
}

/// Waits for an event and returns its type and note.
pub async fn wait_event(client: &Client, regarding: &str, reason: &str) -> (String, String) {
    wait(&format!("event {reason} about {regarding}"), || async {
        !events(client, regarding, reason).await.is_empty()
    })
    .await;
    let event = events(client, regarding, reason).await.remove(0);
    (
        event.type_.unwrap_or_default(),
        event.note.unwrap_or_default(),
    )
}

pub async fn wait_secret(client: &Client, name: &str) -> Secret {
    let api = secrets(client);
    wait(&format!("secret {name}"), || async {
        api.get_opt(name).await.unwrap().is_some()
    })
    .await;
    api.get(name).await.unwrap()
}

/// How many reconciles have finished (every result).
pub fn reconciles(metrics: &Metrics) -> f64 {
    kany8s_eks::metrics::RESULTS
        .iter()
        .map(|r| {
            metrics
                .sample(&format!(
                    "controller_runtime_reconcile_total{{controller=\"eks-kubeconfig-rotator\",result=\"{r}\"}}"
                ))
                .unwrap_or(0.0)
        })
        .sum()
}

/// Waits until the rotator has finished a reconcile that started after `before` reconciles.
pub async fn wait_reconciles_after(metrics: &Metrics, before: f64) {
    wait("a reconcile", || async { reconciles(metrics) > before }).await;
}

/// The kubeconfig text of a Secret.
pub fn kubeconfig_of(secret: &Secret) -> Value {
    let bytes = &secret.data.as_ref().unwrap()["value"].0;
    yaml_serde::from_slice(bytes).unwrap()
}

pub fn annotation(secret: &Secret, key: &str) -> String {
    secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .cloned()
        .unwrap_or_default()
}
