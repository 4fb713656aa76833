//! The operator crate's error type.

use std::net::SocketAddr;

/// Everything that can go wrong in the operator outside the decision itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A Prometheus metric could not be created or rendered.
    #[error("prometheus metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The AutoScaler cannot be read as a decision input (the message names the field).
    #[error("invalid AutoScaler: {0}")]
    Spec(String),
    /// Leader election could not start or failed.
    #[error("leader election: {0}")]
    LeaderElection(String),
    /// A write was refused (or cut short) because this replica's leadership term ended.
    #[error(
        "not written: this replica no longer holds the leader lease (or could not renew it in time), so another replica may be writing"
    )]
    NotLeading,
    /// A write was refused (or cut short) because the reconcile ran past its deadline (the
    /// leader lease's margin): what it read may be stale by then.
    #[error(
        "not written: the reconcile took longer than its deadline of {0:?} (a third of --lease-duration), so what it read may be stale; it decides again at its next sync"
    )]
    ReconcileDeadline(std::time::Duration),
    /// The admin server could not bind or serve.
    #[error("admin server on {addr}: {source}")]
    AdminBind {
        /// The address from `--admin-addr`.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The operator's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
