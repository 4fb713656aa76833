//! Overload at equal replica-seconds (`tidal-e2e compare --hpa-cost-targets`).
//!
//! Reacting sooner costs replicas: a side that scales up earlier holds its new pods longer, so
//! at the same target it spends more replica-seconds and has less overload. Which autoscaler
//! is better is a question at equal cost. The built-in HPA is run again beside the pair at
//! lower CPU targets, which buy it replicas (and so less overload) on the same trace; its
//! overload at Tidal's replica-seconds is interpolated linearly between the two HPA runs that
//! bracket them. The overload line stays the one of the pair's target, so every run is judged
//! against the same load per pod.

/// One run's cost and overload.
#[derive(Debug, Clone, PartialEq)]
pub struct CostPoint {
    /// The side's name, e.g. `built-in HPA at 45%`.
    pub label: String,
    /// ∫ replicas dt over the run.
    pub replica_seconds: f64,
    /// Time with utilization over the overload line.
    pub overload_seconds: f64,
}

/// The built-in HPA's overload at Tidal's replica-seconds, when its runs allow a verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum AtTidalCost {
    /// Tidal's replica-seconds lie between two HPA runs: the HPA's overload there, linearly
    /// interpolated, and the two runs.
    Interpolated {
        /// The HPA's estimated overload-seconds at Tidal's replica-seconds.
        overload_seconds: f64,
        /// The cheaper of the two runs.
        below: String,
        /// The costlier of the two runs.
        above: String,
    },
    /// Tidal spent fewer replica-seconds than every HPA run: the cheapest HPA run spent more
    /// and is compared as it is (an HPA at Tidal's cost would have had at least its overload
    /// if overload falls as replicas are added).
    CheaperThanAll {
        /// The cheapest HPA run.
        cheapest: CostPoint,
    },
    /// Tidal spent more replica-seconds than every HPA run: no verdict; lower targets are
    /// needed.
    CostlierThanAll,
}

impl AtTidalCost {
    /// The HPA overload-seconds to compare Tidal's with, when there is a verdict.
    pub fn overload_seconds(&self) -> Option<f64> {
        match self {
            AtTidalCost::Interpolated {
                overload_seconds, ..
            } => Some(*overload_seconds),
            AtTidalCost::CheaperThanAll { cheapest } => Some(cheapest.overload_seconds),
            AtTidalCost::CostlierThanAll => None,
        }
    }
}

/// The built-in HPA's overload at `replica_seconds`, from its runs (any order).
pub fn hpa_at_cost(hpa: &[CostPoint], replica_seconds: f64) -> AtTidalCost {
    let mut runs: Vec<&CostPoint> = hpa.iter().collect();
    runs.sort_by(|a, b| a.replica_seconds.total_cmp(&b.replica_seconds));
    let Some(cheapest) = runs.first() else {
        return AtTidalCost::CostlierThanAll;
    };
    if replica_seconds < cheapest.replica_seconds {
        return AtTidalCost::CheaperThanAll {
            cheapest: (*cheapest).clone(),
        };
    }
    for pair in runs.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if (a.replica_seconds..=b.replica_seconds).contains(&replica_seconds) {
            let span = b.replica_seconds - a.replica_seconds;
            let f = if span > 0.0 {
                (replica_seconds - a.replica_seconds) / span
            } else {
                0.0
            };
            return AtTidalCost::Interpolated {
                overload_seconds: a.overload_seconds
                    + f * (b.overload_seconds - a.overload_seconds),
                below: a.label.clone(),
                above: b.label.clone(),
            };
        }
    }
    // A single run that spent exactly Tidal's replica-seconds is its own estimate.
    match runs.as_slice() {
        [only] if only.replica_seconds == replica_seconds => AtTidalCost::Interpolated {
            overload_seconds: only.overload_seconds,
            below: only.label.clone(),
            above: only.label.clone(),
        },
        _ => AtTidalCost::CostlierThanAll,
    }
}

