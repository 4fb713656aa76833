//! The kube-controller-manager configuration that shapes a decision.

use crate::time::Duration;

/// kube-controller-manager flags that shape the decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `--horizontal-pod-autoscaler-tolerance` (both directions).
    pub tolerance: f64,
    /// `--horizontal-pod-autoscaler-cpu-initialization-period`.
    pub cpu_initialization_period: Duration,
    /// `--horizontal-pod-autoscaler-initial-readiness-delay`.
    pub initial_readiness_delay: Duration,
    /// `--horizontal-pod-autoscaler-downscale-stabilization`.
    pub downscale_stabilization: Duration,
    /// Legacy scale-up factor (upstream constant 2.0).
    pub legacy_scale_up_limit_factor: f64,
    /// Legacy scale-up minimum (upstream constant 4.0).
    pub legacy_scale_up_limit_minimum: f64,
    /// Feature gates that change the decision.
    pub feature_gates: FeatureGates,
}

impl Default for Config {
    /// The production defaults of kube-controller-manager.
    fn default() -> Self {
        Config {
            tolerance: 0.1,
            cpu_initialization_period: Duration::from_seconds(300),
            initial_readiness_delay: Duration::from_seconds(30),
            downscale_stabilization: Duration::from_seconds(300),
            legacy_scale_up_limit_factor: 2.0,
            legacy_scale_up_limit_minimum: 4.0,
            feature_gates: FeatureGates::default(),
        }
    }
}

/// The feature gates the decision depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureGates {
    /// `HPAConfigurableTolerance`: per-direction `behavior.*.tolerance`.
    pub configurable_tolerance: bool,
    /// `HPAScaleToZero`: the `ScaledToZero` condition and scaling from zero.
    pub scale_to_zero: bool,
    /// `PodLevelResources`: pod-level requests replace summed container requests.
    pub pod_level_resources: bool,
}

impl Default for FeatureGates {
    /// The 1.37 reading of the contract: all three on.
    fn default() -> Self {
        FeatureGates {
            configurable_tolerance: true,
            scale_to_zero: true,
            pod_level_resources: true,
        }
    }
}
