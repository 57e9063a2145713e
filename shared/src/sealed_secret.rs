//! The SealedSecret custom resource, and turning Secrets into SealedSecrets and back.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::binding::{Binding, Placement};
use crate::error::{Error, ManifestError, ManifestProblem, Result};
use crate::item::{Unsealed, inspect_item, seal_item, unseal_item};
use crate::keys::{KeyId, KeyRing, SealRecipient};
use crate::manifest::{OutputMeta, PlainSecret, SecretManifest, describe};
use crate::names::{self, NameKind};
use crate::scope::Scope;
use crate::yaml;
use crate::yaml_edit::{self, EditError};

pub const API_GROUP: &str = "seal.dev";
pub const API_VERSION: &str = "seal.dev/v1";
pub const KIND: &str = "SealedSecret";

/// A Kubernetes Secret whose values are sealed with age, safe to keep in Git.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "seal.dev",
    version = "v1",
    kind = "SealedSecret",
    namespaced,
    status = "SealedSecretStatus",
    shortname = "sealed",
    category = "all",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecretSpec {
    /// How far each item may travel: strict (namespace, name and key), namespace-wide
    /// (namespace and key) or cluster-wide (key only). Each item's own sealed binding must
    /// carry the same scope.
    #[serde(default)]
    pub scope: Scope,
    /// Per Secret key, the base64 of one binary age file that encrypts exactly that value.
    pub encrypted_data: BTreeMap<String, String>,
    /// What the unsealed Secret carries besides its data.
    #[serde(default, skip_serializing_if = "SecretTemplate::is_empty")]
    pub template: SecretTemplate,
}

/// The unsealed Secret's type, metadata and immutability.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretTemplate {
    /// The Secret's type; Kubernetes defaults it to Opaque.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    #[serde(default, skip_serializing_if = "TemplateMetadata::is_empty")]
    pub metadata: TemplateMetadata,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct TemplateMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl TemplateMetadata {
    fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }
}

impl SecretTemplate {
    fn is_empty(&self) -> bool {
        self.type_.is_none() && self.immutable.is_none() && self.metadata.is_empty()
    }
}

/// What the operator last did with this SealedSecret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecretStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Ids of the keys that opened the items at the last successful unseal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_ids: Vec<String>,
    /// When the Secret was last written from this SealedSecret (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_unsealed: Option<String>,
}

/// A condition in the shape Kubernetes and Argo CD expect.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Everything needed to seal one Secret.
pub struct SealRequest<'a> {
    pub secret: &'a PlainSecret,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub scope: Scope,
    pub recipients: &'a [SealRecipient],
}

/// Seals every item of a Secret. A strict or namespace-wide seal needs a namespace.
pub fn seal_secret(request: &SealRequest<'_>) -> Result<SealedSecret> {
    let SealRequest {
        secret,
        namespace,
        name,
        scope,
        recipients,
    } = *request;
    let namespace = match (namespace, scope) {
        (Some(ns), _) => Some(ns),
        (None, Scope::ClusterWide) => None,
        (None, _) => {
            return Err(Error::NoNamespace {
                object: secret.describe(),
                scope,
            });
        }
    };
    let mut sealed = SealedSecret::new(
        name,
        SealedSecretSpec {
            scope,
            encrypted_data: BTreeMap::new(),
            template: SecretTemplate {
                type_: secret.type_.clone(),
                immutable: secret.immutable,
                metadata: TemplateMetadata {
                    labels: secret.labels.clone(),
                    annotations: secret.annotations.clone(),
                },
            },
        },
    );
    sealed.metadata.namespace = namespace.map(str::to_owned);
    seal_items_into(
        &mut sealed,
        secret.data.iter().map(|(k, v)| (k.as_str(), v.as_slice())),
        recipients,
    )?;
    Ok(sealed)
}

/// Seals `items` into `sealed`, replacing only those keys: every other item stays exactly as
/// it was, byte for byte, which is what keeps pull-request diffs to the changed keys.
pub fn seal_items_into<'v>(
    sealed: &mut SealedSecret,
    items: impl IntoIterator<Item = (&'v str, &'v [u8])>,
    recipients: &[SealRecipient],
) -> Result<()> {
    let scope = sealed.spec.scope;
    let namespace = sealed.metadata.namespace.clone().unwrap_or_default();
    let name = sealed.metadata.name.clone().unwrap_or_default();
    // An item bound to an empty namespace or name can be unsealed nowhere.
    let missing = |field| Error::Unbound {
        object: describe_sealed(sealed),
        scope,
        field,
    };
    if scope.binds_namespace() && namespace.is_empty() {
        return Err(missing("namespace"));
    }
    if scope.binds_name() && name.is_empty() {
        return Err(missing("name"));
    }
    for (key, value) in items {
        let binding = Binding::for_placement(
            scope,
            &Placement::new(namespace.as_str(), name.as_str(), key),
        );
        let ciphertext = seal_item(value, &binding, recipients).map_err(|source| Error::Seal {
            key: key.to_owned(),
            source: Box::new(source),
        })?;
        sealed
            .spec
            .encrypted_data
            .insert(key.to_owned(), STANDARD.encode(ciphertext));
    }
    Ok(())
}

