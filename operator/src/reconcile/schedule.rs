//! When each AutoScaler's next periodic reconcile is due, to measure how late it starts
//! (`tidal_sync_lag_seconds`). A reconcile asks to be requeued after the sync period; if the
//! workers are all busy, it starts later than that. The lag is what a user feels: decisions
//! made on time or not, whatever the reconcile itself costs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `namespace/name` → the instant its next periodic reconcile is due.
#[derive(Default)]
pub struct Schedule {
    // A plain mutex: held for one map operation, never across an await.
    due: Mutex<HashMap<String, Instant>>,
}

impl Schedule {
    /// A reconcile of `key` starts at `now`: how late it is, or `None` when no periodic
    /// reconcile was due yet (the first one, or one a spec change brought forward: those are
    /// not late, and counting them as zero would flatter the figure).
    pub fn started(&self, key: &str, now: Instant) -> Option<Duration> {
        let due = *self.lock().get(key)?;
        (now >= due).then(|| now - due)
    }

    /// A reconcile of `key` ended at `now` and asked to be requeued after `requeue`.
    pub fn finished(&self, key: &str, now: Instant, requeue: Duration) {
        self.lock().insert(key.to_string(), now + requeue);
    }

    /// Keeps the keys `keep` holds (deleted AutoScalers are dropped by the sweep).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.lock().retain(|key, _| keep(key));
    }

    /// How many AutoScalers are scheduled.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        // A panic elsewhere while holding it leaves the map consistent (single operations).
        self.due
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_secs(15);

    #[test]
    fn a_reconcile_that_starts_after_its_requeue_is_late_by_the_difference() {
        let schedule = Schedule::default();
        let t0 = Instant::now();
        schedule.finished("shop/web", t0, PERIOD);
        let late = schedule.started("shop/web", t0 + PERIOD + Duration::from_millis(250));
        assert_eq!(late, Some(Duration::from_millis(250)));
        assert_eq!(
            schedule.started("shop/web", t0 + PERIOD),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn first_and_brought_forward_reconciles_have_no_lag() {
        let schedule = Schedule::default();
        let t0 = Instant::now();
        assert_eq!(schedule.started("shop/web", t0), None, "never reconciled");
        schedule.finished("shop/web", t0, PERIOD);
        assert_eq!(
            schedule.started("shop/web", t0 + Duration::from_secs(3)),
            None,
            "a spec change brought it forward"
        );
        assert_eq!(
            schedule.started("shop/api", t0 + PERIOD * 2),
            None,
            "other key"
        );
    }

    #[test]
    fn each_reconcile_moves_the_due_instant_and_deleted_keys_are_dropped() {
        let schedule = Schedule::default();
        let t0 = Instant::now();
        schedule.finished("shop/web", t0, PERIOD);
        schedule.finished("shop/web", t0 + PERIOD, PERIOD);
        assert_eq!(
            schedule.started("shop/web", t0 + PERIOD * 2 + Duration::from_secs(1)),
            Some(Duration::from_secs(1))
        );
        schedule.finished("shop/gone", t0, PERIOD);
        schedule.retain(|key| key != "shop/gone");
        assert_eq!(schedule.len(), 1);
        assert_eq!(schedule.started("shop/gone", t0 + PERIOD * 2), None);
    }
}
