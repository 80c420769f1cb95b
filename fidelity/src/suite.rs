//! The whole suite: start the oracles, run every sequence, write the differences file.

use std::path::PathBuf;

use crate::report::Report;
use crate::run::{UpstreamSide, run_all, start_upstream};
use crate::{FidelityError, Sequence, Stack};

/// Where the detailed differences go.
pub fn differences_path() -> PathBuf {
    acceptance::upstream::repository_root().join("target/fidelity/differences.md")
}

/// Starts the upstream stacks (etcd, kube-apiserver, kube-controller-manager; then the same
/// with kro for the fake-kro differential), runs the sequences (filtered by name or area) on
/// the stack each needs, one stack at a time, writes [`differences_path`], stops the stacks.
pub async fn run(filter: Option<&str>) -> Result<Report, FidelityError> {
    let started = std::time::Instant::now();
    let all = crate::sequences::all();
    let mut report = Report {
        sequences: Vec::new(),
        wall: std::time::Duration::ZERO,
    };
    for stack in [Stack::Kubernetes, Stack::Kro] {
        let sequences: Vec<Sequence> = all
            .iter()
            .filter(|s| s.stack == stack && selected(s, filter))
            .copied()
            .collect();
        if sequences.is_empty() {
            continue;
        }
        let dir = tempfile::Builder::new()
            .prefix("fidelity-upstream-")
            .tempdir()
            .map_err(|e| FidelityError::Io("a temporary folder".into(), e))?;
        let upstream = start_upstream(dir.path(), stack).await?;
        tracing::info!(?stack, timings = ?upstream.timings, "upstream stack ready");
        let side = UpstreamSide::of(&upstream).await?;
        let part = run_all(&side, &sequences, None).await;
        report.sequences.extend(part.sequences);
        drop(upstream);
    }
    report
        .sequences
        .sort_by(|a, b| (a.area, a.name).cmp(&(b.area, b.name)));
    report.wall = started.elapsed();
    let path = differences_path();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| FidelityError::Io(parent.display().to_string(), e))?;
    }
    std::fs::write(&path, report.differences())
        .map_err(|e| FidelityError::Io(path.display().to_string(), e))?;
    Ok(report)
}

/// Whether `sequence` is selected by `filter` (a part of its name or of its area's name).
pub fn selected(sequence: &Sequence, filter: Option<&str>) -> bool {
    filter.is_none_or(|f| sequence.name.contains(f) || sequence.area.name().contains(f))
}
