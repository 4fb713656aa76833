//! The Tidal operator and CLI: everything behind the thin `main`.

pub mod admin;
pub mod args;
pub mod calc;
pub mod cli;
pub mod controller;
pub mod convert;
pub mod doctor;
mod error;
pub mod explain;
pub mod hpa;
pub mod hpa_conflict;
mod input;
pub mod leader;
pub mod metrics;
pub mod pods;
pub mod reconcile;
pub mod runtime;
pub mod scale;
pub mod simulate;
pub mod status;

pub use error::{Error, Result};
