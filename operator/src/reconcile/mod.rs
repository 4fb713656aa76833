//! The AutoScaler reconciler: one reconcile is contract 1.3 steps 1-13, each step a call into
//! a room with one job.
//!
//! * [`context`]: what every reconcile shares (clients, caches, flags, per-AutoScaler memory);
//! * [`spec`]: the AutoScaler's spec as the core reads it;
//! * [`observe`]: the target's scale, pods and metrics, the HPAs beside it, the decision input;
//! * [`fight`]: whether another field manager changed the target's replicas, and whether to
//!   yield to it (the decision itself is `scaling::fight`);
//! * the decision itself is the pure core (`scaling::plan`, then `Plan::complete` with the
//!   result of the scale write, which `act` makes when the mode allows it);
//! * [`outcome`]: pure — conditions per mode, status, memory and events after the decision;
//! * [`publish`]: events, the status write, Prometheus.

pub mod context;
pub mod fight;
mod live;
pub mod observe;
pub mod outcome;
pub mod publish;
mod registry;
pub mod schedule;
pub mod spec;
#[cfg(test)]
mod steady_tests;

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use scaling::ScaleRead;
use tidal_crds::AutoScaler;
use tracing::Instrument;

pub use context::{Caches, Context, HpaWatch, MetricsApis, Settings};
pub use live::decide_live;
pub use observe::{PodSource, Sources};

use crate::Error;
use crate::leader::Fence;
use crate::metrics::{Action as MetricAction, ErrorKind, LagStage};
use crate::{kube_core, lag, scale};
use context::Remembered;
use outcome::Stance;

/// Requeue delay after an error: upstream retries only at the next sync, never faster.
pub fn error_policy(obj: Arc<AutoScaler>, err: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(autoscaler = %scale::key(obj.as_ref()), error = %err, "reconcile failed");
    Action::requeue(ctx.settings.sync_period(&obj))
}

/// One reconcile of one AutoScaler; it requeues after the sync period, or sooner when a
/// window or period holds its decision back and releases it before then.
pub async fn reconcile(obj: Arc<AutoScaler>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let period = ctx.settings.sync_period(&obj);
    let key = scale::key(obj.as_ref());
    if let Some(lag) = ctx.schedule.started(&key, started) {
        ctx.metrics.sync_lag.observe(lag.as_secs_f64());
    }
    // Every way out requeues (error_policy after the period), so the next reconcile is due
    // then, counted from when this one ends.
    let result = reconcile_once(&obj, &ctx, started).await;
    let wait = match &result {
        Ok(Some(release)) if *release < period => *release,
        _ => period,
    };
    ctx.schedule.finished(&key, Instant::now(), wait);
    result.map(|_| Action::requeue(wait))
}

/// The body of [`reconcile`], between the sync-lag bookkeeping. Returns how long until a
/// held decision is released, when one is.
async fn reconcile_once(
    obj: &Arc<AutoScaler>,
    ctx: &Context,
    started: Instant,
) -> Result<Option<std::time::Duration>, Error> {
    let Some(term) = ctx.term().await else {
        // Hot standby: the caches stay warm, but no metrics calls and no writes.
        ctx.metrics.leader.set(0);
        ctx.metrics
            .follower_skipped_writes
            .with_label_values(&["reconcile"])
            .inc();
        return Ok(None);
    };
    ctx.metrics.leader.set(1);

    let span = tracing::info_span!("reconcile", autoscaler = %scale::key(obj.as_ref()));
    let result = sync(obj, ctx, (term, started), Timestamp::now())
        .instrument(span)
        .await;
    let (action, error) = match &result {
        Ok((action, _)) => (*action, ErrorKind::None),
        Err(Error::Spec(_)) => (MetricAction::None, ErrorKind::Spec),
        Err(_) => (MetricAction::None, ErrorKind::Internal),
    };
    let labels = [action.label(), error.label()];
    ctx.metrics.reconciliations.with_label_values(&labels).inc();
    ctx.metrics
        .reconciliation_duration
        .with_label_values(&labels)
        .observe(started.elapsed().as_secs_f64());
    // The held decision may change at its release, with no new data: decide at that instant
    // rather than at the next sync.
    result.map(|(_, release)| {
        release.map(|at| {
            let wait = kube_core::time_out(at).duration_since(Timestamp::now());
            let wait = if wait.is_negative() {
                std::time::Duration::ZERO
            } else {
                wait.unsigned_abs()
            };
            wait + RELEASE_MARGIN
        })
    })
}

/// How long a release is waited past its instant: the windows compare timestamps strictly
/// or inclusively, and the clock of the next reconcile is read a little after its wake-up.
const RELEASE_MARGIN: std::time::Duration = std::time::Duration::from_millis(100);

