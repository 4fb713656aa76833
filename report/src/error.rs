//! The crate's one error type.

/// Everything parsing traces and quantities, and writing timelines, tables and plots can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A trace file is malformed.
    #[error("trace {origin}, line {line}: {message}")]
    DemandTrace {
        /// File name or other origin of the trace.
        origin: String,
        /// 1-based line number (0 when the problem is not tied to a line).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A Kubernetes quantity could not be parsed.
    #[error("invalid quantity {0:?}")]
    Quantity(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A plot could not be drawn or encoded.
    #[error("plot {path}: {message}")]
    Plot {
        /// The output file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Result with the crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An [`Error::Io`] for `path`, for `map_err`.
pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + use<> {
    let path = path.display().to_string();
    move |source| Error::Io { path, source }
}
