//! Where a SealedSecret becomes a Secret: unseal every item with the key that sealed it,
//! check each binding against the object's own namespace, name and item key, then write the
//! Secret with server-side apply, owned by the SealedSecret.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, GetParams, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use seal_shared::KeyRing;
use seal_shared::sealed_secret::{SealedSecret, unseal_entry};
use tokio::sync::Semaphore;
use zeroize::{Zeroize, Zeroizing};

use crate::audit::AuditRecord;
use crate::controller::{CachedSealedSecret, Context};
use crate::keys::KeySet;
use crate::labels::{ADOPT, FIELD_MANAGER, MANAGED_BY, MANAGED_BY_VALUE};
use crate::metrics::OutcomeLabels;
use crate::status::{self, Outcome};
use crate::{Error, Result};

#[cfg(test)]
mod vectors;

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
    let (outcome, key_ids, secret_version, action) = match result {
        Ok(Applied {
            wrote,
            key_ids,
            secret_version,
        }) => {
            ctx.note_key_use(&keys, &namespace, &name, &key_ids);
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
            ctx.audit
                .event(
                    &sealed,
                    true,
                    refusal.reason,
                    "Unseal",
                    refusal.message.clone(),
                )
                .await;
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
        Err(Failed::Api(error)) => {
            ctx.metrics
                .unseals
                .get_or_create(&OutcomeLabels {
                    outcome: "error".into(),
                    reason: error.metric_label().into(),
                })
                .inc();
            return Err(error);
        }
    };
    let status = status::next_status(&sealed, &outcome, Timestamp::now());
    status::write(&sealed_api, &sealed, status).await?;
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
}

async fn unseal_and_apply(
    sealed: &SealedSecret,
    keys: &Arc<KeySet>,
    ctx: &Context,
    secrets: &Api<Secret>,
) -> Result<Applied, Failed> {
    let name = sealed.name_any();
    let Opened { values, key_ids } = open_off_runtime(sealed, keys).await?;

    let existing = secrets.get_opt(&name).await?.map(WipedSecret);
    let uid = sealed.metadata.uid.clone().unwrap_or_default();
    if let Some(existing) = &existing {
        let owned = existing
            .0
            .owner_references()
            .iter()
            .any(|o| o.controller == Some(true) && o.uid == uid);
        let adopt = sealed.annotations().get(ADOPT).is_some_and(|v| v == "true");
        if !owned && !adopt {
            return Err(Failed::Refused(Refusal {
                reason: "SecretConflict",
                message: format!(
                    "Secret {name} already exists and is not managed by this SealedSecret; delete it, or set the annotation {ADOPT}: \"true\" on the SealedSecret to take it over"
                ),
                retry: Some(Duration::from_secs(60)),
            }));
        }
        // Applying an unchanged Secret is not free everywhere: some API server versions
        // record a new managedFields time on every apply, which would wake our own watch.
        if owned && up_to_date(&existing.0, sealed, &values) {
            return Ok(Applied {
                wrote: false,
                key_ids,
                secret_version: existing.0.metadata.resource_version.clone(),
            });
        }
    }
    drop(existing);

    let data: BTreeMap<String, Zeroizing<String>> = values
        .iter()
        .map(|(k, v)| (k.clone(), Zeroizing::new(STANDARD.encode(v.as_slice()))))
        .collect();
    drop(values);
    let body = secret_body(sealed, &data)?;
    drop(data);
    // Borrowed, not copied: the only copies of the values left are this zeroizing buffer and
    // the HTTP client's request body.
    let raw: &serde_json::value::RawValue = std::str::from_utf8(&body)
        .ok()
        .and_then(|text| serde_json::from_str(text).ok())
        .ok_or(Failed::Api(Error::MissingField(
            "a serializable Secret body",
        )))?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    // The server answers with metadata only: the values are not sent back.
    let written: Api<PartialObjectMeta<Secret>> =
        Api::namespaced(ctx.client.clone(), &sealed.namespace().unwrap_or_default());
    let applied = match written.patch(&name, &params, &Patch::Apply(raw)).await {
        Ok(applied) => applied,
        Err(kube::Error::Api(status))
            if status.code == 422 && status.message.contains("immutable") =>
        {
            // An immutable Secret cannot change in place; it is replaced as a whole.
            secrets.delete(&name, &DeleteParams::default()).await?;
            written.patch(&name, &params, &Patch::Apply(raw)).await?
        }
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
        secret_version: applied.metadata.resource_version,
    })
}

/// A SealedSecret's values, with the ids of the keys that opened them (sorted).
struct Opened {
    values: BTreeMap<String, Zeroizing<Vec<u8>>>,
    key_ids: Vec<String>,
}

/// Opening items is CPU work (X25519 per recipient stanza, ChaCha20-Poly1305 per byte): it
/// runs on tokio's blocking threads, at most one SealedSecret per core at a time, so that a
/// burst of expensive items never delays the Lease renewal, the probes or the watches on the
/// runtime's own threads, and other SealedSecrets wait at most for a core to come free.
static OPENING: LazyLock<Semaphore> = LazyLock::new(|| {
    Semaphore::new(std::thread::available_parallelism().map_or(1, |cores| cores.get()))
});

