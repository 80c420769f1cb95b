//! The pure "build" step of the Kany8sKubeadmControlPlane reconcile (provider.md §7): from what
//! the pass read — the spec, the owner Cluster, the certificate Secrets, the infrastructure
//! cluster and machine template, the existing kubeconfig Secret and Machine — the objects to
//! create or apply and the facts the decide step needs. No client in scope: the reconcile reads,
//! calls these, and writes what they return.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::ObjectMeta;
use serde_json::{Value, json};

use super::certs::{self, CertKeyPair, KeyAlgorithm};
use super::decide::{CONTROL_PLANE_LABEL, Machine};
use crate::capi::{self, ApiEndpoint, CLUSTER_NAME_LABEL};
use crate::kubeconfig::CLUSTER_SECRET_TYPE;

/// kubeadm's default certificates directory ([KK-04]).
pub const KUBEADM_PKI: &str = "/etc/kubernetes/pki";
/// Where the bootstrap writes the certificates unless the spec says otherwise ([KK-10]).
pub const DEFAULT_CERTIFICATES_DIR: &str = "/run/kubeadm/pki";
pub const CLONED_FROM_NAME: &str = "cluster.x-k8s.io/cloned-from-name";
pub const CLONED_FROM_GROUPKIND: &str = "cluster.x-k8s.io/cloned-from-groupkind";
pub const CONTRACT_LABEL: &str = "cluster.x-k8s.io/v1beta2";

/// Kubernetes API version order: GA above beta above alpha, then by major and minor.
pub fn version_rank(version: &str) -> (u8, u64, u64) {
    let Some(rest) = version.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u64>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    let (stability, minor) = if tail.is_empty() {
        (3, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n.parse().unwrap_or(0))
    } else {
        (0, 0)
    };
    (stability, major, minor)
}

/// [KK-06]: the highest version in a CRD's contract label (`v1beta1_v1beta2`).
pub fn contract_version(label: &str) -> Option<String> {
    label
        .split('_')
        .map(str::trim)
        .filter(|v| version_rank(v).0 > 0)
        .max_by_key(|v| version_rank(v))
        .map(str::to_string)
}

/// The Cluster as a (non-controller) owner reference of what the facade creates.
pub fn cluster_owner_reference(cluster: &capi::Cluster) -> Value {
    json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
        "name": cluster.name_any(), "uid": cluster.uid()})
}

/// Makes a missing key pair.
pub type Generate = fn(KeyAlgorithm, time::OffsetDateTime) -> Result<CertKeyPair, certs::CertError>;

/// One cluster certificate Secret ([KK-04]).
#[derive(Debug)]
pub struct CertificateSecret {
    pub suffix: &'static str,
    /// File names under the certificates directory: certificate, key (`None`: not written).
    pub files: (&'static str, Option<&'static str>),
    /// How a missing one is made; `None`: looked up only (external etcd).
    pub generate: Option<Generate>,
}

/// [KK-04]: the certificate Secrets of a cluster, with local or external etcd.
pub fn certificate_secrets(external_etcd: bool) -> Vec<CertificateSecret> {
    let ca = |suffix, files| CertificateSecret {
        suffix,
        files,
        generate: Some(certs::generate_ca),
    };
    let mut all = vec![ca("ca", ("ca.crt", Some("ca.key")))];
    if external_etcd {
        all.push(CertificateSecret {
            suffix: "etcd",
            files: ("etcd/ca.crt", None),
            generate: None,
        });
        all.push(CertificateSecret {
            suffix: "apiserver-etcd-client",
            files: (
                "apiserver-etcd-client.crt",
                Some("apiserver-etcd-client.key"),
            ),
            generate: None,
        });
    } else {
        all.push(ca("etcd", ("etcd/ca.crt", Some("etcd/ca.key"))));
    }
    all.push(ca(
        "proxy",
        ("front-proxy-ca.crt", Some("front-proxy-ca.key")),
    ));
    all.push(CertificateSecret {
        suffix: "sa",
        files: ("sa.pub", Some("sa.key")),
        generate: Some(|algorithm, _| certs::generate_service_account_key(algorithm)),
    });
    all
}

/// A kubeadm `files` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub content: String,
    pub key: bool,
}

/// The certificates, as read or made.
#[derive(Debug)]
pub struct Certificates {
    pub ca: CertKeyPair,
    pub files: Vec<File>,
}

