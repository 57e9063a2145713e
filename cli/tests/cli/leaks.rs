//! A private key given where something else is expected is named for what it is and never
//! printed: one case per way a key can reach seal.

use crate::support::*;

/// What must never appear in stderr: any stretch of the key long enough to matter, in any
/// case.
fn assert_hidden(run: &Run, key: &str) {
    let stderr = run.stderr().to_ascii_uppercase();
    let body = &key["AGE-SECRET-KEY-1".len()..];
    for window in body.as_bytes().chunks(12) {
        let piece = std::str::from_utf8(window).unwrap().to_ascii_uppercase();
        assert!(
            piece.len() < 6 || !stderr.contains(&piece),
            "part of the private key in stderr: {}",
            run.stderr()
        );
    }
}

const NOT_SHARED: &str = "this is a private key (an age identity)";

struct Keys {
    ws: Workspace,
    recipient: String,
    key: String,
}

fn setup() -> Keys {
    let ws = Workspace::new();
    let (recipient, key) = ws.keygen_with_key("id.key");
    ws.write("s.yaml", secret("prod", "db", &[("password", SENTINEL)]));
    Keys { ws, recipient, key }
}

impl Keys {
    fn refused(&self, args: &[&str], env: &[(&str, &str)], needles: &[&str]) {
        let run = self.ws.seal_with(args, env, None).fails();
        assert_hidden(&run, &self.key);
        let mut run = run;
        for needle in needles {
            run = run.stderr_has(needle);
        }
    }
}

#[test]
fn a_private_key_as_a_recipient_flag_or_variable() {
    let k = setup();
    let key = k.key.as_str();
    k.refused(
        &["encrypt", "-r", key, "s.yaml"],
        &[],
        &["-r/--recipient: ", NOT_SHARED, "must not be shared"],
    );
    let both = format!("{},{key}", k.recipient);
    k.refused(
        &["encrypt", "-r", &both, "s.yaml"],
        &[],
        &["-r/--recipient (value 2 of 2)", NOT_SHARED],
    );
    k.refused(
        &["encrypt", "s.yaml"],
        &[("SEAL_RECIPIENT", key)],
        &["SEAL_RECIPIENT: ", NOT_SHARED],
    );
    let lower = key.to_lowercase();
    k.refused(&["encrypt", "-r", &lower, "s.yaml"], &[], &[NOT_SHARED]);
    // One character off: still a key, still not printed.
    let typo = format!("{}Q", &key[..key.len() - 1]);
    k.refused(&["encrypt", "-r", &typo, "s.yaml"], &[], &[NOT_SHARED]);
}

#[test]
fn a_private_key_in_a_recipients_file_or_variable_naming_one() {
    let k = setup();
    // The identity file written by keygen has comments first: the key is on line 3.
    k.refused(
        &["encrypt", "-R", "id.key", "s.yaml"],
        &[],
        &["id.key:3: ", NOT_SHARED],
    );
    k.refused(
        &["encrypt", "s.yaml"],
        &[("SEAL_RECIPIENTS_FILE", "id.key")],
        &["id.key:3: ", NOT_SHARED],
    );
    // A garbage line is described, never echoed: it may be a key with a typo.
    let mangled = k.key.replace("AGE-SECRET-KEY-1", "AGE-SECRET-KEY1");
    k.ws.write("r.txt", format!("# team\n{}\n{mangled}\n", k.recipient));
    k.refused(&["encrypt", "-R", "r.txt", "s.yaml"], &[], &["r.txt:3: "]);
    let unprefixed = &k.key["AGE-SECRET-KEY-1".len()..];
    k.ws.write("r2.txt", format!("{unprefixed}\n"));
    k.refused(
        &["encrypt", "-R", "r2.txt", "s.yaml"],
        &[],
        &["r2.txt:1: ", "not an age recipient"],
    );
    // The key itself as the file name.
    k.refused(
        &["encrypt", "-R", &k.key, "s.yaml"],
        &[],
        &["-R/--recipients-file: ", "not a file name"],
    );
}

#[test]
fn a_private_key_in_seal_yaml() {
    let k = setup();
    k.ws.write(
        ".seal.yaml",
        format!("rules:\n  - recipients: ['{}', '{}']\n", k.recipient, k.key),
    );
    k.refused(
        &["encrypt", "s.yaml"],
        &[],
        &[".seal.yaml: rules[0]: recipients[1]: ", NOT_SHARED],
    );
    k.ws.write(".seal.yaml", "rules:\n  - recipientsFile: id.key\n");
    k.refused(&["encrypt", "s.yaml"], &[], &["id.key:3: ", NOT_SHARED]);
    // A string where a list belongs: the parser's own message would quote it.
    k.ws.write(".seal.yaml", format!("rules:\n  - recipients: {}\n", k.key));
    k.refused(&["encrypt", "s.yaml"], &[], &[".seal.yaml"]);
    // The key as the recipientsFile's name.
    k.ws.write(
        ".seal.yaml",
        format!("rules:\n  - recipientsFile: {}\n", k.key),
    );
    k.refused(
        &["encrypt", "s.yaml"],
        &[],
        &["rules[0]: recipientsFile: ", "not a file name"],
    );
}

