//! The plugins' command lines ([ROT-01], [KB-01]): the process flags both share
//! ([`ProcessFlags`]: controller-runtime's names and defaults, `--kubeconfig`), the rotator's
//! [`Flags`], and Go duration syntax (`90s`, `5m`, `1h30m`). Any parse error is a message naming
//! the flag and exit code 1. The bootstrapper's flags are in [`crate::bootstrapper::flags`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::schedule::Policy;

/// The lease of the rotator's leader election ([ROT-01]).
pub const LEASE_NAME: &str = "f6b95f95.cluster.x-k8s.io";

/// The process flags both plugins share ([ROT-01], [KB-01]): controller-runtime's names and
/// defaults, and `--kubeconfig`.
#[derive(Debug, clap::Args)]
pub struct ProcessFlags {
    /// Metrics address (`:8443`, `127.0.0.1:9090`); `0` disables.
    #[arg(long, default_value = "0")]
    pub metrics_bind_address: String,
    /// Health probe address (`/healthz`, `/readyz`); `0` disables.
    #[arg(long, default_value = ":8081")]
    pub health_probe_bind_address: String,
    /// Reconcile only while holding the plugin's Lease.
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Serve metrics over HTTPS with TokenReview/SubjectAccessReview (not built: pass false).
    #[arg(long, num_args = 0..=1, default_value_t = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub metrics_secure: bool,
    /// Allow HTTP/2 on the metrics server (off: HTTP/2 Rapid Reset mitigation; this build
    /// serves HTTP/1.1 only).
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub enable_http2: bool,
    /// Only watch this namespace (empty: all).
    #[arg(long, default_value = "")]
    pub watch_namespace: String,
    /// Kubeconfig file (default: $KUBECONFIG, then in-cluster).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
}

/// The process flags checked ([`ProcessFlags::settings`]).
#[derive(Debug)]
pub struct ProcessSettings {
    pub metrics_address: Option<SocketAddr>,
    pub health_address: Option<SocketAddr>,
    pub leader_elect: bool,
    pub watch_namespace: Option<String>,
    pub kubeconfig: Option<PathBuf>,
    pub enable_http2: bool,
}

impl ProcessFlags {
    /// Checks the values clap cannot: addresses and the secure-metrics limitation.
    pub fn settings(&self) -> Result<ProcessSettings, String> {
        let metrics_address = parse_address("metrics-bind-address", &self.metrics_bind_address)?;
        if metrics_address.is_some() && self.metrics_secure {
            return Err("--metrics-secure: HTTPS metrics with TokenReview authentication are not built yet; pass --metrics-secure=false to serve /metrics over HTTP".into());
        }
        Ok(ProcessSettings {
            metrics_address,
            health_address: parse_address(
                "health-probe-bind-address",
                &self.health_probe_bind_address,
            )?,
            leader_elect: self.leader_elect,
            watch_namespace: Some(self.watch_namespace.trim().to_string())
                .filter(|n| !n.is_empty()),
            kubeconfig: self.kubeconfig.clone(),
            enable_http2: self.enable_http2,
        })
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "eks-kubeconfig-rotator",
    version,
    about = "Keeps <cluster>-kubeconfig Secrets with short-lived EKS tokens for opted-in Cluster API Clusters"
)]
pub struct Flags {
    #[command(flatten)]
    pub process: ProcessFlags,
    /// Refresh the token this long before it expires.
    #[arg(long, default_value = "5m", value_parser = parse_go_duration)]
    pub refresh_before: Duration,
    /// Look at every cluster at least this often.
    #[arg(long, default_value = "10m", value_parser = parse_go_duration)]
    pub max_refresh_interval: Duration,
    /// Wait this long while a prerequisite is missing.
    #[arg(long, default_value = "30s", value_parser = parse_go_duration)]
    pub failure_backoff: Duration,
}

/// Go's `time.ParseDuration` for non-negative durations: `0`, or a sequence of decimal numbers
/// with units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h` (`1h30m`, `1.5s`, `300ms`).
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration \"{text}\" (examples: 90s, 5m, 1h30m)");
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() || rest.starts_with('-') {
        return Err(invalid());
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = number.parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(invalid()),
        };
        nanos += value * scale;
        rest = &rest[unit_len..];
    }
    if !nanos.is_finite() || nanos > u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// `:8081` → all interfaces; `0` or empty → disabled.
pub fn parse_address(flag: &str, value: &str) -> Result<Option<SocketAddr>, String> {
    let text = match value {
        "" | "0" => return Ok(None),
        v if v.starts_with(':') => format!("0.0.0.0{v}"),
        v => v.to_string(),
    };
    text.parse()
        .map(Some)
        .map_err(|e| format!("--{flag}: \"{value}\": {e}"))
}

