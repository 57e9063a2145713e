use std::os::unix::fs::PermissionsExt;

use crate::support::*;

#[test]
fn keygen_writes_a_private_file_once_and_prints_the_recipient() {
    let ws = Workspace::new();
    let recipient = ws.keygen("id.key");
    assert!(recipient.starts_with("age1"), "{recipient}");
    let mode = std::fs::metadata(ws.path("id.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert!(ws.read("id.key").contains(&recipient));
    let before = ws.read("id.key");
    ws.seal(&["keygen", "-o", "id.key"])
        .fails()
        .stderr_has("already exists");
    assert_eq!(ws.read("id.key"), before, "keygen replaced an existing key");
}

#[test]
fn encrypt_then_decrypt_gives_back_every_value_exactly() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    let tricky = [
        ("plain", SENTINEL),
        ("v_yes", "'yes'"),
        ("v_on", "'on'"),
        ("v_no", "'NO'"),
        ("zip", "'012'"),
        ("time", "'12:30'"),
        ("spaces", "'  leading'"),
        ("multi", "\"line1\\nline2\\n\""),
        ("empty", "''"),
    ];
    ws.write("s.yaml", secret("prod", "db", &tricky));
    let sealed = ws.seal(&["encrypt", "-r", &r, "s.yaml"]).ok().stdout();
    assert!(!sealed.contains(SENTINEL), "plaintext in sealed output");
    assert!(sealed.contains("kind: SealedSecret"));
    ws.write("sealed.yaml", &sealed);
    let plain = ws
        .seal(&["decrypt", "-i", "id.key", "sealed.yaml"])
        .ok()
        .stdout();
    let expect = [
        ("plain", SENTINEL),
        ("v_yes", "yes"),
        ("v_on", "on"),
        ("v_no", "NO"),
        ("zip", "012"),
        ("time", "12:30"),
        ("spaces", "  leading"),
        ("multi", "line1\nline2\n"),
        ("empty", ""),
    ];
    for (key, value) in expect {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        assert!(
            plain.contains(&format!(
                "  {key}: {}",
                if encoded.is_empty() {
                    "\"\"".into()
                } else {
                    encoded
                }
            )),
            "{key}: {plain}"
        );
    }
}

#[test]
fn labels_that_yaml_1_1_would_retype_stay_quoted() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write(
        "s.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: a\n  namespace: b\n  labels: {x: 'yes', y: 'on', z: '012'}\n  annotations: {t: '12:30'}\nstringData: {k: v}\n",
    );
    let sealed = ws.seal(&["encrypt", "-r", &r, "s.yaml"]).ok().stdout();
    for bad in ["x: yes\n", "y: on\n", "z: 012\n", "t: 12:30\n"] {
        assert!(!sealed.contains(bad), "unquoted {bad:?} in:\n{sealed}");
    }
}

#[test]
fn every_recipient_and_a_recovery_key_can_decrypt() {
    let ws = Workspace::new();
    let a = ws.keygen("a.key");
    let b = ws.keygen("b.key");
    let recovery = ws.keygen("recovery.key");
    ws.write(
        "recipients.txt",
        format!("# cluster b\n{b}\n\n# offline recovery\n{recovery}\n"),
    );
    ws.write("s.yaml", secret("prod", "db", &[("k", SENTINEL)]));
    ws.seal(&[
        "encrypt",
        "-r",
        &a,
        "-R",
        "recipients.txt",
        "s.yaml",
        "-o",
        "sealed.yaml",
    ])
    .ok();
    for key in ["a.key", "b.key", "recovery.key"] {
        let out = ws
            .seal(&["decrypt", "-i", key, "sealed.yaml"])
            .ok()
            .stdout();
        assert!(out.contains("namespace: prod"), "{key}: {out}");
    }
}

#[test]
fn stdin_json_multi_document_and_namespace_flag() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    let input = "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"one\"},\"stringData\":{\"a\":\"1\"}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: two}\nstringData: {b: '2'}\n";
    let out = ws
        .seal_with_stdin(&["encrypt", "-r", &r, "-n", "team"], Some(input.as_bytes()))
        .ok()
        .stdout();
    assert_eq!(out.matches("kind: SealedSecret").count(), 2, "{out}");
    assert_eq!(out.matches("namespace: team").count(), 2, "{out}");
}

