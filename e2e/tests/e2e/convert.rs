//! `tidal convert --from-cluster`: an HPA read from the API server becomes an
//! AutoScaler the API server accepts (the CRD's validation included) with the
//! same spec, and that AutoScaler read back with `--to hpa` is the HPA's spec
//! again. A missing object exits 1 naming it.

use std::process::Command;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::Api;
use kube::api::{DynamicObject, PostParams};
use serde_json::{Value, json};
use tidal_e2e::crd;
use tidal_e2e::harness::Harness;
use tidal_e2e::operator;

fn tidal(args: &[&str]) -> (i32, String, String) {
    let bin = operator::binary().unwrap_or_else(|e| panic!("{e:#}"));
    let out = Command::new(bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running tidal {args:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
#[ignore = "needs the local control plane (KUBECONFIG)"]
async fn convert_from_cluster_round_trips_an_hpa_through_an_applied_autoscaler() {
    let harness = Harness::connect().await.unwrap_or_else(|e| panic!("{e}"));
    let client = harness.client().clone();
    crd::install(&client)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let ns = harness
        .namespace("convert")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ns = ns.name().to_owned();

    // Every spec section: two metric sources, both behavior directions.
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2, "maxReplicas": 12,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                {"type": "External", "external": {"metric": {"name": "queue", "selector": {"matchLabels": {"q": "jobs"}}},
                                                   "target": {"type": "AverageValue", "averageValue": "30"}}}
            ],
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]},
                "scaleDown": {"stabilizationWindowSeconds": 120, "tolerance": "50m",
                              "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}]}
            }
        }
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns);
    let stored = hpas
        .create(&PostParams::default(), &hpa)
        .await
        .unwrap_or_else(|e| panic!("creating the HPA: {e}"));
    // Compare with what the server stored (it applies its own defaults).
    let stored_spec = serde_json::to_value(&stored.spec).unwrap_or_default();

    let key = format!("{ns}/web");
    let (code, out, err) = tidal(&["convert", "--from-cluster", &key, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let autoscaler: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(autoscaler["kind"], "AutoScaler");
    assert_eq!(autoscaler["spec"], stored_spec);
    assert!(autoscaler["metadata"].get("uid").is_none(), "{out}");
    assert!(
        autoscaler["metadata"].get("resourceVersion").is_none(),
        "{out}"
    );

    // The API server (CRD schema and CEL rules) accepts it as written.
    let api: Api<DynamicObject> = operator::autoscalers(&client, &ns);
    let obj: DynamicObject = serde_json::from_value(autoscaler).unwrap_or_else(|e| panic!("{e}"));
    api.create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("the API server rejected the converted AutoScaler: {e}"));

    let (code, out, err) = tidal(&[
        "convert",
        "--to",
        "hpa",
        "--from-cluster",
        &key,
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "no spec.tidal, no warning: {err}");
    let back: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(back["apiVersion"], "autoscaling/v2");
    assert_eq!(back["spec"], stored_spec);

    let (code, out, err) = tidal(&["convert", "--from-cluster", &format!("{ns}/absent")]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty());
    assert!(err.contains("absent") && err.contains("not found"), "{err}");
}
