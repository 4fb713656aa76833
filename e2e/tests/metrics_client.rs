//! Tidal's metrics client against the real metrics-server: the exact per-autoscaler request
//! and the batched namespace request return the same per-pod samples, and those samples are
//! the usage the load driver set.

use std::sync::Arc;
use std::time::Duration;

use tidal_e2e::demand::Demand;
use tidal_e2e::driver::{Driver, SharedDemand};
use tidal_e2e::harness::Harness;
use tidal_e2e::wait;
use tidal_e2e::workload::KwokWorkload;
use tidal_metrics_client::{
    BatchingConfig, BatchingMode, MetricsClient, PodMetricsSource, PodSample,
    ResourceMetricsVersion,
};

fn cpu_millis(sample: &PodSample) -> Option<i64> {
    let parts = sample.pod_usage("cpu")?;
    parts
        .iter()
        .map(|q| scaling::Quantity::parse(q).ok().map(|q| q.milli_value()))
        .sum()
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn exact_and_batched_requests_return_the_usage_the_driver_set() -> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace("metrics-client").await?;
    let c = h.client();
    let web = KwokWorkload::new("web").replicas(2).cpu_request("500m");
    web.create_deployment(c, ns.name()).await?;
    // A neighbour whose pods the selector must leave out, in batched mode too.
    KwokWorkload::new("other")
        .replicas(1)
        .create_deployment(c, ns.name())
        .await?;
    wait::ready_pods(c, ns.name(), &web.selector(), 2, Duration::from_secs(60)).await?;
    let demand = SharedDemand::new(Demand::cpu(600.0));
    let driver = Driver::new(c.clone(), ns.name(), web.selector()).spawn(Arc::new(demand));

    let client = MetricsClient::new(c.clone());
    let versions = client.api_versions().await?;
    assert_eq!(
        versions.resource,
        ResourceMetricsVersion::V1beta1,
        "metrics-server 0.8 serves v1beta1"
    );

    let exact = PodMetricsSource::new(client.clone(), BatchingMode::Off, BatchingConfig::default());
    let snapshot = wait::until(
        "300m per pod in PodMetrics",
        Duration::from_secs(90),
        Duration::from_secs(1),
        || {
            let exact = &exact;
            let ns = ns.name().to_string();
            let selector = web.selector();
            async move {
                Ok(match exact.pod_metrics(&ns, &selector).await {
                    Ok(s)
                        if s.pods.len() == 2
                            && s.pods
                                .iter()
                                .all(|p| cpu_millis(p).is_some_and(|m| (m - 300).abs() <= 10)) =>
                    {
                        Some(s)
                    }
                    _ => None,
                })
            }
        },
    )
    .await?;
    assert!(
        snapshot
            .pods
            .iter()
            .all(|p| p.labels.get("app").map(String::as_str) == Some("web"))
    );

    let batched = PodMetricsSource::new(client, BatchingMode::On, BatchingConfig::default());
    let from_batch = batched.pod_metrics(ns.name(), &web.selector()).await?;
    let again = exact.pod_metrics(ns.name(), &web.selector()).await?;
    // Both reads saw the same scrape unless one straddled a scrape boundary; compare to whichever
    // exact read carries the batch's timestamps.
    let names = |s: &tidal_metrics_client::PodMetricsSnapshot| {
        let mut n: Vec<String> = s.pods.iter().map(|p| p.name.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(
        names(&from_batch),
        names(&snapshot),
        "batched mode selects the same pods"
    );
    let same_scrape = [&snapshot, &again].into_iter().any(|s| {
        s.pods
            .iter()
            .map(|p| p.timestamp)
            .eq(from_batch.pods.iter().map(|p| p.timestamp))
    });
    if same_scrape {
        let usage = |s: &tidal_metrics_client::PodMetricsSnapshot| {
            s.pods.iter().map(cpu_millis).collect::<Vec<_>>()
        };
        assert!(
            usage(&from_batch) == usage(&snapshot) || usage(&from_batch) == usage(&again),
            "batched samples differ from the exact request's for the same scrape"
        );
    }
    driver.stop().await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn a_selector_without_pods_is_reported_as_no_metrics() -> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace("metrics-empty").await?;
    let client = MetricsClient::new(h.client().clone());
    let err = client
        .pod_metrics(ns.name(), "app=nothing-here")
        .await
        .expect_err("no pods match");
    assert!(
        err.to_string()
            .contains("no metrics returned from resource metrics API"),
        "{err}"
    );
    Ok(())
}
