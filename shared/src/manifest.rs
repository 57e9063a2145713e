//! Plain Kubernetes Secret manifests as users write them: YAML or JSON, one or many
//! documents, values in `data` (base64) or `stringData` (text).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_saphyr::Spanned;
use zeroize::Zeroizing;

use crate::error::{Error, ManifestError, ManifestProblem, Result};
use crate::escape::Escaped;
use crate::limits::MAX_SECRET_DATA_BYTES;
use crate::{metadata, names, suggest, yaml};

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

/// How a Secret is named in messages, its names escaped.
pub fn describe(namespace: Option<&str>, name: Option<&str>) -> String {
    match (namespace, name) {
        (Some(ns), Some(name)) => format!("Secret {}/{}", Escaped(ns), Escaped(name)),
        (None, Some(name)) => format!("Secret {}", Escaped(name)),
        _ => "Secret (unnamed)".to_owned(),
    }
}

/// The fields of a Secret, as Kubernetes spells them.
pub(crate) const SECRET_FIELDS: [&str; 7] = [
    "apiVersion",
    "kind",
    "metadata",
    "type",
    "immutable",
    "data",
    "stringData",
];
/// The fields of a Secret's metadata that a sealed template carries.
const META_FIELDS: [&str; 4] = ["name", "namespace", "labels", "annotations"];

/// What every document must say about itself before it is read as a Secret.
#[derive(Deserialize, Default)]
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

/// A field name that is not one of the known ones, and where it was.
struct UnknownField {
    name: String,
    line: u64,
}

/// A mapping of string keys to values that may be null, in document order, with each key's
/// line. Nulls are kept so they can be refused by name rather than read as empty strings.
struct Entries<V>(Vec<(String, u64, Option<V>)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct EntriesVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of keys to values")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let value = map.next_value::<Option<V>>()?;
                    entries.push((key.value, key.referenced.line(), value));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

#[derive(Default)]
struct InputMeta {
    name: Option<String>,
    namespace: Option<String>,
    labels: Option<Entries<String>>,
    annotations: Option<Entries<String>>,
    generate_name: Option<u64>,
    unknown: Vec<UnknownField>,
}

impl<'de> Deserialize<'de> for InputMeta {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct MetaVisitor;
        impl<'de> Visitor<'de> for MetaVisitor {
            type Value = InputMeta;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of metadata fields")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut meta = InputMeta::default();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    match key.value.as_str() {
                        "name" => meta.name = map.next_value()?,
                        "namespace" => meta.namespace = map.next_value()?,
                        "labels" => meta.labels = map.next_value()?,
                        "annotations" => meta.annotations = map.next_value()?,
                        "generateName" => {
                            map.next_value::<IgnoredAny>()?;
                            meta.generate_name = Some(key.referenced.line());
                        }
                        field => {
                            map.next_value::<IgnoredAny>()?;
                            if !metadata::SERVER_FIELDS.contains(&field) {
                                meta.unknown.push(UnknownField {
                                    name: key.value,
                                    line: key.referenced.line(),
                                });
                            }
                        }
                    }
                }
                Ok(meta)
            }
        }
        deserializer.deserialize_map(MetaVisitor)
    }
}

#[derive(Default)]
struct InputSecret {
    /// The document's head, read in the same pass as the rest.
    head: DocumentHead,
    metadata: Option<InputMeta>,
    type_: Option<String>,
    immutable: Option<bool>,
    data: Option<Entries<SecretText>>,
    string_data: Option<Entries<SecretText>>,
    unknown: Vec<UnknownField>,
}

