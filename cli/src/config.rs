//! `.seal.yaml`: per-repository rules that pick recipients and scope by file path, found by
//! walking up from the sealed file's directory (as SOPS finds `.sops.yaml`).
//!
//! The whole file is checked when it is read: every rule's pattern, recipients and
//! recipients file, so a broken rule is reported even when an earlier one matches.

use std::path::{Component, Path, PathBuf};

use regex::Regex;
use seal_shared::keys::SealRecipient;
use seal_shared::scope::Scope;
use seal_shared::suggest::closest;
use serde_json::Value;

use crate::failure::{Context, Failure, Result};
use crate::files::read_recipients_file;
use crate::files::{Input, check_path_arg};

pub const FILE_NAME: &str = ".seal.yaml";

const TOP_FIELDS: &[&str] = &["rules"];
const RULE_FIELDS: &[&str] = &["path", "recipients", "recipientsFile", "scope"];

/// A `.seal.yaml`, read and checked in full.
pub struct Config {
    /// Where it was found, as an absolute path without symbolic links.
    pub path: PathBuf,
    /// Its directory: rule patterns match paths relative to it.
    base: PathBuf,
    rules: Vec<Rule>,
}

pub struct Rule {
    /// The rule's position in `rules`, counted from 0, as messages name it (`rules[2]`).
    pub index: usize,
    /// Matched against a path relative to the config's directory; absent, the rule matches
    /// every path.
    pub pattern: Option<Regex>,
    pub recipients: Vec<SealRecipient>,
    pub scope: Option<Scope>,
}

/// What rules are matched against.
pub enum Subject<'a> {
    /// A path relative to the config's directory, with `/` separators.
    Path(&'a str),
    /// Input on stdin with no `--filename`: only a rule without a path can apply.
    Unnamed,
}

impl Config {
    /// Finds the nearest `.seal.yaml` at or above `start` (a directory), and reads it.
    pub fn find(start: &Path) -> Result<Option<Config>> {
        let start = resolve(start);
        match start
            .ancestors()
            .map(|dir| dir.join(FILE_NAME))
            .find(|candidate| candidate.is_file())
        {
            Some(path) => Config::load(&path).map(Some),
            None => Ok(None),
        }
    }

    pub fn load(path: &Path) -> Result<Config> {
        let path = resolve(path);
        let origin = path.display().to_string();
        // The same bounded, UTF-8-only reader as every other input.
        let text = Input::File(path.clone()).read_text().map_err(|failure| {
            failure.hint("seal reads the nearest .seal.yaml above the sealed file: a few rules in UTF-8 YAML; fix its permissions or content")
        })?;
        let documents: Vec<Value> = seal_shared::yaml::from_multiple(&text).within(&origin)?;
        if documents.len() > 1 {
            return Err(Failure::new(format!(
                "{origin}: holds {} YAML documents; seal reads exactly one",
                documents.len()
            ))
            .hint("put every rule under one `rules:` list and remove the `---` separators"));
        }
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let rules = match documents.into_iter().next() {
            Some(document) => read_rules(&origin, &base, document)?,
            None => Vec::new(),
        };
        Ok(Config { path, base, rules })
    }

    /// `path` relative to the config's directory, with `/` separators, as rules see it.
    pub fn relative(&self, path: &Path) -> String {
        let path = resolve(path);
        let relative = path.strip_prefix(&self.base).unwrap_or(&path);
        relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The first rule that applies to `subject`. No rule applying is an error, not a reason
    /// to seal to some other key: the file exists to say where secrets go.
    pub fn rule_for(&self, subject: &Subject<'_>) -> Result<&Rule> {
        let origin = self.path.display();
        for rule in &self.rules {
            match (&rule.pattern, subject) {
                (None, _) => return Ok(rule),
                (Some(pattern), Subject::Path(path)) => {
                    if pattern.is_match(path) {
                        return Ok(rule);
                    }
                }
                (Some(pattern), Subject::Unnamed) => {
                    return Err(Failure::new(format!(
                        "{origin}: rules[{}]: the input is on stdin, so seal cannot tell whether its path {:?} applies",
                        rule.index,
                        pattern.as_str()
                    ))
                    .hint("name the path the sealed file stands for with --filename PATH (e.g. --filename clusters/prod/db.yaml), or pass -r/-R"));
                }
            }
        }
        let what = match subject {
            Subject::Path(path) => format!("no rule matches {path:?}"),
            Subject::Unnamed => "no rule applies to stdin".to_owned(),
        };
        Err(Failure::new(format!("{origin}: {what}")).hint(
            "add a rule whose path matches it (a rule without `path` matches every file), or pass -r/-R",
        ))
    }
}

fn read_rules(origin: &str, base: &Path, document: Value) -> Result<Vec<Rule>> {
    let Value::Object(mut top) = document else {
        return Err(Failure::new(format!(
            "{origin}: expected a mapping with `rules:`, found {}",
            kind(&document)
        ))
        .hint("start the file with `rules:` followed by a list of rules; see docs/cli.md"));
    };
    check_fields(origin, &top, TOP_FIELDS)?;
    let rules = match top.remove("rules") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(rules)) => rules,
        Some(other) => {
            return Err(Failure::new(format!(
                "{origin}: rules must be a list, found {}",
                kind(&other)
            ))
            .hint("write each rule as a list item: `rules:` then `  - path: ...`"));
        }
    };
    rules
        .into_iter()
        .enumerate()
        .map(|(index, rule)| {
            read_rule(base, index, rule).within(format!("{origin}: rules[{index}]"))
        })
        .collect()
}

