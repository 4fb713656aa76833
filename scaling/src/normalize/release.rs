//! When the same data can next give a different decision: the instant a remembered
//! recommendation leaves a stabilization window, or a remembered scale event leaves a policy
//! period. Upstream notices such a release at its next sync; a controller that knows the instant
//! can decide then instead, with the same algorithm on the same inputs.

use crate::conditions::{REASON_SCALE_DOWN_LIMIT, REASON_SCALE_UP_LIMIT};
use crate::model::{AutoscalerSpec, Config, History, ScaleEvent};
use crate::time::{Duration, Time};
use crate::trace::DecisionTrace;

use super::BehaviorRules;

/// The earliest instant after `now` at which something in `history` leaves the window or
/// period it counts in under `spec`'s behavior (without behavior: the downscale window of
/// `config`; the legacy scale-up limit remembers no events). `None` when nothing will leave.
///
/// A superset: not every release changes the decision (another recommendation may hold the
/// same value), so a caller that decides again then may find nothing new.
pub fn next_release(
    spec: &AutoscalerSpec,
    config: &Config,
    history: &History,
    now: Time,
) -> Option<Time> {
    let seconds = |s: i32| Duration::from_seconds(i64::from(s));
    let (windows, up_periods, down_periods): (Vec<Duration>, Vec<Duration>, Vec<Duration>) =
        match &spec.behavior {
            None => (vec![config.downscale_stabilization], Vec::new(), Vec::new()),
            Some(behavior) => {
                let rules = BehaviorRules::with_defaults(behavior, config);
                let periods = |r: &super::Rules| {
                    r.policies
                        .iter()
                        .map(|p| seconds(p.period_seconds))
                        .collect()
                };
                (
                    vec![
                        seconds(rules.up.window_seconds),
                        seconds(rules.down.window_seconds),
                    ],
                    periods(&rules.up),
                    periods(&rules.down),
                )
            }
        };
    let windows: Vec<Duration> = windows.into_iter().filter(|w| w.as_nanos() > 0).collect();
    let recommendations = history
        .recommendations
        .iter()
        .flatten()
        .flat_map(|r| windows.iter().map(move |w| r.timestamp + *w));
    recommendations
        .chain(leaving(&history.scale_up_events, &up_periods))
        .chain(leaving(&history.scale_down_events, &down_periods))
        .filter(|t| t.after(now))
        .min()
}

/// Whether stabilization or a rate limit held the decision back from its proposal: only then
/// can the passing of time alone change it.
///
/// Without behavior, a decision the scale-up limit held is never a release: that limit
/// (max(2 x current, 4)) remembers no events and is taken afresh from the replicas at each
/// decision, so deciding again before the next sync would apply it a second time to the size
/// just written and scale up faster than upstream, which applies it once per sync.
pub fn held(spec: &AutoscalerSpec, trace: &DecisionTrace) -> bool {
    let limit = trace.limits.as_ref().map(|l| l.applied.as_ref());
    if spec.behavior.is_none() && limit == Some(REASON_SCALE_UP_LIMIT) {
        return false;
    }
    let stabilized = trace
        .stabilization
        .as_ref()
        .is_some_and(|s| s.result != s.proposal);
    let limited = limit.is_some_and(|l| l == REASON_SCALE_UP_LIMIT || l == REASON_SCALE_DOWN_LIMIT);
    stabilized || limited
}

