//! The whole suite: start the oracle, run every sequence, write the differences file.

use std::path::PathBuf;

use crate::FidelityError;
use crate::report::Report;
use crate::run::{UpstreamSide, run_all, start_upstream};

/// Where the detailed differences go.
pub fn differences_path() -> PathBuf {
    acceptance::upstream::repository_root().join("target/fidelity/differences.md")
}

/// Starts the upstream stack (etcd, kube-apiserver, kube-controller-manager), runs the
/// sequences (filtered by name or area), writes [`differences_path`], stops the stack.
pub async fn run(filter: Option<&str>) -> Result<Report, FidelityError> {
    let dir = tempfile::Builder::new()
        .prefix("fidelity-upstream-")
        .tempdir()
        .map_err(|e| FidelityError::Io("a temporary folder".into(), e))?;
    let upstream = start_upstream(dir.path()).await?;
    tracing::info!(timings = ?upstream.timings, "upstream stack ready");
    let side = UpstreamSide::of(&upstream).await?;
    let report = run_all(&side, &crate::sequences::all(), filter).await;
    let path = differences_path();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| FidelityError::Io(parent.display().to_string(), e))?;
    }
    std::fs::write(&path, report.differences())
        .map_err(|e| FidelityError::Io(path.display().to_string(), e))?;
    drop(upstream);
    Ok(report)
}
