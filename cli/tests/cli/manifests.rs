//! What seal refuses to seal and what it leaves out: typos, empty Secrets, names Kubernetes
//! would refuse, control characters, kubectl's bookkeeping, values copied into metadata.

use crate::support::*;

fn with_key() -> (Workspace, String) {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    (ws, r)
}

#[test]
fn a_typo_in_a_field_name_is_refused_with_a_suggestion() {
    let (ws, r) = with_key();
    ws.write(
        "s.yaml",
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: prod}}\nstringdata:\n  password: {SENTINEL}\n"),
    );
    ws.seal(&["encrypt", "-r", &r, "s.yaml", "-o", "out.yaml"])
        .fails()
        .stderr_has("s.yaml: Secret prod/db (document 1, line 4): unknown field \"stringdata\"; did you mean stringData?");
    assert!(!ws.path("out.yaml").exists());
    ws.write(
        "s.yaml",
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: prod}}\nstringData:\n  user: admin\npassword: {SENTINEL}\n"),
    );
    ws.seal(&["encrypt", "-r", &r, "s.yaml"])
        .fails()
        .stderr_has("line 6): unknown field \"password\"; did you mean to indent it under stringData or data?");
    ws.write(
        "s.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\n  lables: {app: db}\nstringData: {k: v}\n",
    );
    ws.seal(&["encrypt", "-r", &r, "s.yaml"])
        .fails()
        .stderr_has("unknown field \"metadata.lables\"; did you mean labels?");
}

#[test]
fn a_secret_with_no_items_is_refused_unless_asked_for() {
    let (ws, r) = with_key();
    ws.write(
        "s.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\n",
    );
    ws.seal(&["encrypt", "-r", &r, "s.yaml"])
        .fails()
        .stderr_has("s.yaml: Secret prod/db: has no items")
        .stderr_has("--allow-empty");
    let out = ws
        .seal(&["encrypt", "-r", &r, "--allow-empty", "s.yaml"])
        .ok()
        .stdout();
    assert!(out.contains("encryptedData: {}"), "{out}");
}

#[test]
fn bare_nulls_are_refused_and_quoted_ones_sealed_literally() {
    let (ws, r) = with_key();
    for value in ["~", "null", ""] {
        ws.write(
            "s.yaml",
            format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: prod}}\nstringData:\n  password: {value}\n"),
        );
        ws.seal(&["encrypt", "-r", &r, "s.yaml"])
            .fails()
            .stderr_has("stringData.password is null")
            .stderr_has("quote it");
    }
    ws.write(
        "s.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: {a: '~', b: 'null'}\n",
    );
    ws.seal(&["encrypt", "-r", &r, "s.yaml", "-o", "sealed.yaml"])
        .ok();
    let plain = ws
        .seal(&["decrypt", "-i", "id.key", "sealed.yaml"])
        .ok()
        .stdout();
    // base64 of "~" and of "null"
    assert!(
        plain.contains("a: fg==") && plain.contains("b: bnVsbA=="),
        "{plain}"
    );
}

#[test]
fn names_from_every_source_follow_kubernetes_rules() {
    let (ws, r) = with_key();
    ws.write(
        "s.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {k: v}\n",
    );
    ws.write(
        "unnamed.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {namespace: prod}\nstringData: {k: v}\n",
    );
    for bad in [
        "a\nb",
        "",
        "../../x",
        "Not A Namespace",
        "a..b",
        "a.-b",
        "my.app",
    ] {
        ws.seal(&["encrypt", "-r", &r, "-n", bad, "s.yaml"])
            .fails()
            .stderr_has("-n/--namespace: namespace ")
            .stderr_has("is not valid");
    }
    for bad in ["a\nb", "../../x", "Not A Namespace", "a..b", "a.-b"] {
        ws.seal_with(
            &["encrypt", "-r", &r, "s.yaml"],
            &[("SEAL_NAMESPACE", bad)],
            None,
        )
        .fails()
        .stderr_has("SEAL_NAMESPACE: namespace ");
        ws.seal(&[
            "encrypt",
            "-r",
            &r,
            "-n",
            "prod",
            "--name",
            bad,
            "unnamed.yaml",
        ])
        .fails()
        .stderr_has("--name: name ");
        ws.write(
            "m.yaml",
            format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: {bad:?}, namespace: prod}}\nstringData: {{k: v}}\n"),
        );
        ws.seal(&["encrypt", "-r", &r, "m.yaml"])
            .fails()
            .stderr_has("metadata.name: name ");
    }
    // A dotted name is a valid Secret name but not a namespace.
    ws.seal(&[
        "encrypt",
        "-r",
        &r,
        "-n",
        "prod",
        "--name",
        "db.v1",
        "unnamed.yaml",
    ])
    .ok();
    for bad in ["..", "..x", "a/b", "a b"] {
        ws.write(
            "k.yaml",
            format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: prod}}\nstringData: {{{bad:?}: v}}\n"),
        );
        ws.seal(&["encrypt", "-r", &r, "k.yaml"])
            .fails()
            .stderr_has("stringData: key ");
    }
}

