//! The committed CRD YAML is exactly what the generator prints.

use std::path::Path;

#[test]
fn committed_crd_yaml_matches_the_generator() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("autoscaler.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = tidal_crds::crd_yaml().expect("render CRD");
    assert!(
        committed == generated,
        "{} is stale or missing: run `make crds` and commit the result",
        path.display()
    );
}

#[test]
fn chart_crd_is_the_generated_crd() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/tidal/crds/autoscaler.yaml");
    let chart = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = tidal_crds::crd_yaml().expect("render CRD");
    assert!(
        chart == generated,
        "{} is stale or missing: run `make crds` and commit the result",
        path.display()
    );
}

#[test]
fn crd_has_status_subresource_and_hpa_like_columns() {
    let crd = tidal_crds::crd();
    assert_eq!(crd.spec.scope, "Namespaced");
    let version = &crd.spec.versions[0];
    assert!(
        version
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some()
    );
    let columns: Vec<&str> = version
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        columns,
        [
            "Reference",
            "Targets",
            "MinPods",
            "MaxPods",
            "Replicas",
            "Age"
        ]
    );
}

#[test]
fn no_schema_field_is_nullable() {
    let yaml = tidal_crds::crd_yaml().expect("render CRD");
    assert!(
        !yaml.contains("nullable"),
        "a nullable field would let null bypass validation"
    );
}

/// The API server warns `unrecognized format "uint32"` on install for any format it does not
/// know; the generated schema carries only the ones it does.
#[test]
fn every_format_in_the_crd_is_one_the_api_server_recognises() {
    let yaml = tidal_crds::crd_yaml().expect("render CRD");
    let unknown: Vec<&str> = yaml
        .lines()
        .filter_map(|l| l.trim().strip_prefix("format: "))
        .filter(|f| !["int32", "int64", "float", "double", "date-time", "byte"].contains(f))
        .collect();
    assert!(unknown.is_empty(), "unrecognized formats: {unknown:?}");
}
