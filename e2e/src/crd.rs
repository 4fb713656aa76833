//! Installs the AutoScaler CRD (the committed YAML, exactly what users apply) and waits until
//! the API server serves it. Idempotent and safe to call from concurrent tests.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};

use crate::wait;

/// The CRD as committed in `crds/autoscaler.yaml`.
pub const CRD_YAML: &str = include_str!("../../crds/autoscaler.yaml");

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
