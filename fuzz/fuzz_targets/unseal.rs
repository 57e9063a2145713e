//! Opening one item with a fixed identity (the known-answer vectors' own): any bytes must
//! open or be refused, never panic, and never take long (the header bounds).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use seal_shared::KeyRing;
use seal_shared::binding::Placement;
use seal_shared::item::unseal_item;
use seal_shared::keys::SealIdentity;

static RING: LazyLock<KeyRing> = LazyLock::new(|| {
    let text = include_str!("../../shared/tests/vectors/identity.txt");
    let line = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .expect("an identity line");
    let mut ring = KeyRing::new();
    ring.insert(SealIdentity::parse(line).expect("the vectors' identity"));
    ring
});

fuzz_target!(|data: &[u8]| {
    let placement = Placement::new("prod", "db", "password");
    let _ = unseal_item(data, &placement, &RING);
});
