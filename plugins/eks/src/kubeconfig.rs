//! The two kubeconfig documents of the rotator ([ROT-05]): the **probe** kubeconfig with an
//! embedded token (`<capi>-kubeconfig`, what Cluster API and Kany8s read) and the **exec**
//! kubeconfig calling `aws eks get-token` (`<capi>-kubeconfig-exec`, for people and tools with
//! their own AWS credentials). Pure.

use base64::Engine;
use serde_json::{Value, json};

/// The user name in both documents.
pub const USER: &str = "aws";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KubeconfigError {
    #[error("certificate authority data is empty")]
    EmptyCertificateAuthority,
    #[error("certificate authority data is not valid base64")]
    InvalidCertificateAuthority,
    #[error("encoding the kubeconfig: {0}")]
    Encoding(String),
}

/// [ROT-05]: the ACK CA (base64 of the PEM bundle) decoded; empty or undecodable is an error.
pub fn decode_certificate_authority(data: &str) -> Result<Vec<u8>, KubeconfigError> {
    let data = data.trim();
    if data.is_empty() {
        return Err(KubeconfigError::EmptyCertificateAuthority);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| KubeconfigError::InvalidCertificateAuthority)?;
    if decoded.is_empty() {
        return Err(KubeconfigError::EmptyCertificateAuthority);
    }
    Ok(decoded)
}

/// The cluster endpoint and its CA, shared by both documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    /// The Cluster API name: cluster, context and current-context are named after it.
    pub capi: &'a str,
    /// The ACK endpoint, verbatim.
    pub server: &'a str,
    /// The ACK `status.certificateAuthority.data`.
    pub certificate_authority: &'a str,
}

fn document(target: &Target<'_>, user: Value) -> Result<String, KubeconfigError> {
    let ca = decode_certificate_authority(target.certificate_authority)?;
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": target.capi, "cluster": {
            "server": target.server,
            "certificate-authority-data": base64::engine::general_purpose::STANDARD.encode(ca),
        }}],
        "contexts": [{"name": target.capi, "context": {"cluster": target.capi, "user": USER}}],
        "current-context": target.capi,
        "users": [{"name": USER, "user": user}],
        "preferences": {},
    });
    yaml_serde::to_string(&config).map_err(|e| KubeconfigError::Encoding(e.to_string()))
}

/// [ROT-05]: the probe kubeconfig, user `{token: <token>}`.
pub fn probe(target: &Target<'_>, token: &str) -> Result<String, KubeconfigError> {
    document(target, json!({"token": token}))
}

/// [ROT-05]: the exec kubeconfig, user `aws eks get-token --region <region> --cluster-name <eks>`.
pub fn exec(target: &Target<'_>, region: &str, eks: &str) -> Result<String, KubeconfigError> {
    document(
        target,
        json!({"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--region", region, "--cluster-name", eks],
        }}),
    )
}

/// The token of the first user of a probe kubeconfig, if the bytes are one.
pub fn embedded_token(bytes: &[u8]) -> Option<String> {
    let document: Value = yaml_serde::from_slice(bytes).ok()?;
    document
        .pointer("/users/0/user/token")
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const PEM_B64: &str =
        "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";

    fn target() -> Target<'static> {
        Target {
            capi: "demo",
            server: "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com",
            certificate_authority: PEM_B64,
        }
    }

    fn parsed(text: &str) -> Value {
        yaml_serde::from_str(text).unwrap()
    }

    /// [ROT-05]: the probe document: names, server verbatim, CA round-trip, token user.
    #[test]
    fn rot05_probe_document() {
        let text = probe(&target(), "k8s-aws-v1.abc").unwrap();
        let doc = parsed(&text);
        assert_eq!(doc["apiVersion"], "v1");
        assert_eq!(doc["kind"], "Config");
        assert_eq!(doc["current-context"], "demo");
        assert_eq!(doc["clusters"][0]["name"], "demo");
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com"
        );
        assert_eq!(
            doc["clusters"][0]["cluster"]["certificate-authority-data"],
            PEM_B64
        );
        assert_eq!(doc["contexts"][0]["name"], "demo");
        assert_eq!(doc["contexts"][0]["context"]["cluster"], "demo");
        assert_eq!(doc["contexts"][0]["context"]["user"], "aws");
        assert_eq!(doc["users"][0]["name"], "aws");
        assert_eq!(doc["users"][0]["user"], json!({"token": "k8s-aws-v1.abc"}));
        assert_eq!(
            embedded_token(text.as_bytes()).as_deref(),
            Some("k8s-aws-v1.abc")
        );
    }

    /// [ROT-05]: the exec document calls `aws eks get-token` for the region and EKS name.
    #[test]
    fn rot05_exec_document() {
        let doc = parsed(&exec(&target(), "eu-west-1", "eks-demo").unwrap());
        assert_eq!(
            doc["users"][0]["user"]["exec"],
            json!({"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
                "args": ["eks", "get-token", "--region", "eu-west-1", "--cluster-name", "eks-demo"]})
        );
        assert_eq!(doc["current-context"], "demo");
        assert_eq!(embedded_token(b"users: []"), None);
    }

    /// [ROT-05]: empty or undecodable CA data is an error.
    #[test]
    fn rot05_bad_certificate_authority() {
        for (data, error) in [
            ("", KubeconfigError::EmptyCertificateAuthority),
            ("   ", KubeconfigError::EmptyCertificateAuthority),
            ("not base64!", KubeconfigError::InvalidCertificateAuthority),
        ] {
            let bad = Target {
                certificate_authority: data,
                ..target()
            };
            assert_eq!(probe(&bad, "t").unwrap_err(), error);
            assert_eq!(exec(&bad, "r", "e").unwrap_err(), error);
        }
    }
}
