//! The known-answer vectors (shared/tests/vectors) through the reconciler's own unseal step:
//! the reason and message each refused vector must put in the SealedSecret's status.

use std::sync::Arc;

use age::secrecy::SecretString;
use seal_shared::KeyRing;
use seal_shared::sealed_secret::parse_sealed_secrets;

use super::{Failed, Opened, open_off_runtime};
use crate::keys::KeySet;

#[path = "../../../shared/tests/vector_file/mod.rs"]
mod vector_file;

#[tokio::test]
async fn every_vector_gives_its_verdict_through_the_operators_unseal() {
    let dir = vector_file::dir(env!("CARGO_MANIFEST_DIR"));
    let identity = std::fs::read_to_string(vector_file::identity_path(&dir)).unwrap();
    let mut ring = KeyRing::new();
    ring.add_identity_file(&SecretString::from(identity), "identity.txt")
        .unwrap();
    let keys = Arc::new(KeySet {
        ring,
        ..KeySet::default()
    });
    let mut wrong = Vec::new();
    for vector in vector_file::load_all(&dir) {
        let mut docs = parse_sealed_secrets(&vector.text).unwrap();
        let sealed = docs.remove(0);
        let got = match open_off_runtime(&sealed, &keys).await {
            Ok(Opened { values, key_ids }) => {
                let value = values.values().next().map(|v| v.to_vec());
                let want = vector.value.as_deref().map(|v| v.as_bytes().to_vec());
                if value == want && key_ids.first().map(ToString::to_string) == vector.key_id {
                    "Unsealed".to_owned()
                } else {
                    format!("opened, with another value or key {key_ids:?}")
                }
            }
            Err(Failed::Refused(refusal)) => {
                let fragment = vector.message.as_deref().unwrap_or_default();
                if refusal.message.contains(fragment) {
                    refusal.reason.to_owned()
                } else {
                    format!("{} with message {:?}", refusal.reason, refusal.message)
                }
            }
            Err(Failed::Api(error)) => format!("an API error: {error}"),
            Err(Failed::NotLeading) => "not leading".to_owned(),
        };
        if got != vector.reason {
            wrong.push(format!(
                "{} ({}): want {}, got {got}",
                vector.name, vector.case, vector.reason
            ));
        }
    }
    assert!(wrong.is_empty(), "verdicts changed:\n{}", wrong.join("\n"));
}
