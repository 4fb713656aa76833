//! One shared, pruned pod cache for every AutoScaler (upstream reads pods from an informer,
//! never with live LISTs). Pruning keeps only the fields the decision reads, so memory grows
//! with the pod count, not with pod spec sizes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use futures::{StreamExt, future};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use kube::Client;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};

use crate::admin::WatchHealth;

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

/// The pod cache, indexed by namespace and by label pair, so a reconcile reads the pods of its
/// own namespace whose labels carry its selector's `key=value` requirements, never the pods of
/// the whole cluster (a cluster of 10,000 pods and 1,000 AutoScalers would otherwise walk
/// 10 million pods per sync cycle).
///
/// kube's `reflector::Store` is a flat map with no secondary index, and keeping one beside it
/// would hold every pod twice; this index is fed from the same watcher stream instead and
/// applies its events with the store's semantics: `Apply` and `Delete` change one pod, a relist
/// (`Init`, `InitApply`…, `InitDone`) builds a fresh index aside and swaps it in whole, so pods
/// deleted while the watch was down vanish with the relist.
#[derive(Clone, Default)]
pub struct PodIndex {
    live: Arc<RwLock<Index>>,
    listed: Arc<tokio::sync::watch::Sender<bool>>,
}

/// The pods of every namespace.
#[derive(Default)]
struct Index {
    namespaces: HashMap<String, NamespacePods>,
    len: usize,
}

/// One namespace's pods by name, and their names by label pair.
#[derive(Default)]
struct NamespacePods {
    pods: HashMap<Arc<str>, Arc<Pod>>,
    /// `key` → `value` → names of the pods with that label.
    by_label: HashMap<String, HashMap<String, HashSet<Arc<str>>>>,
}

impl NamespacePods {
    fn insert(&mut self, pod: Arc<Pod>) -> bool {
        let name: Arc<str> = Arc::from(pod.metadata.name.as_deref().unwrap_or_default());
        let added = match self.pods.insert(name.clone(), pod.clone()) {
            Some(old) => {
                self.unlink(&name, &old);
                false
            }
            None => true,
        };
        for (key, value) in pod.metadata.labels.iter().flatten() {
            self.by_label
                .entry(key.clone())
                .or_default()
                .entry(value.clone())
                .or_default()
                .insert(name.clone());
        }
        added
    }

    fn remove(&mut self, name: &str) -> bool {
        match self.pods.remove(name) {
            Some(old) => {
                self.unlink(name, &old);
                true
            }
            None => false,
        }
    }

    /// Drops `name` from the posting lists of `pod`'s labels (and empty lists with it).
    fn unlink(&mut self, name: &str, pod: &Pod) {
        for (key, value) in pod.metadata.labels.iter().flatten() {
            let Some(values) = self.by_label.get_mut(key) else {
                continue;
            };
            if let Some(names) = values.get_mut(value) {
                names.remove(name);
                if names.is_empty() {
                    values.remove(value);
                }
            }
            if values.is_empty() {
                self.by_label.remove(key);
            }
        }
    }
}

impl Index {
    fn apply(&mut self, pod: Pod) {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        if self
            .namespaces
            .entry(namespace)
            .or_default()
            .insert(Arc::new(pod))
        {
            self.len += 1;
        }
    }

    fn delete(&mut self, pod: &Pod) {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let Some(pods) = self.namespaces.get_mut(namespace) else {
            return;
        };
        if pods.remove(name) {
            self.len -= 1;
        }
        if pods.pods.is_empty() {
            self.namespaces.remove(namespace);
        }
    }
}

/// Feeds a [`PodIndex`] from watcher events; owned by the task that drives the watch.
pub struct IndexWriter {
    index: PodIndex,
    /// The relist being received, swapped in at `InitDone`.
    relist: Option<Index>,
}

impl PodIndex {
    /// An empty index and the writer that feeds it.
    pub fn new() -> (PodIndex, IndexWriter) {
        let index = PodIndex {
            live: Arc::default(),
            listed: Arc::new(tokio::sync::watch::channel(false).0),
        };
        let writer = IndexWriter {
            index: index.clone(),
            relist: None,
        };
        (index, writer)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.live.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The pods of `namespace` that `selector` matches, each an `Arc` of the cached pod. Only
    /// the namespace's pods are looked at, and of those, when the selector requires label
    /// pairs, only the ones carrying the rarest of them.
    pub fn select(&self, namespace: &str, selector: &scaling::Selector) -> Vec<Arc<Pod>> {
        let index = self.read();
        let Some(pods) = index.namespaces.get(namespace) else {
            return Vec::new();
        };
        let empty = std::collections::BTreeMap::new();
        let matches = |pod: &Pod| selector.matches(pod.metadata.labels.as_ref().unwrap_or(&empty));
        let mut rarest: Option<&HashSet<Arc<str>>> = None;
        for (key, value) in selector.required_pairs() {
            let Some(names) = pods.by_label.get(key).and_then(|v| v.get(value)) else {
                // No pod carries a required pair: nothing matches.
                return Vec::new();
            };
            if rarest.is_none_or(|r| names.len() < r.len()) {
                rarest = Some(names);
            }
        }
        match rarest {
            Some(names) => names
                .iter()
                .filter_map(|name| pods.pods.get(name))
                .filter(|pod| matches(pod))
                .cloned()
                .collect(),
            None => pods
                .pods
                .values()
                .filter(|pod| matches(pod))
                .cloned()
                .collect(),
        }
    }

    /// How many pods the index holds.
    pub fn len(&self) -> usize {
        self.read().len
    }

    /// Whether the index holds no pod.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves once the first list has been indexed.
    pub async fn wait_until_listed(&self) {
        let mut listed = self.listed.subscribe();
        let _ = listed.wait_for(|l| *l).await;
    }
}

impl IndexWriter {
    /// Applies one watcher event, as `reflector::store::Writer::apply_watcher_event` does
    /// (taking the pod instead of cloning it).
    pub fn apply(&mut self, event: watcher::Event<Pod>) {
        match event {
            watcher::Event::Apply(pod) => self.write().apply(pod),
            watcher::Event::Delete(pod) => self.write().delete(&pod),
            watcher::Event::Init => self.relist = Some(Index::default()),
            watcher::Event::InitApply(pod) => self.relist.get_or_insert_default().apply(pod),
            watcher::Event::InitDone => {
                let fresh = self.relist.take().unwrap_or_default();
                // The old index is dropped after the lock is released.
                let old = std::mem::replace(&mut *self.write(), fresh);
                drop(old);
                self.index.listed.send_replace(true);
            }
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.live.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Starts the pod watch; the returned future drives it and must be polled for the life of the
/// controller. Every watch event is also recorded in `health` (for `/ready`). A watch error is
/// logged and retried with backoff, never fatal.
pub fn cache(
    client: Client,
    namespace: Option<&str>,
    health: Arc<WatchHealth>,
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
    let driver = stream.for_each(move |event| {
        health.observe(&event);
        match event {
            Ok(event) => writer.apply(event),
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

    fn index_of(pods: Vec<Pod>) -> (PodIndex, IndexWriter) {
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
