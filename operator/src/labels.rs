//! Names the operator writes onto objects. Users and the chart rely on them: keep them stable.

/// Label on every Secret the operator writes from a SealedSecret; the operator watches only
/// Secrets carrying it. Defined in the shared crate: `seal encrypt` drops it from templates.
pub use seal_shared::metadata::{MANAGED_BY, MANAGED_BY_VALUE};

/// The Secrets that hold the operator's private keys (shared with `seal keys restore`).
pub use seal_shared::key_secrets::{
    CREATED as KEY_CREATED, DELETE_AFTER as KEY_DELETE_AFTER, ID as KEY_ID, LABEL as KEY_LABEL,
    NAME_PREFIX as KEY_SECRET_PREFIX, RETIRED_AT as KEY_RETIRED_AT, STATE as KEY_STATE,
    TYPE as KEY_SECRET_TYPE,
};
/// On a key Secret: the rotation request it was made for.
pub const KEY_ANSWERS: &str = "seal.dev/answers-rotation-request";

/// Annotation on a SealedSecret asking the operator to take over the Secret that a Bitnami
/// SealedSecret of the same name controls (the move from sealed-secrets). It is not consent
/// to overwrite any other Secret: see `adoption.rs`.
pub const ADOPT: &str = "seal.dev/adopt-existing-secret";

/// Annotation on an existing Secret by which whoever may write it consents to seal-operator
/// taking it over.
pub const CONSENT: &str = "seal.dev/managed";

pub use seal_shared::public_keys::{
    CONFIGMAP as PUBLIC_KEYS_CONFIGMAP, KEY_ANSWER_PREFIX, KEY_REQUEST_PREFIX, ROTATE_ANSWERED,
    ROTATE_REQUESTED,
};

/// The field manager for server-side apply.
pub const FIELD_MANAGER: &str = "seal-operator";
