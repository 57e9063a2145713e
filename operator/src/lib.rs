//! seal-operator: holds the cluster's age keys and turns SealedSecrets into Secrets.
//!
//! Where things are:
//! - a SealedSecret becomes a Secret: `decision.rs` decides (open the items, plan the
//!   Secret, what to report), `unseal.rs` carries it out; `adoption.rs` decides whether an
//!   existing Secret may be taken over, `secret.rs` builds the desired Secret and what it
//!   takes to make an existing one exactly that, `status.rs` the status;
//! - `controller.rs` wires the watches to the reconciler, `context.rs` is what every
//!   reconcile shares, `ledger.rs` remembers per SealedSecret what the next pass needs;
//! - keys: `keys.rs` loads and creates them, `rotation.rs` decides when a new one is due
//!   and runs the leader's key duties, `retire.rs` retires, unretires and deletes keys on
//!   request, `publish.rs` writes the public-key ConfigMap;
//! - `lease.rs` elects the one replica that writes; `run.rs` starts and supervises every
//!   part; `audit.rs` writes Events and the audit log; `http.rs` and `metrics.rs` serve
//!   the HTTP ports, `readiness.rs` counts SealedSecrets by their Ready condition for the
//!   metrics; `backup.rs` writes the key backup; `reseal.rs` answers `POST /v1/reseal`.
//!
//! `args` and `run` are the binary's way in; everything else is internal.
#![forbid(unsafe_code)]

pub(crate) mod adoption;
pub mod args;
pub(crate) mod audit;
pub(crate) mod backup;
pub(crate) mod context;
pub(crate) mod controller;
pub(crate) mod decision;
pub(crate) mod duties;
#[cfg(test)]
mod fixtures;
pub(crate) mod http;
pub(crate) mod keys;
pub(crate) mod labels;
pub(crate) mod lease;
pub(crate) mod ledger;
pub(crate) mod metrics;
pub(crate) mod mirror;
pub(crate) mod opening;
pub(crate) mod publish;
pub(crate) mod readiness;
#[cfg(test)]
mod reconcile_tests;
pub(crate) mod reseal;
pub(crate) mod retire;
pub(crate) mod rotation;
pub mod run;
pub(crate) mod secret;
pub(crate) mod status;
pub(crate) mod unseal;

/// Errors that end a reconcile early and are retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", describe_kube(.0))]
    Kube(#[from] kube::Error),
    #[error("SealedSecret has no {0}")]
    MissingField(&'static str),
    #[error("serializing: {0}")]
    Json(#[from] serde_json::Error),
    #[error("opening items: {0}")]
    Unseal(&'static str),
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
            Error::Json(_) | Error::Unseal(_) => "InternalError",
        }
    }
}

/// A Kubernetes client error in words, without the client's debug dump of the server's answer.
fn describe_kube(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!(
            "the API server answered {} {}: {}",
            status.code, status.reason, status.message
        ),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text = format!("{text}: {cause}");
                source = cause.source();
            }
            format!("could not talk to the API server: {text}")
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
