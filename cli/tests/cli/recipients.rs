//! Where recipients come from: `.seal.yaml` rules for files, stdin and merge targets, and
//! refusals instead of sealing to a key that cannot open the result where it is deployed.

use crate::support::*;

/// The key id seal prints for a recipient.
pub fn id(recipient: &str) -> String {
    recipient
        .parse::<seal_shared::SealRecipient>()
        .unwrap()
        .id
        .to_string()
}

/// A refusal in the documented form ([`Run::fails`]), each needle somewhere in it.
pub fn refusal(run: Run, needles: &[&str]) -> String {
    let stderr = run.fails().stderr();
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
    stderr
}

/// A repository whose `.seal.yaml` sends `clusters/prod/` to the prod key and every other
/// file to the dev key.
fn prod_and_dev() -> (Workspace, String, String) {
    let ws = Workspace::new();
    let prod = ws.keygen("prod.key");
    let dev = ws.keygen("dev.key");
    ws.write(
        ".seal.yaml",
        format!(
            "rules:\n  - path: '^clusters/prod/'\n    recipients: ['{prod}']\n  - recipients: ['{dev}']\n"
        ),
    );
    (ws, prod, dev)
}

fn opens(ws: &Workspace, key: &str, file: &str) -> bool {
    ws.seal(&["decrypt", "-i", key, file])
        .output
        .status
        .success()
}

#[test]
fn merge_follows_the_targets_rule_not_the_inputs_path() {
    let (ws, prod, _) = prod_and_dev();
    ws.write(
        "clusters/prod/db.yaml",
        secret("prod", "db", &[("user", "app")]),
    );
    ws.seal(&[
        "encrypt",
        "clusters/prod/db.yaml",
        "-o",
        "clusters/prod/db.sealed.yaml",
    ])
    .ok();
    // The new value sits at the repository root, where the dev rule would apply.
    ws.write(
        "new-password.yaml",
        secret("prod", "db", &[("password", SENTINEL)]),
    );
    let run = ws
        .seal(&[
            "encrypt",
            "--merge-into",
            "clusters/prod/db.sealed.yaml",
            "new-password.yaml",
        ])
        .ok();
    let stderr = run.stderr();
    assert!(
        stderr.contains(&format!("sealing to key {}", id(&prod)))
            && stderr.contains("rules[0]")
            && stderr.contains("clusters/prod/db.sealed.yaml"),
        "{stderr}"
    );
    let plain = ws
        .seal(&["decrypt", "-i", "prod.key", "clusters/prod/db.sealed.yaml"])
        .ok()
        .stdout();
    assert!(plain.contains("password: "), "{plain}");
    assert!(
        !opens(&ws, "dev.key", "clusters/prod/db.sealed.yaml"),
        "the merged item opens with the dev key"
    );
}

