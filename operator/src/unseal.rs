//! Where a SealedSecret becomes a Secret: unseal every item with the key that sealed it,
//! check each binding against the object's own namespace, name and item key, decide whether
//! an existing Secret may be written (`adoption.rs`), then make the Secret exactly the one
//! the SealedSecret describes (`secret.rs`), owned by the SealedSecret.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, GetParams, Patch, PatchParams, PostParams, Preconditions};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use seal_shared::sealed_secret::{SealedSecret, unseal_entry};
use zeroize::{Zeroize, Zeroizing};

use crate::adoption::{self, Claimant, Ownership, Previous};
use crate::audit::AuditRecord;
use crate::controller::{CachedSealedSecret, Context};
use crate::keys::KeySet;
use crate::labels::{ADOPT, FIELD_MANAGER};
use crate::metrics::OutcomeLabels;
use crate::secret::{Change, Desired};
use crate::status::{self, Outcome};
use crate::{Error, Result};

/// A failure that the SealedSecret's author (or an operator of the cluster) must fix.
struct Refusal {
    reason: &'static str,
    message: String,
    /// When to look again without a change to the object (for example when keys may arrive).
    retry: Option<Duration>,
}

pub async fn reconcile(cached: Arc<CachedSealedSecret>, ctx: Arc<Context>) -> Result<Action> {
    if !ctx.is_leading() {
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let namespace = cached
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let name = cached.name_any();
    // One view of the keys for the whole pass, even if they change meanwhile.
    let keys = ctx.keys.snapshot();
    if let Some(key_ids) = ctx.ledger.unchanged(&cached.metadata, |id| keys.holds(id)) {
        ctx.note_key_use(&keys, &namespace, &name, &key_ids);
        return Ok(Action::await_change());
    }
    ctx.ledger.unsettle(&cached.metadata);
    let sealed_api: Api<SealedSecret> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(sealed) = read_whole(&sealed_api, &cached).await? else {
        // Deleted since the event: its Secret goes with it through the owner reference.
        return Ok(Action::await_change());
    };
    let items: Vec<&str> = sealed
        .spec
        .encrypted_data
        .keys()
        .map(String::as_str)
        .collect();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);

    let result = unseal_and_apply(&sealed, &keys, &ctx, &secrets).await;
    let mut adopted_from = None;
    let (outcome, key_ids, secret_version, action) = match result {
        Ok(Applied {
            wrote,
            key_ids,
            secret_version,
            adopted,
        }) => {
            ctx.note_key_use(&keys, &namespace, &name, &key_ids);
            if let Some(previous) = adopted {
                ctx.audit
                    .event(
                        &sealed,
                        false,
                        "Adopted",
                        "Adopt",
                        format!("took over Secret {name} from {}", previous.describe()),
                    )
                    .await;
                adopted_from = Some(previous.audit_label());
            }
            let message = format!(
                "Secret {name} holds {} item(s) unsealed with key(s) {}",
                items.len(),
                key_ids.join(", ")
            );
            if wrote {
                ctx.audit
                    .event(
                        &sealed,
                        false,
                        "Unsealed",
                        "Unseal",
                        format!(
                            "unsealed items [{}] with key(s) {}",
                            items.join(", "),
                            key_ids.join(", ")
                        ),
                    )
                    .await;
            }
            (
                Outcome {
                    ready: true,
                    reason: "Unsealed".into(),
                    message,
                    key_ids: Some(key_ids.clone()),
                    wrote_secret: wrote,
                },
                key_ids,
                secret_version,
                Action::await_change(),
            )
        }
        Err(Failed::Refused(refusal)) => {
            // One Warning per distinct failure, not one per retry: the status keeps saying it.
            if !status::already_reported(&sealed, refusal.reason, &refusal.message) {
                ctx.audit
                    .event(
                        &sealed,
                        true,
                        refusal.reason,
                        "Unseal",
                        refusal.message.clone(),
                    )
                    .await;
            }
            let action = refusal
                .retry
                .map(Action::requeue)
                .unwrap_or_else(Action::await_change);
            (
                Outcome {
                    ready: false,
                    reason: refusal.reason.into(),
                    message: refusal.message,
                    key_ids: None,
                    wrote_secret: false,
                },
                Vec::new(),
                None,
                action,
            )
        }
        Err(Failed::NotLeading) => return Ok(Action::await_change()),
        // Counted by error_policy, like every error a reconcile returns.
        Err(Failed::Api(error)) => return Err(error),
    };
    if !ctx.is_leading() {
        return Ok(Action::await_change());
    }
    let status = status::next_status(&sealed, &outcome, Timestamp::now());
    status::write(&sealed_api, &sealed, status).await?;
    // metrics hook: the seal_sealed_secrets gauges follow the Ready condition just written.
    ctx.metrics
        .sealed_secrets
        .record(&namespace, &name, outcome.ready, &outcome.reason);
    if outcome.ready {
        ctx.ledger
            .record(&sealed.metadata, secret_version.as_deref(), &key_ids);
    }

    let outcome_label = match (outcome.ready, outcome.wrote_secret) {
        (true, true) => "unsealed",
        (true, false) => "unchanged",
        (false, _) => "failed",
    };
    ctx.metrics
        .unseals
        .get_or_create(&OutcomeLabels {
            outcome: outcome_label.into(),
            reason: outcome.reason.clone(),
        })
        .inc();
    ctx.metrics
        .unseal_duration
        .observe(started.elapsed().as_secs_f64());
    ctx.audit.log(&AuditRecord {
        time: Timestamp::now(),
        event: "unseal",
        sealed_secret: format!("{namespace}/{name}"),
        uid: sealed.metadata.uid.as_deref().unwrap_or_default(),
        generation: sealed.metadata.generation,
        secret: format!("{namespace}/{name}"),
        items,
        key_ids,
        outcome: outcome_label,
        reason: &outcome.reason,
        message: &outcome.message,
        adopted_from: adopted_from.as_deref(),
    });
    ctx.ledger.succeeded(&namespace, &name);
    Ok(action)
}

