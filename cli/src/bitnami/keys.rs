//! The sealed-secrets controller's private keys, as its users back them up:
//! `kubectl get secret -n kube-system -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml`,
//! a `v1` List of `kubernetes.io/tls` Secrets whose `tls.key` is a PEM RSA private key
//! (PKCS#1, as the controller writes it, or PKCS#8). A single Secret, or several YAML
//! documents, are accepted too.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use std::collections::BTreeMap;

use serde::Deserialize;
use zeroize::Zeroizing;

/// What is wrong with the keys file. Never quotes its content: it is key material.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("{0}")]
    Yaml(seal_shared::Error),
    #[error("holds no Secrets")]
    Empty,
    #[error("{place}: is a {kind}, not a Secret")]
    NotASecret { place: String, kind: String },
    #[error("{place}: has no data.tls.key")]
    NoKey { place: String },
    #[error("{place}: data.tls.key is not base64")]
    Base64 { place: String },
    #[error("{place}: tls.key is not a PEM RSA private key (PKCS#1 or PKCS#8)")]
    NotRsa { place: String },
}

/// The keys, in the file's order. RsaPrivateKey wipes itself when dropped.
pub struct ControllerKeys {
    keys: Vec<(String, RsaPrivateKey)>,
}

impl ControllerKeys {
    pub fn iter(&self) -> impl Iterator<Item = &RsaPrivateKey> {
        self.keys.iter().map(|(_, key)| key)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The Secrets the keys came from, for messages.
    pub fn names(&self) -> Vec<&str> {
        self.keys.iter().map(|(name, _)| name.as_str()).collect()
    }

    pub fn parse(text: &str) -> Result<ControllerKeys, KeysError> {
        let docs: Vec<Option<KeyDoc>> =
            seal_shared::yaml::from_multiple(text).map_err(KeysError::Yaml)?;
        let mut secrets = Vec::new();
        for doc in docs.into_iter().flatten() {
            match doc.kind.as_deref() {
                Some("List" | "SecretList") => secrets.extend(doc.items),
                _ => secrets.push(doc),
            }
        }
        if secrets.is_empty() {
            return Err(KeysError::Empty);
        }
        let keys = secrets
            .iter()
            .enumerate()
            .map(|(index, secret)| read_key(index, secret))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ControllerKeys { keys })
    }
}

/// A document of the keys file, read into wiped buffers: its data is key material.
#[derive(Deserialize)]
struct KeyDoc {
    kind: Option<String>,
    #[serde(default)]
    metadata: KeyMeta,
    #[serde(default)]
    items: Vec<KeyDoc>,
    #[serde(default)]
    data: BTreeMap<String, Zeroizing<String>>,
}

#[derive(Deserialize, Default)]
struct KeyMeta {
    name: Option<String>,
}

fn read_key(index: usize, secret: &KeyDoc) -> Result<(String, RsaPrivateKey), KeysError> {
    let place = match &secret.metadata.name {
        Some(name) => format!("Secret {name}"),
        None => format!("item {index}"),
    };
    match secret.kind.as_deref() {
        Some("Secret") => {}
        Some(kind) => {
            return Err(KeysError::NotASecret {
                place,
                kind: kind.to_owned(),
            });
        }
        None => {
            return Err(KeysError::NotASecret {
                place,
                kind: "document without kind".to_owned(),
            });
        }
    }
    let Some(encoded) = secret.data.get("tls.key") else {
        return Err(KeysError::NoKey { place });
    };
    let pem = Zeroizing::new(
        STANDARD
            .decode(encoded.trim())
            .map_err(|_| KeysError::Base64 {
                place: place.clone(),
            })?,
    );
    let pem = std::str::from_utf8(&pem).map_err(|_| KeysError::NotRsa {
        place: place.clone(),
    })?;
    let key = RsaPrivateKey::from_pkcs1_pem(pem)
        .or_else(|_| RsaPrivateKey::from_pkcs8_pem(pem))
        .map_err(|_| KeysError::NotRsa {
            place: place.clone(),
        })?;
    Ok((secret.metadata.name.clone().unwrap_or(place), key))
}
