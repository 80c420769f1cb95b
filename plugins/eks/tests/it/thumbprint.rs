//! [KB-04] `eks.kany8s.io/oidc-thumbprint-auto` against a TLS issuer on loopback (rcgen chains,
//! a rustls listener): the thumbprint is the SHA-1 of the top intermediate CA; chains that do not
//! verify, or have no intermediate, are "unverified" (the bootstrapper keeps what it has); an
//! issuer that cannot be asked is a plain failure.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use kany8s_eks::bootstrapper::thumbprint::{Error, Resolver, sha1_hex};
use kany8s_eks::testing::issuer::{Chain, Issuer};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn trusting(chain: &Chain) -> Resolver {
    Resolver::with_roots([&chain.root]).unwrap()
}

#[tokio::test]
async fn kb04_thumbprint_is_the_top_intermediate_ca() {
    let chain = Chain::new(1, LOOPBACK);
    let issuer = Issuer::start(&chain).await;
    let url = format!("{}/id/0123456789ABCDEF", issuer.base);
    let thumbprint = trusting(&chain).thumbprint(&url).await.unwrap();
    assert_eq!(thumbprint, sha1_hex(&chain.intermediates[0]));
    assert_eq!(thumbprint.len(), 40);
    assert!(
        thumbprint
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{thumbprint}"
    );
    assert_ne!(thumbprint, sha1_hex(&chain.root));
    assert_ne!(thumbprint, sha1_hex(&chain.leaf));
}

/// Root → A → B → leaf: the top intermediate is A, the one the root signed.
#[tokio::test]
async fn kb04_thumbprint_with_two_intermediates_is_the_one_the_root_signed() {
    let chain = Chain::new(2, LOOPBACK);
    let issuer = Issuer::start(&chain).await;
    let thumbprint = trusting(&chain).thumbprint(&issuer.base).await.unwrap();
    assert_eq!(thumbprint, sha1_hex(&chain.intermediates[0]));
    assert_ne!(thumbprint, sha1_hex(&chain.intermediates[1]));
}

fn assert_unverified(result: Result<String, Error>, expected: &str) {
    let error = result.unwrap_err();
    assert!(error.is_unverified(), "{error}");
    assert!(error.to_string().contains(expected), "{error}");
}

#[tokio::test]
async fn kb04_no_intermediate_untrusted_root_or_wrong_host_are_unverified() {
    let direct = Chain::new(0, LOOPBACK);
    let issuer = Issuer::start(&direct).await;
    assert_unverified(
        trusting(&direct).thumbprint(&issuer.base).await,
        "no intermediate CA",
    );

    let chain = Chain::new(1, LOOPBACK);
    let issuer = Issuer::start(&chain).await;
    let stranger = Chain::new(1, LOOPBACK);
    assert_unverified(
        trusting(&stranger).thumbprint(&issuer.base).await,
        "no path to a trusted root",
    );

    let elsewhere = Chain::new(1, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
    let issuer = Issuer::start(&elsewhere).await;
    assert_unverified(
        trusting(&elsewhere).thumbprint(&issuer.base).await,
        "not valid for 127.0.0.1",
    );
}

#[tokio::test]
async fn kb04_an_issuer_that_cannot_be_asked_is_a_failure() {
    let chain = Chain::new(1, LOOPBACK);
    // A port nothing listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = trusting(&chain)
        .thumbprint(&format!("https://127.0.0.1:{port}/id/x"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error}");
    assert!(!error.is_unverified());

    // Accepts the connection, never answers the handshake.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut resolver = trusting(&chain);
    resolver.timeout = Duration::from_millis(300);
    let error = resolver
        .thumbprint(&format!("https://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error}");
    drop(silent);

    let error = trusting(&chain)
        .thumbprint("http://127.0.0.1:1/id/x")
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidIssuer { .. }), "{error}");
}
