//! Sealing and unsealing single items: round trips, bindings, and every way an item can be
//! damaged or misplaced.

mod craft;

use std::io::Write;

use age::x25519;
use proptest::prelude::*;
use seal_shared::binding::{Binding, BindingStanzaError, Placement};
use seal_shared::item::{SealItemError, UnsealError, seal_item, unseal_item};
use seal_shared::keys::{KeyRing, SealIdentity, SealRecipient};
use seal_shared::limits::{MAX_HEADER_BYTES, MAX_HEADER_STANZAS, MAX_RECIPIENTS};
use seal_shared::scope::Scope;

fn ring_of(identities: Vec<SealIdentity>) -> KeyRing {
    let mut ring = KeyRing::new();
    identities.into_iter().for_each(|i| ring.insert(i));
    ring
}

fn here() -> Placement {
    Placement::new("prod", "db", "password")
}

fn seal_here(scope: Scope, value: &[u8]) -> (Vec<u8>, KeyRing) {
    let identity = SealIdentity::generate();
    let sealed = seal_item(
        value,
        &Binding::for_placement(scope, &here()),
        &[identity.recipient()],
    )
    .unwrap();
    (sealed, ring_of(vec![identity]))
}

#[test]
fn round_trip_reports_the_key_that_opened_it() {
    let (sealed, ring) = seal_here(Scope::Strict, b"hunter2");
    let unsealed = unseal_item(&sealed, &here(), &ring).unwrap();
    assert_eq!(unsealed.value.as_slice(), b"hunter2");
    assert_eq!(Some(unsealed.key_id), ring.ids().next());
}

#[test]
fn every_recipient_can_open_the_item_alone() {
    let (a, b, recovery) = (
        SealIdentity::generate(),
        SealIdentity::generate(),
        SealIdentity::generate(),
    );
    let recipients = [a.recipient(), b.recipient(), recovery.recipient()];
    let sealed = seal_item(
        b"v",
        &Binding::for_placement(Scope::Strict, &here()),
        &recipients,
    )
    .unwrap();
    for identity in [a, b, recovery] {
        let id = identity.id;
        let unsealed = unseal_item(&sealed, &here(), &ring_of(vec![identity])).unwrap();
        assert_eq!(unsealed.value.as_slice(), b"v");
        assert_eq!(unsealed.key_id, id);
    }
}

#[test]
fn strict_items_refuse_another_namespace_name_or_key() {
    let (sealed, ring) = seal_here(Scope::Strict, b"v");
    for elsewhere in [
        Placement::new("dev", "db", "password"),
        Placement::new("prod", "web", "password"),
        Placement::new("prod", "db", "token"),
    ] {
        let err = unseal_item(&sealed, &elsewhere, &ring).unwrap_err();
        assert!(
            matches!(err, UnsealError::BindingMismatch { .. }),
            "{elsewhere}: {err}"
        );
        assert_eq!(err.reason(), "BindingMismatch");
        assert!(err.to_string().contains("prod/db"), "{err}");
    }
}

#[test]
fn namespace_wide_items_may_be_renamed_but_not_moved() {
    let (sealed, ring) = seal_here(Scope::NamespaceWide, b"v");
    assert!(
        unseal_item(
            &sealed,
            &Placement::new("prod", "renamed", "password"),
            &ring
        )
        .is_ok()
    );
    for elsewhere in [
        Placement::new("dev", "db", "password"),
        Placement::new("prod", "db", "other"),
    ] {
        assert!(matches!(
            unseal_item(&sealed, &elsewhere, &ring),
            Err(UnsealError::BindingMismatch { .. })
        ));
    }
}

#[test]
fn cluster_wide_items_are_bound_to_their_key_only() {
    let (sealed, ring) = seal_here(Scope::ClusterWide, b"v");
    assert!(unseal_item(&sealed, &Placement::new("any", "thing", "password"), &ring).is_ok());
    let err = unseal_item(&sealed, &Placement::new("any", "thing", "other"), &ring).unwrap_err();
    assert!(matches!(err, UnsealError::BindingMismatch { .. }));
}

