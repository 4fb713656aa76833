//! The Tidal operator and CLI: everything behind the thin `main`.

pub mod calc;
pub mod cli;
