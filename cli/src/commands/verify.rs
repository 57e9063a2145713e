use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use seal_shared::escape::contains_identity;
use seal_shared::keys::KeyId;
use seal_shared::sealed_secret::{
    API_VERSION, KIND, SealedSecret, describe_sealed, inspect_entry, parse_sealed_secrets,
    placement_of,
};
use serde_json::Value;

use crate::config::{self, Config, Subject};
use crate::failure::{Failure, Result, clean};
use crate::files::{Input, write_stdout};
use crate::keylist::{KeyList, KeyState};
use crate::walk::collect_manifests;

/// Check sealed files in a repository without any private key: the CI gate
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  seal verify\n  seal verify --keys keys.json --strict clusters/\n  \
    seal verify --format github   # annotations in a GitHub Actions run\n\n\
    Reads every .yaml, .yml and .json file under each PATH (default: the current directory), \
    skipping what .gitignore, .git/info/exclude and .ignore files exclude, and reports:\n  \
    - plaintext Secrets (kind: Secret with data or stringData), age private keys: error\n  \
    - SealedSecrets that do not parse, and items whose binding (namespace, name, key, scope) \
    does not match where they sit: error\n  \
    - items sealed to keys other than exactly those the .seal.yaml rule for the file names, or \
    to keys not in --keys: error\n  \
    - items sealed only to a key that is no longer the sealing key (with --keys): warning, \
    error with --strict\n\n\
    No item is opened: bindings and key ids are read from the items' headers, in the clear \
    and unauthenticated, so this checks what was committed, not that the cluster will open \
    it. Values are never printed.\n\n\
    Exit status: 0 clean, 1 problems found, 2 usage error (bad path, --keys or .seal.yaml)."
)]
pub struct Args {
    /// Files or directories to check; directories are searched recursively
    #[arg(value_name = "PATH", default_value = ".")]
    paths: Vec<PathBuf>,

    /// The cluster's key list (the seal-public-keys ConfigMap's keys.json, or GET /v1/keys):
    /// every item must be sealed to one of its keys, and should be sealed to the current one
    #[arg(long, value_name = "FILE")]
    keys: Option<PathBuf>,

    /// Treat warnings (items sealed only to an old key) as errors
    #[arg(long)]
    strict: bool,