#[test]
fn a_key_that_was_not_sealed_to_is_named_in_the_error() {
    let (sealed, _) = seal_here(Scope::Strict, b"v");
    let stranger = ring_of(vec![SealIdentity::generate()]);
    let err = unseal_item(&sealed, &here(), &stranger).unwrap_err();
    assert!(
        matches!(err, UnsealError::NoMatchingKey { ref sealed_to } if sealed_to.len() == 1),
        "{err}"
    );
    assert_eq!(err.reason(), "NoMatchingKey");
}

/// Rewrites the binding stanza's body in place, as an attacker with Git write access could.
fn rebind(sealed: &[u8], from: &str, to: &str) -> Vec<u8> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    let text = String::from_utf8_lossy(sealed).into_owned();
    let old = STANDARD_NO_PAD.encode(from);
    let new = STANDARD_NO_PAD.encode(to);
    assert!(text.contains(&old), "binding body not found in header");
    let at = sealed
        .windows(old.len())
        .position(|w| w == old.as_bytes())
        .unwrap();
    let mut out = sealed[..at].to_vec();
    out.extend_from_slice(new.as_bytes());
    out.extend_from_slice(&sealed[at + old.len()..]);
    out
}

#[test]
fn rewriting_the_binding_breaks_the_header_mac() {
    let (sealed, ring) = seal_here(Scope::Strict, b"v");
    let forged = rebind(&sealed, "prod\ndb\npassword", "dev0\ndb\npassword");
    let err = unseal_item(&forged, &Placement::new("dev0", "db", "password"), &ring).unwrap_err();
    assert_eq!(err, UnsealError::Tampered);
}

#[test]
fn a_plain_age_file_is_refused_for_lacking_a_binding() {
    let identity = x25519::Identity::generate();
    let plain = age::encrypt(&identity.to_public(), b"v").unwrap();
    let err = unseal_item(
        &plain,
        &here(),
        &ring_of(vec![SealIdentity::from_identity(identity)]),
    )
    .unwrap_err();
    assert_eq!(err, UnsealError::Binding(BindingStanzaError::Missing));
}

#[test]
fn damaged_ciphertexts_are_refused_by_kind() {
    let (sealed, ring) = seal_here(Scope::Strict, &[7u8; 200]);
    assert_eq!(
        unseal_item(b"", &here(), &ring).unwrap_err(),
        UnsealError::Truncated
    );
    assert_eq!(
        unseal_item(b"not age at all\n", &here(), &ring).unwrap_err(),
        UnsealError::NotAgeFile
    );
    // age cannot tell a payload cut short from one altered: both fail its integrity check.
    let cut = &sealed[..sealed.len() - 10];
    assert_eq!(
        unseal_item(cut, &here(), &ring).unwrap_err(),
        UnsealError::Tampered
    );
    let cut_in_header = &sealed[..40];
    assert_eq!(
        unseal_item(cut_in_header, &here(), &ring).unwrap_err(),
        UnsealError::Truncated
    );
    let mut flipped = sealed.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert_eq!(
        unseal_item(&flipped, &here(), &ring).unwrap_err(),
        UnsealError::Tampered
    );
    let header_only = &sealed[..sealed.iter().position(|&b| b == b'-').unwrap() + 3];
    assert!(unseal_item(header_only, &here(), &ring).is_err());
}

#[test]
fn age_reads_what_seal_wrote_through_its_own_decryptor() {
    // The library half of the no-lock-in promise; tests/interop runs the reference binary.
    let identity = SealIdentity::generate();
    let sealed = seal_item(
        b"exact bytes\x00\xff",
        &Binding::for_placement(Scope::Strict, &here()),
        &[identity.recipient()],
    )
    .unwrap();
    let plain = age::decrypt(&identity.identity, &sealed).unwrap();
    assert_eq!(plain, b"exact bytes\x00\xff");
}

#[test]
fn recipients_parse_and_unsupported_kinds_are_named() {
    let good = SealIdentity::generate().recipient().recipient.to_string();
    assert!(good.parse::<SealRecipient>().is_ok());
    let err = "ssh-ed25519 AAAAC3Nza"
        .parse::<SealRecipient>()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SSH key") && !err.contains("AAAAC3Nza"),
        "{err}"
    );
    let err = "age1notakey"
        .parse::<SealRecipient>()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not a valid age recipient") && !err.contains("notakey"),
        "{err}"
    );
}

