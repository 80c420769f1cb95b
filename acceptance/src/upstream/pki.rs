//! The upstream target's certificates: one CA that signs the API server's serving certificate,
//! the webhook servers' serving certificate and every client certificate, plus the
//! service-account signing key; and the kubeconfig files built from them.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// Why a certificate or key could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("generating {0}: {1}")]
    Generate(&'static str, rcgen::Error),
    #[error("writing {0}: {1}")]
    Write(PathBuf, std::io::Error),
}

/// A PEM certificate with its PEM (PKCS#8) private key.
#[derive(Clone)]
pub struct CertKey {
    pub cert: String,
    pub key: String,
}

impl std::fmt::Debug for CertKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("CertKey").finish_non_exhaustive()
    }
}

impl CertKey {
    /// Writes `<dir>/<name>.crt` and `<dir>/<name>.key`; returns both paths.
    pub fn write(&self, dir: &Path, name: &str) -> Result<(PathBuf, PathBuf), PkiError> {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, &self.cert).map_err(|e| PkiError::Write(cert.clone(), e))?;
        std::fs::write(&key, &self.key).map_err(|e| PkiError::Write(key.clone(), e))?;
        Ok((cert, key))
    }
}

/// The target's certificate authority.
pub struct Authority {
    pub ca: CertKey,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

fn validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(365);
}

impl Authority {
    /// A new self-signed CA (ECDSA P-256).
    pub fn new() -> Result<Self, PkiError> {
        let key = KeyPair::generate().map_err(|e| PkiError::Generate("the CA key", e))?;
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, "kany8s-upstream-ca");
        params.distinguished_name = subject;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::CrlSign,
        ];
        validity(&mut params);
        let cert = params
            .self_signed(&key)
            .map_err(|e| PkiError::Generate("the CA certificate", e))?;
        let ca = CertKey {
            cert: cert.pem(),
            key: key.serialize_pem(),
        };
        let issuer = Issuer::new(params, key);
        Ok(Self { ca, issuer })
    }

    /// A serving certificate for 127.0.0.1 and localhost.
    pub fn serving(&self, name: &str) -> Result<CertKey, PkiError> {
        let key = KeyPair::generate().map_err(|e| PkiError::Generate("a serving key", e))?;
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, name);
        params.distinguished_name = subject;
        params.subject_alt_names = vec![
            SanType::IpAddress(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
            SanType::DnsName(
                "localhost"
                    .try_into()
                    .map_err(|e| PkiError::Generate("a SAN", e))?,
            ),
        ];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        validity(&mut params);
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| PkiError::Generate("a serving certificate", e))?;
        Ok(CertKey {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }

    /// A client certificate for user `user` in `groups` (CN and O, as kube-apiserver reads them).
    pub fn client(&self, user: &str, groups: &[&str]) -> Result<CertKey, PkiError> {
        let key = KeyPair::generate().map_err(|e| PkiError::Generate("a client key", e))?;
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, user);
        for group in groups {
            subject.push(DnType::OrganizationName, *group);
        }
        params.distinguished_name = subject;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut params);
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| PkiError::Generate("a client certificate", e))?;
        Ok(CertKey {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// The service-account signing key: (private key as PKCS#8 PEM, public key as PEM).
pub fn service_account_key() -> Result<(String, String), PkiError> {
    KeyPair::generate()
        .map(|k| (k.serialize_pem(), k.public_key_pem()))
        .map_err(|e| PkiError::Generate("the service-account key", e))
}

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// How a kubeconfig's user authenticates.
#[derive(Clone)]
pub enum Credential<'a> {
    Certificate(&'a CertKey),
    Token(&'a str),
}

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::Certificate(_) => "Certificate",
            Credential::Token(_) => "Token",
        })
    }
}

/// A kubeconfig for `server` trusting `ca` with one user named `user`.
pub fn kubeconfig(server: &str, ca: &str, user: &str, credential: Credential<'_>) -> String {
    let user_entry = match credential {
        Credential::Certificate(c) => serde_json::json!({
            "client-certificate-data": b64(&c.cert),
            "client-key-data": b64(&c.key),
        }),
        Credential::Token(token) => serde_json::json!({"token": token}),
    };
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "upstream", "cluster": {
            "server": server,
            "certificate-authority-data": b64(ca),
        }}],
        "users": [{"name": user, "user": user_entry}],
        "contexts": [{"name": user, "context": {"cluster": "upstream", "user": user}}],
        "current-context": user,
    });
    yaml_serde::to_string(&config).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn client_certificates_carry_user_and_groups_and_chain_to_the_ca() {
        let authority = Authority::new().unwrap();
        let admin = authority
            .client("kany8s-admin", &["system:masters"])
            .unwrap();
        let pem = ::x509_parser::pem::parse_x509_pem(admin.cert.as_bytes())
            .unwrap()
            .1;
        let cert = pem.parse_x509().unwrap();
        let subject = cert.subject().to_string();
        assert!(subject.contains("CN=kany8s-admin"), "{subject}");
        assert!(subject.contains("O=system:masters"), "{subject}");
        let ca_pem = ::x509_parser::pem::parse_x509_pem(authority.ca.cert.as_bytes())
            .unwrap()
            .1;
        let ca = ca_pem.parse_x509().unwrap();
        cert.verify_signature(Some(ca.public_key())).unwrap();
        let other = Authority::new().unwrap();
        let other_pem = ::x509_parser::pem::parse_x509_pem(other.ca.cert.as_bytes())
            .unwrap()
            .1;
        assert!(
            cert.verify_signature(Some(other_pem.parse_x509().unwrap().public_key()))
                .is_err()
        );
    }

    #[test]
    fn serving_certificates_name_loopback() {
        let authority = Authority::new().unwrap();
        let serving = authority.serving("kube-apiserver").unwrap();
        let pem = ::x509_parser::pem::parse_x509_pem(serving.cert.as_bytes())
            .unwrap()
            .1;
        let cert = pem.parse_x509().unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap().value;
        use ::x509_parser::extensions::GeneralName;
        assert!(
            san.general_names
                .iter()
                .any(|n| matches!(n, GeneralName::IPAddress(ip) if *ip == [127, 0, 0, 1])),
            "{san:?}"
        );
        assert!(
            san.general_names
                .iter()
                .any(|n| matches!(n, GeneralName::DNSName("localhost"))),
            "{san:?}"
        );
    }

    #[test]
    fn kubeconfigs_never_show_keys_in_debug_output() {
        let authority = Authority::new().unwrap();
        let admin = authority.client("a", &[]).unwrap();
        assert!(!format!("{admin:?}").contains("PRIVATE"));
        let text = kubeconfig(
            "https://127.0.0.1:1",
            &authority.ca.cert,
            "a",
            Credential::Token("t"),
        );
        let value: serde_json::Value = yaml_serde::from_str(&text).unwrap();
        assert_eq!(value["users"][0]["user"]["token"], "t");
        assert_eq!(
            value["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:1"
        );
    }
}
