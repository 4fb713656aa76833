//! Every case of `tests/data/conformance/` (copied verbatim from
//! `shared/conformance/cases/`) runs through the real `tidal calc` binary and is
//! checked with the whole `expect` language of FORMAT.md section 6. A failure
//! names the case and every mismatch.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use scaling::{Quantity, Time};
use serde_json::{Map, Value};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance")
}

/// Runs `tidal calc` with `input` on stdin: (exit code, stdout, stderr).
fn run_calc(input: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidal"))
        .arg("calc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tidal calc");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait for tidal calc");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn quantity_eq(want: &Value, got: &Value) -> bool {
    let parse = |v: &Value| -> Option<i64> {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        Quantity::parse(&text).ok().map(|q| q.milli_value())
    };
    matches!((parse(want), parse(got)), (Some(a), Some(b)) if a == b)
}

fn instant_eq(want: &Value, got: &Value) -> bool {
    match (want.as_str(), got.as_str()) {
        (Some(a), Some(b)) => match (Time::parse_rfc3339(a), Time::parse_rfc3339(b)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        },
        _ => false,
    }
}

/// Partial, recursive match: every key `want` gives must match in `got`.
fn partial(want: &Value, got: &Value, path: &str, errs: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                let p = format!("{path}.{k}");
                if k == "messageContains" || k == "messagePrefix" {
                    let msg = g.get("message").and_then(Value::as_str).unwrap_or("");
                    let needle = wv.as_str().unwrap_or("");
                    let ok = if k == "messageContains" {
                        msg.contains(needle)
                    } else {
                        msg.starts_with(needle)
                    };
                    if !ok {
                        errs.push(format!("{p}: message {msg:?} does not match {needle:?}"));
                    }
                    continue;
                }
                let Some(gv) = g.get(k) else {
                    errs.push(format!("{p}: missing in output (want {wv})"));
                    continue;
                };
                match k.as_str() {
                    "averageValue" | "value" => {
                        if !quantity_eq(wv, gv) {
                            errs.push(format!("{p}: want quantity {wv}, got {gv}"));
                        }
                    }
                    "timestamp" => {
                        if !instant_eq(wv, gv) {
                            errs.push(format!("{p}: want instant {wv}, got {gv}"));
                        }
                    }
                    _ => partial(wv, gv, &p, errs),
                }
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            if w.len() != g.len() {
                errs.push(format!(
                    "{path}: want {} entries, got {}: {got}",
                    w.len(),
                    g.len()
                ));
                return;
            }
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                partial(wv, gv, &format!("{path}[{i}]"), errs);
            }
        }
        (Value::Number(w), Value::Number(g)) => {
            if w.as_f64() != g.as_f64() {
                errs.push(format!("{path}: want {w}, got {g}"));
            }
        }
        (w, g) => {
            if w != g {
                errs.push(format!("{path}: want {w}, got {g}"));
            }
        }
    }
}

fn triple(v: &Value) -> (String, String, String) {
    let f = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    (f("type"), f("status"), f("reason"))
}

fn event_matches(want: &Value, got: &Value) -> bool {
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let got_msg = field(got, "message").unwrap_or_default();
    if let Some(t) = field(want, "type")
        && Some(t) != field(got, "type")
    {
        return false;
    }
    if field(want, "reason") != field(got, "reason") {
        return false;
    }
    if let Some(m) = field(want, "message")
        && m != got_msg
    {
        return false;
    }
    if let Some(m) = field(want, "messagePrefix")
        && !got_msg.starts_with(&m)
    {
        return false;
    }
    if let Some(m) = field(want, "messageContains")
        && !got_msg.contains(&m)
    {
        return false;
    }
    true
}

/// Checks `out` against the `expect` block; returns every mismatch.
fn check(expect: &Map<String, Value>, out: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let empty = Vec::new();
    let out_array = |k: &str| out.get(k).and_then(Value::as_array).unwrap_or(&empty);
    for (key, want) in expect {
        match key.as_str() {
            "desiredReplicas" | "rescale" | "reason" => {
                let got = out.get(key).cloned().unwrap_or(Value::Null);
                if &got != want {
                    errs.push(format!("{key}: want {want}, got {got}"));
                }
            }
            "metrics" => {
                let got = out_array("metrics");
                for (i, w) in want.as_array().unwrap_or(&empty).iter().enumerate() {
                    if w.is_null() {
                        continue;
                    }
                    let Some(g) = got.get(i) else {
                        errs.push(format!("metrics[{i}]: missing in output"));
                        continue;
                    };
                    if w.get("proposedReplicas").is_some() && g.get("error").is_some() {
                        errs.push(format!(
                            "metrics[{i}]: want a proposal, got error {}",
                            g["error"]
                        ));
                        continue;
                    }
                    partial(w, g, &format!("metrics[{i}]"), &mut errs);
                }
            }
            "conditions" => {
                let want: Vec<_> = want
                    .as_array()
                    .unwrap_or(&empty)
                    .iter()
                    .map(triple)
                    .collect();
                let got: Vec<_> = out_array("conditions").iter().map(triple).collect();
                if want != got {
                    errs.push(format!("conditions: want {want:?}, got {got:?}"));
                }
            }
            "conditionsInclude" => {
                let got: Vec<_> = out_array("conditions").iter().map(triple).collect();
                for w in want.as_array().unwrap_or(&empty).iter().map(triple) {
                    if !got.contains(&w) {
                        errs.push(format!("conditionsInclude: {w:?} not in {got:?}"));
                    }
                }
            }
            "events" => {
                let got = out_array("events");
                for w in want.as_array().unwrap_or(&empty) {
                    if !got.iter().any(|g| event_matches(w, g)) {
                        errs.push(format!("events: no event matches {w}; got {got:?}"));
                    }
                }
            }
            "eventsExact" => {
                let got = out_array("events");
                let want = want.as_array().unwrap_or(&empty);
                if want.len() != got.len()
                    || !want.iter().zip(got).all(|(w, g)| event_matches(w, g))
                {
                    errs.push(format!("eventsExact: want {want:?}, got {got:?}"));
                }
            }
            "absentEventReasons" => {
                for r in want.as_array().unwrap_or(&empty) {
                    if out_array("events")
                        .iter()
                        .any(|e| e.get("reason") == Some(r))
                    {
                        errs.push(format!("absentEventReasons: {r} was emitted"));
                    }
                }
            }
            "history" => {
                let got = out.get("history").cloned().unwrap_or(Value::Null);
                for (list, w) in want.as_object().cloned().unwrap_or_default() {
                    let g = got.get(&list).cloned().unwrap_or(Value::Null);
                    partial(&w, &g, &format!("history.{list}"), &mut errs);
                }
            }
            "historyLength" => {
                for (list, n) in want.as_object().cloned().unwrap_or_default() {
                    let len = out
                        .get("history")
                        .and_then(|h| h.get(&list))
                        .and_then(Value::as_array)
                        .map(Vec::len);
                    if len.map(|l| l as u64) != n.as_u64() {
                        errs.push(format!("historyLength.{list}: want {n}, got {len:?}"));
                    }
                }
            }
            other => errs.push(format!(
                "unknown expect key {other:?} (the harness must understand it)"
            )),
        }
    }
    errs
}

