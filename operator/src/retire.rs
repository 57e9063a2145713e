//! Retiring keys: a decrypt-only key that no SealedSecret needs any more stops opening
//! anything, and its Secret is deleted once the grace period is over, unless it is unretired
//! first.
//!
//! A request is an identity, as a rotation request is: `seal keys retire ID` writes
//! `key-request.seal.dev/<key id>: retire <request id>` on the public-key ConfigMap; the
//! leader acts on it once and records its answer under `key-answer.seal.dev/<key id>`, naming
//! the request. A request is done once an answer names it, whatever any clock says, so a
//! refusal is never turned into a retirement later behind the user's back: they ask again.
//!
//! The grace period runs on the operator's clock alone: the leader that retires a key stamps
//! when (`seal.dev/retired-at`) and the earliest deletion (`seal.dev/delete-after`) on its
//! Secret. A key is deleted only once both that time and the grace period now in force have
//! passed since it was retired, and only in the very version that was seen retired.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use seal_shared::escape::escape;
use seal_shared::keys::KeyId;
use seal_shared::public_keys::{KeyAction, KeyAnswer};
use seal_shared::sealed_secret::{SealedSecret, inspect_entry};

use crate::audit::KeyAuditRecord;
use crate::backup;
use crate::duties::LeaderDuties;
use crate::keys::{self, KeyInfo, KeySet, KeyState};
use crate::labels::{KEY_ANSWER_PREFIX, KEY_REQUEST_PREFIX, PUBLIC_KEYS_CONFIGMAP};
use crate::lease::Leadership;

/// How many SealedSecrets a refusal names; the rest are counted.
pub const NAMED: usize = 5;

/// The field manager of the answers: the public-key ConfigMap's server-side apply leaves
/// fields of other managers alone, so publishing never drops an answer.
const ANSWER_MANAGER: &str = "seal-operator-requests";

/// One key request on the public-key ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub key: KeyId,
    pub action: KeyAction,
    pub id: String,
}

/// The key requests on the ConfigMap that no answer names yet. Annotations that are not
/// well-formed requests are ignored: the CLI writes only well-formed ones.
pub fn pending(map: &ConfigMap) -> Vec<Request> {
    let annotations = map.annotations();
    annotations
        .iter()
        .filter_map(|(name, value)| {
            let key: KeyId = name.strip_prefix(KEY_REQUEST_PREFIX)?.parse().ok()?;
            let (action, id) = KeyAction::parse_request(value)?;
            let answered = annotations
                .get(&format!("{KEY_ANSWER_PREFIX}{key}"))
                .and_then(|a| serde_json::from_str::<KeyAnswer>(a).ok())
                .is_some_and(|a| a.request == id);
            (!answered).then(|| Request {
                key,
                action,
                id: id.to_owned(),
            })
        })
        .collect()
}

/// What a request comes to, before any SealedSecret is looked at.
#[derive(Debug)]
pub enum Decision<'a> {
    /// Nothing to write on a key: answer at once.
    Answer {
        outcome: Outcome,
        /// The answer's one-word reason.
        reason: &'static str,
        message: String,
    },
    /// A decrypt-only key: retired unless a SealedSecret still needs it.
    Retire(&'a KeyInfo),
    /// A retired key, back to decrypt-only.
    Unretire(&'a KeyInfo),
}

/// How a request ended, as the answer and the audit line say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Retired,
    Unretired,
    /// Already as asked.
    Unchanged,
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Retired => "retired",
            Outcome::Unretired => "unretired",
            Outcome::Unchanged => "unchanged",
            Outcome::Refused => "refused",
        }
    }
}

