//! The command line: one subcommand per file under `commands/`.

use clap::{CommandFactory, Parser, Subcommand};

use crate::commands::{
    completion, decrypt, encrypt, import, keygen, keys, reseal, rotate, show, verify,
};
use crate::failure::Result;

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
        seal encrypt --merge-into sealed.yaml new-keys.yaml\n  seal decrypt -i recovery.key sealed.yaml\n  seal verify --keys keys.json   # in CI\n  seal show db.sealed.yaml\n  \
        seal rotate && seal reseal clusters/   # move every item to the new key"
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
    Reseal(reseal::Args),
    Verify(verify::Args),
    Show(show::Args),
    Completion(completion::Args),
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

/// Runs the command the user asked for.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Encrypt(args) => encrypt::run(*args),
        Command::Decrypt(args) => decrypt::run(args),
        Command::Import(args) => import::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Rotate(args) => rotate::run(args),
        Command::Reseal(args) => reseal::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Show(args) => show::run(args),
        Command::Completion(args) => completion::run(args, Cli::command()),
    }
}
