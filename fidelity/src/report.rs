//! The report: one table (area, sequences, checks, equal, different, explained), the summary
//! line, and the detailed differences as Markdown.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use crate::Area;
use crate::compare::{Diff, Explain, Outcome};

/// One compared part of one observation.
#[derive(Clone, Debug)]
pub struct CheckResult {
    pub label: String,
    pub check: String,
    pub outcome: Outcome,
}

/// One sequence's comparison.
#[derive(Clone, Debug)]
pub struct SequenceResult {
    pub area: Area,
    pub name: &'static str,
    pub ids: &'static [&'static str],
    pub checks: Vec<CheckResult>,
    /// A side that did not run to its end (counted as one different check).
    pub errors: Vec<String>,
    /// Explanations declared but matching no difference (stale: the difference is gone).
    pub unused: Vec<Explain>,
    pub elapsed: Duration,
}

/// Counts of one row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub sequences: usize,
    pub checks: usize,
    pub equal: usize,
    pub different: usize,
    pub explained: usize,
}

impl Counts {
    pub fn unexplained(&self) -> usize {
        self.different - self.explained
    }

    fn add(&mut self, result: &SequenceResult) {
        self.sequences += 1;
        for check in &result.checks {
            self.checks += 1;
            match check.outcome {
                Outcome::Equal => self.equal += 1,
                Outcome::Explained(..) => {
                    self.different += 1;
                    self.explained += 1;
                }
                Outcome::Different(_) => self.different += 1,
            }
        }
    }
}

/// The whole run.
#[derive(Clone, Debug)]
pub struct Report {
    pub sequences: Vec<SequenceResult>,
    pub wall: Duration,
}

impl Report {
    pub fn counts(&self, area: Option<Area>) -> Counts {
        let mut counts = Counts::default();
        for s in self
            .sequences
            .iter()
            .filter(|s| area.is_none_or(|a| s.area == a))
        {
            counts.add(s);
        }
        counts
    }

    /// The table, the wall time, then the summary line (the last line).
    pub fn table(&self) -> String {
        let mut out = String::new();
        let row = |out: &mut String, name: &str, c: Counts| {
            let _ = writeln!(
                out,
                "{:<32} {:>9} {:>6} {:>6} {:>9} {:>9}",
                name, c.sequences, c.checks, c.equal, c.different, c.explained
            );
        };
        let _ = writeln!(
            out,
            "{:<32} {:>9} {:>6} {:>6} {:>9} {:>9}",
            "area", "sequences", "checks", "equal", "different", "explained"
        );
        for area in Area::ALL {
            let c = self.counts(Some(area));
            if c.sequences > 0 {
                row(&mut out, area.name(), c);
            }
        }
        row(&mut out, "total", self.counts(None));
        let _ = writeln!(out, "wall time: {:.1} s", self.wall.as_secs_f64());
        out.push_str(&self.summary());
        out
    }

    /// `fidelity: N checks, D different, E explained, U unexplained`.
    pub fn summary(&self) -> String {
        let t = self.counts(None);
        format!(
            "fidelity: {} checks, {} different, {} explained, {} unexplained",
            t.checks,
            t.different,
            t.explained,
            t.unexplained()
        )
    }

    /// Every difference, explained or not, per sequence; and stale explanations.
    pub fn differences(&self) -> String {
        let mut out =
            String::from("# Fidelity differences (embedded vs upstream kube-apiserver)\n\n");
        let _ = writeln!(out, "{}\n", self.summary());
        for s in &self.sequences {
            let interesting: Vec<&CheckResult> = s
                .checks
                .iter()
                .filter(|c| !matches!(c.outcome, Outcome::Equal))
                .collect();
            if interesting.is_empty() && s.errors.is_empty() && s.unused.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "## {} / `{}` ({})\n",
                s.area.name(),
                s.name,
                s.ids.join(", ")
            );
            for e in &s.errors {
                let _ = writeln!(
                    out,
                    "- **did not finish**: {}",
                    short(&Some(Value::String(e.clone())))
                );
            }
            for c in interesting {
                match &c.outcome {
                    Outcome::Different(diffs) => {
                        let _ = writeln!(out, "- **UNEXPLAINED** `{}` {}", c.label, c.check);
                        write_diffs(&mut out, diffs);
                    }
                    Outcome::Explained(diffs, reasons) => {
                        let _ = writeln!(
                            out,
                            "- explained `{}` {}: {}",
                            c.label,
                            c.check,
                            reasons.join("; ")
                        );
                        write_diffs(&mut out, diffs);
                    }
                    Outcome::Equal => {}
                }
            }
            for e in &s.unused {
                let _ = writeln!(
                    out,
                    "- stale explanation `{}` ({}): no difference there any more",
                    e.path, e.reason
                );
            }
            out.push('\n');
        }
        out
    }

    /// Whether any difference is unexplained.
    pub fn failed(&self) -> bool {
        self.counts(None).unexplained() > 0
    }
}

fn short(value: &Option<Value>) -> String {
    match value {
        None => "(absent)".into(),
        Some(v) => {
            let text = v.to_string();
            if text.chars().count() > 600 {
                format!("{}…", text.chars().take(600).collect::<String>())
            } else {
                text
            }
        }
    }
}

fn write_diffs(out: &mut String, diffs: &[Diff]) {
    for d in diffs.iter().take(12) {
        let _ = writeln!(
            out,
            "  - `{}`: embedded {} / upstream {}",
            if d.pointer.is_empty() {
                "/"
            } else {
                &d.pointer
            },
            short(&d.embedded),
            short(&d.upstream)
        );
    }
    if diffs.len() > 12 {
        let _ = writeln!(out, "  - … {} more", diffs.len() - 12);
    }
}
