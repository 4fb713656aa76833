//! Observing: the target's scale, its pods and the metrics its spec asks for, read the way
//! kube-controller-manager reads them, and the built-in HPAs on the same pods; then the one
//! place the core's `DecisionInput` is built from what was observed.

use std::time::{Duration, Instant};

use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use scaling::{MetricSpec, MetricValue, MetricValues, ScaleRead};
use tidal_crds::AutoScaler;
use tidal_metrics_client::{MetricsClient, PodMetricsSource, PodSample};

use super::context::Context;
use super::spec::metric_selector;
use crate::hpa_conflict::{self, Overlap};
use crate::scale::{self, Resolver};
use crate::{Error, kube_core, pods};

/// How long a reconcile waits for the HPA watch's first list before it reports the
/// `ConflictingHPA` check as unknown (and, in Active mode, does not write).
const HPA_LIST_WAIT: Duration = Duration::from_secs(5);

/// Where a reconcile reads the target's pods.
pub enum PodSource<'a> {
    /// The operator's shared pod cache.
    Cache(&'a pods::PodIndex),
    /// A live LIST by the target's selector (`tidal explain --now`, which has no cache).
    Live(&'a Client),
}

/// What a reconcile reads through: the operator's context, or live clients for `explain --now`.
pub struct Sources<'a> {
    /// Scale subresources.
    pub scales: &'a Resolver,
    /// The target's pods.
    pub pods: PodSource<'a>,
    /// Resource metrics.
    pub pod_metrics: &'a PodMetricsSource,
    /// Custom and external metrics.
    pub metrics_client: &'a MetricsClient,
}

/// What the reconcile observed of the target.
pub struct Observed {
    /// The scale subresource read.
    pub scale: ScaleRead,
    /// The resolved target and the Scale object read, for the write.
    pub target: Option<(scale::Target, Scale)>,
    /// The target's pods, sorted by name.
    pub pods: Vec<scaling::Pod>,
    /// The PodMetrics answer (empty when no metric needs it).
    pub pod_metrics: Result<Vec<scaling::PodMetrics>, String>,
    /// The custom and external metrics answers.
    pub metric_values: Vec<MetricValues>,
    /// How long fetching each metric of the spec took (the defaulted CPU metric when the spec
    /// has none), for `tidal_metric_computation_duration_seconds`.
    pub fetch_times: Vec<Duration>,
}

/// Reads the target's scale, its pods and the metrics `spec` needs.
pub async fn observe(
    obj: &AutoScaler,
    sources: &Sources<'_>,
    spec: &scaling::AutoscalerSpec,
) -> Result<Observed, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let target_ref = &obj.spec.scale_target_ref;
    let read = async {
        let target = sources
            .scales
            .resolve(
                &namespace,
                target_ref.api_version.as_deref(),
                &target_ref.kind,
                &target_ref.name,
            )
            .await?;
        let scale = target.get().await?;
        Ok::<_, scale::ScaleError>((target, scale))
    };
    let (target, scale_read) = match read.await {
        Ok((target, scale_obj)) => {
            let read = ScaleRead::Read(scaling::Scale {
                spec_replicas: scale_obj
                    .spec
                    .as_ref()
                    .and_then(|s| s.replicas)
                    .unwrap_or(0),
                status_replicas: scale_obj.status.as_ref().map_or(0, |s| s.replicas),
                selector: scale_obj
                    .status
                    .as_ref()
                    .and_then(|s| s.selector.clone())
                    .unwrap_or_default(),
            });
            (Some((target, scale_obj)), read)
        }
        Err(err) => (None, ScaleRead::Failed(err.to_string())),
    };

    let mut observed = Observed {
        scale: scale_read,
        target,
        pods: Vec::new(),
        pod_metrics: Ok(Vec::new()),
        metric_values: Vec::new(),
        fetch_times: Vec::new(),
    };
    let ScaleRead::Read(scale_seen) = &observed.scale else {
        return Ok(observed);
    };
    let Ok(selector) = scaling::Selector::parse(&scale_seen.selector) else {
        // The decision reports the invalid selector; nothing to fetch.
        return Ok(observed);
    };
    if scale_seen.selector.is_empty() {
        return Ok(observed);
    }
    observed.pods = match &sources.pods {
        PodSource::Cache(index) => index
            .select(&namespace, &selector)
            .iter()
            .map(|p| p.pod.clone())
            .collect(),
        PodSource::Live(client) => {
            let api: Api<Pod> = Api::namespaced((*client).clone(), &namespace);
            // The same selection the cache makes: list by the canonical selector, then match
            // again (the server's selector grammar and ours agree; this keeps them honest).
            api.list(&ListParams::default().labels(&selector.to_string()))
                .await?
                .items
                .iter()
                .filter(|p| {
                    selector.matches(p.metadata.labels.as_ref().unwrap_or(&Default::default()))
                })
                .map(kube_core::pod)
                .collect()
        }
    };
    // The core joins pods and samples by name in one linear pass when both are sorted
    // (metrics-server returns samples sorted by name; the cache does not).
    observed.pods.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    // The same canonical string kube-controller-manager sends as `labelSelector`.
    let canonical = selector.to_string();

    let is_resource = |m: &MetricSpec| {
        matches!(
            m,
            MetricSpec::Resource { .. } | MetricSpec::ContainerResource { .. }
        )
    };
    let mut pod_metrics_time = Duration::ZERO;
    if spec.metrics.is_empty() || spec.metrics.iter().any(is_resource) {
        let started = Instant::now();
        observed.pod_metrics = api_answer(
            sources
                .pod_metrics
                .pod_metrics(&namespace, &canonical)
                .await
                .map(|snapshot| snapshot.pods.iter().map(pod_sample).collect()),
        );
        pod_metrics_time = started.elapsed();
    }
    if spec.metrics.is_empty() {
        observed.fetch_times.push(pod_metrics_time);
    }
    for metric in &spec.metrics {
        let started = Instant::now();
        if let Some(values) = fetch_metric(sources, &namespace, &canonical, metric).await {
            observed.metric_values.push(values);
        }
        // Resource metrics share the one PodMetrics answer; each counts its fetch.
        let took = if is_resource(metric) {
            pod_metrics_time
        } else {
            started.elapsed()
        };
        observed.fetch_times.push(took);
    }
    Ok(observed)
}

