//! Whether seal-operator may write an existing Secret it did not create.
//!
//! The operator writes with its own cluster-wide rights, so it must not lend them to whoever
//! may create a SealedSecret: taking over a Secret needs the consent of someone who may write
//! that Secret. Such a person shows it on the Secret itself, with the annotation
//! `seal.dev/managed: "true"` (or the operator's own `seal.dev/managed-by` label, which a
//! Secret the operator wrote keeps when someone strips its owner reference). The one
//! exception is the move from Bitnami sealed-secrets: a Secret controlled by a Bitnami
//! SealedSecret of the same namespace and name is taken over when the seal SealedSecret asks
//! for it, since whoever may create that SealedSecret could already change the Bitnami one.
//! A Secret controlled by anything else, or released by Helm, is never taken over.
//!
//! Pure: it looks at metadata and decides; `unseal.rs` carries the decision out.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::labels::{ADOPT, CONSENT, MANAGED_BY, MANAGED_BY_VALUE};

/// What may happen to an existing Secret of the SealedSecret's namespace and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// This SealedSecret already controls it.
    Owned,
    /// It may be taken over; the owner reference of this SealedSecret replaces `from`'s.
    Adopt(Previous),
    /// It must be left alone; the message says why and who can change that.
    Refuse(String),
}

/// Who had the Secret before, for the Event and the audit line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Previous {
    /// No controller; the Secret carries the consent annotation.
    Consented,
    /// No controller, but the operator's own label: the Secret it wrote lost its owner
    /// reference.
    OwnerReferenceRemoved,
    /// An earlier SealedSecret of the same name, since deleted (the Secret waits for garbage
    /// collection).
    EarlierSealedSecret { uid: String },
    /// A Bitnami sealed-secrets SealedSecret of the same name.
    Bitnami { uid: String },
}

impl Previous {
    /// Names the previous owner in an Event or audit line.
    pub fn describe(&self) -> String {
        match self {
            Previous::Consented => {
                format!("no controller (the Secret carries {CONSENT}: \"true\")")
            }
            Previous::OwnerReferenceRemoved => format!(
                "no controller (its owner reference was removed; it carries {MANAGED_BY}: {MANAGED_BY_VALUE})"
            ),
            Previous::EarlierSealedSecret { uid } => {
                format!("an earlier SealedSecret of the same name (uid {uid}), since deleted")
            }
            Previous::Bitnami { uid } => {
                format!("the Bitnami SealedSecret of the same name (bitnami.com, uid {uid})")
            }
        }
    }

    /// The short form kept in the audit log's `adoptedFrom` field.
    pub fn audit_label(&self) -> String {
        match self {
            Previous::Consented => "unowned, with consent".into(),
            Previous::OwnerReferenceRemoved => "unowned, owner reference removed".into(),
            Previous::EarlierSealedSecret { uid } => format!("seal.dev/SealedSecret {uid}"),
            Previous::Bitnami { uid } => format!("bitnami.com/SealedSecret {uid}"),
        }
    }
}

/// The SealedSecret asking to write the Secret.
pub struct Claimant<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    /// It carries `seal.dev/adopt-existing-secret: "true"`.
    pub adopt_requested: bool,
}

fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(group, _)| group)
}

fn is_true(map: &Option<std::collections::BTreeMap<String, String>>, key: &str) -> bool {
    map.as_ref()
        .and_then(|m| m.get(key))
        .is_some_and(|v| v == "true")
}

/// Helm records its release on every object it installs; such a Secret belongs to the release.
fn helm_release(secret: &ObjectMeta) -> Option<String> {
    let annotated = secret
        .annotations
        .as_ref()
        .and_then(|a| a.get("meta.helm.sh/release-name"))
        .cloned();
    let labelled = secret
        .labels
        .as_ref()
        .and_then(|l| l.get("app.kubernetes.io/managed-by"))
        .is_some_and(|v| v == "Helm");
    annotated.or_else(|| labelled.then(|| "(unnamed)".to_owned()))
}

