//! `tidal convert`: an `autoscaling/v2` HorizontalPodAutoscaler to an
//! AutoScaler (`--to autoscaler`, the default) or back (`--to hpa`), from a
//! file, standard input, or the cluster (`--from-cluster NAMESPACE/NAME`).
//!
//! The conversion itself is `tidal_crds::hpa` (shared with the e2e
//! comparison runner); this module reads and writes documents. Input may be
//! JSON or YAML, several YAML documents, or a `kind: List` (what
//! `kubectl get hpa -o yaml` prints). Bad input exits with status 2 and one
//! line naming the document and field; a cluster failure exits with 1.
//! Dropped extensions (`spec.tidal`) are warned about on standard error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::Api;
use serde_json::Value;
use tidal_crds::AutoScaler;
use tidal_crds::hpa::{Target, convert_document};

/// Arguments of `tidal convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Input file (JSON or YAML); standard input when absent or `-`.
    #[arg(conflicts_with = "from_cluster")]
    pub file: Option<PathBuf>,
    /// What to produce: `autoscaler` from an HPA, or `hpa` from an AutoScaler.
    #[arg(long, value_enum, default_value_t = To::Autoscaler)]
    pub to: To,
    /// Read the object from the cluster (KUBECONFIG or in-cluster): an HPA
    /// with `--to autoscaler`, an AutoScaler with `--to hpa`.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub from_cluster: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Yaml)]
    pub output: Format,
}

/// Direction of `tidal convert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum To {
    /// HorizontalPodAutoscaler → AutoScaler.
    Autoscaler,
    /// AutoScaler → HorizontalPodAutoscaler (`spec.tidal` dropped with a warning).
    Hpa,
}

/// Output format of `tidal convert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// YAML; several objects as several documents.
    Yaml,
    /// JSON; several objects as a `kind: List`.
    Json,
}

/// Why `tidal convert` failed: bad input (exit 2) or the cluster (exit 1).
enum Failure {
    Input(String),
    Cluster(String),
}