#[test]
fn seal_yaml_rules_pick_recipients_and_scope_by_path() {
    let ws = Workspace::new();
    let prod = ws.keygen("prod.key");
    let dev = ws.keygen("dev.key");
    ws.write(".seal.yaml", format!(
        "rules:\n  - path: '^prod/'\n    recipients: ['{prod}']\n    scope: namespace-wide\n  - recipients: ['{dev}']\n"
    ));
    ws.write("prod/s.yaml", secret("prod", "db", &[("k", "v")]));
    ws.write("dev/s.yaml", secret("dev", "db", &[("k", "v")]));
    let prod_sealed = ws.seal(&["encrypt", "prod/s.yaml"]).ok().stdout();
    assert!(
        prod_sealed.contains("scope: namespace-wide"),
        "{prod_sealed}"
    );
    ws.write("p.yaml", &prod_sealed);
    ws.seal(&["decrypt", "-i", "prod.key", "p.yaml"]).ok();
    ws.seal(&["decrypt", "-i", "dev.key", "p.yaml"])
        .fails()
        .stderr_has("none of them is available");
    let dev_sealed = ws.seal(&["encrypt", "dev/s.yaml"]).ok().stdout();
    assert!(dev_sealed.contains("scope: strict"));
    ws.write("d.yaml", &dev_sealed);
    ws.seal(&["decrypt", "-i", "dev.key", "d.yaml"]).ok();
}

#[test]
fn merge_into_changes_only_the_given_keys() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write(
        "s.yaml",
        secret("prod", "db", &[("keep", "1"), ("change", "2")]),
    );
    ws.seal(&["encrypt", "-r", &r, "s.yaml", "-o", "sealed.yaml"])
        .ok();
    let before = ws.read("sealed.yaml");
    ws.write("update.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: {change: '3', added: '4'}\n");
    ws.seal(&[
        "encrypt",
        "-r",
        &r,
        "--merge-into",
        "sealed.yaml",
        "update.yaml",
    ])
    .ok();
    let after = ws.read("sealed.yaml");
    assert_eq!(
        item(&before, "keep"),
        item(&after, "keep"),
        "untouched item changed"
    );
    assert_ne!(item(&before, "change"), item(&after, "change"));
    let diff: Vec<&str> = after
        .lines()
        .filter(|l| !before.lines().any(|b| b == *l))
        .collect();
    assert_eq!(
        diff.len(),
        2,
        "only the changed and added items differ: {diff:?}"
    );
    let plain = ws
        .seal(&["decrypt", "-i", "id.key", "sealed.yaml"])
        .ok()
        .stdout();
    assert!(
        plain.contains("change: Mw==")
            && plain.contains("added: NA==")
            && plain.contains("keep: MQ=="),
        "{plain}"
    );
}

#[test]
fn in_place_replaces_the_plain_file() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write("s.yaml", secret("prod", "db", &[("k", SENTINEL)]));
    ws.seal(&["encrypt", "-r", &r, "-w", "s.yaml"]).ok();
    let text = ws.read("s.yaml");
    assert!(text.contains("kind: SealedSecret") && !text.contains(SENTINEL));
    assert_eq!(
        ws.files(),
        vec!["id.key", "s.yaml"],
        "temporary files left behind"
    );
}

#[test]
fn completion_scripts_are_generated() {
    let ws = Workspace::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = ws.seal(&["completion", shell]).ok().stdout();
        assert!(
            out.contains("encrypt") && out.contains("merge-into"),
            "{shell}"
        );
    }
}

#[test]
fn environment_variables_stand_in_for_flags() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write(
        "s.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {k: v}\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_seal"))
        .args(["encrypt", "s.yaml"])
        .current_dir(ws.dir.path())
        .env("SEAL_RECIPIENT", &r)
        .env("SEAL_NAMESPACE", "fromenv")
        .env("SEAL_SCOPE", "namespace-wide")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("namespace: fromenv") && text.contains("scope: namespace-wide"),
        "{text}"
    );
}
