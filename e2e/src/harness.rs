//! Connection to the test cluster and per-test namespaces.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::error::{Error, Result};

/// Label on every namespace the harness creates, so that leftovers of a
/// killed run can be found: `kubectl delete ns -l tidal.e2e/test`.
pub const TEST_LABEL: &str = "tidal.e2e/test";

/// Set to keep test namespaces after the test, for debugging.
pub const KEEP_ENV: &str = "TIDAL_E2E_KEEP_NAMESPACES";

/// A client for the cluster named by `KUBECONFIG`, plus the configuration it
/// was built from (needed to clean up from a destructor).
#[derive(Clone)]
pub struct Harness {
    client: Client,
    config: Config,
}

impl Harness {
    /// Connects to the cluster in `KUBECONFIG`. Fails when it is unset rather
    /// than falling back to `~/.kube/config`: these tests create and delete
    /// namespaces and must never run against a cluster nobody chose.
    pub async fn connect() -> Result<Self> {
        let path = std::env::var_os("KUBECONFIG")
            .filter(|p| !p.is_empty())
            .ok_or(Error::NoKubeconfig)?;
        let shown = path.to_string_lossy().into_owned();
        let kubeconfig = Kubeconfig::read_from(&path).map_err(|e| Error::Kubeconfig {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| Error::Kubeconfig {
                path: shown,
                message: e.to_string(),
            })?;
        let client = Client::try_from(config.clone())?;
        Ok(Self { client, config })
    }

    /// The configuration the client was built from (its credentials reach the cluster's
    /// other components, e.g. metrics-server's /metrics in the scale harness).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The API client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates a namespace named after `prefix` and unique to this call; it
    /// is deleted when the returned guard is dropped (also on panic).
    pub async fn namespace(&self, prefix: &str) -> Result<TestNamespace> {
        let name = unique_name(prefix);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(TEST_LABEL.to_owned(), "true".to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        tracing::info!(namespace = %name, "created test namespace");
        Ok(TestNamespace {
            name,
            config: self.config.clone(),
            keep: std::env::var_os(KEEP_ENV).is_some(),
        })
    }
}

/// A DNS-label name: `prefix-<pid>-<counter>-<time>`, at most 63 characters.
fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() % 1_000_000);
    let clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let suffix = format!("-{}-{n}-{t}", std::process::id());
    let keep = 63 - suffix.len();
    let head = clean.trim_matches('-');
    let head = &head[..head.len().min(keep)];
    format!("{}{suffix}", head.trim_end_matches('-'))
}

/// A namespace owned by one test. Dropping it deletes the namespace (and so
/// everything in it); tests running at once each have their own.
pub struct TestNamespace {
    name: String,
    config: Config,
    keep: bool,
}

impl TestNamespace {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("keeping namespace {} ({KEEP_ENV} is set)", self.name);
            return;
        }
        // A destructor cannot await, and the test's runtime may be unwinding
        // from a panic, so the delete runs on its own thread with its own
        // runtime and client. The API deletes the contents asynchronously.
        let name = self.name.clone();
        let config = self.config.clone();
        let outcome = std::thread::spawn(move || -> Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|source| Error::Io {
                    path: "tokio runtime".into(),
                    source,
                })?;
            rt.block_on(async {
                let client = Client::try_from(config)?;
                match Api::<Namespace>::all(client)
                    .delete(&name, &DeleteParams::background())
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                    Err(e) => Err(e.into()),
                }
            })
        })
        .join();
        match outcome {
            Ok(Ok(())) => tracing::info!(namespace = %self.name, "deleted test namespace"),
            Ok(Err(e)) => eprintln!("could not delete namespace {}: {e}", self.name),
            Err(_) => eprintln!(
                "could not delete namespace {}: cleanup thread panicked",
                self.name
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_are_unique_dns_labels_even_for_long_odd_prefixes() {
        let a = unique_name("HPA scale/up__test-with-a-very-long-name-that-goes-on-and-on-and-on");
        let b = unique_name("HPA scale/up__test-with-a-very-long-name-that-goes-on-and-on-and-on");
        assert_ne!(a, b);
        for n in [&a, &b] {
            assert!(n.len() <= 63, "{n}");
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{n}"
            );
            assert!(!n.starts_with('-') && !n.ends_with('-'), "{n}");
        }
    }
}
