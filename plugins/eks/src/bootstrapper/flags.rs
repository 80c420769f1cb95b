//! The bootstrapper's command line ([KB-01]): the shared process flags, `--failure-backoff`
//! (30s), `--steady-state-requeue` (10m), `--karpenter-chart-version` (empty = 1.0.8), and
//! `--aws-endpoint-url` (where EC2 calls go, e.g. an emulator on loopback; without it the SDK's
//! own `AWS_ENDPOINT_URL_EC2` / `AWS_ENDPOINT_URL` or the regional endpoint). Durations use Go syntax; a parse error names the flag and the
//! process exits with code 1.

use std::time::Duration;

use clap::Parser;

use crate::flags::{ProcessFlags, ProcessSettings, parse_go_duration};

/// The lease of the bootstrapper's leader election ([KB-01]).
pub const LEASE_NAME: &str = "8b9ae7d0.cluster.x-k8s.io";

#[derive(Debug, Parser)]
#[command(
    name = "eks-karpenter-bootstrapper",
    version,
    about = "Provisions Karpenter (IAM, OIDC, access entry, Flux HelmRelease, default NodePool) for opted-in Kany8s EKS Clusters"
)]
pub struct Flags {
    #[command(flatten)]
    pub process: ProcessFlags,
    /// Wait this long while a prerequisite is missing.
    #[arg(long, default_value = "30s", value_parser = parse_go_duration)]
    pub failure_backoff: Duration,
    /// Look at every ready cluster again this often.
    #[arg(long, default_value = "10m", value_parser = parse_go_duration)]
    pub steady_state_requeue: Duration,
    /// Karpenter chart tag (empty: 1.0.8); a Cluster annotation beats it.
    #[arg(long, default_value = "")]
    pub karpenter_chart_version: String,
    /// EC2 endpoint URL (default: the SDK's: AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL, else the
    /// regional endpoint).
    #[arg(long, value_name = "URL")]
    pub aws_endpoint_url: Option<String>,
}

/// The timings of [KB-07].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub failure_backoff: Duration,
    pub steady_state: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            failure_backoff: Duration::from_secs(30),
            steady_state: Duration::from_secs(600),
        }
    }
}

/// The flags checked.
#[derive(Debug)]
pub struct Settings {
    pub process: ProcessSettings,
    pub timing: Timing,
    /// The chart tag of [KB-05] (the default filled in).
    pub chart_version: String,
    pub aws_endpoint_url: Option<String>,
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

    /// Checks the values clap cannot.
    pub fn settings(&self) -> Result<Settings, String> {
        let process = self.process.settings()?;
        if self.failure_backoff.is_zero() {
            return Err("--failure-backoff: must be more than 0".into());
        }
        if self.steady_state_requeue.is_zero() {
            return Err("--steady-state-requeue: must be more than 0".into());
        }
        let endpoint = self
            .aws_endpoint_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty());
        if let Some(url) = endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!(
                "--aws-endpoint-url: \"{url}\" is not an http:// or https:// URL"
            ));
        }
        Ok(Settings {
            process,
            timing: Timing {
                failure_backoff: self.failure_backoff,
                steady_state: self.steady_state_requeue,
            },
            chart_version: Some(self.karpenter_chart_version.trim())
                .filter(|v| !v.is_empty())
                .unwrap_or(super::DEFAULT_CHART_VERSION)
                .to_string(),
            aws_endpoint_url: endpoint.map(str::to_string),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        Flags::parse_args(std::iter::once("eks-karpenter-bootstrapper").chain(args.iter().copied()))
    }

    /// [KB-01]: every default, and the lease name.
    #[test]
    fn kb01_defaults() {
        let settings = parse(&[]).unwrap().settings().unwrap();
        assert_eq!(settings.timing, Timing::default());
        assert_eq!(settings.timing.failure_backoff, Duration::from_secs(30));
        assert_eq!(settings.timing.steady_state, Duration::from_secs(600));
        assert_eq!(settings.chart_version, "1.0.8");
        assert!(!settings.process.leader_elect);
        assert_eq!(settings.process.metrics_address, None);
        assert_eq!(
            settings.process.health_address,
            Some("0.0.0.0:8081".parse().unwrap())
        );
        assert_eq!(settings.process.watch_namespace, None);
        assert_eq!(LEASE_NAME, "8b9ae7d0.cluster.x-k8s.io");
    }

    /// [KB-01]: values in Go duration syntax, and errors that name the flag.
    #[test]
    fn kb01_values_and_errors() {
        let settings = parse(&[
            "--leader-elect",
            "--failure-backoff=1m30s",
            "--steady-state-requeue=1h",
            "--karpenter-chart-version= 1.1.0 ",
            "--aws-endpoint-url=http://127.0.0.1:5000",
            "--watch-namespace=tenant-a",
        ])
        .unwrap()
        .settings()
        .unwrap();
        assert!(settings.process.leader_elect);
        assert_eq!(settings.timing.failure_backoff, Duration::from_secs(90));
        assert_eq!(settings.timing.steady_state, Duration::from_secs(3600));
        assert_eq!(settings.chart_version, "1.1.0");
        assert_eq!(
            settings.aws_endpoint_url.as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(
            settings.process.watch_namespace.as_deref(),
            Some("tenant-a")
        );
        for (flag, value) in [
            ("--failure-backoff", "soon"),
            ("--steady-state-requeue", "10"),
        ] {
            let error = parse(&[&format!("{flag}={value}")])
                .unwrap_err()
                .to_string();
            assert!(error.contains(flag), "{error}");
            assert!(
                error.contains(&format!("invalid duration \"{value}\"")),
                "{error}"
            );
        }
        let error = parse(&["--aws-endpoint-url=127.0.0.1:5000"])
            .unwrap()
            .settings()
            .unwrap_err();
        assert!(error.starts_with("--aws-endpoint-url:"), "{error}");
        let error = parse(&["--failure-backoff=0s"])
            .unwrap()
            .settings()
            .unwrap_err();
        assert!(error.starts_with("--failure-backoff:"), "{error}");
        // The rotator's refresh flags are not the bootstrapper's.
        assert!(parse(&["--refresh-before=5m"]).is_err());
    }
}
