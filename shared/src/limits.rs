//! Size limits, taken from Kubernetes so that nothing seal accepts is refused later.

/// Kubernetes refuses a Secret whose data adds up to more than 1 MiB.
pub const MAX_SECRET_DATA_BYTES: usize = 1024 * 1024;

/// An input file larger than this is refused before parsing: a multi-document file of many
/// Secrets fits comfortably, and a runaway input cannot exhaust memory.
pub const MAX_INPUT_BYTES: usize = 64 * 1024 * 1024;

/// Ciphertext of one item: the value plus age's header and per-chunk tags for many recipients.
pub const MAX_ITEM_CIPHERTEXT_BYTES: usize = MAX_SECRET_DATA_BYTES + 64 * 1024;
