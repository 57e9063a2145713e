//! `seal keys restore`: seal-operator's keys back from the `seal-key-backup` ConfigMap, into
//! an operator namespace of any name. The keys go straight from the backup into key Secrets;
//! nothing is written to disk.

use std::collections::BTreeMap;
use std::path::PathBuf;

use seal_shared::key_backup::{self, BackedUpKey};
use serde::Deserialize;

use crate::cluster::{ClusterArgs, restore_keys};
use crate::failure::{Context, Failure, Result, say};
use crate::files::{Input, check_path_arg};

/// Restore seal-operator's keys from a backup ConfigMap (kubectl get -o yaml of seal-key-backup)
#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  \
    kubectl -n seal-system get cm seal-key-backup -o yaml > seal-key-backup.yaml   # before\n  \
    seal keys restore --from seal-key-backup.yaml -i backup.key --controller-namespace seal-system\n\n\
    Every key comes back active; seal-operator keeps only the newest by creation sealing.\n\
    Keys already present are left alone. Needs permission to create Secrets in the namespace.")]
pub struct Args {
    /// The backup: the ConfigMap seal-key-backup as `kubectl get -o yaml` prints it
    #[arg(long = "from", value_name = "BACKUP.yaml")]
    from: PathBuf,

    /// The backup identity (AGE-SECRET-KEY-1...), whose recipient the operator backed up to;
    /// repeatable
    #[arg(
        short,
        long = "identity",
        value_name = "FILE",
        env = "SEAL_IDENTITY",
        value_delimiter = ',',
        required = true
    )]
    identities: Vec<PathBuf>,

    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Deserialize)]
struct Backup {
    kind: Option<String>,
    #[serde(default)]
    data: BTreeMap<String, String>,
}

pub fn run(args: Args) -> Result<()> {
    let ring = super::decrypt::read_identities(&args.identities)?;
    check_path_arg(&args.from, "--from")?;
    let input = Input::File(args.from.clone());
    let mut docs: Vec<Backup> =
        seal_shared::yaml::from_multiple(&input.read_text()?).within(input.name())?;
    let backup = match docs.len() {
        1 => docs.remove(0),
        n => {
            return Err(Failure::new(format!(
                "{}: holds {n} documents, not one ConfigMap",
                input.name()
            ))
            .hint("export only the backup: kubectl -n NAMESPACE get cm seal-key-backup -o yaml"));
        }
    };
    if backup.kind.as_deref() != Some("ConfigMap") {
        return Err(Failure::new(format!("{}: not a ConfigMap", input.name()))
            .hint("export the backup with: kubectl -n NAMESPACE get cm seal-key-backup -o yaml"));
    }
    let mut keys: Vec<BackedUpKey> = Vec::new();
    for (entry, armored) in &backup.data {
        if key_backup::entry_key_id(entry).is_none() {
            continue;
        }
        let key = key_backup::open_key(entry, armored, &ring)
            .map_err(|e| {
                Failure::new(e).hint(
                    "pass the identity whose recipient was the operator's --key-backup-recipient",
                )
            })
            .within(input.name())?;
        if key.created.as_deref().is_none_or(str::is_empty) {
            return Err(Failure::new(format!(
                "{}: entry {entry} has no creation time",
                input.name()
            ))
            .hint("without it seal cannot tell which key seals; restore that key by hand"));
        }
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(Failure::new(format!("{}: holds no key backups (<key id>.age)", input.name()))
            .hint("is this the seal-key-backup ConfigMap of an operator started with --key-backup-recipient?"));
    }
    let (created, present, cluster) = restore_keys(&args.cluster, &keys)?;
    say(format!(
        "restored {} key(s) into namespace {} of context {:?} ({}){}{}",
        created.len(),
        args.cluster.controller_namespace,
        cluster.context,
        cluster.server,
        if created.is_empty() {
            String::new()
        } else {
            format!(": {}", created.join(", "))
        },
        if present.is_empty() {
            String::new()
        } else {
            format!("; already present: {}", present.join(", "))
        },
    ));
    Ok(())
}
