//! Binding a sealed item to where it may be unsealed.
//!
//! age has no associated data, so the binding travels as an extra header stanza:
//!
//! ```text
//! -> seal.dev/binding 1 <scope> <key-id>...
//! <base64 of "namespace\nname\nitem-key">
//! ```
//!
//! age's header MAC, keyed by the file key, covers every stanza. Whoever does not hold the
//! file key of an item can therefore neither alter nor remove its binding without the MAC
//! failing, while `age -d` skips the stanza (identities ignore stanzas they do not know) and
//! still prints exactly the sealed value. See docs/format.md for the threat model.

use std::collections::HashSet;
use std::fmt;

use age::{EncryptError, Recipient};
use age_core::format::{FileKey, Stanza};

use crate::escape::Escaped;
use crate::keys::KeyId;
use crate::scope::Scope;

/// The stanza tag; chosen outside age's own tag space so no age implementation claims it.
pub const BINDING_TAG: &str = "seal.dev/binding";
const BINDING_VERSION: &str = "1";

/// Where a Secret item lives: the facts a binding can pin down.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Placement {
    pub namespace: String,
    pub name: String,
    pub key: String,
}

impl Placement {
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        key: impl Into<String>,
    ) -> Self {
        Placement {
            namespace: namespace.into(),
            name: name.into(),
            key: key.into(),
        }
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} key {:?}",
            Escaped(&self.namespace),
            Escaped(&self.name),
            self.key
        )
    }
}

/// A binding as carried in a sealed item: the scope and the parts of the placement it pins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub scope: Scope,
    /// Empty when the scope does not bind the namespace.
    pub namespace: String,
    /// Empty when the scope does not bind the name.
    pub name: String,
    pub key: String,
}

impl Binding {
    /// The binding for an item placed at `placement`, keeping only what `scope` pins.
    pub fn for_placement(scope: Scope, placement: &Placement) -> Binding {
        Binding {
            scope,
            namespace: if scope.binds_namespace() {
                placement.namespace.clone()
            } else {
                String::new()
            },
            name: if scope.binds_name() {
                placement.name.clone()
            } else {
                String::new()
            },
            key: placement.key.clone(),
        }
    }

    /// Whether an item carrying this binding may be unsealed at `placement`.
    pub fn admits(&self, placement: &Placement) -> bool {
        *self == Binding::for_placement(self.scope, placement)
    }

    fn body(&self) -> Vec<u8> {
        format!("{}\n{}\n{}", self.namespace, self.name, self.key).into_bytes()
    }

    /// The stanza that carries this binding and the ids of the keys the item is sealed to.
    pub fn to_stanza(&self, key_ids: &[KeyId]) -> Stanza {
        let mut args = vec![BINDING_VERSION.to_owned(), self.scope.as_str().to_owned()];
        args.extend(key_ids.iter().map(|id| id.to_string()));
        Stanza {
            tag: BINDING_TAG.to_owned(),
            args,
            body: self.body(),
        }
    }

    /// Reads the binding stanza out of an item's header stanzas. Exactly one must be present.
    pub fn from_stanzas(stanzas: &[Stanza]) -> Result<(Binding, Vec<KeyId>), BindingStanzaError> {
        let mut found = stanzas.iter().filter(|s| s.tag == BINDING_TAG);
        let stanza = found.next().ok_or(BindingStanzaError::Missing)?;
        if found.next().is_some() {
            return Err(BindingStanzaError::Malformed(
                "more than one binding stanza",
            ));
        }
        let [version, scope, ids @ ..] = stanza.args.as_slice() else {
            return Err(BindingStanzaError::Malformed(
                "binding stanza lacks version and scope",
            ));
        };
        if version != BINDING_VERSION {
            return Err(BindingStanzaError::UnsupportedVersion(version.clone()));
        }
        let scope: Scope = scope
            .parse()
            .map_err(|_| BindingStanzaError::Malformed("unknown scope in binding stanza"))?;
        let key_ids = ids
            .iter()
            .map(|id| id.parse())
            .collect::<Result<Vec<KeyId>, _>>()
            .map_err(|_| BindingStanzaError::Malformed("invalid key id in binding stanza"))?;
        if key_ids.is_empty() {
            // seal always names the keys it sealed to; none means the stanza was not its own.
            return Err(BindingStanzaError::Malformed("binding stanza names no key"));
        }
        let body = std::str::from_utf8(&stanza.body)
            .map_err(|_| BindingStanzaError::Malformed("binding body is not UTF-8"))?;
        let mut parts = body.split('\n');
        let (Some(namespace), Some(name), Some(key), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(BindingStanzaError::Malformed(
                "binding body must have three lines",
            ));
        };
        let binding = Binding {
            scope,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            key: key.to_owned(),
        };
        // A canonical body only: what the scope does not pin must be empty, so one binding
        // has one encoding.
        if binding != Binding::for_placement(scope, &Placement::new(namespace, name, key)) {
            return Err(BindingStanzaError::Malformed(
                "binding body does not match its scope",
            ));
        }
        Ok((binding, key_ids))
    }
}

/// Names in a binding are escaped when shown: anyone with a recipient can seal an item whose
/// authentic binding names a place no Kubernetes object can have, control characters included.
impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (namespace, name) = (Escaped(&self.namespace), Escaped(&self.name));
        match self.scope {
            Scope::Strict => write!(f, "{namespace}/{name} key {:?} (strict)", self.key),
            Scope::NamespaceWide => {
                write!(
                    f,
                    "namespace {namespace} key {:?} (namespace-wide)",
                    self.key
                )
            }
            Scope::ClusterWide => write!(f, "key {:?} (cluster-wide)", self.key),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BindingStanzaError {
    #[error("the item carries no seal binding (a plain age file, not sealed by seal)")]
    Missing,
    /// Only the header MAC can tell a binding from a newer seal from an altered one; see
    /// `UnsealError::NewerVersion` (in item.rs) for the verified case.
    #[error(
        "the item's binding has version {0:?}, which this seal does not know: it was sealed by a newer seal, or altered, and no key here can check which"
    )]
    UnsupportedVersion(String),
    #[error("the item's binding is malformed: {0}")]
    Malformed(&'static str),
}

/// The age "recipient" that adds the binding stanza to a header. It wraps no key: it only
/// places the stanza where the header MAC will cover it.
pub(crate) struct BindingRecipient {
    pub stanza: Stanza,
}

impl Recipient for BindingRecipient {
    fn wrap_file_key(&self, _: &FileKey) -> Result<(Vec<Stanza>, HashSet<String>), EncryptError> {
        let Stanza { tag, args, body } = &self.stanza;
        Ok((
            vec![Stanza {
                tag: tag.clone(),
                args: args.clone(),
                body: body.clone(),
            }],
            HashSet::new(),
        ))
    }
}