/// The rotator's flags checked and turned into settings.
#[derive(Debug)]
pub struct Settings {
    pub metrics_address: Option<SocketAddr>,
    pub health_address: Option<SocketAddr>,
    pub leader_elect: bool,
    pub watch_namespace: Option<String>,
    pub policy: Policy,
    pub kubeconfig: Option<PathBuf>,
}

impl Flags {
    /// Parses `args` (program name first); errors name the flag.
    pub fn parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Self::try_parse_from(args)
    }

    /// Checks the values clap cannot ([`ProcessFlags::settings`]).
    pub fn settings(&self) -> Result<Settings, String> {
        let process = self.process.settings()?;
        Ok(Settings {
            metrics_address: process.metrics_address,
            health_address: process.health_address,
            leader_elect: process.leader_elect,
            watch_namespace: process.watch_namespace,
            policy: Policy {
                refresh_before: self.refresh_before,
                max_refresh: self.max_refresh_interval,
                failure_backoff: self.failure_backoff,
                ..Policy::default()
            },
            kubeconfig: process.kubeconfig,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rstest::rstest;

    /// [ROT-01]: Go duration syntax.
    #[rstest]
    #[case("90s", 90_000)]
    #[case("5m", 300_000)]
    #[case("1h30m", 5_400_000)]
    #[case("1.5h", 5_400_000)]
    #[case("300ms", 300)]
    #[case("2m30.5s", 150_500)]
    #[case("0", 0)]
    #[case("0s", 0)]
    #[case("+10s", 10_000)]
    #[case("1500us", 1)]
    fn rot01_go_durations(#[case] text: &str, #[case] millis: u64) {
        assert_eq!(
            parse_go_duration(text).unwrap().as_millis(),
            u128::from(millis),
            "{text}"
        );
    }

    #[rstest]
    #[case("")]
    #[case("10")]
    #[case("m")]
    #[case("5 m")]
    #[case("-5m")]
    #[case("1.2.3s")]
    #[case("1d")]
    #[case(".s")]
    fn rot01_bad_durations(#[case] text: &str) {
        assert_eq!(
            parse_go_duration(text).unwrap_err(),
            format!("invalid duration \"{text}\" (examples: 90s, 5m, 1h30m)")
        );
    }

    /// [ROT-01]: every flag's default.
    #[test]
    fn rot01_defaults() {
        let flags = Flags::parse_args(["eks-kubeconfig-rotator"]).unwrap();
        assert_eq!(flags.process.metrics_bind_address, "0");
        assert_eq!(flags.process.health_probe_bind_address, ":8081");
        assert!(!flags.process.leader_elect);
        assert!(flags.process.metrics_secure);
        assert!(!flags.process.enable_http2);
        assert_eq!(flags.process.watch_namespace, "");
        let settings = flags.settings().unwrap();
        assert_eq!(settings.policy, Policy::default());
        assert_eq!(settings.metrics_address, None);
        assert_eq!(
            settings.health_address,
            Some("0.0.0.0:8081".parse().unwrap())
        );
        assert_eq!(settings.watch_namespace, None);
        assert_eq!(settings.kubeconfig, None);
    }

    /// [ROT-01]: values as the chart passes them, and errors naming the flag.
    #[test]
    fn rot01_values_and_errors() {
        let flags = Flags::parse_args([
            "eks-kubeconfig-rotator",
            "--leader-elect",
            "--metrics-bind-address=:8443",
            "--metrics-secure=false",
            "--enable-http2=false",
            "--watch-namespace=tenant-a",
            "--refresh-before=90s",
            "--max-refresh-interval=1h30m",
            "--failure-backoff=5s",
            "--kubeconfig=/tmp/kc",
        ])
        .unwrap();
        let settings = flags.settings().unwrap();
        assert!(settings.leader_elect);
        assert_eq!(
            settings.metrics_address,
            Some("0.0.0.0:8443".parse().unwrap())
        );
        assert_eq!(settings.watch_namespace.as_deref(), Some("tenant-a"));
        assert_eq!(settings.policy.refresh_before, Duration::from_secs(90));
        assert_eq!(settings.policy.max_refresh, Duration::from_secs(5400));
        assert_eq!(settings.policy.failure_backoff, Duration::from_secs(5));
        assert_eq!(settings.kubeconfig, Some(PathBuf::from("/tmp/kc")));
        let error = Flags::parse_args(["eks-kubeconfig-rotator", "--refresh-before=soon"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--refresh-before"), "{error}");
        assert!(error.contains("invalid duration \"soon\""), "{error}");
        let error = Flags::parse_args(["x", "--metrics-bind-address=:8443"])
            .unwrap()
            .settings()
            .unwrap_err();
        assert!(error.starts_with("--metrics-secure:"), "{error}");
        let error = Flags::parse_args(["x", "--health-probe-bind-address=nope:1"])
            .unwrap()
            .settings()
            .unwrap_err();
        assert!(
            error.starts_with("--health-probe-bind-address: \"nope:1\""),
            "{error}"
        );
    }
}