/// Decides a request from the key set alone. The sealing key is never retired, nor any
/// active key: a key must have stopped sealing first.
pub fn decide(set: &KeySet, key: KeyId, action: KeyAction, grace: Duration) -> Decision<'_> {
    let Some(info) = set.info(key) else {
        let message = match action {
            KeyAction::Retire => format!("seal-operator holds no key {key}"),
            KeyAction::Unretire => format!(
                "seal-operator holds no key {key}: a retired key is deleted once its grace period is over, and then only a backup brings it back"
            ),
        };
        return Decision::Answer {
            outcome: Outcome::Refused,
            reason: "NoSuchKey",
            message,
        };
    };
    match (action, info.state) {
        (KeyAction::Retire, KeyState::Active) if set.current().map(|k| k.id) == Some(key) => {
            Decision::Answer {
                outcome: Outcome::Refused,
                reason: "SealingKey",
                message: format!("key {key} is the sealing key and is never retired"),
            }
        }
        (KeyAction::Retire, KeyState::Active) => Decision::Answer {
            outcome: Outcome::Refused,
            reason: "StillActive",
            message: format!("key {key} is still active"),
        },
        (KeyAction::Retire, KeyState::DecryptOnly) => Decision::Retire(info),
        (KeyAction::Retire, KeyState::Retired) => Decision::Answer {
            outcome: Outcome::Unchanged,
            reason: "AlreadyRetired",
            message: format!("key {key} is already retired{}", deletion_note(info, grace)),
        },
        (KeyAction::Unretire, KeyState::Retired) => Decision::Unretire(info),
        (KeyAction::Unretire, state) => Decision::Answer {
            outcome: Outcome::Unchanged,
            reason: "NotRetired",
            message: format!("key {key} is not retired (it is {})", state.as_str()),
        },
    }
}

/// Whether an item sealed to `sealed_to` opens only with `key` among the keys that still
/// open anything: then retiring `key` would leave it sealed.
pub fn needs(set: &KeySet, key: KeyId, sealed_to: &[KeyId]) -> bool {
    sealed_to.contains(&key) && !sealed_to.iter().any(|id| *id != key && set.holds(*id))
}

/// The refusal's words: the key, how many SealedSecrets still need it, and the first few.
pub fn refusal(key: KeyId, named: &[String], total: usize) -> String {
    let more = total.saturating_sub(named.len());
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        "key {key} is still needed by {total} SealedSecret(s): {}{tail}",
        named.join(", ")
    )
}

/// When a retired key's Secret may be deleted: not before the time stamped at retirement,
/// nor before the grace period now in force has passed since it was retired, so that
/// neither a hand edit of the stamp nor a shorter flag after a restart deletes a key early.
/// None: not retired, not stamped yet, or a grace too long to add.
pub fn deletes_at(info: &KeyInfo, grace: Duration) -> Option<Timestamp> {
    if info.state != KeyState::Retired {
        return None;
    }
    let retired_at = info.retired_at?;
    let by_grace = retired_at
        .checked_add(SignedDuration::try_from(grace).ok()?)
        .ok()?;
    Some(info.delete_after.map_or(by_grace, |at| at.max(by_grace)))
}

/// How long until the first retired key's deletion is due, so that the leader looks then and
/// not only on its next tick.
pub fn next_deletion(set: &KeySet, grace: Duration, now: Timestamp) -> Option<Duration> {
    set.infos
        .iter()
        .filter_map(|k| deletes_at(k, grace))
        .min()
        .map(|at| {
            let wait = at.duration_since(now);
            Duration::try_from(wait).unwrap_or(Duration::ZERO)
        })
}

/// Whether a retired key's Secret is due for deletion at `now`.
pub fn deletion_due(info: &KeyInfo, grace: Duration, now: Timestamp) -> bool {
    deletes_at(info, grace).is_some_and(|at| now >= at)
}

/// A retired key without its stamp (retired by a hand edit): the leader stamps it, and its
/// grace period starts then.
pub fn needs_stamp(info: &KeyInfo) -> bool {
    info.state == KeyState::Retired && info.retired_at.is_none()
}

fn deletion_note(info: &KeyInfo, grace: Duration) -> String {
    match deletes_at(info, grace) {
        Some(at) => format!("; its private key is deleted after {at}"),
        None => String::new(),
    }
}

/// The earliest deletion of a key retired at `now`.
fn delete_after(now: Timestamp, grace: Duration) -> Timestamp {
    SignedDuration::try_from(grace)
        .ok()
        .and_then(|grace| now.checked_add(grace).ok())
        .unwrap_or(Timestamp::MAX)
}

/// A request's answer, before it is written.
struct Answered {
    outcome: Outcome,
    reason: &'static str,
    message: String,
    /// A refusal: the first SealedSecrets that still need the key, and how many in all.
    named: Vec<String>,
    total: usize,
}

impl Answered {
    fn new(outcome: Outcome, reason: &'static str, message: String) -> Answered {
        Answered {
            outcome,
            reason,
            message,
            named: Vec::new(),
            total: 0,
        }
    }
}

