use seal_shared::escape::escape;
use seal_shared::public_keys::{CONFIGMAP, KEYS_KEY, PublishedKey};

use crate::cluster::{ClusterArgs, public_keys, sealing_key};
use crate::failure::{Failure, Result, say};
use crate::files::write_stdout;
use crate::keylist::parse_published;

/// List a cluster's public keys (sealing key and decrypt-only keys) from seal-operator, or
/// restore its keys from a backup
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  seal keys\n  seal keys --context prod --recipient > prod.txt\n  \
        seal keys --export > keys.json        # for seal verify/show --keys, offline\n  \
        seal keys restore --from seal-key-backup.yaml -i backup.key --controller-namespace seal-system",
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,

    #[command(flatten)]
    cluster: ClusterArgs,

    /// Print only the current sealing recipient (age1...), e.g. to save for offline sealing
    #[arg(long, conflicts_with = "export")]
    recipient: bool,

    /// Print the cluster's key list as JSON (the ConfigMap's keys.json), for
    /// `seal verify --keys` and `seal show --keys` without a cluster
    #[arg(long)]
    export: bool,
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
        let key = sealing_key(&args.cluster)?;
        say(format!("sealing key of {}", key.describe()));
        return write_stdout(format!("{}\n", key.recipient.recipient).as_bytes());
    }
    let (data, cluster) = public_keys(&args.cluster)?;
    let namespace = &args.cluster.controller_namespace;
    let place = format!(
        "ConfigMap {namespace}/{CONFIGMAP} in context {:?} ({})",
        cluster.context, cluster.server
    );
    // The same checks `--keys FILE` gets: an exported list is one verify will accept.
    let keys: Vec<PublishedKey> =
        parse_published(data.get(KEYS_KEY).map(String::as_str).unwrap_or("[]"))
            .map_err(|failure| {
                Failure::new(format!("{place}: {KEYS_KEY}: {}", failure.message()))
                    .hint("the ConfigMap was edited by hand? the operator rewrites it")
            })?
            .into_iter()
            .map(|(_, _, key)| key)
            .collect();
    say(format!("keys of seal-operator from {place}"));
    if args.export {
        let mut json = serde_json::to_string_pretty(&keys).map_err(|_| {
            Failure::new("cannot render the key list as JSON").hint("report this as a bug")
        })?;
        json.push('\n');
        return write_stdout(json.as_bytes());
    }
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
