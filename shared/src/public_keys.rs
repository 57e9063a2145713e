//! How seal-operator publishes its public keys and how the CLI reads them: the ConfigMap's
//! name and keys, the rotation-request annotation, and the shape of one published key.

use serde::{Deserialize, Serialize};

/// The ConfigMap in the operator's namespace that carries the public keys.
pub const CONFIGMAP: &str = "seal-public-keys";
/// Data key: the current sealing recipient (`age1...`).
pub const RECIPIENT_KEY: &str = "recipient";
/// Data key: the current sealing recipient in age's recipients-file format.
pub const RECIPIENTS_FILE_KEY: &str = "recipients.txt";
/// Data key: every decrypt-capable key, as a JSON list of [`PublishedKey`].
pub const KEYS_KEY: &str = "keys.json";
/// Annotation on the ConfigMap asking for a new sealing key; an RFC 3339 time newer than the
/// current key triggers rotation.
pub const ROTATE_REQUESTED: &str = "seal.dev/rotate-requested-at";
/// The namespace the chart installs the operator into by default.
pub const DEFAULT_CONTROLLER_NAMESPACE: &str = "seal-system";

/// One key as published: public facts only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedKey {
    pub id: String,
    pub recipient: String,
    /// RFC 3339.
    pub created: String,
    /// `active` (the sealing key) or `decrypt-only`.
    pub state: String,
}
