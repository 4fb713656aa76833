//! Scale intents: a scale write announced in the status before it is made, so that whoever
//! decides next (this replica after a restart, or another after a fail-over) knows whether it
//! happened even when the status write that records its scale event never landed.
//!
//! Without it the order scale write → status write has a gap: a crash between the two leaves
//! the persisted history without the scale event, and the next leader would spend the same
//! rate-limit budget again. With the intent persisted first, the successor compares the
//! target's size with the intent: the intended size means the write happened, and its scale
//! event is added exactly as the writer would have added it; any other size means it did not
//! (or someone else has written since), and nothing is added, as upstream records nothing for
//! a failed write.
//!
//! The intent also carries the recommendation that decision recorded. Upstream keeps it in
//! memory whether or not the write lands, and the scale-down window reads it: without it, a
//! successor whose restored runs end before the scale-up (the status write after it failed)
//! would let the size fall back inside the window of the recommendation that raised it.

use crate::model::{DecisionInput, History, Recommendation, ScaleRead};
use crate::normalize::{self, BehaviorRules};
use crate::time::Time;

/// A scale write about to be made: from which size, to which, decided when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleIntent {
    /// `spec.replicas` read before the write.
    pub from: i32,
    /// The size being written.
    pub to: i32,
    /// The decision's instant (the scale event's timestamp, as the writer records it).
    pub at: Time,
    /// The recommendation the decision recorded at `at`, if it got that far.
    pub recommendation: Option<i32>,
}

