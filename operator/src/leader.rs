//! Leader election on a coordination.k8s.io Lease (hot standby), with fencing.
//!
//! Every replica runs the watches, so a replica that takes over starts with warm caches; only
//! the lease holder reconciles: it reads metrics, decides, and writes scales, statuses and
//! events. A follower's reconcile returns before any of that and counts the skip
//! (`tidal_follower_skipped_writes_total`).
//!
//! Why by hand: kube-lease-manager (used before) keeps reporting leadership while its renewals
//! fail, does not say when it last renewed (so no write deadline can be derived), and a standby
//! sleeps until the old holder's expiry even when the lease was released, so a rolling update
//! waited a whole lease duration. kube-rs has no leader election of its own. The algorithm is
//! client-go's: optimistic-concurrency updates of one Lease, expiry judged on the observer's
//! own clock from when it saw the record change.
//!
//! Fencing: a standby takes over no earlier than `duration` after it saw the holder's last
//! renewal, and it cannot have seen it before the renewal was sent. So a holder may write until
//! `sent + duration`; it stops at `sent + duration - margin` ([`Leadership::fence`]), and each
//! write gets the time left as its deadline. A term is the Lease's `leaseTransitions` when this
//! replica acquired it: a replica that lost the lease and got it back starts a new term and
//! forgets what it remembered.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::Error;

/// How often a standby reads the Lease: a released lease is taken within this (plus one
/// request), and an expired one within this of its expiry.
pub const STANDBY_POLL: Duration = Duration::from_secs(1);

/// How long releasing the lease may take at shutdown before the process exits anyway (the
/// lease then expires on its own).
pub const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether, and until when, this replica may write. Cheap to clone; every reconcile asks it.
#[derive(Debug, Clone)]
pub struct Leadership {
    shared: Arc<Mutex<Lead>>,
    /// How long a reconcile may take from its start to its last write (the lease's margin);
    /// `None` without an election.
    deadline: Option<Duration>,
    rx: watch::Receiver<bool>,
    /// Holds the sender of a fixed state, so `changed` waits forever instead of failing.
    _fixed: Option<Arc<watch::Sender<bool>>>,
}

/// The current claim: its term and until when writes are safe (`None`: no election, always).
#[derive(Debug, Clone, Copy, Default)]
struct Lead {
    term: Option<u64>,
    until: Option<Instant>,
}

impl Lead {
    fn term_at(&self, now: Instant) -> Option<u64> {
        match self.until {
            Some(until) if now >= until => None,
            _ => self.term,
        }
    }
}

/// A reconcile's right to write: the term it was decided in, and the reconcile's own deadline.
#[derive(Debug, Clone)]
pub struct Fence {
    leadership: Leadership,
    term: u64,
    /// The reconcile's start plus the lease's margin: what it read is not written later than
    /// that, even while the lease holds (a reconcile that waited on a slow API decides again).
    deadline: Option<(Instant, Duration)>,
}

impl Fence {
    /// How long writes stay safe: `Ok(None)` without a deadline (no election), `Err` when
    /// this term is over or the reconcile's deadline has passed.
    pub fn budget(&self) -> Result<Option<Duration>, Error> {
        Ok(self.limit()?.map(|(left, _)| left))
    }

    /// The time left and the error to give when it runs out.
    fn limit(&self) -> Result<Option<(Duration, Error)>, Error> {
        let now = Instant::now();
        let lead = *lock(&self.leadership.shared);
        if lead.term_at(now) != Some(self.term) {
            return Err(Error::NotLeading);
        }
        let term = lead
            .until
            .map(|until| (until.saturating_duration_since(now), Error::NotLeading));
        let own = match self.deadline {
            Some((at, limit)) if now >= at => return Err(Error::ReconcileDeadline(limit)),
            Some((at, limit)) => Some((at - now, Error::ReconcileDeadline(limit))),
            None => None,
        };
        Ok(match (term, own) {
            (Some(t), Some(o)) => Some(if o.0 < t.0 { o } else { t }),
            (t, o) => t.or(o),
        })
    }

