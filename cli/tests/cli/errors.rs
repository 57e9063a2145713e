//! Every bad input: a message naming the file and the object, exit 1, no panic, no output
//! file left behind.

use crate::support::*;

fn refuses(ws: &Workspace, input: &[u8], extra: &[&str], needles: &[&str]) {
    ws.write("in.yaml", input);
    let mut args = vec!["encrypt", "in.yaml", "-o", "out.yaml"];
    args.extend_from_slice(extra);
    let mut run = ws.seal(&args).fails();
    for needle in needles {
        run = run.stderr_has(needle);
    }
    assert!(
        !exists(&ws.path("out.yaml")),
        "output left behind for {needles:?}"
    );
    assert!(
        ws.files().iter().all(|f| !f.starts_with(".seal-")),
        "temporary file left behind"
    );
}

#[test]
fn bad_manifests_are_refused_with_file_object_and_position() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    let with_r = ["-r", r.as_str()];
    refuses(
        &ws,
        b"apiVersion: v1\nkind: Secret\nstringData:\n  a: [oops\n",
        &with_r,
        &["in.yaml", "line 4"],
    );
    refuses(
        &ws,
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
        &with_r,
        &["in.yaml", "ConfigMap", "not a Secret"],
    );
    refuses(
        &ws,
        b"apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\ndata: {k: '%%%'}\n",
        &with_r,
        &["Secret n/s", "data.k is not valid base64"],
    );
    refuses(&ws, b"apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\nstringData:\n  k: a\n  k: b\n", &with_r, &["in.yaml", "uplicate"]);
    refuses(
        &ws,
        b"\xff\xfeapiVersion: v1\n",
        &with_r,
        &["in.yaml", "not UTF-8"],
    );
    refuses(
        &ws,
        b"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {k: v}\n",
        &with_r,
        &["Secret s", "--namespace"],
    );
    refuses(
        &ws,
        b"apiVersion: v1\nkind: Secret\nmetadata: {namespace: n}\nstringData: {k: v}\n",
        &with_r,
        &["metadata.name"],
    );
    let big = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: n}}\nstringData:\n  k: {}\n",
        "x".repeat(1024 * 1024 + 1)
    );
    refuses(
        &ws,
        big.as_bytes(),
        &with_r,
        &["in.yaml", "1048576", "1 MiB"],
    );
}

#[test]
fn an_already_sealed_file_is_not_sealed_again() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write("s.yaml", secret("n", "s", &[("k", "v")]));
    let sealed = ws.seal(&["encrypt", "-r", &r, "s.yaml"]).ok().stdout();
    refuses(
        &ws,
        sealed.as_bytes(),
        &["-r", &r],
        &["already a SealedSecret", "--merge-into"],
    );
}

#[test]
fn recipients_missing_or_malformed() {
    let ws = Workspace::new();
    let s = secret("n", "s", &[("k", SENTINEL)]);
    refuses(&ws, s.as_bytes(), &[], &["no recipients", "-r age1"]);
    refuses(
        &ws,
        s.as_bytes(),
        &["-r", "age1garbage"],
        &["--recipient", "not a valid age recipient"],
    );
    ws.write("r.txt", "# ok\nssh-ed25519 AAAA\n");
    refuses(&ws, s.as_bytes(), &["-R", "r.txt"], &["r.txt:2", "SSH key"]);
}

#[test]
fn decrypt_refuses_wrong_or_missing_identities() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.keygen("other.key");
    ws.write("s.yaml", secret("n", "s", &[("k", SENTINEL)]));
    ws.seal(&["encrypt", "-r", &r, "s.yaml", "-o", "sealed.yaml"])
        .ok();
    ws.seal(&["decrypt", "-i", "other.key", "sealed.yaml"])
        .fails()
        .stderr_has("sealed.yaml")
        .stderr_has("SealedSecret n/s")
        .stderr_has("none of them is available");
    ws.seal(&["decrypt", "-i", "missing.key", "sealed.yaml"])
        .fails()
        .stderr_has("missing.key");
    ws.write("bad.key", "AGE-SECRET-KEY-1BROKEN\n");
    ws.seal(&["decrypt", "-i", "bad.key", "sealed.yaml"])
        .fails()
        .stderr_has("bad.key:1")
        .stderr_has("not an age X25519 identity");
    let run = ws.seal(&["decrypt", "sealed.yaml"]);
    assert_eq!(
        run.output.status.code(),
        Some(2),
        "a missing -i is a usage error"
    );
}

#[test]
fn decrypt_refuses_tampered_truncated_and_moved_items() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write(
        "s.yaml",
        secret("prod", "db", &[("password", SENTINEL), ("other", "x")]),
    );
    let sealed = ws.seal(&["encrypt", "-r", &r, "s.yaml"]).ok().stdout();
    let original = item(&sealed, "password");

    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut bytes = engine.decode(&original).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    ws.write(
        "tampered.yaml",
        sealed.replace(&original, &engine.encode(&bytes)),
    );
    ws.seal(&["decrypt", "-i", "id.key", "tampered.yaml"])
        .fails()
        .stderr_has("item \"password\"")
        .stderr_has("integrity check failed");

    let truncated = engine.encode(&engine.decode(&original).unwrap()[..60]);
    ws.write("truncated.yaml", sealed.replace(&original, &truncated));
    ws.seal(&["decrypt", "-i", "id.key", "truncated.yaml"])
        .fails()
        .stderr_has("truncated");

    ws.write(
        "badb64.yaml",
        sealed.replace(&original, "not~base64~at~all"),
    );
    ws.seal(&["decrypt", "-i", "id.key", "badb64.yaml"])
        .fails()
        .stderr_has("not valid base64");

    ws.write(
        "moved-ns.yaml",
        sealed.replace("namespace: prod", "namespace: dev"),
    );
    ws.seal(&["decrypt", "-i", "id.key", "moved-ns.yaml"])
        .fails()
        .stderr_has("sealed for prod/db")
        .stderr_has("found at dev/db");

    ws.write("renamed.yaml", sealed.replace("name: db", "name: web"));
    ws.seal(&["decrypt", "-i", "id.key", "renamed.yaml"])
        .fails()
        .stderr_has("found at prod/web");

    let other = item(&sealed, "other");
    ws.write("swapped.yaml", sealed.replace(&other, &original));
    ws.seal(&["decrypt", "-i", "id.key", "swapped.yaml"])
        .fails()
        .stderr_has("key \"other\"");

    let scope_changed = sealed.replace("scope: strict", "scope: cluster-wide");
    ws.write("rescoped.yaml", scope_changed);
    ws.seal(&["decrypt", "-i", "id.key", "rescoped.yaml"])
        .fails()
        .stderr_has("scope");
}

#[test]
fn decrypt_output_file_is_private_and_absent_on_failure() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.keygen("other.key");
    ws.write("s.yaml", secret("n", "s", &[("k", "v")]));
    ws.seal(&["encrypt", "-r", &r, "s.yaml", "-o", "sealed.yaml"])
        .ok();
    ws.seal(&["decrypt", "-i", "id.key", "sealed.yaml", "-o", "plain.yaml"])
        .ok();
    let mode = std::fs::metadata(ws.path("plain.yaml"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    ws.seal(&[
        "decrypt",
        "-i",
        "other.key",
        "sealed.yaml",
        "-o",
        "plain2.yaml",
    ])
    .fails();
    assert!(!exists(&ws.path("plain2.yaml")));
}
