//! `POST /v1/reseal`: seals one item again to the operator's current key, keeping the item's
//! other recipients, so that `seal reseal` can move a repository off an old key without the
//! plaintext leaving the cluster. The endpoint cannot be used to decrypt: it opens an item
//! only where its binding admits it, seals it only to the current key and to recipients whose
//! key ids the item's authenticated header already names, and answers ciphertext only. A
//! token bucket bounds how often it runs, a body limit how much it reads, and every call is
//! an audit line.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use seal_shared::keys::{KeyId, SealRecipient};
use seal_shared::limits::MAX_RECIPIENTS;
use seal_shared::names::{self, NameKind};
use seal_shared::reseal::{
    ClusterKeys, RecipientsError, ResealError, ResealReply, ResealRequest, check_offered,
    reseal_entry,
};
use seal_shared::sealed_secret::{SealedSecret, SealedSecretSpec, SecretTemplate, inspect_entry};
use serde::Serialize;

use crate::keys::Keys;

/// What the endpoint answers from: the keys, and the rate limit every caller shares.
#[derive(Clone)]
pub struct ResealState {
    pub keys: Arc<Keys>,
    pub limit: Arc<RateLimit>,
}

/// A token bucket: `rate` calls a second on average, up to `burst` at once.
pub struct RateLimit {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimit {
    pub fn new(rate: u32, burst: u32) -> RateLimit {
        let burst = f64::from(burst.max(1));
        RateLimit {
            rate: f64::from(rate),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Whether the endpoint is on at all (`--reseal-rate 0` turns it off).
    pub fn enabled(&self) -> bool {
        self.rate > 0.0
    }

    /// Takes one token as of `now`, or says how long until one is there.
    pub fn take(&self, now: Instant) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = &mut *state;
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

/// One audit line per call; field names are documented in docs/operator.md.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResealRecord<'a> {
    time: Timestamp,
    event: &'static str,
    sealed_secret: String,
    item: &'a str,
    from_key_ids: Vec<String>,
    to_key_ids: Vec<String>,
    /// `resealed`, `refused` or `limited`.
    outcome: &'static str,
    reason: &'a str,
    message: &'a str,
    /// Who called: the address the request came from, and X-Forwarded-For when a proxy (the
    /// API server's service proxy) says whom it forwards.
    client: String,
}

/// A refusal in the shape of a Kubernetes Status, which is what clients of the API server's
/// service proxy (and kube's client) read.
struct Refusal {
    code: StatusCode,
    reason: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl Refusal {
    fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            reason,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        if let Some(seconds) = self.retry_after {
            body["details"] = serde_json::json!({"retryAfterSeconds": seconds});
        }
        let mut response = (
            self.code,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// What one call did, for its audit line.
struct Outcome {
    sealed_secret: String,
    item: String,
    from: Vec<KeyId>,
    to: Vec<KeyId>,
}

pub async fn handle(
    State(state): State<ResealState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let client = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(forwarded) => format!(
            "{peer} (for {})",
            seal_shared::escape::escape(&forwarded.chars().take(200).collect::<String>())
        ),
        None => peer.to_string(),
    };
    let mut outcome = Outcome {
        sealed_secret: String::new(),
        item: String::new(),
        from: Vec::new(),
        to: Vec::new(),
    };
    let result = run(&state, &body, &mut outcome).await;
    let (status, reason, message) = match &result {
        Ok(_) => ("resealed", "Resealed", String::new()),
        Err(refusal) if refusal.code == StatusCode::TOO_MANY_REQUESTS => {
            ("limited", refusal.reason, refusal.message.clone())
        }
        Err(refusal) => ("refused", refusal.reason, refusal.message.clone()),
    };
    crate::audit::line(&ResealRecord {
        time: Timestamp::now(),
        event: "reseal",
        sealed_secret: outcome.sealed_secret,
        item: &outcome.item,
        from_key_ids: outcome.from.iter().map(KeyId::to_string).collect(),
        to_key_ids: outcome.to.iter().map(KeyId::to_string).collect(),
        outcome: status,
        reason,
        message: &message,
        client,
    });
    match result {
        Ok(reply) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&reply).unwrap_or_default(),
        )
            .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

async fn run(
    state: &ResealState,
    body: &[u8],
    outcome: &mut Outcome,
) -> Result<ResealReply, Refusal> {
    if !state.limit.enabled() {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "Disabled",
            "resealing is turned off on this operator (--reseal-rate 0)",
        ));
    }
    if let Err(wait) = state.limit.take(Instant::now()) {
        let mut refusal = Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "too many reseal requests; retry after the time given",
        );
        refusal.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
        return Err(refusal);
    }
    // serde's messages can quote the input (an item, a recipient): only the position is said.
    let request: ResealRequest = serde_json::from_slice(body).map_err(|e| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!(
                "the body is not a reseal request (JSON, line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    outcome.sealed_secret = format!(
        "{}/{}",
        seal_shared::escape::escape(&request.namespace),
        seal_shared::escape::escape(&request.name)
    );
    outcome.item = seal_shared::escape::escape(&request.key).into_owned();
    let bad = |what: String| Refusal::new(StatusCode::BAD_REQUEST, "BadRequest", what);
    for (value, kind, field) in [
        (&request.namespace, NameKind::Namespace, "namespace"),
        (&request.name, NameKind::SecretName, "name"),
    ] {
        names::check(kind, value).map_err(|e| bad(format!("{field}: {e}")))?;
    }
    names::check_data_key(&request.key).map_err(|e| bad(format!("key: {e}")))?;
    if request.recipients.len() > MAX_RECIPIENTS {
        return Err(bad(format!(
            "{} recipients given; an item has at most {MAX_RECIPIENTS}",
            request.recipients.len()
        )));
    }
    let offered = request
        .recipients
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.parse::<SealRecipient>()
                .map_err(|e| bad(format!("recipients[{i}]: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let set = state.keys.snapshot();
    let Some(current) = set.current() else {
        return Err(Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "NoSealingKey",
            "the operator has no sealing key yet",
        ));
    };
    if request.to != current.id.to_string() {
        return Err(Refusal::new(
            StatusCode::CONFLICT,
            "KeyChanged",
            format!(
                "the request asks for key {:?} but this operator seals to {}; read the public keys again",
                seal_shared::escape::escape(&request.to),
                current.id
            ),
        ));
    }
    let current_recipient: SealRecipient = current.recipient.parse().map_err(|_| {
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "the sealing key's recipient does not parse",
        )
    })?;
    // What the header says before it is opened: enough to refuse a recipient it does not
    // name at once. The header is authenticated only when the item is opened, and only what
    // it names then is sealed to.
    let (_, named) = inspect_entry(&request.key, &request.item).map_err(|e| {
        Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidSpec",
            e.to_string(),
        )
    })?;
    outcome.from = named.clone();
    check_offered(&offered, &named).map_err(recipients_refusal)?;

    let mut sealed = SealedSecret::new(
        &request.name,
        SealedSecretSpec {
            scope: request.scope,
            encrypted_data: Default::default(),
            template: SecretTemplate::default(),
        },
    );
    sealed.metadata.namespace = Some(request.namespace.clone());
    let all: Vec<KeyId> = set.infos.iter().map(|k| k.id).collect();
    let key = request.key.clone();
    let item = request.item;
    // X25519 and ChaCha20 work: on the opening pool, beside the reconciles.
    let resealed = crate::opening::off_runtime(move || {
        let keys = ClusterKeys {
            current: &current_recipient,
            all: &all,
        };
        reseal_entry(&sealed, &key, &item, &set.ring, &keys, &offered)
    })
    .await
    .map_err(|_| {
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "the reseal task failed",
        )
    })?
    .map_err(reseal_refusal)?;
    outcome.from = resealed.from.clone();
    outcome.to = resealed.to.clone();
    Ok(ResealReply {
        item: resealed.encoded,
        from: resealed.from.iter().map(KeyId::to_string).collect(),
        to: resealed.to.iter().map(KeyId::to_string).collect(),
    })
}

fn recipients_refusal(error: RecipientsError) -> Refusal {
    let code = match error {
        RecipientsError::AlreadyCurrent => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    Refusal::new(code, error.reason(), error.to_string())
}

fn reseal_refusal(error: ResealError) -> Refusal {
    match error {
        ResealError::Recipients { source, .. } => recipients_refusal(source),
        ResealError::Seal { .. } => Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "SealFailed",
            error.to_string(),
        ),
        other => Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            other.reason(),
            other.to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_gives_its_burst_then_its_rate() {
        let limit = RateLimit::new(10, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limit.take(start).is_ok());
        }
        let wait = limit.take(start).unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        // A tenth of a second later, one more token.
        assert!(limit.take(start + Duration::from_millis(100)).is_ok());
        assert!(limit.take(start + Duration::from_millis(100)).is_err());
        // Never more than the burst, however long it was idle.
        let later = start + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(limit.take(later).is_ok());
        }
        assert!(limit.take(later).is_err());
        assert!(!RateLimit::new(0, 5).enabled());
    }
}
