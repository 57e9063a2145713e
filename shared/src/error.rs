//! The library's error type. Messages say what is wrong in the user's terms; callers add
//! which file and which object, and what to do next.

use crate::item::{SealItemError, UnsealError};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid age recipient {recipient:?}: expected an X25519 recipient (age1...)")]
    InvalidRecipient { recipient: String },
    #[error(
        "unsupported recipient {recipient:?}: seal seals to age X25519 recipients (age1...) only"
    )]
    UnsupportedRecipient { recipient: String },
    #[error("invalid identity: {detail}")]
    InvalidIdentity { detail: String },
    #[error("{origin}: {source}")]
    InFile { origin: String, source: Box<Error> },
    #[error("invalid YAML at line {line}, column {column}: {message}")]
    Yaml {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("invalid document: {0}")]
    Document(String),
    #[error("{what} is {size} bytes, more than the {limit} bytes allowed")]
    TooLarge {
        what: String,
        size: usize,
        limit: usize,
    },
    #[error("item {key:?}: {source}")]
    Seal {
        key: String,
        source: Box<SealItemError>,
    },
    #[error("item {key:?}: {source}")]
    Unseal {
        key: String,
        source: Box<UnsealError>,
    },
    #[error("item {key:?}: spec.encryptedData is not valid base64")]
    CiphertextBase64 { key: String },
    #[error("cannot write YAML: {0}")]
    Serialize(String),
}
