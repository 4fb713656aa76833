//! One decision from live data for `tidal explain --now`: read the way a reconcile reads
//! (scale subresource, a pod LIST by the target's selector, the exact per-autoscaler metrics
//! requests), decided by the same core, and nothing written.

use k8s_openapi::jiff::Timestamp;
use kube::Client;
use tidal_crds::AutoScaler;
use tidal_metrics_client::{BatchingConfig, BatchingMode, MetricsClient, PodMetricsSource};

use super::context::Settings;
use super::observe::{self, PodSource, Recall, Sources};
use super::spec;
use crate::Error;
use crate::scale::Resolver;

/// One decision from live data. Nothing is written: no scale, no status, no events. The
/// decision memory is the one persisted in status. Other AutoScalers' selectors and HPAs are
/// known only to the operator, so the overlapping-selector checks are not repeated.
pub async fn decide_live(
    client: &Client,
    obj: &AutoScaler,
    settings: &Settings,
    now: Timestamp,
) -> Result<scaling::Decision, Error> {
    let spec = spec::autoscaler_spec(&obj.spec).map_err(|e| Error::Spec(e.to_string()))?;
    let policies =
        spec::metric_policies(&obj.spec, &spec).map_err(|e| Error::Spec(e.to_string()))?;
    let scales = Resolver::new(client.clone(), settings.sync_period);
    let metrics_client = MetricsClient::new(client.clone());
    let pod_metrics = PodMetricsSource::new(
        metrics_client.clone(),
        BatchingMode::Off,
        BatchingConfig::default(),
    );
    let sources = Sources {
        scales: &scales,
        pods: PodSource::Live(client),
        pod_metrics: &pod_metrics,
        metrics_client: &metrics_client,
    };
    let mut observed = observe::observe(obj, &sources, &spec).await?;
    let history = obj
        .status
        .as_ref()
        .and_then(|s| s.tidal.as_ref())
        .and_then(|t| t.history.as_ref())
        .map(|h| crate::kube_core::history_in(h, crate::kube_core::time_in(&now)));
    let mut input = observe::decision_input(
        obj,
        spec,
        &mut observed,
        settings.decision_config(obj),
        Recall {
            history,
            others: Vec::new(),
            intent: crate::kube_core::persisted_intent(obj),
        },
        now,
    );
    input.metric_policies = policies;
    let mut decision = scaling::plan(&input).complete(Ok(()));
    // Computed, not written: the trace must not claim a rescale.
    decision.trace.rescale = false;
    Ok(decision)
}
