//! Known-answer vectors: committed SealedSecrets, one item each, with the verdict opening it
//! must give. The CLI (`seal decrypt`) and the operator's unseal code judge the same files in
//! their own tests; a verdict that changes anywhere fails there.
//!
//! The files are made once by the ignored test `generate` and committed:
//!
//! ```sh
//! SEAL_WRITE_VECTORS=1 cargo test -p seal-shared --test vectors -- --ignored generate
//! ```
//!
//! It keeps `identity.txt` if present, so only the items change.

mod craft;
mod vector_file;

use std::fmt::Write as _;
use std::path::Path;

use age::secrecy::SecretString;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use seal_shared::Error;
use seal_shared::binding::{BindingStanzaError, Placement};
use seal_shared::item::{UnsealError, seal_item};
use seal_shared::keys::{KeyRing, SealIdentity, SealRecipient};
use seal_shared::limits::{MAX_HEADER_BYTES, MAX_HEADER_STANZAS, MAX_RECIPIENTS};
use seal_shared::scope::Scope;
use seal_shared::sealed_secret::{parse_sealed_secrets, unseal_secret};

fn ring(dir: &Path) -> KeyRing {
    let text = std::fs::read_to_string(vector_file::identity_path(dir)).unwrap();
    let mut ring = KeyRing::new();
    ring.add_identity_file(&SecretString::from(text), "identity.txt")
        .unwrap();
    ring
}

/// The class of an unseal failure, as the vectors name it.
fn verdict_of(error: &Error) -> String {
    let name = match error {
        Error::Unseal { source, .. } => match &**source {
            UnsealError::NotAgeFile => "NotAgeFile",
            UnsealError::Binding(BindingStanzaError::Missing) => "BindingMissing",
            UnsealError::Binding(BindingStanzaError::UnsupportedVersion(_))
            | UnsealError::NewerVersion(_) => "BindingVersion",
            UnsealError::Binding(BindingStanzaError::Malformed(_)) => "BindingMalformed",
            UnsealError::NoMatchingKey { .. } => "NoMatchingKey",
            UnsealError::Truncated => "Truncated",
            UnsealError::Tampered => "Tampered",
            UnsealError::BindingMismatch { .. } => "BindingMismatch",
            UnsealError::TooLarge => "TooLarge",
            UnsealError::HeaderTooLarge { .. } => "HeaderTooLarge",
            UnsealError::TooManyStanzas { .. } => "TooManyStanzas",
            other => return format!("unclassified: {other}"),
        },
        Error::CiphertextBase64 { .. } => "NotBase64",
        Error::ScopeMismatch { .. } => "ScopeMismatch",
        other => return format!("unclassified: {other}"),
    };
    name.to_owned()
}

/// The reason the operator reports for it.
fn reason_of(error: &Error) -> &'static str {
    match error {
        Error::Unseal { source, .. } => source.reason(),
        _ => "InvalidSpec",
    }
}

#[test]
fn every_vector_gives_its_verdict_through_the_library() {
    let dir = vector_file::dir(env!("CARGO_MANIFEST_DIR"));
    let ring = ring(&dir);
    let mut wrong = Vec::new();
    for vector in vector_file::load_all(&dir) {
        let docs = parse_sealed_secrets(&vector.text).unwrap();
        assert_eq!(docs.len(), 1, "{}", vector.name);
        let got = match unseal_secret(&docs[0], &ring) {
            Ok((manifest, key_ids)) => {
                let value = manifest
                    .data
                    .values()
                    .next()
                    .map(|v| STANDARD.decode(v.as_bytes()).unwrap());
                let want = vector.value.as_deref().map(|v| v.as_bytes().to_vec());
                let key_id = key_ids.first().map(ToString::to_string);
                if value != want || key_id != vector.key_id {
                    format!("opened, with another value or key {key_id:?}")
                } else {
                    "ok Unsealed".to_owned()
                }
            }
            Err(error) => {
                let message = error.to_string();
                let fragment = vector.message.as_deref().unwrap_or("\u{0}");
                let shown = if message.contains(fragment) {
                    "".to_owned()
                } else {
                    format!(" with message {message:?}")
                };
                format!("{} {}{shown}", verdict_of(&error), reason_of(&error))
            }
        };
        let want = format!("{} {}", vector.verdict, vector.reason);
        if got != want {
            wrong.push(format!(
                "{} ({}): want {want}, got {got}",
                vector.name, vector.case
            ));
        }
    }
    assert!(wrong.is_empty(), "verdicts changed:\n{}", wrong.join("\n"));
}

