//! EKS bearer tokens ([ROT-04]): a presigned, never sent, STS `GetCallerIdentity` URL, signed with
//! SigV4 query parameters by the AWS SDK's signer (`aws-sigv4`) for credentials from the AWS
//! default chain (`aws-config`). The token proves the caller's IAM identity to the EKS API server
//! through `aws-iam-authenticator` on the control plane.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine;

/// What every EKS token starts with.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The header binding the token to one EKS cluster (its value is the EKS cluster name).
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// `X-Amz-Expires` of the presigned URL.
pub const PRESIGN_EXPIRES: Duration = Duration::from_secs(60);
/// STS accepts a token for 15 minutes; the rotator treats it as expired one minute earlier.
pub const TOKEN_VALIDITY: Duration = Duration::from_secs(14 * 60);
const STS_QUERY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// Why no token could be made. Messages never carry a credential or a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("EKS cluster name is empty")]
    EmptyClusterName,
    #[error("region is empty")]
    EmptyRegion,
    #[error("loading AWS credentials: {0}")]
    Credentials(String),
    #[error("presigning the STS request: {0}")]
    Signing(String),
    #[error("the presigned token is empty")]
    EmptyToken,
}

/// A bearer token and when the rotator must have replaced it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub value: String,
    pub expiration: SystemTime,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("value", &"** redacted **")
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// [ROT-04]: the regional STS endpoint of `region`, in the region's partition.
pub fn sts_endpoint(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else if region.starts_with("us-isob-") {
        "sc2s.sgov.gov"
    } else if region.starts_with("us-isof-") {
        "csp.hci.ic.gov"
    } else if region.starts_with("us-iso-") {
        "c2s.ic.gov"
    } else if region.starts_with("eu-isoe-") {
        "cloud.adc-e.uk"
    } else {
        "amazonaws.com"
    };
    format!("https://sts.{region}.{suffix}/")
}

/// One GET request to presign with SigV4 query parameters.
#[derive(Clone, Copy, Debug)]
pub struct Presign<'a> {
    /// The full URL, query included.
    pub url: &'a str,
    /// Extra headers to sign (`host` always is).
    pub headers: &'a [(&'a str, &'a str)],
    pub region: &'a str,
    pub service: &'a str,
    pub time: SystemTime,
    pub expires: Duration,
}

/// Presigns `request` with the SDK signer: the payload hash of the empty body, the session token
/// (if any) in `X-Amz-Security-Token` and inside the signature. Returns the presigned URL.
pub fn presign(request: &Presign<'_>, credentials: &Credentials) -> Result<String, TokenError> {
    let signing = |e: &dyn std::fmt::Display| TokenError::Signing(e.to_string());
    let identity = Identity::from(credentials.clone());
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(request.expires);
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(request.region)
        .name(request.service)
        .time(request.time)
        .settings(settings)
        .build()
        .map_err(|e| signing(&e))?
        .into();
    let signable = SignableRequest::new(
        "GET",
        Cow::Borrowed(request.url),
        request.headers.iter().copied(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| signing(&e))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| signing(&e))?
        .into_parts();
    let mut presigned = http::Request::builder()
        .method("GET")
        .uri(request.url)
        .body(())
        .map_err(|e| signing(&e))?;
    instructions.apply_to_request_http1x(&mut presigned);
    Ok(presigned.uri().to_string())
}