fn read_rule(base: &Path, index: usize, rule: Value) -> Result<Rule> {
    let Value::Object(mut fields) = rule else {
        return Err(Failure::new(format!(
            "expected a mapping (path, recipients, recipientsFile, scope), found {}",
            kind(&rule)
        ))
        .hint("write the rule as `- path: ...` with its fields indented below"));
    };
    check_fields("", &fields, RULE_FIELDS)?;
    let pattern = match fields.remove("path") {
        None => None,
        Some(Value::String(pattern)) => Some(Regex::new(&pattern).map_err(|e| {
            Failure::new(format!(
                "path {pattern:?} is not a valid regular expression: {}",
                regex_reason(&e)
            ))
            .hint("path is a regular expression (Rust regex syntax) matched against the file's path relative to .seal.yaml, e.g. '^clusters/prod/'")
        })?),
        Some(other) => return Err(expected_string("path", &other)),
    };
    let mut recipients = Vec::new();
    match fields.remove("recipients") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, entry) in list.into_iter().enumerate() {
                let Value::String(text) = entry else {
                    return Err(expected_string(&format!("recipients[{i}]"), &entry));
                };
                let recipient = text
                    .parse::<SealRecipient>()
                    .within(format!("recipients[{i}]"))?;
                recipients.push(recipient);
            }
        }
        Some(other) => {
            return Err(
                Failure::new(format!("recipients must be a list, found {}", kind(&other)))
                    .hint("write recipients: [age1...] or one `- age1...` per line"),
            );
        }
    }
    match fields.remove("recipientsFile") {
        None | Some(Value::Null) => {}
        Some(Value::String(file)) => {
            check_path_arg(Path::new(&file), "recipientsFile")?;
            let path = base.join(&file);
            let found = read_recipients_file(&path, "recipientsFile").map_err(|failure| {
                if path.exists() {
                    failure
                } else {
                    failure.hint("recipientsFile is relative to the directory of .seal.yaml")
                }
            })?;
            recipients.extend(found);
        }
        Some(other) => return Err(expected_string("recipientsFile", &other)),
    }
    let scope = match fields.remove("scope") {
        None | Some(Value::Null) => None,
        Some(Value::String(scope)) => Some(scope.parse::<Scope>().map_err(|e| {
            Failure::new(format!("scope: {e}"))
                .hint("scope is strict, namespace-wide or cluster-wide")
        })?),
        Some(other) => return Err(expected_string("scope", &other)),
    };
    if recipients.is_empty() {
        return Err(Failure::new("lists no recipients")
            .hint("give the rule `recipients: [age1...]` or `recipientsFile: FILE`"));
    }
    dedupe(&mut recipients);
    Ok(Rule {
        index,
        pattern,
        recipients,
        scope,
    })
}

/// The same key listed twice (say, in `recipients` and in the recipients file) is one
/// recipient.
pub fn dedupe(recipients: &mut Vec<SealRecipient>) {
    let mut seen = std::collections::HashSet::new();
    recipients.retain(|r| seen.insert(r.id));
}

fn check_fields(
    origin: &str,
    fields: &serde_json::Map<String, Value>,
    known: &[&str],
) -> Result<()> {
    let Some(unknown) = fields.keys().find(|k| !known.contains(&k.as_str())) else {
        return Ok(());
    };
    let prefix = if origin.is_empty() {
        String::new()
    } else {
        format!("{origin}: ")
    };
    let failure = Failure::new(format!("{prefix}unknown field {unknown:?}"));
    Err(match closest(unknown, known) {
        Some(near) => failure.hint(format!("did you mean {near}?")),
        None => failure.hint(format!("the fields here are {}", known.join(", "))),
    })
}

/// The regex crate's message is several lines (the pattern, a caret, the reason); a refusal
/// is one line, so only the reason is kept.
fn regex_reason(error: &regex::Error) -> String {
    let text = error.to_string();
    text.lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .unwrap_or(text.lines().last().unwrap_or("invalid"))
        .trim()
        .to_owned()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn expected_string(field: &str, found: &Value) -> Failure {
    Failure::new(format!("{field} must be a string, found {}", kind(found)))
        .hint(format!("quote the value of {field}"))
}

/// An absolute path without symbolic links, for a path that may not exist yet (a file about
/// to be written): the longest existing ancestor is resolved and the rest kept as given.
pub fn resolve(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    let components: Vec<Component<'_>> = absolute.components().collect();
    for split in (1..=components.len()).rev() {
        let prefix: PathBuf = components[..split].iter().collect();
        if let Ok(mut resolved) = prefix.canonicalize() {
            for component in &components[split..] {
                match component {
                    Component::ParentDir => {
                        resolved.pop();
                    }
                    Component::Normal(part) => resolved.push(part),
                    _ => {}
                }
            }
            return resolved;
        }
    }
    absolute
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_errors_become_one_line() {
        let unclosed = String::from("(abc");
        let error = Regex::new(&unclosed).unwrap_err();
        assert_eq!(regex_reason(&error), "unclosed group");
    }
}
