//! One reconcile (contract 1.3, steps 1–13), split in two phases around the
//! only side effect the core cannot perform: writing the scale.
//!
//! * [`plan`] computes everything up to the scale write: conditions, events,
//!   metric reports, the new recommendation memory and, if any, the replica
//!   count to write ([`Plan::scale_write`]).
//! * [`Plan::complete`] takes the outcome of that write (`Ok(())` when it
//!   succeeded, or the error text) and finishes the decision: `SuccessfulRescale`
//!   or `FailedRescale`, the scale-event memory, `ScaledToZero`, and the status
//!   values to write.
//!
//! A caller without I/O (`tidal calc`, tests) uses [`decide`] with the write
//! outcome known up front.

mod intent;
mod metrics;
mod plan;
mod policy;

pub use intent::{ScaleIntent, settle_intent};
pub use plan::plan;
pub(crate) use policy::policy_names;

use crate::conditions::{
    ABLE_TO_SCALE, REASON_SUCCEEDED_RESCALE, SCALED_TO_ZERO, remove_condition, set_condition,
};
use crate::conditions::{
    REASON_FAILED_RESCALE, REASON_FAILED_UPDATE_SCALE, REASON_NOT_SCALED_TO_ZERO,
    REASON_SUCCESSFUL_RESCALE,
};
use crate::model::{
    Condition, ConditionStatus, Decision, DecisionInput, Event, EventType, History, MetricReport,
};
use crate::normalize::{self, BehaviorRules};
use crate::time::Time;
use crate::trace::DecisionTrace;

/// The first phase of a decision: everything before the scale write.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    now: Time,
    state: State,
    /// Set when the decision stops before the write (or without one).
    finished: Option<Decision>,
    /// The replica count to write, when the decision rescales.
    write: Option<i32>,
}

/// What the second phase needs.
#[derive(Debug, Clone, PartialEq)]
struct State {
    conditions: Vec<Condition>,
    events: Vec<Event>,
    history: History,
    metrics: Vec<MetricReport>,
    current: i32,
    previous_desired: i32,
    reason: String,
    min: i32,
    has_object_or_external: bool,
    scale_to_zero_gate: bool,
    behavior: Option<BehaviorRules>,
    trace: DecisionTrace,
}

impl State {
    /// The decision when nothing was written: `desired` is what the status reports, `reason`
    /// the reason text (empty unless a write was attempted); no scale event, no rescale.
    fn unwritten(self, desired: i32, reason: String) -> Decision {
        Decision {
            desired_replicas: desired,
            current_replicas: self.current,
            rescale: false,
            reason,
            metrics: self.metrics,
            conditions: self.conditions,
            events: self.events,
            history: Some(self.history),
            last_scale_time_updated: false,
            trace: self.trace,
        }
    }
}

impl Plan {
    /// The replica count the controller must now write to the scale, if any.
    pub fn scale_write(&self) -> Option<i32> {
        if self.finished.is_some() {
            None
        } else {
            self.write
        }
    }

    /// The recommendation this decision recorded in its memory at its instant (what a scale
    /// intent carries, see [`crate::settle_intent`]); `None` when it stopped before that.
    pub fn recommendation(&self) -> Option<i32> {
        let history = match &self.finished {
            Some(d) => d.history.as_ref()?,
            None => &self.state.history,
        };
        // Newest first: a seeded entry at the same instant comes before the decision's own.
        history
            .recommendations
            .as_ref()?
            .iter()
            .rev()
            .find(|r| r.timestamp == self.now)
            .map(|r| r.replicas)
    }

