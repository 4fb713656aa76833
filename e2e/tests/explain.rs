//! `tidal explain` against the real operator: after a scale-up, the stored decision names the
//! metric and the numbers that produced it, and they add up; `--now` recomputes from live data;
//! errors name the object and the fix. The same binary installed as `kubectl-tidal` works as a
//! kubectl plugin.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use tidal_e2e::crd;
use tidal_e2e::demand::Demand;
use tidal_e2e::driver::{Driver, SharedDemand};
use tidal_e2e::harness::Harness;
use tidal_e2e::operator::{self, OperatorBuilder, Scaled, WorkloadKind};
use tidal_e2e::wait;
use tidal_e2e::workload::KwokWorkload;

const CPU_ABOVE: &str = "cpu resource utilization (percentage of request) above target";

/// Runs `program args...` with the test's KUBECONFIG (inherited) and returns its output.
async fn run(
    program: &Path,
    args: &[&str],
    path: Option<&std::ffi::OsStr>,
) -> anyhow::Result<Output> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    cmd.output()
        .await
        .with_context(|| format!("running {} {args:?}", program.display()))
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn explain(args: &[&str]) -> anyhow::Result<Output> {
    let bin = operator::binary()?;
    let mut all = vec!["explain"];
    all.extend_from_slice(args);
    run(&bin, &all, None).await
}

