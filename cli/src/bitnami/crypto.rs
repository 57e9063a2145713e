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

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde_json::Value;

    use super::*;

    /// The committed kubesealpy vectors (see cli/tests/bitnami/make_vectors.py).
    fn keys() -> ControllerKeys {
        ControllerKeys::parse(include_str!("../../tests/bitnami/vectors/keys.yaml")).unwrap()
    }

    fn item(file: &str, key: &str) -> Vec<u8> {
        let text = std::fs::read_to_string(format!(
            "{}/tests/bitnami/vectors/repo/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let docs: Vec<Value> = seal_shared::yaml::from_multiple(&text).unwrap();
        let encoded = docs[0]["spec"]["encryptedData"][key].as_str().unwrap();
        STANDARD.decode(encoded).unwrap()
    }

    #[test]
    fn both_key_formats_load_in_order() {
        let keys = keys();
        assert_eq!(
            keys.names(),
            ["sealed-secrets-keyabcd1", "sealed-secrets-keyefgh2"]
        );
    }

    #[test]
    fn the_label_binds_an_item_to_its_place() {
        let keys = keys();
        let sealed = item("strict.yaml", "password");
        assert_eq!(open_item(&sealed, "prod/db", &keys).unwrap().len(), 24);
        for wrong in ["prod/dc", "prod", "", "staging/db"] {
            assert!(
                matches!(
                    open_item(&sealed, wrong, &keys),
                    Err(OpenError::NoKey { keys: 2, .. })
                ),
                "opened with label {wrong:?}"
            );
        }
        let namespace_wide = item("namespace-wide.yaml", "token");
        assert!(open_item(&namespace_wide, "prod", &keys).is_ok());
        assert!(open_item(&namespace_wide, "prod/api", &keys).is_err());
        let cluster_wide = item("cluster-wide.yaml", "ca.crt");
        assert_eq!(open_item(&cluster_wide, "", &keys).unwrap().len(), 1000);
        assert!(open_item(&cluster_wide, "shared", &keys).is_err());
    }

    #[test]
    fn an_empty_value_is_its_tag_alone() {
        let sealed = item("strict.yaml", "empty");
        let rsa_len = usize::from(u16::from_be_bytes([sealed[0], sealed[1]]));
        assert_eq!(sealed.len(), 2 + rsa_len + 16);
        assert!(open_item(&sealed, "prod/db", &keys()).unwrap().is_empty());
    }

    #[test]
    fn truncated_and_altered_items_are_refused() {
        let keys = keys();
        let sealed = item("strict.yaml", "password");
        for short in [&[][..], &[0x01], &sealed[..100]] {
            assert_eq!(
                open_item(short, "prod/db", &keys).unwrap_err(),
                OpenError::TooShort
            );
        }
        // A flipped bit in the AES part: the session key opens, authentication fails.
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 0x80;
        assert_eq!(
            open_item(&altered, "prod/db", &keys).unwrap_err(),
            OpenError::Damaged
        );
        // In the RSA part: no key opens it.
        let mut altered = sealed;
        altered[10] ^= 0x80;
        assert!(matches!(
            open_item(&altered, "prod/db", &keys),
            Err(OpenError::NoKey { .. })
        ));
    }
}
