//! Plain Kubernetes Secret manifests as users write them: YAML or JSON, one or many
//! documents, values in `data` (base64) or `stringData` (text).

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::limits::MAX_SECRET_DATA_BYTES;
use crate::names;
use crate::yaml;

/// A Secret ready to seal. Values are plaintext and zeroized on drop.
pub struct PlainSecret {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub type_: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub immutable: Option<bool>,
    pub data: BTreeMap<String, Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for PlainSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainSecret")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl PlainSecret {
    /// How the object is named in messages: `namespace/name`, or what is known of it.
    pub fn describe(&self) -> String {
        describe(self.namespace.as_deref(), self.name.as_deref())
    }
}

pub(crate) fn describe(namespace: Option<&str>, name: Option<&str>) -> String {
    match (namespace, name) {
        (Some(ns), Some(name)) => format!("Secret {ns}/{name}"),
        (None, Some(name)) => format!("Secret {name}"),
        _ => "Secret (unnamed)".to_owned(),
    }
}

/// What every document must say about itself before it is read as a Secret.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocumentHead {
    api_version: Option<String>,
    kind: Option<String>,
}

/// A string that is wiped when dropped, for values read from a manifest.
struct SecretText(Zeroizing<String>);

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| SecretText(Zeroizing::new(s)))
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct InputMeta {
    name: Option<String>,
    namespace: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InputSecret {
    #[serde(default)]
    metadata: Option<InputMeta>,
    #[serde(rename = "type")]
    type_: Option<String>,
    immutable: Option<bool>,
    data: Option<BTreeMap<String, Option<SecretText>>>,
    string_data: Option<BTreeMap<String, Option<SecretText>>>,
}

/// Reads every Secret in a YAML or JSON stream. Any document that is not a v1 Secret is an
/// error rather than silently skipped, so nothing a user meant to seal is left out.
pub fn parse_secrets(text: &str) -> Result<Vec<PlainSecret>> {
    let heads: Vec<DocumentHead> = yaml::from_multiple(text)?;
    if heads.is_empty() {
        return Err(Error::Document(
            "no Kubernetes object found; expected a Secret manifest".into(),
        ));
    }
    for (index, head) in heads.iter().enumerate() {
        check_head(index, head)?;
    }
    let inputs: Vec<InputSecret> = yaml::from_multiple(text)?;
    inputs
        .into_iter()
        .enumerate()
        .map(|(index, input)| convert(index, input))
        .collect()
}

fn check_head(index: usize, head: &DocumentHead) -> Result<()> {
    let doc = index + 1;
    match (head.api_version.as_deref(), head.kind.as_deref()) {
        (Some("v1"), Some("Secret")) => Ok(()),
        (_, Some("SealedSecret")) => Err(Error::Document(format!(
            "document {doc} is already a SealedSecret; to change items use `seal encrypt --merge-into`"
        ))),
        (Some(api_version), Some("Secret")) => Err(Error::Document(format!(
            "document {doc}: apiVersion {api_version:?} is not a Secret's; expected \"v1\""
        ))),
        (_, Some(kind)) => Err(Error::Document(format!(
            "document {doc} is a {kind}, not a Secret; seal encrypts Secrets only (split the file or remove it)"
        ))),
        (_, None) => Err(Error::Document(format!(
            "document {doc} has no kind; expected a Secret manifest (apiVersion: v1, kind: Secret)"
        ))),
    }
}

fn convert(index: usize, input: InputSecret) -> Result<PlainSecret> {
    let meta = input.metadata.unwrap_or_default();
    let object = describe(meta.namespace.as_deref(), meta.name.as_deref());
    let in_object =
        |message: String| Error::Document(format!("document {} ({object}): {message}", index + 1));
    if let Some(name) = &meta.name {
        names::check_object_name(name).map_err(|e| in_object(format!("metadata.name: {e}")))?;
    }
    if let Some(namespace) = &meta.namespace {
        names::check_namespace(namespace)
            .map_err(|e| in_object(format!("metadata.namespace: {e}")))?;
    }
    let mut data: BTreeMap<String, Zeroizing<Vec<u8>>> = BTreeMap::new();
    for (key, value) in input.data.unwrap_or_default() {
        names::check_data_key(&key).map_err(|e| in_object(format!("data key {key:?}: {e}")))?;
        let encoded = value.map(|v| v.0).unwrap_or_default();
        let decoded = STANDARD
            .decode(encoded.trim().as_bytes())
            .map(Zeroizing::new)
            .map_err(|_| {
                in_object(format!(
                    "data.{key} is not valid base64; put plain text under stringData instead, or encode it with `base64 -w0`"
                ))
            })?;
        data.insert(key, decoded);
    }
    for (key, value) in input.string_data.unwrap_or_default() {
        names::check_data_key(&key)
            .map_err(|e| in_object(format!("stringData key {key:?}: {e}")))?;
        if data.contains_key(&key) {
            return Err(in_object(format!(
                "key {key:?} is in both data and stringData; keep it in one of them"
            )));
        }
        let text = value.map(|v| v.0).unwrap_or_default();
        data.insert(key, Zeroizing::new(text.as_bytes().to_vec()));
    }
    let size: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_SECRET_DATA_BYTES {
        return Err(Error::TooLarge {
            what: format!("document {} ({object}): the Secret's data", index + 1),
            size,
            limit: MAX_SECRET_DATA_BYTES,
        });
    }
    Ok(PlainSecret {
        name: meta.name,
        namespace: meta.namespace,
        type_: input.type_,
        labels: meta.labels.unwrap_or_default(),
        annotations: meta.annotations.unwrap_or_default(),
        immutable: input.immutable,
        data,
    })
}

/// A Secret manifest as `seal decrypt` prints it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretManifest {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: OutputMeta,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    pub data: BTreeMap<String, Zeroizing<String>>,
}

