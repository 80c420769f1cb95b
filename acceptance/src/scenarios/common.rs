//! What several scenarios share: the API versions they read, the workload kubeconfig and
//! Secret fixtures, RGD set-up, owner and deletion checks, kubectl merge patches, the barrier
//! that proves a paused control plane has finished reacting to a change, and what the EKS
//! scenarios share (their in-process tasks, the events about a Cluster, object reads, their
//! charts installed with helm on the upstream target).

use base64::Engine as _;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

use crate::harness::{Failure, Harness, check, check_eq, has_condition};

pub(super) const CP: &str = "controlplane.cluster.x-k8s.io/v1alpha1";
pub(super) const IC: &str = "infrastructure.cluster.x-k8s.io/v1alpha1";
pub(super) const CAPI: &str = "cluster.x-k8s.io/v1beta2";
pub(super) const KRO: &str = "kro.run/v1alpha1";
pub(super) const RGD: &str = "ResourceGraphDefinition";
/// The resources kubectl patches, as `plural.group`.
pub(super) const CLUSTERS: &str = "clusters.cluster.x-k8s.io";
pub(super) const CONTROL_PLANES: &str = "kany8scontrolplanes.controlplane.cluster.x-k8s.io";

/// The demo control-plane RGD: (fixture under `rgds/`, name).
pub(super) const DEMO_CONTROL_PLANE_RGD: (&str, &str) = (
    "control-plane/demo-control-plane.yaml",
    "demo-control-plane.kro.run",
);

/// A kubeconfig whose user token tells versions apart; its server is an unresolvable `.test`
/// name (nothing on the embedded target dials it).
pub fn kubeconfig(token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: demo\n  cluster:\n    server: https://demo.kany8s.test:6443\ncontexts:\n- name: demo\n  context:\n    cluster: demo\n    user: admin\ncurrent-context: demo\nusers:\n- name: admin\n  user:\n    token: {token}\n"
    )
}

pub(super) fn secret_manifest(
    name: &str,
    namespace: &str,
    cluster_label: Option<&str>,
    value: &str,
) -> String {
    let mut secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"value": base64::engine::general_purpose::STANDARD.encode(value)}});
    if let Some(cluster) = cluster_label {
        secret["type"] = json!("cluster.x-k8s.io/secret");
        secret["metadata"]["labels"] = json!({"cluster.x-k8s.io/cluster-name": cluster});
    }
    serde_json::to_string(&secret).unwrap_or_default()
}

/// A Secret Cluster API reads for `cluster`: type `cluster.x-k8s.io/secret` and the
/// `cluster.x-k8s.io/cluster-name` label.
pub(super) fn check_cluster_secret(secret: &Value, cluster: &str) -> Result<(), Failure> {
    let name = secret["metadata"]["name"].as_str().unwrap_or_default();
    check_eq(
        &format!("{name} type"),
        &secret["type"],
        &json!("cluster.x-k8s.io/secret"),
    )?;
    check_eq(
        &format!("{name} label"),
        &secret["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"],
        &json!(cluster),
    )
}

/// Provides Secret `<cluster>-kubeconfig` as a plugin would (Option A): a workload kubeconfig
/// told apart by `label`, typed and labelled for the Cluster.
pub(super) async fn provide_kubeconfig(
    h: &Harness,
    cluster: &str,
    label: &str,
) -> Result<(), Failure> {
    h.apply(
        &secret_manifest(
            &format!("{cluster}-kubeconfig"),
            &h.namespace,
            Some(cluster),
            &h.workload_kubeconfig(label).await?,
        ),
        &[],
    )
    .await
}

