//! A TLS OIDC issuer on loopback for the thumbprint of [KB-04]: a chain made with rcgen — a
//! self-signed root, `n` intermediate CAs (the first signed by the root, each next by the one
//! before) and a serving certificate for one IP address — served by a rustls listener on
//! `127.0.0.1:<free port>` that completes the handshake and closes. Test support: a failed
//! setup call panics, as a test's own would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer as Signer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// A certificate chain and the serving key.
#[derive(Debug)]
pub struct Chain {
    pub root: CertificateDer<'static>,
    /// From the one the root signed down to the one that signed the leaf.
    pub intermediates: Vec<CertificateDer<'static>>,
    pub leaf: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, name);
    params.distinguished_name = subject;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::CrlSign,
    ];
    params
}

impl Chain {
    /// A root, `intermediates` intermediate CAs, and a serving certificate for `ip`.
    pub fn new(intermediates: usize, ip: IpAddr) -> Self {
        let root_key = KeyPair::generate().unwrap();
        let root_params = ca_params("kany8s-test-oidc-root");
        let root = root_params.self_signed(&root_key).unwrap().der().clone();
        let mut signer = Signer::new(root_params, root_key);
        let mut chain = Vec::new();
        for n in 0..intermediates {
            let key = KeyPair::generate().unwrap();
            let params = ca_params(&format!("kany8s-test-oidc-intermediate-{n}"));
            chain.push(params.signed_by(&key, &signer).unwrap().der().clone());
            signer = Signer::new(params, key);
        }
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, "kany8s-test-oidc-issuer");
        params.distinguished_name = subject;
        params.subject_alt_names = vec![SanType::IpAddress(ip)];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = params.signed_by(&key, &signer).unwrap().der().clone();
        Self {
            root,
            intermediates: chain,
            leaf,
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }

    /// What the server presents: the leaf, then the intermediates upwards.
    fn presented(&self) -> Vec<CertificateDer<'static>> {
        std::iter::once(self.leaf.clone())
            .chain(self.intermediates.iter().rev().cloned())
            .collect()
    }
}

/// A running issuer; stops when dropped.
#[derive(Debug)]
pub struct Issuer {
    /// `https://127.0.0.1:<port>`.
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Issuer {
    /// Serves `chain` on a free loopback port.
    pub async fn start(chain: &Chain) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                chain.presented(),
                PrivateKeyDer::Pkcs8(chain.key.clone_key()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        Self {
            base: format!("https://127.0.0.1:{port}"),
            task,
        }
    }
}
