//! age X25519 keys as seal uses them: recipients to seal to, identities to unseal with, and
//! the short key id that names a key pair in sealed items, Secrets and status.

use std::fmt;
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};
use age::x25519;
use sha2::{Digest, Sha256};

use crate::escape;

/// Why a text is not a recipient seal can seal to. Never carries the text: a "recipient"
/// may be a private key pasted in the wrong place, or one with a typo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecipientError {
    #[error("the recipient is empty")]
    Empty,
    #[error("this is a private key (an age identity), not a recipient; it must not be shared")]
    PrivateKey,
    #[error(
        "a comment after a recipient on the same line is not part of age's recipients-file format"
    )]
    TrailingComment,
    #[error("this is an SSH key; seal seals to age X25519 recipients (age1...) only")]
    Ssh,
    #[error("this is an age plugin recipient; seal seals to age X25519 recipients (age1...) only")]
    Plugin,
    #[error(
        "not a valid age recipient: it is {len} characters long, and an X25519 recipient is age1 followed by 58 letters and digits (62 in all)"
    )]
    Length { len: usize },
    #[error(
        "not a valid age recipient: it has the length of one but its checksum does not match (a typo, or characters changed in copying)"
    )]
    Checksum,
    #[error("not an age recipient: an X25519 recipient is age1 followed by 58 letters and digits")]
    NotRecipient,
}

/// Why an identity file cannot be used. The caller names the file and line, never its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    #[error("not an age X25519 identity (AGE-SECRET-KEY-1...)")]
    NotIdentity,
    #[error("this is a recipient (a public key), not an identity")]
    Recipient,
    #[error("this kind of identity (SSH, plugin or passphrase-protected) is not supported")]
    Unsupported,
    #[error("it is an age-encrypted file, not an identity file")]
    Encrypted,
    #[error("it contains no identity")]
    Empty,
}

/// Why a key could not be read. The library's `Error` takes it as its `Recipient`,
/// `Identity` and `InFile` variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error(transparent)]
    Recipient(RecipientError),
    #[error(transparent)]
    Identity(IdentityError),
    #[error("{origin}: {source}")]
    InFile {
        origin: String,
        source: Box<KeyError>,
    },
}

type Result<T, E = KeyError> = std::result::Result<T, E>;

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
    type Err = KeyError;

    /// Reads one `age1...` recipient. The error describes what the text is instead, and
    /// never quotes it: it may be a private key pasted in the wrong place.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if let Ok(recipient) = x25519::Recipient::from_str(s) {
            return Ok(SealRecipient::new(recipient));
        }
        Err(KeyError::Recipient(classify_non_recipient(s)))
    }
}

/// What a text that did not parse as an X25519 recipient is, as far as can be told safely.
fn classify_non_recipient(s: &str) -> RecipientError {
    if s.is_empty() {
        return RecipientError::Empty;
    }
    if escape::contains_identity(s) {
        return RecipientError::PrivateKey;
    }
    if let Some((before, _)) = s.split_once('#')
        && before.ends_with(char::is_whitespace)
        && !before.trim().is_empty()
    {
        return RecipientError::TrailingComment;
    }
    let lower = s.to_ascii_lowercase();
    if ["ssh-", "ecdsa-", "sk-ssh-", "sk-ecdsa-"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return RecipientError::Ssh;
    }
    let Some(data) = lower.strip_prefix("age1") else {
        return RecipientError::NotRecipient;
    };
    // Bech32 has no '1' in its data alphabet: a second one ends the human-readable part of a
    // plugin recipient (age1yubikey1...). Only SSH keys and plugins are other kinds; SSH keys
    // pull in an RSA crate with an open advisory, plugins need binaries in the cluster.
    if data.contains('1') {
        return RecipientError::Plugin;
    }
    match s.chars().count() {
        62 => RecipientError::Checksum,
        len => RecipientError::Length { len },
    }
}

