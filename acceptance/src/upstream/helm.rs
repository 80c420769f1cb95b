//! helm as `make upstream` builds it (`<bin_dir>/helm`), for the scenarios that install a chart
//! of this repository on the upstream target. helm talks only to the target (the admin
//! kubeconfig) and keeps its cache and configuration in a temporary folder.

use std::path::{Path, PathBuf};

/// Why a helm command failed.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    #[error(
        "{0} does not exist: run `make upstream` (or set UPSTREAM_BIN to the folder holding helm)"
    )]
    Missing(PathBuf),
    #[error("helm {command}: {message}")]
    Failed { command: String, message: String },
}

/// The helm binary of the upstream programs.
pub fn path() -> PathBuf {
    super::bin_dir().join("helm")
}

/// Whether `test`, which needs helm, may run: true when it is built; otherwise false after
/// printing why it is skipped, or, when `CI` is set, a panic that fails the test.
pub fn require(test: &str) -> bool {
    if path().is_file() {
        return true;
    }
    match crate::harness::missing_tool("helm", test, std::env::var_os("CI").is_some()) {
        Ok(skipped) => {
            eprintln!("{skipped} ({})", HelmError::Missing(path()));
            false
        }
        Err(failure) => panic!("{failure} ({})", HelmError::Missing(path())),
    }
}

/// Runs helm with `args` against the cluster of `kubeconfig`; returns its standard output.
pub async fn run(kubeconfig: &Path, args: &[String]) -> Result<String, HelmError> {
    let helm = path();
    if !helm.is_file() {
        return Err(HelmError::Missing(helm));
    }
    let command = args.join(" ");
    let failed = |message: String| HelmError::Failed {
        command: command.clone(),
        message,
    };
    let home = tempfile::tempdir().map_err(|e| failed(format!("a temporary folder: {e}")))?;
    let output = tokio::process::Command::new(&helm)
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(failed(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

/// `helm install release chart -n namespace --set key=value…` (no `--wait`: no Pod of the
/// chart ever runs a container here).
pub async fn install(
    kubeconfig: &Path,
    release: &str,
    chart: &Path,
    namespace: &str,
    values: &[(&str, String)],
) -> Result<String, HelmError> {
    let mut args = vec![
        "install".to_string(),
        release.to_string(),
        chart.display().to_string(),
        "--namespace".to_string(),
        namespace.to_string(),
    ];
    for (key, value) in values {
        args.push("--set".into());
        args.push(format!("{key}={value}"));
    }
    run(kubeconfig, &args).await
}

/// `helm uninstall release -n namespace`.
pub async fn uninstall(
    kubeconfig: &Path,
    release: &str,
    namespace: &str,
) -> Result<String, HelmError> {
    let args = ["uninstall", release, "--namespace", namespace].map(str::to_string);
    run(kubeconfig, &args).await
}