/// A non-empty data key of a Secret, as text.
pub fn data(secret: &Secret, key: &str) -> Result<String, String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .filter(|v| !v.0.is_empty())
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .ok_or_else(|| format!("missing data for key {key}"))
}

/// [KK-10]: the KubeadmConfig spec: the user's, with the endpoint, the certificates directory,
/// the bind port and the certificate files injected.
pub fn kubeadm_config_spec(
    user: Option<&Value>,
    endpoint: &ApiEndpoint,
    files: &[File],
) -> Result<Value, String> {
    let mut spec = match user.cloned().unwrap_or_else(|| json!({})) {
        Value::Object(map) => map,
        other => {
            return Err(format!(
                "spec.kubeadmConfigSpec must be a JSON object, got {}",
                crate::backend_status::json_type(&other)
            ));
        }
    };
    let object = |map: &mut serde_json::Map<String, Value>,
                  key: &str|
     -> Result<serde_json::Map<String, Value>, String> {
        match map.remove(key) {
            None | Some(Value::Null) => Ok(serde_json::Map::new()),
            Some(Value::Object(m)) => Ok(m),
            Some(other) => Err(format!(
                "{key} must be a JSON object, got {}",
                crate::backend_status::json_type(&other)
            )),
        }
    };
    let mut cluster = object(&mut spec, "clusterConfiguration")?;
    cluster.insert("controlPlaneEndpoint".into(), json!(endpoint.host_port()));
    let directory = match cluster
        .get("certificatesDir")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
    {
        Some(d) => d.trim_end_matches('/').to_string(),
        None => DEFAULT_CERTIFICATES_DIR.to_string(),
    };
    cluster.insert("certificatesDir".into(), json!(directory));
    spec.insert("clusterConfiguration".into(), Value::Object(cluster));
    let mut init = object(&mut spec, "initConfiguration")?;
    let mut local = match init.remove("localAPIEndpoint") {
        Some(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    if local.get("bindPort").and_then(Value::as_i64).unwrap_or(0) <= 0 {
        local.insert("bindPort".into(), json!(endpoint.port.unwrap_or_default()));
    }
    init.insert("localAPIEndpoint".into(), Value::Object(local));
    spec.insert("initConfiguration".into(), Value::Object(init));
    let rewrite = |path: &str| match path.strip_prefix(&format!("{KUBEADM_PKI}/")) {
        Some(rest) if directory != KUBEADM_PKI => format!("{directory}/{rest}"),
        _ => path.to_string(),
    };
    let injected: Vec<Value> = files
        .iter()
        .map(|f| {
            json!({"path": rewrite(&f.path), "owner": "root:root",
                "permissions": if f.key { "0600" } else { "0640" }, "content": f.content})
        })
        .collect();
    let paths: Vec<&str> = injected.iter().filter_map(|f| f["path"].as_str()).collect();
    let mut all: Vec<Value> = spec
        .get("files")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| !f["path"].as_str().is_some_and(|p| paths.contains(&p)))
        .collect();
    all.extend(injected.iter().cloned());
    spec.insert("files".into(), Value::Array(all));
    Ok(Value::Object(spec))
}

/// The certificates directory of [KK-04] (before [KK-10]'s default).
pub fn certificates_dir(config: &Value) -> String {
    config
        .pointer("/clusterConfiguration/certificatesDir")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .map_or_else(
            || KUBEADM_PKI.to_string(),
            |d| d.trim_end_matches('/').to_string(),
        )
}

/// Whether `object` has condition `type_` True.
pub fn condition_true(object: &Value, type_: &str) -> bool {
    object["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == type_ && c["status"] == "True")
    })
}

/// [KK-17]: when to come back for the client certificate's rotation (at NotAfter − 180 days),
/// bounded by the sync period; at least a second, so an overdue rotation does not spin.
pub fn rotation_delay(
    expires: time::OffsetDateTime,
    now: time::OffsetDateTime,
    sync_period: Duration,
) -> Duration {
    let due = (expires - certs::ROTATE_BEFORE) - now;
    Duration::try_from(due).unwrap_or(Duration::ZERO).clamp(
        Duration::from_secs(1),
        sync_period.max(Duration::from_secs(1)),
    )
}

