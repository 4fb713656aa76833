//! The Tidal operator and CLI: everything behind the thin `main`.

pub mod admin;
pub mod api_requests;
pub mod args;
pub mod cmd;
mod error;
pub mod fresh;
pub mod hpa_conflict;
pub mod index;
pub mod kube_core;
pub mod lag;
pub mod leader;
pub mod metrics;
#[cfg(test)]
mod mock_api;
pub mod pods;
pub mod reconcile;
pub mod runtime;
pub mod scale;
pub mod status;

pub use error::{Error, Result};
