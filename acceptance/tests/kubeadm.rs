//! Component tests of the Kany8sKubeadmControlPlane controller (provider.md §7) on the embedded
//! target: the real controller with the simulated Cluster API core, CAPD and kubeadm bootstrap
//! provider, for the paths the capd-kubeadm scenario does not take (waits, existing and broken
//! certificates, re-created Secrets, pause, version mismatch, deletion guards).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use acceptance::capd;
use acceptance::env::Embedded;
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
};
use serde_json::{Value, json};

const NS: &str = "default";
/// How long a wait for the facade may take before the test fails with the last state seen: the
/// facade makes key pairs and certificates for each cluster, and `make test` runs these tests
/// beside the upstream stack on 2 cores, where one reconcile has taken over 15 s.
const WAIT_LIMIT: Duration = Duration::from_secs(60);

fn kind(api_version: &str, kind: &str, plural: &str) -> ApiResource {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn kkcp_kind() -> ApiResource {
    kind(
        "controlplane.cluster.x-k8s.io/v1alpha1",
        "Kany8sKubeadmControlPlane",
        "kany8skubeadmcontrolplanes",
    )
}

fn secret_kind() -> ApiResource {
    kind("v1", "Secret", "secrets")
}

struct Env {
    env: Embedded,
    _dir: tempfile::TempDir,
    client: Client,
}

async fn start() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let env = Embedded::start("127.0.0.1:0", &dir.path().join("kubeconfig"))
        .await
        .unwrap();
    Env {
        client: env.client.clone(),
        env,
        _dir: dir,
    }
}

impl Env {
    fn api(&self, resource: &ApiResource) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), NS, resource)
    }

    async fn apply(&self, resource: &ApiResource, body: Value) {
        let name = body["metadata"]["name"].as_str().unwrap().to_string();
        self.api(resource)
            .patch(
                &name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(&body),
            )
            .await
            .unwrap();
    }

    async fn merge(&self, resource: &ApiResource, name: &str, patch: Value) {
        self.api(resource)
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    async fn get(&self, resource: &ApiResource, name: &str) -> Option<Value> {
        self.api(resource)
            .get_opt(name)
            .await
            .unwrap()
            .map(|o| serde_json::to_value(o).unwrap())
    }

    /// Waits until `done` holds for the object (`None`: absent), failing with the last state.
    async fn wait(
        &self,
        resource: &ApiResource,
        name: &str,
        what: &str,
        done: impl Fn(Option<&Value>) -> bool,
    ) -> Option<Value> {
        let mut last = None;
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        while tokio::time::Instant::now() < deadline {
            last = self.get(resource, name).await;
            if done(last.as_ref()) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} {name}: {what}; last seen: {last:#?}", resource.kind);
    }

    /// Proof that the facade controller has finished a reconcile of facade `name` that began
    /// after this call, so a "nothing was written" check after it cannot pass merely because the
    /// controller was slow: it changes the facade's generation twice (`kubeadmConfigSpec` set to
    /// `{}`, which builds the same KubeadmConfig as none, then removed) and waits each time for a
    /// condition written for that generation (the paused path refreshes `Paused`, [KK-02]; the
    /// full path writes every condition). kube-rs never runs two reconciles of one object at
    /// once, so the second condition comes from a reconcile that started after the first had
    /// returned. The facade must not set `kubeadmConfigSpec`.
    async fn reconciled_after_this(&self, name: &str) {
        for value in [json!({}), Value::Null] {
            let patched = self
                .api(&kkcp_kind())
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"kubeadmConfigSpec": value}})),
                )
                .await
                .unwrap();
            let generation = patched.metadata.generation.unwrap();
            self.wait(
                &kkcp_kind(),
                name,
                &format!("a condition written for generation {generation} (barrier)"),
                |o| {
                    o.and_then(|o| o["status"]["conditions"].as_array())
                        .into_iter()
                        .flatten()
                        .any(|c| c["observedGeneration"].as_i64() >= Some(generation))
                },
            )
            .await;
        }
    }

    /// Waits until no reconcile of the facade controller is in flight, so every reconcile that
    /// had begun before this call has returned (the manager's active-workers gauge, [MET-01]).
    async fn facade_controller_idle(&self) {
        let mut last = None;
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        while tokio::time::Instant::now() < deadline {
            last = self.env.reconciles_in_flight(kany8s::metrics::KUBEADM);
            if last == Some(0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the facade controller never became idle; reconciles in flight: {last:?}");
    }

    async fn delete(&self, resource: &ApiResource, name: &str) {
        self.api(resource)
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }

    /// A Cluster whose control plane is the facade `name` (and whose infrastructure is the
    /// DockerCluster `name` when `docker`), with the facade and its machine template.
    async fn cluster(&self, name: &str, docker: bool) {
        let mut spec = json!({"controlPlaneRef": {"apiGroup": "controlplane.cluster.x-k8s.io",
            "kind": "Kany8sKubeadmControlPlane", "name": name}});
        if docker {
            spec["infrastructureRef"] = json!({"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DockerCluster", "name": name});
            self.apply(
                &capd::docker_cluster(),
                json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2",
                "kind": "DockerCluster", "metadata": {"name": name}, "spec": {}}),
            )
            .await;
        }
        self.apply(
            &acceptance::capi::cluster_resource(),
            json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
            "metadata": {"name": name}, "spec": spec}),
        )
        .await;
        self.apply(&kind("infrastructure.cluster.x-k8s.io/v1beta2", "DockerMachineTemplate", "dockermachinetemplates"),
            json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DockerMachineTemplate",
                "metadata": {"name": format!("{name}-cp")}, "spec": {"template": {"spec": {"customImage": "kindest/node:v1.34.0"}}}})).await;
        self.apply(&kkcp_kind(), json!({"apiVersion": "controlplane.cluster.x-k8s.io/v1alpha1", "kind": "Kany8sKubeadmControlPlane",
            "metadata": {"name": name}, "spec": {"version": "v1.34.0", "machineTemplate": {"infrastructureRef": {
                "apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DockerMachineTemplate", "name": format!("{name}-cp")}}}})).await;
    }
}

