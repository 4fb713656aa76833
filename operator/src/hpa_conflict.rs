//! Built-in HorizontalPodAutoscalers that control the same pods as an AutoScaler.
//!
//! Two controllers writing one scale subresource fight: each undoes the other's write every
//! sync. Upstream refuses to act when two HPAs select the same pods (`AmbiguousSelector`);
//! Tidal extends that check to the built-in HPAs beside it and reports the overlap as a
//! `ConflictingHPA` condition. In `Active` mode the AutoScaler then does not write the scale;
//! in `Shadow` and `Paused` modes (which never write) the condition is informational, since a
//! Shadow AutoScaler beside an HPA is the intended way to compare the two.
//!
//! What "the same pods" means, as upstream's `AmbiguousSelector` check: an HPA conflicts when
//! it has the same `scaleTargetRef` (group, kind, name; the version is ignored, as upstream
//! resolves targets), or when the selector of its target's scale subresource matches any of
//! the AutoScaler's pods. HPAs come from one shared, pruned watch (like the pods), never a
//! LIST per reconcile; selectors of other targets are read through the scale subresource and
//! kept for one sync period.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::index::NamespaceIndex;
use futures::{StreamExt, future};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec,
};
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use scaling::ConditionStatus;
use tokio::sync::Mutex;

use crate::scale::{self, Resolver};

/// The condition type Tidal adds to an AutoScaler's status.
pub const CONDITION: &str = scaling::conditions::CONFLICTING_HPA;
/// `ConflictingHPA` reason when an HPA has the same `scaleTargetRef`.
pub const REASON_SAME_TARGET: &str = "SameScaleTarget";
/// `ConflictingHPA` reason when an HPA's target selects some of the same pods.
pub const REASON_OVERLAPPING: &str = "OverlappingSelector";
/// `ConflictingHPA=Unknown` reason before the HPA watch has listed once.
pub const REASON_NOT_SYNCED: &str = "HPACacheNotSynced";
/// `ScalingActive=False` reason, and the Warning event's reason, in `Active` mode: the
/// condition's own name, so one word finds all three.
pub const SCALING_BLOCKED: &str = scaling::conditions::CONFLICTING_HPA;

/// Strips an HPA to what the overlap check reads: name, namespace and `scaleTargetRef`.
pub fn prune(hpa: &mut HorizontalPodAutoscaler) {
    let meta = &mut hpa.metadata;
    meta.annotations = None;
    meta.labels = None;
    meta.managed_fields = None;
    meta.owner_references = None;
    meta.finalizers = None;
    let spec = std::mem::take(&mut hpa.spec);
    hpa.spec = HorizontalPodAutoscalerSpec {
        scale_target_ref: spec.scale_target_ref,
        max_replicas: spec.max_replicas,
        ..Default::default()
    };
    hpa.status = None;
}

/// Starts the HPA watch. The returned future drives it for the life of the controller; the
/// `watch` channel turns true once the first list is complete (before that, "no HPA" would be
/// a guess). A watch error is logged and retried with backoff, never fatal.
pub fn cache(
    client: Client,
    namespace: Option<&str>,
) -> (
    NamespaceIndex<HorizontalPodAutoscaler>,
    tokio::sync::watch::Receiver<bool>,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let api: Api<HorizontalPodAutoscaler> = match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    // Indexed by namespace: a reconcile reads its own namespace's HPAs, not every HPA.
    let (index, mut writer) = NamespaceIndex::new();
    let (synced_tx, synced_rx) = tokio::sync::watch::channel(false);
    let stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(prune);
    let driver = stream.for_each(move |event| {
        match event {
            Ok(event) => {
                let listed = matches!(event, watcher::Event::InitDone);
                writer.apply(event);
                if listed {
                    let _ = synced_tx.send(true);
                }
            }
            Err(err) => tracing::warn!(
                error = %err,
                "HorizontalPodAutoscaler watch error (needs list and watch on horizontalpodautoscalers.autoscaling); retrying"
            ),
        }
        future::ready(())
    });
    (index, synced_rx, driver)
}

/// A scale target as upstream compares them: group, kind and name (the version is ignored).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetKey {
    /// API group (`apps`, `""` for core).
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
}

