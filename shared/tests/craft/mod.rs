//! Items that seal would never write, made the way an attacker holding only public keys can:
//! any stanzas at all, under a header MAC that verifies. Shared by the item tests, the
//! known-answer vector generator and the header benchmark (which includes this file by path).

#![allow(dead_code)]

use std::collections::HashSet;
use std::io::Write;

use age::{EncryptError, Encryptor, Recipient};
use age_core::format::{FileKey, Stanza};
use seal_shared::binding::{Binding, Placement};
use seal_shared::keys::{KeyId, SealRecipient};
use seal_shared::scope::Scope;

/// An age "recipient" that adds fixed stanzas and wraps no key.
pub struct Stanzas(pub Vec<Stanza>);

impl Recipient for Stanzas {
    fn wrap_file_key(&self, _: &FileKey) -> Result<(Vec<Stanza>, HashSet<String>), EncryptError> {
        let copy = self
            .0
            .iter()
            .map(|s| Stanza {
                tag: s.tag.clone(),
                args: s.args.clone(),
                body: s.body.clone(),
            })
            .collect();
        Ok((copy, HashSet::new()))
    }
}

/// Encrypts `value` to every recipient in order (age appends its grease stanza).
pub fn encrypt(value: &[u8], recipients: &[&dyn Recipient]) -> Vec<u8> {
    let encryptor = Encryptor::with_recipients(recipients.iter().copied()).expect("recipients");
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out).expect("writer");
    writer.write_all(value).expect("write");
    writer.finish().expect("finish");
    out
}

/// The binding stanza seal writes for `placement` in `scope`, naming `key_ids`.
pub fn binding(scope: Scope, placement: &Placement, key_ids: &[KeyId]) -> Stanza {
    Binding::for_placement(scope, placement).to_stanza(key_ids)
}

/// A stanza no identity claims, shaped like an X25519 one (one 43-character argument and a
/// 32-byte body): about 100 bytes of header each.
pub fn junk(count: usize) -> Vec<Stanza> {
    (0..count)
        .map(|i| Stanza {
            tag: "junk".into(),
            args: vec![format!("{i:043}")],
            body: vec![(i % 251) as u8; 32],
        })
        .collect()
}

/// One stanza whose body is `bytes` long: 64 base64 characters a line.
pub fn filler(bytes: usize) -> Stanza {
    Stanza {
        tag: "filler".into(),
        args: Vec::new(),
        body: vec![0x5a; bytes],
    }
}

/// An item as seal writes it, plus `extra` stanzas between the recipients and the binding.
pub fn sealed_with_extra(
    value: &[u8],
    scope: Scope,
    placement: &Placement,
    recipients: &[SealRecipient],
    extra: Vec<Stanza>,
) -> Vec<u8> {
    let ids: Vec<KeyId> = recipients.iter().map(|r| r.id).collect();
    let extra = Stanzas(extra);
    let bound = Stanzas(vec![binding(scope, placement, &ids)]);
    let mut all: Vec<&dyn Recipient> = recipients
        .iter()
        .map(|r| &r.recipient as &dyn Recipient)
        .collect();
    all.push(&extra);
    all.push(&bound);
    encrypt(value, &all)
}

/// Where the header ends: the byte after the MAC line.
pub fn header_len(item: &[u8]) -> usize {
    let mut at = 0;
    for line in item.split_inclusive(|&b| b == b'\n') {
        at += line.len();
        if line.starts_with(b"---") {
            return at;
        }
    }
    panic!("no MAC line in the item");
}

/// Stanzas in an item's header.
pub fn stanza_count(item: &[u8]) -> usize {
    item[..header_len(item)]
        .split(|&b| b == b'\n')
        .filter(|line| line.starts_with(b"-> "))
        .count()
}
