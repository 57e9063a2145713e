//! The SealedSecret's status: observedGeneration, a Ready condition in the usual shape, the
//! key ids used and when the Secret was last written. Written only when it changes.

use jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use seal_shared::sealed_secret::{Condition, SealedSecret, SealedSecretStatus};

/// What a reconcile found, to be shown in status.
pub struct Outcome {
    pub ready: bool,
    pub reason: String,
    pub message: String,
    pub key_ids: Option<Vec<String>>,
    pub wrote_secret: bool,
    /// The failure lasts until the SealedSecret itself changes (kstatus `Stalled`).
    pub stalled: bool,
}

/// Whether the SealedSecret's Ready condition already reports this failure, so that a retry
/// that fails the same way adds no Event.
pub fn already_reported(sealed: &SealedSecret, reason: &str, message: &str) -> bool {
    sealed.status.as_ref().is_some_and(|status| {
        status.conditions.iter().any(|c| {
            c.type_ == "Ready"
                && c.status == "False"
                && c.reason == reason
                && c.message == message
                && c.observed_generation == sealed.metadata.generation
        })
    })
}

/// Whether the SealedSecret is already shown Ready, unsealed, for its current generation.
pub fn already_ready(sealed: &SealedSecret) -> bool {
    sealed.status.as_ref().is_some_and(|status| {
        status.conditions.iter().any(|c| {
            c.type_ == "Ready"
                && c.status == "True"
                && c.reason == "Unsealed"
                && c.observed_generation == sealed.metadata.generation
        })
    })
}

/// The status that `outcome` leads to, keeping times that did not change.
pub fn next_status(sealed: &SealedSecret, outcome: &Outcome, now: Timestamp) -> SealedSecretStatus {
    let previous = sealed.status.clone().unwrap_or_default();
    let generation = sealed.metadata.generation;
    let status = if outcome.ready { "True" } else { "False" };
    let old_ready = previous.conditions.iter().find(|c| c.type_ == "Ready");
    let last_transition_time = match old_ready {
        Some(old) if old.status == status => old.last_transition_time.clone(),
        _ => now.to_string(),
    };
    let ready = Condition {
        type_: "Ready".into(),
        status: status.into(),
        reason: outcome.reason.clone(),
        message: outcome.message.clone(),
        last_transition_time,
        observed_generation: generation,
    };
    let old_stalled = previous
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled" && c.status == "True");
    let mut conditions: Vec<Condition> = previous
        .conditions
        .iter()
        .filter(|c| c.type_ != "Ready" && c.type_ != "Stalled")
        .cloned()
        .collect();
    conditions.push(ready);
    // kstatus: Stalled=True tells Flux and other kstatus readers that waiting will not help;
    // it goes once the failure is cured.
    if outcome.stalled {
        conditions.push(Condition {
            type_: "Stalled".into(),
            status: "True".into(),
            reason: outcome.reason.clone(),
            message: outcome.message.clone(),
            last_transition_time: old_stalled
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.to_string()),
            observed_generation: generation,
        });
    }
    SealedSecretStatus {
        observed_generation: generation,
        conditions,
        key_ids: outcome.key_ids.clone().unwrap_or(previous.key_ids),
        last_unsealed: if outcome.wrote_secret {
            Some(now.to_string())
        } else {
            previous.last_unsealed
        },
    }
}

/// Patches status when it differs from what the object already shows.
pub async fn write(
    api: &Api<SealedSecret>,
    sealed: &SealedSecret,
    status: SealedSecretStatus,
) -> kube::Result<bool> {
    if sealed.status.as_ref() == Some(&status) {
        return Ok(false);
    }
    let patch = serde_json::json!({"status": status});
    api.patch_status(
        &sealed.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(reason: &str, message: &str, generation: i64) -> SealedSecret {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "seal.dev/v1",
            "kind": "SealedSecret",
            "metadata": {"name": "db", "namespace": "app", "generation": generation},
            "spec": {"encryptedData": {}},
            "status": {"conditions": [{
                "type": "Ready", "status": "False", "reason": reason, "message": message,
                "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1,
            }]},
        }))
        .expect("a valid SealedSecret")
    }

    #[test]
    fn only_a_failure_a_new_spec_must_cure_is_stalled_and_a_cure_clears_it() {
        let now: Timestamp = "2026-02-01T00:00:00Z".parse().expect("a time");
        let sealed = failed("SecretConflict", "m", 1);
        let outcome = |reason: &str, ready: bool, stalled: bool| Outcome {
            ready,
            reason: reason.into(),
            message: "m".into(),
            key_ids: None,
            wrote_secret: false,
            stalled,
        };
        let stalled_of = |status: &SealedSecretStatus| {
            status
                .conditions
                .iter()
                .find(|c| c.type_ == "Stalled")
                .map(|c| (c.status.clone(), c.reason.clone()))
        };
        let mismatch = next_status(&sealed, &outcome("BindingMismatch", false, true), now);
        assert_eq!(
            stalled_of(&mismatch),
            Some(("True".into(), "BindingMismatch".into()))
        );
        let mut again = sealed.clone();
        again.status = Some(mismatch);
        let cured = next_status(&again, &outcome("Unsealed", true, false), now);
        assert_eq!(stalled_of(&cured), None);
        assert_eq!(cured.conditions.len(), 1);
    }

    #[test]
    fn a_failure_is_reported_once_per_reason_message_and_generation() {
        let sealed = failed("SecretConflict", "Secret app/db already exists", 1);
        assert!(already_reported(
            &sealed,
            "SecretConflict",
            "Secret app/db already exists"
        ));
        assert!(!already_reported(
            &sealed,
            "NoMatchingKey",
            "Secret app/db already exists"
        ));
        assert!(!already_reported(
            &sealed,
            "SecretConflict",
            "another message"
        ));
        let edited = failed("SecretConflict", "Secret app/db already exists", 2);
        assert!(!already_reported(
            &edited,
            "SecretConflict",
            "Secret app/db already exists"
        ));
    }
}
