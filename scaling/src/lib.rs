//! Pure HPA decision logic: exactly what kube-controller-manager's
//! HorizontalPodAutoscaler controller decides in one reconcile, as a function.
//!
//! No clock, no I/O, no Kubernetes client: `now`, the observed objects and the
//! controller's decision memory ([`History`]) go in; the decision, its status
//! conditions and events, and the new memory come out. The behaviour contract
//! is `shared/docs/hpa-semantics.md`; the offline format is
//! `shared/conformance/FORMAT.md` ([`format`](mod@format)).
//!
//! The operator calls [`plan`], performs the scale write the plan asks for
//! ([`Plan::scale_write`]), and finishes with [`Plan::complete`] and the write's
//! outcome; [`decide`] does both for callers without I/O (`tidal calc`).
//!
//! Points the contract leaves open, and how they are decided here:
//! * Quantities that overflow an `i64` milli-value saturate instead of wrapping;
//!   negative quantities with sub-milli digits round away from zero.
//! * Overflowing sums (usage, requests, external series) saturate; an External
//!   sum caps at `INT64_MAX` only on overflow, a negative total stays negative.
//! * Utilization percentages beyond `i32` are clamped; float-to-int32 proposals
//!   saturate (Rust `as`), where Go's conversion is undefined.
//! * Per-pod Object/External targets with `scale.status.replicas == 0` propose
//!   `ceil(usage / target)` and report no average (FORMAT Appendix B.2).
//! * Pod-level requests without the metric's resource fail the metric (B.4).
//! * A scale target `apiVersion` that is not `version` or `group/version`
//!   (including empty parts) fails like an unreadable scale.
//! * Metric answers, pods and other autoscalers are given, not fetched: calc's
//!   matching rules are in [`format`](mod@format), the pods are already selected (B.1).
//!
//! ```
//! # use scaling::*;
//! let json = serde_json::json!({
//!     "now": "2026-03-01T10:00:00Z",
//!     "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"},
//!              "maxReplicas": 10, "metrics": [{"type": "External", "external": {
//!         "metric": {"name": "queue"}, "target": {"type": "AverageValue", "averageValue": "10"}}}]},
//!     "scale": {"specReplicas": 2, "selector": "app=worker"},
//!     "metricValues": [{"type": "External", "metric": {"name": "queue"}, "items": [{"value": "45"}]}]
//! });
//! let calc = format::parse_input(&json).unwrap();
//! let decision = decide(&calc.input, |_| Ok(()));
//! assert_eq!(decision.desired_replicas, 4); // legacy limit: max(2 x 2, 4)
//! ```

mod calculator;
pub mod conditions;
mod decide;
mod error;
pub mod fight;
pub mod format;
mod model;
pub mod normalize;
pub mod persist;
pub mod quantity;
pub mod selector;
pub mod time;
pub mod trace;

pub use decide::{Plan, ScaleIntent, decide, plan, settle_intent};
pub use error::{Error, Result};
pub use model::*;
pub use quantity::Quantity;
pub use selector::{LabelSelector, LabelSelectorRequirement, Labels, Selector};
pub use time::{Duration, Time};
pub use trace::DecisionTrace;
