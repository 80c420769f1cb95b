//! Cluster certificates of the kubeadm facade (provider.md §7.2, [KK-09]): CA and
//! service-account key pairs, the admin kubeconfig signed by the cluster CA, and the checks that
//! decide whether an existing kubeconfig must be regenerated. Pure apart from randomness; the
//! clock is passed in.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber, SignatureAlgorithm,
};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

/// CA certificates are valid this long ([KK-04]).
const CA_VALIDITY: Duration = Duration::days(3650);
/// The admin client certificate is valid this long ([KK-09]).
const CLIENT_VALIDITY: Duration = Duration::days(365);
/// Clock skew allowance: certificates are valid from this long before they are made.
const BACKDATE: Duration = Duration::minutes(5);
/// A kubeconfig whose client certificate expires within this is regenerated ([KK-09]).
pub const ROTATE_BEFORE: Duration = Duration::days(180);

/// A failure to make or read key material; the text is safe to log (it never contains keys).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error(
        "unsupported encryptionAlgorithm \"{0}\" (supported: RSA-2048, RSA-3072, RSA-4096, ECDSA-P256, ECDSA-P384)"
    )]
    UnsupportedAlgorithm(String),
    #[error("generate {0} key: {1}")]
    Generate(&'static str, String),
    #[error("parse private key: {0}")]
    ParseKey(String),
    #[error("parse certificate: {0}")]
    ParseCertificate(String),
    #[error("sign certificate: {0}")]
    Sign(String),
}

/// The key algorithm of generated keys (`clusterConfiguration.encryptionAlgorithm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Rsa(usize),
    EcdsaP256,
    EcdsaP384,
}

impl KeyAlgorithm {
    /// `None` or empty is kubeadm's default, RSA-2048.
    pub fn parse(name: Option<&str>) -> Result<Self, CertError> {
        match name.map(str::trim).unwrap_or_default() {
            "" | "RSA-2048" => Ok(Self::Rsa(2048)),
            "RSA-3072" => Ok(Self::Rsa(3072)),
            "RSA-4096" => Ok(Self::Rsa(4096)),
            "ECDSA-P256" => Ok(Self::EcdsaP256),
            "ECDSA-P384" => Ok(Self::EcdsaP384),
            other => Err(CertError::UnsupportedAlgorithm(other.to_string())),
        }
    }
}

/// A PEM certificate (or, for the service-account pair, a PEM public key) and its PEM key.
#[derive(Clone, PartialEq, Eq)]
pub struct CertKeyPair {
    pub cert: String,
    pub key: String,
}

impl std::fmt::Debug for CertKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertKeyPair").finish_non_exhaustive()
    }
}

/// A private key in the forms the callers need.
struct PrivateKey {
    /// What rcgen signs with.
    signer: KeyPair,
    /// `RSA PRIVATE KEY` (PKCS#1) or `EC PRIVATE KEY` (SEC1), as kubeadm writes them.
    pem: String,
    /// `PUBLIC KEY` (PKIX).
    public_pem: String,
}

fn signer(pkcs8_pem: &str, algorithm: &'static SignatureAlgorithm) -> Result<KeyPair, CertError> {
    KeyPair::from_pem_and_sign_algo(pkcs8_pem, algorithm)
        .map_err(|e| CertError::ParseKey(e.to_string()))
}

/// A key from its three encodings; `algorithm` names it in errors.
fn assemble(
    algorithm: &'static str,
    sign: &'static SignatureAlgorithm,
    pkcs8: Result<String, impl std::fmt::Display>,
    pem: Result<String, impl std::fmt::Display>,
    public_pem: Result<String, impl std::fmt::Display>,
) -> Result<PrivateKey, CertError> {
    let fail = |e: &dyn std::fmt::Display| CertError::Generate(algorithm, e.to_string());
    Ok(PrivateKey {
        signer: signer(&pkcs8.map_err(|e| fail(&e))?, sign)?,
        pem: pem.map_err(|e| fail(&e))?,
        public_pem: public_pem.map_err(|e| fail(&e))?,
    })
}

fn from_rsa(key: &rsa::RsaPrivateKey) -> Result<PrivateKey, CertError> {
    assemble(
        "RSA",
        &rcgen::PKCS_RSA_SHA256,
        key.to_pkcs8_pem(LineEnding::LF).map(|p| p.to_string()),
        key.to_pkcs1_pem(LineEnding::LF).map(|p| p.to_string()),
        key.to_public_key().to_public_key_pem(LineEnding::LF),
    )
}

