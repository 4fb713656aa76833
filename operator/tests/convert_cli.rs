//! `tidal convert` as a command: an HPA file or standard input becomes an
//! AutoScaler and back unchanged; `spec.tidal` is dropped with a warning on
//! standard error; bad input exits 2 with one line naming the field and
//! nothing on standard output.

mod common;

fn convert(args: &[&str], stdin: &str) -> (i32, String, String) {
    common::tidal("convert", args, stdin)
}

fn yaml(text: &str) -> serde_json::Value {
    serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

const HPA: &str = "\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
  namespace: shop
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 10
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 60
      tolerance: 50m
      policies: [{type: Pods, value: 1, periodSeconds: 30}]
";

#[test]
fn an_hpa_from_stdin_becomes_an_autoscaler_and_converts_back_unchanged() {
    let (code, out, err) = convert(&[], HPA);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "{err}");
    let autoscaler = yaml(&out);
    assert_eq!(autoscaler["apiVersion"], "autoscaling.tidal.dev/v1alpha1");
    assert_eq!(autoscaler["kind"], "AutoScaler");
    assert_eq!(autoscaler["spec"], yaml(HPA)["spec"]);

    let (code, back, err) = convert(&["--to", "hpa", "-"], &out);
    assert_eq!(code, 0, "{err}");
    assert_eq!(yaml(&back), yaml(HPA));
}

#[test]
fn a_file_argument_and_json_output_work() {
    let path = std::env::temp_dir().join(format!("tidal-convert-{}.yaml", std::process::id()));
    std::fs::write(&path, HPA).expect("write");
    let (code, out, err) = convert(&[path.to_str().expect("utf-8"), "-o", "json"], "");
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(v["spec"], yaml(HPA)["spec"]);
}

#[test]
fn converting_back_warns_that_spec_tidal_is_dropped() {
    let (_, autoscaler, _) = convert(&[], HPA);
    let with_tidal = format!(
        "{autoscaler}  tidal: {{mode: Shadow, replicaFight: {{policy: Yield, yieldSeconds: 60}}}}\n"
    );
    let (code, out, err) = convert(&["--to", "hpa"], &with_tidal);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.starts_with("tidal convert: warning: ")
            && err.contains("spec.tidal")
            && err.contains("\"replicaFight\":{\"policy\":\"Yield\",\"yieldSeconds\":60}"),
        "{err}"
    );
    assert_eq!(yaml(&out)["spec"], yaml(HPA)["spec"]);
}

#[test]
fn bad_input_exits_2_naming_the_field_with_nothing_on_stdout() {
    for (input, field) in [
        (
            HPA.replace("maxReplicas: 10", "maxReplicas: ten"),
            "spec.maxReplicas",
        ),
        (
            HPA.replace("averageUtilization", "averageUtilisation"),
            "averageUtilisation",
        ),
        (
            HPA.replace("type: Utilization", "type: Percent"),
            "spec.metrics[0].resource.target.type",
        ),
        (
            HPA.replace("autoscaling/v2", "autoscaling/v1"),
            "apiVersion",
        ),
        ("not: [an, hpa".to_string(), "YAML"),
    ] {
        let (code, out, err) = convert(&[], &input);
        assert_eq!(code, 2, "{field}: {err}");
        assert!(out.is_empty(), "{field}: {out}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(field), "expected {field} in {err}");
    }
}

#[test]
fn several_documents_are_converted_each() {
    let two = format!(
        "{HPA}---\n{}",
        HPA.replace("name: web\n  namespace", "name: api\n  namespace")
    );
    let (code, out, err) = convert(&[], &two);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("kind: AutoScaler").count(), 2, "{out}");
    assert!(out.contains("name: api"), "{out}");
}
