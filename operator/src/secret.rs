//! The Secret a SealedSecret asks for, and what it takes to make an existing Secret exactly
//! that: nothing, one patch, or (for what Kubernetes will not change in place) a replacement.
//!
//! "Exactly" covers every key of `data`, the labels, the annotations, the owner references,
//! the type and `immutable`, whoever changed them. Server-side apply cannot promise that (it
//! leaves alone fields that another manager added), so an existing Secret is changed with a
//! JSON merge patch that names every field to drop, guarded by the resourceVersion it was
//! computed from. The bodies are typed, borrowed values: the only copy of a value they make
//! is the request body itself.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Resource, ResourceExt};
use seal_shared::sealed_secret::SealedSecret;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::labels::{MANAGED_BY, MANAGED_BY_VALUE};

/// The Secret that a SealedSecret's items and template describe.
pub struct Desired<'a> {
    pub name: String,
    pub namespace: String,
    labels: BTreeMap<&'a str, &'a str>,
    annotations: BTreeMap<&'a str, &'a str>,
    type_: &'a str,
    immutable: Option<bool>,
    owner: OwnerReference,
    values: &'a BTreeMap<String, Zeroizing<Vec<u8>>>,
    /// The values as the API wants them, base64; wiped on drop.
    encoded: BTreeMap<&'a str, Zeroizing<String>>,
}

/// What an existing Secret needs to become the desired one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It already is.
    None,
    /// A patch makes it so.
    Patch,
    /// Kubernetes refuses to change its type, or the data of an immutable Secret, in place:
    /// it must be deleted and written anew.
    Replace,
}

impl<'a> Desired<'a> {
    /// `None` when the SealedSecret has no uid or namespace yet (it was never stored).
    pub fn new(
        sealed: &'a SealedSecret,
        values: &'a BTreeMap<String, Zeroizing<Vec<u8>>>,
    ) -> Option<Desired<'a>> {
        let template = &sealed.spec.template;
        let mut labels: BTreeMap<&str, &str> = template
            .metadata
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        labels.insert(MANAGED_BY, MANAGED_BY_VALUE);
        let annotations = template
            .metadata
            .annotations
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let encoded = values
            .iter()
            .map(|(k, v)| (k.as_str(), Zeroizing::new(STANDARD.encode(v.as_slice()))))
            .collect();
        Some(Desired {
            name: sealed.name_any(),
            namespace: sealed.namespace()?,
            labels,
            annotations,
            type_: template.type_.as_deref().unwrap_or("Opaque"),
            immutable: template.immutable,
            owner: sealed.controller_owner_ref(&())?,
            values,
            encoded,
        })
    }

    fn same_data(&self, existing: &Secret) -> bool {
        let data = existing.data.as_ref();
        let have = data.map_or(0, BTreeMap::len);
        have == self.values.len()
            && self.values.iter().all(|(k, v)| {
                data.and_then(|d| d.get(k))
                    .is_some_and(|have| have.0 == v.as_slice())
            })
    }

    fn same_metadata(&self, existing: &Secret) -> bool {
        let meta = &existing.metadata;
        let same = |have: &Option<BTreeMap<String, String>>, want: &BTreeMap<&str, &str>| {
            let have = have.as_ref();
            have.map_or(0, BTreeMap::len) == want.len()
                && want
                    .iter()
                    .all(|(k, v)| have.and_then(|h| h.get(*k)).is_some_and(|have| have == v))
        };
        same(&meta.labels, &self.labels)
            && same(&meta.annotations, &self.annotations)
            && meta.owner_references.as_deref() == Some(std::slice::from_ref(&self.owner))
    }

    /// What `existing` needs to hold exactly what this says.
    pub fn change_from(&self, existing: &Secret) -> Change {
        let same_data = self.same_data(existing);
        let immutable = |flag: Option<bool>| flag.unwrap_or(false);
        let same_flag = immutable(existing.immutable) == immutable(self.immutable);
        let same_type = existing.type_.as_deref().unwrap_or("Opaque") == self.type_;
        if !same_type || (immutable(existing.immutable) && !(same_data && same_flag)) {
            Change::Replace
        } else if same_data && same_flag && self.same_metadata(existing) {
            Change::None
        } else {
            Change::Patch
        }
    }

    /// The whole Secret, to create it.
    pub fn create_body(&self) -> Body<'_> {
        Body {
            api_version: "v1",
            kind: "Secret",
            metadata: BodyMeta {
                name: &self.name,
                namespace: &self.namespace,
                resource_version: None,
                labels: self.labels.iter().map(|(k, v)| (*k, Some(*v))).collect(),
                annotations: self
                    .annotations
                    .iter()
                    .map(|(k, v)| (*k, Some(*v)))
                    .collect(),
                owner_references: [&self.owner],
            },
            type_: self.type_,
            immutable: self.immutable.map(Some),
            data: self
                .encoded
                .iter()
                .map(|(k, v)| (*k, Some(v.as_str())))
                .collect(),
        }
    }

    /// The JSON merge patch that turns `existing` into this Secret: every key, label and
    /// annotation it should not have is set to null, the owner references are replaced as
    /// a whole, and the resourceVersion makes the server refuse it if `existing` is no
    /// longer current.
    pub fn patch_from<'e>(&'e self, existing: &'e Secret) -> Body<'e> {
        let mut body = self.create_body();
        let meta = &existing.metadata;
        body.metadata.resource_version = meta.resource_version.as_deref();
        let drop_absent = |into: &mut BTreeMap<&'e str, Option<&'e str>>,
                           have: Option<&'e BTreeMap<String, String>>| {
            for key in have.into_iter().flat_map(BTreeMap::keys) {
                into.entry(key.as_str()).or_insert(None);
            }
        };
        drop_absent(&mut body.metadata.labels, meta.labels.as_ref());
        drop_absent(&mut body.metadata.annotations, meta.annotations.as_ref());
        for key in existing.data.iter().flat_map(BTreeMap::keys) {
            body.data.entry(key.as_str()).or_insert(None);
        }
        if self.immutable.is_none() && existing.immutable.is_some() {
            body.immutable = Some(None);
        }
        body
    }
}

