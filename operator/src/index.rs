//! A watch cache indexed by namespace and by label pair, so a reconcile reads the objects of its
//! own namespace (and, for a selector, those carrying its `key=value` requirements), never the
//! objects of the whole cluster: with 10,000 pods and 1,000 AutoScalers, a flat cache would be
//! walked 10 million times per sync cycle.
//!
//! kube's `reflector::Store` is a flat map with no secondary index, and keeping one beside it
//! would hold every object twice; this index is fed from the watcher stream instead and applies
//! its events with the store's semantics: `Apply` and `Delete` change one object, a relist
//! (`Init`, `InitApply`…, `InitDone`) builds a fresh index aside and swaps it in whole, so
//! objects deleted while the watch was down vanish with the relist, and readers see the previous
//! complete list until then.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use kube::Resource;
use kube::runtime::watcher;
use scaling::selector::Candidates;

/// What the index reads of an object: its namespace, name and labels. Every Kubernetes
/// resource has them in its metadata; a cache may also keep a smaller form of its own (the pod
/// cache keeps [`crate::pods::CachedPod`]).
pub trait Indexed {
    /// `metadata.namespace` (empty for a cluster-scoped object).
    fn index_namespace(&self) -> &str;
    /// `metadata.name`.
    fn index_name(&self) -> &str;
    /// `metadata.labels`.
    fn index_labels(&self) -> Option<&BTreeMap<String, String>>;
}

impl<K: Resource> Indexed for K {
    fn index_namespace(&self) -> &str {
        self.meta().namespace.as_deref().unwrap_or_default()
    }

    fn index_name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or_default()
    }

    fn index_labels(&self) -> Option<&BTreeMap<String, String>> {
        self.meta().labels.as_ref()
    }
}

/// The cached objects of every namespace, shared by every reader; see the module docs.
pub struct NamespaceIndex<K> {
    live: Arc<RwLock<Index<K>>>,
    listed: Arc<tokio::sync::watch::Sender<bool>>,
}

impl<K> Clone for NamespaceIndex<K> {
    fn clone(&self) -> Self {
        NamespaceIndex {
            live: self.live.clone(),
            listed: self.listed.clone(),
        }
    }
}

/// The objects of every namespace.
struct Index<K> {
    namespaces: HashMap<String, Namespace<K>>,
    len: usize,
}

impl<K> Default for Index<K> {
    fn default() -> Self {
        Index {
            namespaces: HashMap::new(),
            len: 0,
        }
    }
}

/// One namespace's objects by name, and their names by label pair.
struct Namespace<K> {
    objects: HashMap<Arc<str>, Arc<K>>,
    /// `key` → `value` → names of the objects with that label.
    by_label: HashMap<String, HashMap<String, HashSet<Arc<str>>>>,
}

impl<K> Default for Namespace<K> {
    fn default() -> Self {
        Namespace {
            objects: HashMap::new(),
            by_label: HashMap::new(),
        }
    }
}

