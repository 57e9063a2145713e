//! Where a SealedSecret becomes a Secret: the effects of a pass. `decision.rs` decides
//! (open the items, plan the Secret, what to report); this module reads what the decisions
//! need, writes the Secret, and reports in one place: status, Events, the audit line,
//! metrics and the ledger.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, GetParams, Patch, PatchParams, PostParams, Preconditions};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use seal_shared::sealed_secret::SealedSecret;

use crate::audit::AuditRecord;
use crate::context::{CachedSealedSecret, Context};
use crate::decision::{self, Ended, Opened, Plan, Refusal, Write};
use crate::keys::KeySet;
use crate::labels::FIELD_MANAGER;
use crate::metrics::OutcomeLabels;
use crate::secret::Desired;
use crate::status;
use crate::{Error, Result};

#[cfg(test)]
mod vectors;

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
    let ended = match pass(&sealed, &keys, &ctx).await {
        Ok(ended) => ended,
        Err(Failed::NotLeading) => return Ok(Action::await_change()),
        Err(Failed::Refused(refusal)) => Ended::Refused(refusal),
        // Counted by error_policy, like every error a reconcile returns.
        Err(Failed::Api(error)) => {
            record_error(&ctx, &sealed, &error);
            return Err(error);
        }
    };
    let report = decision::report(&sealed, &ended);
    for note in &report.events {
        ctx.audit
            .event(
                &sealed,
                note.warning,
                note.reason,
                note.action,
                note.text.clone(),
            )
            .await;
    }
    if !ctx.is_leading() {
        return Ok(Action::await_change());
    }
    let status = status::next_status(&sealed, &report.outcome, Timestamp::now());
    if let Err(error) = status::write(&sealed_api, &sealed, status).await {
        let error = Error::from(error);
        record_error(&ctx, &sealed, &error);
        return Err(error);
    }
    // The seal_sealed_secrets gauges follow the Ready condition just written.
    ctx.metrics.sealed_secrets.record(
        &namespace,
        &name,
        report.outcome.ready,
        &report.outcome.reason,
    );
    let key_ids = match &ended {
        Ended::Unsealed {
            key_ids,
            secret_version,
            ..
        } => {
            ctx.note_key_use(&keys, &namespace, &name, key_ids);
            ctx.ledger
                .record(&sealed.metadata, secret_version.as_deref(), key_ids);
            key_ids.iter().map(ToString::to_string).collect()
        }
        Ended::Refused(_) => Vec::new(),
    };
    ctx.metrics
        .unseals
        .get_or_create(&OutcomeLabels {
            outcome: report.audit_outcome.into(),
            reason: report.outcome.reason.clone(),
        })
        .inc();
    ctx.metrics
        .unseal_duration
        .observe(started.elapsed().as_secs_f64());
    ctx.audit.log(&audit_line(
        &sealed,
        key_ids,
        report.audit_outcome,
        &report.outcome.reason,
        &report.outcome.message,
        report.adopted_from.as_deref(),
    ));
    ctx.ledger.succeeded(&namespace, &name);
    ctx.publish_key_uses(&keys);
    Ok(report
        .requeue
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}

/// An attempt that ended in an API error has its audit line too (`error_policy` counts it);
/// it is retried with back-off.
fn record_error(ctx: &Context, sealed: &SealedSecret, error: &Error) {
    let message = error.to_string();
    let line = audit_line(
        sealed,
        Vec::new(),
        "error",
        error.metric_label(),
        &message,
        None,
    );
    ctx.audit.log(&line);
}

/// The audit line of one attempt on `sealed` (its Secret has the same namespace and name).
fn audit_line<'a>(
    sealed: &'a SealedSecret,
    key_ids: Vec<String>,
    outcome: &'static str,
    reason: &'a str,
    message: &'a str,
    adopted_from: Option<&'a str>,
) -> AuditRecord<'a> {
    let place = format!(
        "{}/{}",
        sealed.namespace().unwrap_or_default(),
        sealed.name_any()
    );
    AuditRecord {
        time: Timestamp::now(),
        event: "unseal",
        sealed_secret: place.clone(),
        uid: sealed.metadata.uid.as_deref().unwrap_or_default(),
        generation: sealed.metadata.generation,
        secret: place,
        items: sealed
            .spec
            .encrypted_data
            .keys()
            .map(String::as_str)
            .collect(),
        key_ids,
        outcome,
        reason,
        message,
        adopted_from,
    }
}

