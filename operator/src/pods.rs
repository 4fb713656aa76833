//! One shared, pruned pod cache for every AutoScaler (upstream reads pods from an informer,
//! never with live LISTs). Pruning keeps only the fields the decision reads, so memory grows
//! with the pod count, not with pod spec sizes.

use std::sync::Arc;

use futures::{StreamExt, future};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use kube::Client;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};

use crate::admin::WatchHealth;
pub use crate::index::{IndexWriter, NamespaceIndex};

/// Strips a pod down to what the decision reads (contract 1.6): name, namespace, labels,
/// deletion timestamp, phase, start time, the Ready condition, container names and requests,
/// restartable init containers, and pod-level requests.
pub fn prune(pod: &mut Pod) {
    let meta = &mut pod.metadata;
    meta.annotations = None;
    meta.managed_fields = None;
    meta.owner_references = None;
    meta.finalizers = None;
    meta.generate_name = None;
    if let Some(spec) = pod.spec.take() {
        pod.spec = Some(PodSpec {
            containers: spec.containers.into_iter().map(prune_container).collect(),
            init_containers: spec.init_containers.map(|init| {
                init.into_iter()
                    .filter(|c| c.restart_policy.as_deref() == Some("Always"))
                    .map(prune_container)
                    .collect()
            }),
            resources: spec
                .resources
                .map(|r| k8s_openapi::api::core::v1::ResourceRequirements {
                    requests: r.requests,
                    ..Default::default()
                }),
            node_name: spec.node_name,
            ..Default::default()
        });
    }
    if let Some(status) = pod.status.as_mut() {
        status.conditions = status
            .conditions
            .take()
            .map(|c| c.into_iter().filter(|c| c.type_ == "Ready").collect());
        status.container_statuses = None;
        status.init_container_statuses = None;
        status.ephemeral_container_statuses = None;
        status.pod_ips = None;
        status.host_ips = None;
        status.message = None;
    }
}

fn prune_container(container: Container) -> Container {
    Container {
        name: container.name,
        restart_policy: container.restart_policy,
        resources: container
            .resources
            .map(|r| k8s_openapi::api::core::v1::ResourceRequirements {
                requests: r.requests,
                ..Default::default()
            }),
        ..Default::default()
    }
}

/// The pod cache, indexed by namespace and by label pair (see [`crate::index`]).
pub type PodIndex = NamespaceIndex<Pod>;

