//! The report of `tidal doctor`: one line per check, its outcome, and the cause and fix of a
//! failure; and the constructors the checks build their lines with.

use std::fmt::Write as _;

use super::diagnosis::{Diagnosis, diagnose};

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Works.
    Ok,
    /// Worth knowing; not a failure.
    Info,
    /// Broken: scaling cannot work (or not fully) until it is fixed.
    Fail,
    /// Could not be checked (usually: forbidden for this user).
    Skipped,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Outcome.
    pub status: Status,
    /// What was checked.
    pub what: String,
    /// What was found.
    pub detail: String,
    /// Cause and fix, when known.
    pub diagnosis: Option<Diagnosis>,
}

/// The report as text: one line per check, cause and fix under failures, a summary.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        let tag = match c.status {
            Status::Ok => "[ OK ]",
            Status::Info => "[INFO]",
            Status::Fail => "[FAIL]",
            Status::Skipped => "[SKIP]",
        };
        let _ = writeln!(out, "{tag} {}: {}", c.what, c.detail);
        if let Some(d) = &c.diagnosis {
            let _ = writeln!(out, "       cause: {}", d.cause);
            let _ = writeln!(out, "       fix:   {}", squeeze(d.fix));
        }
    }
    let fails = checks.iter().filter(|c| c.status == Status::Fail).count();
    let skipped = checks
        .iter()
        .filter(|c| c.status == Status::Skipped)
        .count();
    let _ = match (fails, skipped) {
        (0, 0) => writeln!(out, "healthy: every check passed"),
        (0, n) => writeln!(
            out,
            "healthy as far as visible: {n} checks could not be made"
        ),
        (n, _) => writeln!(out, "{n} problem(s) found"),
    };
    out
}

/// Collapses the runs of spaces that line continuations leave in the fix texts.
fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(super) fn check(status: Status, what: impl Into<String>, detail: impl Into<String>) -> Check {
    Check {
        status,
        what: what.into(),
        detail: detail.into(),
        diagnosis: None,
    }
}

pub(super) fn failed(what: impl Into<String>, detail: impl Into<String>, text: &str) -> Check {
    Check {
        status: Status::Fail,
        what: what.into(),
        detail: detail.into(),
        diagnosis: diagnose(text),
    }
}

/// A read that may be forbidden: `Err(check)` is the "could not check" line.
pub(super) fn forbidden_or(err: kube::Error, what: &str) -> Check {
    match &err {
        kube::Error::Api(e) if e.code == 403 || e.code == 401 => check(
            Status::Skipped,
            what,
            format!("could not check {what}: forbidden for this user"),
        ),
        _ => check(
            Status::Skipped,
            what,
            format!(
                "could not check {what}: {}",
                crate::cmd::cluster::api_error(&err, "read it")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_reads_are_skipped_not_failed_and_the_summary_says_so() {
        let checks = vec![
            check(Status::Ok, "APIService v1beta1.metrics.k8s.io", "Available"),
            check(
                Status::Skipped,
                "Deployment kube-system/metrics-server",
                "could not check Deployment kube-system/metrics-server: forbidden for this user",
            ),
        ];
        let text = render(&checks);
        assert!(
            text.contains("[SKIP]") && text.contains("forbidden"),
            "{text}"
        );
        assert!(
            text.contains("healthy as far as visible: 1 checks could not be made"),
            "{text}"
        );
        let mut failing = checks.clone();
        failing.push(failed(
            "PodMetrics of a/b",
            "no sample for p",
            "did not receive metrics for targeted pods",
        ));
        let text = render(&failing);
        assert!(
            text.contains("[FAIL]")
                && text.contains("cause:")
                && text.contains("1 problem(s) found"),
            "{text}"
        );
    }
}
