//! Shadow mode beside the built-in HPA: one Deployment, an autoscaling/v2
//! HPA and a `spec.tidal.mode: Shadow` AutoScaler with the same spec. Only
//! the HPA writes the scale; Tidal reports what it would have decided, and
//! that equals the HPA's decision whenever both decided on the same inputs.
//!
//! How decisions are paired: every 500ms the test reads, in this order, the
//! Deployment, the PodMetrics list of its pods, the pods, the HPA and the
//! AutoScaler. An input fingerprint is built from the Deployment's
//! `spec.replicas`, each pod's name and readiness, and each PodMetrics
//! sample's pod and timestamp. A read is a pair when (1) the fingerprint has
//! not changed for longer than one sync period (5s, both controllers) plus
//! 1s, so each controller has reconciled at least once on exactly these
//! inputs and its status is that decision; and (2) both statuses report
//! `currentReplicas` equal to the Deployment's `spec.replicas`. In a pair
//! `desiredReplicas` must be equal. The one legitimate difference is the
//! edge of the downscale stabilization window: the two controllers
//! reconcile at different phases, so one may already have let its oldest
//! high recommendation expire. Pairs where either side reports
//! AbleToScale=ScaleDownStabilized and the two disagree are counted and
//! printed, not failed.
//!
//! Tidal runs with `--metrics-batching off` (the exact PodMetrics request
//! of the HPA) and the cluster's HPA settings (sync 5s, stabilization 30s).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::PostParams;
use kube::{Api, Client};
use tidal_e2e::crd;
use tidal_e2e::demand::Demand;
use tidal_e2e::driver::{Driver, SharedDemand};
use tidal_e2e::harness::Harness;
use tidal_e2e::metrics;
use tidal_e2e::operator::{self, OperatorBuilder, WorkloadKind, condition};
use tidal_e2e::wait;
use tidal_e2e::workload::KwokWorkload;

const SYNC: Duration = Duration::from_secs(5);

/// One read of everything the pairing needs.
struct Read {
    at: Instant,
    fingerprint: BTreeSet<String>,
    spec: i32,
    hpa: Option<(Option<i32>, i32, Option<String>)>,
    tidal: Option<(Option<i32>, i32, Option<String>)>,
}

