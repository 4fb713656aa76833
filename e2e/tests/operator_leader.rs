//! Two operator replicas on one Lease (hot standby): only the holder writes
//! scales, statuses and events; killing it hands the work to the standby
//! within the lease duration; SIGTERM hands it over at the standby's next poll;
//! a holder paused past its lease writes nothing when it resumes (fencing).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use tidal_e2e::crd;
use tidal_e2e::demand::Demand;
use tidal_e2e::driver::{Driver, SharedDemand};
use tidal_e2e::harness::Harness;
use tidal_e2e::operator::{self, Operator, OperatorBuilder, Scaled, WorkloadKind};
use tidal_e2e::wait;
use tidal_e2e::workload::KwokWorkload;

const LEASE: Duration = Duration::from_secs(6);

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn only_the_lease_holder_writes_and_the_standby_takes_over_within_the_lease()
-> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace("op-leader").await?;
    let c = h.client();
    crd::install(c).await?;
    let Pair {
        mut leader,
        standby,
    } = start_pair(c, ns.name()).await?;
    let scaled = Scaled::named(c, ns.name(), WorkloadKind::Deployment, "web");
    let demand = SharedDemand::new(Demand::cpu(20.0));
    let driver = Driver::new(c.clone(), ns.name(), "app=web").spawn(Arc::new(demand.clone()));

    let outcome = async {
        // One replica holds the Lease, the other stands by. (The gauge is
        // set per reconcile, so it is read once one has happened.)
        println!("Lease held by {}", leader.identity());
        anyhow::ensure!(
            leader.metric("tidal_leader ").await == Some(1.0),
            "{} does not report leading",
            leader.identity()
        );
        anyhow::ensure!(
            standby.metric("tidal_leader ").await == Some(0.0),
            "{} reports leading too",
            standby.identity()
        );
        demand.set(Demand::cpu(200.0));
        scaled
            .wait_replicas("the leader to scale out", Duration::from_secs(120), |r| {
                r >= 4
            })
            .await?;
        let skipped = standby
            .metric("tidal_follower_skipped_writes_total")
            .await
            .unwrap_or(0.0);
        anyhow::ensure!(skipped > 0.0, "the standby did not count skipped writes");
        let events = scaled.events().await?;
        let writers: Vec<&str> = events.iter().map(|e| e.instance.as_str()).collect();
        anyhow::ensure!(
            !events.is_empty() && writers.iter().all(|w| *w == leader.identity()),
            "events by {writers:?}, only {} leads",
            leader.identity()
        );

        // Kill the leader: the standby must lead within the lease duration
        // (plus a poll interval and its renewal tick).
        leader.kill();
        let killed = Instant::now();
        scaled
            .until("the standby to take the Lease", LEASE * 3, || async {
                Ok((lease_holder(c, ns.name()).await? == standby.identity()).then_some(()))
            })
            .await?;
        let handover = killed.elapsed();
        println!("handover {handover:?} after the leader was killed (lease {LEASE:?})");
        anyhow::ensure!(
            handover <= LEASE + Duration::from_secs(3),
            "handover took {handover:?}, lease is {LEASE:?}"
        );

        // The new leader acts: quiet load scales back in (default 5m
        // stabilization is too long; raise instead).
        demand.set(Demand::cpu(400.0));
        scaled
            .wait_replicas(
                "the new leader to scale out further",
                Duration::from_secs(120),
                |r| r >= 6,
            )
            .await?;
        let events = scaled.events().await?;
        anyhow::ensure!(
            events
                .iter()
                .any(|e| e.instance == standby.identity() && e.reason == "SuccessfulRescale"),
            "no rescale by {}: {events:?}",
            standby.identity()
        );
        anyhow::Ok(())
    }
    .await;
    driver.stop().await?;
    outcome
}

/// Two replicas on one Lease and an AutoScaler on `web`, once the holder has decided once.
struct Pair {
    leader: Operator,
    standby: Operator,
}

async fn start_pair(c: &kube::Client, ns: &str) -> anyhow::Result<Pair> {
    let spec = operator::cpu_utilization_spec(WorkloadKind::Deployment, "web", 1, 8, 50);
    start_pair_with(c, ns, spec).await
}

