//! The command line: one subcommand per file under `commands/`.

use clap::{Parser, Subcommand};

use crate::commands::{completion, decrypt, encrypt, keygen, keys, rotate};

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
        seal encrypt --merge-into sealed.yaml new-keys.yaml\n  seal decrypt -i recovery.key sealed.yaml"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Encrypt(encrypt::Args),
    Decrypt(decrypt::Args),
    Keygen(keygen::Args),
    Keys(keys::Args),
    Rotate(rotate::Args),
    Completion(completion::Args),
}