/// Observe, decide, act, work out the outcome, remember, publish; `now` is the decision's
/// instant, `started` the reconcile's start (its writes' deadline counts from it). Returns what the write did and, when a window or period holds the decision back
/// and `decide_on_release` is on, the instant it releases.
async fn sync(
    obj: &AutoScaler,
    ctx: &Context,
    (term, started): (u64, Instant),
    now: Timestamp,
) -> Result<(MetricAction, Option<scaling::Time>), Error> {
    let key = scale::key(obj);
    // Observe: the spec, the target's scale, pods and metrics, the HPAs on the same pods.
    let spec = spec::autoscaler_spec(&obj.spec).map_err(|e| Error::Spec(e.to_string()))?;
    let policies =
        spec::metric_policies(&obj.spec, &spec).map_err(|e| Error::Spec(e.to_string()))?;
    let mut observed = observe::observe(obj, &ctx.sources(), &spec).await?;
    let mut stance = Stance {
        mode: outcome::mode(obj),
        overlap: observe::hpa_overlap(ctx, obj, &observed).await,
        fight: scaling::fight::Assessment::default(),
    };
    // Did another writer change the target's replicas since the last reconcile?
    let seen = ctx.seen(&key, term).await;
    stance.fight = fight::check(obj, &stance, &observed, seen.as_ref(), now).await;
    let read = fight::read_replicas(&observed);
    // Decide, from what was observed and what is remembered.
    let recall = ctx
        .recall(obj, &key, term, kube_core::time_in(&now), &observed.pods)
        .await;
    let config = ctx.settings.decision_config(obj);
    let sample = observed
        .pod_metrics
        .as_ref()
        .ok()
        .and_then(|m| lag::newest_sample(m));
    let mut input = observe::decision_input(obj, spec, &mut observed, config, recall, now);
    input.metric_policies = policies;
    let before = input.history.clone();
    let plan = scaling::plan(&input);
    let decided_at = Timestamp::now();
    // Act: write the scale when the stance allows it.
    // The scale write acts on what this reconcile read, so it has the reconcile's deadline;
    // the reports after it (events, status) only the term's, so a reconcile slowed by a
    // failing metrics API still reports that.
    let fence = ctx.leadership.fence(term, Some(started));
    let mut stored = None;
    let mut gone = false;
    let (decision, action, write) = act(
        plan,
        &input,
        &stance,
        Writer {
            target: observed.target.as_ref(),
            fence: &fence,
            events: &ctx.events,
            obj,
            stored: &mut stored,
            gone: &mut gone,
        },
    )
    .await;
    if gone {
        // Deleted since the cache saw it (the intent's status patch found no object): nothing
        // was written, and no event or status is owed to an object that no longer exists.
        tracing::debug!("the AutoScaler no longer exists; nothing written");
        return Ok((MetricAction::None, None));
    }
    // The status write below must build on the intent's write, not on the cached object.
    let obj = stored.as_ref().unwrap_or(obj);
    // Outcome: conditions, status, memory and events (pure).
    let computations =
        outcome::metric_computations(&decision.metrics, input.status.current_replicas);
    let horizon = scaling::persist::horizon(&input.spec, &input.config);
    let holds =
        ctx.settings.decide_on_release && scaling::normalize::held(&input.spec, &decision.trace);
    let mut outcome = outcome::outcome(obj, &stance, before, decision, (now, horizon));
    if let Some(sample) = sample {
        let tidal = outcome.status.tidal.get_or_insert_with(Default::default);
        scaling_lag(ctx, obj, &input, (sample, decided_at), write, tidal);
    }
    // Remember and publish.
    let reason = outcome::deciding_reason(&outcome.status).map(str::to_string);
    publish::decision_series(&ctx.metrics, obj, &outcome.status, reason.as_deref());
    publish::metric_computations(&ctx.metrics, &computations, &observed.fetch_times);
    let counted = stance
        .fight
        .event
        .as_ref()
        .and(stance.fight.record.as_ref());
    let fight_manager = counted.map(|f| f.manager.clone());
    if let Some(manager) = &fight_manager {
        publish::replica_fight(&ctx.metrics, obj, manager);
    }
    let release =
        outcome.memory.as_ref().filter(|_| holds).and_then(|h| {
            scaling::normalize::next_release(&input.spec, &input.config, h, input.now)
        });
    let remembered = Remembered {
        selector: observe::registered_selector(&input.scale),
        history: outcome.memory,
        reason,
        seen: scaling::fight::after(
            seen.as_ref(),
            &fight::target_id(obj),
            read,
            write,
            kube_core::time_in(&now),
        ),
        fight_manager,
    };
    // A term that ended since the decision publishes nothing (its events would be writes by
    // a replica another one may have replaced) and keeps nothing.
    let fence = ctx.leadership.fence(term, None);
    fence.budget()?;
    ctx.remember(&key, term, remembered).await;
    fence
        .within(ctx.events.publish(obj, &outcome.events, outcome.shadow))
        .await?;
    fence
        .within(ctx.events.write_status(obj, outcome.status))
        .await??;
    Ok((action, release))
}