/// Starts the pod watch; the returned future drives it and must be polled for the life of the
/// controller. Every watch event is also recorded in `health` (for `/ready`), and after each
/// change of one pod `changed` is told its namespace (the index already shows the change). A
/// watch error is logged and retried with backoff, never fatal.
pub fn cache(
    client: Client,
    namespace: Option<&str>,
    health: Arc<WatchHealth>,
    changed: impl Fn(&PodIndex, &str) + Send + 'static,
) -> (
    PodIndex,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let api: Api<Pod> = match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let (index, mut writer) = PodIndex::new();
    let stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(prune);
    let reader = index.clone();
    let driver = stream.for_each(move |event| {
        health.observe(&event);
        match event {
            Ok(event) => {
                let namespace = match &event {
                    watcher::Event::Apply(pod) | watcher::Event::Delete(pod) => {
                        pod.metadata.namespace.clone()
                    }
                    _ => None,
                };
                writer.apply(event);
                if let Some(namespace) = namespace {
                    changed(&reader, &namespace);
                }
            }
            Err(err) => tracing::warn!(error = %err, "pod watch error; retrying"),
        }
        future::ready(())
    });
    (index, driver)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt;

    fn full_pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web"},
                          "annotations": {"big": "x".repeat(1000)},
                          "managedFields": [{"manager": "kubectl"}]},
            "spec": {
                "containers": [{"name": "app", "image": "nginx", "env": [{"name": "A", "value": "1"}],
                                "resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "1"}}}],
                "initContainers": [
                    {"name": "setup", "image": "busybox", "resources": {"requests": {"cpu": "1"}}},
                    {"name": "proxy", "image": "envoy", "restartPolicy": "Always",
                     "resources": {"requests": {"cpu": "100m"}}}
                ],
                "resources": {"requests": {"memory": "1Gi"}}
            },
            "status": {"phase": "Running", "startTime": "2026-01-01T00:00:00Z",
                       "conditions": [{"type": "PodScheduled", "status": "True"},
                                      {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:10Z"}],
                       "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "image": "nginx", "imageID": ""}]}
        }))
        .expect("pod")
    }

    #[test]
    fn pruning_keeps_everything_the_decision_reads() {
        let mut pod = full_pod();
        prune(&mut pod);
        assert_eq!(
            pod.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .map(String::as_str),
            Some("web")
        );
        let spec = pod.spec.as_ref().expect("spec");
        assert_eq!(spec.containers[0].name, "app");
        assert!(
            spec.containers[0]
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .is_some()
        );
        let init = spec.init_containers.as_ref().expect("sidecars");
        assert_eq!(
            init.len(),
            1,
            "only restartable init containers count for requests"
        );
        assert_eq!(init[0].name, "proxy");
        assert!(
            spec.resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .is_some()
        );
        let status = pod.status.as_ref().expect("status");
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(status.start_time.is_some());
        let conditions = status.conditions.as_ref().expect("conditions");
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].type_, "Ready");
    }

    fn pod(namespace: &str, name: &str, app: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}}
        }))
        .expect("pod")
    }

    fn index_of(pods: Vec<Pod>) -> (PodIndex, IndexWriter<Pod>) {
        let (index, mut writer) = PodIndex::new();
        writer.apply(watcher::Event::Init);
        for p in pods {
            writer.apply(watcher::Event::InitApply(p));
        }
        writer.apply(watcher::Event::InitDone);
        (index, writer)
    }

    fn names(index: &PodIndex, namespace: &str, selector: &str) -> Vec<String> {
        let selector = scaling::Selector::parse(selector).expect("selector");
        let mut names: Vec<String> = index
            .select(namespace, &selector)
            .iter()
            .map(|p| p.name_any())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn selection_keeps_the_namespace_and_the_matching_labels() {
        let (index, mut writer) = index_of(vec![
            pod("shop", "web-1", "web"),
            pod("shop", "api-1", "api"),
            pod("other", "web-2", "web"),
        ]);
        writer.apply(watcher::Event::Apply(pod("shop", "web-3", "web")));
        assert_eq!(names(&index, "shop", "app=web"), ["web-1", "web-3"]);
        assert_eq!(names(&index, "shop", "app in (web)"), ["web-1", "web-3"]);
        // Without a required pair, the namespace's pods are matched one by one.
        assert_eq!(names(&index, "shop", "app notin (api)"), ["web-1", "web-3"]);
        assert_eq!(
            names(&index, "shop", "app in (api,web)"),
            ["api-1", "web-1", "web-3"]
        );
        assert_eq!(
            names(&index, "shop", "app=web,tier=db"),
            Vec::<String>::new()
        );
        assert!(names(&index, "nowhere", "app=web").is_empty());
        assert_eq!(index.len(), 4);
    }

    #[test]
    fn a_relabelled_pod_leaves_its_old_label_and_a_deleted_one_its_namespace() {
        let (index, mut writer) = index_of(vec![pod("shop", "web-1", "web")]);
        writer.apply(watcher::Event::Apply(pod("shop", "web-1", "api")));
        assert!(names(&index, "shop", "app=web").is_empty());
        assert_eq!(names(&index, "shop", "app=api"), ["web-1"]);
        assert_eq!(index.len(), 1, "an update is no second pod");
        writer.apply(watcher::Event::Delete(pod("shop", "web-1", "api")));
        assert!(names(&index, "shop", "app=api").is_empty());
        assert!(index.is_empty());
        // Deleting what the index never held changes nothing.
        writer.apply(watcher::Event::Delete(pod("shop", "ghost", "api")));
        assert!(index.is_empty());
    }

    #[test]
    fn a_relist_drops_the_pods_that_vanished_and_serves_the_old_list_until_it_is_done() {
        let (index, mut writer) = index_of(vec![
            pod("shop", "web-1", "web"),
            pod("shop", "web-2", "web"),
            pod("gone", "web-9", "web"),
        ]);
        writer.apply(watcher::Event::Init);
        writer.apply(watcher::Event::InitApply(pod("shop", "web-2", "web")));
        writer.apply(watcher::Event::InitApply(pod("shop", "web-3", "web")));
        // Mid-relist, readers still see the previous complete list.
        assert_eq!(names(&index, "shop", "app=web"), ["web-1", "web-2"]);
        writer.apply(watcher::Event::InitDone);
        assert_eq!(names(&index, "shop", "app=web"), ["web-2", "web-3"]);
        assert!(names(&index, "gone", "app=web").is_empty());
        assert_eq!(index.len(), 2);
    }

    #[tokio::test]
    async fn the_index_is_listed_after_its_first_init_done() {
        let (index, mut writer) = PodIndex::new();
        writer.apply(watcher::Event::Init);
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            index.wait_until_listed(),
        );
        assert!(waiting.await.is_err(), "not listed before InitDone");
        writer.apply(watcher::Event::InitDone);
        index.wait_until_listed().await;
    }

    #[test]
    fn pruning_drops_what_the_decision_never_reads() {
        let mut pod = full_pod();
        prune(&mut pod);
        assert!(pod.metadata.annotations.is_none());
        assert!(pod.metadata.managed_fields.is_none());
        let container = &pod.spec.as_ref().expect("spec").containers[0];
        assert!(container.image.is_none() && container.env.is_none());
        assert!(
            container
                .resources
                .as_ref()
                .and_then(|r| r.limits.as_ref())
                .is_none()
        );
        assert!(
            pod.status
                .as_ref()
                .expect("status")
                .container_statuses
                .is_none()
        );
    }
}
