//! [KB-04] `eks.kany8s.io/oidc-thumbprint-auto`: the thumbprint IAM wants for an OpenID Connect
//! provider — the lowercase hex SHA-1 of the DER of the top intermediate CA (the one the root
//! signed) of the chain the issuer serves. The handshake accepts whatever the issuer presents (its
//! signatures are still checked) so that the chain can be read; the chain is then verified with
//! webpki against the trust anchors (the platform's, which honour `SSL_CERT_FILE` /
//! `SSL_CERT_DIR`, or the ones a test gives), for the issuer's host name, before a thumbprint is
//! taken from it. A chain that cannot be verified, or that has no intermediate, is
//! [`Error::is_unverified`]: the caller goes on without a new thumbprint; anything else (bad URL,
//! unreachable issuer, failed handshake) is a plain failure.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha1::{Digest, Sha1};
use tokio::net::TcpStream;
use webpki::{EndEntityCert, KeyUsage};

/// How long the TCP connect and the TLS handshake may each take (the Go reference dials with
/// 10 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no thumbprint was computed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("issuer URL \"{url}\" {problem}")]
    InvalidIssuer { url: String, problem: &'static str },
    #[error("connecting to {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("TLS handshake with {address}: {source}")]
    Handshake {
        address: String,
        source: std::io::Error,
    },
    #[error("{address} did not answer within {after:?}")]
    Timeout { address: String, after: Duration },
    #[error("{address} presented no certificate")]
    NoCertificate { address: String },
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    /// The chain is not trusted, not valid for the host, or has no intermediate CA.
    #[error("certificate chain of {address} not verified: {reason}")]
    Unverified { address: String, reason: String },
}

impl Error {
    /// The issuer answered but its chain yields no trustworthy thumbprint (as opposed to an
    /// issuer that could not be reached or asked).
    pub fn is_unverified(&self) -> bool {
        matches!(self, Self::Unverified { .. })
    }
}