/// Replaces the first occurrence of `from` in an item's bytes (its text header).
fn edit_header(sealed: &[u8], from: &str, to: &str) -> Vec<u8> {
    let at = sealed
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap_or_else(|| panic!("{from:?} not in the header"));
    let mut out = sealed[..at].to_vec();
    out.extend_from_slice(to.as_bytes());
    out.extend_from_slice(&sealed[at + from.len()..]);
    out
}

/// A binding stanza with any arguments, MAC-covered like seal's own: what a newer seal with
/// a binding version 2 would write.
struct FutureBinding(Vec<String>, Vec<u8>);

impl age::Recipient for FutureBinding {
    fn wrap_file_key(
        &self,
        _: &age_core::format::FileKey,
    ) -> Result<
        (
            Vec<age_core::format::Stanza>,
            std::collections::HashSet<String>,
        ),
        age::EncryptError,
    > {
        Ok((
            vec![age_core::format::Stanza {
                tag: seal_shared::binding::BINDING_TAG.to_owned(),
                args: self.0.clone(),
                body: self.1.clone(),
            }],
            Default::default(),
        ))
    }
}

#[test]
fn an_unknown_binding_version_is_called_newer_only_when_the_mac_proves_it() {
    let identity = SealIdentity::generate();
    let binding = FutureBinding(
        vec!["2".into(), "strict".into(), identity.id.to_string()],
        b"prod\ndb\npassword".to_vec(),
    );
    let recipients: [&dyn age::Recipient; 2] = [&identity.recipient().recipient, &binding];
    let encryptor = age::Encryptor::with_recipients(recipients.into_iter()).unwrap();
    let mut newer = Vec::new();
    let mut writer = encryptor.wrap_output(&mut newer).unwrap();
    writer.write_all(b"hunter2").unwrap();
    writer.finish().unwrap();
    let ring = ring_of(vec![identity]);
    assert_eq!(
        unseal_item(&newer, &here(), &ring).unwrap_err(),
        UnsealError::NewerVersion("2".into())
    );

    // The same edit made by hand to an item seal wrote: the MAC fails, so it was altered.
    let (sealed, ring) = seal_here(Scope::Strict, b"hunter2");
    let altered = edit_header(&sealed, "seal.dev/binding 1 ", "seal.dev/binding 2 ");
    let err = unseal_item(&altered, &here(), &ring).unwrap_err();
    assert_eq!(err, UnsealError::Tampered);
    assert!(!err.to_string().contains("upgrade"), "{err}");
    // Without a key that opens it, seal cannot tell, and says so.
    let err = unseal_item(&altered, &here(), &KeyRing::new()).unwrap_err();
    assert!(
        matches!(
            err,
            UnsealError::Binding(BindingStanzaError::UnsupportedVersion(_))
        ),
        "{err}"
    );
    assert!(err.to_string().contains("or altered"), "{err}");
}

#[test]
fn a_binding_that_names_no_key_is_malformed() {
    let (sealed, ring) = seal_here(Scope::Strict, b"v");
    let id = ring.ids().next().unwrap().to_string();
    let stripped = edit_header(&sealed, &format!(" strict {id}"), " strict");
    let err = unseal_item(&stripped, &here(), &ring).unwrap_err();
    assert_eq!(
        err,
        UnsealError::Binding(BindingStanzaError::Malformed("binding stanza names no key"))
    );
    assert!(!err.to_string().contains("key(s)  but"), "{err}");
    assert_eq!(
        UnsealError::NoMatchingKey { sealed_to: vec![] }.to_string(),
        "the item names no key, so none here can open it"
    );
}

/// The longest placement Kubernetes allows: a 63-character namespace, 253-character name
/// and key.
fn longest() -> Placement {
    Placement::new("n".repeat(63), "a".repeat(253), "k".repeat(253))
}