/// Where a SealedSecret's items must be unsealed: its own namespace and name.
pub fn placement_of(sealed: &SealedSecret, key: &str) -> Placement {
    Placement::new(
        sealed.metadata.namespace.clone().unwrap_or_default(),
        sealed.metadata.name.clone().unwrap_or_default(),
        key,
    )
}

/// An item's binary age file from its base64 in `spec.encryptedData`.
fn decode_item(key: &str, encoded: &str) -> Result<Vec<u8>> {
    STANDARD
        .decode(encoded.trim().as_bytes())
        .map_err(|_| Error::CiphertextBase64 {
            key: key.to_owned(),
        })
}

/// Unseals one item of a SealedSecret, checking its binding against the object it is in.
pub fn unseal_entry(
    sealed: &SealedSecret,
    key: &str,
    encoded: &str,
    ring: &KeyRing,
) -> Result<Unsealed> {
    let ciphertext = decode_item(key, encoded)?;
    let unsealed =
        unseal_item(&ciphertext, &placement_of(sealed, key), ring).map_err(|source| {
            Error::Unseal {
                key: key.to_owned(),
                source: Box::new(source),
            }
        })?;
    if unsealed.binding.scope != sealed.spec.scope {
        return Err(Error::ScopeMismatch {
            key: key.to_owned(),
            item: unsealed.binding.scope,
            declared: sealed.spec.scope,
        });
    }
    Ok(unsealed)
}

/// What one item of a SealedSecret says in the clear: its binding and the ids of the keys it
/// is sealed to. Not authenticated; see [`inspect_item`].
pub fn inspect_entry(key: &str, encoded: &str) -> Result<(Binding, Vec<KeyId>)> {
    let ciphertext = decode_item(key, encoded)?;
    inspect_item(&ciphertext).map_err(|source| Error::Unseal {
        key: key.to_owned(),
        source: Box::new(source),
    })
}

/// Why items could not be merged into a SealedSecret file in place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    #[error("document {document}: {source}")]
    Edit { document: usize, source: EditError },
    /// The edited file does not read back as the original with only those items changed: a
    /// defect in the editor, caught before anything is written.
    #[error("the merged file would differ from the original in more than the merged items")]
    Changed,
    #[error("the merged file does not read back: {0}")]
    ReadBack(Box<Error>),
}

/// Writes `changes` (per document index, the items to set) into the text of a SealedSecret
/// file whose documents are `docs`, changing no other byte: comments, other documents, key
/// order and layout stay. The result is read back and must equal `docs` with exactly those
/// items set.
pub fn set_items_in_text(
    text: &str,
    docs: &[SealedSecret],
    changes: &BTreeMap<usize, BTreeMap<String, String>>,
) -> Result<String, MergeError> {
    let mut out = text.to_owned();
    let mut expected = docs.to_vec();
    for (&index, items) in changes {
        out = yaml_edit::set_entries(&out, index, &["spec", "encryptedData"], items).map_err(
            |source| MergeError::Edit {
                document: index + 1,
                source,
            },
        )?;
        let doc = expected.get_mut(index).ok_or(MergeError::Changed)?;
        for (key, value) in items {
            doc.spec.encrypted_data.insert(key.clone(), value.clone());
        }
    }
    let back = parse_sealed_secrets(&out).map_err(|e| MergeError::ReadBack(Box::new(e)))?;
    // The generated resource type has no PartialEq; its JSON form says everything it holds.
    let same = match (serde_json::to_value(&back), serde_json::to_value(&expected)) {
        (Ok(back), Ok(expected)) => back == expected,
        _ => false,
    };
    if !same {
        return Err(MergeError::Changed);
    }
    Ok(out)
}

/// Unseals every item and returns the Secret as a manifest, plus the key ids that opened it.
pub fn unseal_secret(
    sealed: &SealedSecret,
    ring: &KeyRing,
) -> Result<(SecretManifest, Vec<KeyId>)> {
    let mut data = BTreeMap::new();
    let mut key_ids = Vec::new();
    for (key, encoded) in &sealed.spec.encrypted_data {
        let unsealed = unseal_entry(sealed, key, encoded, ring)?;
        if !key_ids.contains(&unsealed.key_id) {
            key_ids.push(unsealed.key_id);
        }
        data.insert(
            key.clone(),
            Zeroizing::new(STANDARD.encode(unsealed.value.as_slice())),
        );
    }
    let template = &sealed.spec.template;
    let manifest = SecretManifest {
        api_version: "v1",
        kind: "Secret",
        metadata: OutputMeta {
            name: sealed.metadata.name.clone().unwrap_or_default(),
            namespace: sealed.metadata.namespace.clone(),
            labels: template.metadata.labels.clone(),
            annotations: template.metadata.annotations.clone(),
        },
        type_: template.type_.clone(),
        immutable: template.immutable,
        data,
    };
    Ok((manifest, key_ids))
}

