//! The crate's one error type.

use std::time::Duration;

/// Everything the harness, the load driver and the trace parser can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tests and the driver never guess a cluster: without an explicit
    /// KUBECONFIG they could touch a developer's real one.
    #[error(
        "KUBECONFIG is not set: start the local control plane with `e2e/cluster/cluster.sh up` \
         and export it with `eval \"$(e2e/cluster/cluster.sh env)\"`"
    )]
    NoKubeconfig,
    /// The kubeconfig could not be read or used.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The file named by KUBECONFIG.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A call to the Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A raw API request could not be built.
    #[error("building an API request: {0}")]
    Request(#[from] http::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A trace, quantity, timeline or plot error (from `tidal-report`).
    #[error(transparent)]
    Report(#[from] tidal_report::Error),
    /// The custom/external metrics adapter is missing or refused a write.
    #[error("metrics adapter: {0}")]
    Adapter(String),
    /// A wait ran out of time.
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        waited: Duration,
    },
}

/// Result with the crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
