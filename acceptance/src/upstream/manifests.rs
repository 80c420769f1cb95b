//! Upstream manifests read at run time from the Go module cache (never copied into the
//! repository) and rewritten for loopback: CRD conversion and admission webhooks point at
//! `https://127.0.0.1:PORT` with the target's CA, as envtest does for one process; and the
//! loopback guard that checks what a real Cluster API may dial before it reads it.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Value, json};

/// Why a manifest could not be read or was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("`go list -m {module}` in {dir}: {message}")]
    GoList {
        module: String,
        dir: String,
        message: String,
    },
    #[error("reading {0}: {1}")]
    Read(PathBuf, String),
    #[error("{0}")]
    Refused(String),
}

/// The folder of `module` in the Go module cache, as resolved by the wrapper module `wrapper`.
pub fn module_dir(wrapper: &Path, module: &str) -> Result<PathBuf, ManifestError> {
    let output = std::process::Command::new("go")
        .args(["list", "-m", "-f", "{{.Dir}}", module])
        .current_dir(wrapper)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=readonly")
        .output()
        .map_err(|e| ManifestError::GoList {
            module: module.into(),
            dir: wrapper.display().to_string(),
            message: e.to_string(),
        })?;
    let dir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() || dir.is_empty() {
        return Err(ManifestError::GoList {
            module: module.into(),
            dir: wrapper.display().to_string(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(PathBuf::from(dir))
}

/// Every non-empty YAML document of `path`.
pub fn documents(path: &Path) -> Result<Vec<Value>, ManifestError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ManifestError::Read(path.to_path_buf(), e.to_string()))?;
    documents_of(&text).map_err(|e| ManifestError::Read(path.to_path_buf(), e))
}

/// Every non-empty YAML document of `text`.
pub fn documents_of(text: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for document in yaml_serde::Deserializer::from_str(text) {
        let value: Value = serde::Deserialize::deserialize(document)
            .map_err(|e: yaml_serde::Error| e.to_string())?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

/// Every YAML document of the `.yaml` files of `dir`, in file-name order.
pub fn documents_in(dir: &Path) -> Result<Vec<Value>, ManifestError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| ManifestError::Read(dir.to_path_buf(), e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        out.extend(documents(&file)?);
    }
    Ok(out)
}

fn ca_bundle(ca: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(ca)
}

/// Points a CRD's conversion webhook (a Service reference, as the provider's kustomization
/// writes it) at `https://127.0.0.1:port<path>` with the target's CA.
pub fn loopback_conversion(mut crd: Value, port: u16, ca: &str) -> Value {
    if let Some(client_config) = crd.pointer_mut("/spec/conversion/webhook/clientConfig")
        && let Some(path) = client_config
            .pointer("/service/path")
            .and_then(Value::as_str)
            .map(str::to_string)
    {
        *client_config = json!({
            "url": format!("https://127.0.0.1:{port}{path}"),
            "caBundle": ca_bundle(ca),
        });
    }
    crd
}

/// A provider's webhook configurations with each service reference replaced by
/// `https://127.0.0.1:port<path>` and the configurations renamed `<provider>-<name>` (every
/// provider calls its own `validating-webhook-configuration`).
pub fn loopback_webhooks(
    configurations: Vec<Value>,
    provider: &str,
    port: u16,
    ca: &str,
) -> Result<Vec<Value>, ManifestError> {
    let mut out = Vec::new();
    for mut configuration in configurations {
        let kind = configuration["kind"].as_str().unwrap_or_default();
        if kind != "MutatingWebhookConfiguration" && kind != "ValidatingWebhookConfiguration" {
            continue;
        }
        let name = configuration["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        configuration["metadata"] = json!({"name": format!("{provider}-{name}")});
        for webhook in configuration["webhooks"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            let path = webhook["clientConfig"]["service"]["path"]
                .as_str()
                .ok_or_else(|| {
                    ManifestError::Refused(format!(
                        "webhook {} of {provider} has no service path",
                        webhook["name"]
                    ))
                })?
                .to_string();
            webhook["clientConfig"] = json!({
                "url": format!("https://127.0.0.1:{port}{path}"),
                "caBundle": ca_bundle(ca),
            });
        }
        out.push(configuration);
    }
    Ok(out)
}

/// Where a URL or kubeconfig server points.
fn host_port(server: &str) -> Option<(String, Option<u16>)> {
    let rest = server.split_once("://").map_or(server, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), port.parse().ok())),
        None => Some((authority.to_string(), None)),
    }
}

/// Whether a real component may dial `server`: a port of 127.0.0.1 the target started, or an
/// unresolvable `.test` name.
pub fn dialable(server: &str, started_ports: &[u16]) -> bool {
    match host_port(server) {
        Some((host, _)) if host.ends_with(".test") || host.ends_with(".test.") => true,
        Some((host, Some(port))) if host == "127.0.0.1" => started_ports.contains(&port),
        _ => false,
    }
}

/// The kubeconfig servers named in a Secret's values (data base64, stringData plain).
fn kubeconfig_servers(secret: &Value) -> Vec<String> {
    let mut texts = Vec::new();
    for (_, value) in secret["data"].as_object().into_iter().flatten() {
        if let Some(bytes) = value
            .as_str()
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        {
            texts.push(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    for (_, value) in secret["stringData"].as_object().into_iter().flatten() {
        texts.extend(value.as_str().map(str::to_string));
    }
    texts
        .iter()
        .filter_map(|t| yaml_serde::from_str::<Value>(t).ok())
        .flat_map(|config| {
            config["clusters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["cluster"]["server"].as_str().map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Refuses a manifest with a kubeconfig Secret or webhook URL that points anywhere but the
/// target's own loopback ports or a `.test` name: Cluster API's ClusterCache dials the server of
/// every `<cluster>-kubeconfig` it reads, and these machines allow loopback traffic only.
pub fn guard_loopback(manifest: &str, started_ports: &[u16]) -> Result<(), ManifestError> {
    let documents = documents_of(manifest).map_err(ManifestError::Refused)?;
    for document in documents {
        let name = document["metadata"]["name"].as_str().unwrap_or("?");
        if document["kind"] == "Secret" {
            for server in kubeconfig_servers(&document) {
                if !dialable(&server, started_ports) {
                    return Err(ManifestError::Refused(format!(
                        "Secret {name}: kubeconfig server {server} is neither this target's API \
                         server on 127.0.0.1 nor a .test name; a real Cluster API would dial it"
                    )));
                }
            }
        }
        for url in document["webhooks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w["clientConfig"]["url"].as_str())
        {
            if !dialable(url, started_ports) {
                return Err(ManifestError::Refused(format!(
                    "{name}: webhook URL {url} is not a loopback port of this target"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn only_started_loopback_ports_and_test_names_are_dialable() {
        let ports = [6443, 40001];
        assert!(dialable("https://127.0.0.1:40001", &ports));
        assert!(dialable("https://127.0.0.1:40001/path", &ports));
        assert!(dialable("https://demo.example.test:6443", &ports));
        assert!(!dialable("https://127.0.0.1:6444", &ports));
        assert!(!dialable("https://127.0.0.1", &ports));
        assert!(!dialable("https://demo.example:6443", &ports));
        assert!(!dialable("https://10.0.0.1:40001", &ports));
        assert!(!dialable("https://[::1]:40001", &ports));
        assert!(!dialable(
            "https://demo-svc.ns.svc.cluster.local:6443",
            &ports
        ));
        assert!(!dialable("https://user@evil.test.example.com:1", &ports));
    }

    #[test]
    fn the_guard_reads_kubeconfigs_in_data_and_string_data() {
        let kubeconfig = |server: &str| {
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n"
            )
        };
        let data = |server: &str| {
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  value: {}\n",
                base64::engine::general_purpose::STANDARD.encode(kubeconfig(server))
            )
        };
        assert!(guard_loopback(&data("https://127.0.0.1:7000"), &[7000]).is_ok());
        let refused = guard_loopback(&data("https://demo.example:6443"), &[7000]).unwrap_err();
        assert!(
            refused.to_string().contains("demo.example:6443"),
            "{refused}"
        );
        let string_data = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  value: |\n{}",
            kubeconfig("https://10.1.2.3:443")
                .lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        );
        assert!(guard_loopback(&string_data, &[7000]).is_err());
        // Not a kubeconfig: nothing to dial.
        let plain = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  value: not a kubeconfig\n";
        assert!(guard_loopback(plain, &[]).is_ok());
    }

    #[test]
    fn webhooks_and_conversion_point_at_loopback() {
        let configuration = json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "validating-webhook-configuration", "annotations": {"x": "y"}},
            "webhooks": [{"name": "v.cluster", "clientConfig": {"service": {"name": "webhook-service", "namespace": "system", "path": "/validate-cluster"}}}]
        });
        let rewritten = loopback_webhooks(vec![configuration], "core", 9443, "CA").unwrap();
        assert_eq!(
            rewritten[0]["metadata"]["name"],
            "core-validating-webhook-configuration"
        );
        assert_eq!(
            rewritten[0]["webhooks"][0]["clientConfig"]["url"],
            "https://127.0.0.1:9443/validate-cluster"
        );
        assert!(rewritten[0]["webhooks"][0]["clientConfig"]["service"].is_null());
        guard_loopback(&serde_json::to_string(&rewritten[0]).unwrap(), &[9443]).unwrap();

        let crd = json!({"spec": {"conversion": {"strategy": "Webhook", "webhook": {
            "conversionReviewVersions": ["v1"],
            "clientConfig": {"service": {"name": "webhook-service", "namespace": "system", "path": "/convert"}}}}}});
        let crd = loopback_conversion(crd, 9443, "CA");
        let webhook = &crd["spec"]["conversion"]["webhook"];
        assert_eq!(
            webhook["clientConfig"]["url"],
            "https://127.0.0.1:9443/convert"
        );
        assert!(webhook["clientConfig"]["service"].is_null());
        assert_eq!(webhook["conversionReviewVersions"], json!(["v1"]));
        let single = loopback_conversion(json!({"spec": {"versions": [{"name": "v1"}]}}), 1, "CA");
        assert_eq!(single, json!({"spec": {"versions": [{"name": "v1"}]}}));
    }
}
