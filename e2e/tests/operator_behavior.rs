//! A behavior block on the real operator: a scaleUp Pods policy of one pod
//! per 15 seconds (contract 4.3.3) bounds the replica timeline, whatever the
//! metric asks for, and the status and events say why.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tidal_e2e::crd;
use tidal_e2e::demand::Demand;
use tidal_e2e::driver::{Driver, SharedDemand};
use tidal_e2e::harness::Harness;
use tidal_e2e::operator::{self, OperatorBuilder, Recorder, Scaled, WorkloadKind};
use tidal_e2e::timeline::artifacts_dir;
use tidal_e2e::wait;
use tidal_e2e::workload::KwokWorkload;

const PERIOD: Duration = Duration::from_secs(15);
const CPU_ABOVE: &str = "cpu resource utilization (percentage of request) above target";

/// 200m over 100m requests at a 50% target wants 4 pods at once; the policy
/// grants one more every 15s: 1 → 2 → 3 → 4, never two within a period.
/// Steps are often 30s apart rather than 15s: the load driver moves demand
/// to a new pod as soon as it is Ready, but for CPU the pod counts as unready
/// (contract 2.2) until a sample starts after its Ready transition, and with
/// it at zero the others look on target. That is the contract, not the
/// policy; only the lower bound on the gap is asserted.
#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn a_pods_scale_up_policy_adds_at_most_one_pod_per_period() -> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace("op-behavior").await?;
    let c = h.client();
    crd::install(c).await?;
    let t0 = Instant::now();

    let web = KwokWorkload::new("web")
        .cpu_request("100m")
        .ready_delay(Duration::from_secs(2));
    web.create_deployment(c, ns.name()).await?;
    wait::ready_pods(c, ns.name(), &web.selector(), 1, Duration::from_secs(60)).await?;
    let _op = OperatorBuilder::new(ns.name())
        .flag("sync-period", "5s")
        .start()
        .await?;
    operator::create_autoscaler(
        c,
        ns.name(),
        "web",
        serde_json::json!({
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "web" },
            "minReplicas": 1,
            "maxReplicas": 8,
            "metrics": [{
                "type": "Resource",
                "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 50 } }
            }],
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 0,
                    "selectPolicy": "Max",
                    "policies": [{ "type": "Pods", "value": 1, "periodSeconds": PERIOD.as_secs() }]
                }
            }
        }),
    )
    .await?;
    let scaled = Scaled::named(c, ns.name(), WorkloadKind::Deployment, "web");
    let demand = SharedDemand::new(Demand::cpu(20.0));
    let driver = Driver::new(c.clone(), ns.name(), web.selector()).spawn(Arc::new(demand.clone()));
    let recorder = Recorder::start(&scaled, demand.clone(), driver.reports(), t0);

    let outcome = async {
        scaled.wait_utilization(Duration::from_secs(90)).await?;
        demand.set(Demand::cpu(200.0));
        let t_up = Instant::now();
        scaled
            .wait_replicas("4 replicas", Duration::from_secs(120), |r| r >= 4)
            .await?;
        println!("reached 4 replicas {:?} after demand rose", t_up.elapsed());
        // Let the last step be followed by a quiet period on target.
        tokio::time::sleep(Duration::from_secs(10)).await;
        anyhow::Ok(())
    }
    .await;

    let saw_limit = recorder.saw_condition("ScalingLimited", "True", "ScaleUpLimit");
    let timeline = recorder.finish().await;
    driver.stop().await?;
    let path = timeline.write_csv(&artifacts_dir(), &format!("{}.csv", ns.name()))?;
    println!("replica timeline: {}", path.display());
    outcome?;

    let samples = timeline.samples();
    // Each increase, with the time it was first seen.
    let mut steps = Vec::new();
    for w in samples.windows(2) {
        if w[1].spec_replicas > w[0].spec_replicas {
            steps.push((w[1].seconds, w[0].spec_replicas, w[1].spec_replicas));
        }
    }
    println!("scale-up steps (seconds, from, to): {steps:?}");
    assert_eq!(
        samples.iter().map(|s| s.spec_replicas).max(),
        Some(4),
        "peak"
    );
    for (_, from, to) in &steps {
        assert_eq!(to - from, 1, "a step of more than one pod: {steps:?}");
    }
    // Samples are a second apart and reads take time: allow 1.5s of jitter.
    for w in steps.windows(2) {
        let gap = w[1].0 - w[0].0;
        assert!(
            gap + 1.5 >= PERIOD.as_secs_f64(),
            "two pods added {gap:.1}s apart, within one {PERIOD:?} period: {steps:?}"
        );
    }
    assert!(saw_limit, "never saw ScalingLimited=True/ScaleUpLimit");

    let rescales: Vec<String> = scaled
        .events()
        .await?
        .into_iter()
        .filter(|e| e.reason == "SuccessfulRescale")
        .map(|e| e.message)
        .collect();
    for n in 2..=4 {
        let want = format!("New size: {n}; reason: {CPU_ABOVE}");
        assert!(rescales.contains(&want), "{want:?} not in {rescales:?}");
    }
    Ok(())
}