impl LeaderDuties {
    /// Answers every pending key request. True when a key Secret was written: publishing
    /// waits for the watch to show it.
    pub(crate) async fn answer_key_requests(
        &self,
        leading: &Leadership,
        set: &KeySet,
        map: Option<&ConfigMap>,
    ) -> kube::Result<bool> {
        let mut wrote = false;
        for request in map.map(pending).unwrap_or_default() {
            if !leading.is_leading() {
                return Ok(wrote);
            }
            let answered = match decide(set, request.key, request.action, self.retire_grace) {
                Decision::Answer {
                    outcome,
                    reason,
                    message,
                } => Answered::new(outcome, reason, message),
                Decision::Retire(info) => {
                    let (named, total) = self.needing(set, info.id).await?;
                    if total > 0 {
                        Answered {
                            outcome: Outcome::Refused,
                            reason: "StillNeeded",
                            message: refusal(info.id, &named, total),
                            named,
                            total,
                        }
                    } else {
                        let now = Timestamp::now();
                        let after = delete_after(now, self.retire_grace);
                        if !leading.is_leading() {
                            return Ok(wrote);
                        }
                        keys::retire(&self.client, &self.namespace, info, now, after).await?;
                        wrote = true;
                        Answered::new(
                            Outcome::Retired,
                            "Retired",
                            format!(
                                "key {id} retired: it opens nothing from now on, and its private key is deleted after {after}; until then `seal keys unretire {id}` brings it back",
                                id = info.id
                            ),
                        )
                    }
                }
                Decision::Unretire(info) => {
                    if !leading.is_leading() {
                        return Ok(wrote);
                    }
                    keys::unretire(&self.client, &self.namespace, info).await?;
                    wrote = true;
                    Answered::new(
                        Outcome::Unretired,
                        "Unretired",
                        format!(
                            "key {} is decrypt-only again: it opens what is sealed to it, and is no longer to be deleted",
                            info.id
                        ),
                    )
                }
            };
            let action = request.action.as_str();
            self.report_key_step(
                set.info(request.key),
                request.key,
                action,
                answered.outcome.as_str(),
                &answered.message,
                &answered.named,
                Some(&request.id),
            )
            .await;
            if !leading.is_leading() {
                return Ok(wrote);
            }
            self.write_answer(&request, answered).await?;
        }
        Ok(wrote)
    }

    /// Stamps keys retired by hand, and deletes the retired keys whose grace period is over.
    /// True when a key Secret was written or deleted.
    pub(crate) async fn retire_due(
        &self,
        leading: &Leadership,
        set: &KeySet,
    ) -> kube::Result<bool> {
        let mut wrote = false;
        let now = Timestamp::now();
        for info in set.infos.iter().filter(|k| k.state == KeyState::Retired) {
            if !leading.is_leading() {
                return Ok(wrote);
            }
            if needs_stamp(info) {
                let after = delete_after(now, self.retire_grace);
                keys::retire(&self.client, &self.namespace, info, now, after).await?;
                wrote = true;
                let message = format!(
                    "key {} was marked retired without a time; its grace period starts now: its private key is deleted after {after}",
                    info.id
                );
                self.report_key_step(
                    Some(info),
                    info.id,
                    "retire",
                    "retired",
                    &message,
                    &[],
                    None,
                )
                .await;
                continue;
            }
            if !deletion_due(info, self.retire_grace, now) {
                continue;
            }
            match keys::delete_retired(&self.client, &self.namespace, info).await {
                Ok(()) => {}
                // Changed (unretired, say) or gone since it was seen: the watch brings the
                // news, and the next pass decides again.
                Err(kube::Error::Api(status)) if status.code == 409 || status.code == 404 => {
                    tracing::info!(key_id = %info.id, "retired key changed before its deletion; left alone");
                    continue;
                }
                Err(error) => return Err(error),
            }
            wrote = true;
            let message = format!(
                "key {} deleted: its grace period as a retired key is over (retired at {})",
                info.id,
                info.retired_at.map(|t| t.to_string()).unwrap_or_default()
            );
            self.report_key_step(
                Some(info),
                info.id,
                "delete",
                "deleted",
                &message,
                &[],
                None,
            )
            .await;
            backup::forget(&self.client, &self.namespace, info.id).await?;
            self.forget_requests(info.id).await?;
        }
        Ok(wrote)
    }