#[test]
fn the_largest_item_seal_writes_is_within_the_header_bounds_and_opens() {
    let identities: Vec<SealIdentity> = (0..MAX_RECIPIENTS)
        .map(|_| SealIdentity::generate())
        .collect();
    let recipients: Vec<SealRecipient> = identities.iter().map(SealIdentity::recipient).collect();
    for scope in Scope::ALL {
        let binding = Binding::for_placement(scope, &longest());
        let sealed = seal_item(b"v", &binding, &recipients).unwrap();
        assert_eq!(craft::stanza_count(&sealed), MAX_HEADER_STANZAS);
        let header = craft::header_len(&sealed);
        assert!(header <= MAX_HEADER_BYTES / 2 + 1024, "{header} bytes");
        let last = ring_of(vec![SealIdentity::from_identity(
            identities.last().unwrap().identity.clone(),
        )]);
        let unsealed = unseal_item(&sealed, &longest(), &last).unwrap();
        assert_eq!(unsealed.value.as_slice(), b"v");
    }
}

#[test]
fn sealing_to_more_recipients_than_seal_opens_is_refused() {
    let recipients: Vec<SealRecipient> = (0..=MAX_RECIPIENTS)
        .map(|_| SealIdentity::generate().recipient())
        .collect();
    let err = seal_item(
        b"v",
        &Binding::for_placement(Scope::Strict, &here()),
        &recipients,
    )
    .unwrap_err();
    assert!(
        matches!(err, SealItemError::TooManyRecipients { given, limit } if given == MAX_RECIPIENTS + 1 && limit == MAX_RECIPIENTS),
        "{err}"
    );
}

#[test]
fn a_header_with_more_stanzas_than_seal_writes_is_refused_before_age_parses_it() {
    let identity = SealIdentity::generate();
    let ring = ring_of(vec![SealIdentity::from_identity(identity.identity.clone())]);
    let recipients = [identity.recipient()];
    // One recipient, the binding and grease are three; junk fills the rest.
    let at_limit = craft::sealed_with_extra(
        b"v",
        Scope::Strict,
        &here(),
        &recipients,
        craft::junk(MAX_HEADER_STANZAS - 3),
    );
    assert_eq!(craft::stanza_count(&at_limit), MAX_HEADER_STANZAS);
    assert_eq!(
        unseal_item(&at_limit, &here(), &ring)
            .unwrap()
            .value
            .as_slice(),
        b"v"
    );

    for junk in [MAX_HEADER_STANZAS - 2, 9_000] {
        let flood =
            craft::sealed_with_extra(b"v", Scope::Strict, &here(), &recipients, craft::junk(junk));
        let err = unseal_item(&flood, &here(), &ring).unwrap_err();
        assert_eq!(
            err,
            UnsealError::TooManyStanzas {
                limit: MAX_HEADER_STANZAS
            }
        );
        assert_eq!(err.reason(), "HeaderTooLarge");
        assert!(
            err.to_string().contains("seal did not write this item"),
            "{err}"
        );
    }
}

#[test]
fn a_header_larger_than_seal_writes_is_refused_before_age_parses_it() {
    let identity = SealIdentity::generate();
    let ring = ring_of(vec![SealIdentity::from_identity(identity.identity.clone())]);
    let recipients = [identity.recipient()];
    let with_filler = |bytes| {
        craft::sealed_with_extra(
            b"v",
            Scope::Strict,
            &here(),
            &recipients,
            vec![craft::filler(bytes)],
        )
    };
    // age's grease stanza varies in size, so the filler steps across the limit and each
    // item is judged by its own header's length.
    let (mut opened, mut refused) = (0, 0);
    for body in (11_000..12_600).step_by(37) {
        let item = with_filler(body);
        let len = craft::header_len(&item);
        match unseal_item(&item, &here(), &ring) {
            Ok(unsealed) => {
                assert!(len <= MAX_HEADER_BYTES, "{len}-byte header opened");
                assert_eq!(unsealed.value.as_slice(), b"v");
                opened += 1;
            }
            Err(err) => {
                assert!(len > MAX_HEADER_BYTES, "{len}-byte header refused: {err}");
                assert_eq!(
                    err,
                    UnsealError::HeaderTooLarge {
                        limit: MAX_HEADER_BYTES
                    }
                );
                assert_eq!(err.reason(), "HeaderTooLarge");
                refused += 1;
            }
        }
    }
    assert!(
        opened > 0 && refused > 0,
        "{opened} opened, {refused} refused"
    );
}

