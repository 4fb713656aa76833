//! `tidal simulate`: replays a demand trace through the exact decision core (`scaling::plan`
//! and `Plan::complete`, as the operator calls them), offline, second by second.
//!
//! The simulated world is the local control plane's, made explicit:
//! - a Deployment whose pods each request `cpu_request` and start `Pending` for
//!   `pod_startup`, then run unready for `ready_delay`, then are Ready; scale-ins remove
//!   unready pods first, then the newest (the ReplicaSet's preference);
//! - the load driver: every tick (1 s) each Ready pod uses demand ÷ Ready pods, the others
//!   `idle_millicores`;
//! - metrics-server: scrapes every `metric_resolution` and reports each pod's CPU as the
//!   rate between its last two scrapes (so a pod is listed from its second scrape after it
//!   started running, and a change of demand shows up averaged over one resolution);
//! - the autoscaler: decides every `sync_period` (first at `first_sync`), with its memory,
//!   conditions and status carried from one decision to the next, and its writes applied at
//!   once; with `fresh_metrics` (the operator's `--reconcile-on-fresh-metrics`, its default)
//!   also in the second of each scrape, which restarts the sync timer as the operator's
//!   requeue does, and in the second after a held decision's window or period releases it.
//!
//! [`simulate`] is pure (no clock, no I/O); the CLI around it reads files and writes the
//! summary table, timelines and plot with `tidal-report`.

mod cli;

use tidal_report::{DemandTrace, Sample, Timeline};

pub use cli::{SimulateArgs, run};

/// The world the simulation runs in (see the module docs).
#[derive(Debug, Clone)]
pub struct World {
    /// Autoscaler sync period, seconds.
    pub sync_period: f64,
    /// Seconds into the trace of the first decision.
    pub first_sync: f64,
    /// metrics-server resolution, seconds.
    pub metric_resolution: f64,
    /// Pending time of a new pod, seconds.
    pub pod_startup: f64,
    /// Running-but-unready time of a new pod, seconds.
    pub ready_delay: f64,
    /// CPU request of each pod, millicores.
    pub cpu_request_millicores: i64,
    /// CPU use of a pod that is not Ready, millicores.
    pub idle_millicores: f64,
    /// Replicas at the start (default: `minReplicas`), all Ready long before.
    pub initial_replicas: Option<i32>,
    /// The decision configuration (tolerance, windows, delays).
    pub config: scaling::Config,
    /// A metrics-server outage, if any.
    pub metrics_outage: Option<Outage>,
    /// Also decide as soon as a scrape produced new samples (see the module docs).
    pub fresh_metrics: bool,
}

/// A metrics-server outage: from `from` until `to` seconds into the trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outage {
    /// Start, seconds into the trace.
    pub from: f64,
    /// End, seconds into the trace.
    pub to: f64,
    /// What the autoscaler sees meanwhile.
    pub mode: OutageMode,
}

/// What an outage looks like from the autoscaler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutageMode {
    /// metrics-server stops scraping but keeps serving its last samples (with their old
    /// timestamps): the metric is stale.
    Frozen,
    /// The metrics API answers with an error: the metric is missing.
    Missing,
}

impl Outage {
    fn covers(&self, t: f64) -> bool {
        self.from <= t && t < self.to
    }
}

struct SimPod {
    name: String,
    running_at: f64,
    ready_at: f64,
    usage: f64,
    /// CPU used since it started, millicore-seconds (what the kubelet's counter says).
    used: f64,
    /// The previous scrape of this pod: (time, `used` then).
    scraped: Option<(f64, f64)>,
}

/// Seconds as a decision-core instant (the trace's second 0 is an arbitrary fixed date).
fn instant(seconds: f64) -> scaling::Time {
    const ORIGIN_NANOS: i128 = 1_767_225_600 * 1_000_000_000; // 2026-01-01T00:00:00Z
    scaling::Time::from_unix_nanos(ORIGIN_NANOS + (seconds * 1e9).round() as i128)
}

