//! Which versions of the metrics APIs to use (`GET /apis`, cached for the discovery TTL), and
//! the kind-to-resource mapping of an Object metric's described object (upstream's REST mapper).

use std::future::Future;
use std::time::Instant;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIGroupList, APIResourceList};

use super::{
    ApiVersions, Call, CustomMetricsVersion, MetricsClient, ObjectTarget, ResourceMetricsVersion,
};
use crate::api_types;
use crate::encode::uri;
use crate::error::{Error, MetricsApi, Result};

/// One `GET /apis`, shared by every caller that asks while it runs, and kept with the instant
/// it ended.
pub(super) type Discovery = Shared<BoxFuture<'static, (Instant, Result<ApiVersions>)>>;

impl MetricsClient {
    /// Drops cached discovery and kind-to-resource mappings. The operator
    /// calls this once per sync period, as upstream does.
    pub async fn invalidate_discovery(&self) {
        *self
            .state
            .discovery
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        if let Ok(mut m) = self.state.mappings.lock() {
            m.clear();
        }
    }

    /// The API versions to use, from cache or a fresh `GET /apis`. Callers that ask while one
    /// is in flight wait for that one; no lock is held while it runs, and a failure is kept for
    /// [`ClientConfig::failed_discovery_ttl`](super::ClientConfig::failed_discovery_ttl).
    pub async fn api_versions(&self) -> Result<ApiVersions> {
        let discovery = {
            let mut slot = self
                .state
                .discovery
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match slot.as_ref().filter(|d| self.still_valid(d)) {
                Some(d) => d.clone(),
                None => {
                    let d = self.discover().boxed().shared();
                    *slot = Some(d.clone());
                    d
                }
            }
        };
        discovery.await.1
    }

    /// In flight (join it), or answered recently enough to reuse.
    fn still_valid(&self, discovery: &Discovery) -> bool {
        match discovery.peek() {
            None => true,
            Some((at, Ok(_))) => at.elapsed() < self.config.discovery_ttl,
            Some((at, Err(_))) => {
                at.elapsed()
                    < self
                        .config
                        .failed_discovery_ttl
                        .min(self.config.discovery_ttl)
            }
        }
    }

    fn discover(&self) -> impl Future<Output = (Instant, Result<ApiVersions>)> + Send + 'static {
        // A client with state of its own: the future is kept in this client's state, which a
        // clone of this client would then keep alive for good.
        let client = MetricsClient::with_config(self.client.clone(), self.config.clone());
        async move {
            let call = Call {
                api: MetricsApi::Custom,
                version: "v1beta2",
                what: String::new(),
                uri: "/apis".to_string(),
            };
            let groups: Result<APIGroupList> = client.get_json(&call, "APIGroupList").await;
            let versions = groups.map(|g| choose_versions(&g));
            tracing::debug!(?versions, "discovered metrics API versions");
            (Instant::now(), versions)
        }
    }

    pub(super) async fn resource_version(&self) -> ResourceMetricsVersion {
        match self.api_versions().await {
            Ok(v) => v.resource,
            Err(err) => {
                // Upstream's resource metrics client does not depend on
                // discovery; neither should we: fall back to v1beta1.
                tracing::warn!(%err, "discovery failed, using metrics.k8s.io/v1beta1");
                ResourceMetricsVersion::V1beta1
            }
        }
    }

    pub(super) async fn custom_version(&self) -> Result<CustomMetricsVersion> {
        let versions = self
            .api_versions()
            .await
            .map_err(|e| relabel(e, MetricsApi::Custom))?;
        versions.custom.map_err(|upstream| Error::NotRegistered {
            api: MetricsApi::Custom,
            upstream,
        })
    }

    /// Resolves an Object metric's `describedObject` (`apiVersion`, `kind`,
    /// `name`) to its request path, like upstream's REST mapper: the
    /// Namespace kind is special, anything else is looked up in
    /// `GET /apis/<group>/<version>` (or `/api/v1`) and cached.
    pub async fn object_target(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
    ) -> Result<ObjectTarget> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        if kind == "Namespace" && group.is_empty() {
            return Ok(ObjectTarget::Namespace);
        }
        let group_kind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let key = (api_version.to_string(), kind.to_string());
        if let Some(resource) = self
            .state
            .mappings
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(ObjectTarget::Object {
                resource,
                name: name.to_string(),
            });
        }
        let path = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let call = Call {
            api: MetricsApi::Custom,
            version: "v1beta2",
            what: String::new(),
            uri: uri(&path, &[]),
        };
        let mapping_error = |detail: String| Error::ResourceMapping {
            group_kind: group_kind.clone(),
            detail,
        };
        let list: APIResourceList = self
            .get_json(&call, "APIResourceList")
            .await
            .map_err(|e| mapping_error(e.upstream_cause()))?;
        let plural = list
            .resources
            .iter()
            .find(|r| r.kind == kind && !r.name.contains('/'))
            .map(|r| r.name.clone())
            .ok_or_else(|| {
                mapping_error(format!(
                    "no matches for kind {kind:?} in version {api_version:?}"
                ))
            })?;
        // Go's GroupResource.String(): the bare resource for the core group.
        let resource = if group.is_empty() {
            plural
        } else {
            format!("{plural}.{group}")
        };
        if let Ok(mut m) = self.state.mappings.lock() {
            m.insert(key, resource.clone());
        }
        Ok(ObjectTarget::Object {
            resource,
            name: name.to_string(),
        })
    }
}

