//! `tidal operator` refuses flags that cannot work before it starts anything: exit code 2,
//! one message naming the flag and the fix, nothing contacted.

use std::process::{Command, Stdio};

/// Runs `tidal operator <args>` with no way to reach a cluster (no kubeconfig, not in a pod),
/// so a flag accepted by mistake ends in a config error instead of a running operator.
fn operator(args: &[&str]) -> (i32, String) {
    let home = std::env::temp_dir().join("tidal-operator-flags-test");
    let out = Command::new(env!("CARGO_BIN_EXE_tidal"))
        .arg("operator")
        .args(args)
        .env("KUBECONFIG", home.join("no-such-kubeconfig"))
        .env("HOME", &home)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .stdin(Stdio::null())
        .output()
        .expect("run tidal");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn impossible_flags_are_refused_at_start_with_the_flag_and_the_fix() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--sync-period=0s"],
            &["--sync-period", "at least 1s (got 0s)"],
        ),
        (
            &["--lease-duration=2s"],
            &["--lease-duration", "at least 3s"],
        ),
        (
            &["--lease-duration=3500ms"],
            &["--lease-duration", "whole number of seconds"],
        ),
        (&["--concurrency=0"], &["--concurrency", "0"]),
        (&["--tolerance=-0.5"], &["--tolerance", ">= 0"]),
        (
            &["--initial-readiness-delay=-1s"],
            &["--initial-readiness-delay", "negative"],
        ),
        (
            &["--cpu-initialization-period=-5m"],
            &["--cpu-initialization-period", "negative"],
        ),
        (
            &["--admin-addr=0.0.0.0:0"],
            &["--admin-addr", "must not be 0"],
        ),
        (&["--identity="], &["--identity", "must not be empty"]),
    ];
    for (args, wanted) in cases {
        let (code, stderr) = operator(args);
        assert_eq!(
            code, 2,
            "{args:?} was not refused as a usage error: {stderr}"
        );
        for text in *wanted {
            assert!(
                stderr.contains(text),
                "{args:?}: missing {text:?} in {stderr}"
            );
        }
    }
}

#[test]
fn impossible_environment_values_are_refused_like_the_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_tidal"))
        .arg("operator")
        .env("TIDAL_SYNC_PERIOD", "0s")
        .env("KUBECONFIG", "/nonexistent/tidal-operator-flags-test")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(Stdio::null())
        .output()
        .expect("run tidal");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--sync-period") && stderr.contains("at least 1s"),
        "{stderr}"
    );
}

#[test]
fn a_busy_admin_address_ends_the_process_before_it_contacts_the_cluster() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = taken.local_addr().expect("addr").to_string();
    let (code, stderr) = operator(&["--admin-addr", &addr, "--leader-election=off"]);
    assert_ne!(code, 0, "{stderr}");
    // The bind comes first: the error is the admin address, not the missing kubeconfig.
    assert!(
        stderr.contains(&format!("admin server on {addr}")),
        "expected the bind error first: {stderr}"
    );
}
