//! Sealing and unsealing one Secret item: one value, one binary age file.

use std::cell::{Cell, RefCell};
use std::io::{BufRead, ErrorKind, Read, Write};

use age::{DecryptError, Decryptor, Encryptor, Identity, Recipient};
use age_core::format::{FileKey, Stanza};
use zeroize::Zeroizing;

use crate::binding::{Binding, BindingRecipient, BindingStanzaError, Placement};
use crate::keys::{KeyId, KeyRing, SealRecipient};
use crate::limits::{
    MAX_HEADER_BYTES, MAX_HEADER_STANZAS, MAX_ITEM_CIPHERTEXT_BYTES, MAX_RECIPIENTS,
};

/// Why an item could not be sealed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealItemError {
    #[error("no recipients: give at least one age recipient to seal to")]
    NoRecipients,
    #[error("{given} recipients given; an item may be sealed to at most {limit}")]
    TooManyRecipients { given: usize, limit: usize },
    #[error("the item's header would be larger than seal opens ({limit} bytes)")]
    HeaderTooLarge { limit: usize },
    #[error("age encryption failed: {0}")]
    Encrypt(String),
}

/// Encrypts `value` to every recipient, binding it to `binding`.
pub fn seal_item(
    value: &[u8],
    binding: &Binding,
    recipients: &[SealRecipient],
) -> Result<Vec<u8>, SealItemError> {
    if recipients.is_empty() {
        return Err(SealItemError::NoRecipients);
    }
    if recipients.len() > MAX_RECIPIENTS {
        return Err(SealItemError::TooManyRecipients {
            given: recipients.len(),
            limit: MAX_RECIPIENTS,
        });
    }
    let key_ids: Vec<KeyId> = recipients.iter().map(|r| r.id).collect();
    let binding = BindingRecipient {
        stanza: binding.to_stanza(&key_ids),
    };
    let all = recipients
        .iter()
        .map(|r| &r.recipient as &dyn Recipient)
        .chain(std::iter::once(&binding as &dyn Recipient));
    let encryptor =
        Encryptor::with_recipients(all).map_err(|e| SealItemError::Encrypt(e.to_string()))?;
    let mut out =
        Vec::with_capacity(value.len() + 128 + 120 * recipients.len() + value.len() / 4096);
    let io_error = |e: std::io::Error| SealItemError::Encrypt(e.to_string());
    let mut writer = encryptor.wrap_output(&mut out).map_err(io_error)?;
    writer.write_all(value).map_err(io_error)?;
    writer.finish().map_err(io_error)?;
    // What seal writes, seal must open: the same bounds the reader applies.
    check_header_bounds(&out).map_err(|_| SealItemError::HeaderTooLarge {
        limit: MAX_HEADER_BYTES,
    })?;
    Ok(out)
}

/// Why an item could not be unsealed. Each variant has a stable [`UnsealError::reason`]
/// for conditions, events and metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnsealError {
    #[error("not a binary age file; was it sealed by seal, and is it intact?")]
    NotAgeFile,
    #[error("{0}")]
    Binding(#[from] BindingStanzaError),
    #[error("{}", no_matching_key(.sealed_to))]
    NoMatchingKey { sealed_to: Vec<KeyId> },
    #[error("sealed by a newer seal: its binding has version {0:?}, which this seal does not know")]
    NewerVersion(String),
    #[error("the ciphertext is truncated")]
    Truncated,
    #[error(
        "the ciphertext was altered or cut short (integrity check failed); reseal it from the original"
    )]
    Tampered,
    #[error(
        "sealed for {sealed_for} but found at {found_at}; a sealed item cannot be moved, reseal it for its new place"
    )]
    BindingMismatch {
        sealed_for: Box<Binding>,
        found_at: Box<Placement>,
    },
    #[error("the value is larger than a Kubernetes Secret may hold")]
    TooLarge,
    #[error(
        "the item's header is larger than {limit} bytes, more than seal ever writes: seal did not write this item"
    )]
    HeaderTooLarge { limit: usize },
    #[error(
        "the item's header has more than {limit} stanzas (seal writes one per recipient, at most {MAX_RECIPIENTS}, the binding and age's grease): seal did not write this item"
    )]
    TooManyStanzas { limit: usize },
}

fn no_matching_key(ids: &[KeyId]) -> String {
    if ids.is_empty() {
        return "the item names no key, so none here can open it".to_owned();
    }
    let ids = ids
        .iter()
        .map(KeyId::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    format!("sealed to key(s) {ids} but none of them is available here")
}

impl UnsealError {
    /// A CamelCase reason, as Kubernetes conditions use.
    pub fn reason(&self) -> &'static str {
        match self {
            UnsealError::NoMatchingKey { .. } => "NoMatchingKey",
            UnsealError::BindingMismatch { .. } => "BindingMismatch",
            UnsealError::Binding(_)
            | UnsealError::NewerVersion(_)
            | UnsealError::NotAgeFile
            | UnsealError::TooLarge => "InvalidSpec",
            UnsealError::Truncated | UnsealError::Tampered => "DecryptFailed",
            UnsealError::HeaderTooLarge { .. } | UnsealError::TooManyStanzas { .. } => {
                "HeaderTooLarge"
            }
        }
    }
}

