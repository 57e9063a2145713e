use seal_shared::escape::escape;
use seal_shared::public_keys::{KEYS_KEY, PublishedKey};

use crate::cluster::{DEFAULT_CONTROLLER_NAMESPACE, public_keys, sealing_key};
use crate::failure::{Failure, Result};
use crate::files::write_stdout;

/// List a cluster's public keys (sealing key and decrypt-only keys) from seal-operator, or
/// restore its keys from a backup
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  seal keys\n  seal keys --controller-namespace seal && seal keys --recipient > cluster.txt\n  seal keys restore --from seal-key-backup.yaml -i backup.key --controller-namespace seal-system",
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,

    /// Namespace where seal-operator runs
    #[arg(long, value_name = "NAMESPACE", env = "SEAL_CONTROLLER_NAMESPACE", default_value = DEFAULT_CONTROLLER_NAMESPACE)]
    controller_namespace: String,

    /// Print only the current sealing recipient (age1...), e.g. to save for offline sealing
    #[arg(long)]
    recipient: bool,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    Restore(super::restore::Args),
}

pub fn run(args: Args) -> Result<()> {
    if let Some(Action::Restore(restore)) = args.action {
        return super::restore::run(restore);
    }
    if args.recipient {
        // Parsed, not copied: what is printed here is what `seal encrypt -R` will accept.
        let key = sealing_key(&args.controller_namespace)?;
        return write_stdout(format!("{}\n", key.recipient.recipient).as_bytes());
    }
    let data = public_keys(&args.controller_namespace)?;
    let keys: Vec<PublishedKey> = serde_json::from_str(
        data.get(KEYS_KEY).map(String::as_str).unwrap_or("[]"),
    )
    .map_err(|e| {
        Failure::new(format!(
            "the public-key ConfigMap's {KEYS_KEY} is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
        .hint("the ConfigMap was edited by hand? the operator rewrites it")
    })?;
    let mut out = format!(
        "{:<18} {:<13} {:<32} RECIPIENT\n",
        "KEY ID", "STATE", "CREATED"
    );
    for key in keys.iter().rev() {
        out.push_str(&format!(
            "{:<18} {:<13} {:<32} {}\n",
            escape(&key.id),
            escape(&key.state),
            escape(&key.created),
            escape(&key.recipient)
        ));
    }
    write_stdout(out.as_bytes())
}
