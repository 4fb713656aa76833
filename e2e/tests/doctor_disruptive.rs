//! `tidal doctor` when the metrics pipeline is broken on purpose. DISRUPTIVE: these stop
//! metrics-server and delete the `v1beta1.metrics.k8s.io` APIService, which every other test
//! needs, so they run alone, only with `TIDAL_E2E_DISRUPTIVE=1`:
//!
//! ```sh
//! TIDAL_E2E_DISRUPTIVE=1 cargo test -p tidal-e2e --test doctor_disruptive -- --ignored --test-threads 1
//! ```
//!
//! Each test puts back what it broke (also when it fails) and waits for the API to answer.

use std::process::Output;
use std::time::Duration;

use anyhow::{Context as _, bail};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, DeleteParams, PostParams};
use tidal_e2e::harness::Harness;
use tidal_e2e::metrics_server::MetricsServer;
use tidal_e2e::operator;

const DISRUPTIVE_ENV: &str = "TIDAL_E2E_DISRUPTIVE";
const APISERVICE: &str = "v1beta1.metrics.k8s.io";

fn enabled() -> bool {
    let on = std::env::var_os(DISRUPTIVE_ENV).is_some_and(|v| v == "1");
    if !on {
        eprintln!("skipped: set {DISRUPTIVE_ENV}=1 and run this binary alone");
    }
    on
}

async fn doctor() -> anyhow::Result<(Output, String)> {
    let out = tokio::process::Command::new(operator::binary()?)
        .arg("doctor")
        .output()
        .await
        .context("running tidal doctor")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    Ok((out, text))
}

/// Runs doctor until its report satisfies `done` (the aggregator notices changes within
/// its own check period), returning the last report.
async fn doctor_until(
    what: &str,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) -> anyhow::Result<String> {
    let start = std::time::Instant::now();
    loop {
        let (_, text) = doctor().await?;
        if done(&text) {
            println!("after {:?}:\n{text}", start.elapsed());
            return Ok(text);
        }
        if start.elapsed() > timeout {
            bail!("doctor did not report {what} within {timeout:?}; last report:\n{text}");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn wait_healthy() -> anyhow::Result<()> {
    doctor_until("a healthy pipeline again", Duration::from_secs(120), |t| {
        t.contains("healthy: every check passed")
    })
    .await
    .map(|_| ())
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e; disruptive: run alone"]
async fn disruptive_doctor_names_a_stopped_metrics_server() -> anyhow::Result<()> {
    if !enabled() {
        return Ok(());
    }
    let _h = Harness::connect().await?;
    wait_healthy().await?;
    let mut ms = MetricsServer::stop()?;
    let outcome = doctor_until(
        "the APIService not Available",
        Duration::from_secs(120),
        |t| t.contains(&format!("[FAIL] APIService {APISERVICE}: not Available")),
    )
    .await
    .and_then(|text| {
        if text.contains("metrics-server is not running") && text.contains("start metrics-server") {
            Ok(())
        } else {
            bail!("the cause is not named:\n{text}")
        }
    });
    ms.start()?;
    wait_healthy().await?;
    outcome
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e; disruptive: run alone"]
async fn disruptive_doctor_names_a_deleted_apiservice() -> anyhow::Result<()> {
    if !enabled() {
        return Ok(());
    }
    let h = Harness::connect().await?;
    wait_healthy().await?;
    let api: Api<APIService> = Api::all(h.client().clone());
    let saved = api.get(APISERVICE).await?;
    api.delete(APISERVICE, &DeleteParams::default()).await?;
    let outcome = async {
        let (out, text) = doctor().await?;
        println!("{text}");
        if out.status.success() {
            bail!("doctor passed without the APIService:\n{text}");
        }
        if !(text.contains(&format!("[FAIL] APIService {APISERVICE}: not registered"))
            && text.contains("cause: Metrics API not available")
            && text.contains("install metrics-server"))
        {
            bail!("the cause is not named:\n{text}");
        }
        anyhow::Ok(())
    }
    .await;
    // Put it back exactly as it was (without what the server sets).
    let mut restore = saved.clone();
    restore.metadata.resource_version = None;
    restore.metadata.uid = None;
    restore.metadata.creation_timestamp = None;
    restore.metadata.managed_fields = None;
    restore.status = None;
    api.create(&PostParams::default(), &restore)
        .await
        .context("RESTORING the APIService failed; run e2e/cluster/cluster.sh up")?;
    wait_healthy().await?;
    outcome
}
