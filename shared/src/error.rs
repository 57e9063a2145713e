//! The library's error type. Messages say what is wrong in the user's terms; callers add
//! which file and which object, and what to do next.
//!
//! No message quotes input that might be key material or a Secret value: a recipient that is
//! really a private key, an identity file's lines and values are described, never echoed.
//! Names and keys, which are not secret, are quoted and escaped.

use std::fmt;

use crate::escape::Escaped;
use crate::item::{SealItemError, UnsealError};
use crate::keys::KeyError;
pub use crate::keys::{IdentityError, RecipientError};
use crate::names::InvalidName;
use crate::scope::Scope;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{0}")]
    Recipient(#[from] RecipientError),
    #[error("{0}")]
    Identity(#[from] IdentityError),
    /// Where in a file (`path` or `path:line`) the inner error was found.
    #[error("{}: {source}", Escaped(origin))]
    InFile { origin: String, source: Box<Error> },
    #[error("line {line}, column {column}: {message}")]
    Yaml {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    /// Kept for callers outside this crate; the library itself reports typed errors.
    #[error("invalid document: {0}")]
    Document(String),
    #[error("{what} is {size} bytes, more than the {limit} bytes allowed")]
    TooLarge {
        what: String,
        size: usize,
        limit: usize,
    },
    #[error("{object}: a {scope} seal binds the namespace, but the Secret has none")]
    NoNamespace { object: String, scope: Scope },
    /// An item would be bound to an empty namespace or name, and could be unsealed nowhere.
    #[error(
        "{object}: a {scope} seal binds the {field}, but the SealedSecret has no metadata.{field}"
    )]
    Unbound {
        object: String,
        scope: Scope,
        field: &'static str,
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
    #[error("item {key:?} was sealed with scope {item} but the SealedSecret declares {declared}")]
    ScopeMismatch {
        key: String,
        item: Scope,
        declared: Scope,
    },
    #[error("cannot write YAML: {0}")]
    Serialize(String),
}

/// A document of a manifest stream that cannot be sealed, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    /// 1-based index of the document in the stream.
    pub document: usize,
    /// `Secret ns/name`, when the document has got far enough to be one.
    pub object: Option<String>,
    /// 1-based line of the offending field, when known.
    pub line: Option<u64>,
    pub problem: ManifestProblem,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.object {
            Some(object) => write!(f, "{object} (document {}", self.document)?,
            None => write!(f, "document {}", self.document)?,
        }
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if self.object.is_some() {
            write!(f, ")")?;
        }
        write!(f, ": {}", self.problem)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestProblem {
    #[error("no Kubernetes object found")]
    NoObjects,
    #[error("it is already a SealedSecret")]
    AlreadySealed,
    #[error("it has kind Secret but no apiVersion")]
    NoApiVersion,
    #[error("apiVersion {0:?} is not a Secret's (v1)")]
    WrongApiVersion(String),
    #[error("it has no kind")]
    NoKind,
    #[error("it is a List of objects, not a single Secret")]
    List,
    #[error("it is a {0:?}, not a Secret")]
    NotASecret(String),
    #[error("unknown field {}{}", field_path(.parent, .field), did_you_mean(.suggestion))]
    UnknownField {
        /// Where the field is: `None` for the top level, else for example `metadata`.
        parent: Option<&'static str>,
        field: String,
        suggestion: Option<&'static str>,
    },
    #[error("metadata.generateName cannot be sealed: a sealed item is bound to a fixed name")]
    GenerateName,
    #[error("{field}: {name}")]
    Name {
        field: &'static str,
        name: InvalidName,
    },
    #[error("data.{key} is not valid base64")]
    Base64 { key: String },
    #[error("{field}.{key} is null (a bare ~, null or nothing after the colon)")]
    Null { field: &'static str, key: String },
    #[error("key {key:?} is in both data and stringData")]
    InDataAndStringData { key: String },
    #[error("{}", value_in_metadata(.field, .key))]
    ValueInMetadata {
        field: &'static str,
        /// None when the key itself holds the value, so naming it would print it.
        key: Option<String>,
    },
    #[error("it is not a SealedSecret (seal.dev/v1); found {api_version:?} {kind:?}")]
    NotSealedSecret { api_version: String, kind: String },
    #[error("no SealedSecret found")]
    NoSealedSecrets,
}

fn value_in_metadata(field: &str, key: &Option<String>) -> String {
    match key {
        Some(key) => format!("the {field} {key:?} contains one of the values being sealed"),
        None => format!("the name of a {field} contains one of the values being sealed"),
    }
}

fn field_path(parent: &Option<&'static str>, field: &str) -> String {
    match parent {
        Some(parent) => format!("{:?}", format!("{parent}.{field}")),
        None => format!("{field:?}"),
    }
}

fn did_you_mean(suggestion: &Option<&'static str>) -> String {
    match suggestion {
        Some(s) => format!("; did you mean {s}?"),
        None => String::new(),
    }
}

/// A key problem, in the library's error: the same variants callers already match on.
impl From<KeyError> for Error {
    fn from(error: KeyError) -> Self {
        match error {
            KeyError::Recipient(problem) => Error::Recipient(problem),
            KeyError::Identity(problem) => Error::Identity(problem),
            KeyError::InFile { origin, source } => Error::InFile {
                origin,
                source: Box::new(Error::from(*source)),
            },
        }
    }
}
