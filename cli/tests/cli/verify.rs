//! `seal verify`: every class of finding, each output format, exit codes, ignore files.

use seal_shared::keys::SealRecipient;

use crate::support::*;

fn key_id(recipient: &str) -> String {
    recipient.parse::<SealRecipient>().unwrap().id.to_string()
}

/// A workspace with two keys and `db.sealed.yaml` (prod/db: password, user) sealed to the
/// first. Returns the workspace and both recipients.
fn sealed_repo() -> (Workspace, String, String) {
    let ws = Workspace::new();
    let first = ws.keygen("first.key");
    let second = ws.keygen("second.key");
    ws.write(
        "plain.yaml",
        secret("prod", "db", &[("password", SENTINEL), ("user", "admin")]),
    );
    let sealed = ws
        .seal(&["encrypt", "-r", &first, "plain.yaml"])
        .ok()
        .stdout();
    std::fs::remove_file(ws.path("plain.yaml")).unwrap();
    ws.write("db.sealed.yaml", sealed);
    (ws, first, second)
}

/// The 1-based line of the first line of `name` that contains `needle`.
fn line_of(ws: &Workspace, name: &str, needle: &str) -> usize {
    ws.read(name)
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} in {name}"))
        + 1
}

fn keys_json(entries: &[(&str, &str)]) -> String {
    let list: Vec<serde_json::Value> = entries
        .iter()
        .map(|(recipient, state)| {
            serde_json::json!({
                "id": key_id(recipient),
                "recipient": recipient,
                "created": "2026-01-01T00:00:00Z",
                "state": state,
            })
        })
        .collect();
    serde_json::to_string(&list).unwrap()
}

#[test]
fn a_clean_repository_passes_with_exit_0_and_no_findings() {
    let (ws, first, _) = sealed_repo();
    ws.write(".seal.yaml", format!("rules:\n  - recipients: [{first}]\n"));
    let run = ws.seal(&["verify"]).ok();
    assert_eq!(run.stdout(), "");
    assert!(
        run.stderr()
            .contains("1 file(s) checked: 0 error(s), 0 warning(s)"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_plaintext_secret_is_an_error_at_its_line_and_its_value_is_never_printed() {
    let ws = Workspace::new();
    ws.write(
        "apps/leak.yaml",
        format!(
            "# a comment\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\n---\n{}",
            secret("prod", "db", &[("password", SENTINEL)])
        ),
    );
    let run = ws.seal(&["verify"]).fails();
    let line = line_of(&ws, "apps/leak.yaml", "stringData");
    assert_eq!(
        run.stdout(),
        format!(
            "apps/leak.yaml:{line}: error: plaintext Secret prod/db: its values are in the clear under stringData; seal it with `seal encrypt` and commit only the SealedSecret\n"
        )
    );
    assert!(
        run.stderr().contains("key ids not checked"),
        "{}",
        run.stderr()
    );
    assert!(!run.stdout().contains(SENTINEL));
    // A Secret with no values holds nothing to leak; a ConfigMap is no Secret.
    ws.write(
        "apps/leak.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: empty\ndata: {}\n",
    );
    ws.seal(&["verify"]).ok();
}

#[test]
fn a_private_key_in_a_manifest_is_an_error_and_is_not_shown() {
    let ws = Workspace::new();
    let (_, key) = ws.keygen_with_key("id.key");
    std::fs::remove_file(ws.path("id.key")).unwrap();
    ws.write("values.yaml", format!("app:\n  name: x\n  key: {key}\n"));
    let out = ws.seal(&["verify"]).fails().stdout();
    assert!(
        out.starts_with("values.yaml:3: error: holds an age private key"),
        "{out}"
    );
    assert!(!out.contains(&key));
}

#[test]
fn secrets_inside_a_list_are_found() {
    let ws = Workspace::new();
    ws.write(
        "list.json",
        r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"},"data":{"k":"dg=="}}]}"#,
    );
    let run = ws.seal(&["verify"]).fails();
    assert!(
        run.stdout()
            .starts_with("list.json:1: error: plaintext Secret x"),
        "{}",
        run.stdout()
    );
}

#[test]
fn an_item_moved_to_another_name_is_a_binding_error_at_the_items_line() {
    let (ws, first, _) = sealed_repo();
    ws.write(".seal.yaml", format!("rules:\n  - recipients: [{first}]\n"));
    let moved = ws.read("db.sealed.yaml").replace("name: db", "name: other");
    ws.write("db.sealed.yaml", moved);
    let run = ws.seal(&["verify"]).fails();
    let line = line_of(&ws, "db.sealed.yaml", "password:");
    let out = run.stdout();
    assert!(
        out.contains(&format!(
            "db.sealed.yaml:{line}: error: SealedSecret prod/other: item \"password\": sealed for prod/db key \"password\" (strict), not for where it sits"
        )),
        "{out}"
    );
    assert_eq!(out.lines().count(), 2, "one finding per item: {out}");
}

#[test]
fn a_changed_scope_and_a_damaged_item_are_errors() {
    let (ws, _, _) = sealed_repo();
    let text = ws.read("db.sealed.yaml");
    ws.write(
        "scope.sealed.yaml",
        text.replace("scope: strict", "scope: namespace-wide"),
    );
    let password = item(&text, "password");
    ws.write(
        "damaged.sealed.yaml",
        text.replace(&password, "bm90IGFuIGFnZSBmaWxl"),
    );
    ws.write(
        "broken.sealed.yaml",
        "apiVersion: seal.dev/v1\nkind: SealedSecret\nmetadata:\n  name: x\nspec:\n  encryptedDta: {}\n",
    );
    ws.write(
        "notyaml.sealed.yaml",
        "apiVersion: seal.dev/v1\nkind: SealedSecret\nspec: [unclosed\n",
    );
    let out = ws.seal(&["verify"]).fails().stdout();
    let finding = |file: &str, text: &str| {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("{file}:")) && l.contains(text)),
            "no {text:?} for {file} in:\n{out}"
        );
    };
    finding(
        "scope.sealed.yaml",
        "sealed with scope strict but the SealedSecret declares namespace-wide",
    );
    finding(
        "damaged.sealed.yaml",
        "item \"password\": not a binary age file",
    );
    finding("broken.sealed.yaml:2", "SealedSecret x does not parse");
    finding("notyaml.sealed.yaml", "error: does not parse as YAML");
    assert!(
        !out.lines().any(|l| l.starts_with("db.sealed.yaml")),
        "{out}"
    );
}