/// A value recovered from an item, with the key that opened it.
pub struct Unsealed {
    pub value: Zeroizing<Vec<u8>>,
    pub key_id: KeyId,
    pub binding: Binding,
    /// The ids of every key the item is sealed to, in its header's order. Authenticated:
    /// they are read from the header whose MAC the opening checked.
    pub sealed_to: Vec<KeyId>,
}

impl std::fmt::Debug for Unsealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unsealed")
            .field("len", &self.value.len())
            .field("key_id", &self.key_id)
            .field("binding", &self.binding)
            .field("sealed_to", &self.sealed_to)
            .finish()
    }
}

/// Decrypts an item found at `placement`, with whichever key of `ring` it names, and
/// refuses it unless its authenticated binding admits that placement.
/// An item's age header, read once its size is known to be one seal can have written.
/// The item's header, bounded before age parses it (see `check_header_bounds`) and handed to
/// age in one piece.
fn read_header(ciphertext: &[u8]) -> Result<Decryptor<HeaderInOnePiece<'_>>, UnsealError> {
    if ciphertext.len() > MAX_ITEM_CIPHERTEXT_BYTES {
        return Err(UnsealError::TooLarge);
    }
    let header_len = check_header_bounds(ciphertext)?;
    let input = HeaderInOnePiece {
        rest: ciphertext,
        header_len,
    };
    Decryptor::new_buffered(input).map_err(|e| match e {
        DecryptError::Io(io) if io.kind() == ErrorKind::UnexpectedEof => UnsealError::Truncated,
        _ => UnsealError::NotAgeFile,
    })
}

pub fn unseal_item(
    ciphertext: &[u8],
    placement: &Placement,
    ring: &KeyRing,
) -> Result<Unsealed, UnsealError> {
    let decryptor = read_header(ciphertext)?;
    let opener = BoundOpener {
        ring,
        binding: RefCell::new(None),
        used: Cell::new(None),
    };
    let result = decryptor.decrypt(std::iter::once(&opener as &dyn Identity));
    let seen = opener.binding.into_inner();
    let mut reader = match (result, seen) {
        // One of our keys opened the file key and age verified the header MAC over the
        // binding: a newer seal wrote it. The payload is never read.
        (Ok(_), Some(Err(BindingStanzaError::UnsupportedVersion(version)))) => {
            return Err(UnsealError::NewerVersion(version));
        }
        // One of our keys opened the file key but the MAC failed: the header was altered.
        (Err(DecryptError::InvalidMac), Some(Err(BindingStanzaError::UnsupportedVersion(_)))) => {
            return Err(UnsealError::Tampered);
        }
        (_, Some(Err(binding_error))) => return Err(binding_error.into()),
        (Err(DecryptError::NoMatchingKeys), Some(Ok((_, sealed_to)))) => {
            return Err(UnsealError::NoMatchingKey { sealed_to });
        }
        (Err(DecryptError::Io(io)), _) if io.kind() == ErrorKind::UnexpectedEof => {
            return Err(UnsealError::Truncated);
        }
        (Err(DecryptError::InvalidHeader | DecryptError::UnknownFormat), _) => {
            return Err(UnsealError::NotAgeFile);
        }
        (Err(_), _) => return Err(UnsealError::Tampered),
        (Ok(reader), Some(Ok((binding, sealed_to)))) => {
            // The header MAC has been verified: the binding is authentic from here on.
            if !binding.admits(placement) {
                return Err(UnsealError::BindingMismatch {
                    sealed_for: Box::new(binding),
                    found_at: Box::new(placement.clone()),
                });
            }
            (reader, binding, sealed_to)
        }
        (Ok(_), None) => return Err(UnsealError::Binding(BindingStanzaError::Missing)),
    };
    // Plaintext is never longer than the ciphertext; reserving it up front means the buffer
    // never reallocates and leaves no unzeroized copy behind.
    let mut value = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    match reader.0.read_to_end(&mut value) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Err(UnsealError::Truncated),
        Err(_) => return Err(UnsealError::Tampered),
    }
    let key_id = opener.used.get().ok_or(UnsealError::Tampered)?;
    Ok(Unsealed {
        value,
        key_id,
        binding: reader.1,
        sealed_to: reader.2,
    })
}

