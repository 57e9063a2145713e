//! `seal reseal` offline: stale items move to the current key, everything else stays.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use base64::Engine;

use crate::support::*;

struct Keys {
    old: String,
    new: String,
    recovery: String,
    old_id: String,
    new_id: String,
    recovery_id: String,
}

fn key_id(ws: &Workspace, file: &str) -> String {
    ws.read(file)
        .lines()
        .find_map(|l| l.strip_prefix("# seal key id: "))
        .expect("keygen writes the key id")
        .to_owned()
}

/// An old (decrypt-only) and a new (active) cluster key, a recovery key, and keys.json.
fn setup(ws: &Workspace) -> Keys {
    let old = ws.keygen("old.key");
    let new = ws.keygen("new.key");
    let recovery = ws.keygen("recovery.key");
    let keys = Keys {
        old_id: key_id(ws, "old.key"),
        new_id: key_id(ws, "new.key"),
        recovery_id: key_id(ws, "recovery.key"),
        old,
        new,
        recovery,
    };
    ws.write(
        "keys.json",
        format!(
            r#"[{{"id":"{}","recipient":"{}","created":"2026-01-01T00:00:00Z","state":"decrypt-only"}},
               {{"id":"{}","recipient":"{}","created":"2026-02-01T00:00:00Z","state":"active"}}]"#,
            keys.old_id, keys.old, keys.new_id, keys.new
        ),
    );
    keys
}

fn seal_to(ws: &Workspace, file: &str, secret: &str, recipients: &[&str]) {
    ws.write("plain.yaml", secret);
    if let Some(dir) = ws.path(file).parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    let mut args = vec!["encrypt", "-o", file];
    for r in recipients {
        args.extend(["-r", r]);
    }
    args.push("plain.yaml");
    ws.seal(&args).ok();
    std::fs::remove_file(ws.path("plain.yaml")).unwrap();
}

fn inode(ws: &Workspace, file: &str) -> (u64, Vec<u8>) {
    let path = ws.path(file);
    (
        std::fs::metadata(&path).unwrap().ino(),
        std::fs::read(&path).unwrap(),
    )
}

fn age_decrypt(ws: &Workspace, identity: &str, sealed: &str, key: &str) -> Option<Vec<u8>> {
    let engine = base64::engine::general_purpose::STANDARD;
    let file = ws.write("item.age", engine.decode(item(sealed, key)).unwrap());
    let out = Command::new(tool("age"))
        .args(["-d", "-i"])
        .arg(ws.path(identity))
        .arg(&file)
        .output()
        .unwrap();
    out.status.success().then_some(out.stdout)
}

