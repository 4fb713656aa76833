//! The reconciler's old path, kept for callers: the reconciler lives in [`crate::reconcile`].

pub use crate::reconcile::{
    Caches, Context, HpaWatch, MetricsApis, PodSource, Settings, Sources, decide_live,
    error_policy, reconcile,
};
