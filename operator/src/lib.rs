//! The Tidal operator and CLI: everything behind the thin `main`.

pub mod admin;
pub mod args;
pub mod calc;
pub mod cli;
mod error;
pub mod leader;
pub mod metrics;
pub mod pods;
pub mod scale;

pub use error::{Error, Result};
