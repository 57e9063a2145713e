//! The part of seal that both the `seal` CLI and `seal-operator` must agree on: the sealed
//! format, its binding to a Secret's placement, key handling and the SealedSecret resource.
//!
//! Nothing here talks to a cluster, reads the terminal or spawns threads; callers own I/O.
#![forbid(unsafe_code)]

pub mod binding;
pub mod error;
pub mod escape;
pub mod item;
pub mod key_backup;
pub mod key_secrets;
pub mod keys;
pub mod limits;
pub mod manifest;
pub mod metadata;
pub mod names;
pub mod public_keys;
pub mod reseal;
pub mod scope;
pub mod sealed_secret;
pub mod suggest;
pub mod yaml;
pub mod yaml_edit;

pub use binding::Placement;
pub use error::{Error, Result};
pub use keys::{KeyId, KeyRing, SealRecipient};
pub use scope::Scope;
