//! The selectors the AutoScalers registered (contract 1.5 step 3), for the overlap check
//! (`AmbiguousSelector`): which other AutoScalers of the namespace select one of this one's
//! pods.
//!
//! The core decides the overlap exactly from the selectors it is given, and a selector that
//! matches none of the pods changes nothing there. So a reconcile needs only the selectors
//! that could match one of its own pods, not all of its namespace's: with a thousand
//! AutoScalers in a namespace, handing every selector to the core (to be parsed and matched
//! against each pod, under the memory lock) made that check most of a reconcile's CPU at
//! N = 10,000. A selector requiring a label pair (`app=web`, `app in (web)`) is indexed by one
//! such pair and is a candidate only for pods carrying it; any other selector (set-based only,
//! empty, or one that does not parse) is a candidate for every pod, and the core judges it as
//! before.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The registrations, by namespace.
#[derive(Default)]
pub struct Registry {
    by_namespace: HashMap<String, Namespace>,
}

/// One namespace's registrations and their index.
#[derive(Default)]
struct Namespace {
    /// name → selector, with the label pair it is indexed by.
    selectors: BTreeMap<String, Registered>,
    /// label key → value → names of the selectors that require that pair.
    by_pair: HashMap<String, HashMap<String, BTreeSet<String>>>,
    /// Names of the selectors that require no pair: candidates for every pod.
    unindexed: BTreeSet<String>,
}

struct Registered {
    selector: String,
    pair: Option<(String, String)>,
}

/// The label pair a selector is indexed by: one it requires of every pod it selects.
fn index_pair(selector: &str) -> Option<(String, String)> {
    let parsed = scaling::selector::Selector::parse(selector).ok()?;
    parsed
        .required_pairs()
        .next()
        .map(|(k, v)| (k.to_string(), v.to_string()))
}

impl Namespace {
    fn insert(&mut self, name: &str, selector: String) {
        if self
            .selectors
            .get(name)
            .is_some_and(|r| r.selector == selector)
        {
            // The common case, every sync: nothing changed, nothing to parse.
            return;
        }
        self.remove(name);
        let pair = index_pair(&selector);
        match &pair {
            Some((k, v)) => {
                self.by_pair
                    .entry(k.clone())
                    .or_default()
                    .entry(v.clone())
                    .or_default()
                    .insert(name.to_string());
            }
            None => {
                self.unindexed.insert(name.to_string());
            }
        }
        self.selectors
            .insert(name.to_string(), Registered { selector, pair });
    }

    fn remove(&mut self, name: &str) {
        let Some(old) = self.selectors.remove(name) else {
            return;
        };
        match old.pair {
            Some((k, v)) => {
                if let Some(values) = self.by_pair.get_mut(&k) {
                    if let Some(names) = values.get_mut(&v) {
                        names.remove(name);
                        if names.is_empty() {
                            values.remove(&v);
                        }
                    }
                    if values.is_empty() {
                        self.by_pair.remove(&k);
                    }
                }
            }
            None => {
                self.unindexed.remove(name);
            }
        }
    }
}

impl Registry {
    /// Registers `selector` for `namespace/name`, replacing what it registered before.
    pub fn register(&mut self, key: &str, selector: String) {
        let (namespace, name) = key.split_once('/').unwrap_or(("", key));
        self.by_namespace
            .entry(namespace.to_string())
            .or_default()
            .insert(name, selector);
    }