/// Built-in HPAs that control the same pods as `obj` (its scale read and pods observed).
pub async fn hpa_overlap(ctx: &Context, obj: &AutoScaler, observed: &Observed) -> Overlap {
    let target_ref = &obj.spec.scale_target_ref;
    let own = hpa_conflict::TargetKey::of(
        target_ref.api_version.as_deref(),
        &target_ref.kind,
        &target_ref.name,
    );
    let own_selector = match &observed.scale {
        ScaleRead::Read(s) => s.selector.as_str(),
        ScaleRead::Failed(_) => "",
    };
    // Right after a start the HPA list is usually milliseconds away: wait a little for it
    // rather than report (and act on) "unknown".
    let mut listed = ctx.caches.hpas.synced.clone();
    let synced = *listed.borrow()
        || tokio::time::timeout(HPA_LIST_WAIT, listed.wait_for(|s| *s))
            .await
            .is_ok_and(|r| r.is_ok());
    let namespace = obj.namespace().unwrap_or_default();
    let own = hpa_conflict::Own {
        namespace: &namespace,
        target: own.as_ref(),
        selector: own_selector,
        pods: &observed.pods,
    };
    hpa_conflict::find(
        &ctx.caches.hpas.store,
        synced,
        &ctx.hpa_selectors,
        &ctx.scales,
        own,
    )
    .await
}

/// The selector this AutoScaler registers for the other AutoScalers' overlap check: its
/// target's, when the scale was read.
pub fn registered_selector(scale: &ScaleRead) -> Option<String> {
    match scale {
        ScaleRead::Read(s) => Some(s.selector.clone()),
        ScaleRead::Failed(_) => None,
    }
}

/// What the decision remembers and knows of other AutoScalers.
pub struct Recall {
    /// The decision memory (`None` on the first reconcile).
    pub history: Option<scaling::History>,
    /// Other AutoScalers of the namespace and their selectors.
    pub others: Vec<scaling::OtherAutoscaler>,
    /// A scale intent to settle against the scale read: set when `history` came from the
    /// status (this replica's own memory already knows how its writes ended).
    pub intent: Option<scaling::ScaleIntent>,
}

/// The decision input of one reconcile: what was observed (moved in), the stored status, the
/// configuration and the memory. The reconciler and `explain --now` both build it here.
pub fn decision_input(
    obj: &AutoScaler,
    spec: scaling::AutoscalerSpec,
    observed: &mut Observed,
    config: scaling::Config,
    recall: Recall,
    now: Timestamp,
) -> scaling::DecisionInput {
    let old_status = obj.status.as_ref();
    let mut input = scaling::DecisionInput {
        now: kube_core::time_in(&now),
        config,
        metadata: scaling::ObjectMeta {
            name: obj.name_any(),
            namespace: obj.namespace().unwrap_or_default(),
        },
        spec,
        status: scaling::AutoscalerStatus {
            desired_replicas: old_status.map_or(0, |s| s.desired_replicas),
            current_replicas: old_status
                .and_then(|s| s.current_replicas)
                .unwrap_or_default(),
            conditions: kube_core::conditions_in(old_status.and_then(|s| s.conditions.as_ref())),
        },
        scale: observed.scale.clone(),
        pods: std::mem::take(&mut observed.pods),
        pod_metrics: std::mem::replace(&mut observed.pod_metrics, Ok(Vec::new())),
        metric_values: std::mem::take(&mut observed.metric_values),
        other_autoscalers: recall.others,
        history: recall.history,
        metric_policies: Vec::new(),
    };
    if let Some(intent) = &recall.intent {
        let happened = scaling::settle_intent(&mut input, intent);
        tracing::info!(
            from = intent.from,
            to = intent.to,
            happened,
            "settled the scale intent left in status"
        );
    }
    input
}

