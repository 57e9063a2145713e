//! Leader election with a Lease: only the leader creates and rotates keys. With election
//! off, this replica leads alone.

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;

pub const LEASE_NAME: &str = "seal-operator";

/// A channel whose value is `true` while this replica leads. Read it with `borrow()`.
pub async fn elect(
    client: Client,
    namespace: &str,
    identity: &str,
    enabled: bool,
) -> Result<watch::Receiver<bool>, LeaseManagerError> {
    if !enabled {
        let (sender, receiver) = watch::channel(true);
        // Leadership never changes, but the channel must stay open: on a closed channel
        // `changed()` returns at once, and every loop waiting on it would spin.
        tokio::spawn(async move { sender.closed().await });
        return Ok(receiver);
    }
    let manager = LeaseManagerBuilder::new(client, LEASE_NAME)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(15)
        .with_grace(5)
        .build()
        .await?;
    let (receiver, task) = manager.watch().await;
    tokio::spawn(async move {
        if let Ok(Err(error)) = task.await {
            tracing::error!(%error, "leader election stopped");
        }
    });
    Ok(receiver)
}

/// Waits until leadership changes. A closed channel never changes again, so this then waits
/// forever instead of returning at once, which would turn the caller's loop into a busy one.
pub async fn changed(leading: &mut watch::Receiver<bool>) {
    if leading.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn offline_client() -> Client {
        let url = "http://127.0.0.1:9".parse().expect("a valid URL");
        Client::try_from(kube::Config::new(url)).expect("a client needs no connection")
    }

    #[tokio::test]
    async fn without_election_this_replica_leads_and_waiting_for_a_change_blocks() {
        let mut leading = elect(offline_client(), "seal", "a", false)
            .await
            .expect("no election, no error");
        assert!(*leading.borrow());
        assert!(leading.has_changed().is_ok(), "the channel was closed");
        let waited = tokio::time::timeout(Duration::from_millis(50), changed(&mut leading)).await;
        assert!(waited.is_err(), "a change was reported where none happened");
    }

    #[tokio::test]
    async fn a_closed_channel_does_not_wake_the_waiter() {
        let (sender, mut leading) = watch::channel(true);
        drop(sender);
        let waited = tokio::time::timeout(Duration::from_millis(50), changed(&mut leading)).await;
        assert!(
            waited.is_err(),
            "waiting on a closed channel returned at once"
        );
    }
}
