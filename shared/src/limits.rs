//! Size limits, taken from Kubernetes so that nothing seal accepts is refused later.

/// Kubernetes refuses a Secret whose data adds up to more than 1 MiB.
pub const MAX_SECRET_DATA_BYTES: usize = 1024 * 1024;

/// An input file larger than this is refused before parsing: a multi-document file of many
/// Secrets fits comfortably, and a runaway input cannot exhaust memory.
pub const MAX_INPUT_BYTES: usize = 64 * 1024 * 1024;

/// Ciphertext of one item: the value plus age's header and per-chunk tags for many recipients.
pub const MAX_ITEM_CIPHERTEXT_BYTES: usize = MAX_SECRET_DATA_BYTES + 64 * 1024;

/// The body of one reseal request (`POST /v1/reseal`): the base64 of the largest item, plus
/// room for its place and 64 recipients.
pub const MAX_RESEAL_REQUEST_BYTES: usize = MAX_ITEM_CIPHERTEXT_BYTES.div_ceil(3) * 4 + 16 * 1024;

/// The most recipients one item may be sealed to: one per cluster plus recovery keys is a
/// handful; this is far above that, and it lets the header bounds below hold for every item
/// seal writes, so seal never writes an item it would refuse to open.
pub const MAX_RECIPIENTS: usize = 64;

/// Stanzas in one item's age header: one per recipient, the binding and age's grease stanza.
/// A header with more was not written by seal.
pub const MAX_HEADER_STANZAS: usize = MAX_RECIPIENTS + 2;

/// Bytes of one item's age header, from the version line through the MAC line. The largest
/// seal writes (64 recipients, a namespace, name and key of the longest lengths Kubernetes
/// allows) is about 8.5 KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
