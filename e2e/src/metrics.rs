//! Reading the resource metrics API (metrics.k8s.io/v1beta1) the way the
//! HPA does: a PodMetrics LIST by label selector.

use std::time::Duration;

use serde::Deserialize;

use crate::error::Result;
use crate::quantity;
use kube::Client;

#[derive(Deserialize)]
struct PodMetricsList {
    items: Vec<PodMetrics>,
}

#[derive(Deserialize)]
struct PodMetrics {
    metadata: Meta,
    timestamp: String,
    window: String,
    containers: Vec<ContainerMetrics>,
}

#[derive(Deserialize)]
struct Meta {
    name: String,
}

#[derive(Deserialize)]
struct ContainerMetrics {
    usage: Usage,
}

#[derive(Deserialize)]
struct Usage {
    cpu: String,
    memory: String,
}

/// One pod's usage as metrics-server reports it, summed over containers.
#[derive(Debug, Clone, PartialEq)]
pub struct PodUsage {
    /// Pod name.
    pub name: String,
    /// CPU in millicores.
    pub cpu_millis: f64,
    /// Memory working set in bytes.
    pub memory_bytes: f64,
    /// End of the measurement window (RFC 3339).
    pub timestamp: String,
    /// Length of the window.
    pub window: Duration,
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Parses the Go durations metrics-server prints for `window` (`10s`, `1m0s`, `10.5s`).
fn parse_window(s: &str) -> Duration {
    let mut total = 0.0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            0.001
        } else {
            match c {
                'h' => 3600.0,
                'm' => 60.0,
                's' => 1.0,
                _ => 0.0,
            }
        };
        total += num.parse::<f64>().unwrap_or(0.0) * unit;
        num.clear();
    }
    Duration::from_secs_f64(total)
}

/// The API path of a PodMetrics LIST by label selector.
pub fn pod_metrics_path(namespace: &str, selector: &str) -> String {
    format!(
        "/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods?labelSelector={}",
        encode(namespace),
        encode(selector)
    )
}

/// `GET /apis/metrics.k8s.io/v1beta1/namespaces/NS/pods?labelSelector=SEL`.
pub async fn pod_usage(client: &Client, namespace: &str, selector: &str) -> Result<Vec<PodUsage>> {
    let req = http::Request::get(pod_metrics_path(namespace, selector)).body(Vec::new())?;
    let list: PodMetricsList = client.request(req).await?;
    list.items
        .into_iter()
        .map(|m| {
            let mut cpu = 0.0;
            let mut mem = 0.0;
            for c in &m.containers {
                cpu += quantity::cpu_millis(&c.usage.cpu)?;
                mem += quantity::bytes(&c.usage.memory)?;
            }
            Ok(PodUsage {
                name: m.metadata.name,
                cpu_millis: cpu,
                memory_bytes: mem,
                timestamp: m.timestamp,
                window: parse_window(&m.window),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_selector_is_percent_encoded_in_the_list_path() {
        assert_eq!(
            pod_metrics_path("ns-1", "app=x"),
            "/apis/metrics.k8s.io/v1beta1/namespaces/ns-1/pods?labelSelector=app%3Dx"
        );
        assert_eq!(
            pod_metrics_path("n", "a in (b,c)"),
            "/apis/metrics.k8s.io/v1beta1/namespaces/n/pods?labelSelector=a%20in%20%28b%2Cc%29"
        );
    }

    #[test]
    fn go_durations_in_the_window_field_are_read() {
        assert_eq!(parse_window("10s"), Duration::from_secs(10));
        assert_eq!(parse_window("1m0s"), Duration::from_secs(60));
        assert_eq!(parse_window("10.5s"), Duration::from_millis(10_500));
        assert_eq!(parse_window("500ms"), Duration::from_millis(500));
    }
}
