//! Replica timelines: what a test observed each second, written as CSV
//! artefacts for people to plot and compare.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Overrides where artefacts go (default: `e2e/artifacts/`, gitignored).
pub const ARTIFACTS_ENV: &str = "TIDAL_E2E_ARTIFACTS";

/// One observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Seconds since the test started its clock.
    pub seconds: f64,
    /// Total demand the driver applied, millicores.
    pub demand_millicores: f64,
    /// Usage the driver set on each Ready pod, millicores.
    pub per_pod_millicores: f64,
    /// The workload's `spec.replicas`.
    pub spec_replicas: i32,
    /// The workload's ready replicas.
    pub ready_replicas: i32,
    /// The autoscaler's desired replicas, if it reported any.
    pub desired_replicas: Option<i32>,
    /// The autoscaler's current average CPU utilisation (percent of request).
    pub cpu_utilization: Option<i32>,
}

/// An ordered list of samples.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    samples: Vec<Sample>,
}

impl Timeline {
    /// Appends a sample.
    pub fn push(&mut self, s: Sample) {
        self.samples.push(s);
    }

    /// The samples so far.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The timeline as CSV with a header row; missing values are empty.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "seconds,demand_millicores,per_pod_millicores,spec_replicas,ready_replicas,desired_replicas,cpu_utilization\n",
        );
        let opt = |v: Option<i32>| v.map(|v| v.to_string()).unwrap_or_default();
        for s in &self.samples {
            let _ = writeln!(
                out,
                "{:.1},{:.0},{:.0},{},{},{},{}",
                s.seconds,
                s.demand_millicores,
                s.per_pod_millicores,
                s.spec_replicas,
                s.ready_replicas,
                opt(s.desired_replicas),
                opt(s.cpu_utilization)
            );
        }
        out
    }

    /// Writes the CSV to `dir/name`, creating `dir`; returns the full path.
    pub fn write_csv(&self, dir: &Path, name: &str) -> Result<PathBuf> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| Error::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(name);
        std::fs::write(&path, self.to_csv()).map_err(io(&path))?;
        Ok(path)
    }
}

/// Where tests write artefacts.
pub fn artifacts_dir() -> PathBuf {
    std::env::var_os(ARTIFACTS_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_header_and_leaves_unknown_values_empty() {
        let mut t = Timeline::default();
        t.push(Sample {
            seconds: 1.04,
            demand_millicores: 400.0,
            per_pod_millicores: 133.3,
            spec_replicas: 3,
            ready_replicas: 2,
            desired_replicas: None,
            cpu_utilization: Some(133),
        });
        let csv = t.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("seconds,"));
        assert_eq!(lines[1], "1.0,400,133,3,2,,133");
    }
}
