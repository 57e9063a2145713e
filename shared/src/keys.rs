//! age X25519 keys as seal uses them: recipients to seal to, identities to unseal with, and
//! the short key id that names a key pair in sealed items, Secrets and status.

use std::fmt;
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};
use age::x25519;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The public half of a seal key pair: 16 hex digits of SHA-256 over the recipient string.
/// Short enough to read in a log line, long enough that distinct keys never collide in
/// practice, and computable by anyone who holds only the public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 8]);

impl KeyId {
    pub fn of(recipient: &x25519::Recipient) -> KeyId {
        let digest = Sha256::digest(recipient.to_string().as_bytes());
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid key id {0:?}: expected 16 lowercase hex digits")]
pub struct InvalidKeyId(pub String);

impl FromStr for KeyId {
    type Err = InvalidKeyId;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let invalid = || InvalidKeyId(s.to_owned());
        if s.len() != 16 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(invalid());
        }
        let mut id = [0u8; 8];
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| invalid())?;
        }
        Ok(KeyId(id))
    }
}

/// A recipient to seal to, with its id computed once.
#[derive(Clone, Debug)]
pub struct SealRecipient {
    pub recipient: x25519::Recipient,
    pub id: KeyId,
}

impl SealRecipient {
    pub fn new(recipient: x25519::Recipient) -> Self {
        let id = KeyId::of(&recipient);
        SealRecipient { recipient, id }
    }
}

impl FromStr for SealRecipient {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        x25519::Recipient::from_str(s)
            .map(SealRecipient::new)
            .map_err(|_| {
                // Other age recipient kinds are well-formed but deliberately unsupported: SSH keys
                // pull in an RSA crate with an open advisory, plugins need binaries in the cluster.
                let other_kind = s.starts_with("ssh-") || (s.starts_with("age1") && s.len() > 62);
                if other_kind {
                    Error::UnsupportedRecipient {
                        recipient: s.to_owned(),
                    }
                } else {
                    Error::InvalidRecipient {
                        recipient: s.to_owned(),
                    }
                }
            })
    }
}

/// Parses age's recipients-file format: one recipient per line, `#` comments, blank lines.
/// `origin` names the file in errors.
pub fn parse_recipients_file(text: &str, origin: &str) -> Result<Vec<SealRecipient>> {
    let mut recipients = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let recipient = line.parse::<SealRecipient>().map_err(|e| Error::InFile {
            origin: format!("{origin}:{}", index + 1),
            source: Box::new(e),
        })?;
        recipients.push(recipient);
    }
    Ok(recipients)
}

/// One private key with its id.
pub struct SealIdentity {
    pub identity: x25519::Identity,
    pub id: KeyId,
}

impl SealIdentity {
    pub fn generate() -> Self {
        SealIdentity::from_identity(x25519::Identity::generate())
    }

    pub fn from_identity(identity: x25519::Identity) -> Self {
        let id = KeyId::of(&identity.to_public());
        SealIdentity { identity, id }
    }

    pub fn recipient(&self) -> SealRecipient {
        SealRecipient::new(self.identity.to_public())
    }

    /// The identity in age's `AGE-SECRET-KEY-1...` encoding, kept secret.
    pub fn to_secret_string(&self) -> SecretString {
        self.identity.to_string()
    }

    /// Reads one `AGE-SECRET-KEY-1...` string. The error never echoes the input.
    pub fn parse(secret: &str) -> Result<Self> {
        x25519::Identity::from_str(secret.trim())
            .map(SealIdentity::from_identity)
            .map_err(|_| Error::InvalidIdentity {
                detail: "not an age X25519 identity (AGE-SECRET-KEY-1...)".into(),
            })
    }
}

impl fmt::Debug for SealIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealIdentity")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The private keys available for unsealing, found by key id.
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: Vec<SealIdentity>,
}

impl KeyRing {
    pub fn new() -> Self {
        KeyRing::default()
    }

    pub fn insert(&mut self, identity: SealIdentity) {
        if !self.contains(identity.id) {
            self.keys.push(identity);
        }
    }

    pub fn contains(&self, id: KeyId) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    pub fn get(&self, id: KeyId) -> Option<&SealIdentity> {
        self.keys.iter().find(|k| k.id == id)
    }

    pub fn ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.keys.iter().map(|k| k.id)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Adds every identity in an age identity file. Only X25519 identities are supported;
    /// errors name the line, never its content, because the content is a private key.
    pub fn add_identity_file(&mut self, text: &SecretString, origin: &str) -> Result<usize> {
        let mut added = 0;
        for (index, line) in text.expose_secret().lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity = SealIdentity::parse(line).map_err(|_| Error::InvalidIdentity {
                detail: format!(
                    "{origin}:{}: not an age X25519 identity (expected AGE-SECRET-KEY-1...; \
                     SSH keys, passphrase-encrypted and plugin identities are not supported)",
                    index + 1
                ),
            })?;
            self.insert(identity);
            added += 1;
        }
        if added == 0 {
            return Err(Error::InvalidIdentity {
                detail: format!("{origin}: contains no identity"),
            });
        }
        Ok(added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_round_trips_and_rejects_garbage() {
        let id = SealIdentity::generate().id;
        assert_eq!(id.to_string().parse::<KeyId>().unwrap(), id);
        for bad in [
            "",
            "0123",
            "0123456789abcdeg",
            "0123456789ABCDEF",
            "0123456789abcdef0",
        ] {
            assert!(bad.parse::<KeyId>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn key_id_is_the_same_from_either_half() {
        let identity = SealIdentity::generate();
        assert_eq!(identity.recipient().id, identity.id);
    }

    #[test]
    fn recipients_file_skips_comments_and_names_bad_lines() {
        let a = SealIdentity::generate().recipient().recipient.to_string();
        let text = format!("# cluster a\n\n{a}\n  \nnot-a-key\n");
        let err = parse_recipients_file(&text, "r.txt").unwrap_err();
        assert!(err.to_string().contains("r.txt:5"), "{err}");
        let ok = parse_recipients_file(&format!("# x\n{a}\n"), "r.txt").unwrap();
        assert_eq!(ok.len(), 1);
    }

    #[test]
    fn identity_file_errors_never_echo_the_line() {
        let mut ring = KeyRing::new();
        let secret =
            SecretString::from("AGE-SECRET-KEY-1NOTREALLYAKEYBUTSECRETLOOKING\n".to_owned());
        let err = ring
            .add_identity_file(&secret, "id.txt")
            .unwrap_err()
            .to_string();
        assert!(err.contains("id.txt:1"), "{err}");
        assert!(!err.contains("NOTREALLY"), "{err}");
    }
}