impl<'de> Deserialize<'de> for InputSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct SecretVisitor;
        impl<'de> Visitor<'de> for SecretVisitor {
            type Value = InputSecret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Secret manifest (a mapping of fields)")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut secret = InputSecret::default();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    match key.value.as_str() {
                        "apiVersion" => secret.head.api_version = map.next_value()?,
                        "kind" => secret.head.kind = map.next_value()?,
                        "metadata" => secret.metadata = map.next_value()?,
                        "type" => secret.type_ = map.next_value()?,
                        "immutable" => secret.immutable = map.next_value()?,
                        "data" => secret.data = map.next_value()?,
                        "stringData" => secret.string_data = map.next_value()?,
                        _ => {
                            // Skipped unread: a mis-indented line may hold a value.
                            map.next_value::<IgnoredAny>()?;
                            secret.unknown.push(UnknownField {
                                name: key.value,
                                line: key.referenced.line(),
                            });
                        }
                    }
                }
                Ok(secret)
            }
        }
        deserializer.deserialize_map(SecretVisitor)
    }
}

/// Reads every Secret in a YAML or JSON stream. Any document that is not a v1 Secret is an
/// error rather than silently skipped, so nothing a user meant to seal is left out; so is a
/// field Kubernetes does not know, so that a typo (`stringdata:`) cannot seal an empty Secret.
/// Server and client bookkeeping ([`metadata`]) is dropped.
///
/// One parse in the usual case. Every document's head is checked before any document is
/// read as a Secret, so that a Deployment among Secrets is reported as such rather than by
/// the first field of it that a Secret cannot have: when the whole stream does not read as
/// Secrets, the heads alone are read again to say why.
pub fn parse_secrets(text: &str) -> Result<Vec<PlainSecret>> {
    let inputs: Vec<InputSecret> = match yaml::from_multiple(text) {
        Ok(inputs) => inputs,
        Err(error) => {
            let heads: Vec<DocumentHead> = yaml::from_multiple(text)?;
            check_heads(heads.iter())?;
            return Err(error);
        }
    };
    check_heads(inputs.iter().map(|input| &input.head))?;
    inputs
        .into_iter()
        .enumerate()
        .map(|(index, input)| convert(index, input))
        .collect()
}

fn check_heads<'a>(heads: impl ExactSizeIterator<Item = &'a DocumentHead>) -> Result<()> {
    if heads.len() == 0 {
        return Err(ManifestError {
            document: 1,
            object: None,
            line: None,
            problem: ManifestProblem::NoObjects,
        }
        .into());
    }
    for (index, head) in heads.enumerate() {
        check_head(index, head)?;
    }
    Ok(())
}

/// What a document is, by its `kind` alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DocumentKind {
    /// `kind: Secret`, whatever its `apiVersion` (a wrong one is for [`parse_secrets`] to
    /// refuse).
    Secret,
    SealedSecret,
    Other,
}

/// The kind of every document in `text`, reading `kind` only: for commands that search
/// directories and pass over files that hold no Secret. The same YAML rules and limits as
/// [`parse_secrets`].
pub fn document_kinds(text: &str) -> Result<Vec<DocumentKind>> {
    let heads: Vec<DocumentHead> = yaml::from_multiple(text)?;
    Ok(heads
        .iter()
        .map(|head| match head.kind.as_deref() {
            Some("Secret") => DocumentKind::Secret,
            Some("SealedSecret") => DocumentKind::SealedSecret,
            _ => DocumentKind::Other,
        })
        .collect())
}

fn check_head(index: usize, head: &DocumentHead) -> Result<()> {
    let problem = match (head.api_version.as_deref(), head.kind.as_deref()) {
        (Some("v1"), Some("Secret")) => return Ok(()),
        (_, Some("SealedSecret")) => ManifestProblem::AlreadySealed,
        (None, Some("Secret")) => ManifestProblem::NoApiVersion,
        (Some(api_version), Some("Secret")) => {
            ManifestProblem::WrongApiVersion(api_version.to_owned())
        }
        (_, Some("List" | "SecretList")) => ManifestProblem::List,
        (_, Some(kind)) => ManifestProblem::NotASecret(kind.to_owned()),
        (_, None) => ManifestProblem::NoKind,
    };
    Err(ManifestError {
        document: index + 1,
        object: None,
        line: None,
        problem,
    }
    .into())
}

