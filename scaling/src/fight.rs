//! Replica fights: another writer (Argo CD self-heal, `helm upgrade`, `kubectl scale`, a second
//! autoscaler) sets the target's `spec.replicas` between two reconciles, the autoscaler sets it
//! back, and replicas oscillate with nobody told.
//!
//! This module owns the decisions about such a change, from values only: whether a change of
//! replicas is one Tidal did not make ([`change`]), who made it according to the target's
//! `metadata.managedFields` and Tidal's own write history ([`writer`], [`report`]), what the
//! `ReplicaFight` condition and the Warning event say, and whether Tidal yields ([`assess`]).
//! The operator reads the scale, remembers what it saw and wrote ([`Seen`], [`after`]), reads
//! managedFields only when [`change`] finds one, and passes `now` in.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::conditions::{
    REASON_NO_RECENT_REPLICA_CHANGE, REASON_REPLICAS_CHANGED_BY_OTHER_MANAGER,
    REASON_YIELDING_TO_OTHER_MANAGER,
};
use crate::model::{ConditionStatus, Event, EventType};
use crate::time::{Duration, Time};
use crate::trace::TraceTime;

/// The field manager of Tidal's scale writes: what tells its managedFields entry apart from
/// every other writer's.
pub const FIELD_MANAGER: &str = "tidal";

/// The manager named when nobody can be named (managedFields unreadable, or no entry owns
/// `spec.replicas`).
pub const UNKNOWN_MANAGER: &str = "unknown";

/// Under the `Report` policy, how long `ReplicaFight` stays True after the last change by
/// another manager: the default downscale stabilization window. A writer that fights an
/// autoscaler (GitOps self-heal, a second autoscaler) undoes its writes within minutes, so five
/// quiet minutes say the fight stopped.
pub const REPORT_QUIET: Duration = Duration::from_seconds(300);

/// How long Tidal stops writing under the `Yield` policy when `yieldSeconds` is not given: the
/// same five minutes, so that what Tidal recommended before the yield has left the default
/// downscale window when it writes again, and it resumes from the size the other manager set.
pub const DEFAULT_YIELD: Duration = Duration::from_seconds(300);

/// What Tidal does when another manager changed the target's replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Report it (condition, event, counter) and keep deciding and writing exactly as the
    /// built-in HPA would.
    #[default]
    Report,
    /// Report it and write no scale for this long after the change was seen.
    Yield(Duration),
}

/// Tidal's last scale write to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write {
    /// The size written (or attempted).
    pub replicas: i32,
    /// When.
    pub at: Time,
    /// Whether the API server acknowledged it. A failed write may still have landed (an answer
    /// lost to a timeout), so its size is not taken for someone else's.
    pub succeeded: bool,
}

/// What Tidal remembers of a target's replicas from one reconcile to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The target (`apiVersion/Kind/name`): replicas of another target are not a change.
    pub target: String,
    /// `spec.replicas` as the last reconcile left it: what Tidal wrote, else what it read.
    pub replicas: i32,
    /// Tidal's last write to this target.
    pub last_write: Option<Write>,
}

/// A change of `spec.replicas` that Tidal did not make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// What Tidal last saw or wrote.
    pub from: i32,
    /// What it reads now.
    pub to: i32,
}

/// Whether `replicas`, read now from `target`, changed since Tidal last saw or wrote it. Never
/// on the first reconcile (a target created with replicas before Tidal saw it is no fight),
/// after the AutoScaler was pointed at another target, or when the value is what Tidal's last,
/// unacknowledged write asked for.
pub fn change(seen: Option<&Seen>, target: &str, replicas: i32) -> Option<Change> {
    let seen = seen.filter(|s| s.target == target)?;
    let own_unacknowledged = seen
        .last_write
        .is_some_and(|w| !w.succeeded && w.replicas == replicas);
    (seen.replicas != replicas && !own_unacknowledged).then_some(Change {
        from: seen.replicas,
        to: replicas,
    })
}