#[test]
fn the_vectors_cover_every_scope_and_every_class_of_refusal() {
    let dir = vector_file::dir(env!("CARGO_MANIFEST_DIR"));
    let vectors = vector_file::load_all(&dir);
    let verdicts: Vec<&str> = vectors.iter().map(|v| v.verdict.as_str()).collect();
    for class in [
        "NotAgeFile",
        "NotBase64",
        "BindingMissing",
        "BindingVersion",
        "BindingMalformed",
        "NoMatchingKey",
        "Truncated",
        "Tampered",
        "BindingMismatch",
        "HeaderTooLarge",
        "TooManyStanzas",
        "ScopeMismatch",
    ] {
        assert!(verdicts.contains(&class), "no vector for {class}");
    }
    for scope in Scope::ALL {
        let opening = vectors
            .iter()
            .filter(|v| v.opens())
            .any(|v| v.text.contains(&format!("scope: {}\n", scope.as_str())));
        assert!(opening, "no opening vector of scope {scope}");
    }
}

/// What a generated case says about itself.
enum Expect {
    Opens(&'static str),
    Refused {
        verdict: &'static str,
        reason: &'static str,
        message: String,
    },
}

struct Case {
    file: &'static str,
    case: &'static str,
    /// Where the item is found: the SealedSecret's namespace, name and item key.
    found_at: Placement,
    /// The SealedSecret's spec.scope.
    scope: Scope,
    item: String,
    expect: Expect,
}

fn refused(verdict: &'static str, reason: &'static str, message: impl Into<String>) -> Expect {
    Expect::Refused {
        verdict,
        reason,
        message: message.into(),
    }
}

fn prod_db() -> Placement {
    Placement::new("prod", "db", "password")
}

fn write_case(dir: &Path, case: &Case, key_id: &str) {
    let mut text = String::new();
    writeln!(
        text,
        "# seal known-answer vector, checked by shared/tests/vectors.rs and the CLI's and operator's tests"
    )
    .unwrap();
    writeln!(text, "# case: {}", case.case).unwrap();
    writeln!(text, "# identity: identity.txt").unwrap();
    match &case.expect {
        Expect::Opens(value) => {
            writeln!(text, "# verdict: ok").unwrap();
            writeln!(text, "# reason: Unsealed").unwrap();
            writeln!(text, "# value: {value}").unwrap();
            writeln!(text, "# key-id: {key_id}").unwrap();
        }
        Expect::Refused {
            verdict,
            reason,
            message,
        } => {
            writeln!(text, "# verdict: {verdict}").unwrap();
            writeln!(text, "# reason: {reason}").unwrap();
            writeln!(text, "# message: {message}").unwrap();
        }
    }
    let Placement {
        namespace,
        name,
        key,
    } = &case.found_at;
    // An empty item must stay a string, not become YAML's null.
    let item = if case.item.is_empty() {
        "\"\""
    } else {
        case.item.as_str()
    };
    write!(
        text,
        "apiVersion: seal.dev/v1\nkind: SealedSecret\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  scope: {}\n  encryptedData:\n    {key}: {item}\n",
        case.scope.as_str(),
    )
    .unwrap();
    std::fs::write(dir.join(format!("{}.yaml", case.file)), text).unwrap();
}

#[test]
#[ignore = "writes the committed vectors; run by hand (see the module comment)"]
fn generate() {
    assert!(
        std::env::var_os("SEAL_WRITE_VECTORS").is_some(),
        "set SEAL_WRITE_VECTORS=1 to rewrite shared/tests/vectors"
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    std::fs::create_dir_all(&dir).unwrap();
    let identity_file = vector_file::identity_path(&dir);
    if !identity_file.exists() {
        use age::secrecy::ExposeSecret;
        let identity = SealIdentity::generate();
        std::fs::write(
            &identity_file,
            format!(
                "# A test identity, committed on purpose: it opens seal's known-answer vectors in\n# this directory and nothing else. Never seal anything real to it.\n{}\n",
                identity.to_secret_string().expose_secret()
            ),
        )
        .unwrap();
    }
    for old in std::fs::read_dir(&dir).unwrap() {
        let path = old.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let ring = ring(&dir);
    let id = ring.ids().next().unwrap();
    let ours = SealRecipient::new(ring.get(id).unwrap().identity.to_public());
    let key_id = id.to_string();

    let seal = |value: &[u8], scope: Scope, at: &Placement, to: &[SealRecipient]| {
        seal_item(
            value,
            &seal_shared::binding::Binding::for_placement(scope, at),
            to,
        )
        .unwrap()
    };
    let b64 = |bytes: &[u8]| STANDARD.encode(bytes);
    let strict = seal(
        b"known-answer value: strict",
        Scope::Strict,
        &prod_db(),
        std::slice::from_ref(&ours),
    );
    let long_value = seal(
        &[b'x'; 300],
        Scope::Strict,
        &prod_db(),
        std::slice::from_ref(&ours),
    );
    let longest = Placement::new("n".repeat(63), "a".repeat(253), "k".repeat(253));
    let mut many: Vec<SealRecipient> = (1..MAX_RECIPIENTS)
        .map(|_| SealIdentity::generate().recipient())
        .collect();
    many.push(ours.clone());

    let cases = vec![
        Case {
            file: "ok-strict",
            case: "strict item, found where it was sealed",
            found_at: prod_db(),
            scope: Scope::Strict,
            item: b64(&strict),
            expect: Expect::Opens("known-answer value: strict"),
        },
        Case {
            file: "ok-namespace-wide-renamed",
            case: "namespace-wide item sealed for prod/db, found renamed to prod/renamed",
            found_at: Placement::new("prod", "renamed", "password"),
            scope: Scope::NamespaceWide,
            item: b64(&seal(
                b"known-answer value: namespace-wide",
                Scope::NamespaceWide,
                &prod_db(),
                std::slice::from_ref(&ours),
            )),
            expect: Expect::Opens("known-answer value: namespace-wide"),
        },
        Case {
            file: "ok-cluster-wide-elsewhere",
            case: "cluster-wide item sealed for prod/db, found in another namespace and name",
            found_at: Placement::new("staging", "copy", "password"),
            scope: Scope::ClusterWide,
            item: b64(&seal(
                b"known-answer value: cluster-wide",
                Scope::ClusterWide,
                &prod_db(),
                std::slice::from_ref(&ours),
            )),
            expect: Expect::Opens("known-answer value: cluster-wide"),
        },
        Case {
            file: "ok-most-recipients-longest-names",
            case: "the largest item seal writes: 64 recipients (ours last), longest namespace, name and key",
            found_at: longest.clone(),
            scope: Scope::Strict,
            item: b64(&seal(
                b"known-answer value: at the limits",
                Scope::Strict,
                &longest,
                &many,
            )),
            expect: Expect::Opens("known-answer value: at the limits"),
        },
        Case {
            file: "ok-stanzas-at-limit",
            case: "66 stanzas, the most admitted: ours, 63 junk stanzas, the binding and grease",
            found_at: prod_db(),
            scope: Scope::Strict,
            item: {
                let item = craft::sealed_with_extra(
                    b"known-answer value: 66 stanzas",
                    Scope::Strict,
                    &prod_db(),
                    std::slice::from_ref(&ours),
                    craft::junk(MAX_HEADER_STANZAS - 3),
                );
                assert_eq!(craft::stanza_count(&item), MAX_HEADER_STANZAS);
                b64(&item)
            },
            expect: Expect::Opens("known-answer value: 66 stanzas"),
        },
        Case {
            file: "no-binding",
            case: "a plain age file to our key, without seal's binding stanza",
            found_at: prod_db(),
            scope: Scope::Strict,
            item: b64(&age::encrypt(&ours.recipient, b"plain").unwrap()),
            expect: refused(
                "BindingMissing",
                "InvalidSpec",
                "the item carries no seal binding",
            ),
        },
        Case {
            file: "two-bindings",
            case: "two binding stanzas under a valid MAC, for two places",
            found_at: prod_db(),
            scope: Scope::Strict,
            item: b64(&craft::sealed_with_extra(
                b"v",
                Scope::Strict,
                &prod_db(),
                std::slice::from_ref(&ours),
                vec![craft::binding(
                    Scope::Strict,
                    &Placement::new("dev", "db", "password"),
                    &[id],
                )],
            )),
            expect: refused(
                "BindingMalformed",
                "InvalidSpec",
                "more than one binding stanza",
            ),
        },
        Case {
            file: "binding-version-unknown",
            case: "a binding stanza of version 2 under a valid MAC",
            found_at: prod_db(),
            scope: Scope::Strict,
            item: {
                let mut stanza = craft::binding(Scope::Strict, &prod_db(), &[id]);
                stanza.args[0] = "2".into();
                let bound = craft::Stanzas(vec![stanza]);
                b64(&craft::encrypt(b"v", &[&ours.recipient, &bound]))
            },
            expect: refused("BindingVersion", "InvalidSpec", "has version \"2\""),
        },
        Case {
            file: "binding-not-canonical",
            case: "a cluster-wide binding whose body still names a namespace and name",
            found_at: prod_db(),
            scope: Scope::ClusterWide,
            item: {
                let mut stanza = craft::binding(Scope::Strict, &prod_db(), &[id]);
                stanza.args[1] = Scope::ClusterWide.as_str().into();
                let bound = craft::Stanzas(vec![stanza]);
                b64(&craft::encrypt(b"v", &[&ours.recipient, &bound]))
            },
            expect: refused(
                "BindingMalformed",
                "InvalidSpec",
                "binding body does not match its scope",
            ),
        },
        Case {
            file: "moved-namespace",
            case: "a strict item sealed for prod/db, found in dev/db",
            found_at: Placement::new("dev", "db", "password"),
            scope: Scope::Strict,
            item: b64(&strict),
            expect: refused(
                "BindingMismatch",
                "BindingMismatch",
                "sealed for prod/db key \"password\" (strict) but found at dev/db key \"password\"",
            ),
        },
        Case {
            file: "moved-name",
            case: "a strict item sealed for prod/db, found in prod/web",
            found_at: Placement::new("prod", "web", "password"),
            scope: Scope::Strict,
            item: b64(&strict),
            expect: refused(
                "BindingMismatch",
                "BindingMismatch",
                "a sealed item cannot be moved",
            ),
        },
        Case {
            file: "moved-key",
            case: "a strict item sealed for key password, found under key token",
            found_at: Placement::new("prod", "db", "token"),
            scope: Scope::Strict,
            item: b64(&strict),
            expect: refused(
                "BindingMismatch",
                "BindingMismatch",
                "a sealed item cannot be moved",
            ),
        },
        Case {
            file: "scope-mismatch",
            case: "a cluster-wide item in a SealedSecret that declares strict",
            found_at: prod_db(),
            scope: Scope::Strict,
            item: b64(&seal(
                b"v",
                Scope::ClusterWide,
                &prod_db(),
                std::slice::from_ref(&ours),
            )),
            expect: refused(
                "ScopeMismatch",
                "InvalidSpec",
                "was sealed with scope cluster-wide but the SealedSecret declares strict",
            ),
        },
        Case {
            file: "no-matching-key",
            case: "an item sealed to another key only",
            found_at: prod_db(),
            scope: Scope::Strict,
            item: b64(&seal(
                b"v",
                Scope::Strict,
                &prod_db(),
                &[SealIdentity::generate().recipient()],
            )),
            expect: refused(
                "NoMatchingKey",
                "NoMatchingKey",
                "but none of them is available here",
            ),
        },
        Case {
            file: "key-ids-out-of-order",
            case: "our key named second while its X25519 stanza comes first: keys are tried against their own stanza only",
            found_at: prod_db(),
            scope: Scope::Strict,
            item: {
                let other = SealIdentity::generate().recipient();
                let bound = craft::Stanzas(vec![craft::binding(
                    Scope::Strict,
                    &prod_db(),
                    &[other.id, id],
                )]);
                b64(&craft::encrypt(
                    b"v",
                    &[&ours.recipient, &other.recipient, &bound],
                ))
            },
            expect: refused(
                "NoMatchingKey",
                "NoMatchingKey",
                "but none of them is available here",
            ),
        },
        Case {
            file: "truncated-header",
            case: "an item cut inside its header",
            found_at: prod_db(),
            scope: Scope::Strict,
            item: b64(&strict[..40]),
            expect: refused("Truncated", "DecryptFailed", "the ciphertext is truncated"),
        },
        Case {
            file: "truncated-payload",
            case: "an item cut inside its payload (age cannot tell this from an altered one)",
            found_at: prod_db(),
            scope: Scope::Strict,
            item: b64(&long_value[..long_value.len() - 10]),
            expect: refused("Tampered", "DecryptFailed", "integrity check failed"),
        },
        Case {
            file: "empty",
            case: "an empty item",
            found_at: prod_db(),
            scope: Scope::Strict,
            item: String::new(),
            expect: refused("Truncated", "DecryptFailed", "the ciphertext is truncated"),
        },
        Case {
            file: "tampered-payload",
            case: "one bit of the payload flipped",
            found_at: prod_db(),
            scope: Scope::Strict,
            item: {
                let mut item = strict.clone();
                let last = item.len() - 1;
                item[last] ^= 1;
                b64(&item)
            },
            expect: refused("Tampered", "DecryptFailed", "integrity check failed"),
        },
        Case {
            file: "tampered-binding",
            case: "the binding rewritten from prod/db to dev0/db, breaking the header MAC",
            found_at: Placement::new("dev0", "db", "password"),
            scope: Scope::Strict,
            item: {
                use base64::engine::general_purpose::STANDARD_NO_PAD;
                let old = STANDARD_NO_PAD.encode("prod\ndb\npassword");
                let new = STANDARD_NO_PAD.encode("dev0\ndb\npassword");
                let at = strict
                    .windows(old.len())
                    .position(|w| w == old.as_bytes())
                    .unwrap();
                let mut item = strict[..at].to_vec();
                item.extend_from_slice(new.as_bytes());
                item.extend_from_slice(&strict[at + old.len()..]);
                b64(&item)
            },
            expect: refused("Tampered", "DecryptFailed", "integrity check failed"),
        },
        Case {
            file: "header-flood",
            case: "67 stanzas under a valid MAC, one more than seal ever writes",
            found_at: prod_db(),
            scope: Scope::Strict,
            item: {
                let item = craft::sealed_with_extra(
                    b"v",
                    Scope::Strict,
                    &prod_db(),
                    std::slice::from_ref(&ours),
                    craft::junk(MAX_HEADER_STANZAS - 2),
                );
                assert_eq!(craft::stanza_count(&item), MAX_HEADER_STANZAS + 1);
                b64(&item)
            },
            expect: refused(
                "TooManyStanzas",
                "HeaderTooLarge",
                format!("more than {MAX_HEADER_STANZAS} stanzas"),
            ),
        },
        Case {
            file: "header-oversized",
            case: "a header of about 17 KiB in four stanzas under a valid MAC",
            found_at: prod_db(),
            scope: Scope::Strict,
            item: {
                let item = craft::sealed_with_extra(
                    b"v",
                    Scope::Strict,
                    &prod_db(),
                    std::slice::from_ref(&ours),
                    vec![craft::filler(12_500)],
                );
                assert!(craft::header_len(&item) > MAX_HEADER_BYTES);
                assert_eq!(craft::stanza_count(&item), 4);
                b64(&item)
            },
            expect: refused(
                "HeaderTooLarge",
                "HeaderTooLarge",
                format!("header is larger than {MAX_HEADER_BYTES} bytes"),
            ),
        },
        Case {
            file: "not-age",
            case: "text that is not an age file",
            found_at: prod_db(),
            scope: Scope::Strict,
            item: b64(b"this is not an age file\n"),
            expect: refused("NotAgeFile", "InvalidSpec", "not a binary age file"),
        },
        Case {
            file: "not-base64",
            case: "an item that is not base64",
            found_at: prod_db(),
            scope: Scope::Strict,
            item: "not*base64!".into(),
            expect: refused("NotBase64", "InvalidSpec", "is not valid base64"),
        },
    ];
    // Made last so a failed assertion above writes nothing misleading.
    for case in &cases {
        write_case(&dir, case, &key_id);
    }
}