impl TargetKey {
    /// The key of a `scaleTargetRef`; `None` when its `apiVersion` is malformed (such a target
    /// cannot be resolved by anyone, so it conflicts with nothing).
    pub fn of(api_version: Option<&str>, kind: &str, name: &str) -> Option<Self> {
        Some(TargetKey {
            group: scale::group_of(api_version.unwrap_or("")).ok()?.to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
        })
    }

    fn of_hpa(r: &CrossVersionObjectReference) -> Option<Self> {
        Self::of(r.api_version.as_deref(), &r.kind, &r.name)
    }
}

/// One HPA that controls some of the AutoScaler's pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// `namespace/name` of the HPA.
    pub hpa: String,
    /// The selector of the HPA's target (the pods it counts).
    pub selector: String,
    /// The HPA has the same `scaleTargetRef` as the AutoScaler.
    pub same_target: bool,
}

/// What the overlap check found for one AutoScaler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlap {
    /// No built-in HPA controls these pods.
    None,
    /// These HPAs do (sorted by name).
    Conflicts(Vec<Conflict>),
    /// The HPA watch has not listed yet; nobody can say.
    Unknown,
}

/// Decides whether one HPA conflicts with the AutoScaler whose target is `own` and whose pods
/// (already those its selector lists) are `pods`. `hpa_selector` is the selector of the HPA's
/// target, needed only when the targets differ (`None`: unknown, no conflict claimed).
pub fn conflict(
    own: &TargetKey,
    own_selector: &str,
    pods: &[scaling::Pod],
    hpa_key: &str,
    hpa_target: &TargetKey,
    hpa_selector: Option<&str>,
) -> Option<Conflict> {
    if hpa_target == own {
        return Some(Conflict {
            hpa: hpa_key.to_string(),
            selector: own_selector.to_string(),
            same_target: true,
        });
    }
    let selector_text = hpa_selector.filter(|s| !s.is_empty())?;
    // An unparsable selector is never registered by upstream either.
    let selector = scaling::Selector::parse(selector_text).ok()?;
    pods.iter()
        .any(|p| selector.matches(&p.labels))
        .then(|| Conflict {
            hpa: hpa_key.to_string(),
            selector: selector_text.to_string(),
            same_target: false,
        })
}

/// The `ConflictingHPA` condition's `(status, reason, message)` for `overlap` in `mode`, or
/// `None` when the condition must be absent.
pub fn condition(
    overlap: &Overlap,
    active: bool,
) -> Option<(ConditionStatus, &'static str, String)> {
    match overlap {
        Overlap::None => None,
        Overlap::Unknown => Some((
            ConditionStatus::Unknown,
            REASON_NOT_SYNCED,
            format!(
                "the HorizontalPodAutoscaler watch has not listed yet, so Tidal cannot tell whether a built-in HPA controls these pods{}; check that Tidal may list and watch horizontalpodautoscalers.autoscaling",
                if active {
                    " and does not write the scale"
                } else {
                    ""
                }
            ),
        )),
        Overlap::Conflicts(list) => {
            let reason = if list.iter().any(|c| c.same_target) {
                REASON_SAME_TARGET
            } else {
                REASON_OVERLAPPING
            };
            let each: Vec<String> = list
                .iter()
                .map(|c| {
                    format!(
                        "{} ({}selector {})",
                        c.hpa,
                        if c.same_target {
                            "same scaleTargetRef, "
                        } else {
                            ""
                        },
                        c.selector
                    )
                })
                .collect();
            let what = if active {
                "Tidal does not write the scale while it exists, so the two do not fight: delete the HPA, or set spec.tidal.mode: Shadow to compare beside it"
            } else {
                "informational: this mode never writes the scale, so only the HPA does"
            };
            Some((
                ConditionStatus::True,
                reason,
                format!(
                    "built-in HorizontalPodAutoscaler {} controls the same pods; {what}",
                    each.join(", ")
                ),
            ))
        }
    }
}

type CachedSelector = (Instant, Option<String>);

/// Selectors of other HPAs' targets, read through the scale subresource and reused for one
/// sync period (an HPA with a different target is re-checked at most once per period).
pub struct SelectorCache {
    ttl: Duration,
    /// `(namespace, target)` → when read, and the selector (`None`: unreadable or unset).
    entries: Mutex<HashMap<(String, TargetKey), CachedSelector>>,
}