/// The whole SealedSecret, at least as new as the cached metadata. The API server's watch
/// cache answers first (cheap, and it already saw the event that woke us); a quorum read
/// follows only when that copy is older than what our cache holds.
async fn read_whole(
    api: &Api<SealedSecret>,
    cached: &CachedSealedSecret,
) -> Result<Option<SealedSecret>> {
    let name = cached.name_any();
    // The same object (a SealedSecret deleted and created again keeps its name, not its
    // uid) at the same or a later generation.
    let fresh_enough = |object: &SealedSecret| {
        object.metadata.uid == cached.metadata.uid
            && object.metadata.generation >= cached.metadata.generation
    };
    match api.get_with(&name, &GetParams::any()).await {
        Ok(object) if fresh_enough(&object) => return Ok(Some(object)),
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(error) => return Err(error.into()),
    }
    match api.get(&name).await {
        Ok(object) => Ok(Some(object)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(error) => Err(error.into()),
    }
}

enum Failed {
    Refused(Refusal),
    Api(Error),
    /// This replica's claim lapsed before it could write: the next leader makes a full pass.
    NotLeading,
}

impl From<kube::Error> for Failed {
    fn from(error: kube::Error) -> Self {
        Failed::Api(Error::Kube(error))
    }
}

/// A SealedSecret whose Secret now holds what it says.
struct Applied {
    /// Whether the Secret had to be written.
    wrote: bool,
    /// The keys that opened the items.
    key_ids: Vec<String>,
    /// The Secret's version as written or found.
    secret_version: Option<String>,
    /// Who had the Secret before this pass took it over.
    adopted: Option<Previous>,
}

async fn unseal_and_apply(
    sealed: &SealedSecret,
    keys: &KeySet,
    ctx: &Context,
    secrets: &Api<Secret>,
) -> Result<Applied, Failed> {
    let name = sealed.name_any();
    let mut values: BTreeMap<String, Zeroizing<Vec<u8>>> = BTreeMap::new();
    let mut key_ids: Vec<String> = Vec::new();
    for (key, encoded) in &sealed.spec.encrypted_data {
        let unsealed = unseal_entry(sealed, key, encoded, &keys.ring)
            .map_err(|e| Failed::Refused(refusal(e)))?;
        let id = unsealed.key_id.to_string();
        if !key_ids.contains(&id) {
            key_ids.push(id);
        }
        values.insert(key.clone(), unsealed.value);
    }
    key_ids.sort();

    let desired =
        Desired::new(sealed, &values).ok_or(Failed::Api(Error::MissingField("metadata.uid")))?;
    let existing = secrets.get_opt(&name).await?.map(WipedSecret);
    let mut adopted = None;
    let change = match &existing {
        // Nothing to replace: the Secret is created.
        None => Change::Replace,
        Some(existing) => {
            let claimant = Claimant {
                namespace: &desired.namespace,
                name: &name,
                uid: sealed.metadata.uid.as_deref().unwrap_or_default(),
                adopt_requested: sealed.annotations().get(ADOPT).is_some_and(|v| v == "true"),
            };
            match adoption::decide(&existing.0.metadata, &claimant) {
                Ownership::Owned => {}
                Ownership::Adopt(previous) => adopted = Some(previous),
                Ownership::Refuse(message) => {
                    // The Secret's owner may consent later, and unmanaged Secrets are not
                    // watched: look again soon.
                    return Err(Failed::Refused(Refusal {
                        reason: "SecretConflict",
                        message,
                        retry: Some(Duration::from_secs(15)),
                    }));
                }
            }
            desired.change_from(&existing.0)
        }
    };
    if !ctx.is_leading() {
        return Err(Failed::NotLeading);
    }
    let written = match (change, &existing) {
        (Change::None, Some(existing)) => {
            return Ok(Applied {
                wrote: false,
                key_ids,
                secret_version: existing.0.metadata.resource_version.clone(),
                adopted: None,
            });
        }
        (Change::Patch, Some(existing)) => {
            let metadata_only: Api<PartialObjectMeta<Secret>> =
                Api::namespaced(ctx.client.clone(), &desired.namespace);
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PatchParams::default()
            };
            let patch = Patch::Merge(desired.patch_from(&existing.0));
            metadata_only.patch(&name, &params, &patch).await
        }
        (_, existing) => {
            if let Some(existing) = existing {
                // Only the very Secret this pass looked at: a newer one gets a pass of its own.
                let unchanged = Preconditions {
                    uid: existing.0.metadata.uid.clone(),
                    resource_version: existing.0.metadata.resource_version.clone(),
                };
                let params = DeleteParams {
                    preconditions: Some(unchanged),
                    ..DeleteParams::default()
                };
                secrets.delete(&name, &params).await?;
            }
            create(&ctx.client, &desired).await
        }
    };
    drop(existing);
    let written = match written {
        Ok(written) => written,
        Err(kube::Error::Api(status)) if status.code == 422 => {
            // The server's validation (for example a typed Secret missing a required key)
            // will refuse the same content again: wait for the SealedSecret to change.
            return Err(Failed::Refused(Refusal {
                reason: "InvalidSpec",
                message: format!("the API server refused the Secret: {}", status.message),
                retry: None,
            }));
        }
        Err(error) => return Err(error.into()),
    };
    Ok(Applied {
        wrote: true,
        key_ids,
        secret_version: written.metadata.resource_version,
        adopted,
    })
}

