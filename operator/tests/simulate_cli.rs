//! `tidal simulate` as README runs it, and its `--compare timer`: the same spec decided on
//! fresh samples (the operator's default) answers every step up no later than on the sync
//! timer alone. (The sizes on the way need not be the same: decided at other instants, a
//! stabilization window or a rate-limit period can hold different recommendations.)

mod common;

use std::path::Path;

/// A fresh directory under the system's temporary directory.
fn out_dir(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tidal-simulate-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn root(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
        .display()
        .to_string()
}

/// (seconds, replicas) of each change in a side's CSV (columns: seconds, demand, replicas, ...).
fn changes(csv: &Path) -> Vec<(f64, i64)> {
    let text = std::fs::read_to_string(csv).expect("side CSV");
    let mut out: Vec<(f64, i64)> = Vec::new();
    let mut last = None;
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        let (t, r): (f64, i64) = (
            cols[0].parse().expect("seconds"),
            cols[2].parse().expect("replicas"),
        );
        if last.is_some_and(|l| l != r) {
            out.push((t, r));
        }
        last = Some(r);
    }
    out
}

#[test]
fn readme_s_simulate_command_writes_the_table_timelines_and_plot() {
    let out = out_dir("readme");
    let dir = out.display().to_string();
    let (code, stdout, stderr) = common::tidal(
        "simulate",
        &[
            "--spec",
            &root("crds/examples/cpu-utilization.yaml"),
            "--trace",
            &root("e2e/traces/spike.csv"),
            "--compare",
            "defaults",
            "--metric-resolution",
            "10s",
            "--out-dir",
            &dir,
        ],
        "",
    );
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(stdout.contains("replica-seconds"), "{stdout}");
    for f in [
        "side-1.csv",
        "side-2.csv",
        "summary.txt",
        "plot.png",
        "plot.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// The instants of the trace's steps up (two rows at one time, the second higher).
fn steps_up(trace: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(root(trace)).expect("trace");
    let rows: Vec<(f64, f64)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("seconds"))
        .map(|l| {
            let (t, m) = l.split_once(',').expect("seconds,millicores");
            (t.parse().expect("seconds"), m.parse().expect("millicores"))
        })
        .collect();
    rows.windows(2)
        .filter(|w| w[0].0 == w[1].0 && w[1].1 > w[0].1)
        .map(|w| w[0].0)
        .collect()
}

#[test]
fn compare_timer_shows_every_step_up_answered_no_later_on_fresh_samples() {
    let out = out_dir("timer");
    let dir = out.display().to_string();
    let (code, stdout, stderr) = common::tidal(
        "simulate",
        &[
            "--spec",
            &root("crds/examples/cpu-utilization.yaml"),
            "--trace",
            &root("e2e/traces/steps20.csv"),
            "--compare",
            "timer",
            "--sync-period",
            "15s",
            "--metric-resolution",
            "10s",
            "--downscale-stabilization",
            "30s",
            "--out-dir",
            &dir,
        ],
        "",
    );
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(stdout.contains("sync timer only"), "{stdout}");
    let fresh = changes(&out.join("side-1.csv"));
    let timer = changes(&out.join("side-2.csv"));
    let _ = std::fs::remove_dir_all(&out);
    let ups = steps_up("e2e/traces/steps20.csv");
    assert_eq!(ups.len(), 10);
    let first_after = |c: &[(f64, i64)], t: f64| c.iter().find(|(s, _)| *s > t).map(|(s, _)| *s);
    let mut sooner = 0;
    for t in ups {
        let (f, s) = (first_after(&fresh, t), first_after(&timer, t));
        assert!(
            matches!((f, s), (Some(f), Some(s)) if f <= s),
            "step up at {t}s: fresh {f:?}, timer {s:?}\nfresh {fresh:?}\ntimer {timer:?}"
        );
        sooner += usize::from(f < s);
    }
    assert!(
        sooner >= 5,
        "fresh samples answered only {sooner} of 10 steps sooner"
    );
    assert_eq!(
        fresh.last().map(|c| c.1),
        timer.last().map(|c| c.1),
        "final sizes"
    );
}