#[test]
fn a_private_key_reaching_seal_through_a_merge_target_or_filename() {
    let k = setup();
    std::fs::create_dir_all(k.ws.path("prod")).unwrap();
    k.ws.seal(&[
        "encrypt",
        "-r",
        &k.recipient,
        "s.yaml",
        "-o",
        "prod/db.yaml",
    ])
    .ok();
    let before = k.ws.read("prod/db.yaml");
    // The target's .seal.yaml picks the recipients of a merge: it is checked the same way.
    k.ws.write(
        "prod/.seal.yaml",
        format!("rules:\n  - recipients: ['{}']\n", k.key),
    );
    k.ws.write("new.yaml", secret("prod", "db", &[("added", SENTINEL)]));
    k.refused(
        &["encrypt", "--merge-into", "prod/db.yaml", "new.yaml"],
        &[],
        &["prod/.seal.yaml: rules[0]: recipients[0]: ", NOT_SHARED],
    );
    assert_eq!(k.ws.read("prod/db.yaml"), before, "a refused merge wrote");
    k.refused(
        &["encrypt", "--filename", &k.key, "s.yaml"],
        &[],
        &["--filename: ", NOT_SHARED, "not a file name"],
    );
}

#[test]
fn a_private_key_given_as_an_identity_file_name_or_input() {
    let k = setup();
    k.ws.seal(&["encrypt", "-r", &k.recipient, "s.yaml", "-o", "sealed.yaml"])
        .ok();
    k.refused(
        &["decrypt", "-i", &k.key, "sealed.yaml"],
        &[],
        &["-i/--identity: ", NOT_SHARED, "not a file name"],
    );
    k.refused(
        &["decrypt", "sealed.yaml"],
        &[("SEAL_IDENTITY", &k.key)],
        &["SEAL_IDENTITY: ", NOT_SHARED],
    );
    k.refused(
        &["encrypt", "-r", &k.recipient, &k.key],
        &[],
        &["the input file: ", NOT_SHARED],
    );
    // An argument clap does not expect: its message quotes it, seal withholds it.
    let run =
        k.ws.seal(&["keygen", &k.key])
            .usage_error()
            .stderr_has("(private key withheld)");
    assert_hidden(&run, &k.key);
    // One of several inputs: named by the argument, never shown.
    let run =
        k.ws.seal(&["encrypt", "-r", &k.recipient, "s.yaml", &k.key])
            .usage_error()
            .stderr_has(NOT_SHARED);
    assert_hidden(&run, &k.key);
}

#[test]
fn identity_files_with_bad_content_name_the_line_only() {
    let k = setup();
    k.ws.seal(&["encrypt", "-r", &k.recipient, "s.yaml", "-o", "sealed.yaml"])
        .ok();
    // One character changed (bech32's checksum catches any single change); never to itself.
    let (body, last) = k.key.split_at(k.key.len() - 1);
    let typo = format!("{body}{}\n", if last == "Q" { "P" } else { "Q" });
    k.ws.write("typo.key", format!("# mine\n{typo}"));
    k.refused(
        &["decrypt", "-i", "typo.key", "sealed.yaml"],
        &[],
        &["typo.key:2: ", "not an age X25519 identity"],
    );
    k.ws.write("public.key", format!("{}\n", k.recipient));
    k.refused(
        &["decrypt", "-i", "public.key", "sealed.yaml"],
        &[],
        &[
            "public.key:1: ",
            "this is a recipient (a public key), not an identity",
        ],
    );
    k.ws.write("binary.key", b"age-encryption.org/v1\n-> scrypt \xff\xfe\n");
    k.refused(
        &["decrypt", "-i", "binary.key", "sealed.yaml"],
        &[],
        &["binary.key: not a text file", "age -d"],
    );
}

#[test]
fn a_recipient_with_a_comment_on_its_line_gets_a_clear_message() {
    let k = setup();
    k.ws.write("r.txt", format!("{} # prod cluster\n", k.recipient));
    k.refused(
        &["encrypt", "-R", "r.txt", "s.yaml"],
        &[],
        &["r.txt:1: ", "comment after a recipient", "line of its own"],
    );
}

#[test]
fn a_kubeconfig_that_does_not_parse_is_not_quoted() {
    let k = setup();
    k.ws.write(
        "kubeconfig",
        format!(
            "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: {SENTINEL}\n    client-key-data: {}\n   bad: [\n",
            k.key
        ),
    );
    let kubeconfig = k.ws.path("kubeconfig");
    k.refused(
        &["keys"],
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
        &["kubeconfig is not valid (line"],
    );
    k.refused(
        &["encrypt", "s.yaml"],
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
        &["kubeconfig is not valid"],
    );
}
