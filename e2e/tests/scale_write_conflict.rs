//! A second writer on the scale between Tidal's read and its write, against the real API
//! server: upstream (1.34+, contract section 6) retries a scale update answered 409 Conflict
//! with a fresh GET, up to client-go's `DefaultRetry` (5 attempts), without recomputing the
//! size; a retry that succeeds is a plain `SuccessfulRescale`.
//!
//! The interleaving is forced, not left to chance (earlier versions raced a fast writer
//! against Tidal and, beside other tests or alone, sometimes met no conflict at all). Tidal
//! reads the scale, records its intent in the AutoScaler's status, then writes the scale with
//! the resourceVersion it read. A validating webhook on this namespace's AutoScaler status
//! writes points at a port the test holds open and never answers, so the API server waits out
//! the webhook's timeout and then admits the write (`failurePolicy: Ignore`). The API server
//! connecting to that port is the signal that Tidal is between its read and its write: the test
//! then changes the Deployment's metadata (a new resourceVersion of it and of its scale, never
//! `spec.replicas`, so no replica fight). Tidal's first scale write therefore always conflicts;
//! its retry re-reads and writes with no status write between, so nothing stalls it and it
//! lands.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use tidal_e2e::crd;
use tidal_e2e::demand::Demand;
use tidal_e2e::driver::{Driver, SharedDemand};
use tidal_e2e::harness::Harness;
use tidal_e2e::operator::{self, OperatorBuilder, Scaled, WorkloadKind};
use tidal_e2e::wait;
use tidal_e2e::workload::KwokWorkload;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How long each stalled status write waits for the webhook before the API server admits it:
/// far longer than one metadata patch takes, so the patch lands before Tidal's scale write.
const STALL_SECONDS: i32 = 2;

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn a_scale_write_raced_by_another_writer_lands_on_a_fresh_read_with_the_same_size()
-> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace("op-conflict").await?;
    let c = h.client();
    crd::install(c).await?;
    let web = KwokWorkload::new("web")
        .cpu_request("100m")
        .ready_delay(Duration::from_secs(2));
    web.create_deployment(c, ns.name()).await?;
    wait::ready_pods(c, ns.name(), &web.selector(), 1, Duration::from_secs(60)).await?;
    let tidal = OperatorBuilder::new(ns.name())
        .flag("sync-period", "5s")
        .start()
        .await?;
    let spec = operator::cpu_utilization_spec(WorkloadKind::Deployment, "web", 1, 8, 50);
    operator::create_autoscaler(c, ns.name(), "web", spec).await?;
    let scaled = Scaled::named(c, ns.name(), WorkloadKind::Deployment, "web");
    let demand = SharedDemand::new(Demand::cpu(20.0));
    let driver = Driver::new(c.clone(), ns.name(), web.selector()).spawn(Arc::new(demand.clone()));

    let mut webhook = None;
    let outcome = async {
        scaled.wait_utilization(Duration::from_secs(90)).await?;
        let conflicts_before = tidal
            .metric("tidal_scale_write_conflicts_total")
            .await
            .unwrap_or(0.0);
        let stall = webhook.insert(StallingWebhook::install(c, ns.name(), "web").await?);
        stall.wait_active().await?;
        let (stalls_before, bumps_before) = (stall.stalls(), stall.bumps());
        // 200m on one pod of 100m is 200% of 50%: 4 replicas (the legacy limit allows 4).
        demand.set(Demand::cpu(200.0));
        let written = scaled
            .wait_replicas("the raced scale-out", Duration::from_secs(90), |r| r != 1)
            .await?;
        let conflicts = tidal
            .metric("tidal_scale_write_conflicts_total")
            .await
            .unwrap_or(0.0)
            - conflicts_before;
        let events = scaled.events().await?;
        println!(
            "stalled status writes: {}, metadata writes between Tidal's read and write: {}; Tidal's scale writes met {conflicts} conflicts and wrote {written}",
            stall.stalls() - stalls_before,
            stall.bumps() - bumps_before,
        );
        // Not recomputed, not stale: the retried write is the size decided before it.
        anyhow::ensure!(written == 4, "the raced write set {written}; the decision was 4");
        let rescale = events
            .iter()
            .find(|e| e.reason == "SuccessfulRescale")
            .ok_or_else(|| anyhow::anyhow!("no SuccessfulRescale: {events:?}"))?;
        anyhow::ensure!(
            rescale.message.contains("New size: 4"),
            "unexpected rescale: {rescale:?}"
        );
        anyhow::ensure!(
            stall.bumps() > bumps_before,
            "the webhook never stalled a status write, so no other write was made between Tidal's read and write"
        );
        anyhow::ensure!(
            conflicts > 0.0,
            "a metadata write landed between Tidal's scale read and its write, yet the write met no conflict: was it written without the resourceVersion it read?"
        );
        // The retry re-read and landed at once: upstream reports no failure for it.
        let failed: Vec<_> = events
            .iter()
            .filter(|e| e.reason == "FailedRescale")
            .collect();
        anyhow::ensure!(
            failed.is_empty(),
            "the conflict was not retried on a fresh read: {failed:?}"
        );
        // The other writer never touched spec.replicas: no fight is reported.
        let view = scaled.view().await?;
        anyhow::ensure!(
            view.tidal.get("lastReplicaFight").is_none(),
            "a metadata writer was reported as a replica fight: {}",
            view.tidal
        );
        anyhow::Ok(())
    }
    .await;
    if let Some(stall) = webhook {
        stall.remove().await?;
    }
    driver.stop().await?;
    outcome
}

