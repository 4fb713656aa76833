//! One shared pod cache for every AutoScaler (upstream reads pods from an informer, never with
//! live LISTs). Each pod is kept as what the decision reads of it, converted when the watch
//! delivers it, so memory grows with the pod count, not with pod spec sizes, and a reconcile
//! does not convert its pods again every sync.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::{StreamExt, future};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};

use crate::admin::WatchHealth;
use crate::index::Indexed;
pub use crate::index::{IndexWriter, NamespaceIndex};
use crate::kube_core;

/// A pod as the cache keeps it: its namespace and what the decision reads of it (contract
/// 1.6). A `Pod` stripped of everything else, as the cache kept it before, still took 6.5 KB of
/// heap, mostly fixed-size fields of its spec, status and container structs; this form takes
/// 1.6 KB with its share of the index (tests/pod_cache_memory.rs), ~50 MB less at 10,000 pods.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedPod {
    /// `metadata.namespace`.
    pub namespace: String,
    /// Name, labels, deletion, phase, start time, readiness, and requests.
    pub pod: scaling::Pod,
}

impl From<&Pod> for CachedPod {
    fn from(pod: &Pod) -> Self {
        let mut cached = kube_core::pod(pod);
        // Only restartable init containers (sidecars) count for requests; the others need not
        // be kept.
        cached.init_containers.retain(|c| c.restart_always);
        cached.init_containers.shrink_to_fit();
        CachedPod {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            pod: cached,
        }
    }
}

impl Indexed for CachedPod {
    fn index_namespace(&self) -> &str {
        &self.namespace
    }

    fn index_name(&self) -> &str {
        &self.pod.name
    }

    fn index_labels(&self) -> Option<&BTreeMap<String, String>> {
        Some(&self.pod.labels)
    }
}

impl CachedPod {
    /// Not being deleted, and its Ready condition True.
    pub fn ready(&self) -> bool {
        !self.pod.deleting
            && self
                .pod
                .ready
                .as_ref()
                .is_some_and(|r| r.status == scaling::ConditionStatus::True)
    }
}

/// A pod watch event as the cache applies it.
pub fn cached(event: watcher::Event<Pod>) -> watcher::Event<CachedPod> {
    match event {
        watcher::Event::Apply(pod) => watcher::Event::Apply(CachedPod::from(&pod)),
        watcher::Event::Delete(pod) => watcher::Event::Delete(CachedPod::from(&pod)),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(pod) => watcher::Event::InitApply(CachedPod::from(&pod)),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

/// The pod cache, indexed by namespace and by label pair (see [`crate::index`]).
pub type PodIndex = NamespaceIndex<CachedPod>;

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
    let stream = watcher(api, watcher::Config::default().any_semantic()).default_backoff();
    let reader = index.clone();
    let driver = stream.for_each(move |event| {
        health.observe(&event);
        match event {
            Ok(event) => {
                let event = cached(event);
                let namespace = match &event {
                    watcher::Event::Apply(pod) | watcher::Event::Delete(pod) => {
                        Some(pod.namespace.clone())
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

    fn pod(namespace: &str, name: &str, app: &str) -> CachedPod {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}}
        }))
        .expect("pod");
        CachedPod::from(&pod)
    }

    fn index_of(pods: Vec<CachedPod>) -> (PodIndex, IndexWriter<CachedPod>) {
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
            .map(|p| p.pod.name.clone())
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
    fn a_cached_pod_keeps_what_the_decision_reads() {
        let cached = CachedPod::from(&full_pod());
        assert_eq!(cached.namespace, "shop");
        let pod = &cached.pod;
        assert_eq!(pod.name, "web-1");
        assert_eq!(pod.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(pod.phase, scaling::PodPhase::Running);
        assert!(pod.start_time.is_some());
        assert!(cached.ready(), "Ready condition True, not deleting");
        assert_eq!(pod.containers.len(), 1);
        assert_eq!(pod.containers[0].name, "app");
        assert_eq!(pod.containers[0].requests.get("cpu"), Some(500));
        // Only restartable init containers count for requests.
        let init: Vec<&str> = pod
            .init_containers
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(init, ["proxy"]);
        assert!(pod.init_containers[0].restart_always);
        assert!(
            pod.pod_requests
                .as_ref()
                .is_some_and(|r| r.get("memory").is_some())
        );
    }

    #[test]
    fn a_deleting_pod_is_not_ready() {
        let mut pod = full_pod();
        pod.metadata.deletion_timestamp = pod.status.as_ref().and_then(|s| s.start_time.clone());
        let cached = CachedPod::from(&pod);
        assert!(cached.pod.deleting);
        assert!(!cached.ready());
    }

    #[test]
    fn watch_events_keep_their_kind_when_cached() {
        let pod = full_pod();
        assert!(
            matches!(cached(watcher::Event::Apply(pod.clone())), watcher::Event::Apply(p) if p.pod.name == "web-1")
        );
        assert!(
            matches!(cached(watcher::Event::Delete(pod.clone())), watcher::Event::Delete(p) if p.namespace == "shop")
        );
        assert!(matches!(
            cached(watcher::Event::InitApply(pod)),
            watcher::Event::InitApply(_)
        ));
        assert!(matches!(cached(watcher::Event::Init), watcher::Event::Init));
        assert!(matches!(
            cached(watcher::Event::InitDone),
            watcher::Event::InitDone
        ));
    }
}
