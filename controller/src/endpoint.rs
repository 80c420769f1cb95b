//! Parsing of a backend's `status.endpoint` into the Cluster API `{host, port}` (provider.md
//! §4.3). Errors never echo the raw input ([EP-03]): at most one offending token appears.

use std::net::Ipv6Addr;

/// Why an endpoint was rejected; `Display` is the spec's message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("endpoint is empty")]
    Empty,
    #[error("parse endpoint: invalid control character in URL")]
    ControlCharacter,
    #[error("parse endpoint: invalid URL escape")]
    InvalidEscape,
    #[error("parse endpoint: missing protocol scheme")]
    MissingScheme,
    #[error("parse endpoint: invalid scheme")]
    InvalidScheme,
    #[error("unsupported scheme \"{0}\"")]
    UnsupportedScheme(String),
    #[error("userinfo is not supported")]
    Userinfo,
    #[error("query is not supported")]
    Query,
    #[error("fragment is not supported")]
    Fragment,
    #[error("path is not supported")]
    Path,
    #[error("host is empty")]
    HostEmpty,
    #[error("port is empty")]
    PortEmpty,
    #[error("parse endpoint: missing ']' in host")]
    MissingBracket,
    #[error("parse endpoint: invalid IPv6 address in host")]
    InvalidIpv6,
    #[error("parse endpoint: unexpected characters after IPv6 literal")]
    AfterIpv6,
    #[error("parse endpoint: IPv6 literal must be enclosed in brackets")]
    UnbracketedIpv6,
    #[error("parse endpoint: invalid character \"{0}\" in host name")]
    HostCharacter(char),
    #[error("invalid port \"{0}\"")]
    PortNotNumeric(String),
    #[error("invalid port {0}")]
    PortOutOfRange(String),
}

/// A parsed endpoint: the host without brackets, case preserved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// `host:port`, with IPv6 hosts bracketed ([EP-02]).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// [EP-01]: the checks in the spec's order; the first failure is the result.
pub fn parse_endpoint(raw: &str) -> Result<Endpoint, EndpointError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(EndpointError::Empty);
    }
    let text = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("https://{trimmed}")
    };
    if text.chars().any(|c| c.is_ascii_control()) {
        return Err(EndpointError::ControlCharacter);
    }
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return Err(EndpointError::InvalidEscape);
        }
    }
    let (scheme, rest) = text.split_once("://").ok_or(EndpointError::MissingScheme)?;
    if scheme.is_empty() {
        return Err(EndpointError::MissingScheme);
    }
    let mut chars = scheme.chars();
    let valid_scheme = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'));
    if !valid_scheme {
        return Err(EndpointError::InvalidScheme);
    }
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" {
        return Err(EndpointError::UnsupportedScheme(scheme));
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_end);
    let (before_fragment, fragment) = after.split_once('#').unwrap_or((after, ""));
    let (path, query) = before_fragment
        .split_once('?')
        .unwrap_or((before_fragment, ""));
    if authority.contains('@') {
        return Err(EndpointError::Userinfo);
    }
    if !query.is_empty() {
        return Err(EndpointError::Query);
    }
    if !fragment.is_empty() {
        return Err(EndpointError::Fragment);
    }
    if !path.is_empty() && path != "/" {
        return Err(EndpointError::Path);
    }
    if authority.is_empty() {
        return Err(EndpointError::HostEmpty);
    }
    if authority.ends_with(':') {
        return Err(EndpointError::PortEmpty);
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (inside, after) = bracketed
            .split_once(']')
            .ok_or(EndpointError::MissingBracket)?;
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err(EndpointError::InvalidIpv6);
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(EndpointError::AfterIpv6)?),
        };
        (inside, port)
    } else {
        if authority.matches(':').count() > 1 {
            return Err(EndpointError::UnbracketedIpv6);
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err(EndpointError::HostEmpty);
        }
        if let Some(c) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')))
        {
            return Err(EndpointError::HostCharacter(c));
        }
        (host, port)
    };
    let port = match port {
        None => 443,
        Some(text) => parse_port(text)?,
    };
    Ok(Endpoint {
        host: host.to_string(),
        port,
    })
}