/// Parses age's recipients-file format: one recipient per line, `#` comments on lines of
/// their own, blank lines. `origin` names the file in errors, with the line number; a line is
/// never quoted, since it may be a private key or one with a typo.
pub fn parse_recipients_file(text: &str, origin: &str) -> Result<Vec<SealRecipient>> {
    let mut recipients = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let recipient = line
            .parse::<SealRecipient>()
            .map_err(|e| KeyError::InFile {
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
            .map_err(|_| KeyError::Identity(IdentityError::NotIdentity))
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
        let in_file = |place: String, problem: IdentityError| KeyError::InFile {
            origin: place,
            source: Box::new(KeyError::Identity(problem)),
        };
        let text = text.expose_secret();
        if text.starts_with("age-encryption.org/")
            || text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----")
        {
            return Err(in_file(origin.to_owned(), IdentityError::Encrypted));
        }
        let mut added = 0;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity = SealIdentity::parse(line).map_err(|_| {
                let problem = if line.parse::<SealRecipient>().is_ok() {
                    IdentityError::Recipient
                } else if line.starts_with("AGE-PLUGIN-") || line.starts_with("-----BEGIN") {
                    IdentityError::Unsupported
                } else {
                    IdentityError::NotIdentity
                };
                in_file(format!("{origin}:{}", index + 1), problem)
            })?;
            self.insert(identity);
            added += 1;
        }
        if added == 0 {
            return Err(in_file(origin.to_owned(), IdentityError::Empty));
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
    fn a_private_key_given_as_a_recipient_is_named_never_echoed() {
        let identity = SealIdentity::generate().to_secret_string();
        let key = identity.expose_secret();
        for text in [
            key.to_owned(),
            key.to_lowercase(),
            format!("  {key}  "),
            format!("{}X", &key[..key.len() - 1]),
            format!("{key} # mine"),
        ] {
            let err = text.parse::<SealRecipient>().unwrap_err();
            assert!(
                matches!(err, KeyError::Recipient(RecipientError::PrivateKey)),
                "{err}"
            );
            assert!(!err.to_string().contains(&key[20..40]), "{err}");
        }
        let file = format!("# recipients\n{key}\n");
        let err = parse_recipients_file(&file, "r.txt")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("r.txt:2: this is a private key"), "{err}");
        assert!(!err.contains(&key[20..40]), "{err}");
    }

    #[test]
    fn other_non_recipients_are_described_without_quoting() {
        let a = SealIdentity::generate().recipient().recipient.to_string();
        let typo = format!("{}{}", &a[..10], if &a[10..11] == "q" { "p" } else { "q" }) + &a[11..];
        let cases = [
            (String::new(), RecipientError::Empty),
            (
                format!("{a} # prod cluster"),
                RecipientError::TrailingComment,
            ),
            ("ssh-ed25519 AAAAC3Nza".to_owned(), RecipientError::Ssh),
            (format!("age1yubikey1{}", &a[4..]), RecipientError::Plugin),
            (a[..40].to_owned(), RecipientError::Length { len: 40 }),
            (typo.clone(), RecipientError::Checksum),
            ("hunter2".to_owned(), RecipientError::NotRecipient),
        ];
        for (text, expected) in cases {
            match text.parse::<SealRecipient>() {
                Err(KeyError::Recipient(found)) => assert_eq!(found, expected, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let err = typo.parse::<SealRecipient>().unwrap_err().to_string();
        assert!(!err.contains(&typo[4..20]), "{err}");
    }

    #[test]
    fn identity_file_errors_name_what_the_line_is() {
        let mut ring = KeyRing::new();
        let a = SealIdentity::generate().recipient().recipient.to_string();
        let cases = [
            (format!("# public\n{a}\n"), "id.txt:2: this is a recipient"),
            (
                "age-encryption.org/v1\n-> scrypt x 18\n".to_owned(),
                "id.txt: it is an age-encrypted",
            ),
            (
                "# nothing\n\n".to_owned(),
                "id.txt: it contains no identity",
            ),
            (
                "AGE-PLUGIN-YUBIKEY-1QQQQ\n".to_owned(),
                "id.txt:1: this kind of identity",
            ),
        ];
        for (text, expected) in cases {
            let err = ring
                .add_identity_file(&SecretString::from(text), "id.txt")
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(expected), "{err}");
        }
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
