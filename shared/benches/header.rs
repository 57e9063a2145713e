//! What opening one item costs at the edge of seal's header bounds, and what refusing one
//! beyond them costs. Prints its figures; run with `cargo bench -p seal-shared --bench header`.
//!
//! Targets: the worst item seal still admits opens in a few milliseconds; a header flood is
//! refused in microseconds, whatever its size.

#[path = "../tests/craft/mod.rs"]
mod craft;

use std::time::{Duration, Instant};

use age::Decryptor;
use seal_shared::Scope;
use seal_shared::binding::{Binding, Placement};
use seal_shared::item::{seal_item, unseal_item};
use seal_shared::keys::{KeyRing, SealIdentity, SealRecipient};
use seal_shared::limits::{MAX_HEADER_BYTES, MAX_HEADER_STANZAS, MAX_RECIPIENTS};

fn longest() -> Placement {
    Placement::new("n".repeat(63), "a".repeat(253), "k".repeat(253))
}

/// Median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn ms(d: Duration) -> String {
    format!("{:>9.3} ms", d.as_secs_f64() * 1e3)
}

fn ring_of(identities: &[&SealIdentity]) -> KeyRing {
    let mut ring = KeyRing::new();
    for identity in identities {
        ring.insert(SealIdentity::from_identity(identity.identity.clone()));
    }
    ring
}

fn main() {
    let place = longest();
    let ours = SealIdentity::generate();
    let strangers: Vec<SealIdentity> = (0..MAX_RECIPIENTS + 8)
        .map(|_| SealIdentity::generate())
        .collect();
    let ring = ring_of(&[&ours]);

    println!(
        "limits: {MAX_RECIPIENTS} recipients, {MAX_HEADER_STANZAS} stanzas, {MAX_HEADER_BYTES} header bytes"
    );
    println!("median of 21 runs, one core:");

    // As seal writes it at the limit, ours last: age parses the most stanzas seal writes.
    let mut recipients: Vec<SealRecipient> = strangers[..MAX_RECIPIENTS - 1]
        .iter()
        .map(SealIdentity::recipient)
        .collect();
    recipients.push(ours.recipient());
    let written = seal_item(
        b"value",
        &Binding::for_placement(Scope::Strict, &place),
        &recipients,
    )
    .unwrap();
    let t = median(21, || {
        unseal_item(&written, &place, &ring).unwrap();
    });
    println!(
        "  open  seal's largest item ({MAX_RECIPIENTS} recipients, {:>5} B header)          {}",
        craft::header_len(&written),
        ms(t)
    );

    // Crafted to the limit: as many X25519 stanzas as fit beside a filler stanza that brings
    // the header to its byte bound, so age parses the most lines seal admits.
    let crafted = worst_admitted(&place, &ours, &strangers);
    let t = median(21, || {
        unseal_item(&crafted, &place, &ring).unwrap();
    });
    println!(
        "  open  crafted worst item ({} stanzas, {:>5} B header)                 {}",
        craft::stanza_count(&crafted),
        craft::header_len(&crafted),
        ms(t)
    );

    // The same, opened by a ring of 8 keys that the binding all names, the opening key last:
    // the other seven are named where the X25519 stanzas are for strangers, so each held key
    // costs one X25519 operation, against its own stanza, before the header MAC is checked.
    let others: Vec<&SealIdentity> = strangers[MAX_RECIPIENTS..].iter().take(7).collect();
    let ring8 = ring_of(&others.iter().copied().chain([&ours]).collect::<Vec<_>>());
    let mut ids: Vec<_> = x25519_recipients(&ours, &strangers)
        .iter()
        .map(|r| r.id)
        .collect();
    for (slot, other) in ids.iter_mut().zip(&others) {
        *slot = other.id;
    }
    let many_ids = worst_admitted_naming(&place, &ours, &strangers, &ids);
    let t = median(21, || {
        unseal_item(&many_ids, &place, &ring8).unwrap();
    });
    println!(
        "  open  crafted worst item, ring of 8 keys all named ({:>5} B header)           {}",
        craft::header_len(&many_ids),
        ms(t)
    );

    let over = craft::sealed_with_extra(
        b"value",
        Scope::Strict,
        &place,
        &[ours.recipient()],
        craft::junk(MAX_HEADER_STANZAS - 2),
    );
    let t = median(21, || {
        unseal_item(&over, &place, &ring).unwrap_err();
    });
    println!(
        "  refuse {} stanzas (one past the limit)                                 {}",
        craft::stanza_count(&over),
        ms(t)
    );

    let flood = craft::sealed_with_extra(
        b"value",
        Scope::Strict,
        &place,
        &[ours.recipient()],
        craft::junk(9_000),
    );
    let t = median(21, || {
        unseal_item(&flood, &place, &ring).unwrap_err();
    });
    println!(
        "  refuse 9,000-stanza flood ({} KB item)                                 {}",
        flood.len() / 1000,
        ms(t)
    );

    let oversized = craft::sealed_with_extra(
        b"value",
        Scope::Strict,
        &place,
        &[ours.recipient()],
        vec![craft::filler(600_000)],
    );
    let t = median(21, || {
        unseal_item(&oversized, &place, &ring).unwrap_err();
    });
    println!(
        "  refuse 800 KB header of one stanza                                      {}",
        ms(t)
    );

    // What the bound saves: age alone, given a flood seal now refuses.
    let flood_2000 = craft::sealed_with_extra(
        b"value",
        Scope::Strict,
        &place,
        &[ours.recipient()],
        craft::junk(2_000),
    );
    let t = median(3, || {
        std::hint::black_box(Decryptor::new_buffered(flood_2000.as_slice()).unwrap());
    });
    println!(
        "  for comparison: age 0.12 parsing a 2,000-stanza header, unbounded      {}",
        ms(t)
    );
}