/// Records the scaling lag of a decision made at `decided_at` on samples up to `sample`: the
/// decision and (when it wrote the scale) the write in `tidal_scaling_lag_seconds` and in
/// `status.tidal.lastScaleLag`; a scale-up also waits for its pods to be Ready (see `lag`),
/// and a pods-Ready lag measured since the last reconcile goes into the status.
fn scaling_lag(
    ctx: &Context,
    obj: &AutoScaler,
    input: &scaling::DecisionInput,
    (sample, decided_at): (Timestamp, Timestamp),
    write: Option<(i32, bool)>,
    tidal: &mut tidal_crds::TidalStatus,
) {
    let (namespace, name) = (
        obj.metadata.namespace.as_deref().unwrap_or_default(),
        obj.metadata.name.as_deref().unwrap_or_default(),
    );
    let observe = |stage: LagStage, seconds: f64| {
        ctx.metrics
            .scaling_lag
            .with_label_values(&[namespace, name, stage.label()])
            .observe(seconds);
    };
    observe(LagStage::Decision, lag::seconds(sample, decided_at));
    if let Some(seconds) = ctx.ready.take_arrived(namespace, name)
        && let Some(last) = tidal.last_scale_lag.as_mut()
        && last.pods_ready_seconds.is_none()
    {
        last.pods_ready_seconds = Some(seconds);
    }
    let Some((replicas, true)) = write else {
        return;
    };
    let written = lag::seconds(sample, Timestamp::now());
    observe(LagStage::ScaleWrite, written);
    tidal.last_scale_lag = Some(tidal_crds::ScaleLag {
        sample_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(sample),
        replicas,
        decision_seconds: lag::seconds(sample, decided_at),
        scale_write_seconds: written,
        pods_ready_seconds: None,
    });
    let selector =
        observe::registered_selector(&input.scale).and_then(|s| scaling::Selector::parse(&s).ok());
    match selector {
        Some(selector) if replicas > input.status.current_replicas => {
            let want = usize::try_from(replicas).unwrap_or_default();
            ctx.ready.expect(namespace, name, selector, want, sample);
        }
        _ => ctx.ready.cancel(namespace, name),
    }
}

/// What writing the scale needs: the target, the term's fence, and where to announce the
/// intent first (`stored` receives the AutoScaler as that write left it).
struct Writer<'a> {
    target: Option<&'a (scale::Target, Scale)>,
    fence: &'a Fence,
    events: &'a publish::Events,
    obj: &'a AutoScaler,
    stored: &'a mut Option<AutoScaler>,
    /// Set when the intent's write found the AutoScaler deleted.
    gone: &'a mut bool,
}

/// Writes the planned size when the stance allows it: first the intent into the status, then
/// the scale (see `scaling::settle_intent`); no intent, no write. Returns the completed
/// decision, what the write did (upstream's `action` label), and the size written with whether
/// it succeeded.
async fn act(
    plan: scaling::Plan,
    input: &scaling::DecisionInput,
    stance: &Stance,
    writer: Writer<'_>,
) -> (scaling::Decision, MetricAction, Option<(i32, bool)>) {
    match plan.scale_write() {
        Some(replicas) if stance.writes() => {
            let current = match &input.scale {
                ScaleRead::Read(s) => s.spec_replicas,
                ScaleRead::Failed(_) => input.status.current_replicas,
            };
            let intent = scaling::ScaleIntent {
                from: current,
                to: replicas,
                at: input.now,
                recommendation: plan.recommendation(),
            };
            let sent = writer.target.is_some();
            let result = write_announced(writer, &intent).await;
            let action = outcome::action(result.is_ok().then_some(replicas), current);
            // A write never sent (no scale read, refused while the watch fails) is no write.
            let write = sent.then_some((replicas, result.is_ok()));
            (plan.complete(result), action, write)
        }
        // Shadow: the decision is recorded as if written, so it keeps mirroring the controller
        // that really writes (the built-in HPA it runs beside); only the write is skipped.
        // Paused, blocked by an HPA, or yielding to another writer of the replicas: decided, not
        // written, and (see `outcome`) not claimed.
        _ => (plan.complete(Ok(())), MetricAction::None, None),
    }
}

/// The intent, then the scale, each fenced: a term that ended since the reconcile began (or
/// ends during a write) writes nothing more, because another replica may be leading.
async fn write_announced(writer: Writer<'_>, intent: &scaling::ScaleIntent) -> Result<(), String> {
    let Some((target, read)) = writer.target else {
        return Err("the target's scale was not read".to_string());
    };
    let fence = writer.fence;
    match fence
        .within(writer.events.write_intent(writer.obj, intent))
        .await
    {
        Ok(Ok(stored)) => *writer.stored = Some(stored),
        Ok(Err(Error::Kube(kube::Error::Api(status)))) if status.code == 404 => {
            *writer.gone = true;
            return Err("the AutoScaler no longer exists, so the scale was not written".into());
        }
        Ok(Err(e)) => {
            return Err(format!(
                "the scale intent could not be recorded in the status first, so the scale was not written: {e}"
            ));
        }
        Err(not_leading) => return Err(not_leading.to_string()),
    }
    match fence.within(target.write(read.clone(), intent.to)).await {
        Ok(written) => written.map(drop).map_err(|e| e.to_string()),
        Err(not_leading) => Err(not_leading.to_string()),
    }
}
