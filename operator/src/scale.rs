//! The scale subresource of any kind that has one, found through discovery.
//!
//! Upstream resolves `scaleTargetRef` by GroupKind (the version in `apiVersion` is ignored) and
//! reads `…/{resource}/{name}/scale`. We do the same with kube's discovery, cached per API
//! group for one sync period, so custom resources with a scale subresource work too.
//!
//! Discovery runs outside the cache's lock and under a timeout: one AutoScaler whose target's
//! group is served by a hanging aggregated API must not hold up the others. Reconciles that
//! need a group while its discovery runs join that one (at 10,000 AutoScalers and 50 workers,
//! each expiry of the cache entry sent ~40 discoveries of one group before). A failed discovery
//! is remembered briefly, so a missing group is not rediscovered by every reconcile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::{Api, DynamicObject, PostParams};
use kube::discovery::{ApiGroup, ApiResource, oneshot};
use kube::{Client, ResourceExt};
use prometheus::IntCounter;

use crate::admin::WatchHealth;

/// How long the discovery of one group may take. It is two requests (the group list, then the
/// group's versions); each is also bounded by the client's read timeout, but an aggregated API
/// that answers slowly, byte by byte, can outlast that. Well under the 15 s sync period, so a
/// hanging group costs its own AutoScalers one sync, not every worker.
pub const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a failed discovery is remembered. Long enough that the AutoScalers of a missing or
/// broken group share one failed discovery per sync instead of making one each; short enough
/// that a newly installed CRD or adapter is found within a sync period.
pub const FAILED_DISCOVERY_TTL: Duration = Duration::from_secs(5);

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
    /// The AutoScaler watch is failing, so this AutoScaler may no longer exist.
    #[error(
        "not writing the scale: the AutoScaler watch is failing, so this AutoScaler may have been deleted; writes resume once the watch recovers"
    )]
    AutoScalerWatchFailing,
}

/// A resolved scale target.
#[derive(Clone)]
pub struct Target {
    api: Api<DynamicObject>,
    /// The target's name.
    pub name: String,
    /// Writes are refused while this watch fails (see [`Resolver::refuse_writes_while_failing`]).
    writes_need: Option<Arc<WatchHealth>>,
    /// Counts 409 answers to scale writes (see [`Resolver::count_conflicts`]).
    conflicts: Option<IntCounter>,
}

impl Target {
    /// Reads the scale (`GET …/scale`).
    pub async fn get(&self) -> Result<Scale, ScaleError> {
        Ok(self.api.get_scale(&self.name).await?)
    }

    /// The target object's `metadata.managedFields` (a metadata-only GET: the Scale carries
    /// none, and the object's spec is not needed). Read only when replicas changed without
    /// Tidal, so the steady state costs no request.
    pub async fn managed_fields(&self) -> Result<Vec<ManagedFieldsEntry>, ScaleError> {
        let meta = self.api.get_metadata(&self.name).await?;
        Ok(meta.metadata.managed_fields.unwrap_or_default())
    }

    /// Writes `replicas` with the whole Scale from the last GET, so the resourceVersion gives
    /// optimistic concurrency. Like upstream (client-go `DefaultRetry`), a 409 Conflict is
    /// retried up to 5 attempts after re-reading the scale; desired replicas are not recomputed.
    /// The write names its field manager ([`scaling::fight::FIELD_MANAGER`]), so that Tidal's
    /// entry in the target's managedFields is told apart from other writers'.
    pub async fn write(&self, mut scale: Scale, replicas: i32) -> Result<Scale, ScaleError> {
        const ATTEMPTS: u32 = 5;
        if self.writes_need.as_ref().is_some_and(|w| !w.is_healthy()) {
            return Err(ScaleError::AutoScalerWatchFailing);
        }
        let mut attempt = 1;
        loop {
            let mut spec = scale.spec.clone().unwrap_or_default();
            spec.replicas = Some(replicas);
            scale.spec = Some(spec);
            match self
                .api
                .replace_scale(&self.name, &write_params(), &scale)
                .await
            {
                Ok(written) => return Ok(written),
                Err(err) if is_conflict(&err) && attempt < ATTEMPTS => {
                    self.count_conflict();
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    match self.api.get_scale(&self.name).await {
                        Ok(fresh) => scale = fresh,
                        Err(get_err) => {
                            tracing::warn!(error = %get_err, "re-reading the scale after a conflict failed; retrying with the old object");
                        }
                    }
                }
                Err(err) => {
                    if is_conflict(&err) {
                        self.count_conflict();
                    }
                    return Err(err.into());
                }
            }
        }
    }

