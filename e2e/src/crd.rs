//! Installs the AutoScaler CRD (the committed YAML, exactly what users apply) and waits until
//! the API server serves it. Idempotent and safe to call from concurrent tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};

use crate::wait;

/// The CRD as committed in `crds/autoscaler.yaml`.
pub const CRD_YAML: &str = include_str!("../../crds/autoscaler.yaml");

/// `crds/examples/`: the valid examples; `invalid/` below it holds the ones admission refuses.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/examples")
}

/// The `.yaml` files directly in `dir`, in name order.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

/// Create options for a server-side dry run: admitted or refused, nothing stored.
pub fn dry_run() -> PostParams {
    PostParams {
        dry_run: true,
        ..PostParams::default()
    }
}

/// A dynamic API for objects of `gvk` in `namespace`.
pub fn dynamic_api(client: &Client, namespace: &str, gvk: &GroupVersionKind) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk(gvk))
}

/// Server-side applies the CRD and waits for `Established=True`.
pub async fn install(client: &Client) -> anyhow::Result<()> {
    let crd: CustomResourceDefinition = serde_yaml::from_str(CRD_YAML)?;
    let name = crd.metadata.name.clone().unwrap_or_default();
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.patch(
        &name,
        &PatchParams::apply("tidal-e2e").force(),
        &Patch::Apply(&crd),
    )
    .await?;
    wait::until(
        "the AutoScaler CRD to be established",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get(&name).await?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                Ok(established.then_some(()))
            }
        },
    )
    .await?;
    Ok(())
}
