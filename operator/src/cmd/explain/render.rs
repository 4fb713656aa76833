//! The human-readable account `tidal explain` prints (`-o table`).

use std::fmt::Write as _;

use scaling::trace::{LimitsTrace, MetricTrace, PodClass, PodsTrace, StabilizationTrace};

use super::Explanation;

/// A milli-value as a quantity: `450m`, `2`, `1.5`.
pub fn milli(v: i64) -> String {
    if v % 1000 == 0 {
        format!("{}", v / 1000)
    } else {
        format!("{v}m")
    }
}

fn opt_milli(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_string(), milli)
}

fn target_text(m: &MetricTrace) -> String {
    match (m.target.average_utilization, m.target.value_milli) {
        (Some(u), _) if m.target.kind == "Utilization" => format!("{u}% of request (Utilization)"),
        (_, Some(v)) => format!("{} ({})", milli(v), m.target.kind),
        _ => m.target.kind.clone(),
    }
}

/// The human-readable account of one decision.
pub fn render(e: &Explanation) -> String {
    let t = &e.decision;
    let mut out = String::new();
    let from = match e.source {
        "live" => "computed now from live data; nothing was written",
        "lastScale" => {
            "the operator's last decision that wrote the scale, from \
             status.tidal.lastScaleDecision; any decision since kept the size"
        }
        _ => {
            "the operator's last decision, from status.tidal.lastDecision; every sync since \
             decided the same, and its window counts and ages are as of then"
        }
    };
    let _ = writeln!(out, "AutoScaler {} -> {}", e.autoscaler, e.reference);
    let _ = writeln!(out, "Decision at {} ({from})", t.time.0);
    if e.mode != "Active" {
        let _ = writeln!(out, "Mode: {} (the scale is not written)", e.mode);
    }
    let _ = writeln!(
        out,
        "Replicas: current {}, min {}, max {}",
        t.current_replicas
            .map_or_else(|| "unknown".to_string(), |c| c.to_string()),
        t.min_replicas,
        t.max_replicas
    );
    if let Some(stopped) = &t.stopped {
        let _ = writeln!(out, "Stopped early: {stopped}");
    }
    for (i, m) in t.metrics.iter().enumerate() {
        let _ = writeln!(out);
        render_metric(&mut out, i + 1, m);
    }
    if let Some(p) = t.proposal {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Proposal: {p} replicas{}",
            t.proposal_metric
                .as_ref()
                .map(|m| format!(" (largest, from {m})"))
                .unwrap_or_default()
        );
    }
    if let Some(s) = &t.stabilization {
        render_stabilization(&mut out, s);
    }
    if let Some(l) = &t.limits {
        render_limits(&mut out, l);
    }
    if t.scale_from_zero_floor {
        let _ = writeln!(out, "Scale-from-zero floor: raised to minReplicas");
    }
    let _ = writeln!(out);
    let action = if t.write_error.is_some() {
        "scale write FAILED"
    } else if t.rescale {
        "scaled"
    } else if e.source == "live" && !t.reason.is_empty() {
        "would scale (not written by --now)"
    } else if !t.reason.is_empty() {
        "not written"
    } else {
        "no change"
    };
    let _ = writeln!(out, "Desired replicas: {} ({action})", t.desired_replicas);
    if !t.reason.is_empty() {
        let _ = writeln!(out, "Reason: {}", t.reason);
    }
    if let Some(err) = &t.write_error {
        let _ = writeln!(out, "Write error: {err}");
    }
    if let Some(l) = &e.last_scale_lag {
        let ready = l
            .pods_ready_seconds
            .map_or_else(|| "not yet".to_string(), |s| format!("{s:.1}s"));
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Last scale: to {} on the sample of {}: decided after {:.1}s, written after {:.1}s, pods Ready after {ready}",
            l.replicas, l.sample_time.0, l.decision_seconds, l.scale_write_seconds
        );
    }
    if let Some(s) = e.last_scale.as_ref().filter(|_| !t.rescale) {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Last scale decision: to {} at {} ({}); `tidal explain --last-scale {}` prints it",
            s.replicas, s.time.0, s.reason, e.autoscaler
        );
    }
    if let Some(f) = &e.replica_fight {
        let _ = writeln!(out);
        let _ = writeln!(out, "Replica fight: {}/{}", f.status, f.reason);
        if !f.message.is_empty() {
            let _ = writeln!(out, "  {}", f.message);
        }
    }
    out
}

