//! Reads `metrics.k8s.io`, `custom.metrics.k8s.io` and `external.metrics.k8s.io`
//! exactly as kube-controller-manager's HPA controller does (contract:
//! `hpa-semantics.md` 1.7), and says what is wrong when it cannot.
//!
//! * [`MetricsClient`]: the upstream requests, byte for byte, with version
//!   discovery (metrics v1 over v1beta1, custom v1beta2 over v1beta1) and
//!   APIService diagnosis of 404/503 answers.
//! * [`PodMetricsSource`]: resource metrics per autoscaler, either exact or
//!   through [`BatchedPodMetrics`] (one LIST per namespace per metrics window).
//! * [`Error`]: one error type whose `Display` is the condition message:
//!   upstream's text first, then the cause and the next step.
//! * [`selector`]: label selectors (`labels.Parse`, canonical strings, matching,
//!   `LabelSelectorAsSelector`).
//!
//! Nothing here decides anything: samples go out as plain serde types with
//! quantity strings, and the operator converts them for the scaling crate.

pub mod batch;
pub mod client;
pub mod encode;
pub mod error;
pub mod samples;
pub mod selector;
pub mod wire;

pub use batch::{BatchedPodMetrics, BatchingConfig, BatchingMode, Clock, PodMetricsSource};
pub use client::{
    ApiVersions, ClientConfig, CustomMetricsVersion, MetricsClient, ObjectTarget,
    ResourceMetricsVersion,
};
pub use error::{Error, MetricsApi, Result};
pub use samples::{
    ContainerUsage, DescribedObject, ExternalSample, MetricSample, PodMetricsSnapshot, PodSample,
};
pub use selector::{Selector, SelectorError, label_selector_string};
