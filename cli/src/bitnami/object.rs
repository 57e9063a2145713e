//! A `bitnami.com/v1alpha1` SealedSecret, read as far as seal can carry it over.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use seal_shared::Scope;
use seal_shared::manifest::PlainSecret;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::crypto::{OpenError, open_item};
use super::keys::ControllerKeys;

pub const API_VERSION: &str = "bitnami.com/v1alpha1";
const CLUSTER_WIDE: &str = "sealedsecrets.bitnami.com/cluster-wide";
const NAMESPACE_WIDE: &str = "sealedsecrets.bitnami.com/namespace-wide";
/// Annotations about the Bitnami object itself, which mean nothing on seal's.
const DROPPED_ANNOTATION_PREFIXES: [&str; 2] = [
    "sealedsecrets.bitnami.com/",
    "kubectl.kubernetes.io/last-applied-configuration",
];
/// The template metadata fields seal carries over or can safely leave out (the Secret's
/// name and namespace are the SealedSecret's; kubeseal writes `creationTimestamp: null`).
const TEMPLATE_METADATA_FIELDS: [&str; 5] = [
    "labels",
    "annotations",
    "name",
    "namespace",
    "creationTimestamp",
];
const TEMPLATE_FIELDS: [&str; 4] = ["metadata", "type", "immutable", "data"];

/// Why a document cannot be carried over. The variants are what the summary counts.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(
        "spec.template.data holds Go templates ({0}), which seal cannot express: seal writes each value as sealed, never computed from others"
    )]
    GoTemplate(String),
    #[error(
        "uses the legacy spec.data form (the whole Secret in one item), which seal does not import"
    )]
    LegacyData,
    #[error("item {key:?} {source}")]
    Open {
        key: String,
        #[source]
        source: OpenError,
    },
    #[error("has no metadata.namespace, which its {0} scope binds its items to")]
    NoNamespace(Scope),
    #[error("item {0:?} is not base64")]
    Base64(String),
    #[error("{0}")]
    Shape(String),
}

impl Refusal {
    /// The summary's word for the kind of refusal.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::GoTemplate(_) => "Go templates in spec.template.data",
            Refusal::LegacyData => "legacy spec.data",
            Refusal::Open {
                source: OpenError::NoKey { .. },
                ..
            } => "no controller key opens an item",
            Refusal::Open { .. } | Refusal::Base64(_) => "damaged items",
            Refusal::Shape(_) => "unsupported fields",
            Refusal::NoNamespace(_) => "no namespace",
        }
    }

    pub fn hint(&self) -> &'static str {
        match self {
            Refusal::GoTemplate(_) => {
                "convert it by hand: compute each templated value and seal it with seal encrypt"
            }
            Refusal::LegacyData => {
                "reseal it with kubeseal (which writes spec.encryptedData) first, or seal the live Secret with seal encrypt"
            }
            Refusal::Open {
                source: OpenError::NoKey { .. },
                ..
            } => {
                "export every key of the controller (all Secrets with the label sealedsecrets.bitnami.com/sealed-secrets-key), and check the file's namespace and name are those it was sealed for"
            }
            Refusal::Open { .. } | Refusal::Base64(_) => {
                "restore the file from Git history, or seal the live Secret with seal encrypt"
            }
            Refusal::Shape(_) => "convert it by hand with seal encrypt",
            Refusal::NoNamespace(_) => {
                "pass -n NAMESPACE, the namespace it is applied in (used only for objects that name none)"
            }
        }
    }
}

/// One Bitnami SealedSecret, opened: the Secret it makes, and what it says about itself.
pub struct Opened {
    pub secret: PlainSecret,
    pub name: String,
    pub namespace: Option<String>,
    pub scope: Scope,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

pub fn is_bitnami_sealed_secret(doc: &Value) -> bool {
    doc.get("apiVersion").and_then(Value::as_str) == Some(API_VERSION)
        && doc.get("kind").and_then(Value::as_str) == Some("SealedSecret")
}

/// How the document is named in messages.
pub fn describe(doc: &Value) -> String {
    let get = |field| doc.pointer(field).and_then(Value::as_str);
    match (get("/metadata/namespace"), get("/metadata/name")) {
        (Some(ns), Some(name)) => format!("SealedSecret {ns}/{name}"),
        (None, Some(name)) => format!("SealedSecret {name}"),
        _ => "SealedSecret (unnamed)".to_owned(),
    }
}

fn strings(value: Option<&Value>, field: &str) -> Result<BTreeMap<String, String>, Refusal> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(BTreeMap::new());
    };
    let object = value
        .as_object()
        .ok_or_else(|| Refusal::Shape(format!("{field} is not a map")))?;
    object
        .iter()
        .map(|(k, v)| match v.as_str() {
            Some(text) => Ok((k.clone(), text.to_owned())),
            None => Err(Refusal::Shape(format!("{field}.{k} is not a string"))),
        })
        .collect()
}