/// [KK-04]: a generated certificate Secret, owned by the Cluster.
pub fn certificate_secret(
    namespace: &str,
    name: &str,
    cluster: &capi::Cluster,
    pair: CertKeyPair,
) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace,
            "labels": {CLUSTER_NAME_LABEL: cluster.name_any()},
            "ownerReferences": [cluster_owner_reference(cluster)]},
        "type": CLUSTER_SECRET_TYPE,
        "data": {"tls.crt": k8s_openapi::ByteString(pair.cert.into_bytes()),
            "tls.key": k8s_openapi::ByteString(pair.key.into_bytes())},
    })
}

/// [KK-04], [KK-10]: the kubeadm files of one certificate Secret (under `directory`), and the
/// pair itself; an error names the missing key.
pub fn certificate_files(
    wanted: &CertificateSecret,
    secret: &Secret,
    directory: &str,
) -> Result<(Vec<File>, CertKeyPair), String> {
    let cert = data(secret, "tls.crt")?;
    let mut files = vec![File {
        path: format!("{directory}/{}", wanted.files.0),
        content: cert.clone(),
        key: false,
    }];
    let key = match wanted.files.1 {
        Some(file) => {
            let key = data(secret, "tls.key")?;
            files.push(File {
                path: format!("{directory}/{file}"),
                content: key.clone(),
                key: true,
            });
            key
        }
        None => String::new(),
    };
    Ok((files, CertKeyPair { cert, key }))
}

/// [KK-09]: what to do with the admin kubeconfig Secret.
#[derive(Debug, PartialEq, Eq)]
pub enum KubeconfigPlan {
    /// Usable and compliant: keep it; its client certificate expires then.
    Keep(time::OffsetDateTime),
    /// Usable but not compliant (type, label or owner): apply it again as it is.
    Repair(Vec<u8>, time::OffsetDateTime),
    /// Missing, invalid, for another server or expiring: generate a new one, for this reason.
    Regenerate(String),
}

/// [KK-09]: keep, repair or regenerate the admin kubeconfig `existing` for `server`.
pub fn kubeconfig_plan(
    existing: Option<&Secret>,
    cluster: &capi::Cluster,
    server: &str,
    now: time::OffsetDateTime,
) -> KubeconfigPlan {
    let value = existing.and_then(crate::kubeconfig::value_of);
    match certs::regeneration_reason(value, server, now) {
        Err(reason) => KubeconfigPlan::Regenerate(reason),
        Ok(expires) => {
            let compliant = existing.is_some_and(|s| {
                crate::kubeconfig::compliant(s, &cluster.name_any())
                    && s.owner_references()
                        .iter()
                        .any(|o| Some(&o.uid) == cluster.metadata.uid.as_ref())
            });
            if compliant {
                KubeconfigPlan::Keep(expires)
            } else {
                KubeconfigPlan::Repair(value.map(<[u8]>::to_vec).unwrap_or_default(), expires)
            }
        }
    }
}

/// The key algorithm of the cluster's certificates ([KK-04]: `encryptionAlgorithm`).
pub fn key_algorithm(config: &Value) -> Result<KeyAlgorithm, String> {
    KeyAlgorithm::parse(
        config
            .pointer("/clusterConfiguration/encryptionAlgorithm")
            .and_then(Value::as_str),
    )
    .map_err(|e| e.to_string())
}

/// [KK-09]: the `<cluster>-kubeconfig` Secret holding `value`, owned by the Cluster.
pub fn kubeconfig_secret(namespace: &str, cluster: &capi::Cluster, value: Vec<u8>) -> Value {
    let cluster_name = cluster.name_any();
    json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": format!("{cluster_name}-kubeconfig"), "namespace": namespace,
            "labels": {CLUSTER_NAME_LABEL: cluster_name},
            "ownerReferences": [cluster_owner_reference(cluster)]},
        "type": CLUSTER_SECRET_TYPE,
        "data": {"value": k8s_openapi::ByteString(value)}})
}

/// [KK-10]: the KubeadmConfig `name` with `spec`, labelled and owned by the Cluster.
pub fn kubeadm_config(namespace: &str, name: &str, cluster: &capi::Cluster, spec: Value) -> Value {
    json!({"apiVersion": "bootstrap.cluster.x-k8s.io/v1beta2", "kind": "KubeadmConfig",
        "metadata": {"name": name, "namespace": namespace,
            "labels": {CLUSTER_NAME_LABEL: cluster.name_any()},
            "ownerReferences": [cluster_owner_reference(cluster)]},
        "spec": spec})
}

