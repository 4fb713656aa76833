//! Known failure texts mapped to their cause and fix: a pure function, so every text the
//! components print (APIService conditions, AutoScaler conditions and events, metrics-server
//! logs) is a table row in a test.

/// A known failure: what it means and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// Short name of the cause.
    pub cause: &'static str,
    /// What to do.
    pub fix: &'static str,
}

/// Maps a failure text (an APIService condition message, an AutoScaler condition or event
/// message, a metrics-server log line) to its known cause. The rules are checked in order;
/// the first that matches wins, so more specific texts come first.
pub fn diagnose(text: &str) -> Option<Diagnosis> {
    let t = text.to_ascii_lowercase();
    let has = |s: &str| t.contains(s);
    if has("x509") && has("doesn't contain any ip sans") {
        return Some(Diagnosis {
            cause: "metrics-server cannot verify the kubelets' serving certificates (self-signed, without IP SANs)",
            fix: "set `serverTLSBootstrap: true` in every kubelet's configuration and approve the \
                  kubelet-serving CSRs (`kubectl get csr`, `kubectl certificate approve <name>`, or \
                  an auto-approver); do not use --kubelet-insecure-tls, which turns verification off",
        });
    }
    if has(":10250") && (has("i/o timeout") || has("deadline exceeded") || has("no route to host"))
    {
        return Some(Diagnosis {
            cause: "metrics-server's scrapes of the kubelets on port 10250 time out",
            fix: "allow TCP 10250 from the metrics-server pods to every node (firewall, security \
                  group or NetworkPolicy)",
        });
    }
    if has("missing request for cpu") || has("missing pod-level request for cpu") {
        return Some(Diagnosis {
            cause: "a container of the target's pods has no CPU request, so CPU utilization cannot be computed",
            fix: "set resources.requests.cpu on every container (and restartable init container) \
                  of the pod template, or use an AverageValue target instead of Utilization",
        });
    }
    if has("failing or missing response") && has("connection refused") {
        return Some(Diagnosis {
            cause: "nothing answers at metrics-server's address: metrics-server is not running (or not listening)",
            fix: "start metrics-server (check its Deployment, pods and logs: \
                  `kubectl -n kube-system get deploy,pods -l k8s-app=metrics-server`)",
        });
    }
    if has("failing or missing response") {
        return Some(Diagnosis {
            cause: "the API server's aggregator gets no answer from metrics-server",
            fix: "if the API server's host runs no kube-proxy (it cannot reach Service IPs), start \
                  kube-apiserver with --enable-aggregator-routing=true; otherwise let the API server \
                  reach the metrics-server pods on their port (firewall)",
        });
    }
    if has("servicenotfound") || has("missingendpoints") || has("no endpoints") {
        return Some(Diagnosis {
            cause: "the APIService points at a Service with no ready metrics-server behind it",
            fix: "make metrics-server's pods Ready (see its Deployment and pod logs), or fix \
                  spec.service of the APIService",
        });
    }
    if has("metrics api not available")
        || has("the server is currently unable to handle the request")
        || has("could not find the requested resource (get pods.metrics.k8s.io)")
        || has("not registered")
    {
        return Some(Diagnosis {
            cause: "Metrics API not available",
            fix: "install metrics-server (its manifest registers APIService v1beta1.metrics.k8s.io) \
                  and check `kubectl get apiservice v1beta1.metrics.k8s.io`",
        });
    }
    if has("did not receive metrics for targeted pods")
        || has("no metrics returned from resource metrics api")
    {
        return Some(Diagnosis {
            cause: "metrics-server has no samples for the target's pods yet",
            fix: "wait one metrics resolution after pods start; if it persists, read metrics-server's \
                  logs for scrape errors",
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every known failure text, as the components print it, maps to its cause.
    #[test]
    fn known_failure_texts_map_to_their_diagnosis() {
        let cases: &[(&str, &str)] = &[
            ("Metrics API not available", "Metrics API not available"),
            (
                "unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API: the server is currently unable to handle the request (get pods.metrics.k8s.io)",
                "Metrics API not available",
            ),
            (
                "APIService v1beta1.metrics.k8s.io is not registered",
                "Metrics API not available",
            ),
            (
                "Failed to scrape node\" err=\"Get \\\"https://10.0.0.5:10250/metrics/resource\\\": x509: cannot validate certificate for 10.0.0.5 because it doesn't contain any IP SANs\" node=\"worker-1\"",
                "metrics-server cannot verify the kubelets' serving certificates (self-signed, without IP SANs)",
            ),
            (
                "Failed to scrape node\" err=\"Get \\\"https://192.168.1.20:10250/metrics/resource\\\": dial tcp 192.168.1.20:10250: i/o timeout\"",
                "metrics-server's scrapes of the kubelets on port 10250 time out",
            ),
            (
                "Get \"https://10.1.2.3:10250/metrics/resource\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
                "metrics-server's scrapes of the kubelets on port 10250 time out",
            ),
            (
                "FailedDiscoveryCheck failing or missing response from https://10.96.12.7:443/apis/metrics.k8s.io/v1beta1: Get \"https://10.96.12.7:443/apis/metrics.k8s.io/v1beta1\": context deadline exceeded",
                "the API server's aggregator gets no answer from metrics-server",
            ),
            (
                "FailedDiscoveryCheck failing or missing response from https://127.0.0.1:32753/apis/metrics.k8s.io/v1beta1: Get \"https://127.0.0.1:32753/apis/metrics.k8s.io/v1beta1\": dial tcp 127.0.0.1:32753: connect: connection refused",
                "nothing answers at metrics-server's address: metrics-server is not running (or not listening)",
            ),
            (
                "MissingEndpoints endpoints for service/metrics-server in \"kube-system\" have no addresses with port name \"https\"",
                "the APIService points at a Service with no ready metrics-server behind it",
            ),
            (
                "ServiceNotFound service/metrics-server in \"kube-system\" is not present",
                "the APIService points at a Service with no ready metrics-server behind it",
            ),
            (
                "the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu in container app of Pod web-7d9f-abcde",
                "a container of the target's pods has no CPU request, so CPU utilization cannot be computed",
            ),
            (
                "failed to get cpu utilization: did not receive metrics for targeted pods (pods might be unready)",
                "metrics-server has no samples for the target's pods yet",
            ),
        ];
        for (text, cause) in cases {
            let d = diagnose(text).unwrap_or_else(|| panic!("no diagnosis for {text:?}"));
            assert_eq!(d.cause, *cause, "{text}");
        }
        assert_eq!(diagnose("all checks passed"), None);
    }

    #[test]
    fn the_ip_san_fix_is_certificate_bootstrap_not_insecure_tls() {
        let d = diagnose(
            "x509: cannot validate certificate for 10.0.0.5 because it doesn't contain any IP SANs",
        )
        .expect("diagnosis");
        assert!(d.fix.contains("serverTLSBootstrap: true"));
        assert!(d.fix.contains("kubelet-serving CSRs"));
        assert!(d.fix.contains("do not use --kubelet-insecure-tls"));
    }

    #[test]
    fn the_aggregator_fix_names_enable_aggregator_routing() {
        let d = diagnose("failing or missing response from https://10.96.0.9:443/apis/metrics.k8s.io/v1beta1: i/o timeout")
            .expect("diagnosis");
        assert!(d.fix.contains("--enable-aggregator-routing=true") && d.fix.contains("kube-proxy"));
    }
}