    /// The SealedSecrets (escaped `namespace/name`, the first [`NAMED`]) that still need
    /// `key`, and how many in all. Read from the API server, not from what passes found, so
    /// that one created a moment ago or not yet reconciled since a restart counts too.
    async fn needing(&self, set: &KeySet, key: KeyId) -> kube::Result<(Vec<String>, usize)> {
        let api: Api<SealedSecret> = match &self.watch_namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let mut params = ListParams::default().limit(500);
        let (mut named, mut total) = (Vec::new(), 0);
        loop {
            let page = api.list(&params).await?;
            for sealed in &page.items {
                let needs_it = sealed.spec.encrypted_data.iter().any(|(item, encoded)| {
                    inspect_entry(item, encoded).is_ok_and(|(_, ids)| needs(set, key, &ids))
                });
                if needs_it {
                    total += 1;
                    if named.len() < NAMED {
                        let place = format!(
                            "{}/{}",
                            sealed.namespace().unwrap_or_default(),
                            sealed.name_any()
                        );
                        named.push(escape(&place).into_owned());
                    }
                }
            }
            match page.metadata.continue_ {
                Some(token) if !token.is_empty() => params = params.continue_token(&token),
                _ => break,
            }
        }
        Ok((named, total))
    }

    /// An Event on the key Secret (when there is one) and an audit line, for every step.
    #[allow(clippy::too_many_arguments)]
    async fn report_key_step(
        &self,
        info: Option<&KeyInfo>,
        key: KeyId,
        action: &'static str,
        outcome: &'static str,
        message: &str,
        sealed_secrets: &[String],
        request: Option<&str>,
    ) {
        let reason = match outcome {
            "retired" => "KeyRetired",
            "unretired" => "KeyUnretired",
            "deleted" => "KeyDeleted",
            "refused" => "KeyRetireRefused",
            _ => "KeyUnchanged",
        };
        tracing::info!(key_id = %key, action, outcome, "{message}");
        let secret = info.map(|k| k.secret_name.clone());
        if let Some(name) = &secret {
            self.audit
                .on_key(
                    name,
                    outcome == "refused",
                    reason,
                    action,
                    message.to_owned(),
                )
                .await;
        }
        self.audit.log(&KeyAuditRecord {
            time: Timestamp::now(),
            event: "key",
            key_id: key.to_string(),
            secret: secret.map(|name| format!("{}/{name}", self.namespace)),
            action,
            outcome,
            reason,
            request,
            message,
            sealed_secrets,
        });
    }

    async fn write_answer(&self, request: &Request, answered: Answered) -> kube::Result<()> {
        let answer = KeyAnswer {
            request: request.id.clone(),
            action: request.action.as_str().to_owned(),
            outcome: answered.outcome.as_str().to_owned(),
            reason: answered.reason.to_owned(),
            message: answered.message,
            sealed_secrets: answered.named,
            needed_by: answered.total,
        };
        let value = serde_json::to_string(&answer).map_err(kube::Error::SerdeError)?;
        let patch = serde_json::json!({"metadata": {"annotations": {
            format!("{KEY_ANSWER_PREFIX}{}", request.key): value,
        }}});
        self.patch_public_keys(&patch).await
    }

    /// A deleted key's request and answer go with it.
    async fn forget_requests(&self, key: KeyId) -> kube::Result<()> {
        let patch = serde_json::json!({"metadata": {"annotations": {
            format!("{KEY_REQUEST_PREFIX}{key}"): null,
            format!("{KEY_ANSWER_PREFIX}{key}"): null,
        }}});
        self.patch_public_keys(&patch).await
    }

