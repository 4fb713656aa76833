//! `tidal doctor`: diagnoses the metrics pipeline the way an expert would, in order:
//! the `metrics.k8s.io` APIServices, the metrics-server behind them, the custom and external
//! metrics APIServices (a failure when a checked AutoScaler reads them and no adapter serves
//! them), the PodMetrics of each target's pods, and the pods themselves (CPU requests, Pending). Known failure texts are
//! mapped to their cause and fix by [`diagnose`], a pure function.
//!
//! It runs with the user's credentials and only reads. Whatever it may not read (403) is
//! reported as "could not check", never as a failure, and never silently passed.

mod autoscaler;
mod diagnosis;
mod pipeline;
mod report;

use std::process::ExitCode;

use clap::Args;
use kube::api::{Api, ListParams};
use tidal_crds::AutoScaler;

pub use diagnosis::{Diagnosis, diagnose};
pub use report::{Check, Status, render};

use super::cluster::{self, get_autoscaler, parse_target};
use report::{check, forbidden_or};

/// Flags of `tidal doctor`.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// Check every AutoScaler of this namespace (their pods, metrics and requests).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Check only this AutoScaler (`namespace/name`).
    #[arg(long)]
    pub target: Option<String>,
}

/// Runs `tidal doctor`.
pub fn run(args: DoctorArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(err) => {
            eprintln!("tidal doctor: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(doctor(&args)) {
        Ok(checks) => {
            print!("{}", render(&checks));
            if checks.iter().any(|c| c.status == Status::Fail) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(err) => {
            eprintln!("tidal doctor: {err}");
            ExitCode::from(2)
        }
    }
}

async fn doctor(args: &DoctorArgs) -> Result<Vec<Check>, String> {
    let client = cluster::client().await?;
    let mut checks = Vec::new();
    let available = pipeline::apiservices(&client, &mut checks).await;
    pipeline::metrics_server(&client, &mut checks, available.as_ref()).await;

    let targets: Vec<AutoScaler> = match (&args.target, &args.namespace) {
        (Some(t), ns) => {
            let (ns, name) = parse_target(t, ns.as_deref())?;
            vec![get_autoscaler(&client, &ns, &name).await?]
        }
        (None, Some(ns)) => {
            let api: Api<AutoScaler> = Api::namespaced(client.clone(), ns);
            match api.list(&ListParams::default()).await {
                Ok(list) => {
                    if list.items.is_empty() {
                        checks.push(check(
                            Status::Info,
                            format!("AutoScalers in {ns}"),
                            "none; only the metrics pipeline was checked",
                        ));
                    }
                    list.items
                }
                Err(e) => {
                    checks.push(forbidden_or(e, &format!("AutoScalers in {ns}")));
                    Vec::new()
                }
            }
        }
        (None, None) => Vec::new(),
    };
    pipeline::metrics_adapter(&client, &mut checks, &pipeline::AdapterUse::of(&targets)).await;
    for obj in &targets {
        autoscaler::check_one(&client, obj, &mut checks).await;
    }
    Ok(checks)
}