/// When each event leaves each period.
fn leaving<'a>(
    events: &'a [ScaleEvent],
    periods: &'a [Duration],
) -> impl Iterator<Item = Time> + 'a {
    events
        .iter()
        .flat_map(move |e| periods.iter().map(move |p| e.timestamp + *p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Recommendation;

    fn at(seconds: i64) -> Time {
        Time::UNIX_EPOCH + Duration::from_seconds(1_800_000_000 + seconds)
    }

    fn spec(behavior: Option<serde_json::Value>) -> AutoscalerSpec {
        let mut json = serde_json::json!({
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 10
        });
        if let Some(b) = behavior {
            json["behavior"] = b;
        }
        crate::format::parse_spec(&json).expect("valid spec")
    }

    fn rec(replicas: i32, seconds: i64) -> Recommendation {
        Recommendation {
            replicas,
            timestamp: at(seconds),
        }
    }

    fn event(seconds: i64) -> ScaleEvent {
        ScaleEvent {
            replica_change: 1,
            timestamp: at(seconds),
            outdated: false,
        }
    }

    #[test]
    fn without_behavior_the_oldest_recommendation_leaves_the_downscale_window_first() {
        let config = Config::default();
        let history = History {
            recommendations: Some(vec![rec(5, -200), rec(3, -100), rec(2, -400)]),
            ..History::default()
        };
        // The 5 m window: the one at -400 s is out already; -200 s leaves at +100 s.
        assert_eq!(
            next_release(&spec(None), &config, &history, at(0)),
            Some(at(100))
        );
        // Scale events do not matter to the legacy limit.
        let with_events = History {
            scale_up_events: vec![event(-1)],
            ..history
        };
        assert_eq!(
            next_release(&spec(None), &config, &with_events, at(0)),
            Some(at(100))
        );
    }

    #[test]
    fn with_behavior_a_scale_event_leaves_its_policy_period() {
        let config = Config::default();
        let behavior = serde_json::json!({
            "scaleUp": {"stabilizationWindowSeconds": 0,
                        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
            "scaleDown": {"stabilizationWindowSeconds": 30}
        });
        let history = History {
            recommendations: Some(vec![rec(4, -10)]),
            scale_up_events: vec![event(-50)],
            scale_down_events: Vec::new(),
        };
        // The event at -50 s leaves the 60 s period at +10 s, before the recommendation leaves
        // the 30 s scale-down window at +20 s.
        assert_eq!(
            next_release(&spec(Some(behavior.clone())), &config, &history, at(0)),
            Some(at(10))
        );
        assert_eq!(
            next_release(&spec(Some(behavior)), &config, &history, at(10)),
            Some(at(20))
        );
    }

    fn limited_by(reason: &'static str) -> DecisionTrace {
        DecisionTrace {
            proposal: Some(9),
            limits: Some(crate::trace::LimitsTrace {
                input: 9,
                applied: reason.into(),
                result: 8,
                ..crate::trace::LimitsTrace::default()
            }),
            desired_replicas: 8,
            ..DecisionTrace::default()
        }
    }

    #[test]
    fn the_legacy_scale_up_limit_is_no_release_but_a_behavior_rate_limit_is() {
        let legacy = spec(None);
        let behavior = spec(Some(
            serde_json::json!({"scaleUp": {"stabilizationWindowSeconds": 0}}),
        ));
        let up = limited_by(REASON_SCALE_UP_LIMIT);
        // Deciding again before the next sync would double the size just written a second
        // time: upstream applies max(2 x current, 4) once per sync.
        assert!(!held(&legacy, &up));
        assert!(held(&behavior, &up));
        assert!(held(&behavior, &limited_by(REASON_SCALE_DOWN_LIMIT)));
        assert!(!held(&legacy, &limited_by("DesiredWithinRange")));
        // A legacy scale-down held by the downscale window still is one.
        let stabilized = DecisionTrace {
            stabilization: Some(crate::trace::StabilizationTrace {
                proposal: 2,
                result: 4,
                ..crate::trace::StabilizationTrace::default()
            }),
            ..DecisionTrace::default()
        };
        assert!(held(&legacy, &stabilized));
    }

    #[test]
    fn nothing_remembered_releases_nothing() {
        let config = Config::default();
        assert_eq!(
            next_release(&spec(None), &config, &History::default(), at(0)),
            None
        );
        let old = History {
            recommendations: Some(vec![rec(5, -1_000)]),
            ..History::default()
        };
        assert_eq!(next_release(&spec(None), &config, &old, at(0)), None);
    }
}
