//! Where output lands: through symbolic links to the real file, atomically, with its mode
//! kept; never a plaintext copy left under another name.

use std::os::unix::fs::{PermissionsExt, symlink};

use crate::support::*;

fn mode(ws: &Workspace, name: &str) -> u32 {
    std::fs::metadata(ws.path(name))
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

fn is_link(ws: &Workspace, name: &str) -> bool {
    std::fs::symlink_metadata(ws.path(name))
        .unwrap()
        .file_type()
        .is_symlink()
}

#[test]
fn in_place_through_a_symbolic_link_seals_the_real_file() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write("real/s.yaml", secret("prod", "db", &[("k", SENTINEL)]));
    std::fs::set_permissions(ws.path("real/s.yaml"), PermissionsExt::from_mode(0o640)).unwrap();
    symlink("real/s.yaml", ws.path("link.yaml")).unwrap();
    ws.seal(&["encrypt", "-r", &r, "-w", "link.yaml"]).ok();
    assert!(is_link(&ws, "link.yaml"), "the link was replaced by a file");
    let real = ws.read("real/s.yaml");
    assert!(
        real.contains("kind: SealedSecret") && !real.contains(SENTINEL),
        "the real file still holds the plaintext:\n{real}"
    );
    assert_eq!(mode(&ws, "real/s.yaml"), 0o640, "mode not kept");
    let leftovers: Vec<_> = std::fs::read_dir(ws.path("real"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "temporary file left: {leftovers:?}");
}

#[test]
fn a_chain_of_links_and_an_absolute_link_are_followed() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write("a/real.yaml", secret("prod", "db", &[("k", SENTINEL)]));
    symlink(ws.path("a/real.yaml"), ws.path("a/abs.yaml")).unwrap();
    std::fs::create_dir(ws.path("b")).unwrap();
    symlink("../a/abs.yaml", ws.path("b/rel.yaml")).unwrap();
    ws.seal(&["encrypt", "-r", &r, "-w", "b/rel.yaml"]).ok();
    assert!(is_link(&ws, "b/rel.yaml") && is_link(&ws, "a/abs.yaml"));
    assert!(!ws.read("a/real.yaml").contains(SENTINEL));
}

#[test]
fn output_through_a_dangling_link_creates_the_file_it_names() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write("s.yaml", secret("prod", "db", &[("k", "v")]));
    std::fs::create_dir(ws.path("out")).unwrap();
    symlink("out/sealed.yaml", ws.path("sealed.yaml")).unwrap();
    ws.seal(&["encrypt", "-r", &r, "s.yaml", "-o", "sealed.yaml"])
        .ok();
    assert!(is_link(&ws, "sealed.yaml"));
    assert!(ws.read("out/sealed.yaml").contains("kind: SealedSecret"));
    assert_eq!(mode(&ws, "out/sealed.yaml"), 0o644);
}

#[test]
fn merge_into_a_linked_target_updates_the_real_file() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write("s.yaml", secret("prod", "db", &[("keep", "1")]));
    std::fs::create_dir(ws.path("repo")).unwrap();
    ws.seal(&["encrypt", "-r", &r, "s.yaml", "-o", "repo/db.yaml"])
        .ok();
    symlink("repo/db.yaml", ws.path("db.yaml")).unwrap();
    ws.write("new.yaml", secret("prod", "db", &[("added", "2")]));
    ws.seal(&["encrypt", "-r", &r, "--merge-into", "db.yaml", "new.yaml"])
        .ok();
    assert!(is_link(&ws, "db.yaml"), "the link was replaced by a file");
    let real = ws.read("repo/db.yaml");
    assert!(
        real.contains("    added: ") && real.contains("    keep: "),
        "{real}"
    );
}

#[test]
fn a_hard_linked_plain_file_is_not_replaced() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    let plain = secret("prod", "db", &[("k", SENTINEL)]);
    ws.write("s.yaml", &plain);
    std::fs::hard_link(ws.path("s.yaml"), ws.path("backup.yaml")).unwrap();
    ws.seal(&["encrypt", "-r", &r, "-w", "s.yaml"])
        .fails()
        .stderr_has("s.yaml has 2 hard links")
        .stderr_has("-o");
    assert_eq!(ws.read("s.yaml"), plain, "s.yaml changed");
    assert_eq!(ws.read("backup.yaml"), plain);
    // -o naming the other link of the input is the same thing.
    ws.seal(&["encrypt", "-r", &r, "s.yaml", "-o", "backup.yaml"])
        .fails()
        .stderr_has("hard links");
    assert_eq!(ws.read("backup.yaml"), plain);
}