/// Where the trust anchors come from.
#[derive(Clone)]
enum Roots {
    /// The platform's store, read on every use (so a rotated bundle is seen).
    Platform,
    Given(Arc<Vec<TrustAnchor<'static>>>),
}

/// Computes OIDC thumbprints ([KB-04]).
#[derive(Clone)]
pub struct Resolver {
    roots: Roots,
    pub timeout: Duration,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let roots = match &self.roots {
            Roots::Platform => "platform".to_string(),
            Roots::Given(anchors) => format!("{} given", anchors.len()),
        };
        f.debug_struct("Resolver")
            .field("roots", &roots)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Default for Resolver {
    /// The platform's trust anchors.
    fn default() -> Self {
        Self {
            roots: Roots::Platform,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// The TLS client's verifier: accepts any chain (it is verified after the handshake, where the
/// verified path can be inspected) but still checks the handshake signatures against the
/// presented certificate.
#[derive(Debug)]
struct ReadChainOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for ReadChainOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The issuer's host (brackets of an IPv6 literal removed) and port (443 by default).
pub fn issuer_address(issuer: &str) -> Result<(String, u16), Error> {
    let url = issuer.trim();
    let invalid = |problem| Error::InvalidIssuer {
        url: url.to_string(),
        problem,
    };
    let uri: http::Uri = url.parse().map_err(|_| invalid("is not a URL"))?;
    if uri.scheme_str() != Some("https") {
        return Err(invalid("is not https"));
    }
    let host = uri
        .host()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid("has no host"))?;
    Ok((host.to_string(), uri.port_u16().unwrap_or(443)))
}

/// Lowercase hex of the SHA-1 of `der`.
pub fn sha1_hex(der: &[u8]) -> String {
    Sha1::digest(der)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl Resolver {
    /// A resolver trusting exactly `roots` (DER certificates).
    pub fn with_roots<'a>(
        roots: impl IntoIterator<Item = &'a CertificateDer<'a>>,
    ) -> Result<Self, webpki::Error> {
        let anchors = roots
            .into_iter()
            .map(|der| webpki::anchor_from_trusted_cert(der).map(|a| a.to_owned()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            roots: Roots::Given(Arc::new(anchors)),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    fn anchors(&self) -> Arc<Vec<TrustAnchor<'static>>> {
        match &self.roots {
            Roots::Given(anchors) => anchors.clone(),
            Roots::Platform => {
                let loaded = rustls_native_certs::load_native_certs();
                for error in &loaded.errors {
                    tracing::warn!(%error, "loading a platform trust anchor");
                }
                Arc::new(
                    loaded
                        .certs
                        .iter()
                        .filter_map(|der| webpki::anchor_from_trusted_cert(der).ok())
                        .map(|a| a.to_owned())
                        .collect(),
                )
            }
        }
    }

    /// The chain `issuer` presents, end entity first.
    async fn chain(&self, host: &str, port: u16) -> Result<Vec<CertificateDer<'static>>, Error> {
        let address = format!("{host}:{port}");
        let timeout = |address: &str| Error::Timeout {
            address: address.to_string(),
            after: self.timeout,
        };
        let server_name =
            ServerName::try_from(host.to_string()).map_err(|_| Error::InvalidIssuer {
                url: host.to_string(),
                problem: "has a host that is no DNS name or IP address",
            })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ReadChainOnly(provider)))
            .with_no_client_auth();
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| timeout(&address))?
            .map_err(|source| Error::Connect {
                address: address.clone(),
                source,
            })?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tls = tokio::time::timeout(self.timeout, connector.connect(server_name, tcp))
            .await
            .map_err(|_| timeout(&address))?
            .map_err(|source| Error::Handshake {
                address: address.clone(),
                source,
            })?;
        let chain: Vec<CertificateDer<'static>> = tls
            .get_ref()
            .1
            .peer_certificates()
            .unwrap_or_default()
            .iter()
            .map(|c| c.clone().into_owned())
            .collect();
        if chain.is_empty() {
            return Err(Error::NoCertificate { address });
        }
        Ok(chain)
    }

    /// [KB-04]: the thumbprint of `issuer`'s top intermediate CA.
    pub async fn thumbprint(&self, issuer: &str) -> Result<String, Error> {
        let (host, port) = issuer_address(issuer)?;
        let chain = self.chain(&host, port).await?;
        let address = format!("{host}:{port}");
        let unverified = |reason: String| Error::Unverified {
            address: address.clone(),
            reason,
        };
        let anchors = self.anchors();
        let end_entity = EndEntityCert::try_from(&chain[0])
            .map_err(|e| unverified(format!("the end-entity certificate: {e}")))?;
        let path = end_entity
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &anchors,
                &chain[1..],
                UnixTime::now(),
                KeyUsage::server_auth(),
                None,
                None,
            )
            .map_err(|e| unverified(format!("no path to a trusted root: {e:?}")))?;
        let name = ServerName::try_from(host.as_str()).map_err(|_| Error::InvalidIssuer {
            url: issuer.trim().to_string(),
            problem: "has a host that is no DNS name or IP address",
        })?;
        end_entity
            .verify_is_valid_for_subject_name(&name)
            .map_err(|e| unverified(format!("not valid for {host}: {e:?}")))?;
        // Intermediates run from the end entity's issuer up to the one the anchor signed.
        let top = path
            .intermediate_certificates()
            .rev()
            .find(|c| c.subject() != c.issuer())
            .ok_or_else(|| {
                unverified("the verified chain has no intermediate CA (the root signed the issuer's certificate)".into())
            })?;
        Ok(sha1_hex(top.der().as_ref()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// FIPS 180 test vector: the hex is lowercase and complete.
    #[test]
    fn kb04_sha1_hex() {
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn kb04_issuer_address() {
        assert_eq!(
            issuer_address(" https://oidc.eks.eu-west-1.amazonaws.com/id/ABC ").unwrap(),
            ("oidc.eks.eu-west-1.amazonaws.com".to_string(), 443)
        );
        assert_eq!(
            issuer_address("https://127.0.0.1:8443/id/x").unwrap(),
            ("127.0.0.1".to_string(), 8443)
        );
        assert_eq!(
            issuer_address("https://[::1]:9/").unwrap(),
            ("::1".to_string(), 9)
        );
        for bad in ["http://issuer.test/id/x", "", "issuer.test", "https:///x"] {
            let error = issuer_address(bad).unwrap_err();
            assert!(
                matches!(error, Error::InvalidIssuer { .. }),
                "{bad}: {error}"
            );
            assert!(!error.is_unverified());
        }
    }
}
