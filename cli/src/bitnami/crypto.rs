//! The sealed-secrets item format, opened with a controller's RSA keys.
//!
//! An item is `len (2 bytes, big-endian) || RSA-OAEP(SHA-256, label) of a session key ||
//! AES-GCM of the value`. The AES-GCM nonce is all zeros and there is no associated data:
//! sealed-secrets uses each session key once. The OAEP label binds the item to where it may
//! be unsealed: `namespace/name` (strict), `namespace` (namespace-wide), empty (cluster-wide).
//!
//! RSA comes from the `rsa` crate, which carries RUSTSEC-2023-0071 (see deny.toml): this
//! runs offline on local files, and decryption is blinded.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::aes::Aes192;
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce};
use rsa::sha2::Sha256;
use rsa::{Oaep, RsaPrivateKey};
use zeroize::Zeroizing;

use super::keys::ControllerKeys;

/// Why an item did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    #[error("is too short to be a sealed-secrets item")]
    TooShort,
    #[error(
        "opens with none of the {keys} controller key(s) for {binding} (sealed with another key, or for another namespace or name)"
    )]
    NoKey { keys: usize, binding: String },
    #[error("is damaged: its session key opens, but its value fails authentication")]
    Damaged,
    #[error("has a session key of {0} bytes, which AES cannot use")]
    SessionKeyLength(usize),
}

/// Opens one item (its bytes, base64 already decoded) with the first key that can. As
/// sealed-secrets does, every key is tried; one whose RSA step succeeds but whose AES step
/// fails means the item was changed, not that another key might do.
pub fn open_item(
    item: &[u8],
    label: &str,
    keys: &ControllerKeys,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let [high, low, rest @ ..] = item else {
        return Err(OpenError::TooShort);
    };
    let rsa_len = usize::from(u16::from_be_bytes([*high, *low]));
    if rest.len() < rsa_len {
        return Err(OpenError::TooShort);
    }
    let (wrapped, sealed_value) = rest.split_at(rsa_len);
    let mut damaged = None;
    for key in keys.iter() {
        let Some(session_key) = unwrap_session_key(key, wrapped, label) else {
            continue;
        };
        match open_value(&session_key, sealed_value) {
            Ok(value) => return Ok(value),
            Err(e) => damaged = Some(e),
        }
    }
    Err(damaged.unwrap_or_else(|| OpenError::NoKey {
        keys: keys.len(),
        binding: describe_label(label),
    }))
}

fn unwrap_session_key(
    key: &RsaPrivateKey,
    wrapped: &[u8],
    label: &str,
) -> Option<Zeroizing<Vec<u8>>> {
    let padding = Oaep::new_with_label::<Sha256, _>(label);
    key.decrypt_blinded(&mut rand_core::OsRng, padding, wrapped)
        .ok()
        .map(Zeroizing::new)
}

/// AES-GCM with the key length Go's `aes.NewCipher` would pick; sealed-secrets writes 32.
fn open_value(session_key: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let nonce = Nonce::<U12>::default();
    let opened = match session_key.len() {
        16 => Aes128Gcm::new_from_slice(session_key).map(|c| c.decrypt(&nonce, sealed)),
        24 => AesGcm::<Aes192, U12>::new_from_slice(session_key).map(|c| c.decrypt(&nonce, sealed)),
        32 => Aes256Gcm::new_from_slice(session_key).map(|c| c.decrypt(&nonce, sealed)),
        n => return Err(OpenError::SessionKeyLength(n)),
    };
    match opened {
        Ok(Ok(value)) => Ok(Zeroizing::new(value)),
        Ok(Err(_)) => Err(OpenError::Damaged),
        Err(_) => Err(OpenError::SessionKeyLength(session_key.len())),
    }
}

fn describe_label(label: &str) -> String {
    if label.is_empty() {
        "cluster-wide scope".to_owned()
    } else if label.contains('/') {
        format!("strict scope {label}")
    } else {
        format!("namespace-wide scope {label}")
    }
}
