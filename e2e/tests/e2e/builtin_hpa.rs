//! The built-in HPA (kube-controller-manager's own controller) on the local
//! control plane: it scales a kwok Deployment out when the load driver
//! raises demand, and back in only after the (test-shortened) downscale
//! stabilization window. The replica timeline is written as a CSV artefact.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tidal_e2e::demand::Demand;
use tidal_e2e::driver::{Driver, SharedDemand, TickReport};
use tidal_e2e::harness::Harness;
use tidal_e2e::timeline::{Sample, Timeline, artifacts_dir};
use tidal_e2e::wait;
use tidal_e2e::workload::KwokWorkload;
use tokio::sync::{oneshot, watch};

/// kube-controller-manager's --horizontal-pod-autoscaler-downscale-stabilization
/// in the cluster under test (same variable and default as cluster.sh).
fn downscale_stabilization() -> Duration {
    let s = std::env::var("TIDAL_HPA_DOWNSCALE_STABILIZATION").unwrap_or_else(|_| "30s".into());
    Duration::from_secs(s.trim_end_matches('s').parse::<u64>().unwrap_or(30))
}

/// kube-controller-manager's --horizontal-pod-autoscaler-sync-period in the cluster under
/// test (same variable and default as cluster.sh).
fn hpa_sync_period() -> Duration {
    let s = std::env::var("TIDAL_HPA_SYNC_PERIOD").unwrap_or_else(|_| "5s".into());
    Duration::from_secs(s.trim_end_matches('s').parse::<u64>().unwrap_or(5))
}

fn hpa(
    name: &str,
    target: &str,
    min: i32,
    max: i32,
    cpu_utilization: i32,
) -> HorizontalPodAutoscaler {
    HorizontalPodAutoscaler {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: target.into(),
            },
            min_replicas: Some(min),
            max_replicas: max,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(cpu_utilization),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            // No behavior: the controller's flag-driven defaults are under test.
            behavior: None,
        },
        status: None,
    }
}

