//! A broad table of bad inputs, run through the CLI: every refusal is exactly one
//! `seal: error:` line naming the file and object and one `  hint:` line, with exit code 1
//! (2 for a mistake in the command line itself); no value and no private key in it, no raw
//! control character, no library internals, no output file left behind.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::support::*;

/// Words from inside the libraries seal uses, which mean nothing to its users.
const INTERNALS: [&str; 12] = [
    "Option<",
    "DuplicateKeyPolicy",
    "budget breached",
    "Status {",
    "ServiceError",
    "HyperError",
    "ApiError",
    "struct ",
    ".seal-",
    "os error",
    "Some(",
    "InvalidHeader",
];

struct Table {
    ws: Workspace,
    recipient: String,
    key: String,
    cases: usize,
}

impl Table {
    fn new() -> Table {
        let ws = Workspace::new();
        let (recipient, key) = ws.keygen_with_key("id.key");
        Table {
            ws,
            recipient,
            key,
            cases: 0,
        }
    }

    fn run(&mut self, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>, code: i32) -> Run {
        self.cases += 1;
        let before = self.ws.files();
        let run = self.ws.seal_with(args, env, stdin);
        let run = if code == 2 {
            run.usage_error()
        } else {
            run.fails()
        };
        let stderr = run.stderr();
        for internal in INTERNALS {
            assert!(
                !stderr.contains(internal),
                "{internal:?} in {args:?}: {stderr}"
            );
        }
        let body = &self.key["AGE-SECRET-KEY-1".len()..];
        assert!(
            !stderr.to_ascii_uppercase().contains(&body[..20]),
            "private key in {args:?}: {stderr}"
        );
        let after = self.ws.files();
        assert!(
            after.iter().all(|f| before.contains(f)),
            "{args:?} left {:?} behind",
            after
                .iter()
                .filter(|f| !before.contains(f))
                .collect::<Vec<_>>()
        );
        run
    }

    /// Refused with exit 1; stderr has every needle.
    fn refuses(&mut self, args: &[&str], needles: &[&str]) {
        self.refuses_with(args, &[], None, needles);
    }

    fn refuses_with(
        &mut self,
        args: &[&str],
        env: &[(&str, &str)],
        stdin: Option<&[u8]>,
        needles: &[&str],
    ) {
        let mut run = self.run(args, env, stdin, 1);
        for needle in needles {
            run = run.stderr_has(needle);
        }
    }

    /// A manifest in `in.yaml`, sealed with the table's recipient.
    fn manifest(&mut self, text: impl AsRef<[u8]>, needles: &[&str]) {
        self.ws.write("in.yaml", text);
        let r = self.recipient.clone();
        self.refuses(&["encrypt", "-r", &r, "in.yaml", "-o", "out.yaml"], needles);
    }

    fn usage(&mut self, args: &[&str], needles: &[&str]) {
        let mut run = self.run(args, &[], None, 2);
        for needle in needles {
            run = run.stderr_has(needle);
        }
    }
}

fn doc(body: &str) -> String {
    format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: prod}}\n{body}")
}