async fn start_pair_with(
    c: &kube::Client,
    ns: &str,
    spec: serde_json::Value,
) -> anyhow::Result<Pair> {
    let web = KwokWorkload::new("web")
        .cpu_request("100m")
        .ready_delay(Duration::from_secs(2));
    web.create_deployment(c, ns).await?;
    wait::ready_pods(c, ns, &web.selector(), 1, Duration::from_secs(60)).await?;
    let replica = |id: &str| {
        OperatorBuilder::new(ns)
            .identity(id)
            .flag("sync-period", "5s")
            .flag("leader-election", "on")
            .flag("lease-duration", format!("{}s", LEASE.as_secs()))
    };
    let a = replica("tidal-a").start().await?;
    let b = replica("tidal-b").start().await?;
    operator::create_autoscaler(c, ns, "web", spec).await?;
    let scaled = Scaled::named(c, ns, WorkloadKind::Deployment, "web");
    scaled.wait_utilization(Duration::from_secs(90)).await?;
    let holder = lease_holder(c, ns).await?;
    Ok(if holder == a.identity() {
        Pair {
            leader: a,
            standby: b,
        }
    } else {
        Pair {
            leader: b,
            standby: a,
        }
    })
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn a_terminated_leader_releases_the_lease_and_the_standby_holds_it_within_two_seconds()
-> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace("op-handover").await?;
    let c = h.client();
    crd::install(c).await?;
    let Pair {
        mut leader,
        standby,
    } = start_pair(c, ns.name()).await?;

    let sent = Instant::now();
    let exited = leader.terminate(Duration::from_secs(15)).await?;
    anyhow::ensure!(
        exited,
        "{} did not exit within 15 s of SIGTERM",
        leader.identity()
    );
    let scaled = Scaled::named(c, ns.name(), WorkloadKind::Deployment, "web");
    scaled
        .until("the standby to take the Lease", LEASE * 2, || async {
            Ok((lease_holder(c, ns.name()).await? == standby.identity()).then_some(()))
        })
        .await?;
    let handover = sent.elapsed();
    println!("handover {handover:?} after SIGTERM to the leader (lease {LEASE:?})");
    let log = std::fs::read_to_string(leader.log_path())?;
    anyhow::ensure!(
        log.contains("released the leader lease"),
        "the terminated leader did not release the lease; log {}",
        leader.log_path().display()
    );
    anyhow::ensure!(
        handover <= Duration::from_secs(2),
        "handover took {handover:?} after SIGTERM; a released lease must be taken at the standby's next 1 s poll"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn a_leader_paused_past_its_lease_writes_nothing_after_it_resumes() -> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace("op-fence").await?;
    let c = h.client();
    crd::install(c).await?;
    let web = KwokWorkload::new("web")
        .cpu_request("100m")
        .ready_delay(Duration::from_secs(2));
    web.create_deployment(c, ns.name()).await?;
    wait::ready_pods(c, ns.name(), &web.selector(), 1, Duration::from_secs(60)).await?;
    let replica = |id: &str| {
        OperatorBuilder::new(ns.name())
            .identity(id)
            .flag("sync-period", "5s")
            .flag("leader-election", "on")
            .flag("lease-duration", format!("{}s", LEASE.as_secs()))
    };
    // The old leader alone scales in at once (no downscale stabilization), the new one keeps
    // the default five minutes: after the load drops, the old leader has a write the new one
    // does not make, so any scale-in while both run is the old leader's, whatever its events
    // say. It starts first, alone, so that it is the one holding the Lease.
    let old = replica("tidal-old")
        .flag("downscale-stabilization", "0s")
        .start()
        .await?;
    let spec = operator::cpu_utilization_spec(WorkloadKind::Deployment, "web", 1, 8, 50);
    operator::create_autoscaler(c, ns.name(), "web", spec).await?;
    let scaled = Scaled::named(c, ns.name(), WorkloadKind::Deployment, "web");
    scaled.wait_utilization(Duration::from_secs(90)).await?;
    anyhow::ensure!(
        lease_holder(c, ns.name()).await? == old.identity(),
        "{} started alone but does not hold the Lease",
        old.identity()
    );
    let new = replica("tidal-new").start().await?;
    let demand = SharedDemand::new(Demand::cpu(20.0));
    let driver = Driver::new(c.clone(), ns.name(), web.selector()).spawn(Arc::new(demand.clone()));

    let outcome = async {
        // (Read before the pause: a stopped process does not answer.)
        let skipped_before = old
            .metric("tidal_follower_skipped_writes_total")
            .await
            .unwrap_or(0.0);
        // Paused (as a long GC pause, a frozen VM or a partition would), its lease runs out
        // and the standby takes over and scales.
        old.signal("STOP")?;
        scaled
            .until("the standby to take the Lease", LEASE * 3, || async {
                Ok((lease_holder(c, ns.name()).await? == new.identity()).then_some(()))
            })
            .await?;
        demand.set(Demand::cpu(200.0));
        let out = scaled
            .wait_replicas(
                "the new leader to scale out",
                Duration::from_secs(120),
                |r| r >= 4,
            )
            .await?;
        // The load drops, and the metrics show it (the new leader's status reports it) before
        // the old leader resumes: from fresh data it would scale in, from stale data too.
        demand.set(Demand::cpu(20.0));
        scaled
            .until(
                "the low load to show in the metrics",
                Duration::from_secs(60),
                || async { Ok(scaled.view().await?.utilization().filter(|u| *u <= 25)) },
            )
            .await?;
        let held = scaled.spec_replicas().await?;
        anyhow::ensure!(
            held >= out,
            "the new leader scaled in to {held} inside its 5 min stabilization"
        );
        // Resumed: its timers fire at once, its memory says it leads, and its own decision
        // differs from the scale; none of it may be written.
        old.signal("CONT")?;
        let resumed = k8s_openapi::jiff::Timestamp::now();
        let watched = Instant::now();
        while watched.elapsed() < Duration::from_secs(20) {
            let replicas = scaled.spec_replicas().await?;
            anyhow::ensure!(
                replicas == held,
                "the scale went {held} -> {replicas} {:?} after the old leader resumed: only it scales in at once",
                watched.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        anyhow::ensure!(
            old.metric("tidal_leader ").await == Some(0.0),
            "{} reports leading after it resumed",
            old.identity()
        );
        // It did reconcile after resuming (so the absence of writes is the fence, not idleness).
        let skipped_after = old
            .metric("tidal_follower_skipped_writes_total")
            .await
            .unwrap_or(0.0);
        anyhow::ensure!(
            skipped_after > skipped_before,
            "{} did not reconcile (and skip) after it resumed",
            old.identity()
        );
        let events = scaled.events().await?;
        let late: Vec<_> = events
            .iter()
            .filter(|e| e.instance == old.identity() && e.last.is_some_and(|t| t >= resumed))
            .collect();
        anyhow::ensure!(
            late.is_empty(),
            "the old leader wrote after it resumed: {late:?}"
        );
        println!(
            "old leader resumed: scale held at {held}, {} follower skips since, no events by it",
            skipped_after - skipped_before
        );
        anyhow::Ok(())
    }
    .await;
    driver.stop().await?;
    outcome
}

/// A ValidatingAdmissionPolicy (and its binding) refusing every AutoScaler status write in
/// `ns` that does not carry a scale intent: the intent goes through, the status write that
/// would record the scale event does not, as if the leader crashed between the two.
struct StatusWritesBlocked {
    client: kube::Client,
    name: String,
}

impl StatusWritesBlocked {
    async fn install(c: &kube::Client, ns: &str) -> anyhow::Result<Self> {
        use k8s_openapi::api::admissionregistration::v1::{
            ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
        };
        let name = format!("block-status-{ns}");
        let policy: ValidatingAdmissionPolicy = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{
                    "apiGroups": ["autoscaling.tidal.dev"], "apiVersions": ["*"],
                    "operations": ["UPDATE"], "resources": ["autoscalers/status"]}]},
                "validations": [{
                    "expression": "has(object.status) && has(object.status.tidal) && has(object.status.tidal.scaleIntent)",
                    "message": "e2e: status writes without a scale intent are blocked"}]
            }
        }))?;
        let binding: ValidatingAdmissionPolicyBinding =
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name},
                "spec": {
                    "policyName": name,
                    "validationActions": ["Deny"],
                    "matchResources": {"namespaceSelector": {"matchLabels": {
                        "kubernetes.io/metadata.name": ns}}}
                }
            }))?;
        let pp = kube::api::PostParams::default();
        kube::Api::<ValidatingAdmissionPolicy>::all(c.clone())
            .create(&pp, &policy)
            .await?;
        let blocked = StatusWritesBlocked {
            client: c.clone(),
            name,
        };
        kube::Api::<ValidatingAdmissionPolicyBinding>::all(c.clone())
            .create(&pp, &binding)
            .await?;
        // The API server applies new policies within about a second.
        tokio::time::sleep(Duration::from_secs(3)).await;
        Ok(blocked)
    }

    async fn remove(self) {
        use k8s_openapi::api::admissionregistration::v1::{
            ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
        };
        let dp = kube::api::DeleteParams::default();
        let _ = kube::Api::<ValidatingAdmissionPolicyBinding>::all(self.client.clone())
            .delete(&self.name, &dp)
            .await;
        let _ = kube::Api::<ValidatingAdmissionPolicy>::all(self.client.clone())
            .delete(&self.name, &dp)
            .await;
    }
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn a_fail_over_after_a_scale_whose_status_write_failed_does_not_spend_the_budget_twice()
-> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace("op-intent").await?;
    let c = h.client();
    crd::install(c).await?;
    // One pod per two minutes up, at once: a second scale-up inside the period would spend the
    // budget twice.
    let mut spec = operator::cpu_utilization_spec(WorkloadKind::Deployment, "web", 1, 8, 50);
    spec["behavior"] = serde_json::json!({"scaleUp": {"stabilizationWindowSeconds": 0,
        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}]}});
    let Pair {
        mut leader,
        standby,
    } = start_pair_with(c, ns.name(), spec).await?;
    let scaled = Scaled::named(c, ns.name(), WorkloadKind::Deployment, "web");
    let web = KwokWorkload::new("web");
    let demand = SharedDemand::new(Demand::cpu(20.0));
    let driver = Driver::new(c.clone(), ns.name(), web.selector()).spawn(Arc::new(demand.clone()));
    let blocked = StatusWritesBlocked::install(c, ns.name()).await?;

    let outcome = async {
        demand.set(Demand::cpu(400.0));
        scaled
            .wait_replicas("the leader to scale 1 -> 2", Duration::from_secs(90), |r| {
                r == 2
            })
            .await?;
        let scaled_at = Instant::now();
        // The status write after the scale was refused: the intent is all the status has.
        let view = scaled.view().await?;
        anyhow::ensure!(
            view.tidal.get("scaleIntent").is_some(),
            "expected the scale intent to be left in the status, got {}",
            view.tidal
        );
        leader.kill();
        scaled
            .until("the standby to take the Lease", LEASE * 3, || async {
                Ok((lease_holder(c, ns.name()).await? == standby.identity()).then_some(()))
            })
            .await?;
        // The new leader must count the old leader's scale-up: nothing more until 120 s after it.
        while scaled_at.elapsed() < Duration::from_secs(60) {
            let replicas = scaled.spec_replicas().await?;
            anyhow::ensure!(
                replicas == 2,
                "the new leader scaled to {replicas} {:?} after the first scale-up, inside its 120 s policy period",
                scaled_at.elapsed()
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let log = std::fs::read_to_string(standby.log_path())?;
        anyhow::ensure!(
            log.contains("settled the scale intent left in status"),
            "the new leader did not settle the intent; log {}",
            standby.log_path().display()
        );
        anyhow::Ok(())
    }
    .await;
    blocked.remove().await;
    driver.stop().await?;
    outcome
}

async fn lease_holder(c: &kube::Client, ns: &str) -> anyhow::Result<String> {
    let lease = kube::Api::<Lease>::namespaced(c.clone(), ns)
        .get(operator::LEASE)
        .await?;
    Ok(lease
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default())
}

/// How long the partition test cuts its operator off the API server.
const PARTITION: Duration = Duration::from_secs(30);

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn a_leader_cut_off_the_api_server_stops_leading_and_its_first_write_after_is_from_fresh_data()
-> anyhow::Result<()> {
    use tidal_e2e::proxy::{self, Proxy};
    let h = Harness::connect().await?;
    let ns = h.namespace("op-partition").await?;
    let c = h.client();
    crd::install(c).await?;
    let web = KwokWorkload::new("web")
        .cpu_request("100m")
        .ready_delay(Duration::from_secs(2));
    web.create_deployment(c, ns.name()).await?;
    wait::ready_pods(c, ns.name(), &web.selector(), 1, Duration::from_secs(60)).await?;
    // The operator reaches the API server only through a proxy the test can cut; the test and
    // the cluster keep their own connections.
    let kubeconfig = std::path::PathBuf::from(
        std::env::var_os("KUBECONFIG").ok_or_else(|| anyhow::anyhow!("KUBECONFIG unset"))?,
    );
    let proxy = Proxy::start(proxy::upstream_of(&kubeconfig)?).await?;
    let proxied = std::env::temp_dir().join(format!("tidal-e2e-{}-kubeconfig", ns.name()));
    proxy.kubeconfig(&kubeconfig, &proxied)?;
    let tidal = OperatorBuilder::new(ns.name())
        .identity("tidal-cut")
        .env("KUBECONFIG", proxied.display().to_string())
        .flag("sync-period", "5s")
        .flag("leader-election", "on")
        .flag("lease-duration", format!("{}s", LEASE.as_secs()))
        .start()
        .await?;
    let spec = operator::cpu_utilization_spec(WorkloadKind::Deployment, "web", 1, 8, 50);
    operator::create_autoscaler(c, ns.name(), "web", spec).await?;
    let scaled = Scaled::named(c, ns.name(), WorkloadKind::Deployment, "web");
    let demand = SharedDemand::new(Demand::cpu(20.0));
    let driver = Driver::new(c.clone(), ns.name(), web.selector()).spawn(Arc::new(demand.clone()));

    let outcome = async {
        scaled.wait_utilization(Duration::from_secs(90)).await?;
        anyhow::ensure!(
            scaled.spec_replicas().await? == 1,
            "20m on one pod of 100m must stay at 1 replica"
        );
        proxy.cut();
        let cut = Instant::now();
        // A scale-out is due from here on (200m on one pod of 100m: 200% against 50%), but the
        // operator cannot read or write anything.
        demand.set(Demand::cpu(200.0));
        let mut stepped_down = None;
        while cut.elapsed() < PARTITION {
            let replicas = scaled.spec_replicas().await?;
            anyhow::ensure!(
                replicas == 1,
                "the scale changed to {replicas} {:?} into the partition",
                cut.elapsed()
            );
            if stepped_down.is_none() && tidal.metric("tidal_leader ").await == Some(0.0) {
                stepped_down = Some(cut.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // Its writes stop at the last renewal + lease - margin (2/3 of the lease), and the gauge
        // says so at the election's next tick after that.
        let stepped_down = stepped_down.ok_or_else(|| {
            anyhow::anyhow!(
                "{} still reports leading after {PARTITION:?} without reaching the API server",
                tidal.identity()
            )
        })?;
        anyhow::ensure!(
            stepped_down <= LEASE + Duration::from_secs(2),
            "{} stepped down {stepped_down:?} into the partition, lease {LEASE:?}",
            tidal.identity()
        );
        let view = scaled.view().await?;
        let load_seen = view.utilization();
        proxy.heal();
        let healed = Instant::now();
        let healed_at = k8s_openapi::jiff::Timestamp::now();
        // Fresh data (the metrics of the last 30 s) say 200% of 50% on one pod: 4 replicas,
        // which the legacy scale-up limit (max(2x, 4)) allows in one step. Any other first
        // size was decided from something else.
        let first = scaled
            .wait_replicas(
                "the first write after the partition",
                Duration::from_secs(60),
                |r| r != 1,
            )
            .await?;
        let recovery = healed.elapsed();
        println!(
            "partition {PARTITION:?}: stepped down {stepped_down:?} into it; first scale write {recovery:?} after it ended (1 -> {first})"
        );
        anyhow::ensure!(
            first == 4,
            "the first write after the partition set {first} replicas; fresh metrics say 4 (status before: {load_seen:?}%)"
        );
        let events = scaled.events().await?;
        let rescale = events
            .iter()
            .find(|e| e.reason == "SuccessfulRescale" && e.last.is_some_and(|t| t >= healed_at))
            .ok_or_else(|| anyhow::anyhow!("no SuccessfulRescale after the partition: {events:?}"))?;
        anyhow::ensure!(
            rescale.message.contains("New size: 4") && rescale.instance == tidal.identity(),
            "unexpected rescale after the partition: {rescale:?}"
        );
        anyhow::ensure!(
            recovery <= Duration::from_secs(30),
            "the first write came {recovery:?} after the partition ended"
        );
        anyhow::Ok(())
    }
    .await;
    driver.stop().await?;
    let _ = std::fs::remove_file(&proxied);
    outcome
}