#[test]
fn merge_refuses_keys_that_differ_from_the_existing_items() {
    let (ws, prod, dev) = prod_and_dev();
    ws.write(
        "clusters/prod/db.yaml",
        secret("prod", "db", &[("user", "app")]),
    );
    ws.seal(&[
        "encrypt",
        "clusters/prod/db.yaml",
        "-o",
        "clusters/prod/db.sealed.yaml",
    ])
    .ok();
    let before = ws.read("clusters/prod/db.sealed.yaml");
    ws.write("new.yaml", secret("prod", "db", &[("password", SENTINEL)]));
    let merge = ["--merge-into", "clusters/prod/db.sealed.yaml", "new.yaml"];

    // The rule now names another key than the one the file's items are sealed to.
    let rotated = ws.keygen("rotated.key");
    ws.write(
        ".seal.yaml",
        format!("rules:\n  - path: '^clusters/prod/'\n    recipients: ['{rotated}']\n"),
    );
    let mut args = vec!["encrypt"];
    args.extend_from_slice(&merge);
    refusal(
        ws.seal(&args),
        &[
            "clusters/prod/db.sealed.yaml",
            "SealedSecret prod/db",
            &id(&prod),
            &id(&rotated),
            "rules[0]",
            "--override-recipients",
        ],
    );

    // So do explicit recipients.
    let mut args = vec!["encrypt", "-r", &dev];
    args.extend_from_slice(&merge);
    refusal(ws.seal(&args), &[&id(&prod), &id(&dev), "-r/-R"]);
    assert_eq!(
        ws.read("clusters/prod/db.sealed.yaml"),
        before,
        "a refused merge changed the file"
    );

    // Overriding is explicit and said on stderr.
    let mut args = vec!["encrypt", "-r", &dev, "--override-recipients"];
    args.extend_from_slice(&merge);
    let run = ws.seal(&args).ok();
    assert!(
        run.stderr().contains("--override-recipients"),
        "{}",
        run.stderr()
    );
    assert_ne!(ws.read("clusters/prod/db.sealed.yaml"), before);

    // Now the items disagree among themselves; both sets are named.
    let mut args = vec!["encrypt", "-r", &dev];
    args.extend_from_slice(&merge);
    let stderr = refusal(ws.seal(&args), &[&id(&prod), &id(&dev)]);
    assert!(
        stderr.contains("(item user)") && stderr.contains("(item password)"),
        "{stderr}"
    );

    // Even the keys of some of the items will not do while the items disagree.
    let mut args = vec!["encrypt", "-r", &prod];
    ws.write("user.yaml", secret("prod", "db", &[("user", "other")]));
    args.extend_from_slice(&["--merge-into", "clusters/prod/db.sealed.yaml", "user.yaml"]);
    refusal(ws.seal(&args), &[&id(&dev)]);
}

#[test]
fn stdin_uses_the_seal_yaml_of_the_working_directory() {
    let (ws, _, _) = prod_and_dev();
    let input = secret("prod", "db", &[("password", SENTINEL)]);

    // Rules with paths cannot be matched against stdin without a name for it.
    refusal(
        ws.seal_with_stdin(&["encrypt"], Some(input.as_bytes())),
        &[".seal.yaml", "rules[0]", "stdin", "--filename"],
    );

    let run = ws
        .seal_with_stdin(
            &["encrypt", "--filename", "clusters/prod/db.yaml"],
            Some(input.as_bytes()),
        )
        .ok();
    assert!(run.stderr().contains("rules[0]"), "{}", run.stderr());
    ws.write("from-stdin.yaml", run.stdout());
    assert!(opens(&ws, "prod.key", "from-stdin.yaml"));
    assert!(!opens(&ws, "dev.key", "from-stdin.yaml"));

    // --filename also overrides a file's own path.
    ws.write("elsewhere/db.yaml", &input);
    let out = ws
        .seal(&[
            "encrypt",
            "--filename",
            "clusters/prod/db.yaml",
            "elsewhere/db.yaml",
        ])
        .ok()
        .stdout();
    ws.write("overridden.yaml", out);
    assert!(opens(&ws, "prod.key", "overridden.yaml"));

    // A rule without a path applies to stdin as to every file.
    let only = ws.keygen("only.key");
    ws.write(
        ".seal.yaml",
        format!("rules:\n  - recipients: ['{only}']\n"),
    );
    let out = ws
        .seal_with_stdin(&["encrypt"], Some(input.as_bytes()))
        .ok()
        .stdout();
    ws.write("catch-all.yaml", out);
    assert!(opens(&ws, "only.key", "catch-all.yaml"));
}

#[test]
fn the_announcement_of_a_rule_escapes_the_paths_it_names() {
    // A directory name is input too: one holding ESC must not colour the terminal.
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    let dir = "repo\u{1b}[31m";
    ws.write(
        &format!("{dir}/.seal.yaml"),
        format!("rules:\n  - recipients: ['{r}']\n"),
    );
    ws.write(
        &format!("{dir}/s.yaml"),
        secret("prod", "db", &[("k", "v")]),
    );
    let run = ws
        .seal(&["encrypt", &format!("{dir}/s.yaml"), "-o", "out.yaml"])
        .ok();
    let stderr = run.stderr();
    assert!(
        stderr.starts_with("seal: sealing to key ")
            && stderr.contains("repo\\u{1b}[31m/.seal.yaml"),
        "{stderr:?}"
    );
    assert!(
        !stderr.chars().any(|c| c.is_control() && c != '\n'),
        "raw control character in {stderr:?}"
    );
}

