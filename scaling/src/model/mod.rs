//! Typed inputs and outputs of one decision.
//!
//! These types carry parsed values only (milli-values, instants, durations), so
//! the decision itself never parses. [`crate::format`] builds them from the
//! `tidal calc` JSON; the operator builds them from the objects it watches.

mod config;
mod decision;
mod observed;
mod policy;
mod spec;

pub use config::*;
pub use decision::*;
pub use observed::*;
pub use policy::*;
pub use spec::*;