fn condition(object: Option<&Value>, type_: &str) -> Option<(String, String, String)> {
    let c = object?["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?;
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    Some((text("status"), text("reason"), text("message")))
}

fn is(object: Option<&Value>, type_: &str, status: &str, reason: &str) -> bool {
    condition(object, type_).is_some_and(|(s, r, _)| s == status && r == reason)
}

fn text(value: &Value) -> String {
    use base64::Engine as _;
    value
        .as_str()
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// [KK-03], [KK-05], [KK-06], [KK-07], [KK-08], [KK-16], [KKC-06]: the facade adds its
/// finalizer, waits for an infrastructure reference, then for its endpoint, creating nothing but
/// certificates; the endpoint appearing on the infrastructure cluster (its dynamic watch) lets
/// it build the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kk05_kk07_waits_for_the_infrastructure_endpoint() {
    let env = start().await;
    env.cluster("c1", false).await;
    let kkcp = env
        .wait(&kkcp_kind(), "c1", "WaitingForInfrastructureRef", |o| {
            is(o, "Ready", "False", "WaitingForInfrastructureRef")
        })
        .await;
    assert_eq!(
        condition(kkcp.as_ref(), "Ready").unwrap().2,
        "waiting for Cluster spec.infrastructureRef to be set"
    );
    assert!(is(
        kkcp.as_ref(),
        "OwnerClusterResolved",
        "True",
        "OwnerClusterResolved"
    ));
    assert!(is(
        kkcp.as_ref(),
        "CertificatesAvailable",
        "True",
        "Available"
    ));
    assert!(is(
        kkcp.as_ref(),
        "Creating",
        "True",
        "WaitingForInfrastructureRef"
    ));
    let kkcp = kkcp.unwrap();
    assert_eq!(
        kkcp["metadata"]["finalizers"],
        json!(["kany8skubeadmcontrolplane.controlplane.cluster.x-k8s.io"])
    );
    assert!(env.get(&secret_kind(), "c1-ca").await.is_some());

    // A stub Kany8sCluster publishes no endpoint.
    let kany8s_cluster = kind(
        "infrastructure.cluster.x-k8s.io/v1alpha1",
        "Kany8sCluster",
        "kany8sclusters",
    );
    env.apply(
        &kany8s_cluster,
        json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1alpha1", "kind": "Kany8sCluster",
        "metadata": {"name": "c1"}, "spec": {}}),
    )
    .await;
    env.merge(
        &acceptance::capi::cluster_resource(),
        "c1",
        json!({"spec": {"infrastructureRef": {
        "apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "Kany8sCluster", "name": "c1"}}}),
    )
    .await;
    let kkcp = env
        .wait(
            &kkcp_kind(),
            "c1",
            "WaitingForInfrastructureEndpoint",
            |o| is(o, "Ready", "False", "WaitingForInfrastructureEndpoint"),
        )
        .await;
    assert_eq!(
        condition(kkcp.as_ref(), "Ready").unwrap().2,
        "waiting for infrastructure controlPlaneEndpoint to be set"
    );
    assert!(env.get(&secret_kind(), "c1-kubeconfig").await.is_none());
    assert!(
        env.get(&capd::kubeadm_config(), "c1-control-plane-0")
            .await
            .is_none()
    );
    assert!(
        env.get(&capd::machine_kind(), "c1-control-plane-0")
            .await
            .is_none()
    );

    env.merge(
        &kany8s_cluster,
        "c1",
        json!({"spec": {"controlPlaneEndpoint": {"host": "fd00::9", "port": 7443}}}),
    )
    .await;
    env.wait(&kkcp_kind(), "c1", "endpoint copied", |o| {
        o.is_some_and(|o| {
            o["spec"]["controlPlaneEndpoint"] == json!({"host": "fd00::9", "port": 7443})
        })
    })
    .await;
    let secret = env
        .wait(&secret_kind(), "c1-kubeconfig", "exists", |o| o.is_some())
        .await
        .unwrap();
    let config: Value = yaml_serde::from_str(&text(&secret["data"]["value"])).unwrap();
    assert_eq!(
        config["clusters"][0]["cluster"]["server"],
        "https://[fd00::9]:7443"
    );
    let bootstrap = env
        .wait(
            &capd::kubeadm_config(),
            "c1-control-plane-0",
            "exists",
            |o| o.is_some(),
        )
        .await
        .unwrap();
    assert_eq!(
        bootstrap["spec"]["clusterConfiguration"]["controlPlaneEndpoint"],
        "[fd00::9]:7443"
    );
    assert_eq!(
        bootstrap["spec"]["initConfiguration"]["localAPIEndpoint"]["bindPort"],
        7443
    );
    // The simulated providers make the Machine ready, which initializes the facade.
    let kkcp = env
        .wait(&kkcp_kind(), "c1", "Ready", |o| {
            is(o, "Ready", "True", "Ready")
        })
        .await;
    assert!(condition(kkcp.as_ref(), "Creating").is_none());
    assert_eq!(
        kkcp.unwrap()["status"]["initialization"]["controlPlaneInitialized"],
        true
    );
}

/// [KK-04], [KKC-03], [KK-09], [KK-16]: existing certificate Secrets are used as they are and
/// never modified; a broken one is reported; deleted generated Secrets come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kk04_existing_certificates_are_used_and_never_modified() {
    use kany8s::kubeadm::certs::{KeyAlgorithm, generate_ca};
    let env = start().await;
    let ca = generate_ca(KeyAlgorithm::EcdsaP256, time::OffsetDateTime::now_utc()).unwrap();
    let label = json!({"cluster.x-k8s.io/cluster-name": "c2"});
    env.apply(
        &secret_kind(),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c2-ca", "labels": label},
        "stringData": {"tls.crt": ca.cert, "tls.key": ca.key}}),
    )
    .await;
    env.apply(&secret_kind(), json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c2-etcd", "labels": label},
        "stringData": {"tls.key": "only a key"}})).await;
    let ca_version =
        env.get(&secret_kind(), "c2-ca").await.unwrap()["metadata"]["resourceVersion"].clone();
    let etcd_version =
        env.get(&secret_kind(), "c2-etcd").await.unwrap()["metadata"]["resourceVersion"].clone();
    env.cluster("c2", true).await;
    let kkcp = env
        .wait(&kkcp_kind(), "c2", "CertificatesUnavailable", |o| {
            is(
                o,
                "CertificatesAvailable",
                "False",
                "CertificatesUnavailable",
            )
        })
        .await;
    let (_, _, message) = condition(kkcp.as_ref(), "CertificatesAvailable").unwrap();
    assert_eq!(
        message,
        "secret default/c2-etcd: missing data for key tls.crt"
    );
    assert!(is(
        kkcp.as_ref(),
        "Ready",
        "False",
        "CertificatesUnavailable"
    ));
    assert_eq!(
        env.get(&secret_kind(), "c2-etcd").await.unwrap()["metadata"]["resourceVersion"],
        etcd_version
    );
    assert!(env.get(&secret_kind(), "c2-kubeconfig").await.is_none());

    // The operator removes the broken Secret; the facade generates a new one and goes on.
    env.delete(&secret_kind(), "c2-etcd").await;
    env.wait(&kkcp_kind(), "c2", "Ready", |o| {
        is(o, "Ready", "True", "Ready")
    })
    .await;
    let etcd = env.get(&secret_kind(), "c2-etcd").await.unwrap();
    assert_eq!(etcd["type"], "cluster.x-k8s.io/secret");
    let secret = env.get(&secret_kind(), "c2-kubeconfig").await.unwrap();
    let config: Value = yaml_serde::from_str(&text(&secret["data"]["value"])).unwrap();
    assert_eq!(
        text(&config["clusters"][0]["cluster"]["certificate-authority-data"]),
        ca.cert
    );
    assert_eq!(
        env.get(&secret_kind(), "c2-ca").await.unwrap()["metadata"]["resourceVersion"],
        ca_version
    );

    // Deleted generated Secrets are re-created ([KK-16]); the kubeconfig keeps the same CA.
    env.delete(&secret_kind(), "c2-kubeconfig").await;
    env.delete(&secret_kind(), "c2-proxy").await;
    let again = env
        .wait(&secret_kind(), "c2-kubeconfig", "re-created", |o| {
            o.is_some()
        })
        .await
        .unwrap();
    assert_ne!(again["metadata"]["uid"], secret["metadata"]["uid"]);
    env.wait(&secret_kind(), "c2-proxy", "re-created", |o| o.is_some())
        .await;
}

