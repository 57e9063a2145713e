//! `seal show`: what a sealed file says without a key, and `git diff` through textconv.

use std::process::Command;

use seal_shared::keys::SealRecipient;

use crate::support::*;

fn key_id(recipient: &str) -> String {
    recipient.parse::<SealRecipient>().unwrap().id.to_string()
}

#[test]
fn show_prints_lengths_bindings_and_marked_key_ids_but_no_value() {
    let ws = Workspace::new();
    let first = ws.keygen("first.key");
    let second = ws.keygen("second.key");
    ws.write(
        "plain.yaml",
        secret("prod", "db", &[("password", SENTINEL)]),
    );
    let sealed = ws
        .seal(&["encrypt", "-r", &first, "-r", &second, "plain.yaml"])
        .ok()
        .stdout();
    ws.write("db.sealed.yaml", sealed);
    let (id1, id2) = (key_id(&first), key_id(&second));
    let out = ws.seal(&["show", "db.sealed.yaml"]).ok().stdout();
    assert_eq!(
        out,
        format!(
            "SealedSecret prod/db (scope strict), 1 item(s):\n  password: {} bytes, bound to prod/db key \"password\" (strict), sealed to {id1} {id2}\n",
            SENTINEL.len()
        )
    );
    ws.write(
        "keys.json",
        format!(r#"[{{"id":"{id1}","recipient":"{first}","created":"x","state":"decrypt-only"}}]"#),
    );
    let out = ws
        .seal(&["show", "--keys", "keys.json", "db.sealed.yaml"])
        .ok()
        .stdout();
    assert!(
        out.contains(&format!("sealed to {id1} (old) {id2} (unknown)")),
        "{out}"
    );
    assert!(!out.contains(SENTINEL));
    ws.write("plain.yaml", "not: [a sealed secret\n");
    ws.seal(&["show", "plain.yaml"]).fails();
    // For git, a file that is not sealed is shown as it is rather than failing the diff.
    let out = ws.seal(&["show", "--textconv", "plain.yaml"]).ok().stdout();
    assert!(
        out.starts_with("# seal show: not a SealedSecret file (")
            && out.ends_with("; shown as it is\nnot: [a sealed secret\n"),
        "{out}"
    );
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git is needed for this test and was not found");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn git_diff_through_textconv_shows_which_item_changed_and_to_which_keys() {
    let ws = Workspace::new();
    let first = ws.keygen("first.key");
    let second = ws.keygen("second.key");
    ws.write(
        "plain.yaml",
        secret("prod", "db", &[("password", "old-one"), ("user", "admin")]),
    );
    let sealed = ws
        .seal(&["encrypt", "-r", &first, "plain.yaml"])
        .ok()
        .stdout();
    ws.write("db.sealed.yaml", sealed);
    let dir = ws.dir.path();
    git(dir, &["init", "-q"]);
    ws.write(".gitattributes", "*.sealed.yaml diff=seal\n");
    let textconv = format!("{} show --textconv", env!("CARGO_BIN_EXE_seal"));
    git(dir, &["config", "diff.seal.textconv", &textconv]);
    git(dir, &["add", ".gitattributes", "db.sealed.yaml"]);
    git(dir, &["commit", "-q", "-m", "sealed"]);

    // Reseal one item, longer and to the second key.
    ws.write(
        "new.yaml",
        secret("prod", "db", &[("password", "a-longer-one")]),
    );
    ws.seal(&[
        "encrypt",
        "-r",
        &second,
        "--override-recipients",
        "--merge-into",
        "db.sealed.yaml",
        "new.yaml",
    ])
    .ok();
    let diff = git(dir, &["diff", "--no-color", "--", "db.sealed.yaml"]);
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('-') || l.starts_with('+'))
                && !l.starts_with("---")
                && !l.starts_with("+++")
        })
        .collect();
    assert_eq!(changed.len(), 2, "{diff}");
    let (id1, id2) = (key_id(&first), key_id(&second));
    assert!(
        changed[0].starts_with(&format!(
            "-SealedSecret prod/db item password: 7 bytes; bound to prod/db key \"password\" (strict); keys {id1}; ciphertext "
        )),
        "{diff}"
    );
    assert!(
        changed[1].starts_with(&format!(
            "+SealedSecret prod/db item password: 12 bytes; bound to prod/db key \"password\" (strict); keys {id2}; ciphertext "
        )),
        "{diff}"
    );
    // The unchanged item is context, not change.
    assert!(
        diff.contains(" SealedSecret prod/db item user: 5 bytes"),
        "{diff}"
    );
    assert!(!diff.contains("old-one") && !diff.contains("a-longer-one"));
}
