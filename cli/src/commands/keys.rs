use seal_shared::escape::escape;
use seal_shared::public_keys::{KEYS_KEY, PublishedKey};

use crate::cluster::{DEFAULT_CONTROLLER_NAMESPACE, public_keys, sealing_key};
use crate::failure::{Failure, Result};
use crate::files::write_stdout;

/// List a cluster's public keys (the sealing key, decrypt-only and retired keys, and how many
/// SealedSecrets each opened) from seal-operator; retire, unretire or restore keys
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  seal keys\n  seal keys --controller-namespace seal && seal keys --recipient > cluster.txt\n  \
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
