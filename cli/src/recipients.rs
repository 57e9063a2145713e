//! Where the recipients of a seal come from, in order: `-r`/`-R` flags, else the nearest
//! `.seal.yaml` (which must then have a rule for the file), else the cluster's current key.
//! Whatever seal picks besides explicit flags, it says so on stderr.

use std::path::{Path, PathBuf};

use clap::Args;
use seal_shared::keys::{KeyId, SealRecipient};
use seal_shared::scope::Scope;

use crate::cluster::ClusterKey;
use crate::config::{self, Config, Subject};
use crate::failure::{Context, Failure, Result};
use crate::files::{check_path_arg, read_recipients_file};

#[derive(Args, Debug, Clone)]
pub struct RecipientArgs {
    /// Seal to this age recipient (age1...); repeat for several clusters or a recovery key
    #[arg(
        short = 'r',
        long = "recipient",
        value_name = "RECIPIENT",
        env = "SEAL_RECIPIENT",
        value_delimiter = ','
    )]
    pub recipients: Vec<String>,

    /// Seal to every recipient listed in FILE (age's recipients file format); repeatable
    #[arg(
        short = 'R',
        long = "recipients-file",
        value_name = "FILE",
        env = "SEAL_RECIPIENTS_FILE",
        value_delimiter = ','
    )]
    pub recipients_files: Vec<PathBuf>,

    /// Pick the .seal.yaml rule as if the input were the file PATH (for input on stdin, or a
    /// file that will live elsewhere); .seal.yaml is looked up from PATH's directory
    #[arg(long, value_name = "PATH", conflicts_with = "merge_into")]
    pub filename: Option<PathBuf>,

    /// Without -r/-R/.seal.yaml, the sealing key is read from seal-operator's public-key
    /// ConfigMap in this cluster, through your kubeconfig
    #[command(flatten, next_help_heading = "Cluster key (without -r/-R/.seal.yaml)")]
    pub cluster: crate::cluster::ClusterArgs,
}

/// The file a seal is for, as far as picking recipients goes.
pub enum Target<'a> {
    /// A file: its path is matched against `.seal.yaml` rules.
    File(&'a Path),
    /// Input on stdin: `.seal.yaml` is looked up from the working directory.
    Stdin,
}

/// Where the recipients came from, for messages.
pub enum Source {
    Flags,
    Rule {
        config: PathBuf,
        index: usize,
        matched: Option<String>,
    },
    Cluster(ClusterKey),
}

/// Recipients and the scope a `.seal.yaml` rule may suggest.
pub struct Resolved {
    pub recipients: Vec<SealRecipient>,
    pub scope: Option<Scope>,
    pub source: Source,
}

impl Resolved {
    /// The key ids, sorted, as messages list them.
    pub fn key_ids(&self) -> Vec<KeyId> {
        let mut ids: Vec<KeyId> = self.recipients.iter().map(|r| r.id).collect();
        ids.sort();
        ids
    }

    /// Where the recipients came from, in a message: `-r/-R`, a rule, the cluster.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Flags => "-r/-R".to_owned(),
            Source::Rule {
                config,
                index,
                matched,
            } => {
                let mut text = format!("rules[{index}] of {}", config.display());
                if let Some(path) = matched {
                    text.push_str(&format!(" (matching {path:?})"));
                }
                text
            }
            Source::Cluster(key) => key.describe(),
        }
    }

    /// Says on stderr which keys seal picked, unless the user named them.
    pub fn announce(&self) {
        if matches!(self.source, Source::Flags) {
            return;
        }
        crate::failure::say(format!(
            "sealing to {} {} from {}",
            if self.recipients.len() == 1 {
                "key"
            } else {
                "keys"
            },
            list(&self.key_ids()),
            self.describe()
        ));
    }
}

/// Where the `.seal.yaml` for `path` (none: stdin) is looked up from: the real file's
/// directory, the one its path is matched relative to, so a symbolic link cannot pair one
/// tree's .seal.yaml with another tree's path.
pub fn config_start(path: Option<&Path>) -> PathBuf {
    let real = path.map(config::resolve);
    match real.as_deref().and_then(Path::parent) {
        Some(dir) => dir.to_path_buf(),
        None => PathBuf::from("."),
    }
}