fn from_p256(key: &p256::SecretKey) -> Result<PrivateKey, CertError> {
    assemble(
        "ECDSA-P256",
        &rcgen::PKCS_ECDSA_P256_SHA256,
        key.to_pkcs8_pem(LineEnding::LF).map(|p| p.to_string()),
        key.to_sec1_pem(LineEnding::LF).map(|p| p.to_string()),
        key.public_key().to_public_key_pem(LineEnding::LF),
    )
}

fn from_p384(key: &p384::SecretKey) -> Result<PrivateKey, CertError> {
    assemble(
        "ECDSA-P384",
        &rcgen::PKCS_ECDSA_P384_SHA384,
        key.to_pkcs8_pem(LineEnding::LF).map(|p| p.to_string()),
        key.to_sec1_pem(LineEnding::LF).map(|p| p.to_string()),
        key.public_key().to_public_key_pem(LineEnding::LF),
    )
}

fn generate_key(algorithm: KeyAlgorithm) -> Result<PrivateKey, CertError> {
    let mut rng = rand_core::OsRng;
    match algorithm {
        KeyAlgorithm::Rsa(bits) => from_rsa(
            &rsa::RsaPrivateKey::new(&mut rng, bits)
                .map_err(|e| CertError::Generate("RSA", e.to_string()))?,
        ),
        KeyAlgorithm::EcdsaP256 => from_p256(&p256::SecretKey::random(&mut rng)),
        KeyAlgorithm::EcdsaP384 => from_p384(&p384::SecretKey::random(&mut rng)),
    }
}

/// Reads a PEM private key as kubeadm and Cluster API write them (PKCS#1, SEC1) or PKCS#8.
fn load_key(pem: &str) -> Result<PrivateKey, CertError> {
    let fail = |e: &dyn std::fmt::Display| CertError::ParseKey(e.to_string());
    let label = pem
        .lines()
        .find_map(|l| l.trim().strip_prefix("-----BEGIN "))
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or_else(|| CertError::ParseKey("no PEM block".into()))?;
    match label {
        "RSA PRIVATE KEY" => {
            from_rsa(&rsa::RsaPrivateKey::from_pkcs1_pem(pem).map_err(|e| fail(&e))?)
        }
        "EC PRIVATE KEY" => match p256::SecretKey::from_sec1_pem(pem) {
            Ok(key) => from_p256(&key),
            Err(_) => from_p384(&p384::SecretKey::from_sec1_pem(pem).map_err(|e| fail(&e))?),
        },
        "PRIVATE KEY" => {
            if let Ok(key) = rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
                from_rsa(&key)
            } else if let Ok(key) = p256::SecretKey::from_pkcs8_pem(pem) {
                from_p256(&key)
            } else {
                from_p384(&p384::SecretKey::from_pkcs8_pem(pem).map_err(|e| fail(&e))?)
            }
        }
        other => Err(CertError::ParseKey(format!(
            "unsupported PEM block \"{other}\""
        ))),
    }
}

/// A self-signed cluster CA ([KK-04]): CN `kubernetes`, serial 0, valid from `now` − 5 min for
/// 3650 days, CA with path length 0.
pub fn generate_ca(algorithm: KeyAlgorithm, now: OffsetDateTime) -> Result<CertKeyPair, CertError> {
    let key = generate_key(algorithm)?;
    let mut params = CertificateParams::default();
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, "kubernetes");
    params.distinguished_name = subject;
    params.serial_number = Some(SerialNumber::from_slice(&[0]));
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_VALIDITY;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    let cert = params
        .self_signed(&key.signer)
        .map_err(|e| CertError::Sign(e.to_string()))?;
    Ok(CertKeyPair {
        cert: cert.pem(),
        key: key.pem,
    })
}

/// The service-account signing key pair ([KK-04]): `cert` holds the PEM `PUBLIC KEY`.
pub fn generate_service_account_key(algorithm: KeyAlgorithm) -> Result<CertKeyPair, CertError> {
    let key = generate_key(algorithm)?;
    Ok(CertKeyPair {
        cert: key.public_pem,
        key: key.pem,
    })
}