fn labels() -> scaling::Labels {
    let mut l = scaling::Labels::new();
    l.insert("app".to_string(), "sim".to_string());
    l
}

/// Runs the trace through the decision core; one sample per second.
pub fn simulate(
    spec: &scaling::AutoscalerSpec,
    policies: &[scaling::MetricPolicy],
    trace: &DemandTrace,
    world: &World,
) -> Timeline {
    let labels = labels();
    let requests: scaling::ResourceList =
        vec![("cpu".to_string(), world.cpu_request_millicores)].into();
    let min = spec.min_replicas.unwrap_or(1);
    let start = world.initial_replicas.unwrap_or(min).max(0);
    let mut created = 0usize;
    let mut pods: Vec<SimPod> = Vec::new();
    let mut new_pod = |at: f64, ready_now: bool, pods: &mut Vec<SimPod>| {
        let (running_at, ready_at) = if ready_now {
            (at - 3600.0, at - 3600.0 + world.ready_delay)
        } else {
            (
                at + world.pod_startup,
                at + world.pod_startup + world.ready_delay,
            )
        };
        pods.push(SimPod {
            name: format!("sim-{created:06}"),
            running_at,
            ready_at,
            usage: world.idle_millicores,
            used: 0.0,
            // Pods running long before the trace have been scraped before it.
            scraped: ready_now.then_some((at - world.metric_resolution, 0.0)),
        });
        created += 1;
    };
    for _ in 0..start {
        new_pod(0.0, true, &mut pods);
    }
    // They ran at the trace's first demand during the resolution before it.
    if start > 0 {
        let share = trace.at(0.0).millicores / f64::from(start);
        for p in &mut pods {
            p.used = share * world.metric_resolution;
        }
    }
    let mut replicas = start;
    let mut status = scaling::AutoscalerStatus {
        desired_replicas: start,
        current_replicas: start,
        conditions: Vec::new(),
    };
    let mut history: Option<scaling::History> = None;
    let mut desired: Option<i32> = None;
    // Scrapes: (time, samples of pods listed then).
    let mut last_scrape: Option<(f64, Vec<scaling::PodMetrics>)> = None;
    let mut next_scrape = 0.0;
    let mut next_sync = world.first_sync;
    let mut timeline = Timeline::new();
    let end = trace.duration_seconds();
    let ticks = end.floor() as i64;
    for tick in 0..=ticks {
        let t = tick as f64;
        let demand = trace.at(t).millicores;
        // The driver.
        let ready = pods.iter().filter(|p| p.ready_at <= t).count();
        for p in &mut pods {
            p.usage = if p.ready_at <= t && ready > 0 {
                demand / ready as f64
            } else {
                world.idle_millicores
            };
        }
        // metrics-server (it scrapes nothing during an outage).
        let outage = world.metrics_outage.filter(|o| o.covers(t));
        let mut scraped = false;
        while next_scrape <= t {
            let at = next_scrape;
            if outage.is_some() {
                next_scrape += world.metric_resolution;
                continue;
            }
            let mut samples = Vec::new();
            for p in pods.iter_mut().filter(|p| p.running_at <= at) {
                if let Some((then, used_then)) = p.scraped
                    && at > then
                {
                    let rate = (p.used - used_then) / (at - then);
                    samples.push(scaling::PodMetrics {
                        name: p.name.clone(),
                        timestamp: instant(at),
                        window: scaling::Duration::from_nanos(((at - then) * 1e9) as i128),
                        containers: vec![scaling::ContainerMetrics {
                            name: "app".to_string(),
                            usage: vec![("cpu".to_string(), rate.round() as i64)].into(),
                        }],
                    });
                }
                p.scraped = Some((at, p.used));
            }
            scraped |= !samples.is_empty();
            last_scrape = Some((at, samples));
            next_scrape += world.metric_resolution;
        }
        // The autoscaler: on its timer, or on fresh samples (after the first sync, as the
        // operator starts by reconciling everything).
        let fresh = world.fresh_metrics && scraped && t >= world.first_sync;
        if next_sync <= t || fresh {
            next_sync = if fresh && next_sync > t {
                t + world.sync_period
            } else {
                next_sync + world.sync_period
            };
            let now = instant(t);
            let listed: Vec<scaling::Pod> = pods
                .iter()
                .map(|p| {
                    let running = p.running_at <= t;
                    scaling::Pod {
                        name: p.name.clone(),
                        labels: labels.clone(),
                        deleting: false,
                        phase: if running {
                            scaling::PodPhase::Running
                        } else {
                            scaling::PodPhase::Pending
                        },
                        start_time: running.then(|| instant(p.running_at)),
                        ready: running.then(|| {
                            let is_ready = p.ready_at <= t;
                            scaling::PodReady {
                                status: if is_ready {
                                    scaling::ConditionStatus::True
                                } else {
                                    scaling::ConditionStatus::False
                                },
                                last_transition_time: instant(if is_ready {
                                    p.ready_at
                                } else {
                                    p.running_at
                                }),
                            }
                        }),
                        containers: vec![scaling::Container {
                            name: "app".to_string(),
                            requests: requests.clone(),
                            restart_always: false,
                        }],
                        init_containers: Vec::new(),
                        pod_requests: None,
                    }
                })
                .collect();
            let names: std::collections::HashSet<&str> =
                pods.iter().map(|p| p.name.as_str()).collect();
            let metrics = last_scrape
                .as_ref()
                .map(|(_, s)| {
                    s.iter()
                        .filter(|m| names.contains(m.name.as_str()))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            let input = scaling::DecisionInput {
                now,
                config: world.config.clone(),
                metadata: scaling::ObjectMeta {
                    name: "sim".to_string(),
                    namespace: "sim".to_string(),
                },
                spec: spec.clone(),
                status: status.clone(),
                scale: scaling::ScaleRead::Read(scaling::Scale {
                    spec_replicas: replicas,
                    status_replicas: i32::try_from(pods.len()).unwrap_or(i32::MAX),
                    selector: "app=sim".to_string(),
                }),
                pods: listed,
                pod_metrics: match outage.map(|o| o.mode) {
                    Some(OutageMode::Missing) => {
                        Err("the server is currently unable to handle the request".to_string())
                    }
                    _ => Ok(metrics),
                },
                metric_values: Vec::new(),
                other_autoscalers: Vec::new(),
                history: history.take(),
                metric_policies: policies.to_vec(),
            };
            let decision = scaling::decide(&input, |_| Ok(()));
            history = decision.history.clone();
            // As the operator: a held decision is taken again when its window or period
            // releases it (in the first whole second after), not at the next sync.
            if world.fresh_metrics
                && scaling::normalize::held(spec, &decision.trace)
                && let Some(release) = history
                    .as_ref()
                    .and_then(|h| scaling::normalize::next_release(spec, &world.config, h, now))
            {
                let at = (release.unix_nanos() - instant(0.0).unix_nanos()) as f64 / 1e9;
                next_sync = next_sync.min(at.floor() + 1.0);
            }
            status = scaling::AutoscalerStatus {
                desired_replicas: decision.desired_replicas,
                current_replicas: decision.current_replicas,
                conditions: decision.conditions.clone(),
            };
            desired = Some(decision.desired_replicas);
            if decision.rescale {
                let target = decision.desired_replicas.max(0);
                while (pods.len() as i32) < target {
                    new_pod(t, false, &mut pods);
                }
                while (pods.len() as i32) > target {
                    // Unready first, then the newest.
                    let victim = pods
                        .iter()
                        .enumerate()
                        .max_by_key(|(i, p)| (p.ready_at > t, *i))
                        .map(|(i, _)| i);
                    if let Some(i) = victim {
                        pods.remove(i);
                    }
                }
                replicas = target;
            }
        }
        for p in pods.iter_mut().filter(|p| p.running_at <= t) {
            p.used += p.usage;
        }
        let ready = pods.iter().filter(|p| p.ready_at <= t).count();
        timeline.push(Sample {
            seconds: t,
            demand_millicores: demand,
            replicas,
            ready_replicas: i32::try_from(ready).unwrap_or(i32::MAX),
            utilization_percent: (ready > 0)
                .then(|| demand / ready as f64 / world.cpu_request_millicores as f64 * 100.0),
            desired_replicas: desired,
            metrics_seconds: last_scrape.as_ref().map(|(at, _)| *at),
            conditions: status
                .conditions
                .iter()
                .map(|c| format!("{}={}/{}", c.kind, c.status, c.reason))
                .collect::<Vec<_>>()
                .join(";"),
        });
    }
    timeline
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        World {
            sync_period: 15.0,
            first_sync: 0.0,
            metric_resolution: 10.0,
            pod_startup: 0.0,
            ready_delay: 5.0,
            cpu_request_millicores: 100,
            idle_millicores: 0.0,
            initial_replicas: None,
            config: scaling::Config::default(),
            metrics_outage: None,
            fresh_metrics: false,
        }
    }

    fn cpu_policy(fields: serde_json::Value) -> Vec<scaling::MetricPolicy> {
        let mut doc = serde_json::json!({
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 10,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}],
            "tidal": {"metricPolicies": [{"type": "Resource", "name": "cpu"}]}
        });
        if let (Some(p), Some(f)) = (
            doc["tidal"]["metricPolicies"][0].as_object_mut(),
            fields.as_object(),
        ) {
            p.extend(f.clone());
        }
        scaling::format::parse_metric_policies(&doc).expect("valid policies")
    }

    /// metrics-server stops at 380 s, while the demand is still high, and stays down.
    fn outage_world(mode: OutageMode) -> World {
        World {
            metrics_outage: Some(Outage {
                from: 380.0,
                to: 1000.0,
                mode,
            }),
            ..world()
        }
    }

    #[test]
    fn frozen_samples_hold_the_peak_as_upstream_and_a_fixed_policy_releases_it() {
        let world = outage_world(OutageMode::Frozen);
        let plain = simulate(&spec(None), &[], &step_trace(), &world);
        let at = |t: &Timeline, s: f64| t.at(s).map(|x| x.replicas).unwrap_or_default();
        assert_eq!(at(&plain, 899.0), 8, "the frozen 400m keeps 8 pods");
        // Reporting only: the same sizes at every second (the conditions say more).
        let sizes = |t: &Timeline| t.samples().iter().map(|s| s.replicas).collect::<Vec<_>>();
        let upstream = cpu_policy(serde_json::json!({"maxSampleAgeSeconds": 30}));
        let reported = simulate(&spec(None), &upstream, &step_trace(), &world);
        assert!(
            sizes(&reported) == sizes(&plain),
            "Upstream changed the sizes"
        );
        let last = reported.samples().last().map(|s| s.conditions.clone());
        assert!(
            last.as_deref()
                .is_some_and(|c| c.contains("MetricPolicy=True/MetricStale")),
            "{last:?}"
        );
        let fixed = cpu_policy(
            serde_json::json!({"maxSampleAgeSeconds": 30, "whenUnavailable": "Fixed", "fixedReplicas": 2}),
        );
        let t = simulate(&spec(None), &fixed, &step_trace(), &world);
        assert_eq!(
            at(&t, 420.0),
            8,
            "samples are not stale yet, then the window holds"
        );
        assert_eq!(at(&t, 899.0), 2);
    }

    #[test]
    fn a_missing_metric_blocks_the_scale_down_unless_a_policy_says_otherwise() {
        let world = outage_world(OutageMode::Missing);
        let at = |t: &Timeline, s: f64| t.at(s).map(|x| x.replicas).unwrap_or_default();
        let plain = simulate(&spec(None), &[], &step_trace(), &world);
        assert_eq!(at(&plain, 899.0), 8);
        let fixed = cpu_policy(serde_json::json!({"whenUnavailable": "Fixed", "fixedReplicas": 3}));
        let t = simulate(&spec(None), &fixed, &step_trace(), &world);
        assert_eq!(at(&t, 899.0), 3);
    }

    fn spec(behavior: Option<serde_json::Value>) -> scaling::AutoscalerSpec {
        let mut json = serde_json::json!({
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 10,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]
        });
        if let Some(b) = behavior {
            json["behavior"] = b;
        }
        scaling::format::parse_spec(&json).expect("valid spec")
    }

    fn step_trace() -> DemandTrace {
        DemandTrace::parse_csv(
            "step",
            "seconds,millicores\n0,40\n60,40\n60,400\n400,400\n400,40\n900,40\n",
        )
        .expect("trace")
    }

    #[test]
    fn a_step_up_scales_to_the_size_the_demand_needs_and_back_after_the_window() {
        let t = simulate(&spec(None), &[], &step_trace(), &world());
        let at = |s: f64| t.at(s).map(|x| x.replicas).unwrap_or_default();
        assert_eq!(at(59.0), 1, "quiet before the step");
        // 400m over 100m requests at 50%: 8 pods.
        assert_eq!(at(399.0), 8);
        // Demand falls at 400 s; the 300 s window holds the size until about 700 s.
        assert_eq!(at(690.0), 8);
        assert_eq!(at(900.0), 1);
    }

    #[test]
    fn a_pods_policy_limits_the_rate_of_scale_up() {
        let b = serde_json::json!({"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}});
        let t = simulate(&spec(Some(b)), &[], &step_trace(), &world());
        let replicas: Vec<i32> = t.samples().iter().map(|s| s.replicas).collect();
        let mut changes = Vec::new();
        for (i, w) in replicas.windows(2).enumerate() {
            if w[1] > w[0] {
                changes.push((i + 1, w[1] - w[0]));
            }
        }
        assert!(changes.iter().all(|(_, d)| *d == 1), "{changes:?}");
        for w in changes.windows(2) {
            assert!(w[1].0 - w[0].0 >= 60, "{changes:?}");
        }
    }

    #[test]
    fn the_same_inputs_give_the_same_timeline() {
        let a = simulate(&spec(None), &[], &step_trace(), &world());
        let b = simulate(&spec(None), &[], &step_trace(), &world());
        assert_eq!(a, b);
        assert_eq!(a.samples().len(), 901);
    }

    #[test]
    fn on_fresh_metrics_the_same_sizes_come_in_the_same_order_only_sooner() {
        let timer = simulate(&spec(None), &[], &step_trace(), &world());
        let fresh_world = World {
            fresh_metrics: true,
            ..world()
        };
        let fresh = simulate(&spec(None), &[], &step_trace(), &fresh_world);
        let changes = |t: &Timeline| -> Vec<(f64, i32)> {
            t.samples()
                .windows(2)
                .filter(|w| w[0].replicas != w[1].replicas)
                .map(|w| (w[1].seconds, w[1].replicas))
                .collect()
        };
        let (timer, fresh) = (changes(&timer), changes(&fresh));
        let sizes = |c: &[(f64, i32)]| c.iter().map(|(_, r)| *r).collect::<Vec<_>>();
        assert_eq!(sizes(&fresh), sizes(&timer));
        // The step at 60 s is scraped at 70 s: decided then, not at the 75 s sync.
        assert_eq!((fresh[0].0, timer[0].0), (70.0, 75.0));
        for ((f, _), (t, _)) in fresh.iter().zip(&timer) {
            assert!(f <= t, "fresh {fresh:?} timer {timer:?}");
        }
    }
}
