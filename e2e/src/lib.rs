//! Tidal's end-to-end rig, as a library for the e2e tests and the
//! `tidal-e2e` binary.
//!
//! The cluster itself (real kube-apiserver, kube-controller-manager,
//! kube-scheduler, etcd and metrics-server; kwok for nodes and pods) is
//! started by `e2e/cluster/cluster.sh`; see `e2e/README.md`. This crate
//! connects to it through `KUBECONFIG` and provides:
//! - [`harness`]: the client and a namespace per test, deleted afterwards;
//! - [`workload`]: kwok Deployments and StatefulSets with requests,
//!   tolerations and a node selector;
//! - [`wait`]: polling with deadlines;
//! - [`demand`] and [`driver`]: demand traces and the load driver that turns
//!   them into per-pod usage annotations, with [`scrape_clock`] to change usage
//!   only between metrics-server scrapes;
//! - [`metrics`]: PodMetrics LISTs from metrics.k8s.io;
//! - [`adapter`]: the custom/external metrics adapter's write API and a feed of values;
//! - [`timeline`]: per-second observations written as CSV artefacts;
//! - [`compare`]: the built-in HPA and Tidal side by side (`tidal-e2e compare`, `make demo`),
//!   with [`equal_cost`] for the HPA's overload at Tidal's replica-seconds;
//! - [`scale`]: kube-controller-manager and Tidal at N objects (`tidal-e2e scale`, `make scale`).

pub mod adapter;
pub mod compare;
pub mod component;
pub mod crd;
pub mod driver;
pub mod equal_cost;
pub mod error;
pub mod harness;
pub mod metrics;
pub mod metrics_server;
pub mod operator;
pub mod proxy;
pub mod scale;
pub mod scrape_clock;
pub mod timeline;
pub mod wait;
pub mod workload;

pub use error::{Error, Result};
/// Demand traces and quantities live in `tidal-report`, shared with `tidal simulate`.
pub use tidal_report::{demand, quantity};