fn parse_port(text: &str) -> Result<u16, EndpointError> {
    if text.is_empty() {
        return Err(EndpointError::PortEmpty);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EndpointError::PortNotNumeric(text.to_string()));
    }
    let digits = text.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    match digits.parse::<u32>() {
        Ok(n @ 1..=65535) => {
            u16::try_from(n).map_err(|_| EndpointError::PortOutOfRange(digits.into()))
        }
        _ => Err(EndpointError::PortOutOfRange(digits.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    /// [EP-04] the required cases.
    #[rstest]
    #[case("example.com", Ok(("example.com", 443)))]
    #[case("example.com:6443", Ok(("example.com", 6443)))]
    #[case("https://example.com", Ok(("example.com", 443)))]
    #[case("https://example.com/", Ok(("example.com", 443)))]
    #[case("https://example.com:6443", Ok(("example.com", 6443)))]
    #[case("  https://example.com:6443  ", Ok(("example.com", 6443)))]
    #[case("", Err("endpoint is empty"))]
    #[case("   ", Err("endpoint is empty"))]
    #[case("http://example.com", Err("unsupported scheme \"http\""))]
    #[case("https://user:pass@example.com", Err("userinfo is not supported"))]
    #[case("example.com:abc", Err("invalid port \"abc\""))]
    #[case("example.com:", Err("port is empty"))]
    #[case("https://example.com/path", Err("path is not supported"))]
    #[case("https://example.com?x=y", Err("query is not supported"))]
    #[case("https://example.com#frag", Err("fragment is not supported"))]
    #[case("example.com:0", Err("invalid port 0"))]
    #[case("example.com:65536", Err("invalid port 65536"))]
    #[case("user:pass@example.com/%zz", Err("parse endpoint: invalid URL escape"))]
    #[case("[::1]:6443", Ok(("::1", 6443)))]
    #[case("https://[2001:db8::1]", Ok(("2001:db8::1", 443)))]
    #[case("[::1]", Ok(("::1", 443)))]
    #[case("[::1]:", Err("port is empty"))]
    #[case("[::1", Err("parse endpoint: missing ']' in host"))]
    #[case(
        "::1",
        Err("parse endpoint: IPv6 literal must be enclosed in brackets")
    )]
    #[case("[zz::1]:6443", Err("parse endpoint: invalid IPv6 address in host"))]
    #[case("HTTPS://Example.COM:6443", Ok(("Example.COM", 6443)))]
    #[case("https://", Err("host is empty"))]
    #[case("https://example.com:00443", Ok(("example.com", 443)))]
    #[case(
        "exa mple.com",
        Err("parse endpoint: invalid character \" \" in host name")
    )]
    #[case("10.0.0.1:6443", Ok(("10.0.0.1", 6443)))]
    #[case("https://example.com?", Ok(("example.com", 443)))]
    #[case("https://example.com#", Ok(("example.com", 443)))]
    #[case("://example.com", Err("parse endpoint: missing protocol scheme"))]
    #[case("https://:6443", Err("host is empty"))]
    #[case(
        "demo-svc.default.svc.cluster.local:6443",
        Ok(("demo-svc.default.svc.cluster.local", 6443))
    )]
    #[case("user:pass@example.com://x", Err("parse endpoint: invalid scheme"))]
    #[case("ftp://user:pass@example.com", Err("unsupported scheme \"ftp\""))]
    #[case(
        "[::1]x",
        Err("parse endpoint: unexpected characters after IPv6 literal")
    )]
    #[case(
        "example.com:99999999999999999999",
        Err("invalid port 99999999999999999999")
    )]
    #[case("a\u{7}b", Err("parse endpoint: invalid control character in URL"))]
    fn ep04_required_cases(#[case] input: &str, #[case] expected: Result<(&str, u16), &str>) {
        let got = parse_endpoint(input)
            .map(|e| (e.host, e.port))
            .map_err(|e| e.to_string());
        let expected = expected
            .map(|(h, p)| (h.to_string(), p))
            .map_err(str::to_string);
        assert_eq!(got, expected, "input {input:?}");
    }

    /// [EP-03] case 17: the no-leak rule.
    #[test]
    fn ep03_errors_never_echo_the_input() {
        let message = parse_endpoint("user:pass@example.com/%zz")
            .unwrap_err()
            .to_string();
        for secret in [
            "user:pass@example.com/%zz",
            "https://user:pass@example.com/%zz",
            "user:pass",
        ] {
            assert!(!message.contains(secret), "{message}");
        }
    }

    fn dns_host() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\\.[a-z0-9]{1,8}){0,3}")
            .unwrap_or_else(|_| unreachable!())
    }

    proptest! {
        /// [EP-05] rendered endpoints round-trip; userinfo never leaks into errors.
        #[test]
        fn ep05_round_trip(host in dns_host(), port in 1u16..=65535, v6 in any::<[u16; 8]>(), use_v6 in any::<bool>(), with_scheme in any::<bool>()) {
            let host = if use_v6 { Ipv6Addr::from(v6).to_string() } else { host };
            let endpoint = Endpoint { host: host.clone(), port };
            let text = if with_scheme { format!("https://{}", endpoint.authority()) } else { endpoint.authority() };
            prop_assert_eq!(parse_endpoint(&text), Ok(endpoint));
        }

        #[test]
        fn ep05_userinfo_never_leaks(user in "[a-zA-Z0-9]{3,8}", password in "[a-zA-Z0-9]{3,8}", tail in "[ -~]{0,12}") {
            let input = format!("{user}:{password}@example.com{tail}");
            if let Err(e) = parse_endpoint(&input) {
                let message = e.to_string();
                let userinfo = format!("{user}:{password}");
                prop_assert!(!message.contains(&userinfo));
                prop_assert!(!message.contains(&input));
            }
        }
    }
}
