//! The reported control-plane version (provider.md §3.1 [CT-02]): what a backend's
//! `status.version` means for `status.versions`, normalised so that it equals `spec.version`
//! exactly once the backend has converged.

/// A parsed `major.minor[.patch]` core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Parsed {
    major: u64,
    minor: u64,
    patch: Option<u64>,
}

fn parse(text: &str) -> Option<Parsed> {
    let text = text.trim();
    let text = text
        .strip_prefix('v')
        .or_else(|| text.strip_prefix('V'))
        .unwrap_or(text);
    let core = text.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    if !(2..=3).contains(&parts.len())
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let number = |p: &str| p.parse::<u64>().ok();
    Some(Parsed {
        major: number(parts[0])?,
        minor: number(parts[1])?,
        patch: match parts.get(2) {
            Some(p) => Some(number(p)?),
            None => None,
        },
    })
}

/// What a backend's version report amounts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reported {
    /// No backend version (absent or empty).
    Absent,
    /// A version that does not parse; treated as absent, with a Warning event.
    Unparseable,
    /// The version to write into `status.versions`/`status.version`.
    Version(String),
}

/// [CT-02] `reported(spec, backend)`.
pub fn reported(spec: &str, backend: Option<&str>) -> Reported {
    let Some(backend) = backend.filter(|b| !b.trim().is_empty()) else {
        return Reported::Absent;
    };
    let Some(b) = parse(backend) else {
        return Reported::Unparseable;
    };
    let Some(s) = parse(spec) else {
        return Reported::Version(if backend == spec {
            spec.to_string()
        } else {
            backend.to_string()
        });
    };
    let patches_agree = match (s.patch, b.patch) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    if s.major == b.major && s.minor == b.minor && patches_agree {
        return Reported::Version(spec.to_string());
    }
    let prefix = if spec.trim().starts_with(['v', 'V']) {
        "v"
    } else {
        ""
    };
    Reported::Version(match s.patch {
        None => format!("{prefix}{}.{}", b.major, b.minor),
        Some(_) => format!("{prefix}{}.{}.{}", b.major, b.minor, b.patch.unwrap_or(0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// [CT-02] the normalisation table.
    #[rstest]
    #[case("v1.30.5", Some("1.30"), Reported::Version("v1.30.5".into()))]
    #[case("v1.30.5", Some("1.30.5-gke.1200"), Reported::Version("v1.30.5".into()))]
    #[case("v1.30.5", Some("1.30.5"), Reported::Version("v1.30.5".into()))]
    #[case("v1.30.5", Some("v1.30.5+k0s.0"), Reported::Version("v1.30.5".into()))]
    #[case("1.34", Some("1.34.2"), Reported::Version("1.34".into()))]
    #[case("v1.31.0", Some("1.30"), Reported::Version("v1.30.0".into()))]
    #[case("v1.31.2", Some("1.30.9-eks-abc"), Reported::Version("v1.30.9".into()))]
    #[case("1.34", Some("1.33.4"), Reported::Version("1.33".into()))]
    #[case("v1.30.5", Some("v1.30.4"), Reported::Version("v1.30.4".into()))]
    #[case("v1.30.5", Some("latest"), Reported::Unparseable)]
    #[case("v1.30.5", None, Reported::Absent)]
    #[case("v1.30.5", Some("  "), Reported::Absent)]
    #[case("stable", Some("stable"), Reported::Unparseable)]
    #[case("stable", Some("1.30.1"), Reported::Version("1.30.1".into()))]
    #[case("v1.30.5", Some("1.30.5.1"), Reported::Unparseable)]
    fn ct02_normalisation(
        #[case] spec: &str,
        #[case] backend: Option<&str>,
        #[case] expected: Reported,
    ) {
        assert_eq!(reported(spec, backend), expected);
    }
}
