//! `tidal doctor` on the shared control plane (non-disruptive): healthy says healthy, a pod
//! without a CPU request is named with its cause and fix, and a user who may not read the
//! cluster-wide objects gets "could not check", not a failure.

use std::process::Output;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use kube::api::{Api, PostParams};
use tidal_e2e::crd;
use tidal_e2e::harness::Harness;
use tidal_e2e::operator::{self, WorkloadKind};
use tidal_e2e::wait;
use tidal_e2e::workload::KwokWorkload;

async fn doctor(args: &[&str], kubeconfig: Option<&std::path::Path>) -> anyhow::Result<Output> {
    let bin = operator::binary()?;
    let mut cmd = tokio::process::Command::new(&bin);
    cmd.arg("doctor").args(args);
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    cmd.output().await.context("running tidal doctor")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn doctor_reports_healthy_on_a_healthy_cluster() -> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace("doctor-ok").await?;
    let c = h.client();
    crd::install(c).await?;
    let web = KwokWorkload::new("web").cpu_request("100m");
    web.create_deployment(c, ns.name()).await?;
    wait::ready_pods(c, ns.name(), &web.selector(), 1, Duration::from_secs(60)).await?;
    operator::create_autoscaler(
        c,
        ns.name(),
        "web",
        operator::cpu_utilization_spec(WorkloadKind::Deployment, "web", 1, 4, 50),
    )
    .await?;
    // A new pod has a sample after one metrics resolution (10s here).
    let key = format!("{}/web", ns.name());
    let mut last = String::new();
    for _ in 0..30 {
        let out = doctor(&["--target", &key], None).await?;
        last = stdout(&out);
        if out.status.success() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!("{last}");
    ensure!(last.contains("healthy: every check passed"), "{last}");
    for needle in [
        "[ OK ] APIService v1beta1.metrics.k8s.io: Available",
        // The local control plane's metrics adapter (cluster.sh).
        "[ OK ] APIService v1beta1.custom.metrics.k8s.io: Available",
        "[ OK ] APIService v1beta1.external.metrics.k8s.io: Available",
        "CPU requests of",
        "all with fresh samples",
    ] {
        ensure!(last.contains(needle), "missing {needle:?}");
    }
    ensure!(!last.contains("[FAIL]"), "{last}");
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn doctor_names_a_container_without_a_cpu_request() -> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace("doctor-noreq").await?;
    let c = h.client();
    crd::install(c).await?;
    let web = KwokWorkload::new("web");
    let mut deployment: Deployment = web.deployment();
    for container in deployment
        .spec
        .as_mut()
        .and_then(|s| s.template.spec.as_mut())
        .map(|s| s.containers.iter_mut())
        .into_iter()
        .flatten()
    {
        if let Some(requests) = container
            .resources
            .as_mut()
            .and_then(|r| r.requests.as_mut())
        {
            requests.remove("cpu");
        }
    }
    Api::<Deployment>::namespaced(c.clone(), ns.name())
        .create(&PostParams::default(), &deployment)
        .await?;
    wait::ready_pods(c, ns.name(), &web.selector(), 1, Duration::from_secs(60)).await?;
    operator::create_autoscaler(
        c,
        ns.name(),
        "web",
        operator::cpu_utilization_spec(WorkloadKind::Deployment, "web", 1, 4, 50),
    )
    .await?;
    let out = doctor(&["-n", ns.name()], None).await?;
    let text = stdout(&out);
    println!("{text}");
    ensure!(
        !out.status.success(),
        "doctor passed a pod without a CPU request"
    );
    ensure!(
        text.contains("[FAIL] CPU requests of")
            && text.contains("missing request for cpu in container app of Pod web-"),
        "{text}"
    );
    ensure!(
        text.contains("has no CPU request") && text.contains("resources.requests.cpu"),
        "no cause/fix: {text}"
    );
    Ok(())
}

/// A ServiceAccount with only the built-in `view` role in one namespace (impersonated through
/// a kubeconfig copy): the cluster-scoped APIService and metrics-server's namespace are
/// forbidden, and doctor says it could not check them instead of failing.
#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn a_read_only_user_gets_could_not_check_not_failures() -> anyhow::Result<()> {
    let h = Harness::connect().await?;
    let ns = h.namespace("doctor-ro").await?;
    let c = h.client();
    crd::install(c).await?;
    let sa: ServiceAccount = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "viewer"}
    }))?;
    Api::<ServiceAccount>::namespaced(c.clone(), ns.name())
        .create(&PostParams::default(), &sa)
        .await?;
    let binding = RoleBinding {
        metadata: kube::api::ObjectMeta {
            name: Some("viewer".into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: "view".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "viewer".into(),
            namespace: Some(ns.name().to_string()),
            ..Default::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(c.clone(), ns.name())
        .create(&PostParams::default(), &binding)
        .await?;
    // The admin kubeconfig, impersonating the ServiceAccount.
    let admin = std::env::var("KUBECONFIG").context("KUBECONFIG")?;
    let mut config: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&admin)?)?;
    let who = format!("system:serviceaccount:{}:viewer", ns.name());
    if let Some(users) = config["users"].as_sequence_mut() {
        for u in users {
            u["user"]["as"] = serde_yaml::Value::String(who.clone());
        }
    }
    let path = std::env::temp_dir().join(format!("tidal-doctor-ro-{}.yaml", ns.name()));
    std::fs::write(&path, serde_yaml::to_string(&config)?)?;
    let out = doctor(&["-n", ns.name()], Some(&path)).await?;
    let _ = std::fs::remove_file(&path);
    let text = stdout(&out);
    println!("{text}\n{}", String::from_utf8_lossy(&out.stderr));
    ensure!(
        text.contains("[SKIP] APIService v1beta1.metrics.k8s.io: could not check APIService v1beta1.metrics.k8s.io: forbidden"),
        "{text}"
    );
    ensure!(
        !text.contains("[FAIL]"),
        "a forbidden read became a failure: {text}"
    );
    ensure!(out.status.success(), "doctor failed for a read-only user");
    Ok(())
}
