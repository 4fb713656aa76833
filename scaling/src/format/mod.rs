//! The `tidal calc` format (shared/conformance/FORMAT.md): a thin layer that
//! reads the input JSON into [`DecisionInput`] with precise field paths in its
//! errors (`json` reads values, `spec` the AutoScaler spec, `input` the observed
//! state), and renders a [`Decision`](crate::Decision) as the output JSON
//! (`output`).

mod input;
mod json;
mod output;
mod spec;

pub use output::render_output;

use crate::error::Result;
use crate::model::{
    AutoscalerSpec, DecisionInput, ObjectMeta, OtherAutoscaler, Pod, Scale, ScaleRead,
};
use json::Obj;
use serde_json::Value;

/// A parsed `tidal calc` input: the decision input plus the simulated outcome
/// of the scale write (`scale.updateError`).
#[derive(Debug, Clone, PartialEq)]
pub struct CalcInput {
    /// The decision input.
    pub input: DecisionInput,
    /// `scale.updateError`: writing the scale fails with this error.
    pub update_error: Option<String>,
}

/// Reads a `tidal calc` input document.
pub fn parse_input(root: &Value) -> Result<CalcInput> {
    let root = Obj::new(root, "")?;
    let now = root.req_time("now")?;
    let config = input::parse_config(&root)?;
    let metadata = match root.opt_obj("metadata")? {
        None => ObjectMeta::default(),
        Some(m) => ObjectMeta {
            name: m.str_or("name", "autoscaler")?,
            namespace: m.str_or("namespace", "default")?,
        },
    };
    let spec_obj = root.req_obj("spec")?;
    let spec = spec::spec_from(&spec_obj)?;
    let metric_policies = spec::parse_metric_policies(&spec_obj, &spec)?;
    let status = input::parse_status(&root)?;
    let scale_obj = root.req_obj("scale")?;
    let scale = match scale_obj.opt_str("getError")? {
        // The GET failed: there are no replicas to read.
        Some(e) => ScaleRead::Failed(e.to_string()),
        None => {
            let spec_replicas = scale_obj.req_i32("specReplicas")?;
            ScaleRead::Read(Scale {
                spec_replicas,
                status_replicas: scale_obj
                    .opt_i32("statusReplicas")?
                    .unwrap_or(spec_replicas),
                selector: scale_obj.str_or("selector", "")?,
            })
        }
    };
    let update_error = scale_obj.opt_str("updateError")?.map(str::to_string);

    let mut pods = Vec::new();
    for (path, v) in root.array("pods")? {
        pods.push(input::parse_pod(&Obj::new(v, &path)?)?);
    }
    let pod_metrics = match root.opt_str("podMetricsError")? {
        Some(e) => Err(e.to_string()),
        None => {
            let mut items = Vec::new();
            for (path, v) in root.array("podMetrics")? {
                items.push(input::parse_pod_metrics(&Obj::new(v, &path)?, now)?);
            }
            Ok(items)
        }
    };
    let mut metric_values = Vec::new();
    for (path, v) in root.array("metricValues")? {
        metric_values.push(input::parse_metric_values(&Obj::new(v, &path)?, now)?);
    }
    let mut other_autoscalers = Vec::new();
    for (path, v) in root.array("otherAutoScalers")? {
        let o = Obj::new(v, &path)?;
        other_autoscalers.push(OtherAutoscaler {
            name: o.str_or("name", "")?,
            namespace: o.opt_str("namespace")?.map(str::to_string),
            selector: o.str_or("selector", "")?,
        });
    }
    let history = root
        .opt_obj("history")?
        .map(|h| input::parse_history(&h))
        .transpose()?;
    Ok(CalcInput {
        input: DecisionInput {
            now,
            config,
            metadata,
            spec,
            status,
            scale,
            pods,
            pod_metrics,
            metric_values,
            other_autoscalers,
            history,
            metric_policies,
        },
        update_error,
    })
}

/// Reads an `autoscaling/v2` `HorizontalPodAutoscalerSpec` JSON object (the
/// `spec` of an AutoScaler) with the same rules and errors as `tidal calc`;
/// error paths start at `spec`.
pub fn parse_spec(spec: &Value) -> Result<AutoscalerSpec> {
    spec::spec_from(&Obj::new(spec, "spec")?)
}

/// Reads `spec.tidal.metricPolicies` from an AutoScaler `spec` JSON object as `tidal calc`
/// does, checked against the spec's metrics; error paths start at `spec`.
pub fn parse_metric_policies(spec: &Value) -> Result<Vec<crate::model::MetricPolicy>> {
    let o = Obj::new(spec, "spec")?;
    let parsed = spec::spec_from(&o)?;
    spec::parse_metric_policies(&o, &parsed)
}

/// Reads a Pod object (`kubectl get pod -o json` shape) as `tidal calc` does;
/// error paths start at `path`.
pub fn parse_pod_object(pod: &Value, path: &str) -> Result<Pod> {
    input::parse_pod(&Obj::new(pod, path)?)
}
