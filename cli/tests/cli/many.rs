//! `seal encrypt` over several files and directories: outputs beside their inputs, what a
//! directory walk takes and passes over, a failing file among good ones, refusals, and a
//! file of 10,000 Secrets.

use crate::support::*;

fn lines_of(run: &Run) -> Vec<String> {
    run.stderr().lines().map(str::to_owned).collect()
}

#[test]
fn files_and_a_directory_are_each_sealed_beside_their_input() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write("a.yaml", secret("prod", "a", &[("k", SENTINEL)]));
    ws.write(
        "b.json",
        r#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b", "namespace": "prod"}, "stringData": {"k": "vb"}}"#,
    );
    ws.write(
        "dir/c.yaml",
        secret("prod", "c", &[("k", "vc"), ("l", "vl")]),
    );
    ws.write("dir/.hidden/d.yml", secret("prod", "d", &[("k", "vd")]));
    ws.write(
        "dir/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n",
    );
    ws.write("dir/chart.yaml", "{{ .Values.name }}: [\n");
    ws.write("dir/.gitignore", "ignored.yaml\n");
    ws.write("dir/ignored.yaml", secret("prod", "i", &[("k", "vi")]));
    // A sealed output already (by its name): left alone, not sealed again.
    ws.write("dir/old.sealed.yaml", secret("prod", "old", &[("k", "vo")]));

    let run = ws
        .seal(&["encrypt", "-r", &r, "a.yaml", "b.json", "dir"])
        .ok();
    assert_eq!(run.stdout(), "", "nothing goes to stdout");
    let stderr = run.stderr();
    assert!(
        !stderr.contains('\r'),
        "a progress bar in a pipe: {stderr:?}"
    );
    let last = lines_of(&run).last().cloned().unwrap_or_default();
    assert!(
        last.starts_with("seal: sealed 4 files: 4 Secrets, 5 items in ")
            && last.ends_with(
                " s; passed over 2 files holding no Secret; skipped 1 file sealed already"
            ),
        "summary: {stderr}"
    );
    for (output, value) in [
        ("a.sealed.yaml", SENTINEL),
        ("b.sealed.yaml", "vb"),
        ("dir/c.sealed.yaml", "vc"),
        ("dir/.hidden/d.sealed.yml", "vd"),
    ] {
        let sealed = ws.read(output);
        assert!(sealed.contains("kind: SealedSecret"), "{output}: {sealed}");
        assert!(!sealed.contains(SENTINEL), "{output} holds the plaintext");
        let opened = ws.seal(&["decrypt", "-i", "id.key", output]).ok().stdout();
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        assert!(opened.contains(&encoded), "{output} opened to {opened}");
    }
    for absent in [
        "dir/deploy.sealed.yaml",
        "dir/chart.sealed.yaml",
        "dir/ignored.sealed.yaml",
        "dir/old.sealed.sealed.yaml",
        "b.sealed.json",
    ] {
        assert!(!exists(&ws.path(absent)), "{absent} was written");
    }
    assert!(ws.read("dir/old.sealed.yaml").contains("kind: Secret\n"));
}

#[test]
fn the_suffix_is_chosen_with_a_flag_and_asks_for_an_output_beside_one_file() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write("db.yaml", secret("prod", "db", &[("k", "v")]));
    let run = ws
        .seal(&["encrypt", "-r", &r, "--suffix", ".enc", "db.yaml"])
        .ok();
    assert_eq!(run.stdout(), "");
    assert!(ws.read("db.enc.yaml").contains("kind: SealedSecret"));
    assert!(!exists(&ws.path("db.sealed.yaml")));
    assert!(
        run.stderr()
            .starts_with("seal: sealed 1 file: 1 Secret, 1 item in "),
        "{}",
        run.stderr()
    );
    // One file without --suffix: stdout, as ever.
    let one = ws.seal(&["encrypt", "-r", &r, "db.yaml"]).ok();
    assert!(one.stdout().contains("kind: SealedSecret"));
    assert_eq!(one.stderr(), "");
}

#[test]
fn each_file_takes_its_own_seal_yaml_rule_and_each_rule_is_said_once() {
    let ws = Workspace::new();
    let prod = ws.keygen("prod.key");
    let dev = ws.keygen("dev.key");
    ws.write(
        ".seal.yaml",
        format!(
            "rules:\n  - path: '^prod/'\n    recipients: ['{prod}']\n  - recipients: ['{dev}']\n"
        ),
    );
    ws.write("prod/a.yaml", secret("prod", "a", &[("k", "v")]));
    ws.write("prod/b.yaml", secret("prod", "b", &[("k", "v")]));
    ws.write("dev/c.yaml", secret("dev", "c", &[("k", "v")]));
    let run = ws.seal(&["encrypt", "prod", "dev"]).ok();
    let said: Vec<String> = lines_of(&run)
        .into_iter()
        .filter(|l| l.starts_with("seal: sealed ") && l.contains(" to key "))
        .collect();
    assert_eq!(said.len(), 2, "{}", run.stderr());
    assert!(
        said.iter()
            .any(|l| l.starts_with("seal: sealed 2 files to key ") && l.contains("rules[0] of "))
    );
    assert!(
        said.iter()
            .any(|l| l.starts_with("seal: sealed 1 file to key ") && l.contains("rules[1] of "))
    );
    ws.seal(&["decrypt", "-i", "prod.key", "prod/a.sealed.yaml"])
        .ok();
    ws.seal(&["decrypt", "-i", "dev.key", "prod/a.sealed.yaml"])
        .fails();
    ws.seal(&["decrypt", "-i", "dev.key", "dev/c.sealed.yaml"])
        .ok();
}

