//! Restarting the operator in the middle of a downscale stabilization window
//! (contract 7.1): Tidal persists its recommendation history in
//! `status.tidal.history`, so the restarted process neither scales down
//! early nor starts the window over. Upstream keeps that history in memory
//! only; after a kube-controller-manager restart it seeds
//! `[(currentReplicas, now)]` and so waits a full window from the new
//! leader's first sync. That is measured by the disruptive test
//! `builtin_hpa_across_a_controller_manager_restart_mid_window` in
//! `operator_disruptive.rs` (it restarts kube-controller-manager, so it runs
//! alone; figures in e2e/README.md).

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

const WINDOW: Duration = Duration::from_secs(45);
/// How long the operator stays down. Long enough to tell the two outcomes apart: the last
/// high recommendation comes up to one metrics resolution after the demand falls, so even a
/// window kept from it can end as late as that plus a sync (5 s) plus the persisted second's
/// rounding after the first low recommendation (seen: 63.0 s with a 45 s window, the first
/// low one at 12.2 s); a window restarted at the restart ends no earlier than the first low
/// recommendation + DOWNTIME + WINDOW.
const DOWNTIME: Duration = Duration::from_secs(12);

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn a_restart_inside_the_stabilization_window_keeps_the_window_from_persisted_history()
-> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace("op-restart").await?;
    let c = h.client();
    crd::install(c).await?;
    let t0 = Instant::now();

    let web = KwokWorkload::new("web")
        .cpu_request("100m")
        .ready_delay(Duration::from_secs(2));
    web.create_deployment(c, ns.name()).await?;
    wait::ready_pods(c, ns.name(), &web.selector(), 1, Duration::from_secs(60)).await?;
    let mut op = OperatorBuilder::new(ns.name())
        .flag("sync-period", "5s")
        .flag("downscale-stabilization", format!("{}s", WINDOW.as_secs()))
        .start()
        .await?;
    operator::create_autoscaler(
        c,
        ns.name(),
        "web",
        operator::cpu_utilization_spec(WorkloadKind::Deployment, "web", 1, 8, 50),
    )
    .await?;
    let scaled = Scaled::named(c, ns.name(), WorkloadKind::Deployment, "web");
    let demand = SharedDemand::new(Demand::cpu(20.0));
    let driver = Driver::new(c.clone(), ns.name(), web.selector()).spawn(Arc::new(demand.clone()));
    let recorder = Recorder::start(&scaled, demand.clone(), driver.reports(), t0);

    let outcome = async {
        scaled.wait_utilization(Duration::from_secs(90)).await?;
        // 200m: four pods at 50m each.
        demand.set(Demand::cpu(200.0));
        let high = scaled
            .wait_replicas("the scale-out", Duration::from_secs(120), |r| r >= 4)
            .await?;
        scaled
            .until("every pod ready", Duration::from_secs(60), || async {
                let (spec, ready) = scaled.replicas().await?;
                Ok((spec == ready).then_some(()))
            })
            .await?;
        tokio::time::sleep(Duration::from_secs(15)).await;
        let high = scaled.spec_replicas().await?.max(high);

        // Quiet: the proposal drops to 1, held up by the window.
        demand.set(Demand::cpu(20.0));
        let t_down = Instant::now();
        let held = scaled
            .until("the window to hold a lower recommendation", WINDOW, || async {
                let v = scaled.view().await?;
                let stabilized = v.condition("AbleToScale").is_some_and(|c| {
                    c.reason.as_deref() == Some("ScaleDownStabilized")
                });
                Ok(stabilized.then_some(v))
            })
            .await?;
        // Runs of equal recommendations: the high one, then the low one held by the window.
        let runs = held.tidal["history"]["recommendationRuns"]
            .as_array()
            .map_or(0, Vec::len);
        anyhow::ensure!(runs > 1, "no persisted high and low runs: {:?}", held.tidal);
        println!(
            "{:?} into the window: {runs} persisted recommendation runs; killing the operator",
            t_down.elapsed()
        );
        op.kill();
        tokio::time::sleep(DOWNTIME).await;
        let t_restart = t_down.elapsed();
        op.restart().await?;
        println!("restarted {t_restart:?} after demand fell");

        let first_drop = scaled
            .until("the scale-in after the restart", WINDOW + Duration::from_secs(90), || async {
                Ok((scaled.spec_replicas().await? < high).then(|| t_down.elapsed()))
            })
            .await?;
        println!(
            "first scale-in {first_drop:?} after demand fell (window {WINDOW:?}, restart at {t_restart:?}; \
             an in-memory history would wait until at least {:?})",
            t_restart + WINDOW
        );
        // Not early: the persisted high recommendations still counted.
        anyhow::ensure!(
            // The window runs from the last high recommendation, which can
            // precede the demand change by one sync period (5s) plus the poll.
            first_drop + Duration::from_millis(5_500) >= WINDOW,
            "scaled in {first_drop:?} after demand fell, inside the {WINDOW:?} window"
        );
        // Not reset: the window ran from the last high recommendation, not from the restart.
        anyhow::ensure!(
            first_drop < t_restart + WINDOW,
            "scaled in {first_drop:?} after demand fell: the restart at {t_restart:?} restarted the window"
        );
        anyhow::Ok(())
    }
    .await;

    let timeline = recorder.finish().await;
    driver.stop().await?;
    let path = timeline.write_csv(&artifacts_dir(), &format!("{}.csv", ns.name()))?;
    println!("replica timeline: {}", path.display());
    outcome
}