fn pod_sample(sample: &PodSample) -> scaling::PodMetrics {
    scaling::PodMetrics {
        name: sample.name.clone(),
        timestamp: kube_core::time_in(&sample.timestamp),
        window: scaling::Duration::from_nanos(sample.window.as_nanos() as i128),
        containers: sample
            .containers
            .iter()
            .map(|c| scaling::ContainerMetrics {
                name: c.name.clone(),
                usage: c
                    .usage
                    .iter()
                    .filter_map(|(resource, q)| {
                        scaling::Quantity::parse(q)
                            .ok()
                            .map(|q| (resource.clone(), q.milli_value()))
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn metric_value(
    value: &str,
    timestamp: &Timestamp,
    window: Duration,
    pod: Option<String>,
) -> Option<MetricValue> {
    Some(MetricValue {
        pod_name: pod,
        value: scaling::Quantity::parse(value).ok()?.milli_value(),
        timestamp: kube_core::time_in(timestamp),
        window: scaling::Duration::from_nanos(window.as_nanos() as i128),
    })
}

/// A metrics API answer as the core expects it: an empty list stays an empty answer (the core
/// words that error exactly as upstream does), and errors lose the "unable to fetch metrics
/// from … metrics API: " prefix, which the core adds itself.
fn api_answer<T>(result: Result<Vec<T>, tidal_metrics_client::Error>) -> Result<Vec<T>, String> {
    match result {
        Err(tidal_metrics_client::Error::NoMetrics { .. }) => Ok(Vec::new()),
        other => other.map_err(api_error),
    }
}

fn api_error(err: tidal_metrics_client::Error) -> String {
    err.cause()
}

/// The answer the core reads for one custom or external metric.
fn values(kind: &str, name: &str, answer: Result<Vec<MetricValue>, String>) -> MetricValues {
    MetricValues {
        kind: kind.into(),
        metric_name: name.to_string(),
        selector: None,
        described_object: None,
        answer,
    }
}

/// Fetches the custom or external metric one spec entry needs (`None` for resource metrics).
async fn fetch_metric(
    sources: &Sources<'_>,
    namespace: &str,
    pod_selector: &str,
    metric: &MetricSpec,
) -> Option<MetricValues> {
    let client = sources.metrics_client;
    match metric {
        MetricSpec::Pods { metric: id, .. } => {
            let answer = match metric_selector(id.selector.as_ref()) {
                Ok(msel) => api_answer(
                    client
                        .pods_metric(namespace, pod_selector, &id.name, &msel)
                        .await
                        .map(|items| {
                            items
                                .iter()
                                .filter_map(|s| {
                                    metric_value(
                                        &s.value,
                                        &s.timestamp,
                                        s.window(),
                                        Some(s.described_object.name.clone()),
                                    )
                                })
                                .collect()
                        }),
                ),
                Err(e) => Err(e),
            };
            Some(values("Pods", &id.name, answer))
        }
        MetricSpec::Object {
            described_object,
            metric: id,
            ..
        } => {
            let answer = async {
                let msel = metric_selector(id.selector.as_ref())?;
                // `parse_spec` reads an absent apiVersion as "", as upstream's zero value.
                let target = client
                    .object_target(
                        &described_object.api_version,
                        &described_object.kind,
                        &described_object.name,
                    )
                    .await
                    .map_err(api_error)?;
                let sample = client
                    .object_metric(namespace, &target, &id.name, &msel)
                    .await
                    .map_err(api_error)?;
                Ok(
                    metric_value(&sample.value, &sample.timestamp, sample.window(), None)
                        .into_iter()
                        .collect(),
                )
            }
            .await;
            Some(values("Object", &id.name, answer))
        }
        MetricSpec::External { metric: id, .. } => {
            let answer = match metric_selector(id.selector.as_ref()) {
                Ok(msel) => api_answer(
                    client
                        .external_metric(namespace, &id.name, &msel)
                        .await
                        .map(|items| {
                            items
                                .iter()
                                .filter_map(|s| {
                                    let window = Duration::from_secs(
                                        s.window_seconds
                                            .and_then(|w| u64::try_from(w).ok())
                                            .unwrap_or(60),
                                    );
                                    metric_value(&s.value, &s.timestamp, window, None)
                                })
                                .collect()
                        }),
                ),
                Err(err) => Err(err),
            };
            Some(values("External", &id.name, answer))
        }
        _ => None,
    }
}
