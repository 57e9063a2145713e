//! Sealing throughput against the raw floor of `age::encrypt`, on the same machine in the
//! same run. Prints its figures; run with `cargo bench -p seal-shared`.
//!
//! Workload: Secrets of 5 items of 32 to 4096 bytes, sealed strict to one recipient.

use std::collections::BTreeMap;
use std::time::Instant;

use rayon::prelude::*;
use seal_shared::Scope;
use seal_shared::keys::SealIdentity;
use seal_shared::manifest::{PlainSecret, parse_secrets};
use seal_shared::sealed_secret::{SealRequest, seal_secret};
use zeroize::Zeroizing;

const SECRETS: usize = 10_000;
const ITEM_SIZES: [usize; 5] = [32, 256, 1024, 2048, 4096];

fn secret(i: usize) -> PlainSecret {
    let data = ITEM_SIZES
        .iter()
        .enumerate()
        .map(|(k, &len)| {
            (
                format!("item-{k}"),
                Zeroizing::new(vec![(i + k) as u8; len]),
            )
        })
        .collect::<BTreeMap<_, _>>();
    PlainSecret {
        name: Some(format!("secret-{i}")),
        namespace: Some("bench".into()),
        type_: None,
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        immutable: None,
        data,
    }
}

/// `secret` as a manifest document, its values as base64 under `data`.
fn manifest(secret: &PlainSecret) -> String {
    use base64::Engine;
    let mut text = format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {}\n  namespace: bench\ndata:\n",
        secret.name.as_deref().unwrap_or("n")
    );
    for (key, value) in &secret.data {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value.as_slice());
        text.push_str(&format!("  {key}: {encoded}\n"));
    }
    text
}

fn main() {
    let identity = SealIdentity::generate();
    let recipients = [identity.recipient()];
    let secrets: Vec<PlainSecret> = (0..SECRETS).map(secret).collect();
    let items = (SECRETS * ITEM_SIZES.len()) as f64;
    let sample = 2_000;

    // Interleave floor and seal runs so both see the same machine state.
    let mut floor_rates = Vec::new();
    let mut seal_rates = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        for s in &secrets[..sample] {
            for value in s.data.values() {
                std::hint::black_box(age::encrypt(&recipients[0].recipient, value).unwrap());
            }
        }
        floor_rates.push((sample * ITEM_SIZES.len()) as f64 / start.elapsed().as_secs_f64());

        let start = Instant::now();
        for s in &secrets[..sample] {
            let request = SealRequest {
                secret: s,
                namespace: s.namespace.as_deref(),
                name: "n",
                scope: Scope::Strict,
                recipients: &recipients,
            };
            std::hint::black_box(seal_secret(&request).unwrap());
        }
        seal_rates.push((sample * ITEM_SIZES.len()) as f64 / start.elapsed().as_secs_f64());
    }
    // What `seal encrypt` does with a file, beside the same floor: parse the manifest (values
    // as base64 under `data`), seal every Secret, write the SealedSecrets' YAML.
    let text: String = secrets[..sample].iter().map(manifest).collect();
    let mut file_rates = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let parsed = parse_secrets(&text).unwrap();
        let sealed: Vec<_> = parsed
            .iter()
            .map(|s| {
                seal_secret(&SealRequest {
                    secret: s,
                    namespace: s.namespace.as_deref(),
                    name: s.name.as_deref().unwrap_or("n"),
                    scope: Scope::Strict,
                    recipients: &recipients,
                })
                .unwrap()
            })
            .collect();
        std::hint::black_box(seal_shared::yaml::to_string_multiple(&sealed).unwrap());
        file_rates.push((sample * ITEM_SIZES.len()) as f64 / start.elapsed().as_secs_f64());
    }
    let best = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    let (floor, seal) = (best(&floor_rates), best(&seal_rates));
    let file = best(&file_rates);
    println!("single core, best of 3 runs of {sample} Secrets x 5 items:");
    println!("  age::encrypt floor : {floor:>10.0} items/s");
    println!("  seal_secret        : {seal:>10.0} items/s");
    println!(
        "  overhead           : {:>10.2}x the floor (target <= 1.30x)",
        floor / seal
    );
    println!("  parse + seal + YAML: {file:>10.0} items/s");
    println!(
        "  overhead           : {:>10.2}x the floor (target <= 1.15x; the whole process: cargo bench -p seal-cli --bench encrypt)",
        floor / file
    );

    let threads = rayon::current_num_threads();
    let start = Instant::now();
    let sealed: Vec<_> = secrets
        .par_iter()
        .map(|s| {
            let name = s.name.as_deref().unwrap_or("n");
            seal_secret(&SealRequest {
                secret: s,
                namespace: s.namespace.as_deref(),
                name,
                scope: Scope::Strict,
                recipients: &recipients,
            })
            .unwrap()
        })
        .collect();
    let elapsed = start.elapsed();
    assert_eq!(sealed.len(), SECRETS);
    println!("all cores ({threads} threads):");
    println!(
        "  {SECRETS} Secrets x 5 items sealed in {:.2} s ({:.0} items/s; target <= 3 s on 2 cores)",
        elapsed.as_secs_f64(),
        items / elapsed.as_secs_f64()
    );
}
