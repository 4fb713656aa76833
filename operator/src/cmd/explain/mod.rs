//! `tidal explain <namespace>/<name>`: why an AutoScaler has the size it has.
//!
//! By default it prints the decision trace the operator stored in
//! `status.tidal.lastDecision` (nothing is recomputed, so it shows exactly what the operator
//! saw). `--last-scale` prints `status.tidal.lastScaleDecision`, the last decision that wrote
//! the scale: with a reconcile on every fresh sample the last decision is soon one that kept
//! the size, and the question is usually why the target has it. `--now` computes one decision from live data through the operator's own read path
//! (`reconcile::decide_live`) and writes nothing. It runs with the user's credentials: it
//! needs `get` on autoscalers, and for `--now` also what the operator reads (the scale
//! subresource, pods, metrics).

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use kube::ResourceExt;
use scaling::trace::DecisionTrace;
use serde::Serialize;

use super::cluster::{self, get_autoscaler, parse_target};
use crate::args::DecisionFlags;
use crate::reconcile::{self, Settings};

mod render;
pub use render::render;

/// Flags of `tidal explain`.
#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// The AutoScaler, as `namespace/name` (or `name` with `--namespace`).
    pub target: String,
    /// Namespace, when the target is given without one (default: the kubeconfig's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Recompute the decision from live data now instead of reading the stored one.
    #[arg(long, conflicts_with = "last_scale")]
    pub now: bool,
    /// Print the last decision that wrote the scale instead of the last decision.
    #[arg(long)]
    pub last_scale: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: Output,
    /// Decision flags for `--now` (the operator's flags; defaults as kube-controller-manager).
    #[command(flatten)]
    pub decision: DecisionFlags,
}

/// How `explain` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A human-readable, step-by-step account.
    Table,
    /// The trace as JSON.
    Json,
    /// The trace as YAML.
    Yaml,
}

/// What `-o json|yaml` prints: the trace and where it came from.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// `namespace/name`.
    pub autoscaler: String,
    /// `Kind/name` of the scale target.
    pub reference: String,
    /// `status` (the operator's last decision), `lastScale` (its last decision that wrote the
    /// scale, `--last-scale`) or `live` (`--now`, not written).
    pub source: &'static str,
    /// `Active`, `Shadow` or `Paused` (`spec.tidal.mode`).
    pub mode: String,
    /// The decision, step by step.
    pub decision: DecisionTrace,
    /// The `ReplicaFight` condition and the last fight on record, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_fight: Option<FightView>,
    /// `status.tidal.lastScaleLag`: how long the last scale took from its sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_scale_lag: Option<tidal_crds::ScaleLag>,
    /// When the decision shown did not scale: the last one that did, in brief.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_scale: Option<LastScale>,
}

/// The last decision that wrote the scale, in brief (`--last-scale` prints it whole).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastScale {
    /// When it was decided.
    pub time: scaling::trace::TraceTime,
    /// The size it wrote.
    pub replicas: i32,
    /// Its reason text.
    pub reason: String,
}

/// Another field manager's change of the target's replicas, as the status reports it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FightView {
    /// `True` while the fight is on (or Tidal yields), `False` once it stopped.
    pub status: String,
    /// The condition's reason.
    pub reason: String,
    /// The condition's message.
    pub message: String,
    /// `status.tidal.lastReplicaFight`.
    pub last: Option<scaling::fight::ReplicaFight>,
}

/// The `ReplicaFight` condition and record of `obj`'s status, if it has them.
pub fn fight_view(obj: &tidal_crds::AutoScaler) -> Option<FightView> {
    let status = obj.status.as_ref()?;
    let last = status
        .tidal
        .as_ref()
        .and_then(|t| t.last_replica_fight.clone());
    let condition = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == scaling::conditions::REPLICA_FIGHT);
    if condition.is_none() && last.is_none() {
        return None;
    }
    Some(FightView {
        status: condition.map(|c| c.status.clone()).unwrap_or_default(),
        reason: condition.and_then(|c| c.reason.clone()).unwrap_or_default(),
        message: condition
            .and_then(|c| c.message.clone())
            .unwrap_or_default(),
        last,
    })
}

/// Runs `tidal explain`.
pub fn run(args: ExplainArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(err) => {
            eprintln!("tidal explain: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(explain(&args)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("tidal explain: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn explain(args: &ExplainArgs) -> Result<String, String> {
    let client = cluster::client().await?;
    let default_ns = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let (namespace, name) = parse_target(&args.target, Some(&default_ns))?;
    let obj = get_autoscaler(&client, &namespace, &name).await?;
    let stored_scale = obj
        .status
        .as_ref()
        .and_then(|s| s.tidal.as_ref())
        .and_then(|t| t.last_scale_decision.clone());
    let (source, trace) = if args.now {
        let settings = Settings {
            sync_period: std::time::Duration::from_secs(15),
            config: args.decision.config(),
            decide_on_release: false,
        };
        let now = k8s_openapi::jiff::Timestamp::now();
        let decision = reconcile::decide_live(&client, &obj, &settings, now)
            .await
            .map_err(|e| format!("cannot compute a decision for {namespace}/{name}: {e}"))?;
        ("live", decision.trace)
    } else if args.last_scale {
        match stored_scale.clone() {
            Some(t) => ("lastScale", t),
            None => {
                return Err(format!(
                    "autoscaler {namespace}/{name} has no scale on record \
                     (status.tidal.lastScaleDecision is empty): Tidal has not written its \
                     target's scale since this field exists; run `tidal explain \
                     {namespace}/{name}` for its last decision"
                ));
            }
        }
    } else {
        let stored = obj
            .status
            .as_ref()
            .and_then(|s| s.tidal.as_ref())
            .and_then(|t| t.last_decision.clone());
        match stored {
            Some(t) => ("status", t),
            None => {
                return Err(format!(
                    "autoscaler {namespace}/{name} has no decision recorded yet \
                     (status.tidal.lastDecision is empty): the operator has not reconciled it; \
                     check that `tidal operator` runs and watches namespace {namespace}, or run \
                     `tidal explain --now {namespace}/{name}` to compute one from live data"
                ));
            }
        }
    };
    let explanation = Explanation {
        autoscaler: format!("{namespace}/{}", obj.name_any()),
        reference: crate::scale::reference(
            &obj.spec.scale_target_ref.kind,
            &obj.spec.scale_target_ref.name,
        ),
        source,
        mode: format!(
            "{:?}",
            obj.spec
                .tidal
                .as_ref()
                .and_then(|t| t.mode)
                .unwrap_or_default()
        ),
        decision: trace,
        replica_fight: fight_view(&obj),
        last_scale_lag: obj
            .status
            .as_ref()
            .and_then(|s| s.tidal.as_ref())
            .and_then(|t| t.last_scale_lag.clone()),
        last_scale: stored_scale
            .filter(|_| source != "lastScale")
            .map(|t| LastScale {
                time: t.time,
                replicas: t.desired_replicas,
                reason: t.reason,
            }),
    };
    match args.output {
        Output::Table => Ok(render(&explanation)),
        Output::Json => serde_json::to_string_pretty(&explanation)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string()),
        Output::Yaml => serde_yaml::to_string(&explanation).map_err(|e| e.to_string()),
    }
}