/// The Cluster API admin kubeconfig of `cluster` ([KK-09]): a client certificate for
/// `kubernetes-admin` in `system:masters`, signed by `ca`, valid for 365 days.
pub fn admin_kubeconfig(
    cluster: &str,
    server: &str,
    ca: &CertKeyPair,
    algorithm: KeyAlgorithm,
    now: OffsetDateTime,
) -> Result<String, CertError> {
    let ca_key = load_key(&ca.key)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert, ca_key.signer)
        .map_err(|e| CertError::ParseCertificate(e.to_string()))?;
    let client_key = generate_key(algorithm)?;
    let mut params = CertificateParams::default();
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, "kubernetes-admin");
    subject.push(DnType::OrganizationName, "system:masters");
    params.distinguished_name = subject;
    params.not_before = now - BACKDATE;
    params.not_after = now + CLIENT_VALIDITY;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&client_key.signer, &issuer)
        .map_err(|e| CertError::Sign(e.to_string()))?;
    let user = format!("{cluster}-admin");
    let context = format!("{user}@{cluster}");
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {
            "server": server,
            "certificate-authority-data": BASE64.encode(&ca.cert)}}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
        "users": [{"name": user, "user": {
            "client-certificate-data": BASE64.encode(cert.pem()),
            "client-key-data": BASE64.encode(&client_key.pem)}}],
        "preferences": {},
    });
    yaml_serde::to_string(&config).map_err(|e| CertError::Sign(e.to_string()))
}

/// The current context's cluster and user entries of a kubeconfig.
fn current(config: &Value) -> Option<(&Value, &Value)> {
    let context_name = config.get("current-context")?.as_str()?;
    let named = |list: &str, name: &str| -> Option<&Value> {
        config
            .get(list)?
            .as_array()?
            .iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
    };
    let context = named("contexts", context_name)?.get("context")?;
    let cluster = named("clusters", context.get("cluster")?.as_str()?)?.get("cluster")?;
    let user = named("users", context.get("user")?.as_str()?)?.get("user")?;
    Some((cluster, user))
}

/// The first certificate of a PEM bundle, as DER.
fn first_certificate(pem: &[u8]) -> Result<Vec<u8>, CertError> {
    let text = String::from_utf8_lossy(pem);
    let begin = "-----BEGIN CERTIFICATE-----";
    let end = "-----END CERTIFICATE-----";
    let start = text
        .find(begin)
        .ok_or_else(|| CertError::ParseCertificate("no CERTIFICATE block".into()))?;
    let rest = &text[start + begin.len()..];
    let stop = rest
        .find(end)
        .ok_or_else(|| CertError::ParseCertificate("unterminated CERTIFICATE block".into()))?;
    let body: String = rest[..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    BASE64
        .decode(body)
        .map_err(|e| CertError::ParseCertificate(e.to_string()))
}

/// NotAfter of a PEM certificate.
pub fn not_after(pem: &[u8]) -> Result<OffsetDateTime, CertError> {
    let der = first_certificate(pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| CertError::ParseCertificate(e.to_string()))?;
    OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp())
        .map_err(|e| CertError::ParseCertificate(e.to_string()))
}

