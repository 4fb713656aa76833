//! The rig is real: a PodMetrics LIST by label selector, served by the real
//! metrics-server from kwok's simulated kubelet, reports the usage the load
//! driver set, and follows a change within one metrics resolution.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tidal_e2e::demand::Demand;
use tidal_e2e::driver::{Driver, SharedDemand};
use tidal_e2e::harness::Harness;
use tidal_e2e::metrics::{self, PodUsage};
use tidal_e2e::wait;
use tidal_e2e::workload::KwokWorkload;

const MI: f64 = 1024.0 * 1024.0;

/// metrics-server's --metric-resolution in the cluster under test (the same
/// variable and default as e2e/cluster/cluster.sh).
fn metric_resolution() -> Duration {
    let s = std::env::var("TIDAL_METRIC_RESOLUTION").unwrap_or_else(|_| "10s".into());
    let secs = s.trim_end_matches('s').parse::<u64>().unwrap_or(10);
    Duration::from_secs(secs)
}

/// Usage as reported vs. as set: metrics-server derives CPU from two samples
/// of kwok's cumulative counter, so allow a little rounding.
fn near(got: f64, want: f64) -> bool {
    (got - want).abs() <= want * 0.03 + 2.0
}

fn all_at(usage: &[PodUsage], n: usize, cpu: f64, mem: f64) -> bool {
    usage.len() == n
        && usage
            .iter()
            .all(|u| near(u.cpu_millis, cpu) && near(u.memory_bytes, mem))
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn pod_metrics_list_by_label_selector_reports_the_usage_the_driver_set() -> anyhow::Result<()>
{
    let h = Harness::connect().await?;
    let ns = h.namespace("metrics-flow").await?;
    let c = h.client();

    let web = KwokWorkload::new("x")
        .replicas(3)
        .cpu_request("500m")
        .ready_delay(Duration::from_secs(1));
    web.create_deployment(c, ns.name()).await?;
    // A neighbour in the same namespace that the selector must leave out.
    KwokWorkload::new("other")
        .create_deployment(c, ns.name())
        .await?;
    let pods = wait::ready_pods(c, ns.name(), &web.selector(), 3, Duration::from_secs(60)).await?;
    let names: Vec<String> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();

    // 600m and 384Mi over three Ready pods: 200m and 128Mi each.
    let demand = SharedDemand::new(Demand {
        millicores: 600.0,
        memory_bytes: Some(384.0 * MI),
    });
    let mut driver =
        Driver::new(c.clone(), ns.name(), web.selector()).spawn(Arc::new(demand.clone()));

    // A new pod needs two scrapes before metrics-server has a CPU rate.
    let resolution = metric_resolution();
    let usage = wait::until(
        "PodMetrics at 200m/128Mi for the 3 pods",
        resolution * 6,
        Duration::from_secs(1),
        || async {
            let u = metrics::pod_usage(c, ns.name(), &web.selector()).await?;
            Ok(all_at(&u, 3, 200.0, 128.0 * MI).then_some(u))
        },
    )
    .await?;
    let mut listed: Vec<String> = usage.iter().map(|u| u.name.clone()).collect();
    listed.sort();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(
        listed, expected,
        "the LIST by selector returns exactly the workload's pods"
    );

    // Change the demand and time how long the API takes to show it.
    demand.set(Demand {
        millicores: 1500.0,
        memory_bytes: Some(768.0 * MI),
    });
    let applied = driver
        .wait_for(|r| r.demand.millicores == 1500.0 && r.ready == 3)
        .await
        .ok_or_else(|| anyhow::anyhow!("driver stopped before applying the new demand"))?;
    let seen = wait::until(
        "PodMetrics at 500m/256Mi",
        resolution * 3,
        Duration::from_millis(250),
        || async {
            let u = metrics::pod_usage(c, ns.name(), &web.selector()).await?;
            Ok(all_at(&u, 3, 500.0, 256.0 * MI).then_some(Instant::now()))
        },
    )
    .await?;
    let latency = seen.duration_since(applied.applied_at);
    println!(
        "metrics.k8s.io showed the new usage {latency:?} after the driver set it (resolution {resolution:?})"
    );
    // One resolution, plus the 250 ms poll and the apiserver round trips.
    assert!(
        latency <= resolution + Duration::from_secs(2),
        "the new usage took {latency:?} to appear, more than one resolution ({resolution:?})"
    );

    driver.stop().await?;
    drop(ns);
    Ok(())
}