#[test]
fn items_must_be_sealed_to_exactly_the_keys_of_their_seal_yaml_rule() {
    let (ws, first, second) = sealed_repo();
    let (id1, id2) = (key_id(&first), key_id(&second));
    ws.write(
        ".seal.yaml",
        format!("rules:\n  - path: '^prod/'\n    recipients: [{second}]\n  - recipients: [{first}, {second}]\n"),
    );
    let out = ws.seal(&["verify"]).fails().stdout();
    assert!(
        out.contains(&format!("item \"password\": not sealed to {id2}, but "))
            && out.contains("rules[1] names exactly "),
        "{out}"
    );
    // Sealed to a key the rule does not name: an error too.
    std::fs::create_dir(ws.path("prod")).unwrap();
    std::fs::rename(ws.path("db.sealed.yaml"), ws.path("prod/db.sealed.yaml")).unwrap();
    let out = ws.seal(&["verify"]).fails().stdout();
    assert!(
        out.contains(&format!(
            "not sealed to {id2} and sealed to {id1}, which it does not name"
        )) && out.contains("rules[0]"),
        "{out}"
    );
    // No rule for the file: encrypt would have refused, so verify does.
    ws.write(
        ".seal.yaml",
        format!("rules:\n  - path: '^dev/'\n    recipients: [{first}]\n"),
    );
    let out = ws.seal(&["verify"]).fails().stdout();
    assert!(
        out.contains("prod/db.sealed.yaml:2: error: SealedSecret prod/db: ")
            && out.contains("no rule matches"),
        "{out}"
    );
}