/// The text of a base64 field (empty when absent or not base64).
pub(super) fn base64_text(value: &Value) -> String {
    value
        .as_str()
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The text of a Secret's `value` key.
pub(super) fn secret_value(secret: &Value) -> String {
    base64_text(&secret["data"]["value"])
}

/// Applies the RGD fixtures and waits until each is Active.
pub(super) async fn apply_rgds(h: &Harness, fixtures: &[(&str, &str)]) -> Result<(), Failure> {
    for (file, _) in fixtures {
        h.apply_fixture(&format!("rgds/{file}"), &[]).await?;
    }
    for (_, name) in fixtures {
        h.wait_object(KRO, RGD, name, "accepted (state Active)", |o| {
            o["status"]["state"] == "Active"
        })
        .await?;
    }
    Ok(())
}

pub(super) fn initialized(cp: &Value) -> bool {
    cp["status"]["initialization"]["controlPlaneInitialized"] == true
}

pub(super) fn owner_uids(object: &Value) -> Vec<String> {
    object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["uid"].as_str().map(str::to_string))
        .collect()
}

/// `kubectl patch --type=merge` of `resource` (`plural.group`) `name` in the scenario
/// namespace; returns the patched object.
pub(super) async fn merge_patch(
    h: &Harness,
    resource: &str,
    name: &str,
    patch: &str,
) -> Result<Value, Failure> {
    let ns = h.namespace.clone();
    let output = h
        .kubectl(
            &[
                "patch",
                "-n",
                &ns,
                resource,
                name,
                "--type=merge",
                "-p",
                patch,
                "-o",
                "json",
            ],
            None,
        )
        .await?;
    Ok(serde_json::from_str(&output)?)
}

/// Runs the kubectl `delete` command, then waits until the object `(api, kind) name` is gone,
/// failing if it ever disappears while its backend still exists; the object must have been
/// seen with `Deleting=True/WaitingForBackendDeletion` ([CT-25]).
pub(super) async fn deleted_after_backend(
    h: &Harness,
    (api_version, kind): (&str, &str),
    (backend_api, backend_kind): (&str, &str),
    name: &str,
    delete: &[&str],
) -> Result<(), Failure> {
    let observer = h.observe(api_version, kind, name).await?;
    h.kubectl(delete, None).await?;
    h.wait(
        &format!("{kind} {name} to be gone, never before its backend"),
        || async {
            let object = h.get(api_version, kind, name).await?;
            let backend = h.get(backend_api, backend_kind, name).await?;
            match (object, backend) {
                (Some(_), _) => Ok(Err(format!("{kind} still there"))),
                (None, Some(_)) => Err(Failure(format!(
                    "{kind} {name} disappeared while its {backend_kind} still exists"
                ))),
                (None, None) => Ok(Ok(())),
            }
        },
    )
    .await?;
    check(
        observer.saw(|o| has_condition(o, "Deleting", "True", Some("WaitingForBackendDeletion"))),
        || format!("{kind} {name}: Deleting=True/WaitingForBackendDeletion was never observed"),
    )
}

/// Whether `object` has `Paused=True` written for `generation` or a later one.
pub(super) fn paused_at(object: &Value, generation: i64) -> bool {
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| {
            c["type"] == "Paused"
                && c["status"] == "True"
                && c["observedGeneration"]
                    .as_i64()
                    .is_some_and(|g| g >= generation)
        })
}

/// The field [`paused_control_plane_settled`] sets and removes: the demo RGDs' `port`, set to
/// its default (6443). A real field, so that a controller wrongly applying `kroSpec` while
/// paused would succeed (and be caught) rather than be refused, and one whose value changes
/// nothing.
pub(super) const BARRIER_FIELD: &str = "port";

