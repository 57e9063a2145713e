//! Where the recipients of a seal come from, in order: `-r`/`-R` flags, then the nearest
//! `.seal.yaml` rule for the input file.

use std::path::PathBuf;

use clap::Args;
use seal_shared::keys::{SealRecipient, parse_recipients_file};
use seal_shared::scope::Scope;

use crate::config;
use crate::failure::{Context, Failure, Result};
use crate::files::{Input, KeyFile, read_key_file};

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

    /// Without -r/-R/.seal.yaml, fetch the sealing key from seal-operator's public-key
    /// ConfigMap in this namespace, through your kubeconfig
    #[arg(long, value_name = "NAMESPACE", env = "SEAL_CONTROLLER_NAMESPACE", default_value = crate::cluster::DEFAULT_CONTROLLER_NAMESPACE)]
    pub controller_namespace: String,
}

/// Recipients and the scope a `.seal.yaml` rule may suggest.
pub struct Resolved {
    pub recipients: Vec<SealRecipient>,
    pub scope: Option<Scope>,
}

impl RecipientArgs {
    pub fn resolve(&self, input: &Input) -> Result<Resolved> {
        if !self.recipients.is_empty() || !self.recipients_files.is_empty() {
            let mut recipients = parse_values(
                &self.recipients,
                &crate::cli::given_as("recipients", "-r/--recipient"),
            )?;
            let files_given_as = crate::cli::given_as("recipients_files", "-R/--recipients-file");
            for path in &self.recipients_files {
                let text = read_key_file(path, KeyFile::Recipients, &files_given_as)?;
                let origin = path.display().to_string();
                let found = parse_recipients_file(&text, &origin)?;
                if found.is_empty() {
                    return Err(Failure::new(format!("{origin}: lists no recipients"))
                        .hint("a recipients file has one age1... recipient per line; `seal keys --recipient` prints a cluster's"));
                }
                recipients.extend(found);
            }
            return Ok(Resolved {
                recipients,
                scope: None,
            });
        }
        let start = match input {
            Input::File(path) => path.parent().map(|p| {
                if p.as_os_str().is_empty() {
                    ".".into()
                } else {
                    p.to_path_buf()
                }
            }),
            Input::Stdin => Some(PathBuf::from(".")),
        };
        if let (Some(start), Input::File(path)) = (start.as_ref(), input)
            && let Some(config_path) = config::find(start)
            && let Some(rule) = config::rule_for(&config_path, path)?
        {
            return Ok(Resolved {
                recipients: rule.recipients,
                scope: rule.scope,
            });
        }
        let recipient = crate::cluster::sealing_recipient(&self.controller_namespace).map_err(|f| {
            f.hint(format!(
                "no recipients given: pass -r age1... or -R recipients.txt, add a {} rule matching this file, or point KUBECONFIG at a cluster running seal-operator",
                config::FILE_NAME
            ))
        })?;
        Ok(Resolved {
            recipients: vec![recipient],
            scope: None,
        })
    }
}

/// Parses recipients given as values (of -r, SEAL_RECIPIENT or a `.seal.yaml` list). An
/// error names where the value came from and which one it was, never the value: it may be a
/// private key.
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