/// The machine template a facade clones, as resolved.
#[derive(Debug)]
pub struct MachineTemplate<'a> {
    /// The template's `apiGroup` and name.
    pub api_group: &'a str,
    pub name: &'a str,
    /// The template's kind and apiVersion (the contract version).
    pub kind: &'a str,
    pub api_version: &'a str,
    /// The template object.
    pub object: &'a Value,
}

/// [KK-11]: the infrastructure machine kind of a template kind (`DockerMachineTemplate` →
/// `DockerMachine`).
pub fn machine_kind(template_kind: &str) -> &str {
    template_kind
        .strip_suffix("Template")
        .unwrap_or(template_kind)
}

/// [KK-11]: the infrastructure machine `name` cloned from `template`: its labels and
/// annotations plus the cluster-name label and the cloned-from annotations, its spec, owned
/// by the Cluster.
pub fn infrastructure_machine(
    namespace: &str,
    name: &str,
    cluster: &capi::Cluster,
    template: &MachineTemplate<'_>,
) -> Value {
    let source = &template.object["spec"]["template"];
    let mut labels = source["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    labels.insert(CLUSTER_NAME_LABEL.into(), json!(cluster.name_any()));
    let mut annotations = source["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    annotations.insert(CLONED_FROM_NAME.into(), json!(template.name));
    annotations.insert(
        CLONED_FROM_GROUPKIND.into(),
        json!(format!("{}.{}", template.kind, template.api_group)),
    );
    json!({
        "apiVersion": template.api_version, "kind": machine_kind(template.kind),
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations,
            "ownerReferences": [cluster_owner_reference(cluster)]},
        "spec": source.get("spec").cloned().unwrap_or_else(|| json!({})),
    })
}

/// [KK-12]: the control-plane Machine `name` of `version`, bootstrapped by the KubeadmConfig of
/// the same name, on `infrastructure` (`{apiGroup, kind, name}`).
pub fn machine(
    namespace: &str,
    name: &str,
    cluster: &capi::Cluster,
    version: &str,
    infrastructure: &Value,
) -> Value {
    let cluster_name = cluster.name_any();
    json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
        "metadata": {"name": name, "namespace": namespace,
            "labels": {CLUSTER_NAME_LABEL: cluster_name, CONTROL_PLANE_LABEL: "true"},
            "ownerReferences": [cluster_owner_reference(cluster)]},
        "spec": {"clusterName": cluster_name, "version": version,
            "bootstrap": {"configRef": {"apiGroup": "bootstrap.cluster.x-k8s.io", "kind": "KubeadmConfig", "name": name}},
            "infrastructureRef": infrastructure},
    })
}

/// [KK-12]: an existing Machine's repair: its labels and Cluster owner, applied when one is
/// missing; its spec is never touched.
pub fn machine_repair(existing: &ObjectMeta, name: &str, cluster: &capi::Cluster) -> Option<Value> {
    let cluster_name = cluster.name_any();
    let labels = existing.labels.clone().unwrap_or_default();
    let labelled = labels.get(CLUSTER_NAME_LABEL) == Some(&cluster_name)
        && labels.get(CONTROL_PLANE_LABEL).map(String::as_str) == Some("true");
    let owned = existing
        .owner_references
        .iter()
        .flatten()
        .any(|o| Some(&o.uid) == cluster.metadata.uid.as_ref());
    (!labelled || !owned).then(|| {
        json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
            "metadata": {"name": name,
                "labels": {CLUSTER_NAME_LABEL: cluster_name, CONTROL_PLANE_LABEL: "true"},
                "ownerReferences": [cluster_owner_reference(cluster)]}})
    })
}

/// [KK-14]: what a control-plane Machine reports.
pub fn machine_report(object: &Value) -> Machine {
    Machine {
        version: object["spec"]["version"].as_str().map(str::to_string),
        ready: condition_true(object, "Ready"),
        available: condition_true(object, "Available"),
    }
}