/// A validating webhook on one namespace's AutoScaler status writes (and, to probe that it is
/// in force, ConfigMap creations) whose endpoint accepts each connection and never answers:
/// every such write waits [`STALL_SECONDS`] and is then admitted. On each connection the other
/// writer changes the Deployment's metadata once.
struct StallingWebhook {
    client: Client,
    name: String,
    namespace: String,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Counters {
    /// Connections the API server made to the webhook: writes it stalled.
    stalls: AtomicU64,
    /// Metadata writes of the Deployment that landed.
    bumps: AtomicU64,
}

impl StallingWebhook {
    async fn install(client: &Client, namespace: &str, deployment: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let name = format!("tidal-e2e-stall-{namespace}");
        // Only the handshake is ever attempted, so the endpoint needs no certificate.
        let config: ValidatingWebhookConfiguration = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "webhooks": [{
                "name": "stall.e2e.tidal.dev",
                "clientConfig": {"url": format!("https://127.0.0.1:{port}/")},
                "rules": [
                    {"apiGroups": ["autoscaling.tidal.dev"], "apiVersions": ["*"],
                     "operations": ["UPDATE"], "resources": ["autoscalers/status"],
                     "scope": "Namespaced"},
                    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                     "resources": ["configmaps"], "scope": "Namespaced"},
                ],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "failurePolicy": "Ignore",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": STALL_SECONDS,
            }],
        }))?;
        Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .create(&PostParams::default(), &config)
            .await?;
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(stall_and_bump(
            listener,
            Api::namespaced(client.clone(), namespace),
            deployment.to_string(),
            counters.clone(),
        ));
        Ok(StallingWebhook {
            client: client.clone(),
            name,
            namespace: namespace.to_string(),
            counters,
            task,
        })
    }

    /// Waits until the API server calls the webhook (it picks up a new configuration
    /// asynchronously): creates probe ConfigMaps until one was stalled.
    async fn wait_active(&self) -> anyhow::Result<()> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        for i in 0..30 {
            let before = self.stalls();
            let mut probe = ConfigMap::default();
            probe.metadata.name = Some(format!("webhook-probe-{i}"));
            api.create(&PostParams::default(), &probe).await?;
            if self.stalls() > before {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        anyhow::bail!("the API server did not call the stalling webhook for 30 probe ConfigMaps")
    }

    fn stalls(&self) -> u64 {
        self.counters.stalls.load(Ordering::SeqCst)
    }

    fn bumps(&self) -> u64 {
        self.counters.bumps.load(Ordering::SeqCst)
    }

    async fn remove(self) -> anyhow::Result<()> {
        self.task.abort();
        Api::<ValidatingWebhookConfiguration>::all(self.client.clone())
            .delete(&self.name, &DeleteParams::default())
            .await?;
        Ok(())
    }
}

/// Accepts the API server's webhook connections, holds each open (so the call waits out its
/// timeout) and changes the Deployment's metadata once per connection.
async fn stall_and_bump(
    listener: TcpListener,
    api: Api<Deployment>,
    deployment: String,
    counters: Arc<Counters>,
) {
    let mut held: Vec<TcpStream> = Vec::new();
    while let Ok((socket, _)) = listener.accept().await {
        held.push(socket);
        let n = counters.stalls.fetch_add(1, Ordering::SeqCst);
        let patch = serde_json::json!({"metadata": {"annotations": {
            "e2e.tidal.dev/other-writer": n.to_string()}}});
        match api
            .patch(&deployment, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                counters.bumps.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => eprintln!("the other writer's patch failed: {e}"),
        }
    }
}