    /// Every `(name, selector)` registration of `namespace`, by name.
    #[cfg(test)]
    pub fn of<'a>(&'a self, namespace: &str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.by_namespace
            .get(namespace)
            .into_iter()
            .flat_map(|ns| ns.selectors.iter())
            .map(|(name, r)| (name.as_str(), r.selector.as_str()))
    }

    /// The `(name, selector)` registrations of `namespace` that could select a pod with one
    /// of `labels`, by name: every registration that does select one is among them.
    pub fn candidates<'a, 'l>(
        &'a self,
        namespace: &str,
        labels: impl IntoIterator<Item = &'l scaling::selector::Labels>,
    ) -> Vec<(&'a str, &'a str)> {
        let Some(ns) = self.by_namespace.get(namespace) else {
            return Vec::new();
        };
        let mut names: BTreeSet<&'a str> = ns.unindexed.iter().map(String::as_str).collect();
        for set in labels {
            for (k, v) in set {
                if let Some(found) = ns.by_pair.get(k).and_then(|values| values.get(v)) {
                    names.extend(found.iter().map(String::as_str));
                }
            }
        }
        names
            .into_iter()
            .filter_map(|name| {
                ns.selectors
                    .get_key_value(name)
                    .map(|(n, r)| (n.as_str(), r.selector.as_str()))
            })
            .collect()
    }

    /// Every registered `namespace/name`.
    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        self.by_namespace.iter().flat_map(|(ns, names)| {
            names
                .selectors
                .keys()
                .map(move |name| format!("{ns}/{name}"))
        })
    }

    /// Keeps the registrations whose `namespace/name` `keep` holds.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        for (ns, names) in &mut self.by_namespace {
            let dropped: Vec<String> = names
                .selectors
                .keys()
                .filter(|name| !keep(&format!("{ns}/{name}")))
                .cloned()
                .collect();
            for name in dropped {
                names.remove(&name);
            }
        }
        self.by_namespace
            .retain(|_, names| !names.selectors.is_empty());
    }

    /// How many AutoScalers are registered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_namespace
            .values()
            .map(|ns| ns.selectors.len())
            .sum()
    }

    /// Whether none is.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.by_namespace.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scaling::selector::{Labels, Selector};

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_registry_answers_for_one_namespace_and_forgets_what_is_dropped() {
        let mut registry = Registry::default();
        registry.register("shop/web", "app=web".into());
        registry.register("shop/api", "app=api".into());
        registry.register("other/web", "app=web".into());
        registry.register("shop/web", "app=web,tier=front".into());
        let shop: Vec<(&str, &str)> = registry.of("shop").collect();
        assert_eq!(shop, [("api", "app=api"), ("web", "app=web,tier=front")]);
        assert_eq!(registry.of("nowhere").count(), 0);
        assert_eq!(registry.len(), 3);
        registry.retain(|key| key != "other/web");
        assert_eq!(registry.of("other").count(), 0);
        assert!(
            !registry.by_namespace.contains_key("other"),
            "an emptied namespace is dropped"
        );
        let mut keys: Vec<String> = registry.keys().collect();
        keys.sort();
        assert_eq!(keys, ["shop/api", "shop/web"]);
    }

    #[test]
    fn candidates_are_the_selectors_that_could_select_one_of_the_pods() {
        let mut registry = Registry::default();
        registry.register("shop/web", "app=web".into());
        registry.register("shop/web-canary", "app in (web),track=canary".into());
        registry.register("shop/api", "app=api".into());
        registry.register("shop/tiered", "tier".into());
        registry.register("shop/broken", "app=(".into());
        registry.register("shop/unread", String::new());
        registry.register("other/web", "app=web".into());
        let pods = [labels(&[("app", "web"), ("track", "stable")])];
        let names: Vec<&str> = registry
            .candidates("shop", &pods)
            .iter()
            .map(|(n, _)| *n)
            .collect();
        // The set-based, empty and unparsable selectors stay candidates: the core judges them.
        assert_eq!(
            names,
            ["broken", "tiered", "unread", "web", "web-canary"],
            "app=api requires a pair no pod has"
        );
        assert_eq!(registry.candidates("nowhere", &pods), []);
    }

    #[test]
    fn a_changed_selector_is_indexed_by_its_new_pair_only() {
        let mut registry = Registry::default();
        registry.register("shop/web", "app=web".into());
        registry.register("shop/web", "app=store".into());
        let web = [labels(&[("app", "web")])];
        assert_eq!(registry.candidates("shop", &web), []);
        let store = [labels(&[("app", "store")])];
        assert_eq!(registry.candidates("shop", &store), [("web", "app=store")]);
        registry.register("shop/web", "app notin (x)".into());
        assert_eq!(
            registry.candidates("shop", &web),
            [("web", "app notin (x)")]
        );
        registry.retain(|_| false);
        assert!(registry.is_empty());
    }

    /// Whatever the selectors and labels, a registration that selects one of the pods is a
    /// candidate: the index may only leave out selectors that match none.
    #[test]
    fn no_selector_that_matches_a_pod_is_left_out() {
        let selectors = [
            "app=web",
            "app==web",
            "app in (web)",
            "app in (web,api)",
            "app!=web",
            "app notin (api)",
            "app",
            "!app",
            "app=web,tier=front",
            "tier=front,app=web",
            "tier in (front),app",
            "",
            "app=(",
        ];
        let pod_labels = [
            labels(&[]),
            labels(&[("app", "web")]),
            labels(&[("app", "api")]),
            labels(&[("app", "web"), ("tier", "front")]),
            labels(&[("tier", "front")]),
            labels(&[("tier", "back"), ("app", "api")]),
        ];
        let mut registry = Registry::default();
        for (i, s) in selectors.iter().enumerate() {
            registry.register(&format!("ns/s{i:02}"), s.to_string());
        }
        for pods in pod_labels.iter().map(std::slice::from_ref) {
            let candidates = registry.candidates("ns", pods);
            for (i, s) in selectors.iter().enumerate() {
                let name = format!("s{i:02}");
                let matches = !s.is_empty()
                    && Selector::parse(s).is_ok_and(|sel| pods.iter().any(|p| sel.matches(p)));
                if matches {
                    assert!(
                        candidates.iter().any(|(n, _)| *n == name),
                        "{s:?} selects {pods:?} but is no candidate"
                    );
                }
            }
        }
    }
}
