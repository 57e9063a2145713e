//! The key backup: one armored age file per operator key, kept in the ConfigMap
//! `seal-key-backup` under `<key id>.age`. Each file holds the key in age's own identity-file
//! format, with its creation time and public key as comments, so stock `age -d -i
//! backup.key` opens an entry and the result is a working identity file. The ConfigMap holds
//! ciphertext only and can be committed to Git like any sealed file.

use std::io::{Read, Write};

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::secrecy::ExposeSecret;
use age::{Decryptor, Encryptor, Identity, Recipient};
use zeroize::Zeroizing;

use crate::keys::{KeyId, KeyRing, SealIdentity, SealRecipient};

/// The ConfigMap in the operator's namespace that holds the backup.
pub const CONFIGMAP: &str = "seal-key-backup";
/// Annotation on that ConfigMap: the key ids of the recipients its entries are sealed to.
pub const RECIPIENTS_ANNOTATION: &str = "seal.dev/backup-recipients";
/// No entry is larger than this: an identity, two comment lines and an armored header.
pub const MAX_ENTRY_BYTES: usize = 16 * 1024;

/// The data key under which a key's backup is kept.
pub fn entry_name(id: KeyId) -> String {
    format!("{id}.age")
}

/// The key id an entry name stands for, if it is one.
pub fn entry_key_id(name: &str) -> Option<KeyId> {
    name.strip_suffix(".age")?.parse().ok()
}

/// What the recipients annotation says for `recipients`: their key ids, sorted.
pub fn recipients_label(recipients: &[SealRecipient]) -> String {
    let mut ids: Vec<String> = recipients.iter().map(|r| r.id.to_string()).collect();
    ids.sort();
    ids.dedup();
    ids.join(",")
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    #[error("no backup recipients: give at least one age recipient")]
    NoRecipients,
    #[error("age encryption failed: {0}")]
    Encrypt(String),
    #[error("entry {entry} is larger than {MAX_ENTRY_BYTES} bytes; it is not a seal key backup")]
    TooLarge { entry: String },
    #[error("entry {entry} is not an armored age file")]
    NotAge { entry: String },
    #[error("entry {entry} is not sealed to any of the given identities")]
    NoMatchingIdentity { entry: String },
    #[error("entry {entry} was altered or cut short (its integrity check failed)")]
    Damaged { entry: String },
    #[error("entry {entry} does not hold an age identity")]
    NoIdentity { entry: String },
    #[error("entry {entry} holds the key {found}, not the key its name says")]
    WrongKey { entry: String, found: KeyId },
}

/// One key as restored from its entry.
pub struct BackedUpKey {
    pub identity: SealIdentity,
    /// The creation time the key had (RFC 3339), from the entry's `# created:` line.
    pub created: Option<String>,
}

/// Seals one key's identity for the backup.
pub fn seal_key(
    identity: &SealIdentity,
    created: &str,
    recipients: &[SealRecipient],
) -> Result<String, BackupError> {
    if recipients.is_empty() {
        return Err(BackupError::NoRecipients);
    }
    let secret = identity.to_secret_string();
    let text = Zeroizing::new(format!(
        "# created: {created}\n# public key: {}\n{}\n",
        identity.recipient().recipient,
        secret.expose_secret()
    ));
    let fail = |e: &dyn std::fmt::Display| BackupError::Encrypt(e.to_string());
    let encryptor =
        Encryptor::with_recipients(recipients.iter().map(|r| &r.recipient as &dyn Recipient))
            .map_err(|e| fail(&e))?;
    let mut out = Vec::new();
    let armored = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).map_err(|e| fail(&e))?;
    let mut writer = encryptor.wrap_output(armored).map_err(|e| fail(&e))?;
    writer.write_all(text.as_bytes()).map_err(|e| fail(&e))?;
    writer
        .finish()
        .and_then(|armor| armor.finish())
        .map_err(|e| fail(&e))?;
    String::from_utf8(out).map_err(|e| fail(&e))
}

/// Opens the entry `entry` (its data key) with any identity of `ring`, and checks that it
/// holds the key its name says.
pub fn open_key(entry: &str, armored: &str, ring: &KeyRing) -> Result<BackedUpKey, BackupError> {
    let named = || entry.to_owned();
    if armored.len() > MAX_ENTRY_BYTES {
        return Err(BackupError::TooLarge { entry: named() });
    }
    let decryptor = Decryptor::new(ArmoredReader::new(armored.as_bytes()))
        .map_err(|_| BackupError::NotAge { entry: named() })?;
    let identities: Vec<&SealIdentity> = ring.ids().filter_map(|id| ring.get(id)).collect();
    let mut reader = decryptor
        .decrypt(identities.iter().map(|i| &i.identity as &dyn Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => BackupError::NoMatchingIdentity { entry: named() },
            _ => BackupError::Damaged { entry: named() },
        })?;
    let mut plain = Zeroizing::new(Vec::new());
    reader
        .by_ref()
        .take(MAX_ENTRY_BYTES as u64)
        .read_to_end(&mut plain)
        .map_err(|_| BackupError::Damaged { entry: named() })?;
    let text =
        std::str::from_utf8(&plain).map_err(|_| BackupError::NoIdentity { entry: named() })?;
    let created = text
        .lines()
        .find_map(|l| l.strip_prefix("# created:"))
        .map(|t| t.trim().to_owned());
    let identity = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .and_then(|l| SealIdentity::parse(l).ok())
        .ok_or_else(|| BackupError::NoIdentity { entry: named() })?;
    if entry_key_id(entry) != Some(identity.id) {
        return Err(BackupError::WrongKey {
            entry: named(),
            found: identity.id,
        });
    }
    Ok(BackedUpKey { identity, created })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring_of(identity: &SealIdentity) -> KeyRing {
        let mut ring = KeyRing::new();
        ring.insert(SealIdentity::from_identity(identity.identity.clone()));
        ring
    }

    #[test]
    fn an_entry_opens_with_the_backup_identity_and_names_its_key() {
        let key = SealIdentity::generate();
        let backup = SealIdentity::generate();
        let entry = entry_name(key.id);
        let armored =
            seal_key(&key, "2026-01-01T00:00:00Z", &[backup.recipient()]).expect("sealed");
        assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
        assert!(
            !armored.contains("AGE-SECRET-KEY"),
            "the key is in the clear"
        );
        let restored = open_key(&entry, &armored, &ring_of(&backup)).expect("opened");
        assert_eq!(restored.identity.id, key.id);
        assert_eq!(restored.created.as_deref(), Some("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn wrong_identities_names_and_damage_are_refused() {
        let key = SealIdentity::generate();
        let backup = SealIdentity::generate();
        let armored = seal_key(&key, "t", &[backup.recipient()]).expect("sealed");
        let entry = entry_name(key.id);
        let stranger = SealIdentity::generate();
        assert!(matches!(
            open_key(&entry, &armored, &ring_of(&stranger)),
            Err(BackupError::NoMatchingIdentity { .. })
        ));
        let other = entry_name(stranger.id);
        assert!(matches!(
            open_key(&other, &armored, &ring_of(&backup)),
            Err(BackupError::WrongKey { .. })
        ));
        assert!(matches!(
            open_key(&entry, "not age", &ring_of(&backup)),
            Err(BackupError::NotAge { .. })
        ));
        let huge = "x".repeat(MAX_ENTRY_BYTES + 1);
        assert!(matches!(
            open_key(&entry, &huge, &ring_of(&backup)),
            Err(BackupError::TooLarge { .. })
        ));
        assert!(seal_key(&key, "t", &[]).is_err());
    }
}