#[test]
fn a_refused_write_is_two_lines_even_when_seal_picked_the_keys() {
    // seal says which keys a .seal.yaml rule gave only once the output is written: before
    // it, a refusal would be three lines, and would claim a seal that never happened.
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write(".seal.yaml", format!("rules:\n  - recipients: ['{r}']\n"));
    let plain = secret("prod", "db", &[("k", SENTINEL)]);
    ws.write("s.yaml", &plain);
    std::fs::hard_link(ws.path("s.yaml"), ws.path("backup.yaml")).unwrap();
    ws.seal(&["encrypt", "-w", "s.yaml"])
        .fails()
        .stderr_has("hard links")
        .stderr_lacks("sealing to");
    assert_eq!(ws.read("s.yaml"), plain, "s.yaml changed");
    ws.write("other.yaml", secret("prod", "web", &[("k", "v")]));
    ws.seal(&["encrypt", "other.yaml", "-o", "out.yaml"])
        .ok()
        .stderr_has("seal: sealing to key ");
    std::fs::hard_link(ws.path("out.yaml"), ws.path("out-copy.yaml")).unwrap();
    ws.write("more.yaml", secret("prod", "web", &[("added", "v")]));
    ws.seal(&["encrypt", "--merge-into", "out.yaml", "more.yaml"])
        .fails()
        .stderr_has("hard links")
        .stderr_lacks("sealing to");
}

#[test]
fn output_to_the_input_itself_replaces_it() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write("s.yaml", secret("prod", "db", &[("k", SENTINEL)]));
    ws.seal(&["encrypt", "-r", &r, "s.yaml", "-o", "s.yaml"])
        .ok();
    assert!(!ws.read("s.yaml").contains(SENTINEL));
}

#[test]
fn decrypt_through_a_link_is_private() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write("s.yaml", secret("prod", "db", &[("k", "v")]));
    ws.seal(&["encrypt", "-r", &r, "s.yaml", "-o", "sealed.yaml"])
        .ok();
    ws.write("plain/old.yaml", "old");
    std::fs::set_permissions(ws.path("plain/old.yaml"), PermissionsExt::from_mode(0o644)).unwrap();
    symlink("plain/old.yaml", ws.path("plain.yaml")).unwrap();
    ws.seal(&["decrypt", "-i", "id.key", "sealed.yaml", "-o", "plain.yaml"])
        .ok();
    assert!(is_link(&ws, "plain.yaml"));
    assert!(ws.read("plain/old.yaml").contains("kind: Secret"));
    assert_eq!(
        mode(&ws, "plain/old.yaml"),
        0o600,
        "plaintext left readable"
    );
}

#[test]
fn dash_means_stdout() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write("s.yaml", secret("prod", "db", &[("k", "v")]));
    let sealed = ws
        .seal(&["encrypt", "-r", &r, "s.yaml", "-o", "-"])
        .ok()
        .stdout();
    assert!(sealed.contains("kind: SealedSecret"));
    assert!(!ws.path("-").exists(), "wrote a file named -");
    ws.write("sealed.yaml", &sealed);
    let plain = ws
        .seal(&["decrypt", "-i", "id.key", "sealed.yaml", "-o", "-"])
        .ok()
        .stdout();
    assert!(plain.contains("kind: Secret"));
    let keygen = ws.seal(&["keygen", "-o", "-"]).ok();
    assert!(keygen.stdout().contains("AGE-SECRET-KEY-1"));
    assert!(!ws.path("-").exists(), "wrote a file named -");
}

#[test]
fn write_errors_name_the_file_not_a_temporary_one() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write("s.yaml", secret("prod", "db", &[("k", "v")]));
    // tempfile's own error names the temporary file it tried: s.yaml/.seal-XXXXXX.
    ws.seal(&["encrypt", "-r", &r, "s.yaml", "-o", "s.yaml/out.yaml"])
        .fails()
        .stderr_has("cannot write s.yaml/out.yaml: not a directory")
        .stderr_lacks(".seal-");
    ws.seal(&["encrypt", "-r", &r, "s.yaml", "-o", "missing/out.yaml"])
        .fails()
        .stderr_has("cannot write missing/out.yaml: no such file or directory")
        .stderr_lacks(".seal-");
}
