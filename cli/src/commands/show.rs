use std::fmt::Write as _;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use seal_shared::item::plaintext_len;
use seal_shared::sealed_secret::{
    SealedSecret, describe_sealed, inspect_entry, parse_sealed_secrets, placement_of,
};
use sha2::{Digest, Sha256};

use crate::failure::{Context, Result, clean};
use crate::files::{Input, check_path_arg, write_stdout};
use crate::keylist::{KeyList, mark};

/// Describe a SealedSecret file without any key: items, lengths, bindings, key ids
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  seal show db.sealed.yaml\n  seal show --keys keys.json db.sealed.yaml\n\n\
    For each item: its name, the length of its value, its scope and binding, and the ids of \
    the keys it is sealed to (marked current, old or unknown with --keys). Nothing is \
    decrypted: all of it is read from the items' headers and sizes, in the clear and \
    unauthenticated.\n\n\
    --textconv prints one stable line per item (and one per SealedSecret), no colours, for \
    git's diff driver. With these two lines, `git diff` shows which items changed:\n  \
    echo '*.sealed.yaml diff=seal' >> .gitattributes\n  \
    git config diff.seal.textconv 'seal show --textconv'"
)]
pub struct Args {
    /// The SealedSecret file to describe
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// The cluster's key list (keys.json or GET /v1/keys), to mark key ids current, old or
    /// unknown
    #[arg(long, value_name = "FILE")]
    keys: Option<PathBuf>,

    /// Output for git's diff.<driver>.textconv: one line per item, stable, no colours; a file
    /// that is not a SealedSecret is printed as it is, under a line saying so
    #[arg(long)]
    textconv: bool,
}

pub fn run(args: Args) -> Result<()> {
    let keys = args.keys.as_deref().map(KeyList::load).transpose()?;
    check_path_arg(&args.file, "FILE")?;
    let input = Input::File(args.file.clone());
    let text = input.read_text()?;
    let docs = match parse_sealed_secrets(&text) {
        Ok(docs) => docs,
        Err(error) if args.textconv => {
            // git shows a failed textconv as an error and no diff at all; the file as it is
            // is more use to a reviewer, and it is already in the repository.
            let mut out = format!(
                "# seal show: not a SealedSecret file ({}); shown as it is\n",
                clean(&error.to_string())
            );
            out.push_str(&text);
            return write_stdout(out.as_bytes());
        }
        Err(error) => return Err(error).within(input.name()),
    };
    let mut out = String::new();
    for doc in &docs {
        if args.textconv {
            textconv(&mut out, doc, keys.as_ref());
        } else {
            human(&mut out, doc, keys.as_ref());
        }
    }
    write_stdout(out.as_bytes())
}

/// What one item's header and size say.
struct ItemFacts {
    length: String,
    binding: String,
    keys: String,
    /// Whether the binding admits where the item sits, with the same scope as its object.
    in_place: bool,
    /// Short digest of the ciphertext: a resealed value of the same length still shows as
    /// changed.
    digest: String,
}

fn facts(doc: &SealedSecret, key: &str, encoded: &str, keys: Option<&KeyList>) -> ItemFacts {
    let bytes = STANDARD.decode(encoded.trim().as_bytes()).ok();
    let digest = bytes.as_deref().map_or_else(
        || "invalid".to_owned(),
        |b| {
            Sha256::digest(b)[..6]
                .iter()
                .map(|x| format!("{x:02x}"))
                .collect()
        },
    );
    let length = match bytes.as_deref().and_then(plaintext_len) {
        Some(len) => format!("{len} bytes"),
        None => "unknown length".to_owned(),
    };
    match inspect_entry(key, encoded) {
        Ok((binding, ids)) => ItemFacts {
            length,
            in_place: binding.scope == doc.spec.scope && binding.admits(&placement_of(doc, key)),
            binding: clean(&binding.to_string()),
            keys: ids
                .iter()
                .map(|id| format!("{id}{}", mark(keys, *id)))
                .collect::<Vec<_>>()
                .join(" "),
            digest,
        },
        Err(error) => {
            let text = error.to_string();
            let prefix = format!("item {key:?}: ");
            ItemFacts {
                length,
                binding: format!(
                    "unreadable ({})",
                    clean(text.strip_prefix(&prefix).unwrap_or(&text))
                ),
                keys: "none readable".to_owned(),
                in_place: false,
                digest,
            }
        }
    }
}

fn template_facts(doc: &SealedSecret) -> String {
    let template = &doc.spec.template;
    let mut parts = vec![format!("scope {}", doc.spec.scope)];
    if let Some(type_) = &template.type_ {
        parts.push(format!("type {}", clean(type_)));
    }
    if template.immutable == Some(true) {
        parts.push("immutable".to_owned());
    }
    for (what, map) in [
        ("label", &template.metadata.labels),
        ("annotation", &template.metadata.annotations),
    ] {
        for (k, v) in map {
            parts.push(format!("{what} {}={}", clean(k), clean(v)));
        }
    }
    parts.join("; ")
}

fn human(out: &mut String, doc: &SealedSecret, keys: Option<&KeyList>) {
    let items = &doc.spec.encrypted_data;
    let _ = writeln!(
        out,
        "{} ({}), {} item(s):",
        clean(&describe_sealed(doc)),
        template_facts(doc),
        items.len()
    );
    for (key, encoded) in items {
        let f = facts(doc, key, encoded, keys);
        let place = if f.in_place {
            ""
        } else {
            " -- DOES NOT MATCH where it sits"
        };
        let _ = writeln!(
            out,
            "  {key}: {}, bound to {}{place}, sealed to {}",
            f.length, f.binding, f.keys
        );
    }
}

fn textconv(out: &mut String, doc: &SealedSecret, keys: Option<&KeyList>) {
    let object = clean(&describe_sealed(doc));
    let _ = writeln!(out, "{object}: {}", template_facts(doc));
    for (key, encoded) in &doc.spec.encrypted_data {
        let f = facts(doc, key, encoded, keys);
        let place = if f.in_place { "" } else { " (mismatch)" };
        let _ = writeln!(
            out,
            "{object} item {key}: {}; bound to {}{place}; keys {}; ciphertext {}",
            f.length, f.binding, f.keys, f.digest
        );
    }
}
