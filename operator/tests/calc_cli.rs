//! `tidal calc` as a command: input from a file, `-` or standard input, JSON or
//! YAML; malformed input exits 2 with nothing on standard output and one line
//! on standard error that names the field.

mod common;

fn calc(args: &[&str], stdin: &str) -> (i32, String, String) {
    common::tidal("calc", args, stdin)
}

const VALID: &str = r#"{
  "now": "2026-03-01T10:00:00Z",
  "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"},
           "maxReplicas": 10, "metrics": [{"type": "External", "external": {"metric": {"name": "queue"},
           "target": {"type": "AverageValue", "averageValue": "10"}}}]},
  "scale": {"specReplicas": 2, "selector": "app=worker"},
  "metricValues": [{"type": "External", "metric": {"name": "queue"}, "items": [{"value": "35"}]}]
}"#;

fn assert_decision(code: i32, stdout: &str, stderr: &str, desired: i64) {
    assert_eq!(code, 0, "stderr: {stderr}");
    let out: serde_json::Value = serde_json::from_str(stdout).expect("stdout is JSON");
    assert_eq!(
        out["desiredReplicas"],
        serde_json::json!(desired),
        "{stdout}"
    );
}

#[test]
fn reads_json_from_standard_input_and_dash() {
    let (code, out, err) = calc(&[], VALID);
    assert_decision(code, &out, &err, 4);
    let (code, out, err) = calc(&["-"], VALID);
    assert_decision(code, &out, &err, 4);
}

#[test]
fn reads_yaml_and_files() {
    let yaml = r#"
now: "2026-03-01T10:00:00Z"
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: worker}
  maxReplicas: 10
  metrics:
    - type: External
      external:
        metric: {name: queue}
        target: {type: AverageValue, averageValue: "10"}
scale: {specReplicas: 2, selector: app=worker}
metricValues:
  - type: External
    metric: {name: queue}
    items: [{value: 35}]
"#;
    let (code, out, err) = calc(&[], yaml);
    assert_decision(code, &out, &err, 4);
    let dir = std::env::temp_dir().join(format!("tidal-calc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("input.yaml");
    std::fs::write(&file, yaml).expect("write input");
    let (code, out, err) = calc(&[file.to_str().expect("utf-8 path")], "");
    assert_decision(code, &out, &err, 4);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn malformed_input_exits_2_and_names_the_field() {
    let mutate = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_str(VALID).expect("valid JSON");
        f(&mut v);
        v.to_string()
    };
    let rows: Vec<(String, &str)> = vec![
        (
            mutate(&|v| {
                v["spec"].as_object_mut().map(|o| o.remove("maxReplicas"));
            }),
            "tidal calc: invalid input: spec.maxReplicas: required integer is missing",
        ),
        (
            mutate(&|v| v["now"] = serde_json::json!("2026-03-01 10:00")),
            "tidal calc: invalid input: now: invalid time \"2026-03-01 10:00\"",
        ),
        (
            mutate(&|v| v["metricValues"][0]["items"][0]["value"] = serde_json::json!("35 apples")),
            "tidal calc: invalid input: metricValues[0].items[0].value: invalid quantity \"35 apples\"",
        ),
        (
            mutate(&|v| {
                v["spec"]["metrics"][0]["external"]["target"]["averageValue"] =
                    serde_json::json!("0")
            }),
            "tidal calc: invalid input: spec.metrics[0].external.target.averageValue: a target must be positive",
        ),
        (
            mutate(&|v| v["scale"]["specReplicas"] = serde_json::json!(true)),
            "tidal calc: invalid input: scale.specReplicas: expected an integer, found a boolean",
        ),
        (
            "{\"now\": ".to_string(),
            "tidal calc: invalid input: not a JSON or YAML document",
        ),
        (
            "- just\n- a list\n".to_string(),
            "tidal calc: invalid input: input: expected an object, found an array",
        ),
    ];
    for (input, want) in rows {
        let (code, out, err) = calc(&[], &input);
        assert_eq!(code, 2, "{want}: stderr {err}");
        assert!(out.is_empty(), "{want}: stdout {out}");
        assert_eq!(err.lines().count(), 1, "{want}: one line, got {err:?}");
        assert!(err.starts_with(want), "want {want:?}, got {err:?}");
    }
}

#[test]
fn an_unreadable_file_is_reported() {
    let (code, out, err) = calc(&["/nonexistent/tidal-input.json"], "");
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.starts_with("tidal calc: cannot read /nonexistent/tidal-input.json"),
        "{err}"
    );
}

#[test]
fn controller_failures_are_decisions_not_input_errors() {
    let v = VALID.replace("\"selector\": \"app=worker\"", "\"selector\": \"\"");
    let (code, out, err) = calc(&[], &v);
    assert_eq!(code, 0, "{err}");
    let out: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        out["events"][0]["reason"],
        serde_json::json!("SelectorRequired")
    );
}
