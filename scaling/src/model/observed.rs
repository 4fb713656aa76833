//! What the controller observes in one reconcile: the autoscaler's status,
//! the scale subresource, the pods, the metrics API answers and the other
//! autoscalers of the namespace.

use crate::selector::{LabelSelector, Labels};
use crate::time::{Duration, Time};

/// Status condition status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionStatus {
    /// `True`.
    True,
    /// `False`.
    False,
    /// `Unknown`, or any other string.
    Unknown,
}

impl ConditionStatus {
    /// The API string.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

/// An autoscaler status condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// `type`.
    pub kind: String,
    /// `status`, kept as given.
    pub status: String,
    /// `reason`.
    pub reason: String,
    /// `message`.
    pub message: String,
    /// `lastTransitionTime`.
    pub last_transition_time: Option<Time>,
}

/// The autoscaler status before the decision (what the controller reads of it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AutoscalerStatus {
    /// `desiredReplicas`.
    pub desired_replicas: i32,
    /// `currentReplicas`.
    pub current_replicas: i32,
    /// `conditions`, in list order.
    pub conditions: Vec<Condition>,
}

/// The target's scale subresource as the controller's GET saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum ScaleRead {
    /// The GET succeeded.
    Read(Scale),
    /// The GET (or the scale target reference) failed with this error.
    Failed(String),
}

/// A successfully read scale subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scale {
    /// `spec.replicas`.
    pub spec_replicas: i32,
    /// `status.replicas`.
    pub status_replicas: i32,
    /// `status.selector`.
    pub selector: String,
}

/// A pod phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    /// `Pending`.
    Pending,
    /// `Running`.
    Running,
    /// `Succeeded`.
    Succeeded,
    /// `Failed`.
    Failed,
    /// `Unknown` or anything else.
    Unknown,
}

/// The `Ready` condition of a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodReady {
    /// `status`.
    pub status: ConditionStatus,
    /// `lastTransitionTime` (Go's zero time when absent).
    pub last_transition_time: Time,
}

/// Resource amounts by resource name, in milli-units (a `ResourceList`).
///
/// `cpu` and `memory` are looked up for every container of every pod; they are
/// kept inline as well, so that a lookup does not follow a pointer to each
/// entry's name. Build it with `collect()` or `From<Vec<_>>`; for a name that
/// occurs twice the first entry counts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceList {
    entries: Vec<(String, i64)>,
    cpu: Option<i64>,
    memory: Option<i64>,
}

impl ResourceList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry (a later duplicate of a name is kept but never read).
    pub fn insert(&mut self, name: String, milli: i64) {
        match name.as_str() {
            "cpu" if self.cpu.is_none() => self.cpu = Some(milli),
            "memory" if self.memory.is_none() => self.memory = Some(milli),
            _ => {}
        }
        self.entries.push((name, milli));
    }

    /// The amount of `name`, if listed.
    #[inline]
    pub fn get(&self, name: &str) -> Option<i64> {
        match name {
            "cpu" => self.cpu,
            "memory" => self.memory,
            _ => self
                .entries
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| *v),
        }
    }

    /// The entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i64)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), *v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl FromIterator<(String, i64)> for ResourceList {
    fn from_iter<I: IntoIterator<Item = (String, i64)>>(iter: I) -> Self {
        let mut list = ResourceList::new();
        for (name, milli) in iter {
            list.insert(name, milli);
        }
        list
    }
}

impl From<Vec<(String, i64)>> for ResourceList {
    fn from(entries: Vec<(String, i64)>) -> Self {
        entries.into_iter().collect()
    }
}

/// Looks up a resource in a [`ResourceList`].
#[inline]
pub fn resource_get(list: &ResourceList, name: &str) -> Option<i64> {
    list.get(name)
}

/// A container of a pod spec.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Container {
    /// `name`.
    pub name: String,
    /// `resources.requests`.
    pub requests: ResourceList,
    /// `restartPolicy: Always` (a sidecar when it is an init container).
    pub restart_always: bool,
}

/// What the controller reads of a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Pod {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    pub labels: Labels,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// `status.phase`.
    pub phase: PodPhase,
    /// `status.startTime`.
    pub start_time: Option<Time>,
    /// The `Ready` condition, if there is one.
    pub ready: Option<PodReady>,
    /// `spec.containers`.
    pub containers: Vec<Container>,
    /// `spec.initContainers`.
    pub init_containers: Vec<Container>,
    /// `spec.resources.requests` (pod-level requests), if set.
    pub pod_requests: Option<ResourceList>,
}

/// One `PodMetrics` item of the `metrics.k8s.io` LIST.
#[derive(Debug, Clone, PartialEq)]
pub struct PodMetrics {
    /// `metadata.name`.
    pub name: String,
    /// `timestamp`.
    pub timestamp: Time,
    /// `window`.
    pub window: Duration,
    /// `containers`.
    pub containers: Vec<ContainerMetrics>,
}

/// One container of a `PodMetrics` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerMetrics {
    /// `name`.
    pub name: String,
    /// `usage`, milli-values.
    pub usage: ResourceList,
}

/// A custom or external metrics API answer the decision may need.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValues {
    /// `Pods`, `Object` or `External`.
    pub kind: String,
    /// The metric name.
    pub metric_name: String,
    /// The metric selector the answer is for; `None` when the answer does not say.
    pub selector: Option<Option<LabelSelector>>,
    /// For Object answers: the described object's kind and name, if given.
    pub described_object: Option<(String, String)>,
    /// The items, or the error of the API call.
    pub answer: Result<Vec<MetricValue>, String>,
}

/// One `MetricValue` / `ExternalMetricValue` item.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValue {
    /// `describedObject.name` (the pod, for Pods metrics).
    pub pod_name: Option<String>,
    /// `value`, milli.
    pub value: i64,
    /// `timestamp`.
    pub timestamp: Time,
    /// `windowSeconds`.
    pub window: Duration,
}

/// Another autoscaler registered in the namespace (for the overlap guard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherAutoscaler {
    /// Its name.
    pub name: String,
    /// Its namespace, if known.
    pub namespace: Option<String>,
    /// The selector string it registered (`""`: not reconciled yet, matches nothing).
    pub selector: String,
}
