//! Replica timelines: what one autoscaler did, one sample per second, and
//! their CSV form.
//!
//! A [`Sample`] is one observation of one side of a comparison (the built-in
//! HPA's workload, Tidal's workload, or a simulated one): the demand applied,
//! the target's replicas, what the autoscaler reported. The same model serves
//! the e2e comparison runner (observed on a cluster) and `tidal simulate`
//! (computed), so their CSVs, summaries and plots are alike.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Result, io};

/// The CSV header row [`Timeline::to_csv`] writes (columns in this order).
pub const CSV_HEADER: &str = "seconds,demand_millicores,replicas,ready_replicas,utilization_percent,desired_replicas,metrics_seconds,conditions";

/// One observation of one workload and its autoscaler.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sample {
    /// Seconds since the run's start (the same clock for both sides of a comparison).
    pub seconds: f64,
    /// Total CPU demand applied to the workload, millicores.
    pub demand_millicores: f64,
    /// The target's `spec.replicas` (what the autoscaler last wrote).
    pub replicas: i32,
    /// The target's Ready replicas.
    pub ready_replicas: i32,
    /// CPU utilization of each Ready pod, percent of its request (demand ÷
    /// Ready pods ÷ request). `None` when no pod is Ready.
    pub utilization_percent: Option<f64>,
    /// The autoscaler's `status.desiredReplicas`, if it reported one.
    pub desired_replicas: Option<i32>,
    /// Run-clock time of the newest metrics sample the autoscaler could see
    /// (the PodMetrics `timestamp`), if known: lets a consumer compare two
    /// sides only once both have seen the same metrics.
    pub metrics_seconds: Option<f64>,
    /// The autoscaler's conditions, `Type=Status/Reason` joined by `;` (no commas).
    pub conditions: String,
}

/// An ordered list of samples of one side.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    samples: Vec<Sample>,
}

impl Timeline {
    /// An empty timeline.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a sample (callers push in time order).
    pub fn push(&mut self, s: Sample) {
        self.samples.push(s);
    }

    /// The samples, in the order pushed.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The last sample at or before `seconds` (`None` before the first).
    pub fn at(&self, seconds: f64) -> Option<&Sample> {
        let i = self.samples.partition_point(|s| s.seconds <= seconds);
        i.checked_sub(1).map(|i| &self.samples[i])
    }

    /// Seconds from the first to the last sample.
    pub fn duration_seconds(&self) -> f64 {
        match (self.samples.first(), self.samples.last()) {
            (Some(a), Some(b)) => b.seconds - a.seconds,
            _ => 0.0,
        }
    }

    /// The timeline as CSV: [`CSV_HEADER`], then one row per sample; unknown
    /// values are empty; conditions are quoted when they contain a comma or quote.
    pub fn to_csv(&self) -> String {
        let mut out = format!("{CSV_HEADER}\n");
        let int = |v: Option<i32>| v.map(|v| v.to_string()).unwrap_or_default();
        let real = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_default();
        for s in &self.samples {
            let _ = writeln!(
                out,
                "{:.1},{:.0},{},{},{},{},{},{}",
                s.seconds,
                s.demand_millicores,
                s.replicas,
                s.ready_replicas,
                real(s.utilization_percent),
                int(s.desired_replicas),
                real(s.metrics_seconds),
                csv_field(&s.conditions),
            );
        }
        out
    }

    /// Writes [`Self::to_csv`] to `path`, creating its directory; returns `path`.
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<PathBuf> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        std::fs::write(path, self.to_csv()).map_err(io(path))?;
        Ok(path.to_path_buf())
    }
}

impl FromIterator<Sample> for Timeline {
    fn from_iter<I: IntoIterator<Item = Sample>>(iter: I) -> Self {
        Self {
            samples: iter.into_iter().collect(),
        }
    }
}

/// RFC 4180 quoting, only when needed.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seconds: f64, replicas: i32) -> Sample {
        Sample {
            seconds,
            replicas,
            ..Sample::default()
        }
    }

    #[test]
    fn csv_has_the_header_and_leaves_unknown_values_empty() {
        let t: Timeline = [Sample {
            seconds: 1.04,
            demand_millicores: 400.0,
            replicas: 3,
            ready_replicas: 2,
            utilization_percent: Some(133.33),
            desired_replicas: None,
            metrics_seconds: Some(0.5),
            conditions: "AbleToScale=True/ReadyForNewScale;ScalingActive=True/ValidMetricFound"
                .into(),
        }]
        .into_iter()
        .collect();
        let csv = t.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines,
            vec![
                CSV_HEADER,
                "1.0,400,3,2,133.3,,0.5,AbleToScale=True/ReadyForNewScale;ScalingActive=True/ValidMetricFound"
            ]
        );
    }

    #[test]
    fn conditions_with_commas_or_quotes_are_quoted() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }

    #[test]
    fn at_returns_the_latest_sample_not_after_the_instant() {
        let t: Timeline = [sample(0.0, 1), sample(1.0, 2), sample(2.0, 3)]
            .into_iter()
            .collect();
        assert_eq!(t.at(-0.1), None);
        assert_eq!(t.at(0.0).map(|s| s.replicas), Some(1));
        assert_eq!(t.at(1.5).map(|s| s.replicas), Some(2));
        assert_eq!(t.at(99.0).map(|s| s.replicas), Some(3));
        assert_eq!(t.duration_seconds(), 2.0);
    }

    #[test]
    fn write_csv_creates_the_directory() {
        let dir = std::env::temp_dir().join(format!("tidal-report-csv-{}", std::process::id()));
        let path = dir.join("sub/side.csv");
        let t: Timeline = [sample(0.0, 1)].into_iter().collect();
        let written = t.write_csv(&path).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&written).unwrap_or_else(|e| panic!("{e}"));
        assert!(text.starts_with(CSV_HEADER));
        let _ = std::fs::remove_dir_all(dir);
    }
}
