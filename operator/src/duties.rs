//! What the leader's duties work with: the client, the keys, the flags that shape rotation
//! and retirement, and where to report. Its own module so that rotation (the loop) and
//! retirement (the key requests it answers) can share it without importing each other.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use kube::Client;
use seal_shared::keys::SealRecipient;

use crate::audit::Audit;
use crate::keys::Keys;
use crate::ledger::Ledger;
use crate::metrics::Metrics;

/// The leader's duties: exactly one sealing key, rotation, retirement and the public-key
/// ConfigMap (see `rotation` and `retire`).
pub struct LeaderDuties {
    pub client: Client,
    pub namespace: String,
    pub keys: Arc<Keys>,
    pub period: Duration,
    pub audit: Arc<Audit>,
    pub metrics: Arc<Metrics>,
    /// Set once the public-key ConfigMap has been written (readiness waits for it).
    pub published: Arc<AtomicBool>,
    /// Every key is backed up to these before it is published; none: no backup.
    pub backup_recipients: Vec<SealRecipient>,
    /// How long a retired key is kept before its Secret is deleted.
    pub retire_grace: Duration,
    /// Where the SealedSecrets are that a key may still be needed by: the controller's scope.
    pub watch_namespace: Option<String>,
    /// What the passes found: how many SealedSecrets each key opened, published with the keys.
    pub ledger: Arc<Ledger>,
}
