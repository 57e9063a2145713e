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
        return Ok(watch::channel(true).1);
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