    /// Runs `work` (a write, or best-effort event writes) if this term still holds, within the
    /// time it has left; `Err(NotLeading)` when the term is over or its time runs out,
    /// `Err(ReconcileDeadline)` when the reconcile's own deadline does.
    pub async fn within<T>(&self, work: impl std::future::Future<Output = T>) -> Result<T, Error> {
        match self.limit()? {
            None => Ok(work.await),
            Some((left, err)) => tokio::time::timeout(left, work).await.map_err(|_| err),
        }
    }
}

impl Leadership {
    /// A replica that always leads (leader election switched off, or tests).
    pub fn always() -> Self {
        let (tx, rx) = watch::channel(true);
        Leadership {
            shared: Arc::new(Mutex::new(Lead {
                term: Some(0),
                until: None,
            })),
            deadline: None,
            rx,
            _fixed: Some(Arc::new(tx)),
        }
    }

    /// Whether this replica may write now.
    pub fn is_leader(&self) -> bool {
        self.term().is_some()
    }

    /// The current term, or `None` when this replica may not write.
    pub fn term(&self) -> Option<u64> {
        lock(&self.shared).term_at(Instant::now())
    }

    /// The write right of `term`, checked again at each write; with `started`, also bounded by
    /// that reconcile's deadline (for the scale write, which acts on what the reconcile read;
    /// without it for the reports that follow, so a reconcile slowed by a failing API still
    /// says so in its status).
    pub fn fence(&self, term: u64, started: Option<Instant>) -> Fence {
        Fence {
            leadership: self.clone(),
            term,
            deadline: self.deadline.zip(started).map(|(d, s)| (s + d, d)),
        }
    }

    /// Waits until leadership changes; returns the new state, or `None` when election stopped.
    pub async fn changed(&mut self) -> Option<bool> {
        self.rx.changed().await.ok()?;
        Some(*self.rx.borrow_and_update())
    }
}

fn lock(shared: &Mutex<Lead>) -> std::sync::MutexGuard<'_, Lead> {
    // Two plain fields: a panic while holding the lock cannot leave them torn.
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Lease parameters from the flags.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Lease namespace.
    pub namespace: String,
    /// Lease name.
    pub name: String,
    /// Holder identity.
    pub identity: String,
    /// How long the lease stays valid without renewal.
    pub duration: Duration,
}

impl LeaseConfig {
    /// Whole seconds, at least [`crate::args::MIN_LEASE_DURATION`] for callers that skip the
    /// flag parser.
    fn seconds(&self) -> u64 {
        self.duration
            .as_secs()
            .max(crate::args::MIN_LEASE_DURATION.as_secs())
    }

    /// How often the holder renews: three chances before its writes stop.
    fn renew_every(&self) -> Duration {
        Duration::from_secs(self.seconds()) / 3
    }

    /// What the holder keeps back from `duration` for clock-rate differences and a write in
    /// flight.
    fn margin(&self) -> Duration {
        Duration::from_secs(self.seconds()) / 3
    }
}

/// What one reading of the Lease says this replica should do next. Pure, for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// There is no Lease: create it, holding it.
    Create,
    /// This replica holds it: renew.
    Renew,
    /// Free, released or expired: take it.
    Acquire,
    /// Someone else holds it and it has not expired.
    Wait,
}

/// The parts of a Lease the election reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Record {
    holder: Option<String>,
    duration_seconds: i64,
    transitions: i64,
    resource_version: Option<String>,
}

impl Record {
    fn of(lease: &Lease) -> Record {
        let spec = lease.spec.clone().unwrap_or_default();
        Record {
            holder: spec.holder_identity.filter(|h| !h.is_empty()),
            duration_seconds: i64::from(spec.lease_duration_seconds.unwrap_or(0)),
            transitions: i64::from(spec.lease_transitions.unwrap_or(0)),
            resource_version: lease.metadata.resource_version.clone(),
        }
    }
}

/// Decides the next step from the Lease (`None`: it does not exist), when this replica first
/// saw its current version, and now.
fn step(record: Option<&Record>, me: &str, seen_at: Instant, now: Instant) -> Step {
    let Some(record) = record else {
        return Step::Create;
    };
    match record.holder.as_deref() {
        None => Step::Acquire,
        Some(holder) if holder == me => Step::Renew,
        Some(_) => {
            let duration = Duration::from_secs(u64::try_from(record.duration_seconds).unwrap_or(0));
            if now.saturating_duration_since(seen_at) >= duration {
                Step::Acquire
            } else {
                Step::Wait
            }
        }
    }
}