    fn count_conflict(&self) {
        if let Some(counter) = &self.conflicts {
            counter.inc();
        }
    }
}

/// The parameters of a scale write: Tidal's field manager.
fn write_params() -> PostParams {
    PostParams {
        field_manager: Some(scaling::fight::FIELD_MANAGER.to_string()),
        ..PostParams::default()
    }
}

fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409)
}

/// Resolves scale targets, caching discovery per API group.
pub struct Resolver {
    client: Client,
    ttl: Duration,
    failed_ttl: Duration,
    timeout: Duration,
    /// Discovery by group, in flight or answered. A plain mutex: it is only held to read or
    /// insert an entry, never across a request.
    groups: Mutex<HashMap<String, Discovery>>,
    writes_need: Option<Arc<WatchHealth>>,
    conflicts: Option<IntCounter>,
}

/// One group's discovery, shared by every reconcile that needs the group while it runs.
type Discovery = Shared<BoxFuture<'static, Discovered>>;

/// One group's discovery answer and when it was obtained.
#[derive(Clone)]
enum Discovered {
    Found(Instant, Arc<ApiGroup>),
    Failed(Instant, String),
}

impl Resolver {
    /// A resolver whose discovery answers are reused for `ttl` (the sync period, like upstream).
    pub fn new(client: Client, ttl: Duration) -> Self {
        Self::with_timeouts(client, ttl, FAILED_DISCOVERY_TTL, DISCOVERY_TIMEOUT)
    }

    /// A resolver that reuses answers for `ttl`, failures for `failed_ttl`, and gives one
    /// discovery `timeout`.
    pub fn with_timeouts(
        client: Client,
        ttl: Duration,
        failed_ttl: Duration,
        timeout: Duration,
    ) -> Self {
        Resolver {
            client,
            ttl,
            failed_ttl,
            timeout,
            groups: Mutex::new(HashMap::new()),
            writes_need: None,
            conflicts: None,
        }
    }

    /// Makes the targets this resolver returns count every 409 Conflict their scale writes
    /// get (each is retried on a fresh read, up to the attempt limit) in `counter`.
    pub fn count_conflicts(&mut self, counter: IntCounter) {
        self.conflicts = Some(counter);
    }

