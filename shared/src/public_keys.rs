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
/// Annotation on the ConfigMap asking for a new sealing key. Its value is an opaque request
/// id: the request is answered once a key records that id, whatever any clock says. (Values
/// written by older clients are RFC 3339 times; one no newer than the sealing key counts as
/// answered.)
pub const ROTATE_REQUESTED: &str = "seal.dev/rotate-requested-at";
/// Annotation the operator sets on the ConfigMap, in the same write that publishes the keys:
/// the request id the published sealing key answers.
pub const ROTATE_ANSWERED: &str = "seal.dev/rotate-answered";
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
