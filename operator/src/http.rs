//! The HTTP port: liveness, readiness, the public keys (`GET /v1/keys`), so users can
//! fetch keys without the API server's service proxy, and re-sealing (`POST /v1/reseal`,
//! see `reseal.rs`); and the metrics port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use seal_shared::limits::MAX_RESEAL_REQUEST_BYTES;
use seal_shared::reseal::RESEAL_PATH;

use crate::keys::Keys;
use crate::metrics::Metrics;

/// What the HTTP port answers from.
#[derive(Clone)]
pub struct ApiState {
    pub keys: Arc<Keys>,
    /// Whether this replica holds the Lease.
    pub leading: crate::lease::Leadership,
    /// Whether this replica has written the public-key ConfigMap since it started.
    pub published: Arc<AtomicBool>,
    /// What the passes found; its key counts are current on the leader.
    pub ledger: Arc<crate::ledger::Ledger>,
    /// How often `POST /v1/reseal` may run, shared by every caller.
    pub reseal_limit: Arc<crate::reseal::RateLimit>,
}

impl axum::extract::FromRef<ApiState> for crate::reseal::ResealState {
    fn from_ref(state: &ApiState) -> Self {
        crate::reseal::ResealState {
            keys: state.keys.clone(),
            limit: state.reseal_limit.clone(),
        }
    }
}

pub async fn serve_api(addr: SocketAddr, state: ApiState) -> std::io::Result<()> {
    let app = Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/v1/keys", get(public_keys))
        .route(
            RESEAL_PATH,
            post(crate::reseal::handle).layer(DefaultBodyLimit::max(MAX_RESEAL_REQUEST_BYTES)),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

pub async fn serve_metrics(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .with_state(metrics);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

/// Ready once the keys have been read and a sealing key exists, and, on the leader, once
/// the public-key ConfigMap has been written: whoever waits for the rollout (`helm install
/// --wait`, `kubectl rollout status`) can run `seal encrypt` at once.
async fn readyz(State(state): State<ApiState>) -> impl IntoResponse {
    if !(state.keys.is_synced() && state.keys.snapshot().current().is_some()) {
        return (StatusCode::SERVICE_UNAVAILABLE, "keys not loaded");
    }
    if state.leading.is_leading() && !state.published.load(Ordering::Acquire) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "public keys not published yet",
        );
    }
    (StatusCode::OK, "ok")
}

async fn public_keys(State(state): State<ApiState>) -> impl IntoResponse {
    let set = state.keys.snapshot();
    // Only the leader reconciles, so only its counts are current; others say null.
    let uses = state.leading.is_leading().then(|| state.ledger.key_uses());
    let keys: Vec<serde_json::Value> = crate::publish::published(&set, uses.as_ref())
        .into_iter()
        .map(|published| {
            let mut key = serde_json::to_value(published).unwrap_or_default();
            if key.get("sealedSecrets").is_none() {
                key["sealedSecrets"] = serde_json::Value::Null;
            }
            key
        })
        .collect();
    let body = serde_json::json!({
        "recipient": set.current().map(|k| k.recipient.clone()),
        "keys": keys,
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

async fn render_metrics(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
}