    /// Makes the targets this resolver returns refuse scale writes while `watch` (the
    /// AutoScaler watch) fails. A failing watch keeps AutoScalers in the cache that the API
    /// server may no longer return (CRD deleted, RBAC revoked), and their requeues would keep
    /// writing scales on their behalf.
    pub fn refuse_writes_while_failing(&mut self, watch: Arc<WatchHealth>) {
        self.writes_need = Some(watch);
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
            writes_need: self.writes_need.clone(),
            conflicts: self.conflicts.clone(),
        })
    }

    /// The discovery of `group` to await: the one in flight, a fresh enough answer, or else a
    /// new one (started by the caller's await, run by whichever of its callers polls it).
    fn discovery(&self, group: &str) -> Discovery {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = groups.get(group).filter(|d| self.still_valid(d)) {
            return d.clone();
        }
        let d = discover(self.client.clone(), group.to_string(), self.timeout)
            .boxed()
            .shared();
        groups.insert(group.to_string(), d.clone());
        d
    }

    /// In flight (join it), or answered recently enough to reuse.
    fn still_valid(&self, discovery: &Discovery) -> bool {
        match discovery.peek() {
            None => true,
            Some(Discovered::Found(at, _)) => at.elapsed() < self.ttl,
            Some(Discovered::Failed(at, _)) => at.elapsed() < self.failed_ttl,
        }
    }

    async fn resource_for(&self, group: &str, kind: &str) -> Result<ApiResource, ScaleError> {
        let unknown = |detail: String| ScaleError::UnknownKind {
            group: group.to_string(),
            kind: kind.to_string(),
            detail,
        };
        let api_group = match self.discovery(group).await {
            Discovered::Found(_, api_group) => api_group,
            Discovered::Failed(_, detail) => return Err(unknown(detail)),
        };
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

/// Discovers `group` under `timeout`; the answer carries the instant it came.
async fn discover(client: Client, group: String, timeout: Duration) -> Discovered {
    match tokio::time::timeout(timeout, oneshot::group(&client, &group)).await {
        Ok(Ok(found)) => Discovered::Found(Instant::now(), Arc::new(found)),
        Ok(Err(err)) => Discovered::Failed(Instant::now(), err.to_string()),
        Err(_) => Discovered::Failed(
            Instant::now(),
            format!("discovery did not answer within {timeout:?}"),
        ),
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
    use axum::http::{Request, Response, StatusCode};
    use kube::client::Body;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An API server that serves discovery for `apps` (deployments with a scale subresource)
    /// and `hang.example.com`, whose versions request never answers. Counts `/apis` requests,
    /// and answers them after 20 ms so that concurrent callers overlap.
    fn api_server() -> (Client, Arc<AtomicUsize>) {
        let group_lists = Arc::new(AtomicUsize::new(0));
        let counted = group_lists.clone();
        let service = tower::service_fn(move |req: Request<Body>| {
            let counted = counted.clone();
            async move {
                let path = req.uri().path().to_string();
                let body = match path.as_str() {
                    "/apis" => {
                        counted.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                            {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                             "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}},
                            {"name": "hang.example.com",
                             "versions": [{"groupVersion": "hang.example.com/v1", "version": "v1"}],
                             "preferredVersion": {"groupVersion": "hang.example.com/v1", "version": "v1"}}
                        ]})
                    }
                    "/apis/apps/v1" => json!({"kind": "APIResourceList", "apiVersion": "v1",
                    "groupVersion": "apps/v1", "resources": [
                        {"name": "deployments", "singularName": "deployment", "namespaced": true,
                         "kind": "Deployment", "verbs": ["get", "list", "update"]},
                        {"name": "deployments/scale", "singularName": "", "namespaced": true,
                         "group": "autoscaling", "version": "v1", "kind": "Scale",
                         "verbs": ["get", "update"]}
                    ]}),
                    "/apis/hang.example.com/v1" => futures::future::pending().await,
                    _ => {
                        return Ok::<_, std::convert::Infallible>(
                            Response::builder()
                                .status(StatusCode::NOT_FOUND)
                                .body(Body::from(
                                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                           "reason": "NotFound", "code": 404, "message": path})
                                    .to_string()
                                    .into_bytes(),
                                ))
                                .expect("response"),
                        );
                    }
                };
                Ok(Response::new(Body::from(body.to_string().into_bytes())))
            }
        });
        (Client::new(service, "default"), group_lists)
    }

    #[tokio::test]
    async fn a_hanging_discovery_does_not_block_another_target() {
        let (client, _) = api_server();
        let resolver = Arc::new(Resolver::with_timeouts(
            client,
            Duration::from_secs(60),
            Duration::from_secs(60),
            Duration::from_secs(3600),
        ));
        let hanging = {
            let resolver = resolver.clone();
            tokio::spawn(async move {
                resolver
                    .resolve("shop", Some("hang.example.com/v1"), "Widget", "w")
                    .await
                    .map(drop)
            })
        };
        // Let the hanging discovery start and park on its request.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let target = tokio::time::timeout(
            Duration::from_secs(5),
            resolver.resolve("shop", Some("apps/v1"), "Deployment", "web"),
        )
        .await
        .expect("apps resolves while hang.example.com hangs")
        .expect("apps/v1 Deployment has a scale subresource");
        assert_eq!(target.name, "web");
        assert!(!hanging.is_finished());
        hanging.abort();
    }

    #[tokio::test]
    async fn a_hanging_discovery_ends_at_its_timeout_with_a_cached_failure() {
        let (client, group_lists) = api_server();
        let resolver = Resolver::with_timeouts(
            client,
            Duration::from_secs(60),
            Duration::from_secs(60),
            Duration::from_millis(100),
        );
        let err = tokio::time::timeout(
            Duration::from_secs(5),
            resolver.resolve("shop", Some("hang.example.com/v1"), "Widget", "w"),
        )
        .await
        .expect("the discovery timeout ends the call")
        .map(drop)
        .expect_err("no answer");
        assert!(err.to_string().contains("did not answer within"), "{err}");
        // Within its TTL the failure answers at once, without asking again.
        let again = resolver
            .resolve("shop", Some("hang.example.com/v1"), "Widget", "w")
            .await
            .map(drop)
            .expect_err("cached failure");
        assert_eq!(again.to_string(), err.to_string());
        assert_eq!(group_lists.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_discovery_is_not_retried_within_its_ttl_and_is_retried_after() {
        let (client, group_lists) = api_server();
        let failed_ttl = Duration::from_millis(300);
        let resolver = Resolver::with_timeouts(
            client,
            Duration::from_secs(60),
            failed_ttl,
            Duration::from_secs(5),
        );
        let resolve_missing =
            || resolver.resolve("shop", Some("missing.example.com/v1"), "Thing", "t");
        let err = resolve_missing()
            .await
            .map(drop)
            .expect_err("missing group");
        assert!(err.to_string().contains("missing.example.com"), "{err}");
        assert_eq!(group_lists.load(Ordering::SeqCst), 1);
        for _ in 0..3 {
            resolve_missing()
                .await
                .map(drop)
                .expect_err("still missing");
        }
        assert_eq!(
            group_lists.load(Ordering::SeqCst),
            1,
            "retried within the TTL"
        );
        tokio::time::sleep(failed_ttl + Duration::from_millis(50)).await;
        resolve_missing()
            .await
            .map(drop)
            .expect_err("still missing");
        assert_eq!(
            group_lists.load(Ordering::SeqCst),
            2,
            "not retried after the TTL"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reconciles_that_need_a_group_while_it_is_discovered_share_that_discovery() {
        let (client, group_lists) = api_server();
        let resolver = Resolver::new(client, Duration::from_secs(60));
        let names: Vec<String> = (0..20).map(|i| format!("web-{i}")).collect();
        let resolved = futures::future::join_all(
            names
                .iter()
                .map(|name| resolver.resolve("shop", Some("apps/v1"), "Deployment", name)),
        )
        .await;
        assert!(resolved.iter().all(Result::is_ok));
        assert_eq!(group_lists.load(Ordering::SeqCst), 1);
        // A failure is shared the same way.
        let failed = futures::future::join_all(
            (0..5).map(|_| resolver.resolve("shop", Some("missing.example.com/v1"), "Thing", "t")),
        )
        .await;
        assert!(failed.iter().all(Result::is_err));
        assert_eq!(group_lists.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn found_groups_are_reused_within_the_sync_period() {
        let (client, group_lists) = api_server();
        let resolver = Resolver::new(client, Duration::from_secs(60));
        for name in ["web", "api"] {
            resolver
                .resolve("shop", Some("apps/v1"), "Deployment", name)
                .await
                .map(drop)
                .expect("resolves");
        }
        assert_eq!(group_lists.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn scale_writes_are_refused_while_the_autoscaler_watch_fails() {
        let (client, _) = api_server();
        let mut resolver = Resolver::new(client, Duration::from_secs(60));
        let watch = Arc::new(WatchHealth::default());
        resolver.refuse_writes_while_failing(watch.clone());
        let target = resolver
            .resolve("shop", Some("apps/v1"), "Deployment", "web")
            .await
            .expect("resolves");
        watch.record_error_at(Instant::now());
        // The mock answers 404 to a scale write; the refusal must come before any request.
        let err = target
            .write(Scale::default(), 3)
            .await
            .map(drop)
            .expect_err("refused");
        assert!(
            matches!(err, ScaleError::AutoScalerWatchFailing),
            "wrote while the watch failed: {err}"
        );
        watch.record_ok_at(Instant::now());
        let err = target
            .write(Scale::default(), 3)
            .await
            .map(drop)
            .expect_err("the mock has no scale");
        assert!(matches!(err, ScaleError::Api(_)), "{err}");
    }

    #[tokio::test]
    async fn scale_writes_name_tidals_field_manager_and_managed_fields_are_read_as_metadata() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let service = tower::service_fn(move |req: Request<Body>| {
            let record = record.clone();
            async move {
                let accept = req
                    .headers()
                    .get("accept")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                record.lock().expect("record").push((
                    req.method().to_string(),
                    req.uri().to_string(),
                    accept,
                ));
                let body = if req.method() == "PUT" {
                    req.into_body()
                        .collect_bytes()
                        .await
                        .expect("body")
                        .to_vec()
                } else {
                    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                           "metadata": {"name": "web", "managedFields": [
                               {"manager": "kubectl", "operation": "Update", "subresource": "scale",
                                "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]}})
                    .to_string()
                    .into_bytes()
                };
                Ok::<_, std::convert::Infallible>(Response::new(Body::from(body)))
            }
        });
        let client = Client::new(service, "default");
        let target = Target {
            api: Api::namespaced_with(
                client,
                "shop",
                &ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
            ),
            name: "web".into(),
            writes_need: None,
            conflicts: None,
        };
        target.write(Scale::default(), 3).await.expect("written");
        let fields = target.managed_fields().await.expect("read");
        assert_eq!(fields[0].manager.as_deref(), Some("kubectl"));
        let seen = seen.lock().expect("seen");
        assert_eq!(seen[0].0, "PUT");
        assert_eq!(
            seen[0].1,
            "/apis/apps/v1/namespaces/shop/deployments/web/scale?&fieldManager=tidal"
        );
        assert_eq!(seen[1].1, "/apis/apps/v1/namespaces/shop/deployments/web");
        assert!(
            seen[1].2.contains("as=PartialObjectMetadata"),
            "{:?}",
            seen[1]
        );
    }

    /// A Deployment's scale target on `client`, counting conflicts in `conflicts`.
    fn deployment_target(client: Client, conflicts: &IntCounter) -> Target {
        Target {
            api: Api::namespaced_with(
                client,
                "shop",
                &ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
            ),
            name: "web".into(),
            writes_need: None,
            conflicts: Some(conflicts.clone()),
        }
    }

    fn scale_json(resource_version: &str, replicas: i32) -> serde_json::Value {
        json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
               "metadata": {"name": "web", "namespace": "shop", "resourceVersion": resource_version},
               "spec": {"replicas": replicas}, "status": {"replicas": replicas, "selector": "app=web"}})
    }

    fn read_scale(resource_version: &str, replicas: i32) -> Scale {
        serde_json::from_value(scale_json(resource_version, replicas)).expect("scale")
    }

    fn counter() -> IntCounter {
        IntCounter::new("conflicts", "conflicts").expect("counter")
    }

    /// Method and path of each request, with the written scale's resourceVersion and replicas.
    fn requests(
        seen: &crate::mock_api::Seen,
    ) -> Vec<(String, serde_json::Value, serde_json::Value)> {
        seen.lock()
            .expect("seen")
            .iter()
            .map(|(method, _, body)| {
                (
                    method.to_string(),
                    body["metadata"]["resourceVersion"].clone(),
                    body["spec"]["replicas"].clone(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn a_scale_write_that_conflicts_is_retried_on_a_fresh_read_with_the_same_desired_size() {
        use crate::mock_api::{Answer, api_server};
        // Another writer set 5 between Tidal's read (resourceVersion 5, 2 replicas) and its
        // write of 3: upstream (1.34+) re-reads and writes 3 again without recomputing.
        let (client, seen) = api_server(vec![
            Answer::Conflict,
            Answer::Ok(scale_json("7", 5)),
            Answer::Echo,
        ]);
        let conflicts = counter();
        let written = deployment_target(client, &conflicts)
            .write(read_scale("5", 2), 3)
            .await
            .expect("written on the second attempt");
        assert_eq!(written.spec.and_then(|s| s.replicas), Some(3));
        assert_eq!(
            requests(&seen),
            vec![
                ("PUT".into(), json!("5"), json!(3)),
                ("GET".into(), json!(null), json!(null)),
                ("PUT".into(), json!("7"), json!(3)),
            ]
        );
        assert_eq!(conflicts.get(), 1);
    }

    #[tokio::test]
    async fn a_scale_write_that_conflicts_five_times_fails_with_the_conflict() {
        use crate::mock_api::{Answer, api_server};
        let mut script = Vec::new();
        for attempt in 0..5 {
            script.push(Answer::Conflict);
            if attempt < 4 {
                script.push(Answer::Ok(scale_json(&format!("{}", 10 + attempt), 5)));
            }
        }
        let (client, seen) = api_server(script);
        let conflicts = counter();
        let err = deployment_target(client, &conflicts)
            .write(read_scale("5", 2), 3)
            .await
            .expect_err("five conflicts give up");
        assert!(
            matches!(&err, ScaleError::Api(e) if is_conflict(e)),
            "the last conflict is the error: {err}"
        );
        let methods: Vec<String> = requests(&seen).into_iter().map(|r| r.0).collect();
        assert_eq!(
            methods,
            [
                "PUT", "GET", "PUT", "GET", "PUT", "GET", "PUT", "GET", "PUT"
            ]
        );
        assert_eq!(conflicts.get(), 5);
    }

    #[tokio::test]
    async fn a_failed_reread_after_a_conflict_retries_with_the_scale_it_had() {
        use crate::mock_api::{Answer, api_server};
        let (client, seen) = api_server(vec![Answer::Conflict, Answer::NotFound, Answer::Echo]);
        let conflicts = counter();
        deployment_target(client, &conflicts)
            .write(read_scale("5", 2), 3)
            .await
            .expect("the retry's answer is taken");
        let requests = requests(&seen);
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[2], ("PUT".into(), json!("5"), json!(3)));
    }

    #[tokio::test]
    async fn a_scale_write_failing_for_any_other_reason_is_not_retried() {
        use crate::mock_api::{Answer, api_server};
        let (client, seen) = api_server(vec![Answer::NotFound]);
        let conflicts = counter();
        let err = deployment_target(client, &conflicts)
            .write(read_scale("5", 2), 3)
            .await
            .expect_err("not found");
        assert!(
            matches!(&err, ScaleError::Api(e) if !is_conflict(e)),
            "{err}"
        );
        assert_eq!(requests(&seen).len(), 1);
        assert_eq!(conflicts.get(), 0);
    }

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