enum Failed {
    /// The items did not open (only from `open_off_runtime`); reported like any refusal.
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

/// Opens the items, reads the Secret, and makes it what the plan says.
async fn pass(sealed: &SealedSecret, keys: &Arc<KeySet>, ctx: &Context) -> Result<Ended, Failed> {
    // A refusal to open goes up as `Failed::Refused`; `reconcile` reports it like any other.
    let opened = open_off_runtime(sealed, keys).await?;
    let name = sealed.name_any();
    let namespace = sealed.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let existing = secrets.get_opt(&name).await?.map(WipedSecret);
    let plan = decision::plan(
        sealed,
        &opened,
        existing.as_ref().map(|e| &e.0),
        &ctx.key_namespace,
    );
    let (desired, how, adopted) = match plan {
        Plan::Refuse(refusal) => return Ok(Ended::Refused(refusal)),
        Plan::Keep => {
            return Ok(Ended::Unsealed {
                wrote: false,
                key_ids: opened.key_ids.clone(),
                secret_version: existing.and_then(|e| e.0.metadata.resource_version.clone()),
                adopted: None,
            });
        }
        Plan::Write {
            desired,
            how,
            adopted,
        } => (desired, how, adopted),
    };
    if !ctx.is_leading() {
        return Err(Failed::NotLeading);
    }
    let written = write(
        ctx,
        &secrets,
        &desired,
        how,
        existing.as_ref().map(|e| &e.0),
    )
    .await;
    drop(desired);
    drop(existing);
    match written {
        Ok(written) => Ok(Ended::Unsealed {
            wrote: true,
            key_ids: opened.key_ids.clone(),
            secret_version: written.metadata.resource_version,
            adopted,
        }),
        // The server's validation (for example a typed Secret missing a required key)
        // will refuse the same content again: wait for the SealedSecret to change.
        Err(kube::Error::Api(status)) if status.code == 422 => Ok(Ended::Refused(Refusal {
            reason: "InvalidSpec",
            message: format!("the API server refused the Secret: {}", status.message),
            retry: None,
        })),
        Err(error) => Err(error.into()),
    }
}

/// Writes the Secret as planned; the server answers with its metadata only.
async fn write(
    ctx: &Context,
    secrets: &Api<Secret>,
    desired: &Desired<'_>,
    how: Write,
    existing: Option<&Secret>,
) -> Result<PartialObjectMeta<Secret>, kube::Error> {
    match (how, existing) {
        (Write::Patch, Some(existing)) => {
            let metadata_only: Api<PartialObjectMeta<Secret>> =
                Api::namespaced(ctx.client.clone(), &desired.namespace);
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PatchParams::default()
            };
            let patch = Patch::Merge(desired.patch_from(existing));
            metadata_only.patch(&desired.name, &params, &patch).await
        }
        (Write::Replace, Some(existing)) => {
            // Only the very Secret this pass looked at: a newer one gets a pass of its own.
            let unchanged = Preconditions {
                uid: existing.metadata.uid.clone(),
                resource_version: existing.metadata.resource_version.clone(),
            };
            let params = DeleteParams {
                preconditions: Some(unchanged),
                ..DeleteParams::default()
            };
            secrets.delete(&desired.name, &params).await?;
            create(&ctx.client, desired).await
        }
        _ => create(&ctx.client, desired).await,
    }
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

/// Opens the items on the shared opening pool (see `opening`).
async fn open_off_runtime(sealed: &SealedSecret, keys: &Arc<KeySet>) -> Result<Opened, Failed> {
    // Only what unsealing reads moves to the blocking thread.
    let mut copy = SealedSecret::new(&sealed.name_any(), sealed.spec.clone());
    copy.metadata.namespace = sealed.metadata.namespace.clone();
    let keys = keys.clone();
    crate::opening::off_runtime(move || decision::open(&copy, &keys))
        .await
        .map_err(|reason| Failed::Api(Error::Unseal(reason)))?
        .map_err(Failed::Refused)
}

/// A Secret read back from the API server; its values are wiped when it is dropped.
struct WipedSecret(Secret);

impl Drop for WipedSecret {
    fn drop(&mut self) {
        seal_shared::key_secrets::wipe(&mut self.0);
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
    tracing::warn!(sealed_secret = %sealed.name_any(), namespace = %sealed.namespace().unwrap_or_default(), %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}
