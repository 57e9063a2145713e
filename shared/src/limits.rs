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

/// YAML nodes (scalars, mappings, sequences) in one input, every document together: what
/// bounds the memory a parse takes. serde-saphyr's default, made explicit: 10,000 Secrets of
/// five items (about 23 nodes each) fit.
pub const MAX_YAML_NODES: usize = 250_000;

/// Parser events in one input (a node, a mapping's or sequence's end, a document's start or
/// end are one each). serde-saphyr's default, made explicit.
pub const MAX_YAML_EVENTS: usize = 1_000_000;

/// Documents in one input. Each document is at least two events (its start and end), so the
/// event limit binds first: this limit never refuses a stream the others accept. A file of
/// many Secrets is limited by its size and its nodes, not by how many Secrets it holds.
pub const MAX_YAML_DOCUMENTS: usize = MAX_YAML_EVENTS / 2;