/// Refuses a header that seal cannot have written before age parses it, and returns how many
/// leading bytes age will read as the header (0 when the file is not age v1: age refuses it on
/// its first line). age 0.12 parses the whole header again after each line it reads, so its
/// cost grows with the square of the header's length: thousands of junk stanzas under a valid
/// MAC (which anyone holding the public key can make) took minutes. Only the line structure
/// is read here, in one pass over at most [`MAX_HEADER_BYTES`]; whether the lines are valid
/// stays age's call.
fn check_header_bounds(ciphertext: &[u8]) -> Result<usize, UnsealError> {
    const VERSION_LINE: &[u8] = b"age-encryption.org/v1\n";
    let Some(mut rest) = ciphertext.strip_prefix(VERSION_LINE) else {
        return Ok(0);
    };
    let mut header_len = VERSION_LINE.len();
    let mut stanzas = 0;
    loop {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        header_len += line.len() + usize::from(next.is_some());
        // A line that is no stanza, no MAC and no body line (64 base64 characters at most) is
        // where age refuses the header: it reads no further, so the bounds do not apply.
        let body = line.len() <= 64
            && line
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
        if !line.starts_with(b"-") && !body {
            return Ok(header_len);
        }
        if header_len > MAX_HEADER_BYTES {
            return Err(UnsealError::HeaderTooLarge {
                limit: MAX_HEADER_BYTES,
            });
        }
        // Body lines are base64 and never start with '-'; age's header ends at the first
        // line that starts with "---", or at the first line it cannot parse, which is never
        // later.
        if line.starts_with(b"---") {
            return Ok(header_len);
        }
        if line.starts_with(b"->") {
            stanzas += 1;
            if stanzas > MAX_HEADER_STANZAS {
                return Err(UnsealError::TooManyStanzas {
                    limit: MAX_HEADER_STANZAS,
                });
            }
        }
        match next {
            Some(next) => rest = next,
            // Cut short: age says so.
            None => return Ok(header_len),
        }
    }
}

/// An item's bytes as age reads them, with the header handed over whole. age 0.12 reads its
/// header with `read_until(b'\n')` and parses all it has after each call; giving it the
/// whole (already bounded) header in the first call makes that one parse instead of one per
/// line, so opening costs time linear in the header. The bytes and their order are exactly
/// the item's: only how many arrive per call differs, and the payload is read as usual.
struct HeaderInOnePiece<'a> {
    rest: &'a [u8],
    /// Bytes at the start of `rest` that the next `read_until` hands over at once.
    header_len: usize,
}

impl Read for HeaderInOnePiece<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.rest.read(buf)?;
        self.header_len = self.header_len.saturating_sub(n);
        Ok(n)
    }
}

