//! The scale subresource of any kind that has one, found through discovery.
//!
//! Upstream resolves `scaleTargetRef` by GroupKind (the version in `apiVersion` is ignored) and
//! reads `…/{resource}/{name}/scale`. We do the same with kube's discovery, cached per API
//! group for one sync period, so custom resources with a scale subresource work too.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::autoscaling::v1::Scale;
use kube::api::{Api, DynamicObject, PostParams};
use kube::discovery::{ApiGroup, ApiResource, oneshot};
use kube::{Client, ResourceExt};
use tokio::sync::Mutex;

/// Why the target's scale could not be read or written. The Display text ends up in the
/// `FailedGetScale` / `FailedRescale` events and the `AbleToScale` condition.
#[derive(Debug, thiserror::Error)]
pub enum ScaleError {
    /// `scaleTargetRef.apiVersion` is not `version` or `group/version`.
    #[error(
        "invalid API version {0:?} in scaleTargetRef: use \"group/version\" such as \"apps/v1\""
    )]
    BadApiVersion(String),
    /// Discovery does not know the group or kind.
    #[error("unable to determine the resource for {kind} in group {group:?}: {detail}")]
    UnknownKind {
        /// The API group.
        group: String,
        /// The kind.
        kind: String,
        /// What discovery said.
        detail: String,
    },
    /// The kind exists but has no scale subresource.
    #[error("{resource} has no scale subresource, so it cannot be autoscaled")]
    NoScaleSubresource {
        /// `resource.group`.
        resource: String,
    },
    /// The API call failed.
    #[error("{0}")]
    Api(#[from] kube::Error),
}

/// A resolved scale target.
#[derive(Clone)]
pub struct Target {
    api: Api<DynamicObject>,
    /// The target's name.
    pub name: String,
}

impl Target {
    /// Reads the scale (`GET …/scale`).
    pub async fn get(&self) -> Result<Scale, ScaleError> {
        Ok(self.api.get_scale(&self.name).await?)
    }

    /// Writes `replicas` with the whole Scale from the last GET, so the resourceVersion gives
    /// optimistic concurrency. Like upstream (client-go `DefaultRetry`), a 409 Conflict is
    /// retried up to 5 attempts after re-reading the scale; desired replicas are not recomputed.
    pub async fn write(&self, mut scale: Scale, replicas: i32) -> Result<Scale, ScaleError> {
        const ATTEMPTS: u32 = 5;
        let mut attempt = 1;
        loop {
            let mut spec = scale.spec.clone().unwrap_or_default();
            spec.replicas = Some(replicas);
            scale.spec = Some(spec);
            match self
                .api
                .replace_scale(&self.name, &PostParams::default(), &scale)
                .await
            {
                Ok(written) => return Ok(written),
                Err(err) if attempt < ATTEMPTS && is_conflict(&err) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    match self.api.get_scale(&self.name).await {
                        Ok(fresh) => scale = fresh,
                        Err(get_err) => {
                            tracing::warn!(error = %get_err, "re-reading the scale after a conflict failed; retrying with the old object");
                        }
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
}

fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409)
}

/// Resolves scale targets, caching discovery per API group.
pub struct Resolver {
    client: Client,
    ttl: Duration,
    groups: Mutex<HashMap<String, (Instant, ApiGroup)>>,
}

impl Resolver {
    /// A resolver whose discovery answers are reused for `ttl` (the sync period, like upstream).
    pub fn new(client: Client, ttl: Duration) -> Self {
        Resolver {
            client,
            ttl,
            groups: Mutex::new(HashMap::new()),
        }
    }

    /// Finds the scale subresource of `kind` in `api_version`'s group, in `namespace`.
    pub async fn resolve(
        &self,
        namespace: &str,
        api_version: Option<&str>,
        kind: &str,
        name: &str,
    ) -> Result<Target, ScaleError> {
        let group = group_of(api_version.unwrap_or(""))?;
        let resource = self.resource_for(&group, kind).await?;
        Ok(Target {
            api: Api::namespaced_with(self.client.clone(), namespace, &resource),
            name: name.to_string(),
        })
    }

    async fn resource_for(&self, group: &str, kind: &str) -> Result<ApiResource, ScaleError> {
        let unknown = |detail: String| ScaleError::UnknownKind {
            group: group.to_string(),
            kind: kind.to_string(),
            detail,
        };
        let mut groups = self.groups.lock().await;
        let fresh = groups
            .get(group)
            .is_some_and(|(at, _)| at.elapsed() < self.ttl);
        if !fresh {
            let discovered = oneshot::group(&self.client, group)
                .await
                .map_err(|e| unknown(e.to_string()))?;
            groups.insert(group.to_string(), (Instant::now(), discovered));
        }
        let (_, api_group) = groups
            .get(group)
            .ok_or_else(|| unknown("discovery returned nothing".into()))?;
        let (resource, caps) = api_group
            .recommended_kind(kind)
            .ok_or_else(|| unknown(format!("no kind {kind} is served")))?;
        if !caps
            .subresources
            .iter()
            .any(|(sub, _)| sub.plural == "scale")
        {
            return Err(ScaleError::NoScaleSubresource {
                resource: if resource.group.is_empty() {
                    resource.plural.clone()
                } else {
                    format!("{}.{}", resource.plural, resource.group)
                },
            });
        }
        Ok(resource)
    }
}

/// The group of an `apiVersion` (`apps/v1` → `apps`, `v1` → core `""`).
pub fn group_of(api_version: &str) -> Result<String, ScaleError> {
    let bad = || ScaleError::BadApiVersion(api_version.to_string());
    match api_version.split('/').collect::<Vec<_>>().as_slice() {
        [""] => Ok(String::new()),
        [version] if !version.is_empty() => Ok(String::new()),
        [group, version] if !group.is_empty() && !version.is_empty() => Ok((*group).to_string()),
        _ => Err(bad()),
    }
}

/// `Kind/name`, as `kubectl get hpa` prints REFERENCE.
pub fn reference(kind: &str, name: &str) -> String {
    format!("{kind}/{name}")
}

/// The object's key for logs and maps.
pub fn key(obj: &impl ResourceExt) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_version_groups_follow_kubernetes_rules() {
        assert_eq!(group_of("apps/v1").expect("apps"), "apps");
        assert_eq!(group_of("v1").expect("core"), "");
        assert_eq!(
            group_of("").expect("empty means core, as upstream parses it"),
            ""
        );
        assert_eq!(
            group_of("example.com/v1alpha1").expect("crd"),
            "example.com"
        );
    }

    #[test]
    fn malformed_api_versions_are_rejected_with_the_fix() {
        for bad in ["apps/v1/extra", "/v1", "apps/"] {
            let err = group_of(bad).expect_err(bad).to_string();
            assert!(err.contains("apps/v1"), "{bad}: {err}");
        }
    }
}
