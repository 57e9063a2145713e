//! The audit trail: a Kubernetes Event (events.k8s.io/v1) for every unseal and failure, every
//! key generated and every step of retiring a key, and one JSON line on stdout per unseal
//! attempt and per key step. Both name items and key ids, never values.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client, Resource};
use seal_shared::sealed_secret::SealedSecret;
use serde::Serialize;

use crate::keys::KeyInfo;

/// One line of the audit log. Field names are documented in docs/operator.md.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord<'a> {
    pub time: Timestamp,
    pub event: &'static str,
    pub sealed_secret: String,
    pub uid: &'a str,
    pub generation: Option<i64>,
    pub secret: String,
    pub items: Vec<&'a str>,
    pub key_ids: Vec<String>,
    /// `unsealed` (Secret written or changed), `unchanged` (already up to date) or `failed`.
    pub outcome: &'static str,
    pub reason: &'a str,
    pub message: &'a str,
    /// Set when this attempt took the Secret over: who had it before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adopted_from: Option<&'a str>,
}

/// One audit line about a key: a retire or unretire request answered, or a retired key
/// deleted. Field names are documented in docs/operator.md.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyAuditRecord<'a> {
    pub time: Timestamp,
    /// Always `key`.
    pub event: &'static str,
    pub key_id: String,
    /// The key Secret, `namespace/name`; none when no such key exists.
    pub secret: Option<String>,
    /// `retire`, `unretire` or `delete`.
    pub action: &'static str,
    /// `retired`, `unretired`, `unchanged`, `refused` or `deleted`.
    pub outcome: &'static str,
    pub reason: &'static str,
    /// The request answered; none for the leader's own steps (a deletion after the grace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<&'a str>,
    pub message: &'a str,
    /// A refusal: the first SealedSecrets that still need the key.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub sealed_secrets: &'a [String],
}

/// Writes one audit line (any record: an unseal attempt, a reseal call). stdout is shared
/// with nothing else, so lines never interleave with logs (those go to stderr).
pub fn line(record: &impl Serialize) {
    if let Ok(mut line) = serde_json::to_vec(record) {
        line.push(b'\n');
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&line).and_then(|()| out.flush());
    }
}

/// Publishes Events directly. kube's `Recorder` keeps every Event for six minutes to merge
/// repeats into series, and scans that cache on each publish; with thousands of
/// SealedSecrets that costs memory and time, and seal emits an Event only when something
/// happened (a Secret written, a failure), so there is little to merge.
pub struct Audit {
    client: Client,
    instance: String,
    namespace: String,
}

pub const REPORTING_CONTROLLER: &str = "seal.dev/seal-operator";

impl Audit {
    pub fn new(client: Client, namespace: &str, instance: String) -> Audit {
        Audit {
            client,
            instance,
            namespace: namespace.to_owned(),
        }
    }

    async fn publish(
        &self,
        regarding: ObjectReference,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        // Unique per Event, as kube's own recorder names them: object name, then a suffix.
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        let mut base = regarding.name.clone().unwrap_or_else(|| "seal".into());
        base.truncate(220);
        let now = Timestamp::now();
        let name = format!(
            "{base}.{:x}{:04x}",
            now.as_nanosecond(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed) & 0xffff
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(if warning { "Warning" } else { "Normal" }.into()),
            reason: Some(reason.into()),
            action: Some(action.into()),
            note: Some(note),
            regarding: Some(regarding),
            reporting_controller: Some(REPORTING_CONTROLLER.into()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Err(error) = api.create(&PostParams::default(), &event).await {
            tracing::warn!(%error, reason, "could not publish Event");
        }
    }

    /// Writes the audit line. stdout is shared with nothing else, so lines never interleave
    /// with logs (those go to stderr).
    pub fn log(&self, record: &impl Serialize) {
        line(record);
    }

    pub async fn event(
        &self,
        sealed: &SealedSecret,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.publish(sealed.object_ref(&()), warning, reason, action, note)
            .await;
    }

    /// An Event on the public-key ConfigMap, about the keys as a whole.
    pub async fn on_public_keys(&self, warning: bool, reason: &str, note: String) {
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("ConfigMap".into()),
            name: Some(seal_shared::public_keys::CONFIGMAP.into()),
            namespace: Some(self.namespace.clone()),
            ..ObjectReference::default()
        };
        self.publish(reference, warning, reason, "BackupKeys", note)
            .await;
    }

    /// An Event on a newly generated key's Secret; `reason` and `note` say why it was made.
    pub async fn key_generated(&self, info: &KeyInfo, reason: &str, note: String) {
        self.on_key(&info.secret_name, false, reason, "GenerateKey", note)
            .await;
    }

    /// An Event on the key Secret `secret_name` in the operator's namespace.
    pub async fn on_key(
        &self,
        secret_name: &str,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Secret".into()),
            name: Some(secret_name.to_owned()),
            namespace: Some(self.namespace.clone()),
            ..ObjectReference::default()
        };
        self.publish(reference, warning, reason, action, note).await;
    }
}
