//! `--merge-into`: only the merged items change, names and namespaces are never guessed, and
//! no item is bound to an empty namespace.

use crate::recipients::refusal;
use crate::support::*;

/// The line of item `key` in a sealed file, as written.
fn item_line(text: &str, key: &str) -> String {
    format!("    {key}: {}", item(text, key))
}

#[test]
fn a_name_or_namespace_flag_that_contradicts_the_manifest_is_refused() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write("s.yaml", secret("prod", "db", &[("a", "1")]));
    ws.seal(&["encrypt", "-r", &r, "s.yaml", "-o", "sealed.yaml"])
        .ok();
    let before = ws.read("sealed.yaml");
    ws.write("new.yaml", secret("prod", "db", &[("b", SENTINEL)]));
    let merge = [
        "encrypt",
        "-r",
        &r,
        "--merge-into",
        "sealed.yaml",
        "new.yaml",
    ];
    let mut args = merge.to_vec();
    args.extend_from_slice(&["--name", "other"]);
    refusal(
        ws.seal(&args),
        &[
            "sealed.yaml",
            "Secret prod/db",
            "--name \"other\"",
            "drop --name",
        ],
    );
    let mut args = merge.to_vec();
    args.extend_from_slice(&["-n", "dev"]);
    refusal(ws.seal(&args), &["-n/--namespace \"dev\""]);
    assert_eq!(
        ws.read("sealed.yaml"),
        before,
        "a refused merge changed the file"
    );
}

#[test]
fn a_target_without_namespace_takes_it_from_n_and_never_binds_an_empty_one() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write("s.yaml", secret("prod", "db", &[("a", "1")]));
    let sealed = ws.seal(&["encrypt", "-r", &r, "s.yaml"]).ok().stdout();
    // A file applied with `kubectl apply -n prod`: its items are bound to prod.
    let unplaced = sealed.replace("  namespace: prod\n", "");
    assert_ne!(unplaced, sealed);
    ws.write("sealed.yaml", &unplaced);
    ws.write(
        "new.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {b: '2'}\n",
    );
    let merge = [
        "encrypt",
        "-r",
        &r,
        "--merge-into",
        "sealed.yaml",
        "new.yaml",
    ];
    refusal(
        ws.seal(&merge),
        &[
            "SealedSecret db",
            "no metadata.namespace",
            "strict",
            "pass -n prod",
        ],
    );
    let mut args = merge.to_vec();
    args.extend_from_slice(&["-n", "dev"]);
    refusal(
        ws.seal(&args),
        &["bound to namespace prod, not dev", "-n prod"],
    );
    assert_eq!(ws.read("sealed.yaml"), unplaced);

    let mut args = merge.to_vec();
    args.extend_from_slice(&["-n", "prod"]);
    ws.seal(&args).ok();
    let merged = ws.read("sealed.yaml");
    assert!(
        !merged.contains("namespace:"),
        "the file gained a namespace:\n{merged}"
    );
    // Placed in prod, both items open: the new one is bound to prod, not to "".
    ws.write(
        "placed.yaml",
        merged.replace("  name: db\n", "  name: db\n  namespace: prod\n"),
    );
    let plain = ws
        .seal(&["decrypt", "-i", "id.key", "placed.yaml"])
        .ok()
        .stdout();
    assert!(
        plain.contains("a: MQ==") && plain.contains("b: Mg=="),
        "{plain}"
    );
}