/// Runs `tidal convert`.
pub fn run(args: &ConvertArgs) -> ExitCode {
    match convert(args) {
        Ok((text, warnings)) => {
            for w in warnings {
                eprintln!("tidal convert: warning: {w}");
            }
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(Failure::Input(e)) => {
            eprintln!("tidal convert: {}", e.replace('\n', " "));
            ExitCode::from(2)
        }
        Err(Failure::Cluster(e)) => {
            eprintln!("tidal convert: {}", e.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

fn convert(args: &ConvertArgs) -> Result<(String, Vec<String>), Failure> {
    let target = match args.to {
        To::Autoscaler => Target::AutoScaler,
        To::Hpa => Target::Hpa,
    };
    let (origin, docs) = match &args.from_cluster {
        Some(key) => (key.clone(), vec![fetch(key, args.to)?]),
        None => {
            let (origin, text) =
                super::input::read(args.file.as_deref()).map_err(Failure::Input)?;
            let docs =
                parse_documents(&text).map_err(|e| Failure::Input(format!("{origin}: {e}")))?;
            (origin, docs)
        }
    };
    if docs.is_empty() {
        return Err(Failure::Input(format!("{origin}: no object to convert")));
    }
    let many = docs.len() > 1;
    let mut objects = Vec::with_capacity(docs.len());
    let mut warnings = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let which = if many {
            format!("{origin}, object {}", i + 1)
        } else {
            origin.clone()
        };
        let converted =
            convert_document(doc, target).map_err(|e| Failure::Input(format!("{which}: {e}")))?;
        warnings.extend(
            converted
                .warnings
                .into_iter()
                .map(|w| format!("{which}: {w}")),
        );
        objects.push(converted.object);
    }
    let text = render(&objects, args.output).map_err(Failure::Input)?;
    Ok((text, warnings))
}

/// JSON (one value) or a YAML stream; `kind: *List` documents are unpacked
/// into their items; empty YAML documents are skipped.
fn parse_documents(text: &str) -> Result<Vec<Value>, String> {
    let values = match serde_json::from_str::<Value>(text) {
        Ok(v) => vec![v],
        Err(json_err) if text.trim_start().starts_with(['{', '[']) => {
            return Err(format!("not valid JSON: {json_err}"));
        }
        Err(_) => {
            let mut out = Vec::new();
            for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
                let v: Value = serde::Deserialize::deserialize(doc)
                    .map_err(|e| format!("YAML document {}: {e}", i + 1))?;
                if !v.is_null() {
                    out.push(v);
                }
            }
            out
        }
    };
    let mut docs = Vec::with_capacity(values.len());
    for v in values {
        let is_list = v
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"));
        match (is_list, v.get("items")) {
            (true, Some(Value::Array(items))) => docs.extend(items.iter().cloned()),
            (true, _) => return Err("a List without an items array".into()),
            (false, _) if !v.is_object() => {
                return Err("expected an object with apiVersion, kind, metadata and spec".into());
            }
            (false, _) => docs.push(v),
        }
    }
    Ok(docs)
}

fn render(objects: &[Value], format: Format) -> Result<String, String> {
    match format {
        Format::Json => {
            let value = match objects {
                [one] => one.clone(),
                many => serde_json::json!({"apiVersion": "v1", "kind": "List", "items": many}),
            };
            serde_json::to_string_pretty(&value)
                .map(|s| s + "\n")
                .map_err(|e| e.to_string())
        }
        Format::Yaml => {
            let docs: Result<Vec<String>, String> = objects.iter().map(yaml).collect();
            Ok(docs?.join("---\n"))
        }
    }
}

/// YAML in the field order people write (`scaleTargetRef` first), through
/// the typed object when it is one, rather than a JSON map's sorted keys.
fn yaml(object: &Value) -> Result<String, String> {
    let typed = match object.get("kind").and_then(Value::as_str) {
        Some("AutoScaler") => serde_json::from_value::<AutoScaler>(object.clone())
            .ok()
            .map(|o| serde_yaml::to_string(&o)),
        _ => None,
    };
    typed
        .unwrap_or_else(|| serde_yaml::to_string(object))
        .map_err(|e| e.to_string())
}

/// Reads the object to convert from the cluster, as JSON.
fn fetch(key: &str, to: To) -> Result<Value, Failure> {
    let (namespace, name) = match key.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => (ns, name),
        _ => {
            return Err(Failure::Input(format!(
                "--from-cluster {key:?}: expected NAMESPACE/NAME, e.g. default/web"
            )));
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Cluster(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .map_err(|e| Failure::Cluster(format!("cannot connect to the cluster: {e}")))?;
        let (what, got) = match to {
            To::Autoscaler => (
                "horizontalpodautoscalers.autoscaling (v2)",
                Api::<HorizontalPodAutoscaler>::namespaced(client, namespace)
                    .get(name)
                    .await
                    .map(serde_json::to_value),
            ),
            To::Hpa => (
                "autoscalers.autoscaling.tidal.dev",
                Api::<AutoScaler>::namespaced(client, namespace)
                    .get(name)
                    .await
                    .map(serde_json::to_value),
            ),
        };
        match got {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Failure::Cluster(format!("{what} {key}: {e}"))),
            Err(kube::Error::Api(s)) if s.code == 404 => Err(Failure::Cluster(format!(
                "{what} {key} not found (check the namespace and name: kubectl get {} -n {namespace})",
                what.split(' ').next().unwrap_or(what)
            ))),
            Err(e) => Err(Failure::Cluster(format!("reading {what} {key}: {e}"))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HPA: &str = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  maxReplicas: 10\n";

    #[test]
    fn yaml_streams_json_and_lists_all_yield_their_objects() {
        let two = format!("{HPA}---\n{HPA}---\n");
        assert_eq!(parse_documents(&two).map(|d| d.len()), Ok(2));
        let json =
            r#"{"apiVersion":"v1","kind":"List","items":[{"kind":"A"},{"kind":"B"},{"kind":"C"}]}"#;
        assert_eq!(parse_documents(json).map(|d| d.len()), Ok(3));
        assert!(parse_documents("{not json").is_err_and(|e| e.contains("JSON")));
        assert!(parse_documents("- 1\n- 2\n").is_err());
    }

    #[test]
    fn several_objects_render_as_yaml_documents_or_a_json_list() {
        let objects = vec![serde_json::json!({"a": 1}), serde_json::json!({"b": 2})];
        assert_eq!(
            render(&objects, Format::Yaml),
            Ok("a: 1\n---\nb: 2\n".into())
        );
        let json = render(&objects, Format::Json).unwrap_or_default();
        assert!(json.contains("\"kind\": \"List\""), "{json}");
    }

    #[test]
    fn a_malformed_from_cluster_key_is_bad_input() {
        for key in ["web", "/web", "ns/", "a/b/c"] {
            assert!(
                matches!(fetch(key, To::Autoscaler), Err(Failure::Input(_))),
                "{key}"
            );
        }
    }
}