#[test]
fn control_characters_from_a_manifest_never_reach_the_terminal() {
    let (ws, r) = with_key();
    let forged = "a\\e[2K\\rseal: ok\\nb";
    let cases = [
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: \"{forged}\", namespace: prod}}\nstringData: {{k: v}}\n"
        ),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: \"{forged}\"}}\nstringData: {{k: v}}\n"
        ),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: prod}}\nstringData: {{\"{forged}\": v}}\n"
        ),
        format!("apiVersion: v1\nkind: \"{forged}\"\n"),
        format!("apiVersion: \"{forged}\"\nkind: Secret\n"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: prod}}\n\"{forged}\": x\n"
        ),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: prod}}\nstringData: {{\"{forged}\": x, \"{forged}\": y}}\n"
        ),
    ];
    for text in cases {
        ws.write("s.yaml", &text);
        // fails() asserts two lines and no raw control character.
        ws.seal(&["encrypt", "-r", &r, "s.yaml"])
            .fails()
            .stderr_has("\\u{1b}");
    }
    let name = "bad\u{1b}[31m\nseal: ok.yaml";
    ws.write(name, "not: [yaml");
    ws.seal(&["encrypt", "-r", &r, name])
        .fails()
        .stderr_has("bad\\u{1b}[31m\\nseal: ok.yaml");
}

#[test]
fn a_missing_api_version_is_named_as_such() {
    let (ws, r) = with_key();
    ws.write(
        "s.yaml",
        "kind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: {k: v}\n",
    );
    ws.seal(&["encrypt", "-r", &r, "s.yaml"])
        .fails()
        .stderr_has("document 1: it has kind Secret but no apiVersion")
        .stderr_lacks("not a Secret");
}

/// What `kubectl get secret db -o yaml` prints for a Secret created with `kubectl apply`.
fn kubectl_get_output() -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(SENTINEL);
    format!(
        r#"apiVersion: v1
data:
  password: {b64}
kind: Secret
metadata:
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: |
      {{"apiVersion":"v1","kind":"Secret","metadata":{{"annotations":{{}},"name":"db","namespace":"prod"}},"stringData":{{"password":"{SENTINEL}"}}}}
  creationTimestamp: "2024-05-01T10:00:00Z"
  labels:
    app: db
    seal.dev/managed-by: seal-operator
  managedFields:
  - apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1:
      f:data:
        .: {{}}
        f:password: {{}}
    manager: kubectl-client-side-apply
    operation: Update
    time: "2024-05-01T10:00:00Z"
  name: db
  namespace: prod
  ownerReferences:
  - apiVersion: seal.dev/v1
    kind: SealedSecret
    name: db
    uid: 5b0c1e2a-0000-4000-8000-000000000001
  resourceVersion: "1234"
  uid: 9d7e0c6b-0000-4000-8000-000000000002
type: Opaque
"#
    )
}

#[test]
fn kubectl_get_output_is_sealed_without_bookkeeping_or_plaintext() {
    let (ws, r) = with_key();
    let sealed = ws
        .seal_with_stdin(
            &["encrypt", "-r", &r],
            Some(kubectl_get_output().as_bytes()),
        )
        .ok()
        .stdout();
    assert!(
        !sealed.contains(SENTINEL),
        "plaintext in the template:\n{sealed}"
    );
    for bookkeeping in [
        "last-applied-configuration",
        "managedFields",
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "ownerReferences",
        "seal.dev/managed-by",
    ] {
        assert!(
            !sealed.contains(bookkeeping),
            "{bookkeeping} kept:\n{sealed}"
        );
    }
    assert!(
        sealed.contains("app: db") && sealed.contains("type: Opaque"),
        "{sealed}"
    );
}

#[test]
fn a_value_copied_into_a_label_or_annotation_is_refused() {
    let (ws, r) = with_key();
    ws.write(
        "s.yaml",
        format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\n  annotations:\n    note: 'the password is {SENTINEL}'\nstringData:\n  password: {SENTINEL}\n"),
    );
    ws.seal(&["encrypt", "-r", &r, "s.yaml", "-o", "out.yaml"])
        .fails()
        .stderr_has("the annotation \"note\" contains one of the values being sealed");
    assert!(!ws.path("out.yaml").exists());
}