/// [KK-02], [KKC-09], [KK-12], [KK-15], [KKC-11], [KKC-12]: while paused nothing is written;
/// a Machine whose version differs is reported, never patched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kk02_pause_and_kk15_version_mismatch() {
    let env = start().await;
    env.cluster("c3", true).await;
    env.wait(&kkcp_kind(), "c3", "Ready", |o| {
        is(o, "Ready", "True", "Ready")
    })
    .await;
    env.merge(
        &kkcp_kind(),
        "c3",
        json!({"metadata": {"annotations": {"cluster.x-k8s.io/paused": ""}}}),
    )
    .await;
    let kkcp = env
        .wait(&kkcp_kind(), "c3", "Paused", |o| {
            is(o, "Paused", "True", "Paused")
        })
        .await;
    assert_eq!(
        condition(kkcp.as_ref(), "Paused").unwrap().2,
        "Kany8sKubeadmControlPlane has the cluster.x-k8s.io/paused annotation"
    );
    env.delete(&secret_kind(), "c3-kubeconfig").await;
    // A reconcile that began after the deletion has run to its end, not a sleep.
    env.reconciled_after_this("c3").await;
    assert!(
        env.get(&secret_kind(), "c3-kubeconfig").await.is_none(),
        "a paused facade wrote the kubeconfig"
    );
    env.merge(
        &kkcp_kind(),
        "c3",
        json!({"metadata": {"annotations": {"cluster.x-k8s.io/paused": null}}}),
    )
    .await;
    env.wait(
        &secret_kind(),
        "c3-kubeconfig",
        "re-created after unpause",
        |o| o.is_some(),
    )
    .await;
    env.wait(&kkcp_kind(), "c3", "not paused", |o| {
        is(o, "Paused", "False", "NotPaused")
    })
    .await;

    env.merge(
        &capd::machine_kind(),
        "c3-control-plane-0",
        json!({"spec": {"version": "v1.33.0"}}),
    )
    .await;
    let kkcp = env
        .wait(&kkcp_kind(), "c3", "UpgradeNotSupported", |o| {
            is(o, "MachinesUpToDate", "False", "UpgradeNotSupported")
        })
        .await;
    assert_eq!(
        condition(kkcp.as_ref(), "MachinesUpToDate").unwrap().2,
        "in-place upgrade from v1.33.0 to v1.34.0 is not supported; re-create the control plane"
    );
    let status = &kkcp.as_ref().unwrap()["status"];
    assert_eq!(
        status["versions"],
        json!([{"version": "v1.33.0", "replicas": 1}])
    );
    assert_eq!(status["upToDateReplicas"], 0);
    assert!(is(kkcp.as_ref(), "RollingOut", "True", "RollingOut"));
    // A reconcile that began after the mismatch was reported has run to its end, not a sleep.
    env.reconciled_after_this("c3").await;
    let machine = env
        .get(&capd::machine_kind(), "c3-control-plane-0")
        .await
        .unwrap();
    assert_eq!(machine["spec"]["version"], "v1.33.0");
}

