//! Pods, Object and External metrics read from a real adapter (custom-metrics-apiserver's test
//! adapter, registered as `v1beta1.custom.metrics.k8s.io` and `v1beta1.external.metrics.k8s.io`
//! by cluster.sh): Tidal scales its target to the size the built-in HPA reaches on a twin
//! Deployment under the same values, with the same conditions, and where the adapter fails on a
//! metric both report the same conditions.
//!
//! Each case runs twice side by side in one namespace: Deployment `<case>-hpa` under an
//! `autoscaling/v2` HPA, Deployment `<case>-tidal` under the AutoScaler `tidal convert` makes of
//! the same HPA (the same `tidal_crds::hpa` conversion), scaled by one `tidal operator` with
//! kube-controller-manager's settings. Each side's values are fed from its own pods (a Pods
//! metric spread over its Ready pods, an Object metric divided by them), so each side sees the
//! load its own size implies.
//!
//! The comparison runner drives a Pods metric through the adapter too (`tidal-e2e compare
//! --pods-metric`), on `make demo`'s trace.

use std::time::{Duration, Instant};

use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, HorizontalPodAutoscalerStatus};
use kube::api::{DynamicObject, PostParams};
use kube::{Api, Client};
use tidal_e2e::adapter::{Feed, MetricFeed, MetricsAdapter};
use tidal_e2e::compare::{self, CompareConfig};
use tidal_e2e::crd;
use tidal_e2e::demand::Demand;
use tidal_e2e::driver::SharedDemand;
use tidal_e2e::harness::Harness;
use tidal_e2e::operator::{self, OperatorBuilder, WorkloadKind};
use tidal_e2e::timeline::artifacts_dir;
use tidal_e2e::wait;
use tidal_e2e::workload::KwokWorkload;
use tidal_report::DemandTrace;

/// kube-controller-manager's settings on the local cluster (cluster.sh).
const SYNC_PERIOD: &str = "5s";
const STABILIZATION: &str = "30s";
/// How long both sides must agree (size and conditions) to count as settled: two syncs and
/// then some, so a side that is about to move has done so.
const SETTLED_FOR: Duration = Duration::from_secs(15);
/// From the objects' creation to settled. Sizes are reached in two or three syncs plus pod
/// readiness; an overshoot (a value read just before the feed saw a new Ready pod) is undone
/// only after the 30 s downscale window.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(180);
/// Feed period: well under a sync, so a value is stale for a fraction of a second at most.
const FEED_TICK: Duration = Duration::from_millis(500);
/// The condition types both controllers publish.
const CONDITION_TYPES: [&str; 3] = ["AbleToScale", "ScalingActive", "ScalingLimited"];

/// One metric of one case, and how its values are fed.
struct Case {
    name: &'static str,
    /// `spec.metrics[0]` for the side whose Deployment is `target`.
    metric: fn(target: &str) -> serde_json::Value,
    /// What writes the side's values (none: the values are the adapter's own, or absent).
    feed: fn(target: &str) -> Option<Feed>,
    /// The total the feed writes from.
    total: f64,
    max_replicas: i32,
    /// The size the contract gives for these values (the HPA's size is the test's truth; this
    /// says what the case was designed for, so a run that settles elsewhere is visible).
    expected: i32,
}

fn selector(target: &str) -> String {
    format!("app={target}")
}

/// Upstream's answer and Tidal's, once settled.
#[derive(Debug)]
struct Settled {
    case: &'static str,
    hpa_replicas: i32,
    tidal_replicas: i32,
    conditions: Vec<String>,
    after: Duration,
}

async fn conditions_hpa(c: &Client, ns: &str, name: &str) -> anyhow::Result<Vec<String>> {
    let status = Api::<HorizontalPodAutoscaler>::namespaced(c.clone(), ns)
        .get(name)
        .await?
        .status;
    Ok(condition_set(status.as_ref()))
}

async fn conditions_tidal(c: &Client, ns: &str, name: &str) -> anyhow::Result<Vec<String>> {
    Ok(condition_set(
        operator::view(c, ns, name).await?.status.as_ref(),
    ))
}

/// `type=status/reason` of the HPA condition types, in a fixed order (absent ones too).
fn condition_set(status: Option<&HorizontalPodAutoscalerStatus>) -> Vec<String> {
    CONDITION_TYPES
        .iter()
        .map(|t| operator::condition_text(status.and_then(|s| operator::condition(s, t))))
        .collect()
}