async fn read(client: &Client, ns: &str, selector: &str) -> anyhow::Result<Read> {
    let at = Instant::now();
    let d = Api::<Deployment>::namespaced(client.clone(), ns)
        .get("web")
        .await?;
    let spec = d.spec.and_then(|s| s.replicas).unwrap_or(0);
    let usage = metrics::pod_usage(client, ns, selector).await?;
    let pods = wait::pods(client, ns, selector).await?;
    let mut fingerprint: BTreeSet<String> = usage
        .iter()
        .map(|u| format!("sample {} {}", u.name, u.timestamp))
        .collect();
    for p in &pods {
        fingerprint.insert(format!(
            "pod {} ready={} deleting={}",
            p.metadata.name.as_deref().unwrap_or(""),
            wait::is_ready(p),
            p.metadata.deletion_timestamp.is_some()
        ));
    }
    fingerprint.insert(format!("spec {spec}"));
    let hpa = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns)
        .get("web")
        .await?
        .status
        .map(|s| {
            let reason = condition(&s, "AbleToScale").and_then(|c| c.reason.clone());
            (s.current_replicas, s.desired_replicas, reason)
        });
    let tidal = operator::view(client, ns, "web").await?.status.map(|s| {
        let reason = condition(&s, "AbleToScale").and_then(|c| c.reason.clone());
        (s.current_replicas, s.desired_replicas, reason)
    });
    Ok(Read {
        at,
        fingerprint,
        spec,
        hpa,
        tidal,
    })
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn shadow_mode_never_writes_and_decides_what_the_builtin_hpa_decides() -> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace("op-shadow").await?;
    let c = h.client();
    crd::install(c).await?;

    let web = KwokWorkload::new("web")
        .cpu_request("100m")
        .ready_delay(Duration::from_secs(2));
    web.create_deployment(c, ns.name()).await?;
    wait::ready_pods(c, ns.name(), &web.selector(), 1, Duration::from_secs(60)).await?;
    let _op = OperatorBuilder::new(ns.name())
        .flag("sync-period", "5s")
        .flag("downscale-stabilization", "30s")
        .flag("metrics-batching", "off")
        .start()
        .await?;

    let spec = operator::cpu_utilization_spec(WorkloadKind::Deployment, "web", 1, 8, 50);
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(serde_json::json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": "web" },
        "spec": spec,
    }))?;
    Api::<HorizontalPodAutoscaler>::namespaced(c.clone(), ns.name())
        .create(&PostParams::default(), &hpa)
        .await?;
    let mut shadow = spec.clone();
    shadow["tidal"] = serde_json::json!({ "mode": "Shadow" });
    operator::create_autoscaler(c, ns.name(), "web", shadow).await?;

    let demand = SharedDemand::new(Demand::cpu(30.0));
    let driver = Driver::new(c.clone(), ns.name(), web.selector()).spawn(Arc::new(demand.clone()));

    // Phases: quiet, busy (scale out), quiet (scale in after the window).
    let t0 = Instant::now();
    let phases = [
        (Duration::from_secs(30), 30.0),
        (Duration::from_secs(70), 300.0),
        (Duration::from_secs(140), 30.0),
    ];
    let mut reads: Vec<Read> = Vec::new();
    let end = Duration::from_secs(140);
    while t0.elapsed() < end {
        let now = t0.elapsed();
        let load = phases
            .iter()
            .find(|(until, _)| now < *until)
            .map_or(30.0, |(_, m)| *m);
        demand.set(Demand::cpu(load));
        match read(c, ns.name(), &web.selector()).await {
            Ok(r) => reads.push(r),
            Err(e) => println!("read failed: {e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    driver.stop().await?;

    // Pairing, as described at the top.
    let (mut pairs, mut equal, mut window_edge) = (0, 0, 0);
    let mut mismatches = Vec::new();
    let mut stable_since = None;
    let mut previous: Option<&BTreeSet<String>> = None;
    for r in &reads {
        if previous != Some(&r.fingerprint) {
            stable_since = Some(r.at);
        }
        previous = Some(&r.fingerprint);
        let stable =
            stable_since.is_some_and(|s| r.at.duration_since(s) > SYNC + Duration::from_secs(1));
        let (Some(hpa), Some(tidal)) = (&r.hpa, &r.tidal) else {
            continue;
        };
        if !stable || hpa.0 != Some(r.spec) || tidal.0 != Some(r.spec) {
            continue;
        }
        pairs += 1;
        if hpa.1 == tidal.1 {
            equal += 1;
        } else if hpa.2.as_deref() == Some("ScaleDownStabilized")
            || tidal.2.as_deref() == Some("ScaleDownStabilized")
        {
            window_edge += 1;
            println!(
                "{:.1}s window edge: hpa {:?} tidal {:?}",
                r.at.duration_since(t0).as_secs_f64(),
                hpa,
                tidal
            );
        } else {
            mismatches.push(format!(
                "{:.1}s spec {} hpa {:?} tidal {:?}",
                r.at.duration_since(t0).as_secs_f64(),
                r.spec,
                hpa,
                tidal
            ));
        }
    }
    let peak = reads.iter().map(|r| r.spec).max().unwrap_or(0);
    println!(
        "{} reads, {pairs} pairs: {equal} equal, {window_edge} at the window edge, {} different; peak {peak}",
        reads.len(),
        mismatches.len()
    );
    assert!(peak > 1, "the HPA never scaled out: nothing was compared");
    assert!(pairs >= 20, "only {pairs} comparable reads");
    assert!(
        mismatches.is_empty(),
        "Tidal (shadow) and the HPA decided differently on the same inputs:\n{}",
        mismatches.join("\n")
    );

    // Only the HPA wrote the scale: every write through the scale
    // subresource is kube-controller-manager's.
    let d = Api::<Deployment>::namespaced(c.clone(), ns.name())
        .get("web")
        .await?;
    let writers: Vec<String> = d
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f.subresource.as_deref() == Some("scale"))
        .map(|f| f.manager.unwrap_or_default())
        .collect();
    println!("scale subresource writers: {writers:?}");
    assert!(!writers.is_empty(), "no scale writes recorded");
    assert!(
        writers.iter().all(|m| m == "kube-controller-manager"),
        "someone besides the HPA wrote the scale: {writers:?}"
    );
    // And Tidal did decide rescales (so the absence of writes is the mode's doing).
    let shadow_rescales = operator::events(c, ns.name(), operator::KIND, "web")
        .await?
        .into_iter()
        .filter(|e| e.reason == "SuccessfulRescale")
        .count();
    assert!(shadow_rescales > 0, "Tidal never decided a rescale");
    Ok(())
}
