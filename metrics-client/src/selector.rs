//! Label selectors as kube-controller-manager sees them. Parsing
//! (`labels.Parse`), the canonical string sent to the metrics APIs
//! (`Selector.String()`) and matching are the scaling crate's
//! [`Selector`] (the operator renders metric selectors from the core's spec);
//! this module adds this crate's error for a selector that does not parse.

pub use scaling::Selector;

/// A selector that could not be parsed or converted, with upstream's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(String);

impl From<scaling::Error> for SelectorError {
    fn from(e: scaling::Error) -> Self {
        Self(e.to_string())
    }
}
