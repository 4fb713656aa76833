//! Leader election on a coordination.k8s.io Lease (hot standby).
//!
//! Every replica runs the watches, so a replica that takes over starts with warm caches; only
//! the lease holder reconciles: it reads metrics, decides, and writes scales, statuses and
//! events. A follower's reconcile returns before any of that and counts the skip
//! (`tidal_follower_skipped_writes_total`). The lease is managed by `kube-lease-manager`
//! (server-side apply on the Lease, renewal and takeover handled there) rather than by hand.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

use crate::Error;

/// Whether this replica may write. Cheap to clone; every reconcile asks it.
#[derive(Debug, Clone)]
pub struct Leadership {
    rx: watch::Receiver<bool>,
    /// Holds the sender of a fixed state, so `changed` waits forever instead of failing.
    _fixed: Option<std::sync::Arc<watch::Sender<bool>>>,
}

impl Leadership {
    /// A replica that always leads (leader election switched off, or tests).
    pub fn always() -> Self {
        let (tx, rx) = watch::channel(true);
        Leadership {
            rx,
            _fixed: Some(std::sync::Arc::new(tx)),
        }
    }

    /// Whether this replica currently holds the lease.
    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// Waits until leadership changes; returns the new state, or `None` when election stopped.
    pub async fn changed(&mut self) -> Option<bool> {
        self.rx.changed().await.ok()?;
        Some(*self.rx.borrow_and_update())
    }
}

/// Lease parameters from the flags.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Lease namespace.
    pub namespace: String,
    /// Lease name.
    pub name: String,
    /// Holder identity.
    pub identity: String,
    /// How long the lease stays valid without renewal.
    pub duration: Duration,
}

/// Starts the election. Returns once the lease state is known (held or held by someone else).
pub async fn elect(client: Client, config: LeaseConfig) -> Result<Leadership, Error> {
    // `--lease-duration` is at least 3 s (args.rs), so the renewal grace below is at least 1 s;
    // the floor keeps that true for callers that skip the flag parser.
    let seconds = config
        .duration
        .as_secs()
        .max(crate::args::MIN_LEASE_DURATION.as_secs());
    let manager = LeaseManagerBuilder::new(client, &config.name)
        .with_namespace(&config.namespace)
        .with_identity(&config.identity)
        .with_duration(seconds)
        // Renew at a third of the duration left, so one slow renewal does not lose the lease.
        .with_grace(seconds / 3)
        .with_field_manager("tidal-operator")
        .build()
        .await
        .map_err(|e| Error::LeaderElection(e.to_string()))?;
    let (rx, _task) = manager.watch().await;
    tracing::info!(lease = %config.name, namespace = %config.namespace, identity = %config.identity, "leader election started");
    Ok(Leadership { rx, _fixed: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_without_election_always_leads() {
        assert!(Leadership::always().is_leader());
    }
}
