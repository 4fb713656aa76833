//! The summary as a plain-text table, one column per side, for terminals and
//! for the `summary.txt` a comparison writes.

use std::fmt::Write as _;

use crate::summary::{Divergence, Summary, SummaryConfig};

/// Renders the sides' summaries side by side, then (if given) the divergence
/// between the first two sides. `-` marks a reaction that did not happen and
/// `unsettled` a step whose replicas were still changing.
pub fn render_table(
    sides: &[(&str, &Summary)],
    divergence: Option<&Divergence>,
    config: &SummaryConfig,
) -> String {
    let mut rows: Vec<(String, Vec<String>)> = vec![
        (
            "replica-seconds".into(),
            sides
                .iter()
                .map(|(_, s)| format!("{:.0}", s.replica_seconds))
                .collect(),
        ),
        (
            format!(
                "overload-seconds (utilization > {:.0}%)",
                config.overload_threshold_percent()
            ),
            sides
                .iter()
                .map(|(_, s)| format!("{:.0}", s.overload_seconds))
                .collect(),
        ),
        (
            "scale events".into(),
            sides
                .iter()
                .map(|(_, s)| s.scale_events.to_string())
                .collect(),
        ),
        (
            "max replicas".into(),
            sides
                .iter()
                .map(|(_, s)| s.max_replicas.to_string())
                .collect(),
        ),
    ];
    let steps = sides.iter().map(|(_, s)| s.steps.len()).max().unwrap_or(0);
    for i in 0..steps {
        let Some(step) = sides
            .iter()
            .find_map(|(_, s)| s.steps.get(i))
            .map(|r| r.step)
        else {
            continue;
        };
        let label = format!(
            "step at {:.0}s ({:.0}m -> {:.0}m)",
            step.seconds, step.from_millicores, step.to_millicores
        );
        rows.push((
            format!("{label}: first scale after"),
            sides
                .iter()
                .map(
                    |(_, s)| match s.steps.get(i).and_then(|r| r.first_scale_seconds) {
                        Some(v) => format!("{v:.1}s"),
                        None => "-".into(),
                    },
                )
                .collect(),
        ));
        rows.push((
            format!("{label}: settled after"),
            sides
                .iter()
                .map(|(_, s)| match s.steps.get(i).map(|r| r.settle_seconds) {
                    Some(Some(v)) => format!("{v:.1}s"),
                    Some(None) => "unsettled".into(),
                    None => "-".into(),
                })
                .collect(),
        ));
    }
    let label_width = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    let widths: Vec<usize> = sides
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            rows.iter()
                .map(|(_, v)| v[i].chars().count())
                .chain([name.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let _ = write!(out, "{:label_width$}", "");
    for ((name, _), w) in sides.iter().zip(&widths) {
        let _ = write!(out, "  {name:>w$}");
    }
    out.push('\n');
    for (label, values) in &rows {
        let _ = write!(out, "{label:label_width$}");
        for (v, w) in values.iter().zip(&widths) {
            let _ = write!(out, "  {v:>w$}");
        }
        out.push('\n');
    }
    if let (Some(d), [(a, _), (b, _), ..]) = (divergence, sides) {
        let _ = write!(
            out,
            "per-sync divergence ({a} vs {b}): {} of {} syncs differ (timing skew allowed: ±{:.0}s), \
             max |difference| {} replicas, mean |difference| {:.2}",
            d.differing(),
            d.syncs(),
            d.skew_seconds,
            d.max_abs_difference(),
            d.mean_abs_difference()
        );
        if let Some(c) = d.first_difference() {
            let _ = write!(out, ", first at {:.0}s ({} vs {})", c.seconds, c.a, c.b);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demand::Step;
    use crate::summary::{StepReaction, SyncComparison};

    fn summary(first: Option<f64>, settle: Option<f64>) -> Summary {
        Summary {
            duration_seconds: 100.0,
            replica_seconds: 321.4,
            overload_seconds: 12.0,
            scale_events: 3,
            max_replicas: 6,
            steps: vec![StepReaction {
                step: Step {
                    seconds: 20.0,
                    from_millicores: 200.0,
                    to_millicores: 800.0,
                },
                first_scale_seconds: first,
                settle_seconds: settle,
            }],
        }
    }

    #[test]
    fn the_table_has_a_column_per_side_a_row_per_figure_and_the_divergence_line() {
        let (a, b) = (summary(Some(14.0), Some(20.0)), summary(None, None));
        let d = Divergence {
            skew_seconds: 2.0,
            comparisons: vec![
                SyncComparison {
                    seconds: 5.0,
                    a: 1,
                    b: 1,
                    agree: true,
                },
                SyncComparison {
                    seconds: 10.0,
                    a: 4,
                    b: 2,
                    agree: false,
                },
            ],
        };
        let text = render_table(
            &[("built-in HPA", &a), ("Tidal", &b)],
            Some(&d),
            &SummaryConfig::new(50.0, 0.1),
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with("built-in HPA      Tidal"), "{text}");
        assert!(
            lines[1].starts_with("replica-seconds") && lines[1].ends_with("321        321"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("overload-seconds (utilization > 55%)"),
            "{text}"
        );
        assert!(
            text.contains("step at 20s (200m -> 800m): first scale after         14.0s          -"),
            "{text}"
        );
        assert!(
            lines[6].contains("settled after") && lines[6].ends_with("20.0s  unsettled"),
            "{text}"
        );
        assert!(text.contains("1 of 2 syncs differ (timing skew allowed: ±2s), max |difference| 2 replicas, mean |difference| 1.00, first at 10s (4 vs 2)"), "{text}");
    }
}