/// Proof that the controller has finished reacting to everything that happened to the paused
/// control plane `name` before this call, so a "nothing was written" check after it cannot
/// pass merely because the controller is slow; returns the control plane as the last proof saw
/// it.
///
/// A paused control plane writes nothing but its `Paused` condition's observedGeneration, and
/// that only when its generation changes ([CT-07]). The barrier changes the generation twice
/// (the barrier field set, then removed) and waits each time until `Paused` was refreshed for
/// the new generation. kube-rs never runs two reconciles of one object at once, and the
/// refresh may be a reconcile's first write: the first refresh proves that a reconcile which
/// read the control plane after this call has begun (it may have absorbed a trigger still
/// pending); the second proves that this reconcile has returned. The control plane's
/// `kroSpec` must not set the barrier field.
pub(super) async fn paused_control_plane_settled(
    h: &Harness,
    name: &str,
) -> Result<Value, Failure> {
    let mut control_plane = Value::Null;
    for value in ["6443", "null"] {
        let patch = format!(r#"{{"spec":{{"kroSpec":{{"{BARRIER_FIELD}":{value}}}}}}}"#);
        let patched = merge_patch(h, CONTROL_PLANES, name, &patch).await?;
        let generation = patched["metadata"]["generation"]
            .as_i64()
            .unwrap_or_default();
        control_plane = h
            .wait_object(
                CP,
                "Kany8sControlPlane",
                name,
                &format!("Paused refreshed for generation {generation} (barrier)"),
                |o| paused_at(o, generation),
            )
            .await?;
    }
    Ok(control_plane)
}

/// A task of a scenario (a plugin, a simulated ACK controller), stopped when dropped.
pub(super) struct Task(pub(super) tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) fn annotation<'a>(object: &'a Value, key: &str) -> &'a str {
    object["metadata"]["annotations"][key]
        .as_str()
        .unwrap_or_default()
}

/// The (type, note) of the first event with `reason` about Cluster `cluster`.
pub(super) async fn event(
    h: &Harness,
    cluster: &str,
    reason: &str,
) -> Result<Option<(String, String)>, Failure> {
    let events: Api<Event> = Api::namespaced(h.client.clone(), &h.namespace);
    Ok(events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .find(|e| {
            e.reason.as_deref() == Some(reason)
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(cluster)
                && e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("Cluster")
        })
        .map(|e| (e.type_.unwrap_or_default(), e.note.unwrap_or_default())))
}

pub(super) async fn wait_event(
    h: &Harness,
    cluster: &str,
    reason: &str,
) -> Result<(String, String), Failure> {
    h.wait(
        &format!("event {reason} about Cluster {cluster}"),
        || async {
            Ok(event(h, cluster, reason)
                .await?
                .ok_or_else(|| "not yet".to_string()))
        },
    )
    .await
}

pub(super) async fn object(
    h: &Harness,
    api_version: &str,
    kind: &str,
    name: &str,
) -> Result<Value, Failure> {
    h.get(api_version, kind, name)
        .await?
        .ok_or_else(|| Failure(format!("{kind} {name} is missing")))
}

/// The process arguments the EKS plugins' charts render for the values the scenarios set
/// (leader election, no metrics listener, probes on :8081, no HTTP/2, one namespace), in the
/// charts' order.
pub(super) fn plugin_process_args(namespace: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        "--leader-elect=true",
        "--metrics-bind-address=0",
        "--metrics-secure=false",
        "--health-probe-bind-address=:8081",
        "--enable-http2=false",
    ]
    .map(str::to_string)
    .to_vec();
    args.push(format!("--watch-namespace={namespace}"));
    args
}

/// Waits until a plugin of this scenario holds its Lease `lease` (its identity starts with the
/// namespace).
pub(super) async fn wait_lease_held(h: &Harness, lease: &str, who: &str) -> Result<(), Failure> {
    h.wait_object(
        "coordination.k8s.io/v1",
        "Lease",
        lease,
        &format!("held by the {who}"),
        |l| {
            l["spec"]["holderIdentity"]
                .as_str()
                .is_some_and(|i| i.starts_with(&h.namespace))
        },
    )
    .await
    .map(|_| ())
}

/// Waits until `count` (a metric of a plugin) reaches `at_least`: the proof the plugin ran.
pub(super) async fn wait_count(
    h: &Harness,
    what: &str,
    count: impl Fn() -> f64,
    at_least: f64,
) -> Result<(), Failure> {
    h.wait(what, || async {
        let now = count();
        Ok(if now >= at_least {
            Ok(())
        } else {
            Err(format!("{now}, waiting for {at_least}"))
        })
    })
    .await
}

