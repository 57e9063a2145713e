//! The command line: one subcommand per file under `commands/`.

use std::sync::OnceLock;

use clap::parser::ValueSource;
use clap::{ArgMatches, Parser, Subcommand};

use crate::commands::{completion, decrypt, encrypt, import, keygen, keys, rotate, show, verify};

#[derive(Parser, Debug)]
#[command(
    name = "seal",
    version,
    about = "Keep Kubernetes Secrets in Git: seal every value with age to your clusters' keys",
    long_about = "Keep Kubernetes Secrets in Git.\n\n\
        `seal encrypt` turns a Secret into a SealedSecret: every value becomes a standard age \
        file encrypted to your clusters' keys (and any recovery key) and bound to its namespace, \
        name and key. seal-operator turns it back into a Secret inside the cluster. \
        `seal decrypt` recovers a Secret offline with an identity file.",
    after_help = "Examples:\n  seal keygen -o recovery.key\n  seal encrypt -r age1... secret.yaml > sealed.yaml\n  \
        seal encrypt --merge-into sealed.yaml new-keys.yaml\n  seal decrypt -i recovery.key sealed.yaml\n  seal verify --keys keys.json   # in CI\n  seal show db.sealed.yaml"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Encrypt(Box<encrypt::Args>),
    Decrypt(decrypt::Args),
    Import(import::Args),
    Keygen(keygen::Args),
    Keys(keys::Args),
    Rotate(rotate::Args),
    Verify(verify::Args),
    Show(show::Args),
    Completion(completion::Args),
}

/// For each argument of the command being run that has a value: its id and how the user
/// gave it (`SEAL_NAMESPACE`, or `-n/--namespace`).
static GIVEN_AS: OnceLock<Vec<(String, String)>> = OnceLock::new();

/// Remembers how each argument was given, so that an error about a value names the
/// environment variable it came from rather than a flag the user never typed.
pub fn record_sources(command: &clap::Command, matches: &ArgMatches) {
    let Some((name, sub_matches)) = matches.subcommand() else {
        return;
    };
    let Some(sub) = command.find_subcommand(name) else {
        return;
    };
    let sources = sub
        .get_arguments()
        .filter_map(|arg| {
            let id = arg.get_id().as_str();
            let source = sub_matches.value_source(id)?;
            let label = match (source, arg.get_env()) {
                (ValueSource::EnvVariable, Some(env)) => env.to_string_lossy().into_owned(),
                _ => flag_label(arg),
            };
            Some((id.to_owned(), label))
        })
        .collect();
    let _ = GIVEN_AS.set(sources);
}

fn flag_label(arg: &clap::Arg) -> String {
    match (arg.get_short(), arg.get_long()) {
        (Some(short), Some(long)) => format!("-{short}/--{long}"),
        (None, Some(long)) => format!("--{long}"),
        (Some(short), None) => format!("-{short}"),
        (None, None) => arg
            .get_value_names()
            .and_then(|names| names.first())
            .map_or_else(|| arg.get_id().to_string(), ToString::to_string),
    }
}

/// How the argument `id` was given; `fallback` (its flag) when not recorded.
pub fn given_as(id: &str, fallback: &str) -> String {
    GIVEN_AS
        .get()
        .and_then(|all| all.iter().find(|(known, _)| known == id))
        .map_or_else(|| fallback.to_owned(), |(_, label)| label.clone())
}

/// A command-line mistake, in the same two lines as every other refusal. clap's text is kept
/// (its wording is good) but folded into one line, and any private key it quotes withheld.
pub fn usage_error(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let mut lines = rendered.lines();
    let first = lines.next().unwrap_or_default();
    let mut message = first.strip_prefix("error: ").unwrap_or(first).to_owned();
    let mut tip = None;
    let mut usage = None;
    for line in lines.map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(text) = line.strip_prefix("tip: ") {
            tip.get_or_insert_with(|| text.to_owned());
        } else if let Some(text) = line.strip_prefix("Usage: ") {
            usage = Some(text.to_owned());
        } else if !line.starts_with("For more information") {
            // The list after "the following required arguments were not provided:".
            message.push_str(if message.ends_with(':') { " " } else { ", " });
            message.push_str(line);
        }
    }
    let hint = tip.unwrap_or_else(|| match usage {
        Some(usage) => format!("usage: {usage}; see --help"),
        None => "see seal --help".to_owned(),
    });
    crate::failure::Failure::new(message).hint(hint).to_string()
}