    /// Finishes the decision with the outcome of the scale write. The outcome
    /// is ignored when [`Plan::scale_write`] is `None`.
    pub fn complete(self, write_result: Result<(), String>) -> Decision {
        if let Some(d) = self.finished {
            return d;
        }
        let now = self.now;
        let mut s = self.state;
        let Some(desired) = self.write else {
            // No write: the status reports the current size.
            s.trace.desired_replicas = s.current;
            let current = s.current;
            return s.unwritten(current, String::new());
        };
        s.trace.desired_replicas = desired;
        s.trace.reason.clone_from(&s.reason);
        match write_result {
            Err(err) => {
                s.trace.write_error = Some(err.clone());
                s.events.push(warning(
                    REASON_FAILED_RESCALE,
                    format!("New size: {desired}; reason: {}; error: {err}", s.reason),
                ));
                set_condition(
                    &mut s.conditions,
                    ABLE_TO_SCALE,
                    ConditionStatus::False,
                    REASON_FAILED_UPDATE_SCALE,
                    format!("the HPA controller was unable to update the target scale: {err}"),
                    now,
                );
                let (previous, reason) = (s.previous_desired, std::mem::take(&mut s.reason));
                s.unwritten(previous, reason)
            }
            Ok(()) => {
                s.trace.rescale = true;
                set_condition(
                    &mut s.conditions,
                    ABLE_TO_SCALE,
                    ConditionStatus::True,
                    REASON_SUCCEEDED_RESCALE,
                    format!("the HPA controller was able to update the target scale to {desired}"),
                    now,
                );
                s.events.push(Event {
                    kind: EventType::Normal,
                    reason: REASON_SUCCESSFUL_RESCALE.to_string(),
                    message: format!("New size: {desired}; reason: {}", s.reason),
                });
                if let Some(rules) = &s.behavior {
                    let h = &mut s.history;
                    normalize::store_scale_event(
                        &mut h.scale_up_events,
                        &mut h.scale_down_events,
                        rules,
                        s.current,
                        desired,
                        now,
                    );
                }
                if s.scale_to_zero_gate {
                    if s.current > 0 && desired == 0 && s.min == 0 && s.has_object_or_external {
                        set_condition(
                            &mut s.conditions,
                            SCALED_TO_ZERO,
                            ConditionStatus::True,
                            SCALED_TO_ZERO,
                            "the HPA controller scaled the workload to zero".to_string(),
                            now,
                        );
                    } else {
                        set_condition(
                            &mut s.conditions,
                            SCALED_TO_ZERO,
                            ConditionStatus::False,
                            REASON_NOT_SCALED_TO_ZERO,
                            "the HPA controller did not scale the workload to zero".to_string(),
                            now,
                        );
                    }
                } else {
                    remove_condition(&mut s.conditions, SCALED_TO_ZERO);
                }
                Decision {
                    desired_replicas: desired,
                    current_replicas: s.current,
                    rescale: true,
                    reason: s.reason,
                    metrics: s.metrics,
                    conditions: s.conditions,
                    events: s.events,
                    history: Some(s.history),
                    last_scale_time_updated: true,
                    trace: s.trace,
                }
            }
        }
    }
}

/// Runs a whole decision; `write` is called with the new size when the
/// decision writes the scale and returns that write's outcome.
pub fn decide(input: &DecisionInput, write: impl FnOnce(i32) -> Result<(), String>) -> Decision {
    let p = plan(input);
    match p.scale_write() {
        Some(n) => {
            let outcome = write(n);
            p.complete(outcome)
        }
        None => p.complete(Ok(())),
    }
}

fn warning(reason: &str, message: String) -> Event {
    Event {
        kind: EventType::Warning,
        reason: reason.to_string(),
        message,
    }
}

fn finished(now: Time, d: Decision) -> Plan {
    Plan {
        now,
        state: State {
            conditions: Vec::new(),
            events: Vec::new(),
            history: History::default(),
            metrics: Vec::new(),
            current: 0,
            previous_desired: 0,
            reason: String::new(),
            min: 0,
            has_object_or_external: false,
            scale_to_zero_gate: false,
            behavior: None,
            trace: DecisionTrace::default(),
        },
        finished: Some(d),
        write: None,
    }
}
