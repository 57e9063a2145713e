//! `--keys FILE`: the key list a cluster publishes, read offline. It is the ConfigMap's
//! `keys.json` (a JSON list of {id, recipient, created, state}) or the body of the operator's
//! `GET /v1/keys` (`{"recipient": ..., "keys": [...]}`).

use std::path::Path;

use seal_shared::keys::{KeyId, SealRecipient};
use seal_shared::public_keys::PublishedKey;
use serde_json::Value;

use crate::failure::{Failure, Result};
use crate::files::{Input, check_path_arg};

/// Where a key stands in the cluster's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// The sealing key: new seals go to it.
    Current,
    /// Still opens what was sealed to it, but no longer seals.
    Old,
    /// Opens nothing any more; its private key is deleted after a grace period.
    Retired,
}

pub struct KeyList {
    keys: Vec<(SealRecipient, KeyState)>,
}

impl KeyList {
    /// Reads and checks a key list. Every failure is a usage error: the command was told to
    /// rely on this file.
    pub fn load(path: &Path) -> Result<KeyList> {
        check_path_arg(path, "--keys").map_err(Failure::usage)?;
        let input = Input::File(path.to_path_buf());
        let origin = input.name();
        let text = input.read_text().map_err(Failure::usage)?;
        KeyList::parse(&text).map_err(|failure| {
            Failure::new(format!("{origin}: {}", failure.message()))
                .hint("--keys takes the cluster's key list: the seal-public-keys ConfigMap's keys.json, or the operator's GET /v1/keys")
                .usage()
        })
    }

    /// Reads a key list from its JSON text; the caller names where it came from.
    pub fn parse(text: &str) -> Result<KeyList> {
        let keys = parse_published(text)?
            .into_iter()
            .map(|(recipient, state, _)| (recipient, state))
            .collect();
        Ok(KeyList { keys })
    }

    pub fn state(&self, id: KeyId) -> Option<KeyState> {
        self.keys
            .iter()
            .find(|(known, _)| known.id == id)
            .map(|(_, state)| *state)
    }

    /// The ids of every key in the list.
    pub fn ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(|(key, _)| key.id).collect()
    }

    /// The one key marked active. None or several is an error: which one seals must not be
    /// a guess.
    pub fn current(&self) -> Result<&SealRecipient> {
        let mut active = self
            .keys
            .iter()
            .filter(|(_, state)| *state == KeyState::Current);
        match (active.next(), active.next()) {
            (Some((key, _)), None) => Ok(key),
            (None, _) => Err(Failure::new("the key list marks no key active (the sealing key)")
                .hint("wait until seal-operator has published its sealing key, and fetch the list again")),
            (Some(_), Some(_)) => Err(Failure::new("the key list marks more than one key active")
                .hint("the operator repairs this on its next pass; fetch the list again")),
        }
    }
}

/// Reads and checks the keys a cluster publishes, whatever the text came from (a file given
/// to `--keys`, or the ConfigMap itself): each entry's recipient parsed, its id checked
/// against the recipient, its state known.
pub fn parse_published(text: &str) -> Result<Vec<(SealRecipient, KeyState, PublishedKey)>> {
    // serde_json's messages can quote the input; only the position is kept.
    let value: Value = serde_json::from_str(text).map_err(|e| {
        Failure::new(format!(
            "not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let list = match value {
        Value::Array(list) => list,
        Value::Object(mut object) => match object.remove("keys") {
            Some(Value::Array(list)) => list,
            _ => return Err(Failure::new("a JSON object without a `keys` list")),
        },
        _ => return Err(Failure::new("expected a JSON list of keys")),
    };
    let mut keys = Vec::with_capacity(list.len());
    for (index, entry) in list.into_iter().enumerate() {
        let key: PublishedKey = serde_json::from_value(entry).map_err(|_| {
            Failure::new(format!(
                "keys[{index}] is not an object with id, recipient, created and state"
            ))
        })?;
        let recipient: SealRecipient = key
            .recipient
            .parse()
            .map_err(|e| Failure::new(format!("keys[{index}].recipient: {e}")))?;
        // The id is derived from the recipient; a list where they disagree was edited.
        if key.id != recipient.id.to_string() {
            return Err(Failure::new(format!(
                "keys[{index}]: id {:?} is not the id of its recipient ({})",
                key.id, recipient.id
            )));
        }
        let state = match key.state.as_str() {
            "active" => KeyState::Current,
            "decrypt-only" => KeyState::Old,
            "retired" => KeyState::Retired,
            other => {
                return Err(Failure::new(format!(
                    "keys[{index}].state is {other:?}; expected active, decrypt-only or retired"
                )));
            }
        };
        keys.push((recipient, state, key));
    }
    Ok(keys)
}

/// How a key id is marked in `seal show`: current, old or unknown to the list.
pub fn mark(list: Option<&KeyList>, id: KeyId) -> &'static str {
    match list.map(|list| list.state(id)) {
        None => "",
        Some(Some(KeyState::Current)) => " (current)",
        Some(Some(KeyState::Old)) => " (old)",
        Some(Some(KeyState::Retired)) => " (retired)",
        Some(None) => " (unknown)",
    }
}