impl BufRead for HeaderInOnePiece<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        Ok(self.rest)
    }

    fn consume(&mut self, amount: usize) {
        let amount = amount.min(self.rest.len());
        self.rest = &self.rest[amount..];
        self.header_len = self.header_len.saturating_sub(amount);
    }

    fn read_until(&mut self, byte: u8, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        let n = match self.rest.iter().position(|&b| b == byte) {
            _ if self.header_len > 0 => self.header_len.min(self.rest.len()),
            Some(at) => at + 1,
            None => self.rest.len(),
        };
        buf.extend_from_slice(&self.rest[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// age's tag for X25519 recipient stanzas.
const X25519_TAG: &str = "X25519";

type ParsedBinding = Result<(Binding, Vec<KeyId>), BindingStanzaError>;

/// An age identity that reads the binding stanza as age itself parsed it, so there is no
/// second parser to disagree with the one the MAC was checked against, and tries only the
/// keys the binding names.
struct BoundOpener<'a> {
    ring: &'a KeyRing,
    binding: RefCell<Option<ParsedBinding>>,
    used: Cell<Option<KeyId>>,
}

impl Identity for BoundOpener<'_> {
    fn unwrap_stanza(&self, _: &Stanza) -> Option<Result<FileKey, DecryptError>> {
        None
    }

    fn unwrap_stanzas(&self, stanzas: &[Stanza]) -> Option<Result<FileKey, DecryptError>> {
        let parsed = Binding::from_stanzas(stanzas);
        let own_stanzas: Vec<&Stanza> = stanzas.iter().filter(|s| s.tag == X25519_TAG).collect();
        // seal writes one X25519 stanza per recipient, in the order in which the binding
        // names their keys. Each key held is tried against its own stanza only, once: opening
        // costs one X25519 operation per held key that the item names, however many stanzas
        // the header carries or however often it names a key.
        let pairs: Vec<(KeyId, &Stanza)> = match &parsed {
            Ok((_, ids)) => ids
                .iter()
                .copied()
                .zip(own_stanzas.iter().copied())
                .collect(),
            // A binding version this seal does not know comes from a newer seal or from an
            // attacker; only the header MAC can tell, and checking it needs the file key.
            // Whichever of our keys opens it lets age check the MAC; unseal_item refuses
            // the item either way and never reads its payload. The header is already bounded
            // (MAX_STANZAS), so trying every held key on every stanza stays cheap.
            Err(BindingStanzaError::UnsupportedVersion(_)) => self
                .ring
                .ids()
                .flat_map(|id| own_stanzas.iter().map(move |stanza| (id, *stanza)))
                .collect(),
            Err(_) => {
                *self.binding.borrow_mut() = Some(parsed);
                return Some(Err(DecryptError::InvalidHeader));
            }
        };
        *self.binding.borrow_mut() = Some(parsed);
        let mut tried: Vec<(KeyId, *const Stanza)> = Vec::new();
        for (id, stanza) in pairs {
            let Some(key) = self.ring.get(id) else {
                continue;
            };
            let attempt = (id, stanza as *const Stanza);
            if tried.contains(&attempt) {
                continue;
            }
            tried.push(attempt);
            if let Some(result) = key.identity.unwrap_stanza(stanza) {
                if result.is_ok() {
                    self.used.set(Some(id));
                }
                return Some(result);
            }
        }
        None
    }
}

/// What an item's header says, without any key: the binding and the ids of the keys it is
/// sealed to. Nothing here is authenticated (only a key holder can check the header MAC), so
/// it may guide a choice, such as which keys a new item of the same Secret should go to, but
/// never decide whether an item is trusted.
pub fn inspect_item(ciphertext: &[u8]) -> Result<(Binding, Vec<KeyId>), UnsealError> {
    let decryptor = read_header(ciphertext)?;
    let no_keys = KeyRing::new();
    let reader = BoundOpener {
        ring: &no_keys,
        binding: RefCell::new(None),
        used: Cell::new(None),
    };
    // With no keys nothing can be opened; the point is the binding the opener saw.
    let _ = decryptor.decrypt(std::iter::once(&reader as &dyn Identity));
    match reader.binding.into_inner() {
        Some(parsed) => parsed.map_err(UnsealError::from),
        None => Err(UnsealError::Binding(BindingStanzaError::Missing)),
    }
}

/// age's STREAM: the payload is a 16-byte nonce, then the value in chunks of 64 KiB, each
/// followed by a 16-byte tag; only the last chunk may be short, and it is empty only when the
/// whole value is.
const PAYLOAD_NONCE: usize = 16;
const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;

/// The length of the value an item holds, from the ciphertext's size alone: everything after
/// the header (which ends with the `--- MAC` line) is the nonce plus, per 64 KiB chunk of the
/// value, the chunk and its tag. `None` when no valid age file has that shape. Like
/// [`inspect_item`] this is unauthenticated: it says what the file claims, not that it opens.
pub fn plaintext_len(ciphertext: &[u8]) -> Option<usize> {
    const MAGIC: &[u8] = b"age-encryption.org/v1\n";
    if !ciphertext.starts_with(MAGIC) {
        return None;
    }
    // Stanza lines start with "-> " and bodies are base64, so the first "\n--- " is the MAC.
    let mac = ciphertext.windows(5).position(|w| w == b"\n--- ")? + 1;
    let end = mac + ciphertext[mac..].iter().position(|&b| b == b'\n')? + 1;
    let body = ciphertext.len().checked_sub(end + PAYLOAD_NONCE)?;
    let (full, rest) = (body / (CHUNK + TAG), body % (CHUNK + TAG));
    match rest {
        0 if full > 0 => Some(full * CHUNK),
        rest if rest >= TAG => Some(full * CHUNK + rest - TAG),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SealIdentity;
    use crate::scope::Scope;

    #[test]
    fn the_plaintext_length_follows_from_the_ciphertext_size() {
        let recipients = [SealIdentity::generate().recipient()];
        let binding = Binding::for_placement(Scope::Strict, &Placement::new("ns", "db", "k"));
        for len in [
            0,
            1,
            15,
            16,
            17,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            2 * CHUNK,
            2 * CHUNK + 17,
        ] {
            let sealed = seal_item(&vec![7u8; len], &binding, &recipients).unwrap();
            assert_eq!(plaintext_len(&sealed), Some(len), "value of {len} bytes");
        }
        assert_eq!(plaintext_len(b"not age"), None);
        let sealed = seal_item(b"v", &binding, &recipients).unwrap();
        let header_end = sealed.len() - (PAYLOAD_NONCE + 1 + TAG);
        // Cut inside the nonce or the first tag: no valid age file has that size.
        assert_eq!(plaintext_len(&sealed[..header_end + 10]), None);
        assert_eq!(
            plaintext_len(&sealed[..header_end + PAYLOAD_NONCE + 5]),
            None
        );
    }
}
