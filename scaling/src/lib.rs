//! Pure HPA decision logic: exactly what kube-controller-manager's
//! HorizontalPodAutoscaler controller decides in one reconcile, as a function.
//!
//! No clock, no I/O, no Kubernetes client: `now`, the observed objects and the
//! controller's decision memory ([`History`]) go in; the decision, its status
//! conditions and events, and the new memory come out. The behaviour contract
//! is `shared/docs/hpa-semantics.md`; the offline format is
//! `shared/conformance/FORMAT.md` ([`wire`]).
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
//! let calc = wire::parse_input(&json).unwrap();
//! let decision = decide(&calc.input, |_| Ok(()));
//! assert_eq!(decision.desired_replicas, 4); // legacy limit: max(2 x 2, 4)
//! ```

mod calculator;
mod decide;
mod error;
mod fxhash;
mod model;
pub mod normalize;
pub mod quantity;
pub mod selector;
pub mod time;
pub mod wire;

pub use decide::{Plan, decide, plan};
pub use error::{Error, Result};
pub use model::*;
pub use quantity::Quantity;
pub use selector::{LabelSelector, LabelSelectorRequirement, Labels, Selector};
pub use time::{Duration, Time};