/// Samples the Deployment, the HPA and the driver once a second.
struct Recorder {
    timeline: Arc<Mutex<Timeline>>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    fn start(
        client: Client,
        ns: &str,
        name: &str,
        demand: SharedDemand,
        driver: watch::Receiver<Option<TickReport>>,
        t0: Instant,
    ) -> Self {
        let timeline = Arc::new(Mutex::new(Timeline::default()));
        let (stop, mut stopped) = oneshot::channel();
        let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
        let hpas = Api::<HorizontalPodAutoscaler>::namespaced(client, ns);
        let (name, tl) = (name.to_owned(), timeline.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = &mut stopped => return,
                }
                let (Ok(d), Ok(h)) = (deployments.get(&name).await, hpas.get(&name).await) else {
                    continue;
                };
                let ds = d.status.unwrap_or_default();
                let hs = h.status.unwrap_or_default();
                let utilization = hs.current_metrics.unwrap_or_default().iter().find_map(|m| {
                    m.resource
                        .as_ref()
                        .and_then(|r| r.current.average_utilization)
                });
                let sample = Sample {
                    seconds: t0.elapsed().as_secs_f64(),
                    demand_millicores: demand.get().millicores,
                    per_pod_millicores: driver
                        .borrow()
                        .as_ref()
                        .map_or(0.0, |r| r.per_pod_millicores),
                    spec_replicas: d.spec.and_then(|s| s.replicas).unwrap_or(0),
                    ready_replicas: ds.ready_replicas.unwrap_or(0),
                    desired_replicas: Some(hs.desired_replicas),
                    cpu_utilization: utilization,
                };
                tl.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(sample);
            }
        });
        Self {
            timeline,
            stop,
            task,
        }
    }

    fn samples(&self) -> Vec<Sample> {
        self.timeline
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .samples()
            .to_vec()
    }

    async fn finish(self) -> Timeline {
        let _ = self.stop.send(());
        let _ = self.task.await;
        self.timeline
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

async fn spec_replicas(api: &Api<Deployment>, name: &str) -> tidal_e2e::Result<i32> {
    Ok(api
        .get(name)
        .await?
        .spec
        .and_then(|s| s.replicas)
        .unwrap_or(0))
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn builtin_hpa_scales_out_under_load_and_back_in_after_the_stabilization_window()
-> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace("builtin-hpa").await?;
    let c = h.client();
    let t0 = Instant::now();

    // 100m requested per pod, HPA target 50%: 50m per pod is on target.
    let web = KwokWorkload::new("web")
        .cpu_request("100m")
        .ready_delay(Duration::from_secs(2));
    web.create_deployment(c, ns.name()).await?;
    wait::ready_pods(c, ns.name(), &web.selector(), 1, Duration::from_secs(60)).await?;
    Api::<HorizontalPodAutoscaler>::namespaced(c.clone(), ns.name())
        .create(&PostParams::default(), &hpa("web", "web", 1, 8, 50))
        .await?;

    let demand = SharedDemand::new(Demand::cpu(30.0));
    let driver = Driver::new(c.clone(), ns.name(), web.selector()).spawn(Arc::new(demand.clone()));
    let recorder = Recorder::start(
        c.clone(),
        ns.name(),
        "web",
        demand.clone(),
        driver.reports(),
        t0,
    );
    let deployments = Api::<Deployment>::namespaced(c.clone(), ns.name());

    let outcome = async {
        // Quiet: 30m on one pod is 30% of its request, below target.
        wait::until("the HPA to read a CPU utilization", Duration::from_secs(90), Duration::from_secs(1), || async {
            Ok(recorder.samples().last().and_then(|s| s.cpu_utilization))
        })
        .await?;
        anyhow::ensure!(spec_replicas(&deployments, "web").await? == 1, "scaled before any load");

        // Load: 300m needs six pods at 50m each. The HPA may overshoot while
        // new pods have no metrics yet (it counts them as idle), so anything
        // from six up to the maximum is a correct scale-out.
        demand.set(Demand::cpu(300.0));
        let t_up = Instant::now();
        wait::until("the HPA to scale out to at least 6", Duration::from_secs(120), Duration::from_secs(1), || async {
            Ok((spec_replicas(&deployments, "web").await? >= 6).then_some(()))
        })
        .await?;
        println!("scaled out to 6+ replicas {:?} after demand rose", t_up.elapsed());
        let peak = wait::deployment_settled(c, ns.name(), "web", Duration::from_secs(90)).await?;
        // Let the HPA see every new pod's usage before dropping the demand.
        tokio::time::sleep(Duration::from_secs(15)).await;
        let peak = peak.max(spec_replicas(&deployments, "web").await?);

        // Quiet again: the HPA must wait out the stabilization window.
        demand.set(Demand::cpu(30.0));
        let t_down = Instant::now();
        let stabilization = downscale_stabilization();
        let first_drop = wait::until(
            "the HPA to scale in",
            stabilization + Duration::from_secs(120),
            Duration::from_millis(500),
            || async {
                    Ok((spec_replicas(&deployments, "web").await? < peak).then(|| t_down.elapsed()))
            },
        )
        .await?;
        println!("first scale-in {first_drop:?} after demand fell (stabilization window {stabilization:?})");
        // The window runs from the last high recommendation, which can precede the demand
        // change by up to one sync (contract 4.2), so that is the earliest legal scale-in.
        anyhow::ensure!(
            first_drop + hpa_sync_period() >= stabilization,
            "scaled in after {first_drop:?}, before the {stabilization:?} stabilization window passed"
        );
        wait::until("the HPA to scale back to 1", Duration::from_secs(90), Duration::from_secs(1), || async {
            Ok((spec_replicas(&deployments, "web").await? == 1).then_some(()))
        })
        .await?;
        println!("back to 1 replica {:?} after demand fell", t_down.elapsed());
        anyhow::Ok(())
    }
    .await;

    let timeline = recorder.finish().await;
    driver.stop().await?;
    let path = timeline.write_csv(&artifacts_dir(), &format!("builtin-hpa-{}.csv", ns.name()))?;
    println!("replica timeline: {}", path.display());
    outcome?;

    let max = timeline
        .samples()
        .iter()
        .map(|s| s.spec_replicas)
        .max()
        .unwrap_or(0);
    assert!(
        (6..=8).contains(&max),
        "peak replicas in the timeline: {max}"
    );
    Ok(())
}
