//! How long `tidal simulate` takes to replay a one-hour trace (3,600 one-second ticks, a
//! decision every 15 s, up to 20 pods) through the decision core.
//! Run: `cargo bench -p tidal --bench simulate`.

use criterion::{Criterion, criterion_main};
use std::hint::black_box;
use tidal::cmd::simulate::{World, simulate};
use tidal_report::DemandTrace;

fn hour_trace() -> DemandTrace {
    // A daily-shaped hour: base load, two ramps, a spike, every 30 s a point.
    let mut csv = String::from("seconds,millicores\n");
    for i in 0..=120 {
        let t = i * 30;
        let m = 200.0
            + 600.0 * ((t as f64) / 3600.0 * std::f64::consts::PI).sin()
            + if (1800..1900).contains(&t) {
                800.0
            } else {
                0.0
            };
        csv.push_str(&format!("{t},{m:.0}\n"));
    }
    DemandTrace::parse_csv("hour", &csv).expect("valid trace")
}

fn bench(c: &mut Criterion) {
    let spec = scaling::format::parse_spec(&serde_json::json!({
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 1, "maxReplicas": 20,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]
    }))
    .expect("valid spec");
    let world = World {
        sync_period: 15.0,
        first_sync: 0.0,
        metric_resolution: 15.0,
        pod_startup: 2.0,
        ready_delay: 5.0,
        cpu_request_millicores: 100,
        idle_millicores: 0.0,
        initial_replicas: None,
        config: scaling::Config::default(),
        metrics_outage: None,
        fresh_metrics: false,
    };
    let trace = hour_trace();
    c.bench_function("simulate_one_hour_trace", |b| {
        b.iter(|| simulate(black_box(&spec), &[], black_box(&trace), black_box(&world)))
    });
}

// The macro's generated function has no doc comment.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
use group::benches;
criterion_main!(benches);