/// [KK-16]: whether the Cluster's `RemoteConnectionProbe` is True.
pub fn remote_connection_probe(cluster: &capi::Cluster) -> bool {
    cluster
        .status
        .as_ref()
        .and_then(|s| capi::find_condition(&s.conditions, "RemoteConnectionProbe"))
        .is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(host: &str, port: i32) -> ApiEndpoint {
        ApiEndpoint {
            host: Some(host.into()),
            port: Some(port),
        }
    }

    fn files(directory: &str) -> Vec<File> {
        vec![
            File {
                path: format!("{directory}/ca.crt"),
                content: "CERT".into(),
                key: false,
            },
            File {
                path: format!("{directory}/ca.key"),
                content: "KEY".into(),
                key: true,
            },
        ]
    }

    /// [KK-10]: defaults, the endpoint, the bind port and the certificate files.
    #[test]
    fn kk10_kubeadm_config_defaults() {
        let spec =
            kubeadm_config_spec(None, &endpoint("127.0.0.1", 6443), &files(KUBEADM_PKI)).unwrap();
        assert_eq!(
            spec["clusterConfiguration"]["controlPlaneEndpoint"],
            "127.0.0.1:6443"
        );
        assert_eq!(
            spec["clusterConfiguration"]["certificatesDir"],
            "/run/kubeadm/pki"
        );
        assert_eq!(
            spec["initConfiguration"]["localAPIEndpoint"]["bindPort"],
            6443
        );
        assert_eq!(
            spec["files"],
            json!([
                {"path": "/run/kubeadm/pki/ca.crt", "owner": "root:root", "permissions": "0640", "content": "CERT"},
                {"path": "/run/kubeadm/pki/ca.key", "owner": "root:root", "permissions": "0600", "content": "KEY"},
            ])
        );
    }

    /// [KK-10]: the user's values are kept where the spec says defaults; user files at the
    /// injected paths are replaced, others kept first; IPv6 hosts are bracketed.
    #[test]
    fn kk10_kubeadm_config_keeps_user_values() {
        let user = json!({
            "clusterConfiguration": {"certificatesDir": "/etc/kubernetes/pki", "apiServer": {"extraArgs": [{"name": "v", "value": "2"}]}},
            "initConfiguration": {"localAPIEndpoint": {"bindPort": 8443}},
            "files": [{"path": "/etc/kubernetes/pki/ca.crt", "content": "user"}, {"path": "/etc/motd", "content": "hi"}],
        });
        let spec =
            kubeadm_config_spec(Some(&user), &endpoint("fd00::1", 6443), &files(KUBEADM_PKI))
                .unwrap();
        assert_eq!(
            spec["clusterConfiguration"]["controlPlaneEndpoint"],
            "[fd00::1]:6443"
        );
        assert_eq!(
            spec["clusterConfiguration"]["certificatesDir"],
            "/etc/kubernetes/pki"
        );
        assert_eq!(
            spec["clusterConfiguration"]["apiServer"],
            user["clusterConfiguration"]["apiServer"]
        );
        assert_eq!(
            spec["initConfiguration"]["localAPIEndpoint"]["bindPort"],
            8443
        );
        let paths: Vec<&str> = spec["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            paths,
            [
                "/etc/motd",
                "/etc/kubernetes/pki/ca.crt",
                "/etc/kubernetes/pki/ca.key"
            ]
        );
        assert_eq!(spec["files"][1]["content"], "CERT");
        let error = kubeadm_config_spec(Some(&json!([1])), &endpoint("h", 1), &[]).unwrap_err();
        assert_eq!(
            error,
            "spec.kubeadmConfigSpec must be a JSON object, got array"
        );
    }

    /// [KK-17]: the rotation timer, bounded by the sync period.
    #[test]
    fn kk17_rotation_delay() {
        let now = time::OffsetDateTime::now_utc();
        let sync = Duration::from_secs(600);
        let in_days = |d: i64| now + time::Duration::days(d);
        assert_eq!(rotation_delay(in_days(365), now, sync), sync);
        assert_eq!(
            rotation_delay(in_days(180) + time::Duration::seconds(90), now, sync),
            Duration::from_secs(90)
        );
        assert_eq!(
            rotation_delay(in_days(10), now, sync),
            Duration::from_secs(1)
        );
    }

    /// [KK-06]: the highest Kubernetes-ordered version of a contract label.
    #[test]
    fn kk06_contract_version_order() {
        assert_eq!(
            contract_version("v1beta1_v1beta2").as_deref(),
            Some("v1beta2")
        );
        assert_eq!(
            contract_version("v1alpha3_v1beta1_v1").as_deref(),
            Some("v1")
        );
        assert_eq!(contract_version("v2beta1_v1").as_deref(), Some("v1"));
        assert_eq!(
            contract_version("v1alpha4_v1alpha10").as_deref(),
            Some("v1alpha10")
        );
        assert_eq!(contract_version("garbage"), None);
    }

    fn cluster() -> capi::Cluster {
        serde_json::from_value(
            json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
            "metadata": {"name": "demo", "namespace": "ns", "uid": "c1"}, "spec": {}}),
        )
        .unwrap()
    }

    /// [KK-11]: the clone keeps the template's labels, annotations and spec, and says where it
    /// came from.
    #[test]
    fn kk11_infrastructure_machine_clone() {
        let object = json!({"spec": {"template": {"metadata": {"labels": {"a": "1"}, "annotations": {"b": "2"}},
            "spec": {"customImage": "kindest/node:v1.34.0"}}}});
        let template = MachineTemplate {
            api_group: "infrastructure.cluster.x-k8s.io",
            name: "demo-control-plane",
            kind: "DockerMachineTemplate",
            api_version: "infrastructure.cluster.x-k8s.io/v1beta2",
            object: &object,
        };
        let machine = infrastructure_machine("ns", "demo-control-plane-0", &cluster(), &template);
        assert_eq!(machine["kind"], "DockerMachine");
        assert_eq!(machine["metadata"]["labels"]["a"], "1");
        assert_eq!(machine["metadata"]["labels"][CLUSTER_NAME_LABEL], "demo");
        assert_eq!(
            machine["metadata"]["annotations"][CLONED_FROM_NAME],
            "demo-control-plane"
        );
        assert_eq!(
            machine["metadata"]["annotations"][CLONED_FROM_GROUPKIND],
            "DockerMachineTemplate.infrastructure.cluster.x-k8s.io"
        );
        assert_eq!(machine["spec"]["customImage"], "kindest/node:v1.34.0");
        assert_eq!(machine["metadata"]["ownerReferences"][0]["uid"], "c1");
    }

    /// [KK-12]: a Machine missing its control-plane label or Cluster owner is repaired, one
    /// that has both is left alone.
    #[test]
    fn kk12_machine_repair() {
        let meta = |labels: Value, owner: Option<&str>| -> ObjectMeta {
            let mut m = json!({"name": "m", "labels": labels});
            if let Some(uid) = owner {
                m["ownerReferences"] = json!([{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "name": "demo", "uid": uid}]);
            }
            serde_json::from_value(m).unwrap()
        };
        let full = json!({CLUSTER_NAME_LABEL: "demo", CONTROL_PLANE_LABEL: "true"});
        assert!(machine_repair(&meta(full.clone(), Some("c1")), "m", &cluster()).is_none());
        let repair = machine_repair(
            &meta(json!({CLUSTER_NAME_LABEL: "demo"}), Some("c1")),
            "m",
            &cluster(),
        )
        .unwrap();
        assert_eq!(repair["metadata"]["labels"][CONTROL_PLANE_LABEL], "true");
        assert!(repair.get("spec").is_none(), "the spec is never patched");
        assert!(machine_repair(&meta(full, None), "m", &cluster()).is_some());
    }

    /// [KK-09]: a missing kubeconfig is regenerated, with the reason.
    #[test]
    fn kk09_kubeconfig_plan_without_a_secret() {
        let plan = kubeconfig_plan(
            None,
            &cluster(),
            "https://127.0.0.1:6443",
            time::OffsetDateTime::now_utc(),
        );
        assert!(matches!(plan, KubeconfigPlan::Regenerate(_)), "{plan:?}");
    }

    /// [KK-04]: which Secrets exist, and which are generated, with local and external etcd.
    #[test]
    fn kk04_certificate_set() {
        let local: Vec<(&str, bool)> = certificate_secrets(false)
            .iter()
            .map(|c| (c.suffix, c.generate.is_some()))
            .collect();
        assert_eq!(
            local,
            [("ca", true), ("etcd", true), ("proxy", true), ("sa", true)]
        );
        let external: Vec<(&str, bool)> = certificate_secrets(true)
            .iter()
            .map(|c| (c.suffix, c.generate.is_some()))
            .collect();
        assert_eq!(
            external,
            [
                ("ca", true),
                ("etcd", false),
                ("apiserver-etcd-client", false),
                ("proxy", true),
                ("sa", true)
            ]
        );
    }
}
