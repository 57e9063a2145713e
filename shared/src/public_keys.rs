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
/// Annotation prefix on the ConfigMap asking the leader to retire or unretire one key:
/// `key-request.seal.dev/<key id>`, its value `retire <request id>` or `unretire <request
/// id>` (see [`KeyAction`]). One request per key at a time; a newer one replaces it.
pub const KEY_REQUEST_PREFIX: &str = "key-request.seal.dev/";
/// Annotation prefix the leader answers a key request with: `key-answer.seal.dev/<key id>`,
/// its value a JSON [`KeyAnswer`]. A request is done once the answer names its id.
pub const KEY_ANSWER_PREFIX: &str = "key-answer.seal.dev/";
/// The namespace the chart installs the operator into by default.
pub const DEFAULT_CONTROLLER_NAMESPACE: &str = "seal-system";

/// One key as published: public facts only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedKey {
    pub id: String,
    pub recipient: String,
    /// RFC 3339.
    pub created: String,
    /// `active` (the sealing key), `decrypt-only`, or `retired` (opens nothing; its Secret
    /// is deleted after `deleteAfter`).
    pub state: String,
    /// A retired key: when it was retired (RFC 3339, the operator's clock).
    #[serde(default, rename = "retiredAt", skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
    /// A retired key: the earliest time its Secret is deleted (RFC 3339).
    #[serde(
        default,
        rename = "deleteAfter",
        skip_serializing_if = "Option::is_none"
    )]
    pub delete_after: Option<String>,
    /// How many SealedSecrets the leader last found opened with this key; absent from
    /// operators that do not count (or, in `GET /v1/keys`, null on a replica that does not
    /// lead).
    #[serde(
        default,
        rename = "sealedSecrets",
        skip_serializing_if = "Option::is_none"
    )]
    pub sealed_secrets: Option<u64>,
}

/// What a key request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAction {
    /// Make a decrypt-only key open nothing, and delete it after the grace period.
    Retire,
    /// Bring a retired key back to decrypt-only within its grace period.
    Unretire,
}

impl KeyAction {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAction::Retire => "retire",
            KeyAction::Unretire => "unretire",
        }
    }

    /// The request annotation's value for request `id`.
    pub fn request(self, id: &str) -> String {
        format!("{} {id}", self.as_str())
    }

    /// Reads a request annotation's value: the action and the request id.
    pub fn parse_request(value: &str) -> Option<(KeyAction, &str)> {
        let (action, id) = value.trim().split_once(' ')?;
        let action = match action {
            "retire" => KeyAction::Retire,
            "unretire" => KeyAction::Unretire,
            _ => return None,
        };
        let id = id.trim();
        (!id.is_empty()).then_some((action, id))
    }
}

/// The leader's answer to a key request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyAnswer {
    /// The request id answered.
    pub request: String,
    /// `retire` or `unretire`.
    pub action: String,
    /// `retired`, `unretired`, `unchanged` (nothing to do) or `refused`.
    pub outcome: String,
    /// Why, in one word: `Retired`, `Unretired`, `AlreadyRetired`, `NotRetired`, or for a
    /// refusal `StillNeeded`, `SealingKey`, `StillActive`, `NoSuchKey`.
    #[serde(default)]
    pub reason: String,
    /// In words, for the user.
    pub message: String,
    /// A refused retirement: some of the SealedSecrets (`namespace/name`, escaped) that still
    /// need the key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed_secrets: Vec<String>,
    /// How many SealedSecrets need it in all (more than are named).
    #[serde(default)]
    pub needed_by: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_back_as_written() {
        let value = KeyAction::Unretire.request("req-1a-2b");
        assert_eq!(
            KeyAction::parse_request(&value),
            Some((KeyAction::Unretire, "req-1a-2b"))
        );
        assert_eq!(KeyAction::parse_request("retire"), None);
        assert_eq!(KeyAction::parse_request("delete req-1"), None);
        assert_eq!(KeyAction::parse_request("retire   "), None);
    }

    #[test]
    fn an_older_key_list_still_reads() {
        let key: PublishedKey = serde_json::from_str(
            r#"{"id":"0c87a417f764bcf7","recipient":"age1x","created":"2026-01-01T00:00:00Z","state":"active"}"#,
        )
        .expect("an older entry");
        assert_eq!(key.sealed_secrets, None);
        assert!(
            !serde_json::to_string(&key)
                .expect("json")
                .contains("retiredAt")
        );
    }
}