/// Why an existing admin kubeconfig must be regenerated, or `None` when it is kept
/// ([KK-09]); with its client certificate's NotAfter when it is kept.
pub fn regeneration_reason(
    existing: Option<&[u8]>,
    server: &str,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, String> {
    let Some(bytes) = existing.filter(|b| !b.is_empty()) else {
        return Err("the kubeconfig is missing".into());
    };
    crate::kubeconfig::validate(bytes).map_err(|e| format!("the kubeconfig is invalid: {e}"))?;
    let config: Value =
        yaml_serde::from_slice(bytes).map_err(|e| format!("the kubeconfig is invalid: {e}"))?;
    let Some((cluster, user)) = current(&config) else {
        return Err("the kubeconfig has no usable current context".into());
    };
    if cluster.get("server").and_then(Value::as_str) != Some(server) {
        return Err(format!("the kubeconfig's server is not {server}"));
    }
    let certificate = user
        .get("client-certificate-data")
        .and_then(Value::as_str)
        .and_then(|data| BASE64.decode(data).ok())
        .ok_or_else(|| "the kubeconfig has no client certificate".to_string())?;
    let expires = not_after(&certificate)
        .map_err(|e| format!("the kubeconfig's client certificate is unreadable: {e}"))?;
    if expires - now < ROTATE_BEFORE {
        return Err(format!(
            "the kubeconfig's client certificate expires within {} days",
            ROTATE_BEFORE.whole_days()
        ));
    }
    Ok(expires)
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::{FromDer, X509Certificate};

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn parse(pem: &str) -> Vec<u8> {
        first_certificate(pem.as_bytes()).unwrap()
    }

    fn common_name(cert: &X509Certificate<'_>) -> String {
        cert.subject()
            .iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    /// [KK-04]: the generated CA's subject, serial, validity, key usage, basic constraints and
    /// self-signature, for every supported key algorithm.
    #[rstest::rstest]
    #[case::rsa(None, "RSA PRIVATE KEY")]
    #[case::ecdsa_p256(Some("ECDSA-P256"), "EC PRIVATE KEY")]
    #[case::ecdsa_p384(Some("ECDSA-P384"), "EC PRIVATE KEY")]
    fn kk04_ca_certificate(#[case] algorithm: Option<&str>, #[case] key_block: &str) {
        let made = now();
        let ca = generate_ca(KeyAlgorithm::parse(algorithm).unwrap(), made).unwrap();
        assert!(ca.key.starts_with(&format!("-----BEGIN {key_block}-----")));
        let der = parse(&ca.cert);
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        assert_eq!(common_name(&cert), "kubernetes");
        assert_eq!(cert.subject(), cert.issuer());
        assert_eq!(cert.raw_serial(), &[0]);
        let not_before = cert.validity().not_before.timestamp();
        let not_after = cert.validity().not_after.timestamp();
        assert_eq!(not_before, (made - Duration::minutes(5)).unix_timestamp());
        assert_eq!(not_after, (made + Duration::days(3650)).unix_timestamp());
        let usage = cert.key_usage().unwrap().unwrap().value;
        assert!(usage.key_cert_sign() && usage.digital_signature() && usage.key_encipherment());
        let constraints = cert.basic_constraints().unwrap().unwrap().value;
        assert!(constraints.ca);
        assert_eq!(constraints.path_len_constraint, Some(0));
        cert.verify_signature(None).unwrap();
    }

    #[test]
    fn kk04_rsa_sizes_and_unknown_algorithms() {
        assert_eq!(
            KeyAlgorithm::parse(Some("RSA-4096")).unwrap(),
            KeyAlgorithm::Rsa(4096)
        );
        assert_eq!(
            KeyAlgorithm::parse(Some("")).unwrap(),
            KeyAlgorithm::Rsa(2048)
        );
        let error = KeyAlgorithm::parse(Some("DSA-1024")).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("unsupported encryptionAlgorithm \"DSA-1024\"")
        );
    }

    #[test]
    fn kk04_service_account_key_pair() {
        let pair = generate_service_account_key(KeyAlgorithm::Rsa(2048)).unwrap();
        assert!(pair.cert.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert!(pair.key.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        // The public key belongs to the private key.
        let private = load_key(&pair.key).unwrap();
        assert_eq!(private.public_pem, pair.cert);
    }

    /// [KK-09]: the kubeconfig parses, names the server and the CA, and its client certificate
    /// is the admin's, for client auth, valid 365 days, and signed by the cluster CA.
    #[rstest::rstest]
    #[case::rsa(KeyAlgorithm::Rsa(2048))]
    #[case::ecdsa(KeyAlgorithm::EcdsaP256)]
    fn kk09_admin_kubeconfig(#[case] algorithm: KeyAlgorithm) {
        let made = now();
        let ca = generate_ca(algorithm, made).unwrap();
        let text =
            admin_kubeconfig("demo", "https://[fd00::1]:6443", &ca, algorithm, made).unwrap();
        crate::kubeconfig::validate(text.as_bytes()).unwrap();
        let config: Value = yaml_serde::from_str(&text).unwrap();
        assert_eq!(config["current-context"], "demo-admin@demo");
        let (cluster, user) = current(&config).unwrap();
        assert_eq!(cluster["server"], "https://[fd00::1]:6443");
        let ca_data = BASE64
            .decode(cluster["certificate-authority-data"].as_str().unwrap())
            .unwrap();
        assert_eq!(ca_data, ca.cert.as_bytes());
        let client_pem = BASE64
            .decode(user["client-certificate-data"].as_str().unwrap())
            .unwrap();
        let client_der = first_certificate(&client_pem).unwrap();
        let (_, client) = X509Certificate::from_der(&client_der).unwrap();
        assert_eq!(common_name(&client), "kubernetes-admin");
        let organization = client
            .subject()
            .iter_organization()
            .next()
            .and_then(|o| o.as_str().ok());
        assert_eq!(organization, Some("system:masters"));
        assert!(
            client
                .extended_key_usage()
                .unwrap()
                .unwrap()
                .value
                .client_auth
        );
        assert!(
            !client
                .basic_constraints()
                .unwrap()
                .is_some_and(|b| b.value.ca)
        );
        assert_eq!(
            client.validity().not_after.timestamp(),
            (made + Duration::days(365)).unix_timestamp()
        );
        let ca_der = parse(&ca.cert);
        let (_, ca_cert) = X509Certificate::from_der(&ca_der).unwrap();
        assert_eq!(client.issuer(), ca_cert.subject());
        client.verify_signature(Some(ca_cert.public_key())).unwrap();
        // Signed by this CA only: another CA's key does not verify it.
        let other = generate_ca(algorithm, made).unwrap();
        let other_der = parse(&other.cert);
        let (_, other_cert) = X509Certificate::from_der(&other_der).unwrap();
        assert!(
            client
                .verify_signature(Some(other_cert.public_key()))
                .is_err()
        );
        // The key in the kubeconfig is the certificate's.
        let key_pem = BASE64
            .decode(user["client-key-data"].as_str().unwrap())
            .unwrap();
        let key = load_key(std::str::from_utf8(&key_pem).unwrap()).unwrap();
        assert_eq!(
            key.signer.public_key_raw(),
            client.public_key().subject_public_key.data.as_ref()
        );
    }

    /// A CA made elsewhere (PKCS#8 key, as some tools write it) signs the kubeconfig too.
    #[test]
    fn kk04_existing_pkcs8_ca_is_used() {
        let key = p256::SecretKey::random(&mut rand_core::OsRng);
        let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let signer =
            KeyPair::from_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "external-ca");
        let cert = params.self_signed(&signer).unwrap();
        let ca = CertKeyPair {
            cert: cert.pem(),
            key: pkcs8,
        };
        let text = admin_kubeconfig(
            "demo",
            "https://10.0.0.1:6443",
            &ca,
            KeyAlgorithm::EcdsaP256,
            now(),
        )
        .unwrap();
        assert!(regeneration_reason(Some(text.as_bytes()), "https://10.0.0.1:6443", now()).is_ok());
        let broken = CertKeyPair {
            cert: ca.cert.clone(),
            key: "not a key".into(),
        };
        assert!(matches!(
            admin_kubeconfig(
                "demo",
                "https://10.0.0.1:6443",
                &broken,
                KeyAlgorithm::EcdsaP256,
                now()
            ),
            Err(CertError::ParseKey(_))
        ));
    }

    /// [KK-09]: when an existing kubeconfig is kept and when it is regenerated.
    #[test]
    fn kk09_regeneration_reasons() {
        let made = now();
        let algorithm = KeyAlgorithm::EcdsaP256;
        let ca = generate_ca(algorithm, made).unwrap();
        let server = "https://127.0.0.1:6443";
        let text = admin_kubeconfig("demo", server, &ca, algorithm, made).unwrap();
        let kept = regeneration_reason(Some(text.as_bytes()), server, made).unwrap();
        assert_eq!(
            kept.unix_timestamp(),
            (made + Duration::days(365)).unix_timestamp()
        );
        let reason = |bytes: Option<&[u8]>, server: &str, at: OffsetDateTime| {
            regeneration_reason(bytes, server, at).unwrap_err()
        };
        assert_eq!(reason(None, server, made), "the kubeconfig is missing");
        assert_eq!(reason(Some(b""), server, made), "the kubeconfig is missing");
        assert!(
            reason(Some(b"clusters: 3"), server, made).starts_with("the kubeconfig is invalid")
        );
        assert_eq!(
            reason(Some(text.as_bytes()), "https://127.0.0.2:6443", made),
            "the kubeconfig's server is not https://127.0.0.2:6443"
        );
        // 186 days later the certificate has 179 days left.
        assert_eq!(
            reason(Some(text.as_bytes()), server, made + Duration::days(186)),
            "the kubeconfig's client certificate expires within 180 days"
        );
        assert!(
            regeneration_reason(Some(text.as_bytes()), server, made + Duration::days(184)).is_ok()
        );
        let garbled = text.replace(
            text.lines()
                .find(|l| l.contains("client-certificate-data"))
                .unwrap()
                .split(':')
                .nth(1)
                .unwrap()
                .trim(),
            &BASE64.encode("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        );
        assert!(
            reason(Some(garbled.as_bytes()), server, made)
                .starts_with("the kubeconfig's client certificate is unreadable")
        );
    }
}
