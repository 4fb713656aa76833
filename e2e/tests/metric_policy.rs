//! A metric that stops updating (issue #17): metrics-server loses one node of the target's
//! pods, as when that node's kubelet stops answering. Three copies of one workload, each spread
//! over two kwok nodes of the test's own (two pods on each): `twin` under the built-in HPA,
//! `plain` under an AutoScaler without a policy, `fixed` under an AutoScaler whose CPU metric has
//! `maxSampleAgeSeconds: 30, whenUnavailable: Fixed, fixedReplicas: 2`. Every pod uses 30% of
//! its request against a 50% target, so with all samples each would scale down.
//!
//! With node `b`'s metrics gone (metrics-server drops its pods' samples at the next failed
//! scrape), upstream counts the pods without a sample at 100% on a scale-down, which holds the
//! size: `plain` must do exactly what `twin` does. `fixed` sees pods running past 30 s without
//! a sample, judges the metric stale, proposes 2 and says so (`MetricPolicy=True`, a Warning
//! event). When the node's metrics return, `fixed` reports fresh data and `plain` and `twin`
//! scale down alike.
//!
//! The test changes only the two nodes it made, so it runs beside the others.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Node;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tidal_e2e::crd;
use tidal_e2e::harness::Harness;
use tidal_e2e::operator::{self, OperatorBuilder, Scaled, WorkloadKind, poll};
use tidal_e2e::wait;
use tidal_e2e::workload::{KwokWorkload, NODE_POOL_LABEL};

const METRICS_PATH: &str = "metrics.k8s.io/resource-metrics-path";

/// A kwok node of the test's own pool, whose kubelet metrics metrics-server scrapes at the
/// path its annotation gives.
fn node(name: &str, pool: &str) -> anyhow::Result<Node> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "kwok.x-k8s.io/node": "fake",
                METRICS_PATH: format!("/metrics/nodes/{name}/metrics/resource"),
            },
            "labels": {
                NODE_POOL_LABEL: pool,
                "type": "kwok-pool",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
        "spec": {"taints": [{"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}]},
        "status": {
            "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "20"},
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "20"},
        },
    }))?)
}

