//! Interoperability with the reference `age` tool (Debian package `age`), both ways.

use std::process::Command;

use crate::support::*;

#[test]
fn reference_age_recovers_each_sealed_item_exactly() {
    let age = tool("age");
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    let binary = b"\x00\x01\xfe\xffbinary\r\n";
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    ws.write(
        "s.yaml",
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: prod}}\ndata:\n  bin: {}\nstringData:\n  text: {SENTINEL}\n",
            engine.encode(binary)
        ),
    );
    let recovery = ws.keygen("recovery.key");
    let sealed = ws
        .seal(&["encrypt", "-r", &r, "-r", &recovery, "s.yaml"])
        .ok()
        .stdout();
    for (key, expected) in [
        ("bin", binary.to_vec()),
        ("text", SENTINEL.as_bytes().to_vec()),
    ] {
        let file = ws.write(
            &format!("{key}.age"),
            engine.decode(item(&sealed, key)).unwrap(),
        );
        for identity in ["id.key", "recovery.key"] {
            let out = Command::new(&age)
                .args(["-d", "-i"])
                .arg(ws.path(identity))
                .arg(&file)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "age -d failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.stdout, expected, "age -d of {key} with {identity}");
        }
    }
}

#[test]
fn a_plain_age_file_put_into_a_sealed_secret_is_refused() {
    let age = tool("age");
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write("s.yaml", secret("prod", "db", &[("k", "v")]));
    let sealed = ws.seal(&["encrypt", "-r", &r, "s.yaml"]).ok().stdout();
    ws.write("value.txt", SENTINEL);
    let out = Command::new(&age)
        .args(["-r", &r, "-o"])
        .arg(ws.path("plain.age"))
        .arg(ws.path("value.txt"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "age -e failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    use base64::Engine;
    let plain = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(ws.path("plain.age")).unwrap());
    ws.write("forged.yaml", sealed.replace(&item(&sealed, "k"), &plain));
    ws.seal(&["decrypt", "-i", "id.key", "forged.yaml"])
        .fails()
        .stderr_has("carries no seal binding");
}
