//! seal-operator: holds the cluster's age keys and turns SealedSecrets into Secrets.
//!
//! Where things are: `unseal.rs` turns a SealedSecret into a Secret (the reconciler),
//! `adoption.rs` decides whether an existing Secret may be taken over, `secret.rs` builds
//! the desired Secret and what it takes to make an existing one exactly that,
//! `controller.rs` wires watches to it, `ledger.rs` remembers per SealedSecret what the
//! next pass needs (back-off, key use, whether one is due), `keys.rs` loads and creates
//! keys, `lease.rs` holds the Lease, `rotation.rs`
//! decides when a new key is due, `publish.rs` writes the public-key ConfigMap, `audit.rs`
//! writes Events and the audit log, `http.rs` and `metrics.rs` serve the HTTP port;
//! `readiness.rs` counts SealedSecrets by their Ready condition for the metrics.
#![forbid(unsafe_code)]

pub mod adoption;
pub mod args;
pub mod audit;
pub mod controller;
pub mod http;
pub mod keys;
pub mod labels;
pub mod lease;
pub mod ledger;
pub mod metrics;
pub mod publish;
pub mod readiness;
pub mod rotation;
pub mod secret;
pub mod status;
pub mod unseal;

/// Errors that end a reconcile early and are retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("SealedSecret has no {0}")]
    MissingField(&'static str),
    #[error("serializing: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// The label under which this error is counted in metrics: one of a fixed few, so that
    /// what a server or proxy answers cannot grow the number of series.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(status)) => match status.code {
                401 => "Unauthorized",
                403 => "Forbidden",
                404 => "NotFound",
                409 => "Conflict",
                422 => "Invalid",
                429 => "TooManyRequests",
                500..=599 => "ServerError",
                _ => "ApiError",
            },
            // The request did not get an answer: connection refused or reset, a timeout.
            Error::Kube(kube::Error::HyperError(_) | kube::Error::Service(_)) => "Unreachable",
            Error::Kube(_) => "ApiError",
            Error::MissingField(_) => "InvalidSpec",
            Error::Json(_) => "InternalError",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