/// The election loop's state between readings.
struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
    shared: Arc<Mutex<Lead>>,
    tx: watch::Sender<bool>,
    /// The Lease version last read and when it was first seen.
    seen: Option<(Option<String>, Instant)>,
    /// The Lease as last read or written.
    lease: Option<Lease>,
}

impl Elector {
    fn spec(&self, transitions: i64, acquire: bool, holder: Option<&str>) -> LeaseSpec {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let old = self
            .lease
            .as_ref()
            .and_then(|l| l.spec.clone())
            .unwrap_or_default();
        LeaseSpec {
            holder_identity: holder.map(str::to_string),
            lease_duration_seconds: Some(i32::try_from(self.config.seconds()).unwrap_or(i32::MAX)),
            acquire_time: if acquire {
                Some(now.clone())
            } else {
                old.acquire_time
            },
            renew_time: Some(now),
            lease_transitions: Some(i32::try_from(transitions).unwrap_or(i32::MAX)),
            ..LeaseSpec::default()
        }
    }

    /// One reading and, if due, one write. Returns how long to wait before the next.
    async fn tick(&mut self) -> Duration {
        let now = Instant::now();
        let read = match self.api.get_opt(&self.config.name).await {
            Ok(lease) => lease,
            Err(e) => {
                tracing::warn!(error = %e, "reading the leader lease failed");
                self.publish();
                return STANDBY_POLL;
            }
        };
        let record = read.as_ref().map(Record::of);
        let version = record.as_ref().and_then(|r| r.resource_version.clone());
        let seen_at = match &self.seen {
            Some((v, at)) if *v == version => *at,
            _ => {
                self.seen = Some((version, now));
                now
            }
        };
        self.lease = read;
        let me = self.config.identity.clone();
        let transitions = record.as_ref().map_or(0, |r| r.transitions);
        let step = step(record.as_ref(), &me, seen_at, now);
        let (spec, term) = match step {
            Step::Wait => {
                self.set_lead(None, None);
                return STANDBY_POLL;
            }
            Step::Renew => (self.spec(transitions, false, Some(&me)), transitions),
            // A change of holder is a new term, like client-go's leaseTransitions.
            Step::Acquire => (self.spec(transitions + 1, true, Some(&me)), transitions + 1),
            Step::Create => (self.spec(0, true, Some(&me)), 0),
        };
        let sent = Instant::now();
        match self.write(spec).await {
            Ok(written) => {
                if step != Step::Renew {
                    tracing::info!(lease = %self.config.name, identity = %me, term, "acquired the leader lease");
                }
                self.seen = Some((written.metadata.resource_version.clone(), sent));
                self.lease = Some(written);
                let until =
                    sent + Duration::from_secs(self.config.seconds()) - self.config.margin();
                self.set_lead(u64::try_from(term).ok(), Some(until));
                self.config.renew_every()
            }
            Err(e) => {
                // A 409 means another replica wrote first: read again soon. Whatever failed,
                // a holder's writes stop at its deadline (`set_lead` is not called).
                tracing::warn!(error = %e, ?step, "writing the leader lease failed");
                self.publish();
                STANDBY_POLL
            }
        }
    }

    async fn write(&self, spec: LeaseSpec) -> Result<Lease, kube::Error> {
        let mut lease = self.lease.clone().unwrap_or_else(|| Lease {
            metadata: ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: None,
        });
        lease.spec = Some(spec);
        let params = PostParams {
            field_manager: Some("tidal-operator".into()),
            ..PostParams::default()
        };
        if self.lease.is_some() {
            // The resourceVersion from the read makes this an optimistic-concurrency update.
            self.api.replace(&self.config.name, &params, &lease).await
        } else {
            self.api.create(&params, &lease).await
        }
    }

    fn set_lead(&self, term: Option<u64>, until: Option<Instant>) {
        {
            let mut lead = lock(&self.shared);
            lead.term = term;
            lead.until = until.or(Some(Instant::now()));
        }
        self.publish();
    }

