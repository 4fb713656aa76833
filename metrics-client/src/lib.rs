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
//! * [`selector`]: the canonical string of a `metav1.LabelSelector`
//!   (`LabelSelectorAsSelector`); parsing and matching are `scaling::Selector`.
//!
//! With a real cluster (an e2e test, or the operator):
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tidal_metrics_client::{BatchingConfig, BatchingMode, MetricsClient, PodMetricsSource};
//!
//! let client = MetricsClient::new(kube::Client::try_default().await?);
//! let source = PodMetricsSource::new(client.clone(), BatchingMode::On, BatchingConfig::default());
//! let samples = source.pod_metrics("default", "app=nginx-deploy").await?;
//! let rps = client.pods_metric("default", "app=nginx-deploy", "http_requests", "").await?;
//! # let _ = (samples, rps);
//! # Ok(())
//! # }
//! ```
//!
//! Nothing here decides anything: samples go out as plain serde types with
//! quantity strings, and the operator converts them for the scaling crate.

pub mod api_types;
pub mod batch;
pub mod client;
pub mod encode;
pub mod error;
pub mod samples;
pub mod selector;

pub use batch::{BatchedPodMetrics, BatchingConfig, BatchingMode, Clock, PodMetricsSource};
pub use client::{
    ApiVersions, ClientConfig, CustomMetricsVersion, MetricsClient, ObjectTarget,
    ResourceMetricsVersion,
};
pub use error::{ApiServiceState, Error, MetricsApi, Result};
pub use samples::{
    ContainerUsage, DescribedObject, ExternalSample, MetricSample, PodMetricsSnapshot, PodSample,
};
pub use selector::{Selector, SelectorError};
