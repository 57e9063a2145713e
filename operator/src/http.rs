//! The HTTP port: liveness, readiness and the public keys (`GET /v1/keys`), so users can
//! fetch keys without the API server's service proxy; and the metrics port.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::keys::Keys;
use crate::metrics::Metrics;

pub async fn serve_api(addr: SocketAddr, keys: Arc<Keys>) -> std::io::Result<()> {
    let app = Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/v1/keys", get(public_keys))
        .with_state(keys);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

pub async fn serve_metrics(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .with_state(metrics);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

/// Ready once the keys have been read and a sealing key exists.
async fn readyz(State(keys): State<Arc<Keys>>) -> impl IntoResponse {
    if keys.is_synced() && keys.snapshot().current().is_some() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "keys not loaded")
    }
}

async fn public_keys(State(keys): State<Arc<Keys>>) -> impl IntoResponse {
    let set = keys.snapshot();
    let body = serde_json::json!({
        "recipient": set.current().map(|k| k.recipient.clone()),
        "keys": crate::publish::published(&set),
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