#[derive(Serialize)]
pub struct OutputMeta {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> PlainSecret {
        let mut all = parse_secrets(text).unwrap();
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    #[test]
    fn reads_data_and_string_data_literally() {
        let s = one(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\n\
             data:\n  pw: aHVudGVyMg==\nstringData:\n  on: yes\n  zip: 012\n  t: 12:30\n",
        );
        assert_eq!(s.data["pw"].as_slice(), b"hunter2");
        assert_eq!(s.data["on"].as_slice(), b"yes");
        assert_eq!(s.data["zip"].as_slice(), b"012");
        assert_eq!(s.data["t"].as_slice(), b"12:30");
    }

    #[test]
    fn reads_json_and_multiple_documents() {
        let all = parse_secrets(
            "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"a\"},\"stringData\":{\"k\":\"v\"}}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {name: b}\n",
        )
        .unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].name.as_deref(), Some("b"));
    }

    #[test]
    fn refuses_what_is_not_a_secret() {
        let cases = [
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
                "is a ConfigMap",
            ),
            (
                "apiVersion: seal.dev/v1\nkind: SealedSecret\nmetadata: {name: a}\n",
                "already a SealedSecret",
            ),
            ("metadata: {name: a}\n", "has no kind"),
            ("", "no Kubernetes object"),
            (
                "apiVersion: v1\nkind: Secret\ndata: {a: '!!!'}\n",
                "not valid base64",
            ),
            (
                "apiVersion: v1\nkind: Secret\ndata: {a: YQ==}\nstringData: {a: b}\n",
                "both data and stringData",
            ),
            (
                "apiVersion: v1\nkind: Secret\nstringData: {'a b': x}\n",
                "key \"a b\"",
            ),
            (
                "apiVersion: v1\nkind: Secret\nmetadata: {name: Bad_Name}\n",
                "metadata.name",
            ),
        ];
        for (text, expected) in cases {
            let err = parse_secrets(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn reports_yaml_errors_with_position_and_duplicates() {
        let err = parse_secrets("apiVersion: v1\nkind: Secret\nstringData:\n  a: [unclosed\n")
            .unwrap_err();
        assert!(
            matches!(err, Error::Yaml { line, .. } if line >= 4),
            "{err}"
        );
        let err = parse_secrets("apiVersion: v1\nkind: Secret\nstringData:\n  a: x\n  a: y\n")
            .unwrap_err();
        assert!(
            err.to_string().to_lowercase().contains("duplicate"),
            "{err}"
        );
    }

    #[test]
    fn refuses_secrets_over_one_mebibyte() {
        let big = "x".repeat(MAX_SECRET_DATA_BYTES + 1);
        let text = format!("apiVersion: v1\nkind: Secret\nstringData:\n  k: {big}\n");
        assert!(matches!(parse_secrets(&text), Err(Error::TooLarge { .. })));
    }
}
