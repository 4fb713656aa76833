//! Simulated workloads: Deployments and StatefulSets whose pods the real
//! scheduler places on kwok's fake nodes and kwok runs.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Container, PodSpec, PodTemplateSpec, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use crate::driver::USAGE_CPU_ANNOTATION;
use crate::error::Result;

/// Taint on kwok's fake nodes; only pods that tolerate it land there.
pub const KWOK_TAINT_KEY: &str = "kwok.x-k8s.io/node";
/// Pod annotation read by the cluster's pod-ready Stage: time from Running to
/// Ready for this pod, as a Go duration.
pub const READY_DELAY_ANNOTATION: &str = "pod-ready.stage.kwok.x-k8s.io/delay";

/// A kwok-backed workload: one container with CPU and memory requests, a
/// toleration for the fake nodes' taint and a `type: kwok` node selector.
#[derive(Debug, Clone)]
pub struct KwokWorkload {
    name: String,
    replicas: i32,
    cpu_request: String,
    memory_request: String,
    ready_delay: Option<Duration>,
    node_pool: Option<String>,
    cpu_usage: Option<String>,
}

/// Node label that confines a workload to the nodes a test made for itself
/// ([`KwokWorkload::node_pool`]).
pub const NODE_POOL_LABEL: &str = "e2e.tidal.dev/pool";