impl SelectorCache {
    /// A cache whose answers live for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        SelectorCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    async fn selector(
        &self,
        scales: &Resolver,
        namespace: &str,
        target: &CrossVersionObjectReference,
        key: &TargetKey,
    ) -> Option<String> {
        let slot = (namespace.to_string(), key.clone());
        if let Some((at, selector)) = self.entries.lock().await.get(&slot)
            && at.elapsed() < self.ttl
        {
            return selector.clone();
        }
        let read = async {
            let t = scales
                .resolve(
                    namespace,
                    target.api_version.as_deref(),
                    &target.kind,
                    &target.name,
                )
                .await?;
            t.get().await
        };
        let selector = match read.await {
            Ok(s) => s.status.and_then(|s| s.selector),
            Err(err) => {
                tracing::debug!(target = %target.name, error = %err, "HPA target's scale unreadable; no overlap assumed");
                None
            }
        };
        let mut entries = self.entries.lock().await;
        // Bounded by the HPAs that exist: drop what has expired whenever we add.
        let ttl = self.ttl;
        entries.retain(|_, (at, _)| at.elapsed() < ttl);
        entries.insert(slot, (Instant::now(), selector.clone()));
        selector
    }
}

/// The AutoScaler an overlap check is for.
pub struct Own<'a> {
    /// Its namespace.
    pub namespace: &'a str,
    /// Its scale target (`None`: a malformed `apiVersion`, which matches nothing).
    pub target: Option<&'a TargetKey>,
    /// Its target's selector (`""` when the scale was not read).
    pub selector: &'a str,
    /// Its pods (those its selector lists).
    pub pods: &'a [scaling::Pod],
}