/// What to remember after a reconcile of `target`: `read` is the `spec.replicas` it read
/// (`None` when the scale could not be read: the memory stays as it was), `write` the size it
/// wrote and whether the write succeeded.
pub fn after(
    previous: Option<&Seen>,
    target: &str,
    read: Option<i32>,
    write: Option<(i32, bool)>,
    now: Time,
) -> Option<Seen> {
    let Some(read) = read else {
        return previous.cloned();
    };
    let replicas = match write {
        Some((written, true)) => written,
        _ => read,
    };
    let last_write = write
        .map(|(replicas, succeeded)| Write {
            replicas,
            at: now,
            succeeded,
        })
        .or_else(|| {
            previous
                .filter(|p| p.target == target)
                .and_then(|p| p.last_write)
        });
    Some(Seen {
        target: target.to_string(),
        replicas,
        last_write,
    })
}

/// One `metadata.managedFields` entry, as the fight check reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldsEntry {
    /// `manager`.
    pub manager: String,
    /// `operation`: `Update` or `Apply`.
    pub operation: String,
    /// `subresource`: `scale` for writes through the scale subresource, empty otherwise.
    pub subresource: String,
    /// `time`: when the manager last changed a field it owns (whole seconds, the API server's
    /// clock).
    pub time: Option<Time>,
    /// `fieldsV1`: the set of fields it owns.
    pub fields: Value,
}

/// Whether a `fieldsV1` set owns `spec.replicas`.
pub fn owns_replicas(fields: &Value) -> bool {
    fields
        .get("f:spec")
        .and_then(|spec| spec.get("f:replicas"))
        .is_some()
}

/// The entry that wrote `spec.replicas`: among the entries owning it, the most recent one
/// that is not Tidal's (the later listed on equal times); Tidal's own only when no other owns
/// it. Several managers own a field together when they applied the same value.
pub fn writer(entries: &[FieldsEntry]) -> Option<&FieldsEntry> {
    let owners = entries.iter().filter(|e| owns_replicas(&e.fields));
    let (own, others): (Vec<&FieldsEntry>, Vec<&FieldsEntry>) =
        owners.partition(|e| e.manager == FIELD_MANAGER);
    others
        .into_iter()
        .max_by_key(|e| e.time)
        .or_else(|| own.into_iter().max_by_key(|e| e.time))
}

/// What Tidal found out about one change of replicas it did not make: kept in
/// `status.tidal.lastReplicaFight`, and the source of the condition, the event and `explain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ReplicaFight {
    /// The field manager that owns `spec.replicas` now (`unknown` when none can be named).
    pub manager: String,
    /// Its operation: `Update` or `Apply`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub operation: String,
    /// `scale` when it wrote through the scale subresource; empty for the object itself.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subresource: String,
    /// When it wrote (managedFields' time, by the API server's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_at: Option<TraceTime>,
    /// `spec.replicas` as Tidal last saw or wrote it.
    pub from: i32,
    /// `spec.replicas` as the other manager left it.
    pub to: i32,
    /// When Tidal saw the change (the reconcile's instant, whole seconds).
    pub detected_at: TraceTime,
    /// Why the manager is uncertain or unknown, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Under the `Yield` policy: Tidal writes no scale before this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yield_until: Option<TraceTime>,
}

