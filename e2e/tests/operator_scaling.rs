//! The real `tidal operator` on the local control plane scales kwok
//! workloads as the contract (shared/docs/hpa-semantics.md) says the HPA
//! does: out to the size where the metric is on target, each step within the
//! legacy scale-up limit (4.2), back in only after the downscale
//! stabilization window, with the HPA's conditions (5) and events. Replica
//! timelines are written as CSV artefacts.
//!
//! One scenario, four targets: CPU utilization on a Deployment and on a
//! StatefulSet, memory AverageValue, and a ContainerResource utilization on
//! one of two containers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;
use kube::api::PostParams;
use tidal_e2e::crd;
use tidal_e2e::demand::Demand;
use tidal_e2e::driver::{Driver, SharedDemand};
use tidal_e2e::harness::Harness;
use tidal_e2e::operator::{
    self, AutoScalerView, OperatorBuilder, Recorder, Scaled, WorkloadKind, condition_text,
};
use tidal_e2e::quantity;
use tidal_e2e::timeline::artifacts_dir;
use tidal_e2e::wait;
use tidal_e2e::workload::KwokWorkload;

/// Operator settings; the cluster's kube-controller-manager runs with the
/// same values (e2e/cluster/cluster.sh), so timelines are comparable with
/// builtin_hpa.rs.
const SYNC_PERIOD: &str = "5s";
const STABILIZATION: Duration = Duration::from_secs(30);
const MAX_REPLICAS: i32 = 8;
const MI: f64 = 1024.0 * 1024.0;

const ALL_BELOW: &str = "All metrics below target";

/// How much earlier than the window after the demand fell the first
/// scale-in may come. The window runs from the last high *recommendation*
/// (contract 4.2), and the last reconcile that still saw the old samples can
/// precede the demand change by up to one sync period (plus the 500ms poll).
const EARLIEST_SLACK: Duration = Duration::from_millis(5_500);

/// The legacy (no behavior) scale-up limit per reconcile, contract 4.2.
fn legacy_scale_up_limit(current: i32) -> i32 {
    (2 * current).max(4)
}

/// What the scenario scales and what the contract predicts for it.
struct Case {
    prefix: &'static str,
    kind: WorkloadKind,
    /// The single entry of `spec.metrics`.
    metric: serde_json::Value,
    /// The metric name of contract 2.8 (ValidMetricFound, rescale reason).
    metric_name: &'static str,
    /// A second container requesting this much CPU (for ContainerResource).
    sidecar_cpu: Option<&'static str>,
    quiet: Demand,
    busy: Demand,
    /// Size where the busy demand spread over ready pods is on target.
    busy_replicas: i32,
    /// Size for the quiet demand (the minimum).
    quiet_replicas: i32,
    /// Current value ÷ target, from the status.
    ratio: fn(&AutoScalerView) -> Option<f64>,
}

/// The cluster's and the operator's tolerance (default 0.1).
const TOLERANCE: f64 = 0.1;

/// Whether `n` replicas stay put at usage ratio `ratio` (contract 2.4 fast
/// path): within tolerance, or ceil(ratio × n) is n again.
fn is_fixed_point(ratio: f64, n: i32) -> bool {
    (ratio - 1.0).abs() <= TOLERANCE || (ratio * f64::from(n) - 1e-9).ceil() as i32 == n
}

fn utilization_ratio(view: &AutoScalerView) -> Option<f64> {
    view.utilization().map(|u| f64::from(u) / 50.0)
}

/// CPU at 50% of a 100m request: 50m per pod is on target, so 300m settles
/// at ceil(300 ÷ 50) = 6 and 30m at 1.
fn cpu_case(prefix: &'static str, kind: WorkloadKind) -> Case {
    Case {
        prefix,
        kind,
        metric: serde_json::json!({
            "type": "Resource",
            "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 50 } }
        }),
        metric_name: "cpu resource utilization (percentage of request)",
        sidecar_cpu: None,
        quiet: Demand::cpu(30.0),
        // 290m, not 300m: the first decision after the step can see one pod carrying it all,
        // and kwok's CPU rate reads a millicore over (301m is ratio 6.02, 7 replicas), which
        // the legacy limit caps and the downscale window then writes at the next sync: an
        // overshoot upstream makes too. 290m keeps off that rounding edge (ceil 5.8 = 6).
        busy: Demand::cpu(290.0),
        busy_replicas: 6,
        quiet_replicas: 1,
        ratio: utilization_ratio,
    }
}