/// [KK-18], [KKC-10], [CT-22]: deletion waits while paused, then deletes the control-plane
/// Machine before releasing the finalizer; delete-for-move only releases it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kk18_deletion() {
    let env = start().await;
    env.cluster("c4", true).await;
    env.cluster("c5", true).await;
    for name in ["c4", "c5"] {
        env.wait(&kkcp_kind(), name, "Ready", |o| {
            is(o, "Ready", "True", "Ready")
        })
        .await;
    }
    env.merge(
        &acceptance::capi::cluster_resource(),
        "c4",
        json!({"spec": {"paused": true}}),
    )
    .await;
    env.wait(&kkcp_kind(), "c4", "Paused", |o| {
        is(o, "Paused", "True", "Paused")
    })
    .await;
    env.delete(&kkcp_kind(), "c4").await;
    env.wait(&kkcp_kind(), "c4", "WaitingForUnpause", |o| {
        is(o, "Deleting", "True", "WaitingForUnpause")
    })
    .await;
    assert!(
        env.get(&capd::machine_kind(), "c4-control-plane-0")
            .await
            .is_some()
    );
    env.merge(
        &acceptance::capi::cluster_resource(),
        "c4",
        json!({"spec": {"paused": false}}),
    )
    .await;
    env.wait(&kkcp_kind(), "c4", "gone", |o| o.is_none()).await;
    assert!(
        env.get(&capd::machine_kind(), "c4-control-plane-0")
            .await
            .is_none(),
        "the facade went before its Machine"
    );

    env.merge(
        &kkcp_kind(),
        "c5",
        json!({"metadata": {"annotations": {"clusterctl.cluster.x-k8s.io/delete-for-move": ""}}}),
    )
    .await;
    env.delete(&kkcp_kind(), "c5").await;
    env.wait(&kkcp_kind(), "c5", "gone", |o| o.is_none()).await;
    // The reconcile that released the finalizer has returned (c5 is gone, so no other comes),
    // not a sleep.
    env.facade_controller_idle().await;
    let machine = env
        .get(&capd::machine_kind(), "c5-control-plane-0")
        .await
        .unwrap();
    assert!(
        machine["metadata"]["deletionTimestamp"].is_null(),
        "delete-for-move deleted the Machine"
    );
}