/// Decides what may happen to `secret`, the existing Secret of `claimant`'s namespace and name.
pub fn decide(secret: &ObjectMeta, claimant: &Claimant<'_>) -> Ownership {
    let controller: Option<&OwnerReference> = secret
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    let place = format!("{}/{}", claimant.namespace, claimant.name);
    match controller {
        Some(owner) if owner.uid == claimant.uid => Ownership::Owned,
        Some(owner) if owner.kind == "SealedSecret" && owner.name == claimant.name => {
            match group_of(&owner.api_version) {
                seal_shared::sealed_secret::API_GROUP => {
                    Ownership::Adopt(Previous::EarlierSealedSecret {
                        uid: owner.uid.clone(),
                    })
                }
                "bitnami.com" if claimant.adopt_requested => Ownership::Adopt(Previous::Bitnami {
                    uid: owner.uid.clone(),
                }),
                "bitnami.com" => Ownership::Refuse(format!(
                    "Secret {place} is controlled by the Bitnami SealedSecret of the same name; to move it to seal, set the annotation {ADOPT}: \"true\" on this SealedSecret (its owner reference then replaces Bitnami's, and the Secret is never missing)"
                )),
                _ => refuse_foreign(&place, owner),
            }
        }
        Some(owner) => refuse_foreign(&place, owner),
        None => {
            if let Some(release) = helm_release(secret) {
                return Ownership::Refuse(format!(
                    "Secret {place} belongs to the Helm release {release}; seal-operator never takes over a Secret that Helm manages: remove it from the release first"
                ));
            }
            if is_true(&secret.annotations, CONSENT) {
                return Ownership::Adopt(Previous::Consented);
            }
            if secret
                .labels
                .as_ref()
                .and_then(|l| l.get(MANAGED_BY))
                .is_some_and(|v| v == MANAGED_BY_VALUE)
            {
                return Ownership::Adopt(Previous::OwnerReferenceRemoved);
            }
            let not_enough = if claimant.adopt_requested {
                format!(
                    " (the SealedSecret's own {ADOPT} annotation is not consent: whoever may create SealedSecrets could otherwise overwrite any Secret)"
                )
            } else {
                String::new()
            };
            Ownership::Refuse(format!(
                "Secret {place} already exists and is not managed by this SealedSecret{not_enough}; to hand it over, someone who may write that Secret sets the annotation {CONSENT}: \"true\" on it (kubectl annotate secret -n {} {} {CONSENT}=true), or deletes it",
                claimant.namespace, claimant.name
            ))
        }
    }
}

