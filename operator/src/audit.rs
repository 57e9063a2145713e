//! The audit trail: a Kubernetes Event (events.k8s.io/v1) for every unseal and failure and
//! every key generated, and one JSON line on stdout per unseal attempt. Both name items and
//! key ids, never values.

use std::io::Write;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use seal_shared::sealed_secret::SealedSecret;
use serde::Serialize;

use crate::keys::KeyInfo;
use crate::rotation::Due;

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
}

pub struct Audit {
    recorder: Recorder,
    namespace: String,
}

impl Audit {
    pub fn new(client: Client, namespace: &str, instance: Option<String>) -> Audit {
        let reporter = Reporter {
            controller: "seal-operator".into(),
            instance,
        };
        Audit {
            recorder: Recorder::new(client, reporter),
            namespace: namespace.to_owned(),
        }
    }

    /// Writes the audit line. stdout is shared with nothing else, so lines never interleave
    /// with logs (those go to stderr).
    pub fn log(&self, record: &AuditRecord<'_>) {
        if let Ok(mut line) = serde_json::to_vec(record) {
            line.push(b'\n');
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&line).and_then(|()| out.flush());
        }
    }

    pub async fn event(
        &self,
        sealed: &SealedSecret,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_owned(),
            note: Some(note),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &sealed.object_ref(&())).await {
            tracing::warn!(%error, sealed_secret = %sealed.name_any(), "could not publish Event");
        }
    }

    pub async fn key_generated(&self, info: &KeyInfo, due: &Due) {
        let (reason, note) = match due {
            Due::FirstKey => (
                "KeyGenerated",
                format!("generated the first sealing key {}", info.id),
            ),
            Due::PeriodElapsed => (
                "KeyRotated",
                format!(
                    "rotation period elapsed: new sealing key {}; older keys stay for decrypting",
                    info.id
                ),
            ),
            Due::Requested => (
                "KeyRotated",
                format!(
                    "rotation requested: new sealing key {}; older keys stay for decrypting",
                    info.id
                ),
            ),
        };
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Secret".into()),
            name: Some(info.secret_name.clone()),
            namespace: Some(self.namespace.clone()),
            ..ObjectReference::default()
        };
        let event = Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some(note),
            action: "GenerateKey".into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &reference).await {
            tracing::warn!(%error, "could not publish key Event");
        }
    }
}