    /// How to print findings: text (file:line: error: ...), json, or github (workflow
    /// commands that GitHub Actions shows as annotations)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Text,
    Json,
    Github,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Severity {
    Error,
    Warning,
    /// Said, never counted: a file seal could not read as YAML and that names nothing of
    /// seal's (a Helm template, say).
    Note,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

struct Finding {
    file: String,
    line: usize,
    severity: Severity,
    message: String,
}

/// What every file is checked against.
struct Policy {
    keys: Option<KeyList>,
    strict: bool,
    /// Per directory holding files to check, its nearest `.seal.yaml`.
    configs: HashMap<PathBuf, Option<Config>>,
}

pub fn run(args: Args) -> Result<()> {
    let keys = args.keys.as_deref().map(KeyList::load).transpose()?;
    let files = collect(&args.paths)?;
    let mut configs = HashMap::new();
    for file in &files {
        let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        if let std::collections::hash_map::Entry::Vacant(entry) = configs.entry(dir) {
            let found = Config::find(entry.key()).map_err(Failure::usage)?;
            entry.insert(found);
        }
    }
    let unchecked_ids = keys.is_none() && configs.values().all(Option::is_none);
    let policy = Policy {
        keys,
        strict: args.strict,
        configs,
    };
    let mut findings: Vec<Finding> = files
        .par_iter()
        .flat_map_iter(|file| check_file(file, &policy))
        .collect();
    findings.sort_by(|a, b| (&a.file, a.line, a.severity).cmp(&(&b.file, b.line, b.severity)));
    let errors = count(&findings, Severity::Error);
    let warnings = count(&findings, Severity::Warning);
    let report = match args.format {
        Format::Text => text(&findings),
        Format::Json => json(&findings, files.len(), errors, warnings),
        Format::Github => github(&findings),
    };
    write_stdout(report.as_bytes())?;
    let summary = format!(
        "{} file(s) checked{}: {errors} error(s), {warnings} warning(s)",
        files.len(),
        if unchecked_ids {
            " (key ids not checked: no .seal.yaml and no --keys)"
        } else {
            ""
        }
    );
    if errors > 0 {
        return Err(Failure::new(summary).hint(
            "each problem is listed above with its file and line; see docs/gitops.md for how to fix each kind",
        ));
    }
    crate::failure::say(format!("verify: {summary}"));
    Ok(())
}

fn count(findings: &[Finding], severity: Severity) -> usize {
    findings.iter().filter(|f| f.severity == severity).count()
}

/// The files to check: each PATH that is a file, and every manifest under each directory
/// that no ignore file excludes (see [`collect_manifests`]).
pub(crate) fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let manifests = collect_manifests(paths, "PATH").map_err(Failure::usage)?;
    Ok(manifests.into_iter().map(|m| m.path).collect())
}

pub(crate) fn shown(path: &Path) -> String {
    let text = path.display().to_string();
    clean(text.strip_prefix("./").unwrap_or(&text))
}

fn check_file(path: &Path, policy: &Policy) -> Vec<Finding> {
    let file = shown(path);
    let mut findings = Vec::new();
    let mut report = |line: usize, severity: Severity, message: String| {
        let severity = match severity {
            Severity::Warning if policy.strict => Severity::Error,
            other => other,
        };
        findings.push(Finding {
            file: file.clone(),
            line: line.max(1),
            severity,
            message: clean(&message),
        });
    };
    let text = match Input::File(path.to_path_buf()).read_text() {
        Ok(text) => text,
        Err(failure) => {
            report(1, Severity::Error, failure.message());
            return findings;
        }
    };
    // Whatever the file is, a private key in it is a leak; the key itself is never shown.
    if let Some(index) = text.lines().position(contains_identity) {
        report(
            index + 1,
            Severity::Error,
            "holds an age private key (AGE-SECRET-KEY-1...); remove it from the repository and its history, and replace the key".to_owned(),
        );
    }
    let docs: Vec<Value> = match seal_shared::yaml::from_multiple(&text) {
        Ok(docs) => docs,
        Err(error) => {
            let line = match &error {
                seal_shared::Error::Yaml { line, .. } => *line,
                _ => 1,
            };
            if text.contains(API_VERSION) {
                report(
                    line,
                    Severity::Error,
                    format!("does not parse as YAML: {error}"),
                );
            } else {
                report(
                    line,
                    Severity::Note,
                    format!("not YAML ({error}); not checked"),
                );
            }
            return findings;
        }
    };
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    let lines = Lines::new(&text, docs.len());
    let rule = rule_for(path, policy);
    for (index, doc) in docs.iter().enumerate() {
        let at = lines.doc(index);
        check_doc(doc, &at, &rule, policy, &mut report);
    }
    findings
}

/// The `.seal.yaml` rule for a file: none when there is no `.seal.yaml`, a message when there
/// is one but no rule applies (encrypt would have refused to seal the file).
enum RuleFor<'a> {
    NoConfig,
    Rule(BTreeSet<KeyId>, &'a str, usize),
    Unmatched(String),
}

fn rule_for<'a>(path: &Path, policy: &'a Policy) -> RuleFor<'a> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let Some(Some(config)) = policy.configs.get(dir) else {
        return RuleFor::NoConfig;
    };
    let relative = config.relative(path);
    match config.rule_for(&Subject::Path(&relative)) {
        Ok(rule) => RuleFor::Rule(
            rule.recipients.iter().map(|r| r.id).collect(),
            config.path.to_str().unwrap_or(config::FILE_NAME),
            rule.index,
        ),
        Err(failure) => RuleFor::Unmatched(failure.message()),
    }
}

fn check_doc(
    doc: &Value,
    at: &DocLines<'_>,
    rule: &RuleFor<'_>,
    policy: &Policy,
    report: &mut impl FnMut(usize, Severity, String),
) {
    let field = |name: &str| doc.get(name).and_then(Value::as_str);
    let kind = field("kind").unwrap_or_default();
    let api_version = field("apiVersion").unwrap_or_default();
    match (api_version, kind) {
        ("v1" | "", "Secret") => {
            for key in ["data", "stringData"] {
                let holds_values = match doc.get(key) {
                    None | Some(Value::Null) => false,
                    Some(Value::Object(map)) => !map.is_empty(),
                    Some(_) => true,
                };
                if holds_values {
                    report(
                        at.top_level(key),
                        Severity::Error,
                        format!(
                            "plaintext {}: its values are in the clear under {key}; seal it with `seal encrypt` and commit only the SealedSecret",
                            describe(doc, "Secret")
                        ),
                    );
                }
            }
        }
        (API_VERSION, KIND) => check_sealed(doc, at, rule, policy, report),
        (_, list) if list.ends_with("List") => {
            if let Some(Value::Array(items)) = doc.get("items") {
                for item in items {
                    check_doc(item, &at.whole(), rule, policy, report);
                }
            }
        }
        _ => {}
    }
}

fn describe(doc: &Value, kind: &str) -> String {
    let meta = |f: &str| {
        doc.get("metadata")
            .and_then(|m| m.get(f))
            .and_then(Value::as_str)
    };
    seal_shared::manifest::describe(meta("namespace"), meta("name")).replacen("Secret", kind, 1)
}