/// One pod at 170m over a 100m request with a 50% target asks for 4 replicas at once (ratio
/// 3.4). The decision that scaled is read with `--last-scale`: a fresh sample may already have
/// stored a later decision that kept the size (it did in CI), and the plain `explain` then
/// points to it. Not 200m: that is exactly 4 replicas at 50%, so a sample read as 201m
/// proposed 5, the legacy limit wrote 4, and the next decision 0.1 s later took the held 5
/// from the window with no metric above target, so the last scale had no reason (as upstream's
/// would; seen in CI on 2026-12-04).
#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn explain_after_a_scale_up_names_the_metric_and_its_numbers() -> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace("explain").await?;
    let c = h.client();
    crd::install(c).await?;
    let web = KwokWorkload::new("web")
        .cpu_request("100m")
        .ready_delay(Duration::from_secs(1));
    web.create_deployment(c, ns.name()).await?;
    wait::ready_pods(c, ns.name(), &web.selector(), 1, Duration::from_secs(60)).await?;
    operator::create_autoscaler(
        c,
        ns.name(),
        "web",
        operator::cpu_utilization_spec(WorkloadKind::Deployment, "web", 1, 6, 50),
    )
    .await?;
    let key = format!("{}/web", ns.name());

    // Before any operator ran: no decision yet, and the message says what to do.
    let out = explain(&[&key]).await?;
    let (_, err) = text(&out);
    ensure!(
        !out.status.success(),
        "explain succeeded without a decision"
    );
    ensure!(
        err.contains("no decision recorded yet") && err.contains("--now") && err.contains(&key),
        "unexpected error: {err}"
    );
    let out = explain(&["--last-scale", &key]).await?;
    let (_, err) = text(&out);
    ensure!(
        !out.status.success() && err.contains("no scale on record") && err.contains(&key),
        "explain --last-scale before any scale: {err}"
    );
    // A name that does not exist.
    let out = explain(&[&format!("{}/nope", ns.name())]).await?;
    let (_, err) = text(&out);
    ensure!(
        !out.status.success(),
        "explain of a missing object succeeded"
    );
    ensure!(
        err.contains(&format!("autoscaler {}/nope not found", ns.name()))
            && err.contains("kubectl get autoscalers"),
        "unexpected error: {err}"
    );

    let demand = SharedDemand::new(Demand::cpu(170.0));
    let driver = Driver::new(c.clone(), ns.name(), web.selector()).spawn(Arc::new(demand.clone()));
    // Let metrics-server see the new usage before the operator's first look.
    let scaled = Scaled::named(c, ns.name(), WorkloadKind::Deployment, "web");
    tokio::time::sleep(Duration::from_secs(12)).await;
    let _op = OperatorBuilder::new(ns.name())
        .flag("sync-period", "30s")
        .start()
        .await?;
    let outcome = async {
        scaled
            .wait_replicas("a scale-up", Duration::from_secs(90), |r| r > 1)
            .await?;
        // The scale is written before the status that records the decision: poll briefly.
        let mut doc = serde_json::Value::Null;
        for _ in 0..20 {
            let out = explain(&["--last-scale", &key, "-o", "json"]).await?;
            let (stdout, err) = text(&out);
            if out.status.success() {
                doc = serde_json::from_str(&stdout)?;
                break;
            }
            ensure!(err.contains("no scale on record"), "{err}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let status = scaled.view().await?;
        let t = &doc["decision"];
        ensure!(doc["source"] == "lastScale", "{doc}");
        ensure!(t["rescale"] == true, "the stored decision is not the scale-up: {t}");
        ensure!(t["reason"] == CPU_ABOVE, "{t}");
        let desired = t["desiredReplicas"].as_i64().unwrap_or_default();
        ensure!(
            i64::from(scaled.spec_replicas().await?) == desired,
            "the last scale decision says {desired}, status {:?}",
            status.desired()
        );
        // The last decision either is that scale or, if it kept the size since, names it.
        let out = explain(&[&key, "-o", "json"]).await?;
        let (stdout, err) = text(&out);
        ensure!(out.status.success(), "explain -o json failed: {err}");
        let latest: serde_json::Value = serde_json::from_str(&stdout)?;
        ensure!(latest["source"] == "status", "{latest}");
        if latest["decision"]["rescale"] == true {
            ensure!(latest["decision"] == doc["decision"], "{latest}");
        } else {
            ensure!(
                latest["lastScale"]["time"] == t["time"]
                    && latest["lastScale"]["replicas"] == t["desiredReplicas"],
                "{latest}"
            );
        }
        let m = &t["metrics"][0];
        ensure!(m["type"] == "Resource" && m["name"] == "cpu", "{m}");
        let usage = m["usageMilli"].as_i64().unwrap_or_default();
        let requests = m["requestsMilli"].as_i64().unwrap_or_default();
        let utilization = m["utilization"].as_i64().unwrap_or_default();
        let ratio = m["ratio"].as_f64().unwrap_or_default();
        ensure!(requests > 0 && utilization == usage * 100 / requests, "{m}");
        ensure!((ratio - utilization as f64 / 50.0).abs() < 1e-9, "{m}");
        ensure!(m["tolerance"]["within"] == false, "{m}");
        let proposal = m["proposal"].as_i64().unwrap_or_default();
        ensure!(proposal >= desired, "metric proposed {proposal} < desired {desired}");
        if let Some(pods) = m["multipliedByPods"].as_i64() {
            ensure!(proposal == (ratio * pods as f64).ceil() as i64, "{m}");
        }
        println!(
            "stored decision: usage {usage}m / requests {requests}m = {utilization}%, ratio {ratio}, proposal {proposal}, desired {desired}"
        );

        // The table says the same in words.
        let out = explain(&["--last-scale", &key]).await?;
        let (table, err) = text(&out);
        ensure!(out.status.success(), "explain failed: {err}");
        println!("{table}");
        for needle in [
            format!("AutoScaler {key} -> Deployment/web"),
            "Metric 1: Resource cpu, target 50% of request (Utilization)".to_string(),
            format!(
                "usage {} / requests {} = utilization {utilization}%",
                tidal_usage(usage),
                tidal_usage(requests)
            ),
            format!("raw ratio {ratio:.4}"),
            format!("proposal: {proposal} replicas"),
            format!("Desired replicas: {desired} (scaled)"),
            format!("Reason: {CPU_ABOVE}"),
        ] {
            ensure!(table.contains(&needle), "missing {needle:?}");
        }

        // --now recomputes from live data and says so; YAML parses.
        let out = explain(&["--now", &key, "-o", "yaml"]).await?;
        let (yaml, err) = text(&out);
        ensure!(out.status.success(), "explain --now failed: {err}");
        let doc: serde_json::Value = serde_yaml::from_str(&yaml)?;
        ensure!(doc["source"] == "live", "{doc}");
        ensure!(doc["decision"]["rescale"] == false, "--now must not claim a write");
        let pods = &doc["decision"]["metrics"][0]["pods"];
        let counted = ["ready", "unready", "missing", "ignored"]
            .iter()
            .map(|k| pods[k].as_i64().unwrap_or_default())
            .sum::<i64>();
        let replicas = i64::from(scaled.spec_replicas().await?);
        ensure!(
            counted >= 1 && counted <= replicas.max(desired),
            "--now counted {counted} pods for {replicas} replicas: {pods}"
        );
        anyhow::Ok(())
    }
    .await;
    driver.stop().await?;
    outcome
}

/// The same rendering as the binary (milli-values as quantities).
fn tidal_usage(v: i64) -> String {
    if v % 1000 == 0 {
        format!("{}", v / 1000)
    } else {
        format!("{v}m")
    }
}

/// Installed as `kubectl-tidal` on PATH, `kubectl tidal` runs it: help names it so, and
/// `explain` reaches the cluster with kubectl's KUBECONFIG.
#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn the_binary_is_a_kubectl_plugin_as_kubectl_tidal() -> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace("plugin").await?;
    crd::install(h.client()).await?;
    let bin = operator::binary()?;
    let dir = tempdir()?;
    std::os::unix::fs::symlink(&bin, dir.join("kubectl-tidal"))?;
    let kubectl = which("kubectl")?;
    let mut path = std::ffi::OsString::from(dir.as_os_str());
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());

    let out = run(&kubectl, &["plugin", "list"], Some(&path)).await?;
    let (stdout, _) = text(&out);
    ensure!(
        stdout.contains("kubectl-tidal"),
        "kubectl plugin list: {stdout}"
    );

    let out = run(&kubectl, &["tidal", "--help"], Some(&path)).await?;
    let (stdout, err) = text(&out);
    ensure!(out.status.success(), "kubectl tidal --help failed: {err}");
    ensure!(
        stdout.contains("Usage: kubectl tidal <COMMAND>") && stdout.contains("explain"),
        "{stdout}"
    );

    let missing = format!("{}/nothing-here", ns.name());
    let out = run(&kubectl, &["tidal", "explain", &missing], Some(&path)).await?;
    let (_, err) = text(&out);
    ensure!(
        !out.status.success(),
        "explain of a missing object succeeded"
    );
    ensure!(
        err.contains(&format!("autoscaler {missing} not found")),
        "kubectl tidal explain did not reach the cluster: {err}"
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn tempdir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "tidal-plugin-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn which(program: &str) -> anyhow::Result<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "{program} is not on PATH (eval \"$(e2e/cluster/cluster.sh env)\" puts the cluster's kubectl there)"
    )
}