/// Creates the twin Deployments, their feeds, the HPA and the AutoScaler of `case`.
async fn start_case(
    c: &Client,
    ns: &str,
    adapter: &MetricsAdapter,
    case: &Case,
) -> anyhow::Result<(Vec<MetricFeed>, Instant)> {
    let sides = [format!("{}-hpa", case.name), format!("{}-tidal", case.name)];
    for side in &sides {
        KwokWorkload::new(side.as_str())
            .cpu_request("100m")
            .ready_delay(Duration::from_secs(2))
            .create_deployment(c, ns)
            .await?;
    }
    for side in &sides {
        wait::ready_pods(c, ns, &selector(side), 1, Duration::from_secs(90)).await?;
    }
    let mut feeds = Vec::new();
    for side in &sides {
        if let Some(feed) = (case.feed)(side) {
            feeds.push(
                MetricFeed::start(
                    adapter.clone(),
                    c.clone(),
                    ns,
                    feed,
                    SharedDemand::new(Demand::cpu(case.total)),
                    FEED_TICK,
                )
                .await?,
            );
        }
    }
    let hpa_of = |target: &str| -> anyhow::Result<HorizontalPodAutoscaler> {
        Ok(serde_json::from_value(serde_json::json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": { "name": target },
            "spec": {
                "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": target },
                "minReplicas": 1,
                "maxReplicas": case.max_replicas,
                "metrics": [(case.metric)(target)],
            }
        }))?)
    };
    Api::<HorizontalPodAutoscaler>::namespaced(c.clone(), ns)
        .create(&PostParams::default(), &hpa_of(&sides[0])?)
        .await?;
    let autoscaler = tidal_crds::hpa::autoscaler_from_hpa(&hpa_of(&sides[1])?)?;
    let autoscaler: DynamicObject = serde_json::from_value(serde_json::to_value(&autoscaler)?)?;
    operator::autoscalers(c, ns)
        .create(&PostParams::default(), &autoscaler)
        .await?;
    Ok((feeds, Instant::now()))
}