/// How long a value must be to be looked for in labels and annotations: as text, long
/// enough not to be an identifier that legitimately appears in both (`app: shop` next to
/// `username: shop`); as base64, whose copies do not happen by chance, shorter.
const SHORTEST_TEXT_LOOKED_FOR: usize = 8;
const SHORTEST_BASE64_LOOKED_FOR: usize = 4;

/// Whether `text` (a label's or annotation's key or value) gives away `value`, as text or
/// as base64.
fn reveals(text: &str, value: &[u8], encoded: &str) -> bool {
    let text = text.as_bytes();
    let contains = |needle: &[u8]| text.windows(needle.len()).any(|w| w == needle);
    (value.len() >= SHORTEST_TEXT_LOOKED_FOR && contains(value))
        || (value.len() >= SHORTEST_BASE64_LOOKED_FOR && contains(encoded.as_bytes()))
}

fn convert(index: usize, input: InputSecret) -> Result<PlainSecret> {
    let meta = input.metadata.unwrap_or_default();
    let object = describe(meta.namespace.as_deref(), meta.name.as_deref());
    let fail = |line: Option<u64>, problem: ManifestProblem| -> Error {
        ManifestError {
            document: index + 1,
            object: Some(object.clone()),
            line,
            problem,
        }
        .into()
    };
    let unknown = |parent: Option<&'static str>, known: &[&'static str], field: &UnknownField| {
        let suggestion = suggest::closest(&field.name, known).or(match parent {
            // A value line indented one level too little lands at the top level.
            None => Some("to indent it under stringData or data"),
            Some(_) => None,
        });
        fail(
            Some(field.line),
            ManifestProblem::UnknownField {
                parent,
                field: field.name.clone(),
                suggestion,
            },
        )
    };
    if let Some(field) = input.unknown.first() {
        return Err(unknown(None, &SECRET_FIELDS, field));
    }
    if let Some(field) = meta.unknown.first() {
        return Err(unknown(Some("metadata"), &META_FIELDS, field));
    }
    if let Some(line) = meta.generate_name {
        return Err(fail(Some(line), ManifestProblem::GenerateName));
    }
    if let Some(name) = &meta.name {
        names::check_object_name(name).map_err(|name| {
            fail(
                None,
                ManifestProblem::Name {
                    field: "metadata.name",
                    name,
                },
            )
        })?;
    }
    if let Some(namespace) = &meta.namespace {
        names::check_namespace(namespace).map_err(|name| {
            fail(
                None,
                ManifestProblem::Name {
                    field: "metadata.namespace",
                    name,
                },
            )
        })?;
    }
    let mut data: BTreeMap<String, Zeroizing<Vec<u8>>> = BTreeMap::new();
    for (key, line, value) in input.data.map(|e| e.0).unwrap_or_default() {
        names::check_data_key(&key).map_err(|name| {
            fail(
                Some(line),
                ManifestProblem::Name {
                    field: "data",
                    name,
                },
            )
        })?;
        let Some(encoded) = value else {
            return Err(fail(
                Some(line),
                ManifestProblem::Null { field: "data", key },
            ));
        };
        let decoded = STANDARD
            .decode(encoded.0.trim().as_bytes())
            .map(Zeroizing::new)
            .map_err(|_| fail(Some(line), ManifestProblem::Base64 { key: key.clone() }))?;
        data.insert(key, decoded);
    }
    for (key, line, value) in input.string_data.map(|e| e.0).unwrap_or_default() {
        names::check_data_key(&key).map_err(|name| {
            fail(
                Some(line),
                ManifestProblem::Name {
                    field: "stringData",
                    name,
                },
            )
        })?;
        if data.contains_key(&key) {
            return Err(fail(
                Some(line),
                ManifestProblem::InDataAndStringData { key },
            ));
        }
        let Some(text) = value else {
            return Err(fail(
                Some(line),
                ManifestProblem::Null {
                    field: "stringData",
                    key,
                },
            ));
        };
        data.insert(key, Zeroizing::new(text.0.as_bytes().to_vec()));
    }
    let size: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_SECRET_DATA_BYTES {
        return Err(Error::TooLarge {
            what: format!("document {} ({object}): the Secret's data", index + 1),
            size,
            limit: MAX_SECRET_DATA_BYTES,
        });
    }
    let template_fields = |entries: Option<Entries<String>>,
                           field: &'static str,
                           dropped: &[&str]|
     -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for (key, line, value) in entries.map(|e| e.0).unwrap_or_default() {
            if dropped.contains(&key.as_str()) {
                continue;
            }
            let Some(value) = value else {
                return Err(fail(Some(line), ManifestProblem::Null { field, key }));
            };
            let (mut in_key, mut in_value) = (false, false);
            for secret in data.values() {
                let encoded = Zeroizing::new(STANDARD.encode(secret.as_slice()));
                in_key |= reveals(&key, secret, &encoded);
                in_value |= reveals(&value, secret, &encoded);
            }
            if in_key || in_value {
                let field = if field == "metadata.labels" {
                    "label"
                } else {
                    "annotation"
                };
                // Naming a key that is itself the value would print it.
                let key = (!in_key).then_some(key);
                return Err(fail(
                    Some(line),
                    ManifestProblem::ValueInMetadata { field, key },
                ));
            }
            out.insert(key, value);
        }
        Ok(out)
    };
    let labels = template_fields(
        meta.labels,
        "metadata.labels",
        &metadata::BOOKKEEPING_LABELS,
    )?;
    let annotations = template_fields(
        meta.annotations,
        "metadata.annotations",
        &metadata::BOOKKEEPING_ANNOTATIONS,
    )?;
    Ok(PlainSecret {
        name: meta.name,
        namespace: meta.namespace,
        type_: input.type_,
        labels,
        annotations,
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

    fn problem(text: &str) -> (ManifestProblem, Option<u64>, String) {
        match parse_secrets(text) {
            Err(Error::Manifest(e)) => {
                let message = e.to_string();
                (e.problem, e.line, message)
            }
            Err(other) => panic!("{text:?}: not a manifest error: {other}"),
            Ok(_) => panic!("{text:?}: accepted"),
        }
    }

    #[test]
    fn refuses_what_is_not_a_secret() {
        let cases = [
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
                ManifestProblem::NotASecret("ConfigMap".into()),
            ),
            (
                "apiVersion: seal.dev/v1\nkind: SealedSecret\nmetadata: {name: a}\n",
                ManifestProblem::AlreadySealed,
            ),
            ("metadata: {name: a}\n", ManifestProblem::NoKind),
            ("", ManifestProblem::NoObjects),
            (
                "kind: Secret\nmetadata: {name: a}\n",
                ManifestProblem::NoApiVersion,
            ),
            (
                "apiVersion: v2\nkind: Secret\n",
                ManifestProblem::WrongApiVersion("v2".into()),
            ),
            (
                "apiVersion: v1\nkind: List\nitems: []\n",
                ManifestProblem::List,
            ),
            (
                "apiVersion: v1\nkind: Secret\ndata: {a: '!!!'}\n",
                ManifestProblem::Base64 { key: "a".into() },
            ),
            (
                "apiVersion: v1\nkind: Secret\ndata: {a: YQ==}\nstringData: {a: b}\n",
                ManifestProblem::InDataAndStringData { key: "a".into() },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(problem(text).0, expected, "{text:?}");
        }
    }

    #[test]
    fn a_missing_api_version_is_not_called_a_wrong_kind() {
        let (_, _, message) = problem("kind: Secret\nstringData: {a: b}\n");
        assert!(message.contains("no apiVersion"), "{message}");
        assert!(!message.contains("not a Secret"), "{message}");
    }

    #[test]
    fn unknown_fields_are_refused_with_a_suggestion_and_line() {
        let cases = [
            (
                "apiVersion: v1\nkind: Secret\nmetadata: {name: a, namespace: b}\nstringdata:\n  password: hunter2\n",
                Some("stringData"),
                None,
                4,
            ),
            (
                "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\nstringData:\n  user: admin\npassword: hunter2\n",
                Some("to indent it under stringData or data"),
                None,
                6,
            ),
            (
                "apiVersion: v1\nkind: Secret\nmetadata:\n  nmae: a\n",
                Some("name"),
                Some("metadata"),
                4,
            ),
            (
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: a\n  Labels: {x: y}\n",
                Some("labels"),
                Some("metadata"),
                5,
            ),
            (
                "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\nimmutible: true\n",
                Some("immutable"),
                None,
                4,
            ),
        ];
        for (text, suggestion, parent, line) in cases {
            let (found, at, message) = problem(text);
            match found {
                ManifestProblem::UnknownField {
                    suggestion: s,
                    parent: p,
                    ..
                } => {
                    assert_eq!((s, p), (suggestion, parent), "{text:?}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
            assert_eq!(at, Some(line), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
        let (_, _, message) = problem(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\nstringdata: {a: b}\n",
        );
        assert_eq!(
            message,
            "Secret prod/db (document 1, line 4): unknown field \"stringdata\"; did you mean stringData?"
        );
    }

    #[test]
    fn null_values_are_refused_not_sealed_as_empty() {
        for (text, field) in [
            (
                "apiVersion: v1\nkind: Secret\nstringData:\n  a: ~\n",
                "stringData",
            ),
            (
                "apiVersion: v1\nkind: Secret\nstringData:\n  a: null\n",
                "stringData",
            ),
            (
                "apiVersion: v1\nkind: Secret\nstringData:\n  a:\n",
                "stringData",
            ),
            ("apiVersion: v1\nkind: Secret\ndata:\n  a: ~\n", "data"),
            (
                "apiVersion: v1\nkind: Secret\nmetadata:\n  labels: {a: ~}\nstringData: {k: v}\n",
                "metadata.labels",
            ),
        ] {
            assert_eq!(
                problem(text).0,
                ManifestProblem::Null {
                    field,
                    key: "a".into()
                },
                "{text:?}"
            );
        }
        let s = one("apiVersion: v1\nkind: Secret\nstringData: {a: '~', b: 'null', c: ''}\n");
        assert_eq!(s.data["a"].as_slice(), b"~");
        assert_eq!(s.data["b"].as_slice(), b"null");
        assert_eq!(s.data["c"].as_slice(), b"");
    }

    #[test]
    fn names_and_keys_follow_kubernetes_rules() {
        for (text, field) in [
            (
                "apiVersion: v1\nkind: Secret\nmetadata: {name: Bad_Name}\n",
                "metadata.name",
            ),
            (
                "apiVersion: v1\nkind: Secret\nmetadata: {name: a..b}\n",
                "metadata.name",
            ),
            (
                "apiVersion: v1\nkind: Secret\nmetadata: {name: a.-b}\n",
                "metadata.name",
            ),
            (
                "apiVersion: v1\nkind: Secret\nmetadata: {namespace: a.b}\n",
                "metadata.namespace",
            ),
            (
                "apiVersion: v1\nkind: Secret\nmetadata: {namespace: \"../../x\"}\n",
                "metadata.namespace",
            ),
            (
                "apiVersion: v1\nkind: Secret\nstringData: {'a b': x}\n",
                "stringData",
            ),
            ("apiVersion: v1\nkind: Secret\ndata: {'..': eA==}\n", "data"),
        ] {
            match problem(text).0 {
                ManifestProblem::Name { field: f, .. } => assert_eq!(f, field, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn control_characters_in_names_never_reach_a_message_raw() {
        let text = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: \"a\\e[2K\\rseal: ok\\nb\"\n  namespace: n\nstringData: {k: v}\n";
        let message = parse_secrets(text).err().unwrap().to_string();
        assert!(
            !message.chars().any(|c| c.is_control()),
            "raw control character in {message:?}"
        );
        assert!(message.contains(r"\u{1b}"), "{message}");
    }

    #[test]
    fn kubectl_bookkeeping_is_dropped() {
        let text = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\n  uid: 0d6a\n  resourceVersion: \"42\"\n  creationTimestamp: \"2024-01-01T00:00:00Z\"\n  generation: 1\n  selfLink: /api/v1/x\n  finalizers: [x]\n  ownerReferences: [{apiVersion: v1, kind: X, name: y, uid: z}]\n  managedFields: [{manager: kubectl, operation: Update}]\n  labels: {app: db, seal.dev/managed-by: seal-operator}\n  annotations:\n    team: payments\n    kubectl.kubernetes.io/last-applied-configuration: |\n      {\"stringData\":{\"password\":\"hunter2\"}}\nstringData: {password: hunter2}\n";
        let s = one(text);
        assert_eq!(s.labels.keys().collect::<Vec<_>>(), ["app"]);
        assert_eq!(s.annotations.keys().collect::<Vec<_>>(), ["team"]);
    }

    #[test]
    fn a_label_or_annotation_holding_a_value_is_refused() {
        let base = |meta: &str| {
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n{meta}\nstringData: {{password: hunter2-long, pin: '1234', username: shop}}\n"
            )
        };
        for (meta, field, key) in [
            (
                "  annotations: {note: 'pw is hunter2-long'}",
                "annotation",
                Some("note"),
            ),
            (
                "  annotations: {copy: aHVudGVyMi1sb25n}",
                "annotation",
                Some("copy"),
            ),
            ("  labels: {pin: MTIzNA==}", "label", Some("pin")),
            ("  labels: {'hunter2-long': x}", "label", None),
        ] {
            let (found, _, message) = problem(&base(meta));
            assert_eq!(
                found,
                ManifestProblem::ValueInMetadata {
                    field,
                    key: key.map(str::to_owned)
                },
                "{meta}"
            );
            assert!(!message.contains("hunter2"), "{message}");
        }
        // Short values are identifiers as often as secrets: not looked for as text.
        one(&base("  labels: {app: shop, pin: '1234'}"));
    }

    #[test]
    fn generate_name_is_refused() {
        assert_eq!(
            problem("apiVersion: v1\nkind: Secret\nmetadata: {generateName: db-}\n").0,
            ManifestProblem::GenerateName
        );
    }

    #[test]
    fn wrong_types_say_what_was_expected_without_the_value() {
        for text in [
            "apiVersion: v1\nkind: Secret\nstringData: hunter2\n",
            "apiVersion: v1\nkind: Secret\nstringData: {password: [hunter2]}\n",
            "apiVersion: v1\nkind: Secret\nmetadata: hunter2\n",
            "hunter2\n",
        ] {
            let message = parse_secrets(text).err().unwrap().to_string();
            assert!(!message.contains("hunter2"), "{text:?}: {message}");
            assert!(message.contains("expected"), "{text:?}: {message}");
            assert!(!message.contains("Option<"), "{message}");
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
        let message = err.to_string();
        assert!(message.contains("duplicate key \"a\""), "{message}");
        assert!(!message.contains("DuplicateKeyPolicy"), "{message}");
    }

    #[test]
    fn refuses_secrets_over_one_mebibyte() {
        let big = "x".repeat(MAX_SECRET_DATA_BYTES + 1);
        let text = format!("apiVersion: v1\nkind: Secret\nstringData:\n  k: {big}\n");
        assert!(matches!(parse_secrets(&text), Err(Error::TooLarge { .. })));
    }
}
