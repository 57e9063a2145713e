//! Names the operator writes onto objects. Users and the chart rely on them: keep them stable.

/// Label on every Secret the operator writes from a SealedSecret; the operator watches only
/// Secrets carrying it. Defined in the shared crate: `seal encrypt` drops it from templates.
pub use seal_shared::metadata::{MANAGED_BY, MANAGED_BY_VALUE};

/// Label on the Secrets that hold the operator's private keys.
pub const KEY_LABEL: &str = "seal.dev/key";
pub const KEY_ID: &str = "seal.dev/key-id";
pub const KEY_CREATED: &str = "seal.dev/created";
pub const KEY_STATE: &str = "seal.dev/state";
pub const KEY_SECRET_TYPE: &str = "seal.dev/age-key";

/// Annotation on a SealedSecret that lets the operator take over an existing Secret it did
/// not create. Without it such a Secret is never overwritten.
pub const ADOPT: &str = "seal.dev/adopt-existing-secret";

pub use seal_shared::public_keys::{CONFIGMAP as PUBLIC_KEYS_CONFIGMAP, ROTATE_REQUESTED};

/// The field manager for server-side apply.
pub const FIELD_MANAGER: &str = "seal-operator";