fn render_metric(out: &mut String, i: usize, m: &MetricTrace) {
    let container = m
        .container
        .as_ref()
        .map(|c| format!(" (container {c})"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Metric {i}: {} {}{container}, target {}",
        m.kind,
        m.name,
        target_text(m)
    );
    if let Some(p) = &m.pods {
        render_pods(out, p);
    }
    if let Some(u) = m.utilization {
        let _ = writeln!(
            out,
            "  usage {} / requests {} = utilization {u}% (average {} per counted pod)",
            opt_milli(m.usage_milli),
            opt_milli(m.requests_milli),
            opt_milli(m.average_milli)
        );
    } else if let Some(avg) = m.average_milli {
        let _ = writeln!(
            out,
            "  usage {} over the counted pods = average {}",
            opt_milli(m.usage_milli),
            milli(avg)
        );
    } else if let Some(v) = m.usage_milli {
        let _ = writeln!(out, "  value {}", milli(v));
    }
    if let Some(r) = m.ratio {
        let band = m
            .tolerance
            .map(|b| {
                format!(
                    "; tolerance band [{:.3}, {:.3}]: {}",
                    b.low,
                    b.high,
                    if b.within {
                        "inside, no change from this metric"
                    } else {
                        "outside"
                    }
                )
            })
            .unwrap_or_default();
        let _ = writeln!(out, "  raw ratio {r:.4}{band}");
    }
    if let Some(rb) = &m.rebalanced {
        let mut what = Vec::new();
        if rb.unready_as_zero {
            what.push("unready pods counted as 0".to_string());
        }
        if let Some(missing) = &rb.missing_as {
            what.push(format!("missing pods counted as {missing}"));
        }
        let _ = writeln!(
            out,
            "  rebalanced ({}): ratio {:.4} over {} pods",
            what.join(", "),
            rb.ratio,
            rb.pods
        );
        if let Some(why) = &rb.kept_current_because {
            let _ = writeln!(out, "  kept the current size: {why}");
        }
    }
    if let Some(p) = &m.policy {
        let age = match (p.oldest_sample_age_seconds, p.max_sample_age_seconds) {
            (Some(a), Some(max)) => format!(", oldest sample {a}s old (max {max}s)"),
            (Some(a), None) => format!(", oldest sample {a}s old"),
            (None, Some(max)) => format!(" (max sample age {max}s)"),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "  data: {}{age}; policy whenUnavailable: {}{}{}",
            p.availability,
            p.when_unavailable,
            p.detail
                .as_deref()
                .map(|d| format!("; {d}"))
                .unwrap_or_default(),
            p.effect
                .as_deref()
                .map(|e| format!(" -> {e}"))
                .unwrap_or_default()
        );
    }
    match (m.proposal, &m.error) {
        (_, Some(err)) => {
            let _ = writeln!(out, "  FAILED: {err}");
        }
        (Some(p), None) => {
            let how = match (m.multiplied_by_pods, m.ratio, &m.rebalanced) {
                (Some(n), Some(r), None) => format!(" = ceil({r:.4} x {n} pods)"),
                (None, Some(_), Some(rb)) if rb.kept_current_because.is_none() => {
                    format!(" = ceil({:.4} x {} pods)", rb.ratio, rb.pods)
                }
                _ => String::new(),
            };
            let _ = writeln!(out, "  proposal: {p} replicas{how}");
        }
        (None, None) => {}
    }
}

fn render_pods(out: &mut String, p: &PodsTrace) {
    let _ = writeln!(
        out,
        "  pods: {} ready, {} unready, {} missing, {} ignored",
        p.ready, p.unready, p.missing, p.ignored
    );
    for class in PodClass::ALL {
        let reasons: Vec<String> = p
            .by_reason
            .iter()
            .filter(|r| r.reason.class() == class && p.count(class) > 0)
            .map(|r| format!("{} {}", r.count, r.reason.describe()))
            .collect();
        if class != PodClass::Ready && !reasons.is_empty() {
            let _ = writeln!(out, "    {}: {}", class.as_str(), reasons.join("; "));
        }
    }
    if p.extraneous_samples > 0 {
        let _ = writeln!(
            out,
            "    {} samples for pods outside the target (not counted)",
            p.extraneous_samples
        );
    }
    if !p.listed.is_empty() {
        let width = p
            .listed
            .iter()
            .map(|x| x.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            out,
            "    {:width$}  {:8} {:>9} {:>9}  WHY",
            "POD", "CLASS", "USAGE", "REQUEST"
        );
        for pod in &p.listed {
            let _ = writeln!(
                out,
                "    {:width$}  {:8} {:>9} {:>9}  {}",
                pod.name,
                pod.reason.class().as_str(),
                opt_milli(pod.usage_milli),
                opt_milli(pod.request_milli),
                pod.reason.describe()
            );
        }
        if p.not_listed > 0 {
            let _ = writeln!(
                out,
                "    ... {} more pods counted above but not listed (at most {} per class are kept)",
                p.not_listed,
                scaling::trace::PODS_LISTED_PER_CLASS
            );
        }
    }
}

fn render_stabilization(out: &mut String, s: &StabilizationTrace) {
    if s.behavior {
        let _ = writeln!(
            out,
            "Stabilization: scale-up window {}s ({} past recommendations, lowest with the proposal {}), \
             scale-down window {}s ({} past recommendations, highest with the proposal {}) -> {}",
            s.up_window_seconds.unwrap_or(0),
            s.in_up_window,
            s.up_bound.unwrap_or(s.proposal),
            s.down_window_seconds,
            s.in_down_window,
            s.down_bound,
            s.result
        );
    } else {
        let _ = writeln!(
            out,
            "Stabilization: downscale window {}s ({} past recommendations, highest with the proposal {}) -> {}",
            s.down_window_seconds, s.in_down_window, s.down_bound, s.result
        );
    }
    match &s.bound_by {
        Some(b) => {
            let _ = writeln!(
                out,
                "  held by the recommendation of {} made {:.0}s earlier ({}, {} window)",
                b.replicas, b.age_seconds, b.timestamp.0, b.window
            );
        }
        None if s.result == s.proposal => {
            let _ = writeln!(out, "  the proposal itself bound the result");
        }
        None => {}
    }
}

fn render_limits(out: &mut String, l: &LimitsTrace) {
    let _ = write!(
        out,
        "Limits: direction {}, minReplicas {}, maxReplicas {}",
        l.direction, l.min_replicas, l.max_replicas
    );
    if let Some(legacy) = l.legacy_scale_up_limit {
        let _ = write!(
            out,
            ", scale-up limit {legacy} (no behavior: max(2 x current, 4))"
        );
    }
    let _ = writeln!(out);
    if !l.policies.is_empty() {
        let _ = writeln!(
            out,
            "  policies (selectPolicy {}):",
            l.select_policy.as_deref().unwrap_or("Max")
        );
        for p in &l.policies {
            let _ = writeln!(
                out,
                "    {} {} per {}s: {} replicas at the period's start -> limit {}",
                p.kind, p.value, p.period_seconds, p.replicas_at_period_start, p.limit
            );
        }
    } else if l.select_policy.as_deref() == Some("Disabled") {
        let _ = writeln!(out, "  selectPolicy Disabled: no change in this direction");
    }
    if let Some(r) = l.rate_limit {
        let _ = writeln!(out, "  rate limit: {r}");
    }
    let _ = writeln!(
        out,
        "  {} -> {}: {} ({})",
        l.input, l.result, l.applied, l.message
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::explain::{FightView, LastScale};
    use scaling::trace::DecisionTrace;

    /// An explanation of `decision` for shop/web, as stored, with nothing else to say.
    fn explanation(decision: DecisionTrace) -> Explanation {
        Explanation {
            autoscaler: "shop/web".into(),
            reference: "Deployment/web".into(),
            source: "status",
            mode: "Active".into(),
            decision,
            replica_fight: None,
            last_scale_lag: None,
            last_scale: None,
        }
    }

    fn scale_up_trace() -> DecisionTrace {
        let pod = |name: &str| {
            serde_json::json!({
                "metadata": {"name": name, "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "500m"}}}]},
                "status": {"phase": "Running", "startTime": "2026-03-01T09:00:00Z",
                           "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-03-01T09:00:10Z"}]}
            })
        };
        let sample = |name: &str| {
            serde_json::json!({"metadata": {"name": name}, "timestamp": "2026-03-01T09:59:50Z", "window": "30s",
                   "containers": [{"name": "app", "usage": {"cpu": "450m"}}]})
        };
        let input = serde_json::json!({
            "now": "2026-03-01T10:00:00Z",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "maxReplicas": 10,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]},
            "scale": {"specReplicas": 2, "statusReplicas": 2, "selector": "app=web"},
            "pods": [pod("web-a"), pod("web-b")],
            "podMetrics": [sample("web-a"), sample("web-b")]
        });
        let calc = scaling::format::parse_input(&input).expect("valid input");
        scaling::decide(&calc.input, |_| Ok(())).trace
    }

    #[test]
    fn the_table_names_the_metric_and_the_numbers_of_a_scale_up() {
        let text = render(&explanation(scale_up_trace()));
        for needle in [
            "AutoScaler shop/web -> Deployment/web",
            "Metric 1: Resource cpu, target 50% of request (Utilization)",
            "pods: 2 ready, 0 unready, 0 missing, 0 ignored",
            "web-a",
            "usage 900m / requests 1 = utilization 90%",
            "raw ratio 1.8000; tolerance band [0.900, 1.100]: outside",
            "proposal: 4 replicas = ceil(1.8000 x 2 pods)",
            "Limits: direction up",
            "Desired replicas: 4 (scaled)",
            "Reason: cpu resource utilization (percentage of request) above target",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

    #[test]
    fn the_table_shows_a_stale_metric_and_what_its_policy_did() {
        let mut trace = scale_up_trace();
        trace.metrics[0].policy = Some(scaling::trace::MetricPolicyTrace {
            availability: "Stale".into(),
            when_unavailable: "Fixed".into(),
            max_sample_age_seconds: Some(60),
            oldest_sample_age_seconds: Some(95),
            detail: Some("pod web-1's sample is 95s old".into()),
            effect: Some("proposes 2".into()),
        });
        let text = render(&explanation(trace));
        assert!(
            text.contains(
                "  data: Stale, oldest sample 95s old (max 60s); policy whenUnavailable: Fixed; pod web-1's sample is 95s old -> proposes 2"
            ),
            "{text}"
        );
    }

    #[test]
    fn milli_values_print_as_quantities() {
        assert_eq!(milli(450), "450m");
        assert_eq!(milli(2000), "2");
        assert_eq!(milli(0), "0");
    }

    #[test]
    fn the_table_says_who_fights_over_the_replicas_and_that_tidal_yields() {
        let text = render(&Explanation {
            replica_fight: Some(FightView {
                status: "True".into(),
                reason: "YieldingToOtherManager".into(),
                message: "spec.replicas changed from 2 to 5 by manager kubectl; Tidal yields"
                    .into(),
                last: None,
            }),
            ..explanation(scale_up_trace())
        });
        for needle in [
            "Replica fight: True/YieldingToOtherManager",
            "  spec.replicas changed from 2 to 5 by manager kubectl; Tidal yields",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

    #[test]
    fn the_table_gives_the_last_scale_lag_from_its_sample() {
        let sample: k8s_openapi::jiff::Timestamp = "2026-12-02T10:00:00Z".parse().expect("time");
        let mut lag = tidal_crds::ScaleLag {
            sample_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(sample),
            replicas: 4,
            decision_seconds: 0.42,
            scale_write_seconds: 0.61,
            pods_ready_seconds: None,
        };
        let explain = |lag: &tidal_crds::ScaleLag| {
            render(&Explanation {
                last_scale_lag: Some(lag.clone()),
                ..explanation(scale_up_trace())
            })
        };
        let text = explain(&lag);
        let line = "Last scale: to 4 on the sample of 2026-12-02T10:00:00Z: decided after 0.4s, written after 0.6s, pods Ready after not yet";
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
        lag.pods_ready_seconds = Some(12.25);
        assert!(explain(&lag).contains("pods Ready after 12.2s"));
    }
    #[test]
    fn a_decision_that_kept_the_size_points_to_the_last_scale_and_that_one_prints_whole() {
        let scaled = scale_up_trace();
        let mut kept = scale_up_trace();
        kept.rescale = false;
        kept.reason.clear();
        let brief = LastScale {
            time: scaled.time,
            replicas: scaled.desired_replicas,
            reason: scaled.reason.clone(),
        };
        let text = render(&Explanation {
            last_scale: Some(brief),
            ..explanation(kept)
        });
        let line = format!(
            "Last scale decision: to 4 at {} (cpu resource utilization (percentage of request) \
             above target); `tidal explain --last-scale shop/web` prints it",
            scaled.time.0
        );
        assert!(text.contains(&line), "missing {line:?} in:\n{text}");
        assert!(text.contains("Desired replicas: 4 (no change)"), "{text}");

        let text = render(&Explanation {
            source: "lastScale",
            ..explanation(scaled)
        });
        assert!(
            text.contains("from status.tidal.lastScaleDecision"),
            "{text}"
        );
        assert!(text.contains("Desired replicas: 4 (scaled)"), "{text}");
        assert!(!text.contains("Last scale decision:"), "{text}");
    }
}
