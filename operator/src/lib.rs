//! seal-operator: holds the cluster's age keys and turns SealedSecrets into Secrets.
//!
//! Where things are: `unseal.rs` turns a SealedSecret into a Secret (the reconciler),
//! `controller.rs` wires watches to it, `ledger.rs` remembers per SealedSecret what the
//! next pass needs (back-off, key use, whether one is due), `keys.rs` loads and creates
//! keys, `leader.rs` holds the Lease, `rotation.rs`
//! decides when a new key is due, `publish.rs` writes the public-key ConfigMap, `audit.rs`
//! writes Events and the audit log, `http.rs` and `metrics.rs` serve the HTTP port.
#![forbid(unsafe_code)]

pub mod args;
pub mod audit;
pub mod controller;
pub mod http;
pub mod keys;
pub mod labels;
pub mod leader;
pub mod ledger;
pub mod metrics;
pub mod publish;
pub mod rotation;
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
    #[error("opening items: {0}")]
    Unseal(&'static str),
}

impl Error {
    /// The label under which this error is counted in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "ApiError",
            Error::MissingField(_) => "InvalidSpec",
            Error::Json(_) | Error::Unseal(_) => "InternalError",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