fn check_sealed(
    doc: &Value,
    at: &DocLines<'_>,
    rule: &RuleFor<'_>,
    policy: &Policy,
    report: &mut impl FnMut(usize, Severity, String),
) {
    // The library's own parser and checks, on this one document.
    let sealed: SealedSecret = match serde_json::to_string(doc)
        .map_err(|_| "cannot be read".to_owned())
        .and_then(|json| parse_sealed_secrets(&json).map_err(|e| e.to_string()))
        .and_then(|mut docs| docs.pop().ok_or_else(|| "is empty".to_owned()))
    {
        Ok(sealed) => sealed,
        Err(problem) => {
            let problem = problem.strip_prefix("document 1: ").unwrap_or(&problem);
            let problem = problem
                .strip_prefix("line 1, column ")
                .and_then(|rest| rest.split_once(": ").map(|(_, p)| p))
                .unwrap_or(problem);
            report(
                at.kind(),
                Severity::Error,
                format!(
                    "{} does not parse: {problem}",
                    describe(doc, "SealedSecret")
                ),
            );
            return;
        }
    };
    let object = describe_sealed(&sealed);
    if let RuleFor::Unmatched(message) = rule {
        report(at.kind(), Severity::Error, format!("{object}: {message}"));
    }
    for (key, encoded) in &sealed.spec.encrypted_data {
        let line = at.item(key);
        let mut problem = |severity, text: String| {
            report(line, severity, format!("{object}: item {key:?}: {text}"));
        };
        let (binding, ids) = match inspect_entry(key, encoded) {
            Ok(found) => found,
            Err(seal_shared::Error::Unseal { source, .. }) => {
                problem(Severity::Error, source.to_string());
                continue;
            }
            Err(error) => {
                let text = error.to_string();
                let prefix = format!("item {key:?}: ");
                problem(
                    Severity::Error,
                    text.strip_prefix(&prefix).unwrap_or(&text).to_owned(),
                );
                continue;
            }
        };
        if binding.scope != sealed.spec.scope {
            problem(
                Severity::Error,
                format!(
                    "sealed with scope {} but the SealedSecret declares {}; reseal it (seal encrypt --merge-into)",
                    binding.scope, sealed.spec.scope
                ),
            );
        } else if !binding.admits(&placement_of(&sealed, key)) {
            problem(
                Severity::Error,
                format!(
                    "sealed for {binding}, not for where it sits; a sealed item cannot be moved: reseal it here (seal encrypt --merge-into)"
                ),
            );
        }
        let sealed_to: BTreeSet<KeyId> = ids.iter().copied().collect();
        let mut allowed_by_rule = BTreeSet::new();
        if let RuleFor::Rule(expected, origin, index) = rule {
            allowed_by_rule = expected.clone();
            let missing = join(expected.difference(&sealed_to));
            let extra = join(sealed_to.difference(expected));
            let mut what = Vec::new();
            if !missing.is_empty() {
                what.push(format!("not sealed to {missing}"));
            }
            if !extra.is_empty() {
                what.push(format!("sealed to {extra}, which it does not name"));
            }
            if !what.is_empty() {
                problem(
                    Severity::Error,
                    format!(
                        "{}, but {origin} rules[{index}] names exactly {}; reseal it (seal encrypt --merge-into)",
                        what.join(" and "),
                        join(expected.iter())
                    ),
                );
            }
        }
        if let Some(list) = &policy.keys {
            let unknown: Vec<KeyId> = ids
                .iter()
                .copied()
                .filter(|id| list.state(*id).is_none() && !allowed_by_rule.contains(id))
                .collect();
            let cluster: Vec<KeyState> = ids.iter().filter_map(|id| list.state(*id)).collect();
            if !unknown.is_empty() {
                problem(
                    Severity::Error,
                    format!(
                        "sealed to {}, not in --keys{}",
                        join(unknown.iter()),
                        match rule {
                            RuleFor::Rule(..) => " nor named by its .seal.yaml rule",
                            _ => "",
                        }
                    ),
                );
            }
            let retired: Vec<KeyId> = ids
                .iter()
                .copied()
                .filter(|id| list.state(*id) == Some(KeyState::Retired))
                .collect();
            if cluster.is_empty() {
                problem(
                    Severity::Error,
                    "sealed to none of the keys in --keys: the cluster cannot open it".to_owned(),
                );
            } else if cluster.iter().all(|state| *state == KeyState::Retired) {
                problem(
                    Severity::Error,
                    format!(
                        "sealed only to retired key(s) {}: the cluster can no longer open it; reseal it to the current key (seal reseal), or bring the key back before its grace period is over (seal keys unretire {})",
                        join(retired.iter()),
                        retired.first().map(KeyId::to_string).unwrap_or_default()
                    ),
                );
            } else if !cluster.contains(&KeyState::Current) {
                problem(
                    Severity::Warning,
                    "sealed only to keys that no longer seal (decrypt-only); reseal it to the current key: seal reseal".to_owned(),
                );
            }
        }
    }
}