/// Polls both sides every second until they have had the same size and the same conditions
/// for [`SETTLED_FOR`]; `ready_for` says whether a state counts (the size the case was
/// designed for, or a failure reported). `created` is when the case's objects were created.
/// Errors with both sides' last state on timeout.
async fn settle(
    c: &Client,
    ns: &str,
    case: &'static str,
    created: Instant,
    ready_for: impl Fn(i32, &[String]) -> bool,
) -> anyhow::Result<Settled> {
    let (hpa, tidal) = (format!("{case}-hpa"), format!("{case}-tidal"));
    let start = created;
    let mut agreed_since: Option<Instant> = None;
    let mut last = String::new();
    while start.elapsed() < SETTLE_TIMEOUT {
        let (hr, tr) = (
            WorkloadKind::Deployment.replicas(c, ns, &hpa).await?.0,
            WorkloadKind::Deployment.replicas(c, ns, &tidal).await?.0,
        );
        let (hc, tc) = (
            conditions_hpa(c, ns, &hpa).await?,
            conditions_tidal(c, ns, &tidal).await?,
        );
        let state = format!("HPA {hr} replicas {hc:?}; Tidal {tr} replicas {tc:?}");
        if state != last {
            eprintln!("[{case} {:>5.1}s] {state}", start.elapsed().as_secs_f64());
            last = state;
        }
        if hr == tr && hc == tc && ready_for(hr, &hc) {
            let since = *agreed_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= SETTLED_FOR {
                return Ok(Settled {
                    case,
                    hpa_replicas: hr,
                    tidal_replicas: tr,
                    conditions: hc,
                    after: since.duration_since(start),
                });
            }
        } else {
            agreed_since = None;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    anyhow::bail!(
        "{case}: the two sides did not agree for {SETTLED_FOR:?} on the state the case was \
         designed for within {SETTLE_TIMEOUT:?}; last: {last}"
    )
}

async fn operator_for(ns: &str) -> anyhow::Result<operator::Operator> {
    OperatorBuilder::new(ns)
        .flag("sync-period", SYNC_PERIOD)
        .flag("downscale-stabilization", STABILIZATION)
        .start()
        .await
}

fn scaling_cases() -> Vec<Case> {
    vec![
        // Pods AverageValue: 3000 requests/s over the Ready pods, 500 per pod on target: 6.
        Case {
            name: "pods",
            metric: |_| {
                serde_json::json!({"type": "Pods", "pods": {
                    "metric": {"name": "requests-per-second"},
                    "target": {"type": "AverageValue", "averageValue": "500"}}})
            },
            feed: |target| {
                Some(Feed::PerPod {
                    selector: selector(target),
                    metric: "requests-per-second".into(),
                })
            },
            total: 3000.0,
            max_replicas: 10,
            expected: 6,
        },
        // Object Value: a Service's latency falls as pods are added (2000 ÷ Ready pods);
        // 400 is on target at ceil(2000 ÷ 400) = 5.
        Case {
            name: "object-value",
            metric: |target| {
                serde_json::json!({"type": "Object", "object": {
                    "describedObject": {"apiVersion": "v1", "kind": "Service", "name": format!("{target}-frontend")},
                    "metric": {"name": "latency-ms"},
                    "target": {"type": "Value", "value": "400"}}})
            },
            feed: |target| {
                Some(Feed::PerReadyPodOfObject {
                    resource: "services".into(),
                    name: format!("{target}-frontend"),
                    metric: "latency-ms".into(),
                    selector: selector(target),
                })
            },
            total: 2000.0,
            max_replicas: 10,
            expected: 5,
        },
        // Object AverageValue: a queue's backlog of 2500 at 500 per pod: 5.
        Case {
            name: "object-average",
            metric: |target| {
                serde_json::json!({"type": "Object", "object": {
                    "describedObject": {"apiVersion": "v1", "kind": "Service", "name": format!("{target}-queue")},
                    "metric": {"name": "backlog"},
                    "target": {"type": "AverageValue", "averageValue": "500"}}})
            },
            feed: |target| {
                Some(Feed::Object {
                    resource: "services".into(),
                    name: format!("{target}-queue"),
                    metric: "backlog".into(),
                })
            },
            total: 2500.0,
            max_replicas: 10,
            expected: 5,
        },
        // External AverageValue on the adapter's fixed my-external-metric{foo=bar} = 42:
        // ceil(42 ÷ 8) = 6 (1 -> 4 by the scale-up limit, then 6).
        Case {
            name: "external-average",
            metric: |_| {
                serde_json::json!({"type": "External", "external": {
                    "metric": {"name": "my-external-metric", "selector": {"matchLabels": {"foo": "bar"}}},
                    "target": {"type": "AverageValue", "averageValue": "8"}}})
            },
            feed: |_| None,
            total: 0.0,
            max_replicas: 10,
            expected: 6,
        },
        // External Value on the fixed other-external-metric = 44 against 20: a ratio of 2.2
        // whatever the size, so both grow to maxReplicas (6) and report the limit.
        Case {
            name: "external-value",
            metric: |_| {
                serde_json::json!({"type": "External", "external": {
                    "metric": {"name": "other-external-metric"},
                    "target": {"type": "Value", "value": "20"}}})
            },
            feed: |_| None,
            total: 0.0,
            max_replicas: 6,
            expected: 6,
        },
    ]
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn pods_object_and_external_metrics_from_the_adapter_scale_tidal_to_the_builtin_hpas_size()
-> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace("custom-metrics").await?;
    let c = h.client();
    crd::install(c).await?;
    let adapter = MetricsAdapter::discover(c).await?;
    let _operator = operator_for(ns.name()).await?;

    let cases = scaling_cases();
    let mut feeds = Vec::new();
    let mut created = Vec::new();
    for case in &cases {
        let (case_feeds, at) = start_case(c, ns.name(), &adapter, case).await?;
        feeds.extend(case_feeds);
        created.push(at);
    }
    let results = futures::future::join_all(cases.iter().zip(created).map(|(case, at)| {
        let expected = case.expected;
        settle(c, ns.name(), case.name, at, move |replicas, _| {
            replicas == expected
        })
    }))
    .await;
    for feed in feeds {
        feed.stop().await;
    }

    let mut failures = Vec::new();
    for (case, result) in cases.iter().zip(results) {
        match result {
            Ok(s) => eprintln!(
                "{:<17} HPA {} replicas, Tidal {} replicas (designed for {}), agreeing from {:.0}s \
                 after the objects were created, conditions {:?}",
                s.case,
                s.hpa_replicas,
                s.tidal_replicas,
                case.expected,
                s.after.as_secs_f64(),
                s.conditions
            ),
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    assert!(
        failures.is_empty(),
        "cases where Tidal and the built-in HPA did not settle on the same size and \
         conditions:\n{}",
        failures.join("\n")
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn a_metric_the_adapter_fails_on_gives_tidal_the_builtin_hpas_conditions()
-> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace("custom-metrics-fail").await?;
    let c = h.client();
    crd::install(c).await?;
    let adapter = MetricsAdapter::discover(c).await?;
    let _operator = operator_for(ns.name()).await?;

    // (case, metric, the reason upstream gives: what the case was designed for)
    let cases: Vec<(Case, &str)> = vec![
        // No value was ever written: the adapter lists no pod metrics.
        (
            Case {
                name: "pods-unknown",
                metric: |_| {
                    serde_json::json!({"type": "Pods", "pods": {
                        "metric": {"name": "never-written"},
                        "target": {"type": "AverageValue", "averageValue": "1"}}})
                },
                feed: |_| None,
                total: 0.0,
                max_replicas: 5,
                expected: 1,
            },
            "FailedGetPodsMetric",
        ),
        // The adapter answers 404 for an object metric it holds no value of.
        (
            Case {
                name: "object-unknown",
                metric: |target| {
                    serde_json::json!({"type": "Object", "object": {
                        "describedObject": {"apiVersion": "v1", "kind": "Service", "name": format!("{target}-none")},
                        "metric": {"name": "never-written"},
                        "target": {"type": "Value", "value": "1"}}})
                },
                feed: |_| None,
                total: 0.0,
                max_replicas: 5,
                expected: 1,
            },
            "FailedGetObjectMetric",
        ),
        // An external metric name the adapter does not serve: an empty list.
        (
            Case {
                name: "external-unknown",
                metric: |_| {
                    serde_json::json!({"type": "External", "external": {
                        "metric": {"name": "no-such-external-metric"},
                        "target": {"type": "Value", "value": "1"}}})
                },
                feed: |_| None,
                total: 0.0,
                max_replicas: 5,
                expected: 1,
            },
            "FailedGetExternalMetric",
        ),
    ];
    let mut created = Vec::new();
    for (case, _) in &cases {
        created.push(start_case(c, ns.name(), &adapter, case).await?.1);
    }
    let results = futures::future::join_all(cases.iter().zip(created).map(|((case, _), at)| {
        settle(c, ns.name(), case.name, at, |_, conditions| {
            conditions[1].starts_with("ScalingActive=False/")
        })
    }))
    .await;

    let mut failures = Vec::new();
    for ((case, reason), result) in cases.iter().zip(results) {
        match result {
            Ok(s) => {
                eprintln!(
                    "{:<17} HPA {} replicas, Tidal {} replicas, conditions {:?}",
                    s.case, s.hpa_replicas, s.tidal_replicas, s.conditions
                );
                let want = format!("ScalingActive=False/{reason}");
                if s.conditions[1] != want || s.hpa_replicas != case.expected {
                    failures.push(format!(
                        "{}: both sides agree, but on {:?} at {} replicas, not the {want} at {} \
                         the case was designed for",
                        s.case, s.conditions, s.hpa_replicas, case.expected
                    ));
                }
            }
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// The comparison runner (`tidal-e2e compare --pods-metric`) on `make demo`'s trace, read as a
/// Pods metric's total that the runner writes through the adapter: both sides make the same
/// decisions at every sync (within the runner's skew) and end at the same size.
#[tokio::test]
#[ignore = "needs the local control plane (KUBECONFIG); about 3.5 minutes"]
async fn the_comparison_runner_drives_a_pods_metric_through_the_adapter_and_both_sides_agree()
-> anyhow::Result<()> {
    let harness = Harness::connect().await?;
    let trace = DemandTrace::from_path(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("traces/demo.csv"),
    )?;
    let mut config = CompareConfig::new(trace, artifacts_dir().join("compare-pods-metric"));
    // 40 -> 400 -> 40 in total at 50 per pod: 1, then 8, then 1 again.
    config.pods_metric = Some(
        "requests-per-second=50"
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?,
    );
    let o = compare::run(&harness, &config, |line| println!("pods metric: {line}")).await?;
    println!("{}", o.summary_text);
    let decisions = |t: &tidal_report::Timeline| {
        let mut out: Vec<i32> = Vec::new();
        for s in t.samples() {
            if out.last() != Some(&s.replicas) {
                out.push(s.replicas);
            }
        }
        out
    };
    let d = &o.divergence;
    println!(
        "decisions: HPA {:?}, Tidal {:?}; {} of {} syncs differ (±{}s)",
        decisions(&o.hpa),
        decisions(&o.tidal),
        d.differing(),
        d.syncs(),
        d.skew_seconds
    );
    anyhow::ensure!(d.syncs() >= 25, "only {} sync instants compared", d.syncs());
    anyhow::ensure!(
        d.differing() == 0,
        "replicas differ beyond ±{}s at {:?}; HPA decisions {:?}, Tidal decisions {:?}",
        d.skew_seconds,
        d.comparisons
            .iter()
            .filter(|c| !c.agree)
            .collect::<Vec<_>>(),
        decisions(&o.hpa),
        decisions(&o.tidal)
    );
    anyhow::ensure!(
        o.hpa_summary.max_replicas == 8 && o.tidal_summary.max_replicas == 8,
        "max replicas: HPA {}, Tidal {} (400 at 50 per pod is 8)",
        o.hpa_summary.max_replicas,
        o.tidal_summary.max_replicas
    );
    let last = |t: &tidal_report::Timeline| t.samples().last().map(|s| s.replicas);
    anyhow::ensure!(
        last(&o.hpa) == last(&o.tidal),
        "final sizes: HPA {:?}, Tidal {:?}",
        last(&o.hpa),
        last(&o.tidal)
    );
    Ok(())
}