impl Resolved {
    /// The recipients `config`'s rule for `path` (none: stdin) names.
    pub fn from_rule(config: &Config, path: Option<&Path>) -> Result<Resolved> {
        let matched = path.map(|p| config.relative(p));
        let subject = match &matched {
            Some(relative) => Subject::Path(relative),
            None => Subject::Unnamed,
        };
        let rule = config.rule_for(&subject)?;
        Ok(Resolved {
            recipients: rule.recipients.clone(),
            scope: rule.scope,
            source: Source::Rule {
                config: config.path.clone(),
                index: rule.index,
                matched,
            },
        })
    }
}

pub fn list(ids: &[KeyId]) -> String {
    if ids.is_empty() {
        return "(none)".to_owned();
    }
    ids.iter()
        .map(KeyId::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl RecipientArgs {
    pub fn explicit(&self) -> bool {
        !self.recipients.is_empty() || !self.recipients_files.is_empty()
    }

    /// The recipients for sealing `target` (or the file `--filename` names instead). The
    /// caller announces them once the seal has succeeded, so a refusal stays one message.
    pub fn resolve(&self, target: Target<'_>) -> Result<Resolved> {
        self.resolve_from(target, true)
    }

    /// As [`resolve`](Self::resolve), but refuses rather than ask a cluster: a command that
    /// seals many files (`seal import`) must not seal each to whatever cluster the
    /// kubeconfig happens to point at.
    pub fn resolve_offline(&self, target: Target<'_>) -> Result<Resolved> {
        self.resolve_from(target, false)
    }

    fn resolve_from(&self, target: Target<'_>, ask_cluster: bool) -> Result<Resolved> {
        if self.explicit() {
            return self.flagged();
        }
        if let Some(name) = &self.filename {
            check_path_arg(name, &crate::given_as::given_as("filename", "--filename"))?;
        }
        let path = self.filename.as_deref().or(match target {
            Target::File(path) => Some(path),
            Target::Stdin => None,
        });
        if let Some(config) = Config::find(&config_start(path))? {
            return Resolved::from_rule(&config, path);
        }
        if !ask_cluster {
            return Err(Failure::new(format!(
                "no recipients given (-r/-R) and no {} found above it",
                config::FILE_NAME
            ))
            .hint(format!(
                "pass -r age1... or -R FILE (`seal keys --recipient` prints a cluster's key), or add a {} with a rule for this path",
                config::FILE_NAME
            )));
        }
        let key = crate::cluster::sealing_key(&self.cluster).within(format!(
            "no recipients given (-r/-R) and no {} found, so the cluster's key is needed",
            config::FILE_NAME
        ))?;
        Ok(Resolved {
            recipients: vec![key.recipient.clone()],
            scope: None,
            source: Source::Cluster(key),
        })
    }

    fn flagged(&self) -> Result<Resolved> {
        let mut recipients = parse_values(
            &self.recipients,
            &crate::given_as::given_as("recipients", "-r/--recipient"),
        )?;
        let files_given_as = crate::given_as::given_as("recipients_files", "-R/--recipients-file");
        for path in &self.recipients_files {
            recipients.extend(read_recipients_file(path, &files_given_as)?);
        }
        config::dedupe(&mut recipients);
        Ok(Resolved {
            recipients,
            scope: None,
            source: Source::Flags,
        })
    }
}

/// Parses recipients given as values (of -r or SEAL_RECIPIENT). An error names where the
/// value came from and which one it was, never the value: it may be a private key. A
/// `.seal.yaml` list names its entries itself (`recipients[1]`); both go through the one
/// recipient parser, [`SealRecipient`]'s `FromStr`.
pub fn parse_values(values: &[String], given_as: &str) -> Result<Vec<SealRecipient>> {
    values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            value.parse::<SealRecipient>().within(if values.len() > 1 {
                format!("{given_as} (value {} of {})", index + 1, values.len())
            } else {
                given_as.to_owned()
            })
        })
        .collect()
}