fn refuse_foreign(place: &str, owner: &OwnerReference) -> Ownership {
    Ownership::Refuse(format!(
        "Secret {place} is controlled by {} {} ({}); seal-operator never takes over a Secret that another controller owns",
        owner.kind, owner.name, owner.api_version
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "11111111-1111-1111-1111-111111111111";
    const OTHER: &str = "22222222-2222-2222-2222-222222222222";

    fn claimant(adopt_requested: bool) -> Claimant<'static> {
        Claimant {
            namespace: "app",
            name: "db",
            uid: OURS,
            adopt_requested,
        }
    }

    fn owner(api_version: &str, kind: &str, name: &str, uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: None,
        }
    }

    fn secret(
        owners: Vec<OwnerReference>,
        labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
    ) -> ObjectMeta {
        let map = |pairs: &[(&str, &str)]| {
            (!pairs.is_empty()).then(|| {
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect()
            })
        };
        ObjectMeta {
            name: Some("db".into()),
            namespace: Some("app".into()),
            owner_references: (!owners.is_empty()).then_some(owners),
            labels: map(labels),
            annotations: map(annotations),
            ..ObjectMeta::default()
        }
    }

    fn refused(decision: Ownership) -> String {
        match decision {
            Ownership::Refuse(message) => message,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_secret_this_sealed_secret_controls_is_owned() {
        let s = secret(
            vec![owner("seal.dev/v1", "SealedSecret", "db", OURS)],
            &[],
            &[],
        );
        assert_eq!(decide(&s, &claimant(false)), Ownership::Owned);
    }

    #[test]
    fn the_sealed_secrets_own_annotation_is_not_consent() {
        let s = secret(vec![], &[], &[]);
        for adopt in [false, true] {
            let message = refused(decide(&s, &claimant(adopt)));
            assert!(message.contains("seal.dev/managed: \"true\""), "{message}");
            assert!(
                message.contains("kubectl annotate secret -n app db"),
                "{message}"
            );
            assert_eq!(message.contains("is not consent"), adopt, "{message}");
        }
    }

    #[test]
    fn consent_on_the_secret_adopts_an_unowned_secret() {
        let s = secret(vec![], &[], &[(CONSENT, "true")]);
        assert_eq!(
            decide(&s, &claimant(false)),
            Ownership::Adopt(Previous::Consented)
        );
        let half = secret(vec![], &[], &[(CONSENT, "yes")]);
        refused(decide(&half, &claimant(true)));
    }

    #[test]
    fn the_operators_label_without_an_owner_is_repaired() {
        let s = secret(vec![], &[(MANAGED_BY, MANAGED_BY_VALUE)], &[]);
        assert_eq!(
            decide(&s, &claimant(false)),
            Ownership::Adopt(Previous::OwnerReferenceRemoved)
        );
    }

    #[test]
    fn a_bitnami_secret_of_the_same_name_moves_only_when_asked() {
        let bitnami = owner("bitnami.com/v1alpha1", "SealedSecret", "db", OTHER);
        let s = secret(vec![bitnami.clone()], &[], &[]);
        assert_eq!(
            decide(&s, &claimant(true)),
            Ownership::Adopt(Previous::Bitnami { uid: OTHER.into() })
        );
        assert!(refused(decide(&s, &claimant(false))).contains(ADOPT));
        // Another name is another object, whatever the annotation says.
        let elsewhere = secret(
            vec![owner(
                "bitnami.com/v1alpha1",
                "SealedSecret",
                "other",
                OTHER,
            )],
            &[],
            &[(CONSENT, "true")],
        );
        refused(decide(&elsewhere, &claimant(true)));
    }

    #[test]
    fn an_earlier_sealed_secret_of_the_same_name_hands_over() {
        let s = secret(
            vec![owner("seal.dev/v1", "SealedSecret", "db", OTHER)],
            &[],
            &[],
        );
        assert_eq!(
            decide(&s, &claimant(false)),
            Ownership::Adopt(Previous::EarlierSealedSecret { uid: OTHER.into() })
        );
    }

    #[test]
    fn another_controller_or_helm_is_never_overridden() {
        let consent = [(CONSENT, "true")];
        let cert = secret(
            vec![owner("cert-manager.io/v1", "Certificate", "db", OTHER)],
            &[(MANAGED_BY, MANAGED_BY_VALUE)],
            &consent,
        );
        let message = refused(decide(&cert, &claimant(true)));
        assert!(
            message.contains("Certificate db (cert-manager.io/v1)"),
            "{message}"
        );
        let helm = secret(
            vec![],
            &[("app.kubernetes.io/managed-by", "Helm")],
            &[(CONSENT, "true"), ("meta.helm.sh/release-name", "shop")],
        );
        assert!(refused(decide(&helm, &claimant(true))).contains("Helm release shop"));
        let labelled_only = secret(
            vec![],
            &[("app.kubernetes.io/managed-by", "Helm")],
            &consent,
        );
        refused(decide(&labelled_only, &claimant(true)));
    }

    #[test]
    fn a_non_controller_reference_does_not_count_as_an_owner() {
        let mut plain = owner("apps/v1", "Deployment", "web", OTHER);
        plain.controller = None;
        let s = secret(vec![plain], &[], &[(CONSENT, "true")]);
        assert_eq!(
            decide(&s, &claimant(false)),
            Ownership::Adopt(Previous::Consented)
        );
    }
}
