//! The AutoScaler CRD on a real kube-apiserver: it installs, accepts every example in
//! crds/examples/, and rejects every fixture in crds/examples/invalid/ with a message that
//! names the field the fixture's `# expect-field:` line gives. The same for Tidal's own
//! extensions (`spec.tidal`), whose examples live in crds/examples/extensions/ because the
//! HPA has no such fields to compare with.

use std::path::Path;

use kube::api::{Api, DynamicObject};
use kube::core::GroupVersionKind;
use tidal_e2e::crd::{self, dry_run, examples_dir, yaml_files};
use tidal_e2e::harness::Harness;

fn autoscalers(client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("autoscaling.tidal.dev", "v1alpha1", "AutoScaler");
    crd::dynamic_api(client, namespace, &gvk)
}

async fn accepts_every_example_in(dir: &Path, namespace: &str) -> anyhow::Result<()> {
    let harness = Harness::connect().await?;
    crd::install(harness.client()).await?;
    let ns = harness.namespace(namespace).await?;
    let api = autoscalers(harness.client(), ns.name());
    let files = yaml_files(dir);
    assert!(!files.is_empty(), "no examples in {}", dir.display());
    for path in files {
        let obj: DynamicObject = serde_yaml::from_str(&std::fs::read_to_string(&path)?)?;
        if let Err(err) = api.create(&dry_run(), &obj).await {
            panic!("{} was rejected: {err}", path.display());
        }
    }
    Ok(())
}

/// Every fixture in `dir` is refused (422) with a message naming its `# expect-field:`.
async fn rejects_every_fixture_in(
    dir: &Path,
    namespace: &str,
    at_least: usize,
) -> anyhow::Result<()> {
    let harness = Harness::connect().await?;
    crd::install(harness.client()).await?;
    let ns = harness.namespace(namespace).await?;
    let api = autoscalers(harness.client(), ns.name());
    let fixtures = yaml_files(dir);
    assert!(
        fixtures.len() >= at_least,
        "need at least {at_least} invalid fixtures, found {}",
        fixtures.len()
    );
    let mut failures = Vec::new();
    for path in &fixtures {
        let text = std::fs::read_to_string(path)?;
        let field = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect-field:"))
            .map(str::trim)
            .unwrap_or_else(|| panic!("{} lacks an `# expect-field:` line", path.display()));
        let obj: DynamicObject = serde_yaml::from_str(&text)?;
        match api.create(&dry_run(), &obj).await {
            Ok(_) => failures.push(format!("{}: accepted", path.display())),
            Err(kube::Error::Api(status)) if status.code == 422 => {
                if !status.message.contains(field) {
                    failures.push(format!(
                        "{}: message does not name {field}: {}",
                        path.display(),
                        status.message
                    ));
                } else {
                    eprintln!("ok {}: {}", path.display(), status.message);
                }
            }
            Err(err) => failures.push(format!("{}: unexpected error {err}", path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn valid_examples_are_accepted_by_the_api_server() -> anyhow::Result<()> {
    accepts_every_example_in(&examples_dir(), "crd-valid").await
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn invalid_fixtures_are_rejected_with_a_message_naming_the_field() -> anyhow::Result<()> {
    rejects_every_fixture_in(&examples_dir().join("invalid"), "crd-invalid", 60).await
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn extension_examples_are_accepted_by_the_api_server() -> anyhow::Result<()> {
    accepts_every_example_in(&examples_dir().join("extensions"), "crd-ext-valid").await
}

#[tokio::test]
#[ignore = "needs the local control plane: make e2e"]
async fn invalid_extension_fixtures_are_rejected_with_a_message_naming_the_field()
-> anyhow::Result<()> {
    rejects_every_fixture_in(
        &examples_dir().join("extensions/invalid"),
        "crd-ext-invalid",
        12,
    )
    .await
}
