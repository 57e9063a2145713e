//! `seal encrypt --from-literal/--from-file` and `--raw`: sealing without a plaintext manifest.

use crate::support::*;

#[test]
fn literals_and_files_seal_a_secret_like_kubectl_create_secret_generic() {
    let ws = Workspace::new();
    let recipient = ws.keygen("id.key");
    ws.write("pw.txt", SENTINEL);
    ws.write("dir/tls.crt", b"\x00\x01binary\xff");
    let run = ws
        .seal(&[
            "encrypt",
            "-r",
            &recipient,
            "--name",
            "db",
            "-n",
            "prod",
            "--from-file",
            "password=pw.txt",
            "--from-file",
            "dir/tls.crt",
            "--from-literal",
            "user=admin=x",
            "--type",
            "kubernetes.io/basic-auth",
        ])
        .ok();
    assert!(!run.stdout().contains(SENTINEL) && !run.stderr().contains(SENTINEL));
    ws.write("db.sealed.yaml", run.stdout());
    let plain = ws
        .seal(&["decrypt", "-i", "id.key", "db.sealed.yaml"])
        .ok()
        .stdout();
    let b64 = |v: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, v);
    assert!(plain.contains("name: db\n  namespace: prod\n"), "{plain}");
    assert!(plain.contains("type: kubernetes.io/basic-auth"), "{plain}");
    assert!(
        plain.contains(&format!("password: {}", b64(SENTINEL.as_bytes()))),
        "{plain}"
    );
    assert!(
        plain.contains(&format!("tls.crt: {}", b64(b"\x00\x01binary\xff"))),
        "{plain}"
    );
    // Split at the first `=`: the value may hold more.
    assert!(
        plain.contains(&format!("user: {}", b64(b"admin=x"))),
        "{plain}"
    );
}

#[test]
fn literal_mistakes_are_refused_without_echoing_the_value() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    let no_equals = format!("k{SENTINEL}");
    ws.seal(&[
        "encrypt",
        "-r",
        &r,
        "--name",
        "db",
        "-n",
        "p",
        "--from-literal",
        &no_equals,
    ])
    .fails()
    .stderr_has("expected KEY=VALUE");
    let twice = format!("k={SENTINEL}");
    ws.seal(&[
        "encrypt",
        "-r",
        &r,
        "--name",
        "db",
        "-n",
        "p",
        "--from-literal",
        &twice,
        "--from-literal",
        &twice,
    ])
    .fails()
    .stderr_has("given twice");
    ws.seal(&["encrypt", "-r", &r, "-n", "p", "--from-literal", &twice])
        .fails()
        .stderr_has("need the Secret's name");
    let bad_key = format!("a/b={SENTINEL}");
    ws.seal(&[
        "encrypt",
        "-r",
        &r,
        "--name",
        "db",
        "-n",
        "p",
        "--from-literal",
        &bad_key,
    ])
    .fails();
    ws.seal(&[
        "encrypt",
        "-r",
        &r,
        "--name",
        "db",
        "-n",
        "p",
        "--from-file",
        "k=missing.txt",
    ])
    .fails()
    .stderr_has("--from-file");
    ws.write("s.yaml", secret("p", "db", &[("k", "v")]));
    ws.seal(&["encrypt", "-r", &r, "--type", "Opaque", "s.yaml"])
        .fails();
    ws.seal(&["encrypt", "-r", &r, "--from-literal", &twice, "s.yaml"])
        .usage_error();
}

#[test]
fn raw_seals_stdin_for_one_key_and_prints_just_the_item() {
    let ws = Workspace::new();
    let recipient = ws.keygen("id.key");
    let run = ws
        .seal_with_stdin(
            &[
                "encrypt", "-r", &recipient, "--raw", "--name", "db", "-n", "prod", "--key",
                "password",
            ],
            Some(SENTINEL.as_bytes()),
        )
        .ok();
    let item = run.stdout();
    assert_eq!(item.lines().count(), 1, "{item}");
    assert!(!run.stderr().contains("newline"), "{}", run.stderr());
    // It drops into a SealedSecret for that place and opens there.
    ws.write(
        "db.sealed.yaml",
        format!(
            "apiVersion: seal.dev/v1\nkind: SealedSecret\nmetadata:\n  name: db\n  namespace: prod\nspec:\n  encryptedData:\n    password: {item}"
        ),
    );
    let plain = ws
        .seal(&["decrypt", "-i", "id.key", "db.sealed.yaml"])
        .ok()
        .stdout();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, SENTINEL);
    assert!(plain.contains(&format!("password: {b64}")), "{plain}");
    // Bound to its name: in another Secret it is refused.
    ws.write(
        "other.sealed.yaml",
        ws.read("db.sealed.yaml").replace("name: db", "name: other"),
    );
    ws.seal(&["decrypt", "-i", "id.key", "other.sealed.yaml"])
        .fails();

    // A trailing newline is sealed, and said.
    let run = ws
        .seal_with_stdin(
            &[
                "encrypt",
                "-r",
                &recipient,
                "--raw",
                "-n",
                "prod",
                "--key",
                "k",
                "--scope",
                "namespace-wide",
            ],
            Some(b"value\n"),
        )
        .ok();
    assert!(
        run.stderr().contains("ends with a newline"),
        "{}",
        run.stderr()
    );
    ws.seal_with_stdin(
        &[
            "encrypt", "-r", &recipient, "--raw", "-n", "prod", "--key", "k",
        ],
        Some(b"v"),
    )
    .fails()
    .stderr_has("--name");
    ws.seal(&[
        "encrypt", "-r", &recipient, "--raw", "--name", "db", "-n", "prod",
    ])
    .usage_error();
}
