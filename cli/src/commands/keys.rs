use seal_shared::escape::escape;
use seal_shared::public_keys::{CONFIGMAP, KEYS_KEY, PublishedKey};

use crate::cluster::{ClusterArgs, public_keys, sealing_key};
use crate::failure::{Failure, Result, say};
use crate::files::write_stdout;
use crate::keylist::parse_published;

/// List a cluster's public keys (the sealing key, decrypt-only and retired keys, and how many
/// SealedSecrets each opened) from seal-operator; retire, unretire or restore keys
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  seal keys\n  seal keys --context prod --recipient > prod.txt\n  \
        seal keys --export > keys.json        # for seal verify/show --keys, offline\n  \
        seal keys retire 0c87a417f764bcf7\n  seal keys unretire 0c87a417f764bcf7\n  \
        seal keys restore --from seal-key-backup.yaml -i backup.key --controller-namespace seal-system\n\n\
        SEALED SECRETS is how many SealedSecrets the operator's leader last found opened with\n\
        each key (- from an operator that does not count). A retired key opens nothing; DELETE\n\
        AFTER is when its private key goes, unless `seal keys unretire` brings it back first.",
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
    Retire(super::retire::RetireArgs),
    Unretire(super::retire::UnretireArgs),
}

pub fn run(args: Args) -> Result<()> {
    match args.action {
        Some(Action::Restore(restore)) => return super::restore::run(restore),
        Some(Action::Retire(retire)) => return super::retire::retire(retire),
        Some(Action::Unretire(unretire)) => return super::retire::unretire(unretire),
        None => {}
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
    write_stdout(table(&keys).as_bytes())
}

/// The key list as a table, newest key first.
fn table(keys: &[PublishedKey]) -> String {
    let mut out = format!(
        "{:<18} {:<13} {:<32} {:<14} {:<32} RECIPIENT\n",
        "KEY ID", "STATE", "CREATED", "SEALED SECRETS", "DELETE AFTER"
    );
    for key in keys.iter().rev() {
        let count = key
            .sealed_secrets
            .map_or_else(|| "-".to_owned(), |n| n.to_string());
        let delete_after = match (&key.delete_after, key.state.as_str()) {
            (Some(at), _) => escape(at).into_owned(),
            (None, "retired") => "(not yet set)".to_owned(),
            (None, _) => "-".to_owned(),
        };
        out.push_str(&format!(
            "{:<18} {:<13} {:<32} {:<14} {:<32} {}\n",
            escape(&key.id),
            escape(&key.state),
            escape(&key.created),
            count,
            delete_after,
            escape(&key.recipient)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, state: &str, count: Option<u64>, delete_after: Option<&str>) -> PublishedKey {
        PublishedKey {
            id: id.into(),
            recipient: format!("age1{id}"),
            created: "2026-01-01T00:00:00Z".into(),
            state: state.into(),
            retired_at: delete_after.map(|_| "2026-01-02T00:00:00Z".into()),
            delete_after: delete_after.map(Into::into),
            sealed_secrets: count,
        }
    }

    #[test]
    fn the_table_shows_counts_and_when_a_retired_key_goes() {
        let text = table(&[
            key(
                "0c87a417f764bcf7",
                "retired",
                Some(0),
                Some("2026-01-09T00:00:00Z"),
            ),
            key("1d98b528a875cd08", "active", Some(12), None),
        ]);
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines[0],
            [
                "KEY",
                "ID",
                "STATE",
                "CREATED",
                "SEALED",
                "SECRETS",
                "DELETE",
                "AFTER",
                "RECIPIENT"
            ]
        );
        assert_eq!(
            lines[1][..5],
            [
                "1d98b528a875cd08",
                "active",
                "2026-01-01T00:00:00Z",
                "12",
                "-"
            ]
        );
        assert_eq!(
            lines[2][..5],
            [
                "0c87a417f764bcf7",
                "retired",
                "2026-01-01T00:00:00Z",
                "0",
                "2026-01-09T00:00:00Z"
            ]
        );
        // An operator that does not count.
        assert!(table(&[key("0c87a417f764bcf7", "active", None, None)]).contains(" - "));
    }
}