    async fn patch_public_keys(&self, patch: &serde_json::Value) -> kube::Result<()> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let params = PatchParams {
            field_manager: Some(ANSWER_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        match api
            .patch(PUBLIC_KEYS_CONFIGMAP, &params, &Patch::Merge(patch))
            .await
        {
            Ok(_) => Ok(()),
            // Not published yet: there is no request on it either.
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision;
    use crate::fixtures::sealed_secret;
    use seal_shared::keys::SealIdentity;

    const DAY: Duration = Duration::from_secs(86_400);

    fn time(text: &str) -> Timestamp {
        text.parse().expect("a time")
    }

    /// The set the key watch builds: a retired key is listed but not in the ring.
    fn set_of(keys: &[(&SealIdentity, KeyState, Option<&str>)]) -> KeySet {
        let mut set = KeySet::default();
        for (n, (identity, state, retired_at)) in keys.iter().enumerate() {
            if *state != KeyState::Retired {
                set.ring
                    .insert(SealIdentity::from_identity(identity.identity.clone()));
            }
            let retired_at = retired_at.map(time);
            set.infos.push(KeyInfo {
                id: identity.id,
                recipient: identity.recipient().recipient.to_string(),
                created: Timestamp::from_second(n as i64).expect("a time"),
                state: *state,
                secret_name: format!("seal-key-{}", identity.id),
                answers: None,
                retired_at,
                delete_after: retired_at.map(|t| delete_after(t, DAY)),
                uid: None,
                version: None,
            });
        }
        set
    }

    #[test]
    fn only_a_decrypt_only_key_is_retired_and_never_the_sealing_key() {
        let (old, current, gone) = (
            SealIdentity::generate(),
            SealIdentity::generate(),
            SealIdentity::generate(),
        );
        let set = set_of(&[
            (&old, KeyState::DecryptOnly, None),
            (&current, KeyState::Active, None),
        ]);
        assert!(matches!(
            decide(&set, old.id, KeyAction::Retire, DAY),
            Decision::Retire(info) if info.id == old.id
        ));
        match decide(&set, current.id, KeyAction::Retire, DAY) {
            Decision::Answer {
                outcome, message, ..
            } => {
                assert_eq!(outcome, Outcome::Refused);
                assert!(message.contains("is the sealing key"), "{message}");
            }
            other => panic!("the sealing key retired: {other:?}"),
        }
        assert!(matches!(
            decide(&set, gone.id, KeyAction::Retire, DAY),
            Decision::Answer {
                outcome: Outcome::Refused,
                ..
            }
        ));
        // Nothing to bring back: the answer says so, and nothing is written.
        assert!(matches!(
            decide(&set, old.id, KeyAction::Unretire, DAY),
            Decision::Answer {
                outcome: Outcome::Unchanged,
                ..
            }
        ));
    }

    #[test]
    fn a_retired_key_is_unretired_and_retiring_it_again_changes_nothing() {
        let (old, current) = (SealIdentity::generate(), SealIdentity::generate());
        let set = set_of(&[
            (&old, KeyState::Retired, Some("2026-01-01T00:00:00Z")),
            (&current, KeyState::Active, None),
        ]);
        assert!(matches!(
            decide(&set, old.id, KeyAction::Unretire, DAY),
            Decision::Unretire(info) if info.id == old.id
        ));
        match decide(&set, old.id, KeyAction::Retire, DAY) {
            Decision::Answer {
                outcome, message, ..
            } => {
                assert_eq!(outcome, Outcome::Unchanged);
                assert!(message.contains("2026-01-02T00:00:00Z"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_item_needs_a_key_when_no_other_open_key_opens_it() {
        let (old, current, recovery) = (
            SealIdentity::generate(),
            SealIdentity::generate(),
            SealIdentity::generate(),
        );
        let set = set_of(&[
            (&old, KeyState::DecryptOnly, None),
            (&current, KeyState::Active, None),
        ]);
        // Sealed to the old key and a recovery key the cluster does not hold: needed.
        assert!(needs(&set, old.id, &[old.id, recovery.id]));
        // Also sealed to the current key: not needed.
        assert!(!needs(&set, old.id, &[old.id, current.id]));
        assert!(!needs(&set, old.id, &[current.id]));
        // Sealed to another key that is itself retired: that one opens nothing either.
        let other = SealIdentity::generate();
        let set = set_of(&[
            (&other, KeyState::Retired, Some("2026-01-01T00:00:00Z")),
            (&old, KeyState::DecryptOnly, None),
            (&current, KeyState::Active, None),
        ]);
        assert!(needs(&set, old.id, &[old.id, other.id]));
    }

    #[test]
    fn a_refusal_names_the_first_few_and_counts_the_rest() {
        let key: KeyId = "0c87a417f764bcf7".parse().expect("a key id");
        let named: Vec<String> = (0..NAMED).map(|n| format!("app/s{n}")).collect();
        let text = refusal(key, &named, 7);
        assert!(
            text.starts_with(
                "key 0c87a417f764bcf7 is still needed by 7 SealedSecret(s): app/s0, app/s1"
            ),
            "{text}"
        );
        assert!(text.ends_with("app/s4 and 2 more"), "{text}");
        assert_eq!(
            refusal(key, &["app/db".into()], 1),
            "key 0c87a417f764bcf7 is still needed by 1 SealedSecret(s): app/db"
        );
    }

    #[test]
    fn a_retired_key_is_deleted_only_once_its_grace_is_over() {
        let (old, current) = (SealIdentity::generate(), SealIdentity::generate());
        let set = set_of(&[
            (&old, KeyState::Retired, Some("2026-01-01T00:00:00Z")),
            (&current, KeyState::Active, None),
        ]);
        let retired = &set.infos[0];
        assert_eq!(deletes_at(retired, DAY), Some(time("2026-01-02T00:00:00Z")));
        assert!(!deletion_due(retired, DAY, time("2026-01-01T23:59:59Z")));
        assert!(deletion_due(retired, DAY, time("2026-01-02T00:00:00Z")));
        // A shorter grace after a restart does not bring the deletion forward, and a longer
        // one puts it off.
        assert!(!deletion_due(
            retired,
            Duration::from_secs(1),
            time("2026-01-01T12:00:00Z")
        ));
        assert!(!deletion_due(
            retired,
            2 * DAY,
            time("2026-01-02T12:00:00Z")
        ));
        // Neither an active nor a decrypt-only key is ever due, nor a retired one never stamped.
        assert!(!deletion_due(&set.infos[1], DAY, Timestamp::MAX));
        let mut unstamped = retired.clone();
        unstamped.retired_at = None;
        assert!(needs_stamp(&unstamped) && !deletion_due(&unstamped, DAY, Timestamp::MAX));
        assert!(!needs_stamp(retired));
        // A grace too long to add to a time: never deleted.
        assert!(!deletion_due(retired, Duration::MAX, Timestamp::MAX));
        // The leader wakes when the first deletion is due.
        assert_eq!(
            next_deletion(&set, DAY, time("2026-01-01T23:00:00Z")),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            next_deletion(&set, DAY, time("2026-01-03T00:00:00Z")),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn a_request_is_pending_until_an_answer_names_it() {
        let key = SealIdentity::generate().id;
        let answer = |request: &str| {
            serde_json::to_string(&KeyAnswer {
                request: request.into(),
                action: "retire".into(),
                outcome: "refused".into(),
                reason: "StillNeeded".into(),
                message: String::new(),
                sealed_secrets: Vec::new(),
                needed_by: 1,
            })
            .expect("json")
        };
        let map = |answered: Option<&str>| -> ConfigMap {
            let mut annotations = serde_json::Map::new();
            annotations.insert(format!("{KEY_REQUEST_PREFIX}{key}"), "retire req-2".into());
            annotations.insert(
                format!("{KEY_REQUEST_PREFIX}not-a-key"),
                "retire req-3".into(),
            );
            if let Some(request) = answered {
                annotations.insert(format!("{KEY_ANSWER_PREFIX}{key}"), answer(request).into());
            }
            serde_json::from_value(serde_json::json!({"metadata": {"annotations": annotations}}))
                .expect("a ConfigMap")
        };
        let asked = Request {
            key,
            action: KeyAction::Retire,
            id: "req-2".into(),
        };
        assert_eq!(pending(&map(None)), std::slice::from_ref(&asked));
        assert_eq!(pending(&map(Some("req-1"))), [asked], "an older answer");
        assert_eq!(pending(&map(Some("req-2"))), []);
    }

    #[test]
    fn a_sealed_secret_needing_only_a_retired_key_fails_saying_so() {
        let (old, current) = (SealIdentity::generate(), SealIdentity::generate());
        let sealed = sealed_secret(&[("password", "hunter2")], &old.recipient());
        let open = set_of(&[
            (&old, KeyState::DecryptOnly, None),
            (&current, KeyState::Active, None),
        ]);
        assert!(decision::open(&sealed, &open).is_ok());
        let retired = set_of(&[
            (&old, KeyState::Retired, Some("2026-01-01T00:00:00Z")),
            (&current, KeyState::Active, None),
        ]);
        let refusal = decision::open(&sealed, &retired).err().expect("refused");
        assert_eq!(refusal.reason, "KeyRetired");
        assert!(
            refusal
                .message
                .contains(&format!("`seal keys unretire {}`", old.id))
                && refusal.message.contains("until 2026-01-02T00:00:00Z"),
            "{}",
            refusal.message
        );
        // A key the cluster never had is still just a missing key.
        let elsewhere = set_of(&[(&current, KeyState::Active, None)]);
        let refusal = decision::open(&sealed, &elsewhere).err().expect("refused");
        assert_eq!(refusal.reason, "NoMatchingKey");
    }
}