/// The summary's section: every run's figures, then the HPA at Tidal's replica-seconds and
/// whether Tidal had fewer overload-seconds there.
pub fn render(hpa: &[CostPoint], tidal: &CostPoint, overload_line_percent: f64) -> String {
    let mut text = format!(
        "\noverload at equal replica-seconds (the built-in HPA also run at lower CPU targets, \
         which buy it replicas; overload is utilization > {overload_line_percent:.0}% for every run):\n"
    );
    for p in hpa.iter().chain([tidal]) {
        text.push_str(&format!(
            "  {}: {:.0} replica-seconds, {:.0} overload-seconds\n",
            p.label, p.replica_seconds, p.overload_seconds
        ));
    }
    let at = hpa_at_cost(hpa, tidal.replica_seconds);
    let verdict = |hpa_overload: f64| {
        if tidal.overload_seconds < hpa_overload {
            "fewer"
        } else {
            "not fewer"
        }
    };
    let line = match &at {
        AtTidalCost::Interpolated {
            overload_seconds,
            below,
            above,
        } => format!(
            "{overload_seconds:.0} overload-seconds (interpolated between {below} and {above}); \
             Tidal {:.0}: {}",
            tidal.overload_seconds,
            verdict(*overload_seconds)
        ),
        AtTidalCost::CheaperThanAll { cheapest } => format!(
            "at least {:.0} overload-seconds ({} spent more, {:.0} replica-seconds); Tidal {:.0}: {}",
            cheapest.overload_seconds,
            cheapest.label,
            cheapest.replica_seconds,
            tidal.overload_seconds,
            verdict(cheapest.overload_seconds)
        ),
        AtTidalCost::CostlierThanAll => {
            "no verdict: every HPA run spent fewer replica-seconds than Tidal; add lower targets"
                .to_owned()
        }
    };
    text.push_str(&format!(
        "  built-in HPA at Tidal's {:.0} replica-seconds: {line}\n",
        tidal.replica_seconds
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(label: &str, replica_seconds: f64, overload_seconds: f64) -> CostPoint {
        CostPoint {
            label: label.to_owned(),
            replica_seconds,
            overload_seconds,
        }
    }

    fn runs() -> Vec<CostPoint> {
        vec![
            point("at 40%", 6400.0, 300.0),
            point("at 50%", 5100.0, 350.0),
            point("at 45%", 5600.0, 340.0),
        ]
    }

    #[test]
    fn overload_is_interpolated_between_the_runs_that_bracket_tidals_cost() {
        let at = hpa_at_cost(&runs(), 6000.0);
        let AtTidalCost::Interpolated {
            overload_seconds,
            below,
            above,
        } = at
        else {
            panic!("expected an interpolation, got {at:?}");
        };
        assert!(
            (overload_seconds - 320.0).abs() < 1e-9,
            "{overload_seconds}"
        );
        assert_eq!((below.as_str(), above.as_str()), ("at 45%", "at 40%"));
        let exact = hpa_at_cost(&runs(), 5100.0);
        assert_eq!(exact.overload_seconds(), Some(350.0));
    }

    #[test]
    fn a_tidal_cheaper_than_every_run_is_compared_with_the_cheapest_and_a_costlier_one_gets_no_verdict()
     {
        let cheaper = hpa_at_cost(&runs(), 5000.0);
        assert_eq!(cheaper.overload_seconds(), Some(350.0));
        assert!(matches!(cheaper, AtTidalCost::CheaperThanAll { .. }));
        assert_eq!(hpa_at_cost(&runs(), 7000.0), AtTidalCost::CostlierThanAll);
        assert_eq!(hpa_at_cost(&[], 7000.0), AtTidalCost::CostlierThanAll);
    }

    #[test]
    fn the_section_says_whether_tidal_had_fewer_overload_seconds_at_the_hpas_cost() {
        let fewer = render(&runs(), &point("Tidal at 50%", 6000.0, 265.0), 55.0);
        assert!(
            fewer.contains("  built-in HPA at Tidal's 6000 replica-seconds: 320 overload-seconds (interpolated between at 45% and at 40%); Tidal 265: fewer\n"),
            "{fewer}"
        );
        assert!(fewer.contains("  at 45%: 5600 replica-seconds, 340 overload-seconds\n"));
        let more = render(&runs(), &point("Tidal at 50%", 6000.0, 330.0), 55.0);
        assert!(more.ends_with("Tidal 330: not fewer\n"), "{more}");
        let none = render(&runs(), &point("Tidal at 50%", 7000.0, 100.0), 55.0);
        assert!(none.contains("no verdict"), "{none}");
    }
}