/// The report of `change`, from the target's managedFields (or why they could not be read) and
/// Tidal's own last write (which tells another writer under Tidal's field manager apart).
pub fn report(
    change: Change,
    fields: Result<&[FieldsEntry], String>,
    last_write: Option<&Write>,
    now: Time,
) -> ReplicaFight {
    let mut fight = ReplicaFight {
        manager: UNKNOWN_MANAGER.to_string(),
        operation: String::new(),
        subresource: String::new(),
        written_at: None,
        from: change.from,
        to: change.to,
        detected_at: TraceTime(whole_second(now)),
        note: None,
        yield_until: None,
    };
    let entries = match fields {
        Ok(entries) => entries,
        Err(err) => {
            fight.note = Some(format!(
                "the target's managedFields could not be read: {err}"
            ));
            return fight;
        }
    };
    let Some(entry) = writer(entries) else {
        fight.note = Some("no managedFields entry of the target owns spec.replicas".to_string());
        return fight;
    };
    fight.manager.clone_from(&entry.manager);
    fight.operation.clone_from(&entry.operation);
    fight.subresource.clone_from(&entry.subresource);
    fight.written_at = entry.time.map(TraceTime);
    if entry.manager == FIELD_MANAGER {
        let ours = match last_write {
            Some(w) => format!("this AutoScaler last wrote {} at {}", w.replicas, w.at),
            None => "this AutoScaler has not written it".to_string(),
        };
        fight.note = Some(format!(
            "the writer uses Tidal's field manager, but {ours}: another Tidal operator or AutoScaler writes this target"
        ));
    }
    fight
}

/// What the fight check concludes for one reconcile.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assessment {
    /// The record to keep in status: the new one, else the stored one.
    pub record: Option<ReplicaFight>,
    /// The `ReplicaFight` condition as `(status, reason, message)`; `None` keeps it out of the
    /// status (no fight was ever seen, so the status looks as the built-in HPA's does).
    pub condition: Option<(ConditionStatus, &'static str, String)>,
    /// The Warning event of a change seen in this reconcile.
    pub event: Option<Event>,
    /// Whether Tidal must not write the scale now (policy `Yield`, within the yield).
    pub yielding: bool,
}

/// The fight check of one reconcile at `now`: `detected` is the change this reconcile found,
/// `stored` the record of the last one (from status).
pub fn assess(
    policy: Policy,
    detected: Option<ReplicaFight>,
    stored: Option<ReplicaFight>,
    now: Time,
) -> Assessment {
    if let Some(mut fight) = detected {
        if let Policy::Yield(period) = policy {
            fight.yield_until = Some(TraceTime(fight.detected_at.0 + period));
        }
        let yielding = fight.yield_until.is_some();
        let (reason, message) = active(&fight, yielding);
        return Assessment {
            event: Some(Event {
                kind: EventType::Warning,
                reason: reason.to_string(),
                message: message.clone(),
            }),
            condition: Some((ConditionStatus::True, reason, message)),
            record: Some(fight),
            yielding,
        };
    }
    let Some(fight) = stored else {
        return Assessment::default();
    };
    // A record made under Yield stops the writes only while the policy still says Yield.
    let yielding = matches!(policy, Policy::Yield(_))
        && fight.yield_until.is_some_and(|until| now.before(until.0));
    let quiet_from = fight
        .yield_until
        .map_or(fight.detected_at.0 + REPORT_QUIET, |until| until.0);
    let condition = if now.before(quiet_from) {
        let (reason, message) = active(&fight, yielding);
        (ConditionStatus::True, reason, message)
    } else {
        let ended = match fight.yield_until {
            Some(until) => format!(
                "the yield ended at {}; Tidal writes the scale again",
                until.0
            ),
            None => format!("none in the {}s since", REPORT_QUIET.whole_seconds()),
        };
        (
            ConditionStatus::False,
            REASON_NO_RECENT_REPLICA_CHANGE,
            format!(
                "no manager other than Tidal has changed spec.replicas since {}: {ended} (the last change: {})",
                fight.detected_at.0,
                describe(&fight)
            ),
        )
    };
    Assessment {
        record: Some(fight),
        condition: Some(condition),
        event: None,
        yielding,
    }
}

/// The reason and message of a fight that is still on.
fn active(fight: &ReplicaFight, yielding: bool) -> (&'static str, String) {
    match fight.yield_until.filter(|_| yielding) {
        Some(until) => (
            REASON_YIELDING_TO_OTHER_MANAGER,
            format!(
                "{}; Tidal yields and does not write the scale until {} (spec.tidal.replicaFight.policy Yield, yieldSeconds {})",
                describe(fight),
                until.0,
                Duration::from_nanos(until.0.unix_nanos() - fight.detected_at.0.unix_nanos())
                    .whole_seconds()
            ),
        ),
        None => (
            REASON_REPLICAS_CHANGED_BY_OTHER_MANAGER,
            format!(
                "{}; Tidal still decides and writes as the built-in HPA would, so its next write may set them back (spec.tidal.replicaFight.policy Report)",
                describe(fight)
            ),
        ),
    }
}

