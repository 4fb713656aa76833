//! Scaling lag per AutoScaler, measured from the newest PodMetrics sample a decision read: to
//! the decision, to its scale write, and to the pods it asked for being Ready.
//!
//! The Ready stage is seen by the pod watch, not by a later reconcile: a reconcile comes one
//! sync period or one metrics resolution later, which would be the error of the figure. After
//! a scale-up, [`ReadyWatch::expect`] records how many Ready pods the write asked for; every
//! pod event of that namespace then counts the target's Ready pods in the pod index, and the
//! first count that reaches the size ends the wait. A new scale of the same AutoScaler
//! replaces the wait (the pods of the older one are now part of the newer one).

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::jiff::Timestamp;

use crate::index::NamespaceIndex;
use crate::pods::CachedPod;

/// The newest sample time in a PodMetrics answer, if it had any.
pub fn newest_sample(metrics: &[scaling::PodMetrics]) -> Option<Timestamp> {
    metrics
        .iter()
        .map(|m| crate::kube_core::time_out(m.timestamp))
        .max()
}

/// Seconds from `from` to `to` (negative when a kubelet's clock is ahead: reported as it is,
/// so a skewed clock shows instead of being hidden).
pub fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64()
}

/// One scale-up waiting for its pods.
#[derive(Debug, Clone)]
struct Waiting {
    selector: scaling::Selector,
    want: usize,
    sample: Timestamp,
}

/// A scale-up's pods that became Ready: who, and seconds from the sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrived {
    /// The AutoScaler's name.
    pub name: String,
    /// Seconds from the sample to the last pod being Ready.
    pub seconds: f64,
}

/// The scale-ups waiting for their pods, and the waits that ended, per namespace; see the
/// module docs.
#[derive(Debug, Default)]
pub struct ReadyWatch {
    waiting: Mutex<HashMap<String, HashMap<String, Waiting>>>,
    arrived: Mutex<HashMap<(String, String), f64>>,
}

