//! The crate's single error type.

/// Everything that can go wrong in this crate.
///
/// Decision outcomes (a metric that cannot be computed, an unreadable scale, an
/// invalid pod selector) are *not* errors: they are part of a [`crate::Decision`].
/// Errors are reserved for input that cannot describe a decision at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A Kubernetes quantity string that does not parse.
    #[error("invalid quantity {input:?}: {reason}")]
    Quantity {
        /// The offending text.
        input: String,
        /// Why it was rejected (upstream wording where there is one).
        reason: &'static str,
    },
    /// An RFC 3339 time that does not parse.
    #[error("invalid time {input:?}: {reason}")]
    Time {
        /// The offending text.
        input: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A Go duration string that does not parse (`time.ParseDuration` wording).
    #[error("{0}")]
    Duration(String),
    /// A label-selector string that does not parse (`labels.Parse` wording).
    #[error("{0}")]
    Selector(String),
    /// A field of a decision input is missing, has the wrong type or an invalid value.
    #[error("{field}: {message}")]
    Input {
        /// Dotted path of the field, e.g. `spec.maxReplicas` or `pods[2].metadata.name`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