    /// Tells the gauge watchers the state as of now (a holder whose deadline passed stepped
    /// down).
    fn publish(&self) {
        let leading = lock(&self.shared).term_at(Instant::now()).is_some();
        self.tx
            .send_if_modified(|old| std::mem::replace(old, leading) != leading);
    }

    /// Stops writing at once, then clears the holder so a standby takes over at its next poll.
    async fn release(&mut self) {
        let held = self.lease.as_ref().map(Record::of).and_then(|r| r.holder)
            == Some(self.config.identity.clone());
        self.set_lead(None, None);
        if !held {
            return;
        }
        let transitions = self.lease.as_ref().map_or(0, |l| Record::of(l).transitions);
        let mut spec = self.spec(transitions, false, None);
        spec.lease_duration_seconds = Some(1);
        match self.write(spec).await {
            Ok(_) => tracing::info!(lease = %self.config.name, "released the leader lease"),
            Err(e) => {
                tracing::warn!(error = %e, "releasing the leader lease failed; it expires on its own")
            }
        }
    }
}

/// A running election: what [`elect`] keeps besides the [`Leadership`] it hands out.
pub struct Election {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Election {
    /// Stops writing, then releases the lease if this replica holds it. Call after the last
    /// reconcile has finished, so nothing is written once another replica may lead.
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(RELEASE_TIMEOUT, &mut self.task)
            .await
            .is_err()
        {
            tracing::warn!(timeout = ?RELEASE_TIMEOUT, "releasing the lease timed out; it expires on its own");
            self.task.abort();
        }
    }
}

