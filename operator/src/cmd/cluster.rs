//! What the commands that read the cluster share: the `namespace/name` of an AutoScaler, its
//! read, and API errors as sentences that say what to do (`tidal explain`, `tidal doctor`).

use kube::Client;
use kube::api::{Api, ListParams};
use tidal_crds::AutoScaler;

/// A client from KUBECONFIG (or the pod's service account), or what to do about its absence.
pub async fn client() -> Result<Client, String> {
    Client::try_default().await.map_err(|e| {
        format!("cannot build a Kubernetes client: {e} (set KUBECONFIG or run inside a cluster)")
    })
}

/// Splits `namespace/name`; a bare name takes `namespace`.
pub fn parse_target(target: &str, namespace: Option<&str>) -> Result<(String, String), String> {
    match target.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_string(), name.to_string()))
        }
        None if !target.is_empty() => match namespace {
            Some(ns) => Ok((ns.to_string(), target.to_string())),
            None => Err(format!(
                "{target:?} has no namespace: give it as <namespace>/{target} or pass --namespace"
            )),
        },
        _ => Err(format!(
            "{target:?} is not an AutoScaler name: give it as <namespace>/<name>, e.g. default/web"
        )),
    }
}

/// Reads an AutoScaler, turning API errors into what the user should do about them.
pub async fn get_autoscaler(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<AutoScaler, String> {
    let api: Api<AutoScaler> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(Some(obj)) => Ok(obj),
        Ok(None) => {
            // A 404 is also what a cluster without the CRD answers; tell the two apart.
            match api.list(&ListParams::default().limit(1)).await {
                Err(kube::Error::Api(e)) if e.code == 404 => Err(
                    "the AutoScaler CRD (autoscalers.autoscaling.tidal.dev) is not installed in \
                     this cluster: install it with `tidal crd | kubectl apply -f -` or the Helm chart"
                        .to_string(),
                ),
                _ => Err(format!(
                    "autoscaler {namespace}/{name} not found: list the AutoScalers with \
                     `kubectl get autoscalers -n {namespace}`"
                )),
            }
        }
        Err(err) => Err(api_error(
            &err,
            &format!("get autoscaler {namespace}/{name}"),
        )),
    }
}

/// An API error as a sentence with the fix.
pub fn api_error(err: &kube::Error, what: &str) -> String {
    match err {
        kube::Error::Api(e) if e.code == 403 => format!(
            "cannot {what}: forbidden ({}); ask for read access to it (check with `kubectl auth can-i`)",
            e.message
        ),
        kube::Error::Api(e) if e.code == 401 => format!(
            "cannot {what}: unauthorized; your credentials were refused (check KUBECONFIG and log in again)"
        ),
        kube::Error::Api(e) => format!("cannot {what}: {} ({})", e.message, e.code),
        other => format!(
            "cannot {what}: {other} (is the cluster reachable with the current KUBECONFIG?)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_and_without_namespace() {
        assert_eq!(
            parse_target("shop/web", None),
            Ok(("shop".to_string(), "web".to_string()))
        );
        assert_eq!(
            parse_target("web", Some("default")),
            Ok(("default".to_string(), "web".to_string()))
        );
        for bad in ["", "/web", "shop/", "a/b/c"] {
            let err = parse_target(bad, Some("default")).expect_err(bad);
            assert!(err.contains("<namespace>/<name>"), "{bad}: {err}");
        }
        let err = parse_target("web", None).expect_err("no namespace");
        assert!(err.contains("--namespace"), "{err}");
    }
}