/// How a SealedSecret is named in messages.
pub fn describe_sealed(sealed: &SealedSecret) -> String {
    describe(
        sealed.metadata.namespace.as_deref(),
        sealed.metadata.name.as_deref(),
    )
    .replacen("Secret", "SealedSecret", 1)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    api_version: Option<String>,
    kind: Option<String>,
}

/// Reads SealedSecrets from a YAML or JSON stream; anything else is an error, and so is a
/// namespace, name or item key that no Kubernetes object can have.
pub fn parse_sealed_secrets(text: &str) -> Result<Vec<SealedSecret>> {
    let heads: Vec<Head> = yaml::from_multiple(text)?;
    let refuse = |index: usize, object: Option<String>, problem| -> Error {
        ManifestError {
            document: index + 1,
            object,
            line: None,
            problem,
        }
        .into()
    };
    if heads.is_empty() {
        return Err(refuse(0, None, ManifestProblem::NoSealedSecrets));
    }
    for (index, head) in heads.iter().enumerate() {
        if head.kind.as_deref() != Some(KIND) || head.api_version.as_deref() != Some(API_VERSION) {
            return Err(refuse(
                index,
                None,
                ManifestProblem::NotSealedSecret {
                    api_version: head.api_version.clone().unwrap_or_default(),
                    kind: head.kind.clone().unwrap_or_default(),
                },
            ));
        }
    }
    let sealed: Vec<SealedSecret> = yaml::from_multiple(text)?;
    for (index, doc) in sealed.iter().enumerate() {
        let object = || Some(describe_sealed(doc));
        let checks = [
            (
                doc.metadata.name.as_deref(),
                NameKind::SecretName,
                "metadata.name",
            ),
            (
                doc.metadata.namespace.as_deref(),
                NameKind::Namespace,
                "metadata.namespace",
            ),
        ];
        for (value, kind, field) in checks {
            if let Some(value) = value {
                names::check(kind, value).map_err(|name| {
                    refuse(index, object(), ManifestProblem::Name { field, name })
                })?;
            }
        }
        for key in doc.spec.encrypted_data.keys() {
            names::check_data_key(key).map_err(|name| {
                refuse(
                    index,
                    object(),
                    ManifestProblem::Name {
                        field: "spec.encryptedData",
                        name,
                    },
                )
            })?;
        }
    }
    Ok(sealed)
}

/// Same object, for output: a fresh SealedSecret carries no status and no server fields.
pub fn for_output(sealed: &SealedSecret) -> SealedSecret {
    let mut out = SealedSecret::new(
        sealed.metadata.name.as_deref().unwrap_or_default(),
        sealed.spec.clone(),
    );
    out.metadata = ObjectMeta {
        name: sealed.metadata.name.clone(),
        namespace: sealed.metadata.namespace.clone(),
        labels: sealed.metadata.labels.clone(),
        annotations: sealed.metadata.annotations.clone(),
        ..ObjectMeta::default()
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SealIdentity;

    #[test]
    fn items_are_never_bound_to_an_empty_namespace_or_name() {
        let recipient = SealIdentity::generate().recipient();
        let spec = |scope| SealedSecretSpec {
            scope,
            encrypted_data: BTreeMap::new(),
            template: SecretTemplate::default(),
        };
        let item = [("k", b"v".as_slice())];
        let mut strict = SealedSecret::new("db", spec(Scope::Strict));
        let err = seal_items_into(&mut strict, item, std::slice::from_ref(&recipient))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no metadata.namespace"), "{err}");
        let mut unnamed = SealedSecret::new("", spec(Scope::Strict));
        unnamed.metadata.namespace = Some("prod".into());
        let err = seal_items_into(&mut unnamed, item, std::slice::from_ref(&recipient))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no metadata.name"), "{err}");
        let mut cluster_wide = SealedSecret::new("db", spec(Scope::ClusterWide));
        seal_items_into(&mut cluster_wide, item, std::slice::from_ref(&recipient)).unwrap();
        assert!(cluster_wide.spec.encrypted_data.contains_key("k"));
    }

    #[test]
    fn an_items_key_ids_and_binding_read_without_a_key() {
        let a = SealIdentity::generate().recipient();
        let b = SealIdentity::generate().recipient();
        let mut sealed = SealedSecret::new(
            "db",
            SealedSecretSpec {
                scope: Scope::NamespaceWide,
                encrypted_data: BTreeMap::new(),
                template: SecretTemplate::default(),
            },
        );
        sealed.metadata.namespace = Some("prod".into());
        seal_items_into(
            &mut sealed,
            [("k", b"v".as_slice())],
            &[a.clone(), b.clone()],
        )
        .unwrap();
        let (binding, ids) = inspect_entry("k", &sealed.spec.encrypted_data["k"]).unwrap();
        assert_eq!(ids, vec![a.id, b.id]);
        assert_eq!(binding.namespace, "prod");
        assert_eq!(binding.scope, Scope::NamespaceWide);
        assert!(inspect_entry("k", "not base64!").is_err());
    }
}