#[test]
fn stale_items_move_to_the_current_key_and_the_recovery_key_still_opens_them() {
    let ws = Workspace::new();
    let k = setup(&ws);
    let secret = secret("prod", "db", &[("password", SENTINEL), ("user", "admin")]);
    seal_to(&ws, "stale.yaml", &secret, &[&k.old, &k.recovery]);
    // A comment and a second document, which the rewrite must keep.
    let text = format!("# owned by the payments team\n{}", ws.read("stale.yaml"));
    ws.write("stale.yaml", &text);
    seal_to(&ws, "current.yaml", &secret, &[&k.new, &k.recovery]);
    let before_current = inode(&ws, "current.yaml");

    let run = ws
        .seal(&["reseal", "-i", "recovery.key", "--keys", "keys.json"])
        .ok()
        .stderr_lacks(SENTINEL);
    assert!(!run.stdout().contains(SENTINEL));
    assert!(
        run.stdout().contains(&format!(
            "stale.yaml: SealedSecret prod/db: item \"password\": {} -> {}",
            k.old_id, k.new_id
        )),
        "{}",
        run.stdout()
    );
    assert!(
        run.stderr().contains("2 item(s) resealed in 1 file(s)"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains("2 already current"),
        "{}",
        run.stderr()
    );

    // The current file was not even rewritten: same inode, same bytes.
    assert_eq!(inode(&ws, "current.yaml"), before_current);
    let resealed = ws.read("stale.yaml");
    assert!(resealed.starts_with("# owned by the payments team\n"));
    let show = ws.seal(&["show", "stale.yaml"]).ok().stdout();
    assert!(
        show.contains(&format!(
            "bound to prod/db key \"password\" (strict), sealed to {} {}",
            k.new_id, k.recovery_id
        )),
        "{show}"
    );
    // The reference age opens it with the recovery key and with the new cluster key; the old
    // key opens it no more.
    for identity in ["recovery.key", "new.key"] {
        assert_eq!(
            age_decrypt(&ws, identity, &resealed, "password").as_deref(),
            Some(SENTINEL.as_bytes()),
            "{identity}"
        );
    }
    assert_eq!(age_decrypt(&ws, "old.key", &resealed, "password"), None);
    // seal's own reader checks the binding still holds where the item sits.
    let plain = ws
        .seal(&["decrypt", "-i", "new.key", "stale.yaml"])
        .ok()
        .stdout();
    assert!(plain.contains("name: db"), "{plain}");

    // A second run finds nothing to do and writes nothing.
    let before = inode(&ws, "stale.yaml");
    ws.seal(&["reseal", "-i", "recovery.key", "--keys", "keys.json"])
        .ok()
        .stderr_has("0 item(s) resealed in 0 file(s); 4 already current");
    assert_eq!(inode(&ws, "stale.yaml"), before);
}

#[test]
fn a_dry_run_lists_the_changes_and_writes_nothing() {
    let ws = Workspace::new();
    let k = setup(&ws);
    let secret = secret("prod", "db", &[("password", SENTINEL)]);
    seal_to(&ws, "a/stale.yaml", &secret, &[&k.old, &k.recovery]);
    let before = inode(&ws, "a/stale.yaml");
    let run = ws
        .seal(&[
            "reseal",
            "--dry-run",
            "-i",
            "recovery.key",
            "--keys",
            "keys.json",
            "a",
        ])
        .ok();
    assert_eq!(
        run.stdout(),
        format!(
            "a/stale.yaml: SealedSecret prod/db: item \"password\": {} -> {}\n",
            k.old_id, k.new_id
        )
    );
    assert!(
        run.stderr().contains("would be resealed"),
        "{}",
        run.stderr()
    );
    assert_eq!(inode(&ws, "a/stale.yaml"), before);
    let names: Vec<String> = std::fs::read_dir(ws.path("a"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["stale.yaml"], "no temporary file left");
}

#[test]
fn a_recipient_that_cannot_be_reconstructed_refuses_the_item_until_it_is_given() {
    let ws = Workspace::new();
    let k = setup(&ws);
    let other = ws.keygen("other.key");
    let other_id = key_id(&ws, "other.key");
    let secret = secret("prod", "db", &[("password", SENTINEL)]);
    seal_to(&ws, "stale.yaml", &secret, &[&k.old, &k.recovery, &other]);
    let before = inode(&ws, "stale.yaml");
    // The recovery identity gives its own recipient, but not the other cluster's.
    let run = ws.seal(&[
        "reseal",
        "-i",
        "recovery.key",
        "--keys",
        "keys.json",
        "stale.yaml",
    ]);
    assert_eq!(run.output.status.code(), Some(1), "{}", run.stderr());
    assert!(
        run.stderr().contains(&format!(
            "item \"password\": it is also sealed to {other_id}, whose recipient is not known here"
        )),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains(SENTINEL));
    assert_eq!(inode(&ws, "stale.yaml"), before, "nothing written");
    // Given with -r, it is kept.
    ws.seal(&[
        "reseal",
        "-i",
        "recovery.key",
        "--keys",
        "keys.json",
        "-r",
        &other,
        "stale.yaml",
    ])
    .ok();
    let show = ws.seal(&["show", "stale.yaml"]).ok().stdout();
    assert!(
        show.contains(&format!(
            "sealed to {} {} {other_id}",
            k.new_id, k.recovery_id
        )),
        "{show}"
    );
}

#[test]
fn the_recipient_of_a_seal_yaml_rule_is_kept() {
    let ws = Workspace::new();
    let k = setup(&ws);
    let secret = secret("prod", "db", &[("password", SENTINEL)]);
    seal_to(&ws, "prod/db.yaml", &secret, &[&k.old, &k.recovery]);
    ws.write(
        ".seal.yaml",
        format!(
            "rules:\n  - path: prod/**\n    recipients:\n      - {}\n      - {}\n",
            k.new, k.recovery
        ),
    );
    // Opened with the old cluster key, whose identity says nothing of the recovery key.
    ws.seal(&["reseal", "-i", "old.key", "--keys", "keys.json"])
        .ok();
    let show = ws.seal(&["show", "prod/db.yaml"]).ok().stdout();
    assert!(
        show.contains(&format!("sealed to {} {}", k.new_id, k.recovery_id)),
        "{show}"
    );
}

#[test]
fn an_item_moved_from_another_secret_is_refused_and_the_rest_resealed() {
    let ws = Workspace::new();
    let k = setup(&ws);
    seal_to(
        &ws,
        "staging.yaml",
        &secret("staging", "db", &[("password", SENTINEL)]),
        &[&k.old, &k.recovery],
    );
    seal_to(
        &ws,
        "prod.yaml",
        &secret("prod", "db", &[("password", "p"), ("user", "admin")]),
        &[&k.old, &k.recovery],
    );
    // Someone copies staging's password into prod's SealedSecret.
    let prod = ws.read("prod.yaml");
    let moved = prod.replace(
        &item(&prod, "password"),
        &item(&ws.read("staging.yaml"), "password"),
    );
    ws.write("prod.yaml", &moved);
    let run = ws.seal(&[
        "reseal",
        "-i",
        "recovery.key",
        "--keys",
        "keys.json",
        "prod.yaml",
    ]);
    assert_eq!(run.output.status.code(), Some(1), "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("prod.yaml: SealedSecret prod/db: item \"password\": sealed for staging/db"),
        "{}",
        run.stderr()
    );
    let after = ws.read("prod.yaml");
    assert_eq!(
        item(&after, "password"),
        item(&moved, "password"),
        "left as it was"
    );
    assert_ne!(
        item(&after, "user"),
        item(&moved, "user"),
        "the valid item resealed"
    );
}

#[test]
fn writes_follow_symbolic_links_and_refuse_hard_links() {
    let ws = Workspace::new();
    let k = setup(&ws);
    let secret = secret("prod", "db", &[("password", SENTINEL)]);
    seal_to(&ws, "real/db.yaml", &secret, &[&k.old, &k.recovery]);
    std::os::unix::fs::symlink(ws.path("real/db.yaml"), ws.path("link.yaml")).unwrap();
    ws.seal(&[
        "reseal",
        "-i",
        "recovery.key",
        "--keys",
        "keys.json",
        "link.yaml",
    ])
    .ok();
    assert!(
        std::fs::symlink_metadata(ws.path("link.yaml"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link stays a link"
    );
    let show = ws.seal(&["show", "real/db.yaml"]).ok().stdout();
    assert!(show.contains(&k.new_id), "{show}");

    seal_to(&ws, "hard.yaml", &secret, &[&k.old, &k.recovery]);
    std::fs::hard_link(ws.path("hard.yaml"), ws.path("other-name.yaml")).unwrap();
    let before = inode(&ws, "hard.yaml");
    let run = ws.seal(&[
        "reseal",
        "-i",
        "recovery.key",
        "--keys",
        "keys.json",
        "hard.yaml",
    ]);
    assert_eq!(run.output.status.code(), Some(1), "{}", run.stderr());
    assert!(run.stderr().contains("hard links"), "{}", run.stderr());
    assert_eq!(inode(&ws, "hard.yaml"), before);
}

#[test]
fn offline_needs_both_an_identity_and_a_key_list() {
    let ws = Workspace::new();
    setup(&ws);
    ws.seal(&["reseal", "-i", "recovery.key"]).usage_error();
    ws.seal(&["reseal", "--keys", "keys.json"]).usage_error();
    ws.write(
        "two.json",
        ws.read("keys.json").replace("decrypt-only", "active"),
    );
    ws.seal(&["reseal", "-i", "recovery.key", "--keys", "two.json"])
        .fails()
        .stderr_has("more than one key active");
}