fn join<'a>(ids: impl Iterator<Item = &'a KeyId>) -> String {
    ids.map(KeyId::to_string).collect::<Vec<_>>().join(", ")
}

/// Lines of a file, to say where a document or an item is. Found by reading the text, not
/// from the parser: YAML documents start at `---` lines, and a field's line is the first line
/// in its document that starts with it. Anything not found falls back to the document's
/// first line, so a finding always has a line, if sometimes a coarse one.
struct Lines<'a> {
    lines: Vec<&'a str>,
    /// Per parsed document, its lines as [start, end) indexes into `lines`.
    docs: Vec<(usize, usize)>,
}

struct DocLines<'a> {
    lines: &'a [&'a str],
    /// The index in the file of `lines[0]`.
    offset: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str, parsed: usize) -> Lines<'a> {
        let lines: Vec<&str> = text.lines().collect();
        let mut docs = Vec::new();
        let mut start = 0;
        let mut content = false;
        for (i, line) in lines.iter().enumerate() {
            let separator = *line == "---"
                || line.starts_with("--- ")
                || line.starts_with("---\t")
                || *line == "...";
            if separator {
                if content {
                    docs.push((start, i));
                }
                start = i + 1;
                content = false;
            } else if !line.trim().is_empty() && !line.trim_start().starts_with('#') {
                content = true;
            }
        }
        if content {
            docs.push((start, lines.len()));
        }
        if docs.len() != parsed {
            // Layout seal does not follow (a `--- ` with content, say): one coarse range.
            docs = vec![(0, lines.len()); parsed];
        }
        Lines { lines, docs }
    }

    fn doc(&self, index: usize) -> DocLines<'_> {
        let (start, end) = self.docs.get(index).copied().unwrap_or((0, 0));
        DocLines {
            lines: &self.lines[start..end],
            offset: start,
        }
    }
}

impl DocLines<'_> {
    fn whole(&self) -> DocLines<'_> {
        DocLines {
            lines: self.lines,
            offset: self.offset,
        }
    }

    fn first(&self) -> usize {
        let skip = self
            .lines
            .iter()
            .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .unwrap_or(0);
        self.offset + skip + 1
    }

    fn find(&self, from: usize, matches: impl Fn(&str) -> bool) -> Option<usize> {
        self.lines
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, line)| matches(line))
            .map(|(i, _)| i)
    }

    fn starts_key(line: &str, key: &str) -> bool {
        let line = line
            .trim_start()
            .trim_start_matches(['{', ','])
            .trim_start();
        [format!("{key}:"), format!("\"{key}\""), format!("'{key}'")]
            .iter()
            .any(|prefix| line.starts_with(prefix.as_str()))
    }

    /// A field at the top of the document (`kind`, `data`).
    fn top_level(&self, key: &str) -> usize {
        self.find(0, |line| {
            line.starts_with(&format!("{key}:"))
                || (line.contains(&format!("\"{key}\"")) && !line.starts_with(' '))
                || Self::starts_key(line, key)
        })
        .map_or_else(|| self.first(), |i| self.offset + i + 1)
    }

    fn kind(&self) -> usize {
        self.top_level("kind")
    }

    /// An item under `spec.encryptedData`.
    fn item(&self, key: &str) -> usize {
        let Some(data) = self.find(0, |line| line.contains("encryptedData")) else {
            return self.kind();
        };
        let key_line = self.find(data + 1, |line| Self::starts_key(line, key));
        self.offset + key_line.unwrap_or(data) + 1
    }
}

fn text(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let _ = writeln!(
            out,
            "{}:{}: {}: {}",
            f.file,
            f.line,
            f.severity.as_str(),
            f.message
        );
    }
    out
}

fn json(findings: &[Finding], files: usize, errors: usize, warnings: usize) -> String {
    let list: Vec<Value> = findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "file": f.file,
                "line": f.line,
                "severity": f.severity.as_str(),
                "message": f.message,
            })
        })
        .collect();
    let report = serde_json::json!({
        "files": files,
        "errors": errors,
        "warnings": warnings,
        "findings": list,
    });
    format!("{report}\n")
}

/// GitHub Actions workflow commands: `::error file=F,line=L::message`, escaped as the runner
/// unescapes them.
fn github(findings: &[Finding]) -> String {
    fn data(text: &str) -> String {
        text.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    }
    fn property(text: &str) -> String {
        data(text).replace(':', "%3A").replace(',', "%2C")
    }
    let mut out = String::new();
    for f in findings {
        let command = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "notice",
        };
        let _ = writeln!(
            out,
            "::{command} file={},line={},title=seal verify::{}",
            property(&f.file),
            f.line,
            data(&f.message)
        );
    }
    out
}