#[test]
fn a_failing_file_is_named_gets_no_output_and_the_others_are_written() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write("good1.yaml", secret("prod", "g1", &[("k", "v")]));
    ws.write(
        "bad.yaml",
        format!(
            "{}stringdata:\n  typo: {SENTINEL}\n",
            secret("prod", "bad", &[("k", SENTINEL)])
        ),
    );
    ws.write("good2.yaml", secret("prod", "g2", &[("k", "v")]));
    ws.write(
        "empty.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: e\n  namespace: prod\n",
    );
    let run = ws.seal(&[
        "encrypt",
        "-r",
        &r,
        "good1.yaml",
        "bad.yaml",
        "good2.yaml",
        "empty.yaml",
    ]);
    assert_eq!(run.output.status.code(), Some(1), "{}", run.stderr());
    let stderr = run.stderr();
    assert!(!stderr.contains(SENTINEL), "a value in an error: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines = lines_of(&run);
    assert_eq!(
        lines.len(),
        6,
        "two lines per failed file, two closing: {stderr}"
    );
    assert!(
        lines[0].starts_with("seal: error: bad.yaml: Secret prod/bad")
            && lines[0].contains("stringdata"),
        "{stderr}"
    );
    assert!(lines[1].starts_with("  hint: "), "{stderr}");
    assert!(
        lines[2].starts_with("seal: error: empty.yaml: Secret prod/e: has no items"),
        "{stderr}"
    );
    assert!(lines[3].starts_with("  hint: "), "{stderr}");
    assert!(
        lines[4].starts_with("seal: error: 2 of 4 files not sealed (each is named above, and has no output); sealed 2 files: 2 Secrets, 2 items in "),
        "{stderr}"
    );
    assert!(lines[5].starts_with("  hint: "), "{stderr}");
    assert!(ws.read("good1.sealed.yaml").contains("kind: SealedSecret"));
    assert!(ws.read("good2.sealed.yaml").contains("kind: SealedSecret"));
    assert!(!exists(&ws.path("bad.sealed.yaml")));
    assert!(!exists(&ws.path("empty.sealed.yaml")));
    let leftovers: Vec<String> = ws
        .files()
        .into_iter()
        .filter(|f| f.starts_with(".seal-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn ambiguous_combinations_are_refused_before_anything_is_written() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write("a.yaml", secret("prod", "a", &[("k", "v")]));
    ws.write("a.json", r#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "j", "namespace": "prod"}, "stringData": {"k": "v"}}"#);
    ws.write("b.yaml", secret("prod", "b", &[("k", "v")]));
    ws.write("dir/c.yaml", secret("prod", "c", &[("k", "v")]));
    for (args, says) in [
        (
            vec!["a.yaml", "b.yaml", "-o", "out.yaml"],
            "-o/--output cannot be combined with 2 inputs",
        ),
        (
            vec!["dir", "-o", "out.yaml"],
            "-o/--output cannot be combined with a directory",
        ),
        (
            vec!["a.yaml", "b.yaml", "--merge-into", "out.yaml"],
            "--merge-into cannot be combined with 2 inputs",
        ),
        (
            vec!["a.yaml", "b.yaml", "-w"],
            "-w/--in-place cannot be combined with 2 inputs",
        ),
        (
            vec!["a.yaml", "-"],
            "stdin (-) cannot be combined with 2 inputs",
        ),
        (
            vec!["a.yaml", "b.yaml", "--name", "x"],
            "--name cannot be combined with 2 inputs",
        ),
        (
            vec!["dir", "--filename", "x.yaml"],
            "--filename cannot be combined with a directory",
        ),
        (vec!["a.yaml", "a.json"], "would both be sealed to"),
        (vec!["--suffix", "", "a.yaml"], "--suffix must be non-empty"),
        (
            vec!["--suffix", "x/y", "a.yaml"],
            "--suffix must be non-empty and name no directory",
        ),
        (
            vec!["--suffix", ".s", "-o", "out.yaml", "a.yaml"],
            "--suffix",
        ),
    ] {
        let mut full = vec!["encrypt", "-r", &r];
        full.extend(&args);
        ws.seal(&full).usage_error().stderr_has(says);
        for name in [
            "out.yaml",
            "a.sealed.yaml",
            "b.sealed.yaml",
            "dir/c.sealed.yaml",
        ] {
            assert!(!exists(&ws.path(name)), "{args:?} wrote {name}");
        }
    }
}

#[test]
fn ten_thousand_secrets_in_one_file_seal() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    let text: String = (0..10_000)
        .map(|i| format!("---\n{}", secret("bulk", &format!("s{i}"), &[("k", "v")])))
        .collect();
    ws.write("bulk.yaml", &text);
    let out = ws.seal(&["encrypt", "-r", &r, "bulk.yaml"]).ok().stdout();
    assert_eq!(out.matches("kind: SealedSecret").count(), 10_000);
    assert!(out.contains("name: s9999\n"));
}