/// The response carries metadata only, so the values are not sent back to the operator.
const METADATA_ONLY: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";

/// Creates the Secret; fails with a conflict if one appeared since it was found missing, so
/// a Secret made meanwhile by someone else is never overwritten.
async fn create(
    client: &kube::Client,
    desired: &Desired<'_>,
) -> Result<PartialObjectMeta<Secret>, kube::Error> {
    let body = serde_json::to_vec(&desired.create_body()).map_err(kube::Error::SerdeError)?;
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    let mut request = kube::core::Request::new(Secret::url_path(&(), Some(&desired.namespace)))
        .create(&params, body)
        .map_err(kube::Error::BuildRequest)?;
    request.headers_mut().insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static(METADATA_ONLY),
    );
    client.request(request).await
}

/// A Secret read back from the API server; its values are wiped when it is dropped.
struct WipedSecret(Secret);

impl Drop for WipedSecret {
    fn drop(&mut self) {
        if let Some(data) = self.0.data.as_mut() {
            data.values_mut().for_each(|v| v.0.zeroize());
        }
    }
}

fn refusal(error: seal_shared::Error) -> Refusal {
    use seal_shared::Error as E;
    use seal_shared::item::UnsealError;
    let (reason, retry) = match &error {
        E::Unseal { source, .. } => match **source {
            // A key may still arrive (a new replica's watch, a restored backup).
            UnsealError::NoMatchingKey { .. } => ("NoMatchingKey", Some(Duration::from_secs(60))),
            ref other => (other.reason(), None),
        },
        _ => ("InvalidSpec", None),
    };
    Refusal {
        reason,
        message: error.to_string(),
        retry,
    }
}

/// Failed API calls back off exponentially per object: 0.5 s doubling to 5 minutes.
pub fn error_policy(sealed: Arc<CachedSealedSecret>, error: &Error, ctx: Arc<Context>) -> Action {
    // metrics hook: every failed reconcile is an outcome="error" attempt.
    ctx.metrics.count_error(error);
    let attempt = ctx
        .ledger
        .failed(&sealed.namespace().unwrap_or_default(), &sealed.name_any());
    let delay = Duration::from_millis(500)
        .saturating_mul(1 << attempt.min(10))
        .min(Duration::from_secs(300));
    tracing::warn!(sealed_secret = %sealed.name_any(), namespace = ?sealed.namespace(), %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}
