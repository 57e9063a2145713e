//! `seal import bitnami` against files sealed by kubesealpy (PyPI), an implementation of the
//! sealed-secrets format written independently of seal: the committed vectors in
//! cli/tests/bitnami/vectors, and fresh ones made on every run by make_vectors.py.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::*;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bitnami/vectors")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A workspace with keys.yaml, expected.json and repo/ (the refusals in repo/refused/).
fn workspace_with(vectors: &Path) -> Workspace {
    let ws = Workspace::new();
    copy_tree(vectors, ws.dir.path());
    ws
}

fn docs(text: &str) -> Vec<Value> {
    seal_shared::yaml::from_multiple::<Value>(text)
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// The kubesealpy test values, recomputed (make_vectors.py's `value`): to look for them in
/// every file and output.
fn value(length: usize, seed: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut counter = 0;
    while out.len() < length {
        out.extend(Sha256::digest(format!("{seed}/{counter}").as_bytes()));
        counter += 1;
    }
    out.truncate(length);
    out
}

/// Every item of every converted file opens with seal's identity to exactly the value
/// kubesealpy sealed (checked by length and SHA-256).
fn assert_values_kept(ws: &Workspace) {
    let expected: BTreeMap<String, BTreeMap<String, BTreeMap<String, Value>>> =
        serde_json::from_str(&ws.read("expected.json")).unwrap();
    assert!(expected.len() >= 6);
    for (file, objects) in &expected {
        let path = format!("repo/{file}");
        let decrypted = ws.seal(&["decrypt", "-i", "id.key", &path]).ok().stdout();
        let secrets = docs(&decrypted);
        assert_eq!(secrets.len(), objects.len(), "{file}");
        for secret in &secrets {
            let ns = secret["metadata"]["namespace"].as_str().unwrap();
            let name = secret["metadata"]["name"].as_str().unwrap();
            let items = &objects[&format!("{ns}/{name}")];
            let data = secret["data"].as_object().unwrap();
            assert_eq!(data.len(), items.len(), "{file} {ns}/{name}");
            for (key, want) in items {
                let got = STANDARD.decode(data[key].as_str().unwrap()).unwrap();
                assert_eq!(got.len() as u64, want["length"].as_u64().unwrap());
                assert_eq!(
                    hex(&Sha256::digest(&got)),
                    want["sha256"].as_str().unwrap(),
                    "{file} {ns}/{name} {key}"
                );
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn import(ws: &Workspace, recipient: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "import",
        "bitnami",
        "--controller-keys",
        "keys.yaml",
        "-r",
        recipient,
    ];
    args.extend_from_slice(extra);
    ws.seal(&args)
}

fn converted_workspace(vectors: &Path) -> (Workspace, Run) {
    let ws = workspace_with(vectors);
    std::fs::remove_dir_all(ws.path("repo/refused")).unwrap();
    let r = ws.keygen("id.key");
    let run = import(&ws, &r, &["repo"]).ok();
    (ws, run)
}

#[test]
fn every_scope_both_keys_and_sizes_to_1_mib_keep_their_values() {
    let (ws, run) = converted_workspace(&vectors());
    run.stderr_has("converted 6 file(s) (7 SealedSecret(s)); skipped 0");
    assert_values_kept(&ws);
    for (file, scope) in [
        ("strict.yaml", "strict"),
        ("namespace-wide.yaml", "namespace-wide"),
        ("cluster-wide.yaml", "cluster-wide"),
    ] {
        let doc = &docs(&ws.read(&format!("repo/{file}")))[0];
        assert_eq!(doc["apiVersion"], "seal.dev/v1");
        assert_eq!(doc["spec"]["scope"], scope, "{file}");
        assert_eq!(
            doc["metadata"]["annotations"]["seal.dev/adopt-existing-secret"], "true",
            "{file}"
        );
        assert!(
            doc["metadata"]["annotations"]
                .as_object()
                .unwrap()
                .keys()
                .all(|k| !k.starts_with("sealedsecrets.bitnami.com/")),
            "{file}: Bitnami's scope annotation carried over"
        );
    }
    let strict = &docs(&ws.read("repo/strict.yaml"))[0];
    let template = &strict["spec"]["template"];
    assert_eq!(template["type"], "kubernetes.io/basic-auth");
    assert_eq!(template["immutable"], true);
    assert_eq!(template["metadata"]["labels"]["app"], "db");
    assert_eq!(template["metadata"]["annotations"]["team"], "storage");
}

#[test]
fn no_value_is_written_or_printed_in_the_clear() {
    let (ws, run) = converted_workspace(&vectors());
    let secrets = [value(24, "strict"), value(40, "ns"), value(64, "second")];
    let mut outputs = vec![run.stdout().into_bytes(), run.stderr().into_bytes()];
    let mut stack = vec![ws.dir.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().unwrap() != "id.key" {
                outputs.push(std::fs::read(&path).unwrap());
            }
        }
    }
    for secret in &secrets {
        let encoded = STANDARD.encode(secret);
        for out in &outputs {
            assert!(!contains(out, secret), "a value in the clear");
            assert!(!contains(out, encoded.as_bytes()), "a value in base64");
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn an_item_sealed_to_the_second_key_needs_it() {
    let ws = workspace_with(&vectors());
    let r = ws.keygen("id.key");
    // keys.yaml without its second Secret.
    let mut list = docs(&ws.read("keys.yaml")).remove(0);
    list["items"].as_array_mut().unwrap().truncate(1);
    ws.write("keys.yaml", list.to_string());
    let before = ws.read("repo/second-key.yaml");
    let run = import(&ws, &r, &["repo/second-key.yaml"]);
    assert_eq!(run.output.status.code(), Some(1), "{}", run.stderr());
    run.stderr_has("opens with none of the 1 controller key(s) for strict scope prod/rotated")
        .stderr_has("skipped 1 (1 no controller key opens an item)");
    assert_eq!(
        ws.read("repo/second-key.yaml"),
        before,
        "a refused file changed"
    );
    // With both keys it converts (the first is tried first and fails).
    copy_tree(&vectors(), ws.dir.path());
    import(&ws, &r, &["repo/second-key.yaml"]).ok();
}

#[test]
fn damaged_foreign_misplaced_templated_and_legacy_files_are_refused_and_left_alone() {
    let ws = workspace_with(&vectors());
    let r = ws.keygen("id.key");
    for (file, why, kind) in [
        ("tampered.yaml", "item \"v\" is damaged", "1 damaged items"),
        (
            "wrong-key.yaml",
            "opens with none of the 2 controller key(s)",
            "1 no controller key opens an item",
        ),
        (
            "wrong-namespace.yaml",
            "opens with none of the 2 controller key(s) for strict scope staging/db",
            "1 no controller key opens an item",
        ),
        (
            "template.yaml",
            "spec.template.data holds Go templates (dsn)",
            "1 Go templates in spec.template.data",
        ),
        ("legacy.yaml", "legacy spec.data form", "1 legacy spec.data"),
    ] {
        let path = format!("repo/refused/{file}");
        let before = ws.read(&path);
        let run = import(&ws, &r, &[&path]);
        assert_eq!(
            run.output.status.code(),
            Some(1),
            "{file}: {}",
            run.stderr()
        );
        let run = run
            .stderr_has(&format!("seal: skipped {path}: "))
            .stderr_has(why)
            .stderr_has(&format!("skipped 1 ({kind})"))
            .stderr_lacks("panicked");
        let stderr = run.stderr();
        let last: Vec<&str> = stderr.lines().rev().take(2).collect();
        assert!(last[1].starts_with("seal: error: ") && last[0].starts_with("  hint: "));
        assert_eq!(ws.read(&path), before, "{file} changed");
    }
}

#[test]
fn dry_run_writes_nothing_and_suffix_writes_beside() {
    let ws = workspace_with(&vectors());
    std::fs::remove_dir_all(ws.path("repo/refused")).unwrap();
    let r = ws.keygen("id.key");
    let before = ws.read("repo/strict.yaml");
    import(&ws, &r, &["--dry-run", "repo"])
        .ok()
        .stderr_has("would convert 6 file(s)");
    assert_eq!(ws.read("repo/strict.yaml"), before);
    assert!(!ws.path("repo/strict.seal.yaml").exists());

    import(&ws, &r, &["--suffix", ".seal", "repo/strict.yaml"])
        .ok()
        .stderr_has("repo/strict.yaml -> repo/strict.seal.yaml");
    assert_eq!(ws.read("repo/strict.yaml"), before);
    assert_eq!(
        docs(&ws.read("repo/strict.seal.yaml"))[0]["kind"],
        "SealedSecret"
    );
    assert_eq!(
        docs(&ws.read("repo/strict.seal.yaml"))[0]["apiVersion"],
        "seal.dev/v1"
    );
}

#[test]
fn recipients_come_from_the_files_seal_yaml_rule_and_never_a_cluster() {
    let ws = workspace_with(&vectors());
    std::fs::remove_dir_all(ws.path("repo/refused")).unwrap();
    let prod = ws.keygen("prod.key");
    let dev = ws.keygen("dev.key");
    ws.write(
        "repo/.seal.yaml",
        format!("rules:\n  - path: ^nested/\n    recipients: [{dev}]\n  - recipients: [{prod}]\n"),
    );
    let run = ws
        .seal(&[
            "import",
            "bitnami",
            "--controller-keys",
            "keys.yaml",
            "repo",
        ])
        .ok();
    run.stderr_has("rules[0] of").stderr_has("rules[1] of");
    ws.seal(&["decrypt", "-i", "dev.key", "repo/nested/two.yaml"])
        .ok();
    ws.seal(&["decrypt", "-i", "prod.key", "repo/strict.yaml"])
        .ok();
    ws.seal(&["decrypt", "-i", "prod.key", "repo/nested/two.yaml"])
        .fails();

    // Without -r/-R or a .seal.yaml, nothing is asked of a cluster and nothing changes.
    let bare = workspace_with(&vectors());
    let before = bare.read("repo/strict.yaml");
    let run = bare.seal(&[
        "import",
        "bitnami",
        "--controller-keys",
        "keys.yaml",
        "repo/strict.yaml",
    ]);
    assert_eq!(run.output.status.code(), Some(1));
    run.stderr_has("no recipients given (-r/-R) and no .seal.yaml found");
    assert_eq!(bare.read("repo/strict.yaml"), before);
}

#[test]
fn a_symlinked_file_is_rewritten_through_its_link() {
    let ws = workspace_with(&vectors());
    let r = ws.keygen("id.key");
    std::fs::create_dir_all(ws.path("linked")).unwrap();
    std::os::unix::fs::symlink(ws.path("repo/strict.yaml"), ws.path("linked/db.yaml")).unwrap();
    import(&ws, &r, &["linked/db.yaml"]).ok();
    assert!(
        std::fs::symlink_metadata(ws.path("linked/db.yaml"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        docs(&ws.read("repo/strict.yaml"))[0]["apiVersion"],
        "seal.dev/v1"
    );
}

#[test]
fn a_keys_file_that_is_not_keys_is_refused_without_quoting_it() {
    let ws = workspace_with(&vectors());
    let r = ws.keygen("id.key");
    ws.write(
        "keys.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: k}\ndata:\n  tls.key: c2VudGluZWwtOWYzYzJhN2UtbmV2ZXItcHJpbnQtbWU=\n",
    );
    import(&ws, &r, &["repo/strict.yaml"])
        .fails()
        .stderr_has("Secret k: tls.key is not a PEM RSA private key")
        .stderr_lacks("c2VudGluZWw");
}

/// Fresh vectors from kubesealpy on every run, so the committed ones cannot drift into
/// something only seal reads. The interpreter comes from `cli/tests/bitnami/tools`
/// (test.sh runs it); a missing one fails, never skips.
#[test]
fn fresh_kubesealpy_vectors_convert_too() {
    let python = std::env::var_os("SEAL_KUBESEALPY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let has = Command::new(&python)
        .args(["-c", "import kubesealpy, yaml, cryptography"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has,
        "kubesealpy (PyPI) is not available to {}; run: eval \"$(cli/tests/bitnami/tools)\" (./test.sh does)",
        python.display()
    );
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bitnami/make_vectors.py"))
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success(), "make_vectors.py failed");
    let (ws, run) = converted_workspace(out.path());
    run.stderr_has("converted 6 file(s) (7 SealedSecret(s)); skipped 0");
    assert_values_kept(&ws);
}

#[test]
fn a_file_without_namespace_takes_the_one_given_and_only_then() {
    let ws = workspace_with(&vectors());
    let r = ws.keygen("id.key");
    let text: String = ws
        .read("repo/second-key.yaml")
        .lines()
        .filter(|l| l.trim() != "namespace: prod")
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!text.contains("namespace:"));
    ws.write("repo/second-key.yaml", &text);
    let run = import(&ws, &r, &["repo/second-key.yaml"]);
    assert_eq!(run.output.status.code(), Some(1));
    run.stderr_has("has no metadata.namespace, which its strict scope binds its items to")
        .stderr_has("pass -n NAMESPACE");
    // Sealed for prod/rotated: another namespace does not open it, prod does.
    import(&ws, &r, &["-n", "staging", "repo/second-key.yaml"])
        .stderr_has("for strict scope staging/rotated");
    import(&ws, &r, &["-n", "prod", "repo/second-key.yaml"]).ok();
    assert_eq!(
        docs(&ws.read("repo/second-key.yaml"))[0]["metadata"]["namespace"],
        "prod"
    );
    import(&ws, &r, &["-n", "Not_A_Namespace", "repo/strict.yaml"])
        .fails()
        .stderr_has("-n/--namespace");
}
