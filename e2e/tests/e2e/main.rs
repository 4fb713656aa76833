//! End-to-end tests against a real control plane (the local one from
//! `e2e/cluster/cluster.sh`, or kind via `e2e/kind/run.sh`), found through
//! `KUBECONFIG`. All are `#[ignore]`d so that a plain `cargo test` never needs
//! a cluster; run them with `cargo test -p tidal-e2e -- --ignored`.
//!
//! They live in one test binary so that the harness runs them at the same
//! time (each in its own namespace): the suite takes as long as its slowest
//! test, not the sum.

mod builtin_hpa;
mod convert;
mod metrics_flow;
mod readiness_delay;