impl<K: Indexed> Namespace<K> {
    /// Inserts or replaces `obj`; true when it is new.
    fn insert(&mut self, obj: Arc<K>) -> bool {
        let name: Arc<str> = Arc::from(obj.index_name());
        let added = match self.objects.insert(name.clone(), obj.clone()) {
            Some(old) => {
                self.unlink(&name, &old);
                false
            }
            None => true,
        };
        for (key, value) in obj.index_labels().into_iter().flatten() {
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
        match self.objects.remove(name) {
            Some(old) => {
                self.unlink(name, &old);
                true
            }
            None => false,
        }
    }

    /// Drops `name` from the posting lists of `obj`'s labels (and empty lists with it).
    fn unlink(&mut self, name: &str, obj: &K) {
        for (key, value) in obj.index_labels().into_iter().flatten() {
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

impl<K: Indexed> Index<K> {
    fn apply(&mut self, obj: K) {
        let namespace = obj.index_namespace().to_string();
        if self
            .namespaces
            .entry(namespace)
            .or_default()
            .insert(Arc::new(obj))
        {
            self.len += 1;
        }
    }

    fn delete(&mut self, obj: &K) {
        let namespace = obj.index_namespace();
        let name = obj.index_name();
        let Some(objects) = self.namespaces.get_mut(namespace) else {
            return;
        };
        if objects.remove(name) {
            self.len -= 1;
        }
        if objects.objects.is_empty() {
            self.namespaces.remove(namespace);
        }
    }
}

/// Feeds a [`NamespaceIndex`] from watcher events; owned by the task that drives the watch.
pub struct IndexWriter<K> {
    index: NamespaceIndex<K>,
    /// The relist being received, swapped in at `InitDone`.
    relist: Option<Index<K>>,
}

impl<K: Indexed> NamespaceIndex<K> {
    /// An empty index and the writer that feeds it.
    pub fn new() -> (NamespaceIndex<K>, IndexWriter<K>) {
        let index = NamespaceIndex {
            live: Arc::default(),
            listed: Arc::new(tokio::sync::watch::channel(false).0),
        };
        let writer = IndexWriter {
            index: index.clone(),
            relist: None,
        };
        (index, writer)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index<K>> {
        self.live.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The objects of `namespace` that `selector` matches, each an `Arc` of the cached one. Only
    /// the namespace's objects are looked at, and of those, when the selector requires label
    /// pairs, only the ones carrying the rarest of them.
    pub fn select(&self, namespace: &str, selector: &scaling::Selector) -> Vec<Arc<K>> {
        let index = self.read();
        let Some(objects) = index.namespaces.get(namespace) else {
            return Vec::new();
        };
        let empty = BTreeMap::new();
        let matches = |obj: &K| selector.matches(obj.index_labels().unwrap_or(&empty));
        let narrowed = selector.narrowest(|key, value| {
            let names = objects.by_label.get(key)?.get(value)?;
            Some((names, names.len()))
        });
        match narrowed {
            Candidates::None => Vec::new(),
            Candidates::All => objects
                .objects
                .values()
                .filter(|obj| matches(obj))
                .cloned()
                .collect(),
            Candidates::Only(names) => names
                .iter()
                .filter_map(|name| objects.objects.get(name))
                .filter(|obj| matches(obj))
                .cloned()
                .collect(),
        }
    }

    /// Every object of `namespace`.
    pub fn in_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        self.read()
            .namespaces
            .get(namespace)
            .map(|objects| objects.objects.values().cloned().collect())
            .unwrap_or_default()
    }

    /// How many objects the index holds.
    pub fn len(&self) -> usize {
        self.read().len
    }

    /// Whether the index holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves once the first list has been indexed.
    pub async fn wait_until_listed(&self) {
        let mut listed = self.listed.subscribe();
        let _ = listed.wait_for(|l| *l).await;
    }
}

impl<K: Indexed> IndexWriter<K> {
    /// Applies one watcher event, as `reflector::store::Writer::apply_watcher_event` does
    /// (taking the object instead of cloning it).
    pub fn apply(&mut self, event: watcher::Event<K>) {
        match event {
            watcher::Event::Apply(obj) => self.write().apply(obj),
            watcher::Event::Delete(obj) => self.write().delete(&obj),
            watcher::Event::Init => self.relist = Some(Index::default()),
            watcher::Event::InitApply(obj) => self.relist.get_or_insert_default().apply(obj),
            watcher::Event::InitDone => {
                let fresh = self.relist.take().unwrap_or_default();
                // The old index is dropped after the lock is released.
                let old = std::mem::replace(&mut *self.write(), fresh);
                drop(old);
                self.index.listed.send_replace(true);
            }
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index<K>> {
        self.index.live.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use kube::ResourceExt;

    fn hpa(namespace: &str, name: &str) -> HorizontalPodAutoscaler {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": name}, "maxReplicas": 3}
        }))
        .expect("hpa")
    }

    #[test]
    fn a_namespace_lists_its_own_objects_only_and_forgets_deleted_ones() {
        let (index, mut writer) = NamespaceIndex::new();
        writer.apply(watcher::Event::Init);
        for (ns, name) in [("shop", "web"), ("shop", "api"), ("other", "web")] {
            writer.apply(watcher::Event::InitApply(hpa(ns, name)));
        }
        writer.apply(watcher::Event::InitDone);
        let names = |ns: &str| {
            let mut names: Vec<String> = index
                .in_namespace(ns)
                .iter()
                .map(|h| h.name_any())
                .collect();
            names.sort();
            names
        };
        assert_eq!(names("shop"), ["api", "web"]);
        writer.apply(watcher::Event::Delete(hpa("other", "web")));
        assert!(names("other").is_empty());
        assert_eq!(index.len(), 2);
    }
}