/// `spec.replicas changed from 2 to 5 by manager argocd (Apply, at …), not by Tidal (seen at
/// …)`, with the note when there is one.
pub fn describe(fight: &ReplicaFight) -> String {
    let mut how = Vec::new();
    if !fight.operation.is_empty() {
        how.push(fight.operation.clone());
    }
    if !fight.subresource.is_empty() {
        how.push(format!("subresource {}", fight.subresource));
    }
    match fight.written_at {
        Some(at) => how.push(format!("at {}", at.0)),
        // Seen on Kubernetes 1.36: the entry of a write through the scale subresource (kubectl
        // scale) has no time; the instant Tidal saw the change is then the best there is.
        None if fight.manager != UNKNOWN_MANAGER => how.push("no time recorded".to_string()),
        None => {}
    }
    let how = if how.is_empty() {
        String::new()
    } else {
        format!(" ({})", how.join(", "))
    };
    let note = fight
        .note
        .as_ref()
        .map(|n| format!("; {n}"))
        .unwrap_or_default();
    format!(
        "spec.replicas changed from {} to {} by manager {}{how}, not by Tidal (seen at {}){note}",
        fight.from, fight.to, fight.manager, fight.detected_at.0
    )
}

/// `t` without its fraction of a second: records and messages read like managedFields' times.
fn whole_second(t: Time) -> Time {
    const NANOS: i128 = 1_000_000_000;
    Time::from_unix_nanos(t.unix_nanos().div_euclid(NANOS) * NANOS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(seconds: i64) -> Time {
        Time::from_unix_nanos(i128::from(seconds) * 1_000_000_000)
    }

    fn entry(manager: &str, subresource: &str, at: i64, fields: Value) -> FieldsEntry {
        FieldsEntry {
            manager: manager.into(),
            operation: "Update".into(),
            subresource: subresource.into(),
            time: Some(t(at)),
            fields,
        }
    }

    fn replicas_fields() -> Value {
        json!({"f:spec": {"f:replicas": {}}})
    }

    fn seen(replicas: i32, last_write: Option<Write>) -> Seen {
        Seen {
            target: "apps/v1/Deployment/web".into(),
            replicas,
            last_write,
        }
    }

    const TARGET: &str = "apps/v1/Deployment/web";

    #[test]
    fn the_first_sight_of_a_target_is_no_change() {
        assert_eq!(change(None, TARGET, 7), None);
    }

    #[test]
    fn replicas_other_than_what_tidal_saw_are_a_change() {
        assert_eq!(
            change(Some(&seen(2, None)), TARGET, 5),
            Some(Change { from: 2, to: 5 })
        );
        assert_eq!(change(Some(&seen(5, None)), TARGET, 5), None);
    }

    #[test]
    fn another_target_is_no_change() {
        assert_eq!(
            change(Some(&seen(2, None)), "apps/v1/Deployment/api", 5),
            None
        );
    }

    #[test]
    fn an_unacknowledged_write_that_landed_is_not_a_change() {
        let lost = Write {
            replicas: 5,
            at: t(10),
            succeeded: false,
        };
        assert_eq!(change(Some(&seen(2, Some(lost))), TARGET, 5), None);
        assert_eq!(
            change(Some(&seen(2, Some(lost))), TARGET, 6),
            Some(Change { from: 2, to: 6 })
        );
    }

    #[test]
    fn memory_after_a_write_is_the_size_written_and_after_a_read_the_size_read() {
        let written = after(None, TARGET, Some(2), Some((4, true)), t(10)).expect("seen");
        assert_eq!(written.replicas, 4);
        assert_eq!(
            written.last_write,
            Some(Write {
                replicas: 4,
                at: t(10),
                succeeded: true
            })
        );
        let failed = after(Some(&written), TARGET, Some(4), Some((6, false)), t(20)).expect("seen");
        assert_eq!(failed.replicas, 4, "a failed write leaves what was read");
        let read = after(Some(&written), TARGET, Some(3), None, t(30)).expect("seen");
        assert_eq!(read.replicas, 3);
        assert_eq!(
            read.last_write, written.last_write,
            "the write history stays"
        );
        assert_eq!(
            after(Some(&written), TARGET, None, None, t(40)),
            Some(written.clone()),
            "an unread scale changes nothing"
        );
        let retargeted = after(
            Some(&written),
            "apps/v1/Deployment/api",
            Some(1),
            None,
            t(50),
        )
        .expect("seen");
        assert_eq!(
            retargeted.last_write, None,
            "writes to the old target are not kept"
        );
    }

    #[test]
    fn the_writer_is_the_latest_other_manager_owning_spec_replicas() {
        let entries = [
            entry("tidal", "scale", 100, replicas_fields()),
            entry(
                "kube-controller-manager",
                "status",
                150,
                json!({"f:status": {}}),
            ),
            entry("helm", "", 90, replicas_fields()),
            entry("argocd", "", 120, replicas_fields()),
            entry(
                "kubectl-edit",
                "",
                200,
                json!({"f:spec": {"f:template": {}}}),
            ),
        ];
        assert_eq!(writer(&entries).map(|e| e.manager.as_str()), Some("argocd"));
    }

    #[test]
    fn tidal_is_the_writer_only_when_no_other_manager_owns_spec_replicas() {
        let entries = [
            entry("tidal", "scale", 100, replicas_fields()),
            entry(
                "kubectl-create",
                "",
                50,
                json!({"f:spec": {"f:selector": {}}}),
            ),
        ];
        assert_eq!(writer(&entries).map(|e| e.manager.as_str()), Some("tidal"));
        assert_eq!(writer(&entries[1..]), None);
    }

    #[test]
    fn the_report_names_manager_operation_subresource_time_and_values() {
        let entries = [entry("kubectl", "scale", 95, replicas_fields())];
        let fight = report(
            Change { from: 2, to: 5 },
            Ok(&entries),
            None,
            Time::from_unix_nanos(100_500_000_000),
        );
        assert_eq!(fight.manager, "kubectl");
        assert_eq!(fight.detected_at, TraceTime(t(100)), "whole seconds");
        assert_eq!(
            describe(&fight),
            "spec.replicas changed from 2 to 5 by manager kubectl (Update, subresource scale, at 1970-01-01T00:01:35Z), not by Tidal (seen at 1970-01-01T00:01:40Z)"
        );
        let untimed = [FieldsEntry {
            time: None,
            ..entries[0].clone()
        }];
        let fight = report(Change { from: 2, to: 5 }, Ok(&untimed), None, t(100));
        assert!(
            describe(&fight).contains("(Update, subresource scale, no time recorded)"),
            "{}",
            describe(&fight)
        );
    }

    #[test]
    fn unreadable_managed_fields_report_an_unknown_manager_and_why() {
        let fight = report(
            Change { from: 2, to: 5 },
            Err("deployments.apps \"web\" is forbidden".into()),
            None,
            t(100),
        );
        assert_eq!(fight.manager, UNKNOWN_MANAGER);
        assert!(describe(&fight).contains("could not be read: deployments.apps"));
    }

    #[test]
    fn a_writer_under_tidals_manager_is_told_apart_by_tidals_write_history() {
        let entries = [entry("tidal", "scale", 95, replicas_fields())];
        let ours = Write {
            replicas: 2,
            at: t(40),
            succeeded: true,
        };
        let fight = report(Change { from: 2, to: 5 }, Ok(&entries), Some(&ours), t(100));
        let note = fight.note.expect("note");
        assert!(
            note.contains("this AutoScaler last wrote 2 at 1970-01-01T00:00:40Z")
                && note.contains("another Tidal"),
            "{note}"
        );
    }

    fn detected(at: i64) -> ReplicaFight {
        let entries = [entry("argocd", "", at, replicas_fields())];
        report(Change { from: 2, to: 5 }, Ok(&entries), None, t(at))
    }

    #[test]
    fn report_policy_sets_the_condition_and_a_warning_but_never_yields() {
        let a = assess(Policy::Report, Some(detected(100)), None, t(100));
        let (status, reason, message) = a.condition.clone().expect("condition");
        assert_eq!(
            (status, reason),
            (
                ConditionStatus::True,
                REASON_REPLICAS_CHANGED_BY_OTHER_MANAGER
            )
        );
        assert!(message.contains("by manager argocd") && message.contains("2 to 5"));
        let event = a.event.expect("event");
        assert_eq!(
            (event.kind, event.reason.as_str(), &event.message),
            (EventType::Warning, reason, &message)
        );
        assert!(!a.yielding);
        assert_eq!(a.record.and_then(|r| r.yield_until), None);
    }

    #[test]
    fn yield_policy_stops_writes_until_the_yield_ends_and_says_so() {
        let policy = Policy::Yield(Duration::from_seconds(60));
        let first = assess(policy, Some(detected(100)), None, t(100));
        assert!(first.yielding);
        let record = first.record.clone().expect("record");
        assert_eq!(record.yield_until, Some(TraceTime(t(160))));
        let (_, reason, message) = first.condition.clone().expect("condition");
        assert_eq!(reason, REASON_YIELDING_TO_OTHER_MANAGER);
        assert!(
            message.contains("until 1970-01-01T00:02:40Z") && message.contains("yieldSeconds 60"),
            "{message}"
        );

        let during = assess(policy, None, Some(record.clone()), t(159));
        assert!(during.yielding);
        assert_eq!(
            during.condition, first.condition,
            "the same status: no rewrite"
        );
        assert_eq!(during.event, None, "one event per change");

        let after_yield = assess(policy, None, Some(record), t(160));
        assert!(!after_yield.yielding);
        let (status, reason, message) = after_yield.condition.expect("condition");
        assert_eq!(
            (status, reason),
            (ConditionStatus::False, REASON_NO_RECENT_REPLICA_CHANGE)
        );
        assert!(message.contains("writes the scale again"), "{message}");
    }

    #[test]
    fn a_report_fight_goes_false_after_the_quiet_period() {
        let record = assess(Policy::Report, Some(detected(100)), None, t(100))
            .record
            .expect("record");
        let still = assess(Policy::Report, None, Some(record.clone()), t(399));
        assert_eq!(
            still.condition.map(|c| (c.0, c.1)),
            Some((
                ConditionStatus::True,
                REASON_REPLICAS_CHANGED_BY_OTHER_MANAGER
            ))
        );
        let quiet = assess(Policy::Report, None, Some(record.clone()), t(400));
        let (status, reason, message) = quiet.condition.expect("condition");
        assert_eq!(
            (status, reason),
            (ConditionStatus::False, REASON_NO_RECENT_REPLICA_CHANGE)
        );
        assert!(message.contains("by manager argocd"), "{message}");
        assert_eq!(quiet.record, Some(record), "the last fight stays on record");
    }

    #[test]
    fn switching_from_yield_to_report_ends_the_yield_at_once() {
        let record = assess(
            Policy::Yield(Duration::from_seconds(600)),
            Some(detected(100)),
            None,
            t(100),
        )
        .record;
        let a = assess(Policy::Report, None, record, t(110));
        assert!(!a.yielding);
        assert_eq!(
            a.condition.map(|c| c.1),
            Some(REASON_REPLICAS_CHANGED_BY_OTHER_MANAGER)
        );
    }

    #[test]
    fn without_any_fight_there_is_no_condition() {
        assert_eq!(
            assess(Policy::Report, None, None, t(100)),
            Assessment::default()
        );
    }
}
