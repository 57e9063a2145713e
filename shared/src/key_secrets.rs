//! The shape of the Secrets that hold seal-operator's private keys: written by the operator,
//! and by `seal keys restore` when keys come back from a backup.

/// Label on every key Secret.
pub const LABEL: &str = "seal.dev/key";
/// The key Secrets' type; a Secret of another type is never loaded as a key.
pub const TYPE: &str = "seal.dev/age-key";
/// Key Secrets are named this, then the key id.
pub const NAME_PREFIX: &str = "seal-key-";
/// Annotations: the key id, its creation time (RFC 3339, decides which key seals) and its
/// state (`active`, `decrypt-only` or `retired`).
pub const ID: &str = "seal.dev/key-id";
pub const CREATED: &str = "seal.dev/created";
pub const STATE: &str = "seal.dev/state";
/// Annotations on a retired key, both RFC 3339 times on the operator's clock: when it was
/// retired, and the earliest time its Secret may be deleted (retired-at plus the grace period
/// in force then).
pub const RETIRED_AT: &str = "seal.dev/retired-at";
pub const DELETE_AFTER: &str = "seal.dev/delete-after";
/// Data keys: the identity (`AGE-SECRET-KEY-1...`) and its recipient (`age1...`).
pub const IDENTITY_DATA: &str = "identity";
pub const RECIPIENT_DATA: &str = "recipient";

/// Wipes every value of `secret` in place, before that copy is dropped: a key Secret's
/// private key (the copy sent, the one the server sends back, the one a delete returns), or
/// the values of a Secret read back after unsealing.
pub fn wipe(secret: &mut k8s_openapi::api::core::v1::Secret) {
    use zeroize::Zeroize;
    for k8s_openapi::ByteString(bytes) in secret.data.iter_mut().flat_map(|d| d.values_mut()) {
        bytes.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;

    #[test]
    fn every_value_is_wiped_in_place() {
        let mut secret = Secret {
            data: Some(
                [
                    (
                        "identity".to_owned(),
                        ByteString(b"AGE-SECRET-KEY-1X".to_vec()),
                    ),
                    ("recipient".to_owned(), ByteString(b"age1x".to_vec())),
                ]
                .into(),
            ),
            ..Secret::default()
        };
        super::wipe(&mut secret);
        let data = secret.data.unwrap_or_default();
        assert_eq!(data.len(), 2, "the keys stay; only their values go");
        // zeroize writes zeros over a Vec's whole buffer, then empties it.
        assert!(data.values().all(|ByteString(b)| b.is_empty()), "{data:?}");
        super::wipe(&mut Secret::default());
    }
}