/// Chooses versions from the group list, as upstream does: for custom
/// metrics the group's preferred version if we know it, else the first
/// listed version we know.
fn choose_versions(groups: &APIGroupList) -> ApiVersions {
    let find = |name: &str| groups.groups.iter().find(|g| g.name == name);
    let resource = match find(api_types::METRICS_GROUP) {
        Some(g) if g.versions.iter().any(|v| v.version == "v1") => ResourceMetricsVersion::V1,
        _ => ResourceMetricsVersion::V1beta1,
    };
    let known = |group_version: &str| match group_version {
        "custom.metrics.k8s.io/v1beta2" => Some(CustomMetricsVersion::V1beta2),
        "custom.metrics.k8s.io/v1beta1" => Some(CustomMetricsVersion::V1beta1),
        _ => None,
    };
    let custom = match find(api_types::CUSTOM_METRICS_GROUP) {
        None => Err("no custom metrics API (custom.metrics.k8s.io) registered".to_string()),
        Some(g) => g
            .preferred_version
            .as_ref()
            .and_then(|p| known(&p.group_version))
            .or_else(|| g.versions.iter().find_map(|v| known(&v.group_version)))
            .ok_or_else(|| "no known available metric versions found".to_string()),
    };
    ApiVersions { resource, custom }
}

fn relabel(e: Error, api: MetricsApi) -> Error {
    match e {
        Error::Timeout {
            request,
            apiservice,
            timeout,
            apiservice_state,
            ..
        } => Error::Timeout {
            api,
            request,
            apiservice,
            timeout,
            apiservice_state,
        },
        Error::Transport {
            detail,
            apiservice_state,
            ..
        } => Error::Transport {
            api,
            detail,
            apiservice_state,
        },
        Error::Status {
            code,
            request,
            upstream,
            apiservice_state,
            ..
        } => Error::Status {
            api,
            code,
            request,
            upstream,
            apiservice_state,
        },
        Error::ServiceUnavailable {
            apiservice,
            apiservice_check,
            upstream,
            ..
        } => Error::ServiceUnavailable {
            api,
            apiservice,
            apiservice_check,
            upstream,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIGroup, GroupVersionForDiscovery};

    fn group(name: &str, preferred: Option<&str>, versions: &[&str]) -> APIGroup {
        let gv = |v: &str| GroupVersionForDiscovery {
            group_version: format!("{name}/{v}"),
            version: v.to_string(),
        };
        APIGroup {
            name: name.to_string(),
            preferred_version: preferred.map(gv),
            versions: versions.iter().map(|v| gv(v)).collect(),
            server_address_by_client_cidrs: None,
        }
    }

    #[test]
    fn discovery_prefers_metrics_v1_and_custom_preferred_version() {
        let groups = APIGroupList {
            groups: vec![
                group("metrics.k8s.io", Some("v1"), &["v1", "v1beta1"]),
                group(
                    "custom.metrics.k8s.io",
                    Some("v1beta2"),
                    &["v1beta2", "v1beta1"],
                ),
            ],
        };
        let v = choose_versions(&groups);
        assert_eq!(v.resource, ResourceMetricsVersion::V1);
        assert_eq!(v.custom, Ok(CustomMetricsVersion::V1beta2));
    }

    #[test]
    fn discovery_falls_back_to_v1beta1_and_first_known_custom_version() {
        let groups = APIGroupList {
            groups: vec![
                group("metrics.k8s.io", Some("v1beta1"), &["v1beta1"]),
                group("custom.metrics.k8s.io", Some("v2"), &["v2", "v1beta1"]),
            ],
        };
        let v = choose_versions(&groups);
        assert_eq!(v.resource, ResourceMetricsVersion::V1beta1);
        assert_eq!(v.custom, Ok(CustomMetricsVersion::V1beta1));
    }

    #[test]
    fn discovery_without_custom_metrics_group_gives_upstream_text() {
        let v = choose_versions(&APIGroupList { groups: vec![] });
        assert_eq!(v.resource, ResourceMetricsVersion::V1beta1);
        assert_eq!(
            v.custom,
            Err("no custom metrics API (custom.metrics.k8s.io) registered".to_string())
        );
        let unknown = APIGroupList {
            groups: vec![group("custom.metrics.k8s.io", Some("v9"), &["v9"])],
        };
        assert_eq!(
            choose_versions(&unknown).custom,
            Err("no known available metric versions found".to_string())
        );
    }
}