async fn create_workload(
    case: &Case,
    web: &KwokWorkload,
    c: &kube::Client,
    ns: &str,
) -> anyhow::Result<()> {
    match (case.kind, case.sidecar_cpu) {
        (WorkloadKind::Deployment, None) => drop(web.create_deployment(c, ns).await?),
        (WorkloadKind::StatefulSet, None) => drop(web.create_stateful_set(c, ns).await?),
        (WorkloadKind::Deployment, Some(cpu)) => {
            let mut d = web.deployment();
            if let Some(pod) = d.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
                let mut sidecar = pod.containers[0].clone();
                sidecar.name = "sidecar".into();
                sidecar.resources = Some(ResourceRequirements {
                    requests: Some(
                        [
                            ("cpu".to_owned(), Quantity(cpu.into())),
                            ("memory".to_owned(), Quantity("64Mi".into())),
                        ]
                        .into(),
                    ),
                    ..ResourceRequirements::default()
                });
                pod.containers.push(sidecar);
            }
            Api::<Deployment>::namespaced(c.clone(), ns)
                .create(&PostParams::default(), &d)
                .await?;
        }
        (WorkloadKind::StatefulSet, Some(_)) => anyhow::bail!("sidecars only on Deployments"),
    }
    Ok(())
}

async fn scales_out_to_the_prediction_and_in_after_the_window(case: Case) -> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace(case.prefix).await?;
    let c = h.client();
    crd::install(c).await?;
    let t0 = Instant::now();

    let web = KwokWorkload::new("web")
        .cpu_request("100m")
        .memory_request("64Mi")
        .ready_delay(Duration::from_secs(2));
    create_workload(&case, &web, c, ns.name()).await?;
    wait::ready_pods(c, ns.name(), &web.selector(), 1, Duration::from_secs(60)).await?;

    let _op = OperatorBuilder::new(ns.name())
        .flag("sync-period", SYNC_PERIOD)
        .flag("downscale-stabilization", "30s")
        .start()
        .await?;
    operator::create_autoscaler(
        c,
        ns.name(),
        "web",
        serde_json::json!({
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": case.kind.kind(), "name": "web" },
            "minReplicas": 1,
            "maxReplicas": MAX_REPLICAS,
            "metrics": [case.metric],
        }),
    )
    .await?;
    let scaled = Scaled::named(c, ns.name(), case.kind, "web");

    let demand = SharedDemand::new(case.quiet);
    let driver = Driver::new(c.clone(), ns.name(), web.selector()).spawn(Arc::new(demand.clone()));
    let recorder = Recorder::start(&scaled, demand.clone(), driver.reports(), t0);
    let (want, floor) = (case.busy_replicas, case.quiet_replicas);

    let outcome = async {
        // Quiet: below target, the size stays at the minimum.
        let quiet = scaled
            .until("the AutoScaler to compute a replica count from the metric", Duration::from_secs(90), || async {
                let v = scaled.view().await?;
                let active = v.condition("ScalingActive").is_some_and(|c| c.status == "True");
                Ok(active.then_some(v))
            })
            .await?;
        anyhow::ensure!(scaled.spec_replicas().await? == floor, "scaled before any load");
        let active = quiet.condition("ScalingActive");
        let message = format!("the HPA was able to successfully calculate a replica count from {}", case.metric_name);
        anyhow::ensure!(
            active.is_some_and(|c| c.reason.as_deref() == Some("ValidMetricFound")
                && c.message.as_deref() == Some(message.as_str())),
            "quiet: {} {:?}",
            condition_text(active),
            active.and_then(|c| c.message.clone())
        );
        for (type_, status, reason) in [
            ("AbleToScale", "True", "ReadyForNewScale"),
            ("ScalingLimited", "False", "DesiredWithinRange"),
        ] {
            let c = quiet.condition(type_);
            anyhow::ensure!(
                c.is_some_and(|c| c.status == status && c.reason.as_deref() == Some(reason)),
                "quiet: expected {type_}={status}/{reason}, got {}",
                condition_text(c)
            );
        }

        // Load: out to the predicted size.
        demand.set(case.busy);
        let t_up = Instant::now();
        scaled
            .wait_replicas(&format!("the operator to scale out to {want}"), Duration::from_secs(120), |r| r >= want)
            .await?;
        println!("scaled out to {want} replicas {:?} after demand rose", t_up.elapsed());
        // Wait for every pod to be ready and its samples to cover the spread
        // demand (three syncs), then the size must be a fixed point of the
        // contract's formula for what the status reports.
        // A late step is possible while samples of new pods catch up (one
        // more size at most, see below): settled means every pod ready and
        // no change for 25s (five syncs).
        let deadline = Instant::now() + Duration::from_secs(120);
        let (settled, view) = loop {
            let size = scaled
                .until("every pod ready", Duration::from_secs(60), || async {
                    let (spec, ready) = scaled.replicas().await?;
                    Ok((spec == ready).then_some(spec))
                })
                .await?;
            tokio::time::sleep(Duration::from_secs(25)).await;
            let view = scaled.view().await?;
            // A size the downscale window is holding (an overshoot while new pods' samples
            // caught up) is not where the formula settles: the 30s window outlasts the 25s
            // quiet period, so wait for the stabilization to release it.
            let held = view
                .condition("AbleToScale")
                .is_some_and(|c| c.reason.as_deref() == Some("ScaleDownStabilized"));
            if !held && view.current() == Some(size) && scaled.spec_replicas().await? == size {
                break (size, view);
            }
            anyhow::ensure!(Instant::now() < deadline, "the size never settled");
        };
        let ratio = (case.ratio)(&view).ok_or_else(|| anyhow::anyhow!("no current metric in {view:?}"))?;
        anyhow::ensure!(
            is_fixed_point(ratio, settled),
            "{settled} replicas at usage ratio {ratio:.3} is not where the contract settles"
        );
        if settled != want {
            // Seen with the built-in HPA too (builtin_hpa artefacts): while new
            // pods' samples catch up, some count as ready with stale or idle
            // usage and others as unready, a step lands one above, and
            // ceil(ratio × n) keeps it there.
            println!("settled at {settled}, one above the steady-state prediction {want}");
        }
        anyhow::ensure!(
            (want..=want + 1).contains(&settled),
            "settled at {settled}, predicted {want}"
        );

        // Quiet again: the proposal drops at once, the scale only after the window.
        demand.set(case.quiet);
        let t_down = Instant::now();
        let first_drop = scaled
            .until("the operator to scale in", STABILIZATION + Duration::from_secs(120), || async {
                Ok((scaled.spec_replicas().await? < settled).then(|| t_down.elapsed()))
            })
            .await?;
        println!("first scale-in {first_drop:?} after demand fell (stabilization window {STABILIZATION:?})");
        anyhow::ensure!(
            first_drop + EARLIEST_SLACK >= STABILIZATION,
            "scaled in after {first_drop:?}, before the {STABILIZATION:?} stabilization window passed"
        );
        scaled
            .wait_replicas(&format!("the operator to scale back to {floor}"), Duration::from_secs(90), |r| r == floor)
            .await?;
        println!("back to {floor} {:?} after demand fell", t_down.elapsed());
        anyhow::Ok(settled)
    }
    .await;

    let saw_stabilized = recorder.saw_condition("AbleToScale", "True", "ScaleDownStabilized");
    let saw_limited = recorder.saw_condition("ScalingLimited", "True", "ScaleUpLimit");
    let timeline = recorder.finish().await;
    driver.stop().await?;
    let path = timeline.write_csv(&artifacts_dir(), &format!("{}.csv", ns.name()))?;
    println!("replica timeline: {}", path.display());
    let settled = outcome?;

    // The timeline: never above the settled size, each step within the legacy limit.
    let samples = timeline.samples();
    let peak = samples.iter().map(|s| s.spec_replicas).max().unwrap_or(0);
    assert_eq!(peak, settled, "peak replicas");
    for w in samples.windows(2) {
        let (a, b) = (w[0].spec_replicas, w[1].spec_replicas);
        assert!(
            b <= legacy_scale_up_limit(a),
            "{a} -> {b} at {:.1}s exceeds the legacy scale-up limit",
            w[1].seconds
        );
    }
    assert!(
        saw_stabilized,
        "never saw AbleToScale=True/ScaleDownStabilized during the window"
    );
    // Whether the first step hit the 2x/+4 limit depends on how fast the
    // samples caught up with the demand; report it rather than assert it.
    println!("ScalingLimited=True/ScaleUpLimit seen: {saw_limited}");

    // Events: every rescale names the contract's reason.
    let above = format!("{} above target", case.metric_name);
    let events = scaled.events().await?;
    let rescales: Vec<String> = events
        .iter()
        .filter(|e| e.reason == "SuccessfulRescale")
        .map(|e| e.message.clone())
        .collect();
    println!("SuccessfulRescale events: {rescales:?}");
    // The reason is fixed before normalization (contract section 1, step 7): when the
    // metrics propose the current size and the stabilization window still holds an earlier,
    // higher recommendation (one cut by the scale-up limit), the write to that size carries an
    // empty reason, exactly as upstream's "New size: 5; reason: " (seen in CI). So the
    // settled size is reached either by a metric above target or by that empty-reason step
    // after one that was.
    let reached =
        |reason: &str| rescales.contains(&format!("New size: {settled}; reason: {reason}"));
    assert!(
        reached(&above)
            || (reached("")
                && rescales
                    .iter()
                    .any(|m| m.ends_with(&format!("reason: {above}")))),
        "{rescales:?}"
    );
    assert!(
        rescales.contains(&format!("New size: {floor}; reason: {ALL_BELOW}")),
        "{rescales:?}"
    );
    for m in &rescales {
        assert!(
            m.ends_with(&format!("reason: {above}"))
                || m.ends_with(&format!("reason: {ALL_BELOW}"))
                || m.ends_with("reason: "),
            "unexpected rescale message {m:?}"
        );
    }
    // Warnings are legitimate right after creation (no samples yet for a
    // pod younger than two scrapes); show them.
    for e in events.iter().filter(|e| e.type_ != "Normal") {
        println!("warning event: {} {} (x{})", e.reason, e.message, e.count);
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn cpu_utilization_scales_a_deployment_to_the_predicted_size_and_in_only_after_the_window()
-> anyhow::Result<()> {
    scales_out_to_the_prediction_and_in_after_the_window(cpu_case(
        "op-cpu-deploy",
        WorkloadKind::Deployment,
    ))
    .await
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn cpu_utilization_scales_a_stateful_set_to_the_predicted_size_and_in_only_after_the_window()
-> anyhow::Result<()> {
    scales_out_to_the_prediction_and_in_after_the_window(cpu_case(
        "op-cpu-sts",
        WorkloadKind::StatefulSet,
    ))
    .await
}

/// Memory AverageValue 100Mi: 400Mi of demand settles at 4 pods, 40Mi at 1.
/// (Memory has no readiness rule, contract 2.2: pods not yet Ready report
/// kwok's 1Mi default and count.)
#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn memory_average_value_scales_to_the_predicted_size_and_in_only_after_the_window()
-> anyhow::Result<()> {
    let cpu = 20.0;
    scales_out_to_the_prediction_and_in_after_the_window(Case {
        prefix: "op-memory",
        kind: WorkloadKind::Deployment,
        metric: serde_json::json!({
            "type": "Resource",
            "resource": { "name": "memory", "target": { "type": "AverageValue", "averageValue": "100Mi" } }
        }),
        metric_name: "memory resource",
        sidecar_cpu: None,
        quiet: Demand {
            millicores: cpu,
            memory_bytes: Some(40.0 * MI),
        },
        busy: Demand {
            millicores: cpu,
            memory_bytes: Some(400.0 * MI),
        },
        busy_replicas: 4,
        quiet_replicas: 1,
        ratio: |view| {
            let metrics = view.status.as_ref()?.current_metrics.as_ref()?;
            let q = metrics.first()?.resource.as_ref()?.current.average_value.as_ref()?;
            Some(quantity::bytes(&q.0).ok()? / (100.0 * MI))
        },
    })
    .await
}

/// ContainerResource on `app` (100m request) beside a `sidecar` (400m).
/// kwok reports the pod's usage annotation for each container, so `app`
/// runs at demand ÷ ready pods: 200m settles at ceil(200 ÷ 50) = 4. A
/// pod-level metric would see twice the usage over 500m of requests and
/// settle at 2, so the size proves the container was singled out.
#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn container_resource_scales_on_one_container_to_the_predicted_size() -> anyhow::Result<()> {
    scales_out_to_the_prediction_and_in_after_the_window(Case {
        prefix: "op-container",
        kind: WorkloadKind::Deployment,
        metric: serde_json::json!({
            "type": "ContainerResource",
            "containerResource": {
                "name": "cpu", "container": "app",
                "target": { "type": "Utilization", "averageUtilization": 50 }
            }
        }),
        metric_name: "cpu container resource utilization (percentage of request)",
        sidecar_cpu: Some("400m"),
        quiet: Demand::cpu(20.0),
        // Off the rounding edge, as in cpu_case (seen: 201m on one pod, ratio 4.02, a remembered
        // 5 written after the capped 4).
        busy: Demand::cpu(190.0),
        busy_replicas: 4,
        quiet_replicas: 1,
        ratio: utilization_ratio,
    })
    .await
}