#[test]
fn a_file_no_rule_matches_is_refused_not_sealed_to_another_key() {
    let ws = Workspace::new();
    let prod = ws.keygen("prod.key");
    ws.write(
        ".seal.yaml",
        format!("rules:\n  - path: '^clusters/prod/'\n    recipients: ['{prod}']\n"),
    );
    ws.write(
        "staging/db.yaml",
        secret("staging", "db", &[("k", SENTINEL)]),
    );
    refusal(
        ws.seal(&["encrypt", "staging/db.yaml", "-o", "out.yaml"]),
        &[".seal.yaml", "no rule matches \"staging/db.yaml\"", "-r/-R"],
    );
    assert!(!exists(&ws.path("out.yaml")));
}

#[test]
fn seal_yaml_is_checked_whole_when_read() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write("s.yaml", secret("n", "s", &[("k", SENTINEL)]));
    ws.write(".seal.yaml", "");
    let config = ws.path(".seal.yaml").canonicalize().unwrap();
    let config = config.display().to_string();
    ws.write("bad.txt", "# a comment\nnot-a-key\n");
    ws.write("empty.txt", "# nothing yet\n");
    // The first rule always matches; every mistake is in a later one, or beside the rules.
    let first = format!("rules:\n  - recipients: ['{r}']\n");
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            format!("{first}---\nrules:\n  - recipients: ['{r}']\n"),
            vec!["2 YAML documents", "---"],
        ),
        (
            format!("{first}  - path: '(unclosed'\n    recipients: ['{r}']\n"),
            vec![
                "rules[1]",
                "not a valid regular expression",
                "unclosed group",
            ],
        ),
        (
            format!("{first}  - path: '^x/'\n    recipients: ['age1notakey']\n"),
            vec!["rules[1]", "recipients[0]", "not a valid age recipient"],
        ),
        (
            format!("{first}  - path: '^x/'\n    recipientsFile: missing.txt\n"),
            vec!["rules[1]", "recipientsFile", "missing.txt"],
        ),
        (
            format!("{first}  - path: '^x/'\n    recipientsFile: bad.txt\n"),
            vec!["rules[1]", "bad.txt:2", "not an age recipient"],
        ),
        (
            format!("{first}  - path: '^x/'\n    recipientsFile: empty.txt\n"),
            vec!["rules[1]", "empty.txt: lists no recipients"],
        ),
        (
            format!("{first}  - path: '^x/'\n    recipient: ['{r}']\n"),
            vec![
                "rules[1]",
                "unknown field \"recipient\"",
                "did you mean recipients?",
            ],
        ),
        (
            format!("{first}  - path: '^x/'\n    recipients_file: keys.txt\n"),
            vec!["rules[1]", "did you mean recipientsFile?"],
        ),
        (
            format!("{first}rule: []\n"),
            vec!["unknown field \"rule\"", "did you mean rules?"],
        ),
        (
            format!("{first}  - path: '^x/'\n"),
            vec!["rules[1]", "lists no recipients"],
        ),
        (
            format!("{first}  - path: '^x/'\n    recipients: ['{r}']\n    scope: global\n"),
            vec!["rules[1]", "unknown scope \"global\""],
        ),
        (
            format!("{first}  - path: 12\n    recipients: ['{r}']\n"),
            vec!["rules[1]", "path must be a string"],
        ),
        (
            format!("{first}  - path: '^x/'\n    recipients: '{r}'\n"),
            vec!["rules[1]", "recipients must be a list"],
        ),
        ("rules: {}\n".to_owned(), vec!["rules must be a list"]),
    ];
    for (text, needles) in cases {
        ws.write(".seal.yaml", &text);
        let mut all = vec![config.as_str()];
        all.extend(needles);
        refusal(ws.seal(&["encrypt", "s.yaml", "-o", "out.yaml"]), &all);
        assert!(!exists(&ws.path("out.yaml")), "output for {text:?}");
    }
    // Explicit recipients do not read .seal.yaml at all.
    ws.seal(&["encrypt", "-r", &r, "s.yaml"]).ok();
}
