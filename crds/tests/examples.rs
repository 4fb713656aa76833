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

/// `doc` with every quantity field (`value`, `averageValue`, `tolerance`) that is a JSON number
/// replaced by its decimal text, which is what both Quantity types deserialize it to.
fn quantities_as_text(mut doc: Value) -> Value {
    match &mut doc {
        Value::Object(map) => {
            // A scaling policy's `value` is an integer, not a quantity.
            let policy = map.contains_key("periodSeconds");
            for (key, v) in map.iter_mut() {
                let quantity = match key.as_str() {
                    "value" => !policy,
                    "averageValue" | "tolerance" => true,
                    _ => false,
                };
                if quantity && v.is_number() {
                    *v = Value::String(v.to_string());
                } else {
                    *v = quantities_as_text(v.take());
                }
            }
        }
        Value::Array(items) => {
            for v in items.iter_mut() {
                *v = quantities_as_text(v.take());
            }
        }
        _ => {}
    }
    doc
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
        // Lossless: nothing the user wrote is dropped or reshaped by either type (a quantity
        // written as a number comes back as its decimal text).
        assert_eq!(
            ours_json,
            quantities_as_text(doc["spec"].clone()),
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
            quantities_as_text(doc["spec"].clone()),
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

/// The HPA's API server stores `tolerance: 0.05` as the canonical `"50m"`; Tidal keeps the decimal
/// text `"0.05"` (as it keeps every string as written). The decision is sound only if the two
/// denote the same value, which is what the controller reads.
#[test]
fn a_decimal_number_quantity_keeps_its_text_and_upstreams_value() {
    for (number, text, upstream_canonical) in [
        (serde_json::json!(0.05), "0.05", "50m"),
        (serde_json::json!(1.5), "1.5", "1500m"),
        (serde_json::json!(100), "100", "100"),
        (serde_json::json!(0.0001), "0.0001", "100u"),
        (serde_json::json!(2.0), "2", "2"),
    ] {
        let doc = serde_json::json!({"type": "AverageValue", "averageValue": number});
        let target: tidal_crds::MetricTarget = serde_json::from_value(doc).expect("MetricTarget");
        let ours = target.average_value.expect("averageValue").0;
        assert_eq!(ours, text, "{number} keeps its decimal text");
        let ours = scaling::Quantity::parse(&ours).expect("ours parses");
        let theirs = scaling::Quantity::parse(upstream_canonical).expect("upstream parses");
        assert_eq!(
            ours.milli_value(),
            theirs.milli_value(),
            "{number} vs upstream's {upstream_canonical}"
        );
    }
}

/// `tidal convert` refuses what the API server refuses: every invalid fixture fails the offline
/// check (`hpa::validate_spec` after parsing), naming the field its `# expect-field:` line gives.
#[test]
fn every_invalid_fixture_fails_the_offline_check_naming_its_field() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read fixture");
        let field = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect-field:"))
            .map(str::trim)
            .unwrap_or_else(|| panic!("{} lacks an `# expect-field:` line", path.display()));
        let doc: Value = serde_yaml::from_str(&text).expect("YAML");
        match tidal_crds::hpa::convert_document(&doc, tidal_crds::hpa::Target::Hpa) {
            Ok(_) => failures.push(format!("{}: accepted", path.display())),
            // A missing required field fails to parse; serde names its parent and the field.
            Err(e) if !names(&e.to_string(), field) => {
                failures.push(format!("{}: {e} does not name {field}", path.display()));
            }
            Err(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// Whether an error message names `field`, directly or as serde words a missing field
/// (`spec.scaleTargetRef: missing field `name``).
fn names(message: &str, field: &str) -> bool {
    message.contains(field)
        || field.rsplit_once('.').is_some_and(|(parent, name)| {
            message.starts_with(&format!("{parent}: missing field `{name}`"))
        })
}
