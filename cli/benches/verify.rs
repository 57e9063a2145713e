//! `seal verify` on a repository of 10,000 sealed files, as CI runs it: the release binary as
//! a whole process, with a `.seal.yaml` rule and a `--keys` list so every check runs. Prints
//! its figures; run with `cargo bench -p seal-cli --bench verify`.
//!
//! Workload: 10,000 SealedSecrets of 3 items (32 to 1024 bytes), strict, to one cluster key
//! and one recovery key, in 100 directories.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use rayon::prelude::*;
use seal_shared::Scope;
use seal_shared::keys::SealIdentity;
use seal_shared::manifest::PlainSecret;
use seal_shared::sealed_secret::{SealRequest, seal_secret};
use zeroize::Zeroizing;

const FILES: usize = 10_000;
const DIRS: usize = 100;
const ITEM_SIZES: [usize; 3] = [32, 256, 1024];

fn main() {
    let cluster = SealIdentity::generate().recipient();
    let recovery = SealIdentity::generate().recipient();
    let recipients = [cluster.clone(), recovery.clone()];
    let repo = tempfile::tempdir().expect("a temporary directory");
    let root = repo.path();
    std::fs::write(
        root.join(".seal.yaml"),
        format!(
            "rules:\n  - path: '^apps/'\n    recipients:\n      - {}\n      - {}\n",
            cluster.recipient, recovery.recipient
        ),
    )
    .unwrap();
    let keys = serde_json::json!([{
        "id": cluster.id.to_string(),
        "recipient": cluster.recipient.to_string(),
        "created": "2026-01-01T00:00:00Z",
        "state": "active",
    }]);
    std::fs::write(root.join("keys.json"), keys.to_string()).unwrap();
    for dir in 0..DIRS {
        std::fs::create_dir_all(root.join(format!("apps/team-{dir}"))).unwrap();
    }

    let start = Instant::now();
    (0..FILES).into_par_iter().for_each(|i| {
        let secret = PlainSecret {
            name: Some(format!("secret-{i}")),
            namespace: Some(format!("team-{}", i % DIRS)),
            type_: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            immutable: None,
            data: ITEM_SIZES
                .iter()
                .enumerate()
                .map(|(k, &len)| (format!("item-{k}"), Zeroizing::new(vec![b'x'; len])))
                .collect(),
        };
        let sealed = seal_secret(&SealRequest {
            secret: &secret,
            namespace: secret.namespace.as_deref(),
            name: secret.name.as_deref().unwrap_or_default(),
            scope: Scope::Strict,
            recipients: &recipients,
        })
        .unwrap();
        let text = seal_shared::yaml::to_string_multiple(&[sealed]).unwrap();
        let path = root.join(format!("apps/team-{}/secret-{i}.sealed.yaml", i % DIRS));
        std::fs::write(path, text).unwrap();
    });
    println!(
        "generated {FILES} sealed files in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let mut runs = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_seal"))
            .args(["verify", "--keys", "keys.json", "--strict"])
            .current_dir(root)
            .output()
            .expect("the seal binary runs");
        runs.push(start.elapsed().as_secs_f64());
        assert!(
            out.status.success(),
            "verify found problems in generated files: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    runs.sort_by(f64::total_cmp);
    println!(
        "seal verify, {FILES} files x {} items, {} cores: median {:.2} s, best {:.2} s of 3 runs (target < 2 s)",
        ITEM_SIZES.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        runs[1],
        runs[0]
    );
}