#[test]
fn merging_changes_no_byte_but_the_merged_items() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write(
        "s.yaml",
        format!(
            "{}---\n{}",
            secret("prod", "db", &[("password", "old"), ("user", "app")]),
            secret("prod", "cache", &[("token", "t")])
        ),
    );
    let sealed = ws.seal(&["encrypt", "-r", &r, "s.yaml"]).ok().stdout();
    let (db, cache) = sealed.split_once("---\n").expect("two documents");
    // A file as people keep it: comments, their own key order and layout, a second document.
    let hand_written = format!(
        "# Database credentials; rotate quarterly.\n\
         kind: SealedSecret\n\
         apiVersion: seal.dev/v1\n\
         metadata:\n  namespace: prod   # the prod cluster\n  name: db\n  labels: {{team: core}}\n\
         spec:\n  encryptedData:\n    # the app's login\n{}\n{}\n  scope: strict\n\
         ---\n# cache, untouched by this merge\n{cache}",
        item_line(db, "password"),
        item_line(db, "user"),
    );
    ws.write("sealed.yaml", &hand_written);
    ws.write(
        "update.yaml",
        secret("prod", "db", &[("password", "new"), ("api-key", SENTINEL)]),
    );
    ws.seal(&[
        "encrypt",
        "-r",
        &r,
        "--merge-into",
        "sealed.yaml",
        "update.yaml",
    ])
    .ok();
    let after = ws.read("sealed.yaml");
    let expected = hand_written.replace(
        &item_line(db, "password"),
        &format!(
            "{}\n{}",
            item_line(&after, "api-key"),
            item_line(&after, "password")
        ),
    );
    assert_eq!(after, expected, "bytes other than the merged items changed");
    assert_ne!(item(&after, "password"), item(db, "password"));
    let plain = ws
        .seal(&["decrypt", "-i", "id.key", "sealed.yaml"])
        .ok()
        .stdout();
    assert!(
        plain.contains("password: bmV3")
            && plain.contains("user: YXBw")
            && plain.contains("token: dA=="),
        "{plain}"
    );
}

#[test]
fn a_json_target_stays_json() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write("s.yaml", secret("prod", "db", &[("b", "1")]));
    let sealed = ws.seal(&["encrypt", "-r", &r, "s.yaml"]).ok().stdout();
    let docs: Vec<serde_json::Value> = seal_shared::yaml::from_multiple(&sealed).unwrap();
    let json = serde_json::to_string_pretty(&docs[0]).unwrap();
    ws.write("sealed.json", &json);
    ws.write("new.yaml", secret("prod", "db", &[("a", "2"), ("c", "3")]));
    ws.seal(&[
        "encrypt",
        "-r",
        &r,
        "--merge-into",
        "sealed.json",
        "new.yaml",
    ])
    .ok();
    let after = ws.read("sealed.json");
    let value: serde_json::Value = serde_json::from_str(&after).expect("still JSON");
    let items = value["spec"]["encryptedData"].as_object().unwrap();
    assert_eq!(items.keys().collect::<Vec<_>>(), ["a", "b", "c"], "{after}");
    assert_eq!(items["b"], docs[0]["spec"]["encryptedData"]["b"]);
    let untouched: Vec<&str> = json.lines().filter(|l| !l.contains("\"b\": ")).collect();
    for line in untouched {
        assert!(
            after.lines().any(|l| l == line),
            "line {line:?} changed:\n{after}"
        );
    }
}

#[test]
fn items_seal_cannot_edit_in_place_are_refused_not_rewritten() {
    let ws = Workspace::new();
    let r = ws.keygen("id.key");
    ws.write("s.yaml", secret("prod", "db", &[("a", "1")]));
    let sealed = ws.seal(&["encrypt", "-r", &r, "s.yaml"]).ok().stdout();
    let block = sealed.replace(
        &item_line(&sealed, "a"),
        &format!("    a: |\n      {}", item(&sealed, "a")),
    );
    ws.write("sealed.yaml", &block);
    ws.write("new.yaml", secret("prod", "db", &[("a", "2")]));
    refusal(
        ws.seal(&[
            "encrypt",
            "-r",
            &r,
            "--merge-into",
            "sealed.yaml",
            "new.yaml",
        ]),
        &["sealed.yaml", "block scalar", "one per line"],
    );
    assert_eq!(ws.read("sealed.yaml"), block);
}