impl KwokWorkload {
    /// One replica requesting 100m CPU and 64Mi memory, labelled `app=<name>`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            replicas: 1,
            cpu_request: "100m".into(),
            memory_request: "64Mi".into(),
            ready_delay: None,
            node_pool: None,
            cpu_usage: None,
        }
    }

    /// Initial replica count.
    pub fn replicas(mut self, replicas: i32) -> Self {
        self.replicas = replicas;
        self
    }

    /// CPU request per pod (a quantity, e.g. `200m`).
    pub fn cpu_request(mut self, q: impl Into<String>) -> Self {
        self.cpu_request = q.into();
        self
    }

    /// Memory request per pod (a quantity, e.g. `128Mi`).
    pub fn memory_request(mut self, q: impl Into<String>) -> Self {
        self.memory_request = q.into();
        self
    }

    /// Time from Running to Ready for each pod, overriding the cluster default.
    pub fn ready_delay(mut self, delay: Duration) -> Self {
        self.ready_delay = Some(delay);
        self
    }

    /// Places the pods on the nodes labelled `e2e.tidal.dev/pool=<pool>` instead of the
    /// cluster's shared kwok nodes, spread evenly over them (at most one pod of difference),
    /// so a test can break one node without touching any other test.
    pub fn node_pool(mut self, pool: impl Into<String>) -> Self {
        self.node_pool = Some(pool.into());
        self
    }

    /// A constant CPU usage for every pod (a quantity, e.g. `30m`), set in the pod template
    /// instead of by the load driver.
    pub fn cpu_usage(mut self, q: impl Into<String>) -> Self {
        self.cpu_usage = Some(q.into());
        self
    }

    /// The workload's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Label selector matching the workload's pods (`app=<name>`).
    pub fn selector(&self) -> String {
        format!("app={}", self.name)
    }

    fn labels(&self) -> BTreeMap<String, String> {
        [("app".to_owned(), self.name.clone())].into()
    }

    fn pod_template(&self) -> PodTemplateSpec {
        let annotations: BTreeMap<String, String> = self
            .ready_delay
            .map(|d| {
                (
                    READY_DELAY_ANNOTATION.to_owned(),
                    format!("{}ms", d.as_millis()),
                )
            })
            .into_iter()
            .chain(
                self.cpu_usage
                    .clone()
                    .map(|u| (USAGE_CPU_ANNOTATION.to_owned(), u)),
            )
            .collect();
        let annotations = (!annotations.is_empty()).then_some(annotations);
        let node_selector = match &self.node_pool {
            Some(pool) => [(NODE_POOL_LABEL.to_owned(), pool.clone())].into(),
            None => [("type".to_owned(), "kwok".to_owned())].into(),
        };
        let spread = self.node_pool.as_ref().map(|_| {
            vec![TopologySpreadConstraint {
                max_skew: 1,
                topology_key: "kubernetes.io/hostname".into(),
                when_unsatisfiable: "DoNotSchedule".into(),
                label_selector: Some(LabelSelector {
                    match_labels: Some(self.labels()),
                    ..LabelSelector::default()
                }),
                ..TopologySpreadConstraint::default()
            }]
        });
        let requests: BTreeMap<String, Quantity> = [
            ("cpu".to_owned(), Quantity(self.cpu_request.clone())),
            ("memory".to_owned(), Quantity(self.memory_request.clone())),
        ]
        .into();
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(self.labels()),
                annotations,
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    // Never pulled: kwok only pretends to run containers.
                    image: Some("registry.invalid/tidal/fake-app:1".into()),
                    resources: Some(ResourceRequirements {
                        requests: Some(requests),
                        ..ResourceRequirements::default()
                    }),
                    ..Container::default()
                }],
                node_selector: Some(node_selector),
                topology_spread_constraints: spread,
                tolerations: Some(vec![Toleration {
                    key: Some(KWOK_TAINT_KEY.into()),
                    operator: Some("Exists".into()),
                    effect: Some("NoSchedule".into()),
                    ..Toleration::default()
                }]),
                termination_grace_period_seconds: Some(0),
                ..PodSpec::default()
            }),
        }
    }

    fn metadata(&self) -> ObjectMeta {
        ObjectMeta {
            name: Some(self.name.clone()),
            labels: Some(self.labels()),
            ..ObjectMeta::default()
        }
    }

    /// The Deployment object.
    pub fn deployment(&self) -> Deployment {
        Deployment {
            metadata: self.metadata(),
            spec: Some(DeploymentSpec {
                replicas: Some(self.replicas),
                selector: LabelSelector {
                    match_labels: Some(self.labels()),
                    ..LabelSelector::default()
                },
                template: self.pod_template(),
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }
    }

    /// The StatefulSet object (parallel pod management, so scaling is not
    /// serialised behind readiness).
    pub fn stateful_set(&self) -> StatefulSet {
        StatefulSet {
            metadata: self.metadata(),
            spec: Some(StatefulSetSpec {
                replicas: Some(self.replicas),
                service_name: Some(self.name.clone()),
                pod_management_policy: Some("Parallel".into()),
                selector: LabelSelector {
                    match_labels: Some(self.labels()),
                    ..LabelSelector::default()
                },
                template: self.pod_template(),
                ..StatefulSetSpec::default()
            }),
            ..StatefulSet::default()
        }
    }

    /// Creates the Deployment in `namespace`.
    pub async fn create_deployment(&self, client: &Client, namespace: &str) -> Result<Deployment> {
        Ok(Api::<Deployment>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &self.deployment())
            .await?)
    }

    /// Creates the StatefulSet in `namespace`.
    pub async fn create_stateful_set(
        &self,
        client: &Client,
        namespace: &str,
    ) -> Result<StatefulSet> {
        Ok(Api::<StatefulSet>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &self.stateful_set())
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_tolerate_the_fake_node_taint_and_select_kwok_nodes() {
        let d = KwokWorkload::new("web")
            .cpu_request("250m")
            .ready_delay(Duration::from_secs(3))
            .deployment();
        let template = d.spec.map(|s| s.template).unwrap_or_default();
        let spec = template.spec.unwrap_or_default();
        assert_eq!(
            spec.node_selector
                .unwrap_or_default()
                .get("type")
                .map(String::as_str),
            Some("kwok")
        );
        let tolerations = spec.tolerations.unwrap_or_default();
        assert!(
            tolerations
                .iter()
                .any(|t| t.key.as_deref() == Some(KWOK_TAINT_KEY))
        );
        let requests = spec.containers[0]
            .resources
            .clone()
            .unwrap_or_default()
            .requests
            .unwrap_or_default();
        assert_eq!(requests.get("cpu"), Some(&Quantity("250m".into())));
        let annotations = template
            .metadata
            .unwrap_or_default()
            .annotations
            .unwrap_or_default();
        assert_eq!(
            annotations.get(READY_DELAY_ANNOTATION).map(String::as_str),
            Some("3000ms")
        );
    }

    #[test]
    fn the_selector_matches_the_pod_template_labels() {
        let w = KwokWorkload::new("db");
        let labels = w
            .stateful_set()
            .spec
            .unwrap_or_default()
            .template
            .metadata
            .unwrap_or_default()
            .labels;
        assert_eq!(w.selector(), "app=db");
        assert_eq!(
            labels.unwrap_or_default().get("app").map(String::as_str),
            Some("db")
        );
    }
}