/// A Secret, or a merge patch to one: `None` values are nulls, which a merge patch reads as
/// "remove".
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Body<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: BodyMeta<'a>,
    #[serde(rename = "type")]
    type_: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    immutable: Option<Option<bool>>,
    data: BTreeMap<&'a str, Option<&'a str>>,
}

/// kube asks for `Debug` on a patch; it shows the item keys, never the values.
impl std::fmt::Debug for Body<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.metadata.name)
            .field("namespace", &self.metadata.namespace)
            .field("data", &self.data.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BodyMeta<'a> {
    name: &'a str,
    namespace: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_version: Option<&'a str>,
    labels: BTreeMap<&'a str, Option<&'a str>>,
    annotations: BTreeMap<&'a str, Option<&'a str>>,
    owner_references: [&'a OwnerReference; 1],
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use serde_json::json;

    fn sealed(template: serde_json::Value) -> SealedSecret {
        serde_json::from_value(json!({
            "apiVersion": "seal.dev/v1",
            "kind": "SealedSecret",
            "metadata": {"name": "db", "namespace": "app", "uid": "u-1"},
            "spec": {"encryptedData": {}, "template": template},
        }))
        .expect("a valid SealedSecret")
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, Zeroizing<Vec<u8>>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Zeroizing::new(v.as_bytes().to_vec())))
            .collect()
    }

    /// The Secret exactly as `desired` would create it, as the API server returns it.
    fn created(desired: &Desired<'_>) -> Secret {
        let mut secret: Secret =
            serde_json::from_value(serde_json::to_value(desired.create_body()).expect("json"))
                .expect("a Secret");
        secret.metadata.resource_version = Some("7".into());
        secret
    }

    #[test]
    fn what_it_creates_needs_no_change() {
        let s = sealed(
            json!({"type": "kubernetes.io/basic-auth", "metadata": {"labels": {"a": "1"}, "annotations": {"b": "2"}}}),
        );
        let v = values(&[("username", "u"), ("password", "p")]);
        let desired = Desired::new(&s, &v).expect("stored");
        let secret = created(&desired);
        assert_eq!(desired.change_from(&secret), Change::None);
        assert_eq!(
            secret.metadata.labels.unwrap()[MANAGED_BY],
            MANAGED_BY_VALUE
        );
        assert_eq!(secret.data.unwrap()["password"], ByteString(b"p".to_vec()));
    }

    #[test]
    fn every_kind_of_drift_is_a_patch_that_undoes_it() {
        let s = sealed(json!({"metadata": {"labels": {"a": "1"}}}));
        let v = values(&[("k", "v")]);
        let desired = Desired::new(&s, &v).expect("stored");
        let base = created(&desired);
        type Drift = Box<dyn Fn(&mut Secret)>;
        let drifts: Vec<(&str, Drift)> = vec![
            (
                "a key added",
                Box::new(|s| {
                    s.data
                        .get_or_insert_default()
                        .insert("extra".into(), ByteString(b"x".to_vec()));
                }),
            ),
            (
                "a value edited",
                Box::new(|s| {
                    s.data
                        .get_or_insert_default()
                        .insert("k".into(), ByteString(b"w".to_vec()));
                }),
            ),
            (
                "the owner reference removed",
                Box::new(|s| s.metadata.owner_references = None),
            ),
            (
                "a label added",
                Box::new(|s| {
                    s.metadata
                        .labels
                        .get_or_insert_default()
                        .insert("x".into(), "y".into());
                }),
            ),
            (
                "a label edited",
                Box::new(|s| {
                    s.metadata
                        .labels
                        .get_or_insert_default()
                        .insert("a".into(), "2".into());
                }),
            ),
            (
                "an annotation added",
                Box::new(|s| {
                    s.metadata.annotations.get_or_insert_default().insert(
                        "kubectl.kubernetes.io/last-applied-configuration".into(),
                        "{}".into(),
                    );
                }),
            ),
            (
                "a second owner",
                Box::new(|s| {
                    let mut other =
                        s.metadata.owner_references.clone().unwrap_or_default()[0].clone();
                    other.uid = "u-2".into();
                    other.controller = None;
                    s.metadata
                        .owner_references
                        .get_or_insert_default()
                        .push(other);
                }),
            ),
        ];
        for (what, drift) in drifts {
            let mut secret = base.clone();
            drift(&mut secret);
            assert_eq!(desired.change_from(&secret), Change::Patch, "{what}");
            // The patch, applied as a JSON merge patch, gives back exactly the desired Secret.
            let mut doc = serde_json::to_value(&secret).expect("json");
            merge(
                &mut doc,
                &serde_json::to_value(desired.patch_from(&secret)).expect("json"),
            );
            let patched: Secret = serde_json::from_value(doc).expect("a Secret");
            assert_eq!(desired.change_from(&patched), Change::None, "{what}");
        }
    }

    #[test]
    fn debug_output_names_keys_not_values() {
        let s = sealed(json!({}));
        let v = values(&[("password", "sentinel-debug-value")]);
        let desired = Desired::new(&s, &v).expect("stored");
        let shown = format!("{:?}", desired.create_body());
        assert!(shown.contains("password") && !shown.contains("sentinel-debug-value"));
        let encoded = STANDARD.encode("sentinel-debug-value");
        assert!(!shown.contains(&encoded), "{shown}");
    }

    #[test]
    fn the_patch_is_guarded_by_the_version_it_was_made_from() {
        let s = sealed(json!({}));
        let v = values(&[("k", "v")]);
        let desired = Desired::new(&s, &v).expect("stored");
        let patch = serde_json::to_value(desired.patch_from(&created(&desired))).expect("json");
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
        assert!(
            serde_json::to_value(desired.create_body()).expect("json")["metadata"]
                .get("resourceVersion")
                .is_none()
        );
    }

    #[test]
    fn type_and_immutable_data_cannot_change_in_place() {
        let v = values(&[("k", "v")]);
        let opaque = sealed(json!({}));
        let desired = Desired::new(&opaque, &v).expect("stored");
        let mut typed = created(&desired);
        typed.type_ = Some("kubernetes.io/tls".into());
        assert_eq!(desired.change_from(&typed), Change::Replace);

        let frozen = sealed(json!({"immutable": true}));
        let desired = Desired::new(&frozen, &v).expect("stored");
        let mut secret = created(&desired);
        assert_eq!(desired.change_from(&secret), Change::None);
        secret
            .metadata
            .labels
            .get_or_insert_default()
            .insert("x".into(), "y".into());
        assert_eq!(
            desired.change_from(&secret),
            Change::Patch,
            "metadata may change"
        );
        secret
            .data
            .get_or_insert_default()
            .insert("k".into(), ByteString(b"old".to_vec()));
        assert_eq!(desired.change_from(&secret), Change::Replace);
        // No longer immutable in the template: only a new Secret can drop the flag.
        let thawed = sealed(json!({}));
        let desired = Desired::new(&thawed, &v).expect("stored");
        let mut secret = created(&desired);
        secret.immutable = Some(true);
        assert_eq!(desired.change_from(&secret), Change::Replace);
    }

    /// RFC 7386, as the API server applies a merge patch.
    fn merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
        match patch {
            serde_json::Value::Object(fields) => {
                if !target.is_object() {
                    *target = json!({});
                }
                let object = target.as_object_mut().expect("an object");
                for (key, value) in fields {
                    if value.is_null() {
                        object.remove(key);
                    } else {
                        merge(object.entry(key.clone()).or_insert(json!(null)), value);
                    }
                }
            }
            other => *target = other.clone(),
        }
    }
}
