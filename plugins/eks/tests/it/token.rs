//! [ROT-04]: the EKS token against fixed AWS SigV4 test vectors and against a signature
//! recomputed here, independently of the SDK (HMAC-SHA256 from the `hmac`/`sha2` crates, used
//! by this test only). Fixed credentials and clock; nothing reaches AWS.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use base64::Engine;
use hmac::{Hmac, Mac};
use kany8s_eks::token::{self, Presign};
use sha2::{Digest, Sha256};

/// Static credentials (no provider behind them).
fn static_keys(access: &str, secret: &str, session: Option<String>) -> Credentials {
    Credentials::new(access, secret, session, None, "static")
}

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// 2015-08-30T12:36:00Z, the clock of the AWS signing test suite.
fn suite_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
}

/// The `X-Amz-Signature` of a presigned URL.
fn query(url: &str) -> BTreeMap<String, String> {
    let (_, query) = url.split_once('?').unwrap();
    query
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// RFC 3986 encoding of everything but the unreserved characters, as SigV4 wants.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// [ROT-04]: `aws-sigv4` as the rotator drives it reproduces the AWS signing test suite's
/// query-signed vectors (`get-vanilla-query-order-key-case` and
/// `get-vanilla-with-session-token`, expiry 3600 s, service `service`, us-east-1).
#[test]
fn rot04_aws_sigv4_test_vectors() {
    let credentials = static_keys(ACCESS_KEY, SECRET_KEY, None);
    let url = token::presign(
        &Presign {
            url: "https://example.amazonaws.com/?Param2=value2&Param1=value1",
            headers: &[],
            region: "us-east-1",
            service: "service",
            time: suite_time(),
            expires: Duration::from_secs(3600),
        },
        &credentials,
    )
    .unwrap();
    let params = query(&url);
    assert_eq!(
        params["X-Amz-Signature"],
        "86012e2c9ad4d77369f5d81c11f75158aae4f895a085212cc6d3f923d300bed5"
    );
    assert_eq!(
        params["X-Amz-Credential"],
        "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"
    );
    assert_eq!(params["X-Amz-SignedHeaders"], "host");

    let session = static_keys(
        ACCESS_KEY,
        SECRET_KEY,
        Some("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267".into()),
    );
    let url = token::presign(
        &Presign {
            url: "https://example.amazonaws.com/",
            headers: &[],
            region: "us-east-1",
            service: "service",
            time: suite_time(),
            expires: Duration::from_secs(3600),
        },
        &session,
    )
    .unwrap();
    let params = query(&url);
    assert_eq!(
        params["X-Amz-Signature"],
        "7ff2b50b376cb4d151970630573d6291dc128cc5c2a12ffb237f73cc53f67b6c"
    );
    assert_eq!(
        params["X-Amz-Security-Token"],
        "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"
    );
}

/// The signature SigV4 gives a presigned GET of `url` with the signed `headers`, computed from
/// the specification (canonical request, string to sign, derived key).
fn recompute(url: &str, headers: &[(&str, &str)], secret: &str) -> String {
    let params = query(url);
    let (_, rest) = url.split_once("://").unwrap();
    let (host, path_and_query) = rest.split_once('/').unwrap();
    let path = format!("/{}", path_and_query.split('?').next().unwrap());
    let canonical_query: Vec<String> = params
        .iter()
        .filter(|(k, _)| k.as_str() != "X-Amz-Signature")
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let mut canonical_headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_lowercase(), v.trim().to_string()))
        .collect();
    canonical_headers.push(("host".into(), host.into()));
    canonical_headers.sort();
    let signed: Vec<&str> = canonical_headers.iter().map(|(k, _)| k.as_str()).collect();
    let canonical_request = format!(
        "GET\n{path}\n{}\n{}\n\n{}\n{}",
        canonical_query.join("&"),
        canonical_headers
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join("\n"),
        signed.join(";"),
        hex(&Sha256::digest(b"")),
    );
    let date_time = &params["X-Amz-Date"];
    let scope = params["X-Amz-Credential"]
        .split_once('/')
        .unwrap()
        .1
        .to_string();
    let mut parts = scope.split('/');
    let (date, region, service) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{date_time}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let key = hmac(format!("AWS4{secret}").as_bytes(), date);
    let key = hmac(&key, region);
    let key = hmac(&key, service);
    let key = hmac(&key, "aws4_request");
    hex(&hmac(&key, &string_to_sign))
}