async fn open_off_runtime(sealed: &SealedSecret, keys: &Arc<KeySet>) -> Result<Opened, Failed> {
    let permit = OPENING
        .acquire()
        .await
        .map_err(|_| Failed::Api(Error::Unseal("the pool is closed")))?;
    // Only what unsealing reads moves to the blocking thread.
    let mut copy = SealedSecret::new(&sealed.name_any(), sealed.spec.clone());
    copy.metadata.namespace = sealed.metadata.namespace.clone();
    let keys = keys.clone();
    // The permit goes with the work: a reconcile cancelled meanwhile frees its core only
    // once the work is done.
    tokio::task::spawn_blocking(move || {
        let opened = open_items(&copy, &keys.ring);
        drop(permit);
        opened
    })
    .await
    .map_err(|_| Failed::Api(Error::Unseal("the unsealing task failed")))?
    .map_err(Failed::Refused)
}

/// Opens every item of `sealed`, each checked against its binding; the first item that does
/// not open refuses the whole SealedSecret.
fn open_items(sealed: &SealedSecret, ring: &KeyRing) -> Result<Opened, Refusal> {
    let mut values = BTreeMap::new();
    let mut key_ids: Vec<String> = Vec::new();
    for (key, encoded) in &sealed.spec.encrypted_data {
        let unsealed = unseal_entry(sealed, key, encoded, ring).map_err(refusal)?;
        let id = unsealed.key_id.to_string();
        if !key_ids.contains(&id) {
            key_ids.push(id);
        }
        values.insert(key.clone(), unsealed.value);
    }
    key_ids.sort();
    Ok(Opened { values, key_ids })
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

/// Whether the Secret already holds exactly what the SealedSecret says.
fn up_to_date(
    existing: &Secret,
    sealed: &SealedSecret,
    values: &BTreeMap<String, Zeroizing<Vec<u8>>>,
) -> bool {
    let template = &sealed.spec.template;
    let data = existing.data.as_ref();
    let same_data = data.map_or(values.is_empty(), |d| {
        d.len() == values.len()
            && values
                .iter()
                .all(|(k, v)| d.get(k).is_some_and(|have| have.0 == v.as_slice()))
    });
    // Exact equality: a label or annotation dropped from the template must go from the
    // Secret too, which only an apply does.
    let mut labels = template.metadata.labels.clone();
    labels.insert(MANAGED_BY.into(), MANAGED_BY_VALUE.into());
    same_data
        && existing.type_.as_deref() == Some(template.type_.as_deref().unwrap_or("Opaque"))
        && template
            .immutable
            .is_none_or(|i| existing.immutable == Some(i))
        && existing.metadata.labels.clone().unwrap_or_default() == labels
        && existing.metadata.annotations.clone().unwrap_or_default()
            == template.metadata.annotations
}

/// The Secret as applied. The JSON is wiped after use: it carries the values.
fn secret_body(
    sealed: &SealedSecret,
    data: &BTreeMap<String, Zeroizing<String>>,
) -> Result<Zeroizing<Vec<u8>>, Failed> {
    let template = &sealed.spec.template;
    let mut labels = template.metadata.labels.clone();
    labels.insert(MANAGED_BY.into(), MANAGED_BY_VALUE.into());
    let owner = sealed
        .controller_owner_ref(&())
        .ok_or(Failed::Api(Error::MissingField("metadata.uid")))?;
    let mut body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": sealed.name_any(),
            "labels": labels,
            "annotations": template.metadata.annotations,
            "ownerReferences": [owner],
        },
        "type": template.type_.as_deref().unwrap_or("Opaque"),
        "data": {},
    });
    if let Some(immutable) = template.immutable {
        body["immutable"] = immutable.into();
    }
    let mut json = Zeroizing::new(serde_json::to_vec(&body).map_err(|e| Failed::Api(e.into()))?);
    // Splice the values in last so that no serde_json::Value ever holds them. Top-level keys
    // are sorted and only "apiVersion": "v1" precedes "data", so the first match is it.
    let values = serde_json::to_vec(data).map_err(|e| Failed::Api(e.into()))?;
    let values = Zeroizing::new(values);
    let marker = br#""data":{}"#;
    if let Some(at) = json.windows(marker.len()).position(|w| w == marker) {
        let mut spliced = Zeroizing::new(Vec::with_capacity(json.len() + values.len()));
        spliced.extend_from_slice(&json[..at + 7]);
        spliced.extend_from_slice(&values);
        spliced.extend_from_slice(&json[at + marker.len()..]);
        json = spliced;
    }
    Ok(json)
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
    let attempt = ctx
        .ledger
        .failed(&sealed.namespace().unwrap_or_default(), &sealed.name_any());
    let delay = Duration::from_millis(500)
        .saturating_mul(1 << attempt.min(10))
        .min(Duration::from_secs(300));
    tracing::warn!(sealed_secret = %sealed.name_any(), namespace = ?sealed.namespace(), %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}
