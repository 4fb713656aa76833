//! Every example AutoScaler is a HorizontalPodAutoscaler with another apiVersion/kind: its spec
//! goes through our types and through k8s-openapi's `autoscaling/v2` types to the same JSON.

use std::path::{Path, PathBuf};

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use pretty_assertions::assert_eq;
use serde_json::Value;
use tidal_crds::AutoScaler;

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn as_hpa(mut doc: Value) -> Value {
    doc["apiVersion"] = "autoscaling/v2".into();
    doc["kind"] = "HorizontalPodAutoscaler".into();
    doc
}

#[test]
fn every_required_example_is_present() {
    let names: Vec<String> = examples()
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    for required in [
        "cpu-utilization",
        "memory-average-value",
        "container-resource",
        "pods",
        "object-value",
        "object-average-value",
        "external",
        "behavior",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "missing example {required}.yaml"
        );
    }
}

#[test]
fn example_specs_serialize_exactly_like_autoscaling_v2() {
    for path in examples() {
        let doc = load(&path);
        let ours: AutoScaler = serde_json::from_value(doc.clone())
            .unwrap_or_else(|e| panic!("{} as AutoScaler: {e}", path.display()));
        let upstream: HorizontalPodAutoscaler = serde_json::from_value(as_hpa(doc.clone()))
            .unwrap_or_else(|e| panic!("{} as HPA: {e}", path.display()));

        let ours_json = serde_json::to_value(&ours.spec).expect("serialize AutoScaler spec");
        let upstream_json = serde_json::to_value(&upstream.spec).expect("serialize HPA spec");
        assert_eq!(
            ours_json,
            upstream_json,
            "{}: spec JSON differs",
            path.display()
        );
        // Lossless: nothing the user wrote is dropped or reshaped by either type.
        assert_eq!(
            ours_json,
            doc["spec"],
            "{}: spec not round-tripped",
            path.display()
        );
    }
}

#[test]
fn autoscaler_converts_to_hpa_and_back_by_changing_kind_only() {
    for path in examples() {
        let doc = load(&path);
        let upstream: HorizontalPodAutoscaler =
            serde_json::from_value(as_hpa(doc.clone())).expect("HPA");
        let mut back = serde_json::to_value(&upstream).expect("serialize HPA");
        back["apiVersion"] = doc["apiVersion"].clone();
        back["kind"] = doc["kind"].clone();
        let ours: AutoScaler = serde_json::from_value(back)
            .unwrap_or_else(|e| panic!("{}: HPA JSON is not an AutoScaler: {e}", path.display()));
        assert_eq!(
            serde_json::to_value(&ours.spec).expect("serialize"),
            doc["spec"],
            "{}",
            path.display()
        );
    }
}

#[test]
fn numeric_quantities_are_accepted_like_the_hpa_accepts_them() {
    let doc = serde_json::json!({
        "apiVersion": "autoscaling.tidal.dev/v1alpha1", "kind": "AutoScaler",
        "metadata": {"name": "n"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "n"}, "maxReplicas": 3,
                 "metrics": [{"type": "Pods", "pods": {"metric": {"name": "qps"},
                              "target": {"type": "AverageValue", "averageValue": 100}}}]}
    });
    let ours: AutoScaler = serde_json::from_value(doc.clone()).expect("AutoScaler");
    let upstream: HorizontalPodAutoscaler = serde_json::from_value(as_hpa(doc)).expect("HPA");
    assert_eq!(
        serde_json::to_value(&ours.spec).expect("ours"),
        serde_json::to_value(upstream.spec).expect("upstream")
    );
}