/// Points `name`'s metrics annotation at its own kubelet endpoint (`healthy`) or at one kwok
/// does not serve, so that metrics-server's scrapes of it fail.
async fn node_metrics(client: &Client, name: &str, healthy: bool) -> anyhow::Result<()> {
    let path = if healthy {
        format!("/metrics/nodes/{name}/metrics/resource")
    } else {
        format!("/metrics/nodes/{name}-gone/metrics/resource")
    };
    let patch = serde_json::json!({"metadata": {"annotations": {METRICS_PATH: path}}});
    Api::<Node>::all(client.clone())
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Names of the pods of `selector` in `namespace` that metrics.k8s.io lists, and of those on
/// node `node`.
async fn sampled_pods(
    client: &Client,
    namespace: &str,
    selector: &str,
    node: &str,
) -> anyhow::Result<(usize, usize, usize)> {
    let pods = wait::pods(client, namespace, selector).await?;
    let url = format!(
        "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods?labelSelector={}",
        selector.replace('=', "%3D")
    );
    let req = http::Request::get(url).body(Vec::new())?;
    let list: serde_json::Value = client.request(req).await?;
    let sampled: Vec<String> = list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let on_node = |p: &k8s_openapi::api::core::v1::Pod| {
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
    };
    let total = pods.len();
    let sampled_here = pods
        .iter()
        .filter(|p| {
            sampled
                .iter()
                .any(|n| Some(n.as_str()) == p.metadata.name.as_deref())
        })
        .count();
    let sampled_on_node = pods
        .iter()
        .filter(|p| on_node(p))
        .filter(|p| {
            sampled
                .iter()
                .any(|n| Some(n.as_str()) == p.metadata.name.as_deref())
        })
        .count();
    Ok((total, sampled_here, sampled_on_node))
}

/// The CPU spec all three share: 50% of request, 1..8, no scale-down window (so a lower
/// proposal is written at once, by both controllers alike).
fn spec(name: &str) -> serde_json::Value {
    let mut spec = operator::cpu_utilization_spec(WorkloadKind::Deployment, name, 1, 8, 50);
    spec["behavior"] = serde_json::json!({"scaleDown": {"stabilizationWindowSeconds": 0}});
    spec
}

struct Nodes {
    client: Client,
    names: [String; 2],
}

impl Nodes {
    async fn delete(&self) {
        for n in &self.names {
            let _ = Api::<Node>::all(self.client.clone())
                .delete(n, &DeleteParams::default())
                .await;
        }
    }
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn a_node_whose_metrics_stop_is_treated_per_policy_and_the_default_matches_the_builtin_hpa()
-> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace("metric-policy").await?;
    let c = h.client().clone();
    crd::install(&c).await?;
    let pool = ns.name().to_owned();
    let nodes = Nodes {
        client: c.clone(),
        names: [format!("{pool}-a"), format!("{pool}-b")],
    };
    for n in &nodes.names {
        Api::<Node>::all(c.clone())
            .create(&PostParams::default(), &node(n, &pool)?)
            .await
            .with_context(|| format!("creating node {n}"))?;
    }
    let result = run(&c, ns.name(), &pool, &nodes.names[1]).await;
    nodes.delete().await;
    result
}

async fn run(c: &Client, ns: &str, pool: &str, broken: &str) -> anyhow::Result<()> {
    let names = ["twin", "plain", "fixed"];
    for name in names {
        KwokWorkload::new(name)
            .replicas(4)
            .cpu_request("100m")
            .cpu_usage("30m")
            .ready_delay(Duration::from_secs(1))
            .node_pool(pool)
            .create_deployment(c, ns)
            .await?;
    }
    for name in names {
        let selector = format!("app={name}");
        wait::ready_pods(c, ns, &selector, 4, Duration::from_secs(90)).await?;
        poll(
            &format!("samples for all 4 pods of {name}"),
            Duration::from_secs(90),
            || async {
                let (total, sampled, _) = sampled_pods(c, ns, &selector, broken).await?;
                Ok((total == 4 && sampled == 4).then_some(()))
            },
        )
        .await?;
    }

    // Node b stops answering metrics-server; its pods lose their samples.
    node_metrics(c, broken, false).await?;
    let broke_at = Instant::now();
    for name in names {
        let selector = format!("app={name}");
        let (_, sampled, on_b) = poll(
            &format!("the samples of {name}'s pods on {broken} to vanish"),
            Duration::from_secs(60),
            || async {
                let s = sampled_pods(c, ns, &selector, broken).await?;
                Ok((s.2 == 0).then_some(s))
            },
        )
        .await?;
        println!("{name}: {sampled} of 4 pods sampled, {on_b} on {broken}");
        ensure!(
            sampled == 2,
            "{name}: expected the 2 pods on the healthy node to keep samples"
        );
    }
    println!(
        "samples of {broken} gone {:.1}s after the break",
        broke_at.elapsed().as_secs_f64()
    );

    // The controllers start now, on data with a hole in it.
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(serde_json::json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "twin"},
        "spec": spec("twin"),
    }))?;
    let hpas = Api::<HorizontalPodAutoscaler>::namespaced(c.clone(), ns);
    hpas.create(&PostParams::default(), &hpa).await?;
    let _op = OperatorBuilder::new(ns)
        .flag("sync-period", "5s")
        .start()
        .await?;
    operator::create_autoscaler(c, ns, "plain", spec("plain")).await?;
    let mut fixed_spec = spec("fixed");
    fixed_spec["tidal"] = serde_json::json!({"metricPolicies": [{
        "type": "Resource", "name": "cpu", "maxSampleAgeSeconds": 30,
        "whenUnavailable": "Fixed", "fixedReplicas": 2
    }]});
    operator::create_autoscaler(c, ns, "fixed", fixed_spec).await?;
    let plain = Scaled::named(c, ns, WorkloadKind::Deployment, "plain");
    let fixed = Scaled::named(c, ns, WorkloadKind::Deployment, "fixed");
    let twin_replicas = || async {
        let d = Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(c.clone(), ns)
            .get("twin")
            .await?;
        anyhow::Ok(d.spec.and_then(|s| s.replicas).unwrap_or_default())
    };

    // fixed: stale (pods on b have run past 30 s without a sample), proposes 2.
    let started = Instant::now();
    fixed
        .wait_replicas(
            "fixed at its policy's 2 replicas",
            Duration::from_secs(90),
            |r| r == 2,
        )
        .await?;
    println!(
        "fixed scaled to 2 after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let view = fixed.view().await?;
    let condition = view
        .condition("MetricPolicy")
        .context("fixed has no MetricPolicy condition")?;
    println!("fixed: {}", operator::condition_text(Some(condition)));
    ensure!(condition.status == "True", "MetricPolicy should be True");
    let reason = condition.reason.clone().unwrap_or_default();
    ensure!(
        reason == "MetricStale" || reason == "MetricMissing",
        "unexpected reason {reason}"
    );
    ensure!(
        condition.message.as_deref().is_some_and(
            |m| m.contains("Resource metric cpu") && m.contains("policy Fixed proposes 2")
        ),
        "the message should name the metric and the policy"
    );
    let events = fixed.events().await?;
    ensure!(
        events
            .iter()
            .any(|e| e.type_ == "Warning"
                && (e.reason == "MetricStale" || e.reason == "MetricMissing")),
        "no MetricStale/MetricMissing Warning event on fixed: {events:?}"
    );

    // plain and twin: both hold at 4 (the pods without a sample count at 100% on a scale-down),
    // sync after sync.
    let watch_until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < watch_until {
        let (p, t) = (plain.spec_replicas().await?, twin_replicas().await?);
        ensure!(
            p == t,
            "plain has {p} replicas, the built-in HPA's twin {t}"
        );
        ensure!(
            p == 4,
            "expected both held at 4 by the missing samples, got {p}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let plain_view = plain.view().await?;
    ensure!(
        plain_view.condition("MetricPolicy").is_none(),
        "an AutoScaler without policies must not report MetricPolicy"
    );
    let twin = hpas.get("twin").await?;
    let twin_conditions = twin.status.and_then(|s| s.conditions).unwrap_or_default();
    for kind in ["AbleToScale", "ScalingActive"] {
        let ours = plain_view.condition(kind).and_then(|c| c.reason.clone());
        let theirs = twin_conditions
            .iter()
            .find(|c| c.type_ == kind)
            .and_then(|c| c.reason.clone());
        ensure!(ours == theirs, "{kind}: plain {ours:?}, twin {theirs:?}");
    }

    // b answers again: fixed reports fresh data; plain and twin scale down alike.
    node_metrics(c, broken, true).await?;
    fixed
        .until(
            "fixed's MetricPolicy back to False",
            Duration::from_secs(120),
            || async {
                let v = fixed.view().await?;
                Ok(v.condition("MetricPolicy")
                    .filter(|c| c.status == "False" && c.reason.as_deref() == Some("MetricsFresh"))
                    .map(|_| ()))
            },
        )
        .await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (p, t) = (plain.spec_replicas().await?, twin_replicas().await?);
        if p == 2 && t == 2 {
            println!("plain and twin both scaled down to {p}");
            break;
        }
        if Instant::now() > deadline {
            bail!("plain ({p}) and twin ({t}) did not both reach 2 after the node recovered");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // The policy's stand-in is over; the metric itself keeps fixed at 2 (2 pods at 30%).
    ensure!(fixed.spec_replicas().await? == 2);
    Ok(())
}