impl ReadyWatch {
    /// A scale-up of `namespace/name` to `want` pods matching `selector`, decided on a sample
    /// taken at `sample`. Replaces an earlier wait of the same AutoScaler.
    pub fn expect(
        &self,
        namespace: &str,
        name: &str,
        selector: scaling::Selector,
        want: usize,
        sample: Timestamp,
    ) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.entry(namespace.to_string()).or_default().insert(
            name.to_string(),
            Waiting {
                selector,
                want,
                sample,
            },
        );
    }

    /// Stops waiting for `namespace/name` (it scaled down, or it was deleted).
    pub fn cancel(&self, namespace: &str, name: &str) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ns) = waiting.get_mut(namespace) {
            ns.remove(name);
            if ns.is_empty() {
                waiting.remove(namespace);
            }
        }
    }

    /// After a pod event in `namespace` at `now`: the waits whose pods are all Ready now, ended
    /// and returned. Costs one map lookup when nothing in the namespace waits.
    pub fn pods_changed(
        &self,
        index: &NamespaceIndex<CachedPod>,
        namespace: &str,
        now: Timestamp,
    ) -> Vec<Arrived> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let Some(ns) = waiting.get_mut(namespace) else {
            return Vec::new();
        };
        let mut done = Vec::new();
        ns.retain(|name, w| {
            let ready = index
                .select(namespace, &w.selector)
                .iter()
                .filter(|p| p.ready())
                .count();
            if ready >= w.want {
                done.push(Arrived {
                    name: name.clone(),
                    seconds: seconds(w.sample, now),
                });
                false
            } else {
                true
            }
        });
        if ns.is_empty() {
            waiting.remove(namespace);
        }
        drop(waiting);
        if !done.is_empty() {
            let mut arrived = self.arrived.lock().unwrap_or_else(|e| e.into_inner());
            for a in &done {
                arrived.insert((namespace.to_string(), a.name.clone()), a.seconds);
            }
        }
        done
    }

    /// The pods-Ready lag measured for `namespace/name` since the last call, for its status.
    pub fn take_arrived(&self, namespace: &str, name: &str) -> Option<f64> {
        self.arrived
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(namespace.to_string(), name.to_string()))
    }

    /// How many AutoScalers wait for their pods.
    pub fn waiting(&self) -> usize {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(HashMap::len)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::watcher;

    fn pod(name: &str, app: &str, is_ready: bool) -> CachedPod {
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": app}},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": if is_ready { "True" } else { "False" }}]}
        }))
        .expect("pod");
        CachedPod::from(&pod)
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).expect("in range")
    }

    fn selector(text: &str) -> scaling::Selector {
        scaling::Selector::parse(text).expect("selector")
    }

    #[test]
    fn a_scale_up_ends_its_wait_when_the_last_asked_for_pod_is_ready() {
        let (index, mut writer) = NamespaceIndex::<CachedPod>::new();
        writer.apply(watcher::Event::Init);
        writer.apply(watcher::Event::InitApply(pod("web-1", "web", true)));
        writer.apply(watcher::Event::InitApply(pod("api-1", "api", true)));
        writer.apply(watcher::Event::InitDone);
        let watch = ReadyWatch::default();
        watch.expect("shop", "web", selector("app=web"), 3, at(0));
        assert_eq!(watch.waiting(), 1);

        writer.apply(watcher::Event::Apply(pod("web-2", "web", true)));
        writer.apply(watcher::Event::Apply(pod("web-3", "web", false)));
        // Ready pods of another target do not count.
        writer.apply(watcher::Event::Apply(pod("api-2", "api", true)));
        assert!(watch.pods_changed(&index, "shop", at(4)).is_empty());
        assert!(watch.pods_changed(&index, "other", at(4)).is_empty());

        writer.apply(watcher::Event::Apply(pod("web-3", "web", true)));
        let arrived = watch.pods_changed(&index, "shop", at(7));
        assert_eq!(
            arrived,
            [Arrived {
                name: "web".into(),
                seconds: 7.0
            }]
        );
        assert_eq!(watch.waiting(), 0);
        assert_eq!(watch.take_arrived("shop", "web"), Some(7.0));
        assert_eq!(watch.take_arrived("shop", "web"), None);
        // Ended: later pod events measure nothing more.
        assert!(watch.pods_changed(&index, "shop", at(9)).is_empty());
    }

    #[test]
    fn a_newer_scale_replaces_the_wait_and_a_cancelled_one_ends_unmeasured() {
        let (index, mut writer) = NamespaceIndex::<CachedPod>::new();
        writer.apply(watcher::Event::Init);
        writer.apply(watcher::Event::InitApply(pod("web-1", "web", true)));
        writer.apply(watcher::Event::InitApply(pod("web-2", "web", true)));
        writer.apply(watcher::Event::InitDone);
        let watch = ReadyWatch::default();
        watch.expect("shop", "web", selector("app=web"), 2, at(0));
        watch.expect("shop", "web", selector("app=web"), 4, at(10));
        assert!(watch.pods_changed(&index, "shop", at(11)).is_empty());
        watch.cancel("shop", "web");
        assert_eq!(watch.waiting(), 0);
        assert!(watch.pods_changed(&index, "shop", at(12)).is_empty());
    }

    #[test]
    fn the_newest_sample_is_the_latest_timestamp() {
        let m = |secs: i64| scaling::PodMetrics {
            name: format!("p{secs}"),
            timestamp: crate::kube_core::time_in(&at(secs)),
            window: scaling::Duration::from_nanos(15_000_000_000),
            containers: vec![],
        };
        assert_eq!(newest_sample(&[m(3), m(9), m(5)]), Some(at(9)));
        assert_eq!(newest_sample(&[]), None);
        assert!((seconds(at(9), at(10)) - 1.0).abs() < 1e-9);
    }
}