fn object<'a>(
    value: Option<&'a Value>,
    field: &str,
) -> Result<Option<&'a Map<String, Value>>, Refusal> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(Refusal::Shape(format!("{field} is not a map"))),
    }
}

/// The scope the controller would use: from the SealedSecret's own annotations, as
/// sealed-secrets computes the OAEP label when it unseals; cluster-wide wins.
fn scope_of(annotations: &BTreeMap<String, String>) -> Scope {
    if annotations.get(CLUSTER_WIDE).map(String::as_str) == Some("true") {
        Scope::ClusterWide
    } else if annotations.get(NAMESPACE_WIDE).map(String::as_str) == Some("true") {
        Scope::NamespaceWide
    } else {
        Scope::Strict
    }
}

/// The OAEP label sealed-secrets uses for a scope.
pub fn label(scope: Scope, namespace: &str, name: &str) -> String {
    match scope {
        Scope::ClusterWide => String::new(),
        Scope::NamespaceWide => namespace.to_owned(),
        _ => format!("{namespace}/{name}"),
    }
}

/// Opens every item of `doc` with `keys` and gathers what seal keeps of the object.
/// `namespace` is for an object whose file names none (one applied with `kubectl -n`).
pub fn open(
    doc: &Value,
    keys: &ControllerKeys,
    namespace: Option<&str>,
) -> Result<Opened, Refusal> {
    let default_namespace = namespace;
    let metadata = object(doc.get("metadata"), "metadata")?;
    let meta_get = |field: &str| metadata.and_then(|m| m.get(field));
    let name = meta_get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Refusal::Shape("has no metadata.name".to_owned()))?
        .to_owned();
    let namespace = meta_get("namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .or(default_namespace)
        .map(str::to_owned);
    let own_labels = strings(meta_get("labels"), "metadata.labels")?;
    let own_annotations = strings(meta_get("annotations"), "metadata.annotations")?;
    let scope = scope_of(&own_annotations);
    if scope.binds_namespace() && namespace.is_none() {
        return Err(Refusal::NoNamespace(scope));
    }

    let spec =
        object(doc.get("spec"), "spec")?.ok_or_else(|| Refusal::Shape("has no spec".to_owned()))?;
    if spec.get("data").is_some_and(|d| !d.is_null()) {
        return Err(Refusal::LegacyData);
    }
    if let Some(field) = spec
        .keys()
        .find(|k| !["encryptedData", "template"].contains(&k.as_str()))
    {
        return Err(Refusal::Shape(format!(
            "has spec.{field}, which seal does not know"
        )));
    }
    let template = object(spec.get("template"), "spec.template")?;
    let template_get = |field: &str| template.and_then(|t| t.get(field));
    if let Some(field) = template
        .into_iter()
        .flat_map(Map::keys)
        .find(|k| !TEMPLATE_FIELDS.contains(&k.as_str()))
    {
        return Err(Refusal::Shape(format!(
            "has spec.template.{field}, which seal cannot carry over"
        )));
    }
    if let Some(data) = object(template_get("data"), "spec.template.data")?
        && !data.is_empty()
    {
        let keys: Vec<&str> = data.keys().map(String::as_str).collect();
        return Err(Refusal::GoTemplate(keys.join(", ")));
    }
    let template_meta = object(template_get("metadata"), "spec.template.metadata")?;
    if let Some(field) = template_meta
        .into_iter()
        .flat_map(Map::keys)
        .find(|k| !TEMPLATE_METADATA_FIELDS.contains(&k.as_str()))
    {
        return Err(Refusal::Shape(format!(
            "has spec.template.metadata.{field}, which seal cannot carry over"
        )));
    }
    let type_ = match template_get("type") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(t.clone()),
        Some(_) => {
            return Err(Refusal::Shape(
                "spec.template.type is not a string".to_owned(),
            ));
        }
    };
    let immutable = match template_get("immutable") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(Refusal::Shape(
                "spec.template.immutable is not true or false".to_owned(),
            ));
        }
    };

    let label = label(scope, namespace.as_deref().unwrap_or(""), &name);
    let mut data = BTreeMap::new();
    if let Some(items) = object(spec.get("encryptedData"), "spec.encryptedData")? {
        for (key, value) in items {
            let encoded = value.as_str().ok_or_else(|| Refusal::Base64(key.clone()))?;
            let bytes = STANDARD
                .decode(encoded.trim())
                .map_err(|_| Refusal::Base64(key.clone()))?;
            let plain = open_item(&bytes, &label, keys).map_err(|source| Refusal::Open {
                key: key.clone(),
                source,
            })?;
            data.insert(key.clone(), plain);
        }
    }
    let data: BTreeMap<String, Zeroizing<Vec<u8>>> = data;

    let secret = PlainSecret {
        name: Some(name.clone()),
        namespace: namespace.clone(),
        type_,
        labels: strings(
            template_meta.and_then(|m| m.get("labels")),
            "spec.template.metadata.labels",
        )?,
        annotations: strings(
            template_meta.and_then(|m| m.get("annotations")),
            "spec.template.metadata.annotations",
        )?,
        immutable,
        data,
    };
    let annotations = own_annotations
        .into_iter()
        .filter(|(k, _)| !DROPPED_ANNOTATION_PREFIXES.iter().any(|p| k.starts_with(p)))
        .collect();
    Ok(Opened {
        secret,
        name,
        namespace,
        scope,
        labels: own_labels,
        annotations,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn keys() -> ControllerKeys {
        ControllerKeys::parse(include_str!("../../tests/bitnami/vectors/keys.yaml")).unwrap()
    }

    fn refusal(doc: Value) -> String {
        match open(&doc, &keys(), None) {
            Ok(_) => panic!("accepted {doc}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn cluster_wide_wins_over_namespace_wide_as_in_sealed_secrets() {
        let both: BTreeMap<String, String> = [
            (NAMESPACE_WIDE.to_owned(), "true".to_owned()),
            (CLUSTER_WIDE.to_owned(), "true".to_owned()),
        ]
        .into();
        assert_eq!(scope_of(&both), Scope::ClusterWide);
        let not_true: BTreeMap<String, String> =
            [(CLUSTER_WIDE.to_owned(), "yes".to_owned())].into();
        assert_eq!(scope_of(&not_true), Scope::Strict);
        assert_eq!(label(Scope::Strict, "ns", "n"), "ns/n");
        assert_eq!(label(Scope::NamespaceWide, "ns", "n"), "ns");
        assert_eq!(label(Scope::ClusterWide, "ns", "n"), "");
    }

    #[test]
    fn what_seal_cannot_carry_over_is_refused_by_name() {
        let meta = json!({"name": "db", "namespace": "prod"});
        assert!(
            refusal(json!({"metadata": {"name": "db"}, "spec": {"encryptedData": {}}}))
                .contains("has no metadata.namespace")
        );
        assert!(
            refusal(json!({"metadata": meta, "spec": {"encryptedData": {}, "scope": 1}}))
                .contains("spec.scope")
        );
        assert!(
            refusal(
                json!({"metadata": meta, "spec": {"template": {"metadata": {"finalizers": ["x"]}}}})
            )
            .contains("spec.template.metadata.finalizers")
        );
        assert!(
            refusal(json!({"metadata": meta, "spec": {"template": {"data": {"a": "{{ .b }}"}}}}))
                .contains("Go templates (a)")
        );
        assert!(refusal(json!({"metadata": meta, "spec": {"data": "AgB="}})).contains("legacy"));
        assert!(
            refusal(json!({"metadata": meta, "spec": {"encryptedData": {"k": "not base64!"}}}))
                .contains("item \"k\" is not base64")
        );
    }

    #[test]
    fn a_cluster_wide_object_needs_no_namespace() {
        let doc = json!({
            "metadata": {"name": "x", "annotations": {CLUSTER_WIDE: "true", "keep": "me"}},
            "spec": {"encryptedData": {}, "template": {"type": "Opaque", "immutable": false}},
        });
        let opened = open(&doc, &keys(), None).unwrap();
        assert_eq!(opened.scope, Scope::ClusterWide);
        assert_eq!(opened.namespace, None);
        assert_eq!(opened.annotations.keys().collect::<Vec<_>>(), ["keep"]);
        assert_eq!(opened.secret.type_.as_deref(), Some("Opaque"));
        assert_eq!(opened.secret.immutable, Some(false));
    }
}