#[test]
fn keys_from_the_cluster_list_old_keys_warn_and_fail_with_strict() {
    let (ws, first, second) = sealed_repo();
    ws.write(
        "keys.json",
        keys_json(&[(&first, "decrypt-only"), (&second, "active")]),
    );
    let run = ws.seal(&["verify", "--keys", "keys.json"]).ok();
    assert!(
        run.stdout()
            .contains("warning: SealedSecret prod/db: item \"password\": sealed only to keys that no longer seal"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stderr().contains("0 error(s), 2 warning(s)"),
        "{}",
        run.stderr()
    );
    let out = ws
        .seal(&["verify", "--keys", "keys.json", "--strict"])
        .fails()
        .stdout();
    assert!(
        out.contains("error: SealedSecret prod/db: item \"password\": sealed only"),
        "{out}"
    );

    // The same list in the GET /v1/keys shape, naming only the second key.
    ws.write(
        "keys.json",
        format!(
            r#"{{"recipient":"{second}","keys":{}}}"#,
            keys_json(&[(&second, "active")])
        ),
    );
    let out = ws.seal(&["verify", "--keys", "keys.json"]).fails().stdout();
    assert!(
        out.contains(&format!("sealed to {}, not in --keys", key_id(&first)))
            && out.contains("sealed to none of the keys in --keys"),
        "{out}"
    );
}

#[test]
fn an_item_sealed_only_to_a_retired_key_is_an_error() {
    let (ws, first, second) = sealed_repo();
    let id1 = key_id(&first);
    ws.write(
        "keys.json",
        keys_json(&[(&first, "retired"), (&second, "active")]),
    );
    let out = ws.seal(&["verify", "--keys", "keys.json"]).fails().stdout();
    assert!(
        out.contains(&format!(
            "error: SealedSecret prod/db: item \"password\": sealed only to retired key(s) {id1}: the cluster can no longer open it"
        )) && out.contains(&format!("seal keys unretire {id1}")),
        "{out}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let (ws, first, _) = sealed_repo();
    ws.seal(&["verify", "no-such-dir"]).usage_error();
    ws.write("keys.json", "{not json");
    ws.seal(&["verify", "--keys", "keys.json"])
        .usage_error()
        .stderr_has("keys.json: not valid JSON (line 1");
    // An id that is not its recipient's: the list was edited.
    ws.write(
        "keys.json",
        format!(
            r#"[{{"id":"0000000000000000","recipient":"{first}","created":"x","state":"active"}}]"#
        ),
    );
    ws.seal(&["verify", "--keys", "keys.json"])
        .usage_error()
        .stderr_has("is not the id of its recipient");
    ws.write(".seal.yaml", "rules: 3\n");
    ws.seal(&["verify"]).usage_error();
    ws.seal(&["verify", "--format", "xml"]).usage_error();
}

#[test]
fn github_and_json_formats() {
    let ws = Workspace::new();
    ws.write("a,b.yaml", secret("prod", "db", &[("k", SENTINEL)]));
    let out = ws.seal(&["verify", "--format", "github"]).fails().stdout();
    let line = line_of(&ws, "a,b.yaml", "stringData");
    assert_eq!(
        out,
        format!(
            "::error file=a%2Cb.yaml,line={line},title=seal verify::plaintext Secret prod/db: its values are in the clear under stringData; seal it with `seal encrypt` and commit only the SealedSecret\n"
        )
    );
    let out = ws.seal(&["verify", "--format", "json"]).fails().stdout();
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["files"], 1);
    assert_eq!(report["errors"], 1);
    assert_eq!(report["warnings"], 0);
    assert_eq!(report["findings"][0]["file"], "a,b.yaml");
    assert_eq!(report["findings"][0]["line"], line);
    assert_eq!(report["findings"][0]["severity"], "error");
    assert!(!out.contains(SENTINEL));
}

#[test]
fn ignored_files_are_skipped_and_templates_are_noted_not_failed() {
    let ws = Workspace::new();
    ws.write("build/leak.yaml", secret("prod", "db", &[("k", SENTINEL)]));
    ws.write(
        ".hidden/leak.yaml",
        secret("prod", "db", &[("k", SENTINEL)]),
    );
    ws.write(
        "chart/templates/secret.yaml",
        "{{- if .Values.x }}\napiVersion: v1\nkind: ConfigMap\n{{- end }}\n: [\n",
    );
    // Not ignored: the hidden directory is checked.
    let out = ws.seal(&["verify"]).fails().stdout();
    assert!(
        out.contains("build/leak.yaml:") && out.contains(".hidden/leak.yaml:"),
        "{out}"
    );
    ws.write(".gitignore", "build/\n.hidden/\n");
    let run = ws.seal(&["verify"]).ok();
    assert!(
        run.stdout().starts_with("chart/templates/secret.yaml:")
            && run.stdout().contains(": note: not YAML"),
        "{}",
        run.stdout()
    );
    // A file named on the command line is checked even when ignored.
    ws.seal(&["verify", "build/leak.yaml"]).fails();
}

#[test]
fn the_pre_commit_hook_runs_seal_verify_on_manifests() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../.pre-commit-hooks.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let hooks: Vec<serde_json::Value> = seal_shared::yaml::from_multiple::<Vec<_>>(&text)
        .unwrap()
        .remove(0);
    let hook = hooks
        .iter()
        .find(|h| h["id"] == "seal-verify")
        .expect("a seal-verify hook");
    assert_eq!(hook["entry"], "seal verify");
    assert_eq!(hook["language"], "system");
    let files = regex::Regex::new(hook["files"].as_str().unwrap()).unwrap();
    let exclude = regex::Regex::new(hook["exclude"].as_str().unwrap()).unwrap();
    for (path, checked) in [
        ("clusters/prod/db.sealed.yaml", true),
        ("a.yml", true),
        ("k.json", true),
        ("README.md", false),
        (".seal.yaml", false),
        ("sub/.seal.yaml", false),
    ] {
        assert_eq!(
            files.is_match(path) && !exclude.is_match(path),
            checked,
            "{path}"
        );
    }
}
