//! The AutoScaler reconciler.

pub mod spec;