#[test]
fn bad_manifests() {
    let mut t = Table::new();
    let object = "in.yaml: Secret prod/db (document 1";
    t.manifest("", &["in.yaml: document 1: no Kubernetes object found"]);
    t.manifest(b"\xff\xfe\x00a".as_slice(), &["in.yaml: not UTF-8"]);
    t.manifest(
        "apiVersion: v1\nkind: Secret\nstringData:\n  a: [oops\n",
        &["in.yaml: line 4"],
    );
    t.manifest("a: b\n c: d\n", &["in.yaml: line 2"]);
    t.manifest(
        "apiVersion: v1\nkind: Secret\n\tstringData: {}\n",
        &["in.yaml: line 2", "tab"],
    );
    t.manifest(
        "apiVersion: v1\nkind: ConfigMap\n",
        &["in.yaml: document 1: it is a \"ConfigMap\", not a Secret"],
    );
    t.manifest(
        "apiVersion: v1\nkind: List\nitems: []\n",
        &["in.yaml: document 1: it is a List"],
    );
    t.manifest(
        "apiVersion: seal.dev/v1\nkind: SealedSecret\n",
        &["already a SealedSecret", "--merge-into"],
    );
    t.manifest(
        "kind: Secret\n",
        &["in.yaml: document 1: it has kind Secret but no apiVersion"],
    );
    t.manifest(
        "apiVersion: v2\nkind: Secret\n",
        &["apiVersion \"v2\" is not a Secret's"],
    );
    t.manifest("metadata: {name: a}\n", &["it has no kind"]);
    t.manifest("[1, 2]\n", &["in.yaml: line 1", "expected a mapping"]);
    t.manifest(
        format!(
            "{}---\napiVersion: v1\nkind: Pod\n",
            doc("stringData: {k: v}\n")
        ),
        &["document 2: it is a \"Pod\""],
    );
    t.manifest(
        doc("stringdata: {k: v}\n"),
        &[object, "did you mean stringData?"],
    );
    t.manifest(
        doc("stringData: {k: v}\npassword: x\n"),
        &[object, "line 5)", "indent it under stringData"],
    );
    t.manifest(
        "apiVersion: v1\nkind: Secret\nmetadata: {nmae: db}\n",
        &["unknown field \"metadata.nmae\"; did you mean name?"],
    );
    t.manifest(
        "apiVersion: v1\nkind: Secret\nmetadata: {generateName: db-}\n",
        &["generateName"],
    );
    t.manifest(
        doc(""),
        &["in.yaml: Secret prod/db: has no items", "--allow-empty"],
    );
    t.manifest(
        doc("stringData: {k: ~}\n"),
        &[object, "stringData.k is null", "quote it"],
    );
    t.manifest(doc("stringData:\n  k: null\n"), &["stringData.k is null"]);
    t.manifest(doc("data:\n  k:\n"), &["data.k is null"]);
    t.manifest(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, labels: {a: ~}}\nstringData: {k: v}\n",
        &["metadata.labels.a is null"],
    );
    t.manifest(doc("stringData: hunter2\n"), &["expected a mapping"]);
    t.manifest(
        doc("stringData: {k: [hunter2]}\n"),
        &["expected a single text value"],
    );
    t.manifest(doc("immutable: maybe\n"), &["in.yaml: line 4"]);
    t.manifest(
        doc("data: {k: '%%%'}\n"),
        &[object, "data.k is not valid base64", "stringData"],
    );
    t.manifest(
        doc("data: {k: YQ==}\nstringData: {k: b}\n"),
        &["key \"k\" is in both data and stringData"],
    );
    t.manifest(doc("stringData: {k: a, k: b}\n"), &["duplicate key \"k\""]);
    t.manifest(
        doc("stringData: {'a b': x}\n"),
        &["stringData: key \"a b\" is not valid"],
    );
    t.manifest(
        doc("stringData: {'..': x}\n"),
        &["stringData: key \"..\" is not valid"],
    );
    t.manifest(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: Bad_Name}\nstringData: {k: v}\n",
        &["metadata.name: name \"Bad_Name\" is not valid"],
    );
    t.manifest(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: a..b}\nstringData: {k: v}\n",
        &["metadata.name"],
    );
    t.manifest(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: a.b}\nstringData: {k: v}\n",
        &["metadata.namespace: namespace \"a.b\""],
    );
    t.manifest(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {k: v}\n",
        &[
            "in.yaml: Secret db: a strict seal binds the namespace",
            "-n/--namespace",
        ],
    );
    t.manifest(
        "apiVersion: v1\nkind: Secret\nmetadata: {namespace: prod}\nstringData: {k: v}\n",
        &["has no metadata.name", "--name"],
    );
    t.manifest(
        format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\n  annotations: {{note: {SENTINEL}}}\nstringData: {{k: {SENTINEL}}}\n"),
        &[object, "the annotation \"note\" contains one of the values being sealed"],
    );
    t.manifest(
        doc(&format!(
            "stringData:\n  k: {}\n",
            "x".repeat(1024 * 1024 + 1)
        )),
        &["1048576", "1 MiB"],
    );
    t.manifest(
        doc(&format!(
            "stringData: {{k: {}{}}}\n",
            "[".repeat(5000),
            "]".repeat(5000)
        )),
        &["in.yaml: line 4"],
    );
    let bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n";
    t.manifest(bomb, &["more than 250000 YAML nodes"]);
    let many = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{labels: {{ {} }} }}\n",
        (0..260_000)
            .map(|i| format!("k{i}: v"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    t.manifest(many, &["more than 250000 YAML nodes", "split the file"]);
    t.manifest(
        "apiVersion: v1\nkind: Secret\nstringData: {a: &x b, c: *y}\n",
        &["in.yaml: line 3"],
    );
    assert!(t.cases > 40, "{} cases", t.cases);
}

#[test]
fn bad_flags_and_environment() {
    let mut t = Table::new();
    let r = t.recipient.clone();
    t.ws.write("s.yaml", secret("prod", "db", &[("k", SENTINEL)]));
    t.ws.write(
        "unnamed.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {namespace: prod}\nstringData: {k: v}\n",
    );
    t.refuses(
        &["encrypt", "-r", &r, "missing.yaml"],
        &["cannot read missing.yaml: no such file or directory"],
    );
    std::fs::create_dir(t.ws.path("dir")).unwrap();
    t.refuses(
        &["encrypt", "-r", &r, "dir"],
        &["found no manifest to seal", "directories holding them"],
    );
    t.refuses_with(
        &["encrypt", "-r", &r],
        &[],
        Some(b""),
        &["<stdin>: document 1: no Kubernetes object found"],
    );
    t.refuses_with(
        &["encrypt", "-r", &r, "-w"],
        &[],
        Some(b"x"),
        &["--in-place needs an input file"],
    );
    t.refuses(&["encrypt", "-r", &r, "-n", "dev", "s.yaml"], &["s.yaml: Secret prod/db: the manifest's namespace \"prod\" differs from -n/--namespace \"dev\""]);
    t.refuses_with(
        &["encrypt", "-r", &r, "s.yaml"],
        &[("SEAL_NAMESPACE", "dev")],
        None,
        &["differs from SEAL_NAMESPACE"],
    );
    t.refuses(
        &["encrypt", "-r", &r, "-n", "Not A Namespace", "s.yaml"],
        &["-n/--namespace: namespace \"Not A Namespace\" is not valid"],
    );
    t.refuses(
        &["encrypt", "-r", &r, "-n", "a\nb", "s.yaml"],
        &["-n/--namespace: namespace \"a\\nb\""],
    );
    t.refuses(
        &["encrypt", "-r", &r, "-n", "", "s.yaml"],
        &["-n/--namespace: namespace \"\" is not valid: it is empty"],
    );
    t.refuses(
        &["encrypt", "-r", &r, "--name", "../../x", "unnamed.yaml"],
        &["--name: name \"../../x\""],
    );
    t.refuses_with(
        &["encrypt", "-r", &r, "s.yaml"],
        &[("SEAL_NAMESPACE", "a..b")],
        None,
        &["SEAL_NAMESPACE: namespace \"a..b\""],
    );
    t.refuses(
        &["encrypt", "-r", &r, "--scope", "global", "s.yaml"],
        &["--scope: unknown scope \"global\""],
    );
    t.refuses_with(
        &["encrypt", "-r", &r, "s.yaml"],
        &[("SEAL_SCOPE", "global")],
        None,
        &["SEAL_SCOPE: unknown scope"],
    );
    t.refuses(
        &["encrypt", "-r", "age1garbage", "s.yaml"],
        &["-r/--recipient: not a valid age recipient"],
    );
    t.refuses(
        &["encrypt", "-r", "", "s.yaml"],
        &["-r/--recipient: the recipient is empty"],
    );
    t.refuses(
        &[
            "encrypt",
            "-r",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",
            "s.yaml",
        ],
        &["SSH key"],
    );
    t.refuses(
        &[
            "encrypt",
            "-r",
            &format!("age1yubikey1{}", &r[4..]),
            "s.yaml",
        ],
        &["plugin recipient"],
    );
    t.refuses(
        &["encrypt", "-r", &format!("{r} # prod"), "s.yaml"],
        &["comment after a recipient"],
    );
    let typo = format!(
        "{}{}",
        &r[..r.len() - 1],
        if r.ends_with('q') { "p" } else { "q" }
    );
    t.refuses(
        &["encrypt", "-r", &typo, "s.yaml"],
        &["checksum does not match"],
    );
    t.refuses_with(
        &["encrypt", "s.yaml"],
        &[("SEAL_RECIPIENT", "age1nope")],
        None,
        &["SEAL_RECIPIENT: not a valid age recipient"],
    );
    t.refuses(
        &["encrypt", "-R", "missing.txt", "s.yaml"],
        &["cannot read missing.txt"],
    );
    t.refuses(
        &["encrypt", "-R", &r, "s.yaml"],
        &["pass a single recipient with -r"],
    );
    t.ws.write("empty.txt", "# nothing yet\n");
    t.refuses(
        &["encrypt", "-R", "empty.txt", "s.yaml"],
        &["empty.txt: lists no recipients"],
    );
    t.ws.write("binary.txt", b"\x00\xff\xfe");
    t.refuses(
        &["encrypt", "-R", "binary.txt", "s.yaml"],
        &["binary.txt: not a text file"],
    );
    t.ws.write("comment.txt", format!("{r} # prod\n"));
    t.refuses(
        &["encrypt", "-R", "comment.txt", "s.yaml"],
        &["comment.txt:1: "],
    );
    t.refuses(
        &["encrypt", "-r", &r, "s.yaml", "-o", "dir"],
        &["cannot write dir: not a regular file"],
    );
    t.refuses(
        &["encrypt", "-r", &r, "s.yaml", "-o", "nodir/out.yaml"],
        &["cannot write nodir/out.yaml: no such file or directory"],
    );
    assert!(t.cases > 25, "{} cases", t.cases);
}

#[test]
fn command_line_mistakes_are_usage_errors() {
    let mut t = Table::new();
    let r = t.recipient.clone();
    t.ws.write("s.yaml", secret("prod", "db", &[("k", "v")]));
    t.usage(&["encrypt", "--bogus"], &["unexpected argument '--bogus'"]);
    t.usage(
        &["encrypt", "-r", &r, "s.yaml", "other.yaml"],
        &["cannot read other.yaml: no such file or directory"],
    );
    t.usage(
        &["encrypt", "-r", &r, "-w", "-o", "x.yaml", "s.yaml"],
        &["cannot be used with"],
    );
    t.usage(&["decrypt", "s.yaml"], &["--identity <FILE>"]);
    t.usage(&["completion", "tcsh"], &["invalid value 'tcsh'"]);
    t.usage(&["nope"], &["unrecognized subcommand 'nope'"]);
    t.usage(
        &["encrypt", "-r"],
        &["a value is required for '--recipient"],
    );
}

#[test]
fn bad_seal_yaml() {
    let mut t = Table::new();
    t.ws.write("s.yaml", secret("prod", "db", &[("k", "v")]));

    for (config, needles) in [
        ("rules: [oops\n", &[".seal.yaml: line 1"][..]),
        (
            "rule: []\n",
            &[".seal.yaml: unknown field \"rule\"", "did you mean rules?"],
        ),
        (
            "rules:\n  - path: '['\n    recipients: [x]\n",
            &[".seal.yaml: rules[0]: path \"[\" is not a valid regular expression"],
        ),
        (
            "rules:\n  - path: '.'\n",
            &[".seal.yaml: rules[0]: lists no recipients"],
        ),
        (
            "rules:\n  - recipients: [age1nope]\n",
            &[".seal.yaml: rules[0]: recipients[0]: not a valid age recipient"],
        ),
        (
            "rules:\n  - recipientsFile: missing.txt\n",
            &["rules[0]: recipientsFile: cannot read", "missing.txt"],
        ),
    ] {
        t.ws.write(".seal.yaml", config);
        t.refuses(&["encrypt", "s.yaml"], needles);
    }
    let r = t.recipient.clone();
    t.ws.write(
        ".seal.yaml",
        format!("rules:\n  - recipients: ['{r}']\n    scope: global\n"),
    );
    t.refuses(
        &["encrypt", "s.yaml"],
        &[".seal.yaml: rules[0]: scope: unknown scope \"global\""],
    );
}

#[test]
fn no_cluster_to_ask() {
    let mut t = Table::new();
    t.ws.write("s.yaml", secret("prod", "db", &[("k", "v")]));
    t.refuses(
        &["encrypt", "s.yaml"],
        &[
            "cannot reach a cluster: cannot read the kubeconfig",
            "pass -r age1",
        ],
    );
    t.refuses(&["keys"], &["cannot reach a cluster", "KUBECONFIG"]);
    t.refuses(&["rotate"], &["cannot reach a cluster"]);
    t.refuses(
        &["keys", "--controller-namespace", "../x"],
        &["--controller-namespace: namespace \"../x\" is not valid"],
    );
    t.refuses_with(
        &["keys"],
        &[("SEAL_CONTROLLER_NAMESPACE", "A")],
        None,
        &["SEAL_CONTROLLER_NAMESPACE: namespace \"A\""],
    );
    t.ws.write(
        "kubeconfig",
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\nusers:\n- name: u\n  user: {token: abc}\n",
    );
    let kubeconfig = t.ws.path("kubeconfig").to_string_lossy().into_owned();
    let env = [("KUBECONFIG", kubeconfig.as_str())];
    t.refuses_with(&["keys"], &env, None, &["cannot read ConfigMap seal-system/seal-public-keys in context \"x\" (https://127.0.0.1:1): cannot connect: connection refused"]);
    t.refuses_with(&["rotate"], &env, None, &["cannot annotate ConfigMap seal-system/seal-public-keys in context \"x\" (https://127.0.0.1:1): cannot connect"]);
    t.refuses_with(
        &["encrypt", "s.yaml"],
        &env,
        None,
        &["connection refused", "no recipients given"],
    );
    t.ws.write(
        "kubeconfig",
        "apiVersion: v1\nkind: Config\ncurrent-context: missing\n",
    );
    t.refuses_with(
        &["keys"],
        &env,
        None,
        &["cannot reach a cluster: the kubeconfig"],
    );
}

#[test]
fn the_cluster_is_the_one_the_flags_name() {
    let mut t = Table::new();
    t.ws.write("s.yaml", secret("prod", "db", &[("k", "v")]));
    // Two contexts, neither reachable: which one a message names shows which was used.
    t.ws.write(
        "two-contexts",
        "apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster: {server: 'https://127.0.0.1:1'}\n- name: b\n  cluster: {server: 'https://127.0.0.1:2'}\ncontexts:\n- name: x\n  context: {cluster: a, user: u}\n- name: y\n  context: {cluster: b, user: u}\ncurrent-context: x\nusers:\n- name: u\n  user: {token: abc}\n",
    );
    let file = t.ws.path("two-contexts").to_string_lossy().into_owned();
    // KUBECONFIG names a file that does not exist: --kubeconfig replaces it, as in kubectl.
    let env = [("KUBECONFIG", "/nonexistent/kubeconfig")];
    t.refuses_with(
        &["keys", "--kubeconfig", &file],
        &env,
        None,
        &["in context \"x\" (https://127.0.0.1:1): cannot connect"],
    );
    t.refuses_with(
        &["keys", "--export", "--kubeconfig", &file, "--context", "y"],
        &env,
        None,
        &["in context \"y\" (https://127.0.0.1:2): cannot connect"],
    );
    t.refuses_with(
        &["rotate", "--kubeconfig", &file, "--context", "y"],
        &env,
        None,
        &["cannot annotate ConfigMap seal-system/seal-public-keys in context \"y\" (https://127.0.0.1:2)"],
    );
    t.refuses_with(
        &["encrypt", "--kubeconfig", &file, "--context", "y", "s.yaml"],
        &env,
        None,
        &[
            "in context \"y\" (https://127.0.0.1:2)",
            "no recipients given",
        ],
    );
    for action in ["retire", "unretire"] {
        t.refuses_with(
            &[
                "keys",
                action,
                "0c87a417f764bcf7",
                "--kubeconfig",
                &file,
                "--context",
                "y",
            ],
            &env,
            None,
            &["in context \"y\" (https://127.0.0.1:2)"],
        );
    }
    t.refuses_with(
        &["keys", "--kubeconfig", &file, "--context", "prod"],
        &env,
        None,
        &["cannot reach a cluster: the kubeconfig has no context \"prod\""],
    );
    t.refuses_with(
        &["keys", "--kubeconfig", "missing"],
        &[],
        None,
        &["cannot reach a cluster: cannot read the kubeconfig missing"],
    );
    // --context alone picks from the kubeconfig KUBECONFIG names.
    t.refuses_with(
        &["keys", "--recipient", "--context", "y"],
        &[("KUBECONFIG", file.as_str())],
        None,
        &["in context \"y\" (https://127.0.0.1:2): cannot connect"],
    );
}

#[test]
fn bad_merges() {
    let mut t = Table::new();
    let r = t.recipient.clone();
    t.ws.write("s.yaml", secret("prod", "db", &[("k", "v")]));
    t.ws.seal(&["encrypt", "-r", &r, "s.yaml", "-o", "sealed.yaml"])
        .ok();
    t.ws.write("other.yaml", secret("prod", "web", &[("k", "v")]));
    t.refuses(
        &[
            "encrypt",
            "-r",
            &r,
            "--merge-into",
            "missing.yaml",
            "s.yaml",
        ],
        &["cannot read missing.yaml"],
    );
    t.refuses(
        &["encrypt", "-r", &r, "--merge-into", "s.yaml", "s.yaml"],
        &["s.yaml: document 1: it is not a SealedSecret"],
    );
    t.refuses(
        &[
            "encrypt",
            "-r",
            &r,
            "--merge-into",
            "sealed.yaml",
            "other.yaml",
        ],
        &["sealed.yaml: no SealedSecret here matches Secret prod/web"],
    );
    t.refuses(
        &[
            "encrypt",
            "-r",
            &r,
            "--scope",
            "cluster-wide",
            "--merge-into",
            "sealed.yaml",
            "s.yaml",
        ],
        &["--scope cluster-wide differs from the file's scope strict"],
    );
}

/// A sealed file whose only item has had its header edited.
fn edited_item(sealed: &str, from: &str, to: &str) -> String {
    let original = item(sealed, "k");
    let bytes = STANDARD.decode(&original).unwrap();
    let at = bytes
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap_or_else(|| panic!("{from:?} not in the header"));
    let mut edited = bytes[..at].to_vec();
    edited.extend_from_slice(to.as_bytes());
    edited.extend_from_slice(&bytes[at + from.len()..]);
    sealed.replace(&original, &STANDARD.encode(edited))
}

#[test]
fn bad_decrypts() {
    let mut t = Table::new();
    let r = t.recipient.clone();
    t.ws.keygen("other.key");
    t.ws.write("s.yaml", secret("prod", "db", &[("k", SENTINEL)]));
    t.ws.seal(&["encrypt", "-r", &r, "s.yaml", "-o", "sealed.yaml"])
        .ok();
    let sealed = t.ws.read("sealed.yaml");
    let in_file = "bad.yaml: SealedSecret prod/db: item \"k\": ";
    let bad = |t: &mut Table, text: String, needles: &[&str]| {
        t.ws.write("bad.yaml", text);
        t.refuses(
            &["decrypt", "-i", "id.key", "bad.yaml", "-o", "plain.yaml"],
            needles,
        );
    };
    bad(
        &mut t,
        edited_item(&sealed, "seal.dev/binding 1 ", "seal.dev/binding 2 "),
        &[in_file, "integrity check failed"],
    );
    let id = sealed_key_id(&t, &sealed);
    bad(
        &mut t,
        edited_item(&sealed, &format!(" strict {id}"), " strict"),
        &[in_file, "names no key"],
    );
    bad(
        &mut t,
        sealed.replace("namespace: prod", "namespace: dev"),
        &["sealed for prod/db", "found at dev/db"],
    );
    bad(
        &mut t,
        sealed.replace("scope: strict", "scope: cluster-wide"),
        &["was sealed with scope strict but the SealedSecret declares cluster-wide"],
    );
    bad(
        &mut t,
        sealed.replace(&item(&sealed, "k"), "not~base64"),
        &[in_file, "not valid base64"],
    );
    bad(
        &mut t,
        sealed.replace(&item(&sealed, "k"), &item(&sealed, "k")[..80]),
        &[in_file],
    );
    bad(
        &mut t,
        sealed.replace("name: db", "name: Bad_Name"),
        &[
            "bad.yaml: SealedSecret prod/Bad_Name (document 1): metadata.name: name \"Bad_Name\" is not valid",
        ],
    );
    bad(
        &mut t,
        secret("prod", "db", &[("k", "v")]),
        &["bad.yaml: document 1: it is not a SealedSecret (seal.dev/v1); found \"v1\" \"Secret\""],
    );
    bad(
        &mut t,
        String::new(),
        &["bad.yaml: document 1: no SealedSecret found"],
    );
    t.refuses(
        &["decrypt", "-i", "other.key", "sealed.yaml"],
        &[
            "sealed.yaml: SealedSecret prod/db: item \"k\": sealed to key(s)",
            "none of them is available",
        ],
    );
    t.refuses(
        &["decrypt", "-i", "missing.key", "sealed.yaml"],
        &["cannot read missing.key"],
    );
    t.ws.write("empty.key", "# nothing\n");
    t.refuses(
        &["decrypt", "-i", "empty.key", "sealed.yaml"],
        &["empty.key: it contains no identity"],
    );
    t.refuses(
        &["decrypt", "-i", "id.key", "missing.yaml"],
        &["cannot read missing.yaml"],
    );
}

fn sealed_key_id(t: &Table, sealed: &str) -> String {
    let bytes = STANDARD.decode(item(sealed, "k")).unwrap();
    let header = String::from_utf8_lossy(&bytes);
    let line = header
        .lines()
        .find(|l| l.starts_with("-> seal.dev/binding 1 strict "))
        .expect("no binding stanza");
    let id = line.rsplit(' ').next().unwrap().to_owned();
    assert!(
        t.ws.read("id.key").contains(&id),
        "key id {id} not in id.key"
    );
    id
}

#[test]
fn bad_keygen() {
    let mut t = Table::new();
    t.refuses(
        &["keygen", "-o", "id.key"],
        &["cannot create id.key", "already exists"],
    );
    t.refuses(
        &["keygen", "-o", "nodir/new.key"],
        &["cannot create nodir/new.key: no such file or directory"],
    );
}
