//! The cluster's pod Stages: kwok starts a pod at once but marks it Ready
//! only after the pod's readiness delay, so tests can exercise the HPA's
//! handling of unready pods. Uses a StatefulSet, the other workload kind the
//! harness creates.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tidal_e2e::harness::Harness;
use tidal_e2e::wait;
use tidal_e2e::workload::KwokWorkload;

/// Seconds from the container's start to the Ready transition, from the
/// pod's own status (second resolution).
fn ready_after(pod: &Pod) -> Option<i64> {
    let status = pod.status.as_ref()?;
    let started = status
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()?
        .running
        .as_ref()?
        .started_at
        .as_ref()?;
    let ready = status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    let ready_at = ready.last_transition_time.as_ref()?;
    Some(ready_at.0.as_second() - started.0.as_second())
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn kwok_pods_run_at_once_but_turn_ready_only_after_their_readiness_delay()
-> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace("readiness-delay").await?;
    let c = h.client();
    let delay = Duration::from_secs(6);
    let db = KwokWorkload::new("db").replicas(2).ready_delay(delay);
    db.create_stateful_set(c, ns.name()).await?;

    // Both pods are seen Running and not yet Ready...
    wait::until(
        "2 pods Running but not Ready",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async {
            let pods = wait::pods(c, ns.name(), &db.selector()).await?;
            let running =
                |p: &Pod| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            Ok(
                (pods.len() == 2 && pods.iter().all(|p| running(p) && !wait::is_ready(p)))
                    .then_some(()),
            )
        },
    )
    .await?;
    // ...and then Ready, no earlier than the delay after their start.
    let pods = wait::ready_pods(c, ns.name(), &db.selector(), 2, Duration::from_secs(60)).await?;
    for pod in &pods {
        let after = ready_after(pod)
            .ok_or_else(|| anyhow::anyhow!("pod status lacks start or Ready times"))?;
        println!(
            "{}: Ready {after}s after start",
            pod.metadata.name.as_deref().unwrap_or("?")
        );
        // Timestamps have one-second resolution.
        assert!(
            after >= delay.as_secs() as i64 - 1,
            "Ready after {after}s, delay is {delay:?}"
        );
        assert!(
            after <= delay.as_secs() as i64 + 5,
            "Ready after {after}s, delay is {delay:?}"
        );
    }
    drop(ns);
    Ok(())
}