/// An object a plugin manages for a Cluster (`cluster`, its JSON) has exactly one owner: that
/// Cluster, not as controller (the garbage collector removes it with the Cluster).
pub(super) fn check_cluster_owner(
    object: &Value,
    cluster: &Value,
    name: &str,
) -> Result<(), Failure> {
    let owners = object["metadata"]["ownerReferences"].clone();
    check(
        owners.as_array().is_some_and(|o| {
            o.len() == 1
                && o[0]["uid"] == cluster["metadata"]["uid"]
                && o[0]["kind"] == "Cluster"
                && o[0]["controller"] != true
        }),
        || format!("{name} ownerReferences: {owners}"),
    )
}

/// A plugin's chart installed with helm on the upstream target.
pub(super) struct InstalledChart {
    /// The chart's Deployment (its JSON).
    pub deployment: Value,
    /// A client authenticated as the chart's ServiceAccount.
    pub client: kube::Client,
}

/// On the upstream target: `helm install`s `charts/<chart>` as `release` in the scenario's
/// namespace with `values` (`fullname` is the objects' name), and returns its Deployment and a
/// client authenticated as its ServiceAccount (a TokenRequest token), after checking with a
/// SelfSubjectReview that the real API server takes it for that account.
pub(super) async fn install_chart(
    h: &Harness,
    chart: &str,
    release: &str,
    fullname: &str,
    values: &[(&str, String)],
) -> Result<InstalledChart, Failure> {
    let Some(upstream) = &h.upstream else {
        return Err(Failure::new(
            "the chart is installed on the upstream target only",
        ));
    };
    let folder = crate::upstream::repository_root()
        .join("charts")
        .join(chart);
    crate::upstream::helm::install(&h.kubeconfig, release, &folder, &h.namespace, values)
        .await
        .map_err(|e| Failure(e.to_string()))?;
    let deployment = object(h, "apps/v1", "Deployment", fullname).await?;
    let account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let accounts: Api<ServiceAccount> = Api::namespaced(h.client.clone(), &h.namespace);
    let request = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600}});
    let response: Value = accounts
        .create_subresource("token", &account, &PostParams::default(), &request)
        .await?;
    let token = response["status"]["token"].as_str().unwrap_or_default();
    let user = format!("system:serviceaccount:{}:{account}", h.namespace);
    let text = crate::upstream::pki::kubeconfig(
        &upstream.server,
        &upstream.ca,
        &user,
        crate::upstream::pki::Credential::Token(token),
    );
    let config = kube::config::Kubeconfig::from_yaml(&text)
        .map_err(|e| Failure(format!("the {chart} kubeconfig: {e}")))?;
    let config =
        kube::Config::from_custom_kubeconfig(config, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| Failure(format!("the {chart} kubeconfig: {e}")))?;
    let client = kube::Client::try_from(config)?;
    let review: SelfSubjectReview = Api::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await?;
    let username = review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .unwrap_or_default();
    check_eq(&format!("the {chart} user"), username, user)?;
    Ok(InstalledChart { deployment, client })
}

/// The first container's arguments of a Deployment (its JSON).
pub(super) fn container_args(deployment: &Value) -> Vec<String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}

/// `helm uninstall`s `release` from the scenario's namespace and waits until the chart's
/// cluster-wide objects (ClusterRole and binding, named `fullname`) are gone.
pub(super) async fn uninstall_chart(
    h: &Harness,
    release: &str,
    fullname: &str,
) -> Result<(), Failure> {
    crate::upstream::helm::uninstall(&h.kubeconfig, release, &h.namespace)
        .await
        .map_err(|e| Failure(e.to_string()))?;
    for kind in ["ClusterRole", "ClusterRoleBinding"] {
        h.wait_gone("rbac.authorization.k8s.io/v1", kind, fullname)
            .await?;
    }
    Ok(())
}