/// Starts the election. Returns once the lease has been read (and taken, if it was free).
pub async fn elect(client: Client, config: LeaseConfig) -> Result<(Leadership, Election), Error> {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    // Fail at start, with the reason, when the Lease cannot even be read (RBAC, namespace).
    api.get_opt(&config.name).await.map_err(|e| {
        Error::LeaderElection(format!(
            "reading Lease {}/{}: {e}",
            config.namespace, config.name
        ))
    })?;
    let shared = Arc::new(Mutex::new(Lead::default()));
    let (tx, rx) = watch::channel(false);
    let mut elector = Elector {
        api,
        config: config.clone(),
        shared: shared.clone(),
        tx,
        seen: None,
        lease: None,
    };
    let mut wait = elector.tick().await;
    let (stop_tx, mut stop_rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                () = tokio::time::sleep(wait) => wait = elector.tick().await,
            }
        }
        elector.release().await;
    });
    tracing::info!(lease = %config.name, namespace = %config.namespace, identity = %config.identity, "leader election started");
    Ok((
        Leadership {
            shared,
            deadline: Some(config.margin()),
            rx,
            _fixed: None,
        },
        Election {
            stop: Some(stop_tx),
            task,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock_api::{Answer, api_server};
    use axum::http::Method;
    use serde_json::json;

    const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/ns/leases";

    fn elector(client: Client) -> (Elector, Leadership) {
        let shared = Arc::new(Mutex::new(Lead::default()));
        let (tx, rx) = watch::channel(false);
        let config = LeaseConfig {
            namespace: "ns".into(),
            name: "tidal".into(),
            identity: "a".into(),
            duration: Duration::from_secs(15),
        };
        let leadership = Leadership {
            shared: shared.clone(),
            deadline: Some(config.margin()),
            rx,
            _fixed: None,
        };
        let elector = Elector {
            api: Api::namespaced(client, "ns"),
            config,
            shared,
            tx,
            seen: None,
            lease: None,
        };
        (elector, leadership)
    }

    /// A replica holding `term` until `until`, with reconciles bounded by `deadline`.
    fn held(term: u64, until: Instant, deadline: Option<Duration>) -> Leadership {
        let (tx, rx) = watch::channel(true);
        Leadership {
            shared: Arc::new(Mutex::new(Lead {
                term: Some(term),
                until: Some(until),
            })),
            deadline,
            rx,
            _fixed: Some(Arc::new(tx)),
        }
    }

    fn lease(holder: &str, resource_version: &str, transitions: i32) -> serde_json::Value {
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "tidal", "namespace": "ns", "resourceVersion": resource_version},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                     "leaseTransitions": transitions,
                     "renewTime": "2026-12-02T10:00:00.000000Z"}
        })
    }

    #[tokio::test]
    async fn a_missing_lease_is_created_held_by_this_replica_with_a_write_deadline() {
        let (client, seen) = api_server(vec![Answer::NotFound, Answer::Echo]);
        let (mut elector, leadership) = elector(client);
        let wait = elector.tick().await;
        assert_eq!(
            wait,
            Duration::from_secs(5),
            "renews a third into the duration"
        );
        assert_eq!(leadership.term(), Some(0));
        let left = leadership.fence(0, Some(Instant::now())).budget();
        assert!(
            matches!(left, Ok(Some(d)) if d <= Duration::from_secs(10)),
            "writes stop a third before expiry: {left:?}"
        );
        let seen = seen.lock().expect("seen");
        assert_eq!(seen[1].0, Method::POST);
        assert_eq!(seen[1].1, LEASES);
        assert_eq!(seen[1].2["spec"]["holderIdentity"], "a");
    }

    #[tokio::test]
    async fn a_lease_held_by_another_replica_is_left_alone_and_nothing_is_written() {
        let (client, seen) = api_server(vec![Answer::Ok(lease("b", "5", 2))]);
        let (mut elector, leadership) = elector(client);
        assert_eq!(elector.tick().await, STANDBY_POLL);
        assert!(!leadership.is_leader());
        assert_eq!(seen.lock().expect("seen").len(), 1, "only the read");
    }

    #[tokio::test]
    async fn a_holder_whose_lease_was_taken_stops_writing_at_once() {
        let (client, _) = api_server(vec![
            Answer::NotFound,
            Answer::Echo,
            Answer::Ok(lease("b", "9", 1)),
        ]);
        let (mut elector, leadership) = elector(client);
        elector.tick().await;
        let fence = leadership.fence(0, Some(Instant::now()));
        assert!(fence.budget().is_ok());
        elector.tick().await;
        assert!(!leadership.is_leader());
        assert!(matches!(fence.budget(), Err(Error::NotLeading)));
    }

    #[tokio::test]
    async fn a_failed_renewal_keeps_the_old_deadline_and_a_released_lease_is_taken_as_a_new_term() {
        let (client, seen) = api_server(vec![
            Answer::Ok(lease("a", "3", 4)),
            Answer::Conflict,
            Answer::Ok(lease("", "4", 4)),
            Answer::Echo,
        ]);
        let (mut elector, leadership) = elector(client);
        // A renewal that conflicts grants nothing: this replica never wrote in this process.
        assert_eq!(elector.tick().await, STANDBY_POLL);
        assert!(!leadership.is_leader());
        // Released by its holder (holder cleared): taken at once, one transition more.
        elector.tick().await;
        assert_eq!(leadership.term(), Some(5));
        let seen = seen.lock().expect("seen");
        assert_eq!(seen[3].0, Method::PUT);
        assert_eq!(seen[3].2["spec"]["leaseTransitions"], 5);
    }

    #[tokio::test]
    async fn release_stops_writing_and_clears_the_holder() {
        let (client, seen) = api_server(vec![Answer::NotFound, Answer::Echo, Answer::Echo]);
        let (mut elector, leadership) = elector(client);
        elector.tick().await;
        assert!(leadership.is_leader());
        elector.release().await;
        assert!(!leadership.is_leader());
        let seen = seen.lock().expect("seen");
        assert_eq!(seen[2].0, Method::PUT);
        assert!(seen[2].2["spec"].get("holderIdentity").is_none());
        assert_eq!(seen[2].2["spec"]["leaseDurationSeconds"], 1);
    }

    fn held_by(holder: Option<&str>, seconds: i64) -> Record {
        Record {
            holder: holder.map(str::to_string),
            duration_seconds: seconds,
            transitions: 3,
            resource_version: Some("1".into()),
        }
    }

    #[test]
    fn a_replica_without_election_always_leads_and_has_no_deadline() {
        let l = Leadership::always();
        assert!(l.is_leader());
        assert!(matches!(
            l.fence(0, Some(Instant::now())).budget(),
            Ok(None)
        ));
    }

    #[test]
    fn a_missing_lease_is_created_and_a_free_or_released_one_taken() {
        let now = Instant::now();
        assert_eq!(step(None, "a", now, now), Step::Create);
        assert_eq!(step(Some(&held_by(None, 15)), "a", now, now), Step::Acquire);
    }

    #[test]
    fn the_holder_renews_its_own_lease() {
        let now = Instant::now();
        assert_eq!(
            step(Some(&held_by(Some("a"), 15)), "a", now, now),
            Step::Renew
        );
    }

    #[test]
    fn another_holders_lease_is_taken_only_a_full_duration_after_this_replica_saw_it_change() {
        let seen = Instant::now();
        let lease = held_by(Some("b"), 15);
        assert_eq!(
            step(Some(&lease), "a", seen, seen + Duration::from_secs(14)),
            Step::Wait
        );
        assert_eq!(
            step(Some(&lease), "a", seen, seen + Duration::from_secs(15)),
            Step::Acquire
        );
    }

    #[test]
    fn a_term_ends_at_its_deadline_and_a_fence_of_an_old_term_refuses() {
        let now = Instant::now();
        let l = held(4, now + Duration::from_secs(60), None);
        assert_eq!(l.term(), Some(4));
        let left = l.fence(4, Some(Instant::now())).budget();
        assert!(
            matches!(left, Ok(Some(d)) if d > Duration::from_secs(55) && d <= Duration::from_secs(60)),
            "{left:?}"
        );
        assert!(matches!(
            l.fence(3, Some(Instant::now())).budget(),
            Err(Error::NotLeading)
        ));
        lock(&l.shared).until = Some(now);
        assert_eq!(l.term(), None);
        assert!(matches!(
            l.fence(4, Some(Instant::now())).budget(),
            Err(Error::NotLeading)
        ));
    }

    #[tokio::test]
    async fn a_guarded_write_that_outlives_the_term_is_cut_short() {
        let l = held(1, Instant::now() + Duration::from_millis(50), None);
        let fast = async { Ok::<u8, ()>(7) };
        assert!(matches!(
            l.fence(1, Some(Instant::now())).within(fast).await,
            Ok(Ok(7))
        ));
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<u8, ()>(8)
        };
        assert!(matches!(
            l.fence(1, Some(Instant::now())).within(slow).await,
            Err(Error::NotLeading)
        ));
    }

    #[tokio::test]
    async fn a_reconcile_past_its_deadline_writes_nothing_though_the_lease_holds() {
        let l = held(
            1,
            Instant::now() + Duration::from_secs(60),
            Some(Duration::from_millis(50)),
        );
        let fresh = l.fence(1, Some(Instant::now()));
        assert!(matches!(fresh.budget(), Ok(Some(d)) if d <= Duration::from_millis(50)));
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<u8, ()>(8)
        };
        assert!(matches!(
            fresh.within(slow).await,
            Err(Error::ReconcileDeadline(_))
        ));
        let late = l.fence(1, Some(Instant::now() - Duration::from_millis(100)));
        assert!(matches!(late.budget(), Err(Error::ReconcileDeadline(_))));
        let fast = async { Ok::<u8, ()>(7) };
        assert!(matches!(
            late.within(fast).await,
            Err(Error::ReconcileDeadline(_))
        ));
        assert!(l.is_leader(), "the lease itself still holds");
        let reports = l.fence(1, None);
        assert!(
            matches!(reports.budget(), Ok(Some(d)) if d > Duration::from_secs(55)),
            "a fence without the reconcile's deadline has the term's time"
        );
    }

    #[test]
    fn the_holder_renews_three_times_per_duration_and_stops_writing_a_third_early() {
        let config = LeaseConfig {
            namespace: "ns".into(),
            name: "tidal".into(),
            identity: "a".into(),
            duration: Duration::from_secs(15),
        };
        assert_eq!(config.renew_every(), Duration::from_secs(5));
        assert_eq!(config.margin(), Duration::from_secs(5));
        let short = LeaseConfig {
            duration: Duration::from_secs(1),
            ..config
        };
        assert_eq!(short.seconds(), 3, "floored at the flag's minimum");
    }
}
