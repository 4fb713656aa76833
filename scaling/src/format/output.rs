//! The `tidal calc` output object (FORMAT section 4).

use crate::model::{Decision, History, MetricOutcome, ScaleEvent};
use crate::quantity::{format_milli, format_milli_binary};
use crate::time::Time;
use serde_json::{Map, Value, json};

fn render_time(t: Option<Time>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

fn render_history(h: &History) -> Value {
    let recs = h.recommendations.as_ref().map_or(Value::Null, |rs| {
        Value::Array(
            rs.iter()
                .map(|r| json!({"replicas": r.replicas, "timestamp": r.timestamp.to_rfc3339()}))
                .collect(),
        )
    });
    let events = |es: &[ScaleEvent]| -> Value {
        Value::Array(
            es.iter()
                .map(|e| {
                    json!({
                        "replicaChange": e.replica_change,
                        "timestamp": e.timestamp.to_rfc3339(),
                        "outdated": e.outdated,
                    })
                })
                .collect(),
        )
    };
    json!({
        "recommendations": recs,
        "scaleUpEvents": events(&h.scale_up_events),
        "scaleDownEvents": events(&h.scale_down_events),
    })
}

/// Renders a decision as the `tidal calc` output object.
pub fn render_output(d: &Decision) -> Value {
    let metrics: Vec<Value> = d
        .metrics
        .iter()
        .map(|m| {
            let mut o = Map::new();
            o.insert("type".into(), Value::String(m.kind.clone()));
            o.insert("name".into(), Value::String(m.name.clone()));
            if let Some(c) = &m.container {
                o.insert("container".into(), Value::String(c.clone()));
            }
            match &m.outcome {
                MetricOutcome::Proposal { replicas, current } => {
                    o.insert("proposedReplicas".into(), json!(replicas));
                    let fmt = |v: i64| {
                        if current.binary {
                            format_milli_binary(v)
                        } else {
                            format_milli(v)
                        }
                    };
                    let mut c = Map::new();
                    if let Some(u) = current.average_utilization {
                        c.insert("averageUtilization".into(), json!(u));
                    }
                    if let Some(v) = current.average_value {
                        c.insert("averageValue".into(), Value::String(fmt(v)));
                    }
                    if let Some(v) = current.value {
                        c.insert("value".into(), Value::String(fmt(v)));
                    }
                    o.insert("current".into(), Value::Object(c));
                }
                MetricOutcome::Failed { reason, message } => {
                    o.insert(
                        "error".into(),
                        json!({"reason": reason, "message": message}),
                    );
                }
            }
            Value::Object(o)
        })
        .collect();
    let conditions: Vec<Value> = d
        .conditions
        .iter()
        .map(|c| {
            json!({
                "type": c.kind,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": render_time(c.last_transition_time),
            })
        })
        .collect();
    let events: Vec<Value> = d
        .events
        .iter()
        .map(|e| json!({"type": e.kind.as_str(), "reason": e.reason, "message": e.message}))
        .collect();
    json!({
        "desiredReplicas": d.desired_replicas,
        "currentReplicas": d.current_replicas,
        "rescale": d.rescale,
        "reason": d.reason,
        "metrics": metrics,
        "conditions": conditions,
        "events": events,
        "history": d.history.as_ref().map_or(Value::Null, render_history),
        "lastScaleTimeUpdated": d.last_scale_time_updated,
    })
}