/// Settles an intent found in the persisted status against the scale `input` read, before
/// deciding: when the target has the intended size, the scale event is added to
/// `input.history` (seeding an empty one if needed). Returns whether the write happened.
/// An event already recorded at the intent's instant is not added twice.
///
/// The intent's recommendation is added to a restored memory at the intent's instant in any
/// case (the decision made it whether or not its write landed), unless one is already there;
/// an unseeded memory is left to be seeded as usual.
pub fn settle_intent(input: &mut DecisionInput, intent: &ScaleIntent) -> bool {
    if let Some(replicas) = intent.recommendation
        && let Some(recs) = input
            .history
            .as_mut()
            .and_then(|h| h.recommendations.as_mut())
        && !recs.iter().any(|r| r.timestamp == intent.at)
    {
        recs.push(Recommendation {
            replicas,
            timestamp: intent.at,
        });
    }
    let ScaleRead::Read(scale) = &input.scale else {
        // Unknown size: neither settled nor refuted. The next reconcile reads again.
        return false;
    };
    if intent.from == intent.to || scale.spec_replicas != intent.to {
        return false;
    }
    let Some(behavior) = &input.spec.behavior else {
        // Without behavior no scale events are kept (see `Plan::complete`).
        return true;
    };
    let rules = BehaviorRules::with_defaults(behavior, &input.config);
    let history = input.history.get_or_insert_with(History::default);
    let recorded = history
        .scale_up_events
        .iter()
        .chain(&history.scale_down_events)
        .any(|e| e.timestamp == intent.at);
    if !recorded {
        normalize::store_scale_event(
            &mut history.scale_up_events,
            &mut history.scale_down_events,
            &rules,
            intent.from,
            intent.to,
            intent.at,
        );
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Behavior, Scale};
    use crate::time::Duration;

    fn input(spec_replicas: i32, behavior: bool) -> DecisionInput {
        let doc = serde_json::json!({
            "now": "2026-12-02T10:00:00Z",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "maxReplicas": 10},
            "scale": {"specReplicas": spec_replicas, "statusReplicas": spec_replicas, "selector": "app=web"}
        });
        let mut input = match crate::format::parse_input(&doc) {
            Ok(parsed) => parsed.input,
            Err(e) => panic!("{e}"),
        };
        input.scale = ScaleRead::Read(Scale {
            spec_replicas,
            status_replicas: spec_replicas,
            selector: "app=web".into(),
        });
        input.spec.behavior = behavior.then(Behavior::default);
        input
    }

    fn intent(from: i32, to: i32, at: Time) -> ScaleIntent {
        ScaleIntent {
            from,
            to,
            at,
            recommendation: None,
        }
    }

    /// A restored memory whose runs end before the intent: one recommendation of `replicas`.
    fn restored(i: &mut DecisionInput, replicas: i32, at: Time) {
        i.history = Some(History {
            recommendations: Some(vec![Recommendation {
                replicas,
                timestamp: at,
            }]),
            ..History::default()
        });
    }

    #[test]
    fn the_intents_recommendation_joins_the_restored_memory_whether_or_not_the_write_landed() {
        for (size, landed) in [(12, true), (10, false)] {
            let mut i = input(size, true);
            let at = i.now - Duration::from_seconds(5);
            let before = i.now - Duration::from_seconds(60);
            restored(&mut i, 10, before);
            let intent = ScaleIntent {
                recommendation: Some(12),
                ..intent(10, 12, at)
            };
            assert_eq!(settle_intent(&mut i, &intent), landed);
            let recs = i
                .history
                .and_then(|h| h.recommendations)
                .expect("recommendations");
            assert_eq!(
                recs.last(),
                Some(&Recommendation {
                    replicas: 12,
                    timestamp: at
                }),
                "size {size}"
            );
        }
    }

    #[test]
    fn a_recommendation_already_recorded_at_the_intents_instant_is_kept() {
        let mut i = input(12, true);
        let at = i.now;
        restored(&mut i, 11, at);
        let intent = ScaleIntent {
            recommendation: Some(12),
            ..intent(10, 12, at)
        };
        settle_intent(&mut i, &intent);
        let recs = i.history.and_then(|h| h.recommendations).expect("recs");
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].replicas, 11);
    }

    #[test]
    fn an_unseeded_memory_is_left_to_be_seeded() {
        let mut i = input(12, true);
        let at = i.now;
        let intent = ScaleIntent {
            recommendation: Some(12),
            ..intent(10, 12, at)
        };
        assert!(settle_intent(&mut i, &intent));
        assert_eq!(i.history.and_then(|h| h.recommendations), None);
    }

    #[test]
    fn a_target_at_the_intended_size_gets_the_writers_scale_event() {
        let mut i = input(4, true);
        let at = i.now - Duration::from_seconds(10);
        assert!(settle_intent(&mut i, &intent(2, 4, at)));
        let h = i.history.expect("history seeded");
        assert_eq!(h.scale_up_events.len(), 1);
        assert_eq!(h.scale_up_events[0].replica_change, 2);
        assert_eq!(h.scale_up_events[0].timestamp, at);
        assert!(h.scale_down_events.is_empty());
    }

    #[test]
    fn a_scale_down_intent_is_recorded_as_a_scale_down_event() {
        let mut i = input(3, true);
        let at = i.now;
        assert!(settle_intent(&mut i, &intent(7, 3, at)));
        let h = i.history.expect("history");
        assert_eq!(h.scale_down_events.len(), 1);
        assert_eq!(h.scale_down_events[0].replica_change, 4);
    }

    #[test]
    fn a_target_at_another_size_means_the_write_did_not_happen() {
        let mut i = input(2, true);
        let at = i.now;
        assert!(!settle_intent(&mut i, &intent(2, 4, at)));
        assert_eq!(i.history, None);
    }

    #[test]
    fn an_unread_scale_settles_nothing() {
        let mut i = input(4, true);
        i.scale = ScaleRead::Failed("timeout".into());
        let at = i.now;
        assert!(!settle_intent(&mut i, &intent(2, 4, at)));
        assert_eq!(i.history, None);
    }

    #[test]
    fn an_event_already_recorded_at_the_intents_instant_is_not_added_twice() {
        let mut i = input(4, true);
        let at = i.now;
        assert!(settle_intent(&mut i, &intent(2, 4, at)));
        assert!(settle_intent(&mut i, &intent(2, 4, at)));
        assert_eq!(i.history.expect("history").scale_up_events.len(), 1);
    }

    #[test]
    fn without_behavior_no_event_is_kept_as_the_writer_keeps_none() {
        let mut i = input(4, false);
        let at = i.now;
        assert!(settle_intent(&mut i, &intent(2, 4, at)));
        assert_eq!(i.history, None);
    }
}