fn worst_admitted(place: &Placement, ours: &SealIdentity, strangers: &[SealIdentity]) -> Vec<u8> {
    let recipients = x25519_recipients(ours, strangers);
    let ids: Vec<_> = recipients.iter().map(|r| r.id).collect();
    worst_with(place, &recipients, &ids)
}

fn worst_admitted_naming(
    place: &Placement,
    ours: &SealIdentity,
    strangers: &[SealIdentity],
    ids: &[seal_shared::KeyId],
) -> Vec<u8> {
    let recipients = x25519_recipients(ours, strangers);
    worst_with(place, &recipients, ids)
}

/// Stanzas: X25519 ones, the filler, the binding and age's grease.
fn x25519_recipients(ours: &SealIdentity, strangers: &[SealIdentity]) -> Vec<SealRecipient> {
    let mut recipients: Vec<SealRecipient> = strangers[..MAX_HEADER_STANZAS - 4]
        .iter()
        .map(SealIdentity::recipient)
        .collect();
    recipients.push(ours.recipient());
    recipients
}

/// The largest filler that keeps the header within its bound (grease is random in size, so
/// the item is made again until it fits).
fn worst_with(
    place: &Placement,
    recipients: &[SealRecipient],
    ids: &[seal_shared::KeyId],
) -> Vec<u8> {
    let make = |filler: usize| {
        let bound = craft::Stanzas(vec![craft::binding(Scope::Strict, place, ids)]);
        let extra = craft::Stanzas(vec![craft::filler(filler)]);
        let mut all: Vec<&dyn age::Recipient> = recipients
            .iter()
            .map(|r| &r.recipient as &dyn age::Recipient)
            .collect();
        all.push(&extra);
        all.push(&bound);
        craft::encrypt(b"value", &all)
    };
    let base = craft::header_len(&make(0));
    // 48 body bytes take one 65-byte line; leave room for the largest grease stanza.
    let room = MAX_HEADER_BYTES.saturating_sub(base + 250);
    let filler = room / 65 * 48;
    loop {
        let item = make(filler);
        if craft::header_len(&item) <= MAX_HEADER_BYTES
            && craft::stanza_count(&item) == MAX_HEADER_STANZAS
        {
            return item;
        }
    }
}