fn run_case(id: &str) {
    let path = cases_dir().join(format!("{id}.json"));
    let text = std::fs::read_to_string(&path).expect("read case file");
    let mut doc: Value = serde_json::from_str(&text).expect("case file is JSON");
    let obj = doc.as_object_mut().expect("case file is an object");
    obj.remove("case");
    let expect = obj.remove("expect").expect("case has an expect block");
    let input = serde_json::to_string(&doc).expect("serialize input");
    let (code, stdout, stderr) = run_calc(&input);
    assert_eq!(code, 0, "case {id}: tidal calc exited {code}: {stderr}");
    let out: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("case {id}: output is not JSON ({e}): {stdout}"));
    assert!(out.is_object(), "case {id}: output is not a JSON object");
    let errs = check(expect.as_object().expect("expect is an object"), &out);
    assert!(
        errs.is_empty(),
        "case {id} failed:\n  {}\noutput: {stdout}",
        errs.join("\n  ")
    );
}

macro_rules! cases {
    ($($id:ident),* $(,)?) => {
        $(
            #[test]
            #[allow(non_snake_case)]
            fn $id() {
                run_case(stringify!($id));
            }
        )*
        const LISTED: &[&str] = &[$(stringify!($id)),*];
    };
}

cases!(
    A03, A04, A07, A08, A09, A13, A14, A17, A18, A23, A24, A26, A36, A37, B01, B05, B08, C02, C05,
    C09, C13, C16, C18, C19, C20, D07, D08, D09, D10, E01, E05, E08, F01, F02, F03, F07, G01, G02,
    G05, G07, H04, H05, H07, H09, H10, H12, H14, H17, H18, H28, H31, H33, I01, I02, I08, J01, J03,
    J05, J09, J10, J12, J13, J15, J17, J18, J22, J23, J24, J25, J33, J38, J43, J46, J55, J56, J57,
    J59, J62, J63, J65, J72, J82, J83,
);

/// A case file without a test above would silently not run.
#[test]
fn every_case_file_has_a_test() {
    let files: BTreeSet<String> = std::fs::read_dir(cases_dir())
        .expect("read cases dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .map(str::to_string)
        })
        .collect();
    let listed: BTreeSet<String> = LISTED.iter().map(|s| s.to_string()).collect();
    assert_eq!(files, listed, "case files and listed tests differ");
}

/// The harness itself must be able to fail: a wrong expectation is reported.
#[test]
fn harness_reports_mismatches() {
    let out: Value = serde_json::json!({
        "desiredReplicas": 4, "rescale": true, "reason": "x",
        "metrics": [{"type": "Resource", "proposedReplicas": 4, "current": {"averageValue": "1500m"}}],
        "conditions": [{"type": "AbleToScale", "status": "True", "reason": "SucceededRescale"}],
        "events": [{"type": "Normal", "reason": "SuccessfulRescale", "message": "New size: 4; reason: x"}],
        "history": {"recommendations": [{"replicas": 4, "timestamp": "2026-03-01T10:00:00Z"}]}
    });
    let ok: Value = serde_json::json!({
        "desiredReplicas": 4,
        "metrics": [{"current": {"averageValue": "1.5"}}],
        "conditions": [{"type": "AbleToScale", "status": "True", "reason": "SucceededRescale"}],
        "events": [{"reason": "SuccessfulRescale", "messagePrefix": "New size: 4"}],
        "history": {"recommendations": [{"replicas": 4, "timestamp": "2026-03-01T11:00:00+01:00"}]}
    });
    assert!(check(ok.as_object().expect("object"), &out).is_empty());
    let bad: Value = serde_json::json!({
        "desiredReplicas": 5,
        "metrics": [{"current": {"averageValue": "1"}}],
        "conditionsInclude": [{"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"}],
        "absentEventReasons": ["SuccessfulRescale"],
        "historyLength": {"recommendations": 2},
        "bogus": 1
    });
    assert_eq!(check(bad.as_object().expect("object"), &out).len(), 6);
}