#[test]
fn a_binding_naming_its_key_many_times_still_opens() {
    let identity = SealIdentity::generate();
    let ring = ring_of(vec![SealIdentity::from_identity(identity.identity.clone())]);
    let recipient = identity.recipient();
    let ids = vec![recipient.id; 200];
    let bound = craft::Stanzas(vec![craft::binding(Scope::Strict, &here(), &ids)]);
    let item = craft::encrypt(b"v", &[&recipient.recipient, &bound]);
    assert_eq!(
        unseal_item(&item, &here(), &ring).unwrap().value.as_slice(),
        b"v"
    );
}

#[test]
fn each_key_is_tried_against_its_own_stanza_only() {
    // seal names the keys in the order of their X25519 stanzas; a header that names them in
    // another order is not seal's, and its keys are not tried against every stanza.
    let (a, b) = (SealIdentity::generate(), SealIdentity::generate());
    let (ra, rb) = (a.recipient(), b.recipient());
    let swapped = craft::Stanzas(vec![craft::binding(
        Scope::Strict,
        &here(),
        &[rb.id, ra.id],
    )]);
    let item = craft::encrypt(b"v", &[&ra.recipient, &rb.recipient, &swapped]);
    for key in [a, b] {
        let err = unseal_item(&item, &here(), &ring_of(vec![key])).unwrap_err();
        assert!(matches!(err, UnsealError::NoMatchingKey { .. }), "{err}");
    }
}

#[test]
fn garbage_after_the_version_line_is_not_an_age_file_whatever_its_size() {
    let ring = ring_of(vec![SealIdentity::generate()]);
    for garbage in [
        b"age-encryption.org/v1\nnot a stanza\n".to_vec(),
        [b"age-encryption.org/v1\n".as_slice(), &[0xa5; 100_000]].concat(),
        [b"age-encryption.org/v1\n".as_slice(), &[b'A'; 65], b"\n"].concat(),
    ] {
        assert_eq!(
            unseal_item(&garbage, &here(), &ring).unwrap_err(),
            UnsealError::NotAgeFile
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_value_any_scope_round_trips(value in proptest::collection::vec(any::<u8>(), 0..5000), scope_index in 0usize..3, recipients in 1usize..4) {
        let scope = Scope::ALL[scope_index];
        let identities: Vec<SealIdentity> = (0..recipients).map(|_| SealIdentity::generate()).collect();
        let public: Vec<SealRecipient> = identities.iter().map(SealIdentity::recipient).collect();
        let sealed = seal_item(&value, &Binding::for_placement(scope, &here()), &public).unwrap();
        let last = identities.into_iter().last().unwrap();
        let unsealed = unseal_item(&sealed, &here(), &ring_of(vec![last])).unwrap();
        prop_assert_eq!(unsealed.value.as_slice(), value.as_slice());
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let ring = ring_of(vec![SealIdentity::generate()]);
        let mut input = b"age-encryption.org/v1\n".to_vec();
        input.write_all(&bytes).unwrap();
        prop_assert!(unseal_item(&input, &here(), &ring).is_err());
        prop_assert!(unseal_item(&bytes, &here(), &ring).is_err());
    }
}

#[test]
fn names_in_a_binding_are_shown_escaped() {
    // Anyone with the recipient can seal an authentic binding for a place that cannot exist.
    let binding = Binding::for_placement(
        Scope::Strict,
        &Placement::new("a\u{1b}[2K", "b\nseal: ok", "k"),
    );
    let mismatch = UnsealError::BindingMismatch {
        sealed_for: Box::new(binding),
        found_at: Box::new(Placement::new("prod\r", "db", "k")),
    }
    .to_string();
    assert!(!mismatch.chars().any(char::is_control), "{mismatch:?}");
    assert!(mismatch.contains("a\\u{1b}[2K/b\\nseal: ok"), "{mismatch}");
}
