//! `.seal.yaml`: per-repository rules that pick recipients and scope by file path, found by
//! walking up from the input's directory (as SOPS finds `.sops.yaml`).

use std::path::{Path, PathBuf};

use regex::Regex;
use seal_shared::keys::{SealRecipient, parse_recipients_file};
use seal_shared::scope::Scope;
use serde::Deserialize;

use crate::failure::{Context, Failure, Result};
use crate::files::{KeyFile, read_key_file};

pub const FILE_NAME: &str = ".seal.yaml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    rules: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RuleFile {
    /// A regular expression matched against the input's path relative to the config's
    /// directory, with `/` separators. Absent: the rule matches every file.
    path: Option<String>,
    #[serde(default)]
    recipients: Vec<String>,
    /// A recipients file, relative to the config's directory.
    recipients_file: Option<PathBuf>,
    scope: Option<Scope>,
}

/// The outcome of applying a `.seal.yaml` to one input.
pub struct Rule {
    pub recipients: Vec<SealRecipient>,
    pub scope: Option<Scope>,
}

/// Finds the nearest `.seal.yaml` at or above `start`.
pub fn find(start: &Path) -> Option<PathBuf> {
    let start = start.canonicalize().ok()?;
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|candidate| candidate.is_file())
}

/// Applies the first rule of `config_path` whose path pattern matches `input`.
pub fn rule_for(config_path: &Path, input: &Path) -> Result<Option<Rule>> {
    let origin = config_path.display().to_string();
    let text = crate::files::Input::File(config_path.to_path_buf()).read_text()?;
    let config: ConfigFile = seal_shared::yaml::from_multiple::<ConfigFile>(&text)
        .within(&origin)?
        .into_iter()
        .next()
        .unwrap_or(ConfigFile { rules: Vec::new() });
    let base = config_path.parent().unwrap_or(Path::new("."));
    let relative = relative_path(base, input);
    for (index, rule) in config.rules.into_iter().enumerate() {
        let place = format!("{origin}: rules[{index}]");
        if let Some(pattern) = &rule.path {
            let regex = Regex::new(pattern).map_err(|e| {
                Failure::new(format!(
                    "{place}: path is not a valid regular expression: {e}"
                ))
                .hint("fix the pattern; it is a Rust regex, matched against the path relative to .seal.yaml")
            })?;
            if !regex.is_match(&relative) {
                continue;
            }
        }
        let mut recipients =
            crate::recipients::parse_values(&rule.recipients, &format!("{place}.recipients"))?;
        if let Some(file) = &rule.recipients_file {
            let path = base.join(file);
            let text =
                read_key_file(&path, KeyFile::Recipients, "recipientsFile").within(&place)?;
            recipients.extend(parse_recipients_file(&text, &path.display().to_string())?);
        }
        if recipients.is_empty() {
            return Err(Failure::new(format!(
                "{place}: the rule matching {relative} lists no recipients"
            ))
            .hint("give the rule recipients: or recipientsFile:"));
        }
        return Ok(Some(Rule {
            recipients,
            scope: rule.scope,
        }));
    }
    Ok(None)
}

fn relative_path(base: &Path, input: &Path) -> String {
    let input = input.canonicalize().unwrap_or_else(|_| input.to_path_buf());
    let base = base.canonicalize().unwrap_or_else(|_| base.to_path_buf());
    let relative = input.strip_prefix(&base).unwrap_or(&input);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