/// [ROT-04]: the token for EKS cluster `cluster` in `region`, generated at `now`.
pub fn generate(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<Token, TokenError> {
    if cluster.trim().is_empty() {
        return Err(TokenError::EmptyClusterName);
    }
    if region.trim().is_empty() {
        return Err(TokenError::EmptyRegion);
    }
    let url = format!("{}?{STS_QUERY}", sts_endpoint(region));
    let presigned = presign(
        &Presign {
            url: &url,
            headers: &[(CLUSTER_ID_HEADER, cluster)],
            region,
            service: "sts",
            time: now,
            expires: PRESIGN_EXPIRES,
        },
        credentials,
    )?;
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(presigned);
    if encoded.is_empty() {
        return Err(TokenError::EmptyToken);
    }
    Ok(Token {
        value: format!("{TOKEN_PREFIX}{encoded}"),
        expiration: now + TOKEN_VALIDITY,
    })
}

/// Where credentials come from: the AWS default chain in production, anything in tests.
#[derive(Clone, Debug)]
pub struct TokenSource {
    credentials: SharedCredentialsProvider,
}

impl TokenSource {
    /// Any credentials provider (tests use static credentials or a failing provider).
    pub fn new(provider: impl ProvideCredentials + 'static) -> Self {
        Self {
            credentials: SharedCredentialsProvider::new(provider),
        }
    }

    /// [ROT-04]: the AWS default chain — environment, shared config/credentials files and
    /// profile, web identity (IRSA), EKS Pod Identity / container credentials, IMDSv2 — with a
    /// rustls HTTPS client for the providers that call AWS. Credentials are cached and refreshed
    /// by the SDK; static credentials never cause a network call.
    pub async fn default_chain() -> Self {
        use aws_smithy_http_client::tls;
        let https = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(https)
            .load()
            .await;
        match config.credentials_provider() {
            Some(credentials) => Self { credentials },
            None => Self::new(NoCredentials),
        }
    }

    /// Loads credentials and generates a token ([`generate`]).
    pub async fn token(
        &self,
        region: &str,
        cluster: &str,
        now: SystemTime,
    ) -> Result<Token, TokenError> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| TokenError::Credentials(error_chain(&e)))?;
        generate(&credentials, region, cluster, now)
    }
}

/// The chain of an error's messages, `a: b: c` (the SDK's own messages name providers and
/// causes, never secret values).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

/// A provider without credentials: what the rotator uses when the SDK configured none, and
/// what tests use for "missing credentials".
#[derive(Debug)]
pub struct NoCredentials;

impl ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::ready(Err(
            aws_credential_types::provider::error::CredentialsError::not_loaded(
                "no credentials provider is configured",
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn static_keys(access: &str, secret: &str, session: Option<String>) -> Credentials {
        Credentials::new(access, secret, session, None, "static")
    }

    #[test]
    fn rot04_partition_aware_endpoints() {
        assert_eq!(
            sts_endpoint("us-west-2"),
            "https://sts.us-west-2.amazonaws.com/"
        );
        assert_eq!(
            sts_endpoint("cn-north-1"),
            "https://sts.cn-north-1.amazonaws.com.cn/"
        );
        assert_eq!(
            sts_endpoint("us-gov-west-1"),
            "https://sts.us-gov-west-1.amazonaws.com/"
        );
        assert_eq!(
            sts_endpoint("us-iso-east-1"),
            "https://sts.us-iso-east-1.c2s.ic.gov/"
        );
        assert_eq!(
            sts_endpoint("us-isob-east-1"),
            "https://sts.us-isob-east-1.sc2s.sgov.gov/"
        );
    }

    #[test]
    fn rot04_empty_inputs_are_errors_and_debug_redacts() {
        let credentials = static_keys("AKID", "SECRET", None);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert!(matches!(
            generate(&credentials, "us-east-1", " ", now),
            Err(TokenError::EmptyClusterName)
        ));
        assert!(matches!(
            generate(&credentials, "", "demo", now),
            Err(TokenError::EmptyRegion)
        ));
        let token = generate(&credentials, "us-east-1", "demo", now).unwrap();
        assert_eq!(token.expiration, now + Duration::from_secs(840));
        let debug = format!("{token:?}");
        assert!(
            !debug.contains(&token.value) && debug.contains("redacted"),
            "{debug}"
        );
    }

    #[tokio::test]
    async fn rot04_credential_failures_are_token_errors() {
        let source = TokenSource::new(NoCredentials);
        let error = source
            .token("us-east-1", "demo", SystemTime::now())
            .await
            .unwrap_err();
        assert!(
            error.to_string().starts_with("loading AWS credentials: "),
            "{error}"
        );
    }
}
