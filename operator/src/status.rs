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
    let mut conditions: Vec<Condition> = previous
        .conditions
        .iter()
        .filter(|c| c.type_ != "Ready")
        .cloned()
        .collect();
    conditions.push(ready);
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