/// Finds the built-in HPAs in `own.namespace` that control the AutoScaler's pods.
pub async fn find(
    hpas: &NamespaceIndex<HorizontalPodAutoscaler>,
    synced: bool,
    selectors: &SelectorCache,
    scales: &Resolver,
    own: Own<'_>,
) -> Overlap {
    let Own {
        namespace,
        target: own,
        selector: own_selector,
        pods,
    } = own;
    if !synced {
        return Overlap::Unknown;
    }
    let Some(own) = own else {
        return Overlap::None;
    };
    let mut found = Vec::new();
    let mut candidates = hpas.in_namespace(namespace);
    candidates.sort_by_key(|h| h.name_any());
    for hpa in candidates {
        let target_ref = &hpa.spec.scale_target_ref;
        let Some(target) = TargetKey::of_hpa(target_ref) else {
            continue;
        };
        let key = format!("{namespace}/{}", hpa.name_any());
        // The scale is read only when it can matter: a different target, and pods to match.
        let selector = if &target != own && !pods.is_empty() {
            selectors
                .selector(scales, namespace, target_ref, &target)
                .await
        } else {
            None
        };
        if let Some(c) = conflict(own, own_selector, pods, &key, &target, selector.as_deref()) {
            found.push(c);
        }
    }
    if found.is_empty() {
        Overlap::None
    } else {
        Overlap::Conflicts(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(group: &str, kind: &str, name: &str) -> TargetKey {
        TargetKey {
            group: group.into(),
            kind: kind.into(),
            name: name.into(),
        }
    }

    fn pod(name: &str, labels: &[(&str, &str)]) -> scaling::Pod {
        let mut p: scaling::Pod = scaling::format::parse_pod_object(
            &serde_json::json!({"metadata": {"name": name}, "status": {"phase": "Running"}}),
            "pod",
        )
        .expect("pod");
        p.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        p
    }

    #[test]
    fn an_hpa_on_the_same_target_conflicts_whatever_the_version() {
        let own = TargetKey::of(Some("apps/v1"), "Deployment", "web").expect("own");
        let theirs = TargetKey::of(Some("apps/v1beta2"), "Deployment", "web").expect("hpa");
        let c = conflict(&own, "app=web", &[], "shop/web", &theirs, None).expect("conflict");
        assert!(c.same_target);
        assert_eq!(c.selector, "app=web");
        assert_eq!(c.hpa, "shop/web");
    }

    #[test]
    fn an_hpa_on_another_kind_or_name_without_shared_pods_does_not_conflict() {
        let own = target("apps", "Deployment", "web");
        let pods = [pod("web-1", &[("app", "web")])];
        for other in [
            target("apps", "StatefulSet", "web"),
            target("apps", "Deployment", "api"),
            target("example.com", "Deployment", "web"),
        ] {
            assert_eq!(
                conflict(&own, "app=web", &pods, "shop/x", &other, Some("app=api")),
                None,
                "{other:?}"
            );
        }
    }

    #[test]
    fn an_hpa_whose_target_selects_one_of_our_pods_conflicts() {
        let own = target("apps", "Deployment", "web");
        let pods = [
            pod("web-1", &[("app", "web")]),
            pod("web-2", &[("app", "web"), ("tier", "front")]),
        ];
        let other = target("apps", "Deployment", "front");
        let c = conflict(
            &own,
            "app=web",
            &pods,
            "shop/front",
            &other,
            Some("tier=front"),
        )
        .expect("overlap on web-2");
        assert!(!c.same_target);
        assert_eq!(c.selector, "tier=front");
    }

    #[test]
    fn an_unknown_or_empty_or_invalid_hpa_selector_claims_no_overlap() {
        let own = target("apps", "Deployment", "web");
        let pods = [pod("web-1", &[("app", "web")])];
        let other = target("apps", "Deployment", "front");
        for sel in [None, Some(""), Some("app in (")] {
            assert_eq!(
                conflict(&own, "app=web", &pods, "shop/front", &other, sel),
                None,
                "{sel:?}"
            );
        }
    }

    #[test]
    fn a_malformed_target_api_version_matches_nothing() {
        assert_eq!(TargetKey::of(Some("apps/v1/x"), "Deployment", "web"), None);
    }

    #[test]
    fn the_condition_names_each_hpa_and_its_selector_and_says_what_tidal_does() {
        let overlap = Overlap::Conflicts(vec![
            Conflict {
                hpa: "shop/web".into(),
                selector: "app=web".into(),
                same_target: true,
            },
            Conflict {
                hpa: "shop/front".into(),
                selector: "tier=front".into(),
                same_target: false,
            },
        ]);
        let (status, reason, message) = condition(&overlap, true).expect("condition");
        assert_eq!((status.as_str(), reason), ("True", REASON_SAME_TARGET));
        assert!(message.contains("shop/web (same scaleTargetRef, selector app=web)"));
        assert!(message.contains("shop/front (selector tier=front)"));
        assert!(message.contains("does not write the scale"), "{message}");
        let (_, _, shadow) = condition(&overlap, false).expect("condition");
        assert!(shadow.contains("informational"), "{shadow}");
    }

    #[test]
    fn only_selector_overlaps_give_the_overlapping_selector_reason() {
        let overlap = Overlap::Conflicts(vec![Conflict {
            hpa: "shop/front".into(),
            selector: "tier=front".into(),
            same_target: false,
        }]);
        assert_eq!(
            condition(&overlap, true).map(|c| c.1),
            Some(REASON_OVERLAPPING)
        );
    }

    #[test]
    fn no_overlap_means_no_condition_and_an_unsynced_watch_means_unknown() {
        assert_eq!(condition(&Overlap::None, true), None);
        let (status, reason, message) = condition(&Overlap::Unknown, true).expect("unknown");
        assert_eq!((status.as_str(), reason), ("Unknown", REASON_NOT_SYNCED));
        assert!(message.contains("horizontalpodautoscalers.autoscaling"));
    }

    #[test]
    fn pruning_keeps_the_target_and_drops_the_rest() {
        let mut hpa: HorizontalPodAutoscaler = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "annotations": {"a": "b"},
                         "managedFields": [{"manager": "kubectl"}]},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "maxReplicas": 5,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 50}}}]},
            "status": {"desiredReplicas": 3}
        }))
        .expect("hpa");
        prune(&mut hpa);
        let spec = &hpa.spec;
        assert_eq!(spec.scale_target_ref.name, "web");
        assert!(spec.metrics.is_none());
        assert!(hpa.status.is_none());
        assert!(hpa.metadata.annotations.is_none() && hpa.metadata.managed_fields.is_none());
    }
}
