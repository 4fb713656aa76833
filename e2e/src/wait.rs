//! Polling helpers: the cluster is eventually consistent, so tests wait for
//! conditions with a deadline instead of sleeping for a guessed time.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};

use crate::error::{Error, Result};

/// Calls `check` every `poll` until it yields `Some`, an error, or `timeout`
/// passes.
pub async fn until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    poll: Duration,
    mut check: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if start.elapsed() >= timeout {
            return Err(Error::Timeout {
                what: what.to_owned(),
                waited: start.elapsed(),
            });
        }
        tokio::time::sleep(poll).await;
    }
}

/// Whether a pod counts as serving: Running, not being deleted, and Ready.
pub fn is_ready(pod: &Pod) -> bool {
    let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    pod.metadata.deletion_timestamp.is_none() && running && ready
}

/// Pods in `namespace` matching `selector`.
pub async fn pods(client: &Client, namespace: &str, selector: &str) -> Result<Vec<Pod>> {
    let list = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(selector))
        .await?;
    Ok(list.items)
}

/// Waits until exactly `n` matching pods exist and all are Ready.
pub async fn ready_pods(
    client: &Client,
    namespace: &str,
    selector: &str,
    n: usize,
    timeout: Duration,
) -> Result<Vec<Pod>> {
    until(
        &format!("{n} ready pods matching {selector} in {namespace}"),
        timeout,
        Duration::from_millis(500),
        || async {
            let pods = pods(client, namespace, selector).await?;
            let live: Vec<Pod> = pods
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            Ok((live.len() == n && live.iter().all(is_ready)).then_some(live))
        },
    )
    .await
}

/// Waits until a Deployment reports `n` ready replicas and no others.
pub async fn deployment_ready(
    client: &Client,
    namespace: &str,
    name: &str,
    n: i32,
    timeout: Duration,
) -> Result<Deployment> {
    let api = Api::<Deployment>::namespaced(client.clone(), namespace);
    until(
        &format!("deployment {namespace}/{name} with {n} ready replicas"),
        timeout,
        Duration::from_millis(500),
        || async {
            let d = api.get(name).await?;
            let s = d.status.clone().unwrap_or_default();
            let done = s.ready_replicas.unwrap_or(0) == n && s.replicas.unwrap_or(0) == n;
            Ok(done.then_some(d))
        },
    )
    .await
}

/// Waits until a Deployment has rolled out whatever `spec.replicas` it has
/// now (all of them ready, none extra) and returns that count.
pub async fn deployment_settled(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<i32> {
    let api = Api::<Deployment>::namespaced(client.clone(), namespace);
    until(
        &format!("deployment {namespace}/{name} to settle"),
        timeout,
        Duration::from_millis(500),
        || async {
            let d = api.get(name).await?;
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let s = d.status.unwrap_or_default();
            let observed = s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
            let done = observed
                && s.ready_replicas.unwrap_or(0) == want
                && s.replicas.unwrap_or(0) == want;
            Ok(done.then_some(want))
        },
    )
    .await
}