/// The recomputation itself agrees with the AWS vector, so it is a fair judge below.
#[test]
fn rot04_independent_recomputation_matches_the_vector() {
    let url = "https://example.amazonaws.com/?Param2=value2&Param1=value1&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600";
    assert_eq!(
        recompute(url, &[], SECRET_KEY),
        "86012e2c9ad4d77369f5d81c11f75158aae4f895a085212cc6d3f923d300bed5"
    );
}

/// The presigned URL inside an EKS token.
fn decoded(token: &str) -> String {
    let payload = token
        .strip_prefix("k8s-aws-v1.")
        .expect("k8s-aws-v1. prefix");
    assert!(!payload.contains('='), "padding in {payload}");
    assert!(
        !payload.contains('+') && !payload.contains('/'),
        "not base64url"
    );
    String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// [ROT-04]: a token for fixed session credentials and a fixed clock: prefix, host, every
/// query parameter, the signed headers, the 14-minute expiration, and a signature that the
/// independent recomputation confirms.
#[test]
fn rot04_token_decodes_to_the_presigned_sts_request() {
    let credentials = static_keys(
        "ASIAEXAMPLEKEYID",
        SECRET_KEY,
        Some("FwoGZXIvYXdzEXAMPLE/session+token==".into()),
    );
    // 2024-01-02T03:04:05Z
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_164_645);
    let token = token::generate(&credentials, "eu-west-1", "eks-demo", now).unwrap();
    assert_eq!(token.expiration, now + Duration::from_secs(14 * 60));
    let url = decoded(&token.value);
    assert!(
        url.starts_with("https://sts.eu-west-1.amazonaws.com/?"),
        "{url}"
    );
    let params = query(&url);
    let keys: Vec<&str> = params.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "Action",
            "Version",
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-Security-Token",
            "X-Amz-Signature",
            "X-Amz-SignedHeaders"
        ]
    );
    assert_eq!(params["Action"], "GetCallerIdentity");
    assert_eq!(params["Version"], "2011-06-15");
    assert_eq!(params["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
    assert_eq!(
        params["X-Amz-Credential"],
        "ASIAEXAMPLEKEYID/20240102/eu-west-1/sts/aws4_request"
    );
    assert_eq!(params["X-Amz-Date"], "20240102T030405Z");
    assert_eq!(params["X-Amz-Expires"], "60");
    assert_eq!(params["X-Amz-SignedHeaders"], "host;x-k8s-aws-id");
    assert_eq!(
        params["X-Amz-Security-Token"],
        "FwoGZXIvYXdzEXAMPLE/session+token=="
    );
    assert_eq!(params["X-Amz-Signature"].len(), 64);
    assert_eq!(
        params["X-Amz-Signature"],
        recompute(&url, &[("x-k8s-aws-id", "eks-demo")], SECRET_KEY)
    );
    // The cluster is bound by the signature: another name gives another signature.
    assert_ne!(
        params["X-Amz-Signature"],
        recompute(&url, &[("x-k8s-aws-id", "other")], SECRET_KEY)
    );
    // The same inputs give the same token (no randomness), another second another one.
    assert_eq!(
        token::generate(&credentials, "eu-west-1", "eks-demo", now)
            .unwrap()
            .value,
        token.value
    );
    assert_ne!(
        token::generate(
            &credentials,
            "eu-west-1",
            "eks-demo",
            now + Duration::from_secs(1)
        )
        .unwrap()
        .value,
        token.value
    );
}

/// [ROT-04]: without a session token there is no `X-Amz-Security-Token`; partitions pick the
/// STS host.
#[test]
fn rot04_static_keys_and_partitions() {
    let credentials = static_keys("AKIAEXAMPLE", SECRET_KEY, None);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_164_645);
    let token = token::generate(&credentials, "cn-north-1", "demo", now).unwrap();
    let url = decoded(&token.value);
    assert!(
        url.starts_with("https://sts.cn-north-1.amazonaws.com.cn/?"),
        "{url}"
    );
    let params = query(&url);
    assert!(!params.contains_key("X-Amz-Security-Token"));
    assert_eq!(
        params["X-Amz-Signature"],
        recompute(&url, &[("x-k8s-aws-id", "demo")], SECRET_KEY)
    );
}
