//! `seal encrypt` over several files and directories: each input's SealedSecrets are written
//! beside it (`db.yaml` -> `db.sealed.yaml`), files sealed on every core. Every file is
//! tried; one that fails is reported with its name and gets no output, the others are
//! written, and the run exits 1.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use rayon::prelude::*;
use seal_shared::manifest::{DocumentKind, document_kinds, parse_secrets};
use seal_shared::sealed_secret::{SealRequest, SealedSecret, seal_secret};
use seal_shared::{Scope, yaml};

use super::{Args, pick, refuse_empty};
use crate::config::{self, Config};
use crate::failure::{Context, Failure, Result, say};
use crate::files::{Input, Mode, beside, check_suffix, write_atomic};
use crate::progress::Progress;
use crate::recipients::{Resolved, Source, Target, config_start, list};
use crate::walk::{Manifest, collect_manifests};

/// What `--suffix` is when several inputs or a directory ask for outputs beside the inputs.
pub const DEFAULT_SUFFIX: &str = ".sealed";

/// Whether this call seals files to outputs beside them rather than one input to one output:
/// with more than one input, a directory, or `--suffix`.
pub fn wanted(args: &Args) -> bool {
    args.suffix.is_some()
        || args.input.len() > 1
        || args
            .input
            .iter()
            .any(|path| path != Path::new("-") && path.is_dir())
}

/// One input and where its SealedSecrets go.
struct Job {
    input: Manifest,
    output: PathBuf,
}

/// What became of one input.
enum Outcome {
    Sealed {
        secrets: usize,
        items: usize,
        /// Where the recipients came from, for the closing lines; `None` for -r/-R.
        source: Option<String>,
    },
    /// Found in a directory, but holding no Secret.
    NoSecret,
    Failed(Failure),
}

pub fn run(args: &Args, scope: Option<Scope>) -> Result<()> {
    let started = Instant::now();
    refuse_ambiguous(args)?;
    let suffix = args.suffix.as_deref().unwrap_or(DEFAULT_SUFFIX);
    check_suffix(suffix).map_err(Failure::usage)?;
    let manifests = collect_manifests(&args.input, "FILE|DIR").map_err(Failure::usage)?;
    let (jobs, outputs_skipped) = plan(manifests, suffix)?;
    if jobs.is_empty() {
        return Err(Failure::new(format!(
            "found no manifest to seal{}",
            if outputs_skipped > 0 {
                format!(" (only {} already sealed)", plural(outputs_skipped, "file"))
            } else {
                String::new()
            }
        ))
        .hint("name Secret manifests (.yaml, .yml or .json files) or directories holding them"));
    }
    let recipients = Recipients::new(args)?;
    let progress = Progress::new(jobs.len());
    let outcomes: Vec<Outcome> = jobs
        .par_iter()
        .map(|job| {
            let outcome = match seal_file(job, args, scope, &recipients, &progress) {
                Ok(outcome) => outcome,
                Err(failure) => Outcome::Failed(failure),
            };
            progress.file_done();
            outcome
        })
        .collect();
    progress.finish();
    report(&jobs, outcomes, outputs_skipped, started)
}

/// Several inputs cannot share one output, one merge target, one in-place file, one name or
/// one `--filename`: refused before anything is read, rather than applied to one of them.
fn refuse_ambiguous(args: &Args) -> Result<()> {
    let many = if args.input.len() > 1 {
        format!("{} inputs", args.input.len())
    } else if args.suffix.is_some() && !args.input.iter().any(|p| p.is_dir()) {
        "--suffix".to_owned()
    } else {
        "a directory".to_owned()
    };
    let refuse = |flag: &str, hint: &str| {
        Err(
            Failure::new(format!("{flag} cannot be combined with {many}"))
                .hint(hint.to_owned())
                .usage(),
        )
    };
    if args.input.is_empty() || args.input.iter().any(|p| p == Path::new("-")) {
        return refuse(
            "stdin (-)",
            "name the files to seal; or seal stdin alone: seal encrypt < secret.yaml",
        );
    }
    if args.output.is_some() {
        return refuse(
            "-o/--output",
            "drop -o: each input's SealedSecrets are written beside it (db.yaml -> db.sealed.yaml, see --suffix); or seal one file with -o",
        );
    }
    if args.merge_into.is_some() {
        return refuse(
            "--merge-into",
            "merge one input at a time: seal encrypt --merge-into SEALED NEW.yaml",
        );
    }
    if args.in_place {
        return refuse(
            "-w/--in-place",
            "drop -w to write each beside its input (see --suffix), or replace one file at a time with -w",
        );
    }
    if args.name.is_some() {
        return refuse(
            "--name",
            "set metadata.name in each manifest, or seal the one unnamed Secret on its own with --name",
        );
    }
    if args.recipients.filename.is_some() {
        return refuse(
            "--filename",
            "each file picks its own .seal.yaml rule; --filename is for input on stdin",
        );
    }
    Ok(())
}

/// The inputs to seal and their outputs, leaving out files that are sealed outputs already
/// (whose name ends in the suffix), with how many those were. Two inputs sealed to one
/// output are refused before anything is written.
fn plan(manifests: Vec<Manifest>, suffix: &str) -> Result<(Vec<Job>, usize)> {
    let mut jobs = Vec::new();
    let mut skipped = 0;
    let mut inputs = HashSet::new();
    let mut outputs: HashMap<PathBuf, PathBuf> = HashMap::new();
    for input in manifests {
        if is_sealed_output(&input.path, suffix) {
            skipped += 1;
            continue;
        }
        // The same file named twice (a.yaml and ./a.yaml, or a file and its directory).
        if !inputs.insert(config::resolve(&input.path)) {
            continue;
        }
        let output = output_for(&input.path, suffix);
        if let Some(other) = outputs.insert(config::resolve(&output), input.path.clone()) {
            return Err(Failure::new(format!(
                "{} and {} would both be sealed to {}",
                other.display(),
                input.path.display(),
                output.display()
            ))
            .hint("rename one of them, or seal one of them on its own with -o")
            .usage());
        }
        jobs.push(Job { input, output });
    }
    Ok((jobs, skipped))
}

/// `db.yaml` -> `db.sealed.yaml`. Output is YAML, so a `.json` input's is `.yaml` too.
fn output_for(path: &Path, suffix: &str) -> PathBuf {
    let json = path.extension().is_some_and(|ext| ext == "json");
    beside(path, suffix, json.then_some("yaml"))
}

fn is_sealed_output(path: &Path, suffix: &str) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    ["yaml", "yml", "json"]
        .iter()
        .any(|ext| name.ends_with(&format!("{suffix}.{ext}")))
}

/// Recipients for many files: -r/-R read once, each directory's `.seal.yaml` once, and the
/// cluster asked at most once, whatever the number of files that fall back to it.
struct Recipients<'a> {
    args: &'a Args,
    flags: Option<Arc<Resolved>>,
    configs: Mutex<HashMap<PathBuf, Result<Option<Arc<Config>>>>>,
    cluster: OnceLock<Result<Arc<Resolved>>>,
}

impl<'a> Recipients<'a> {
    fn new(args: &'a Args) -> Result<Self> {
        let flags = if args.recipients.explicit() {
            Some(Arc::new(args.recipients.resolve(Target::Stdin)?))
        } else {
            None
        };
        Ok(Recipients {
            args,
            flags,
            configs: Mutex::new(HashMap::new()),
            cluster: OnceLock::new(),
        })
    }

    fn for_file(&self, path: &Path) -> Result<Arc<Resolved>> {
        if let Some(flags) = &self.flags {
            return Ok(flags.clone());
        }
        let start = config_start(Some(path));
        let config = {
            let mut configs = self
                .configs
                .lock()
                .map_err(|_| Failure::new("a sealing thread failed").hint(BUG))?;
            configs
                .entry(start.clone())
                .or_insert_with(|| Config::find(&start).map(|c| c.map(Arc::new)))
                .clone()?
        };
        match config {
            Some(config) => Resolved::from_rule(&config, Some(path)).map(Arc::new),
            None => self
                .cluster
                .get_or_init(|| {
                    self.args
                        .recipients
                        .resolve(Target::File(path))
                        .map(Arc::new)
                })
                .clone(),
        }
    }
}

const BUG: &str = "this is a bug in seal; please report it";

fn seal_file(
    job: &Job,
    args: &Args,
    scope: Option<Scope>,
    recipients: &Recipients<'_>,
    progress: &Progress,
) -> Result<Outcome> {
    let path = &job.input.path;
    let name = path.display().to_string();
    let text = Input::File(path.clone()).read_text()?;
    if !job.input.named {
        match document_kinds(&text) {
            Ok(kinds) if !kinds.contains(&DocumentKind::Secret) => return Ok(Outcome::NoSecret),
            Ok(_) => {}
            // A file seal cannot read is passed over (a Helm template, say), unless it
            // looks like a Secret: that one the user means to seal.
            Err(error) if names_kind_secret(&text) => return Err(error).within(&name),
            Err(_) => return Ok(Outcome::NoSecret),
        }
    }
    let secrets = parse_secrets(&text).within(&name)?;
    drop(text);
    refuse_empty(&secrets, args.allow_empty).within(&name)?;
    let resolved = recipients.for_file(path).within(&name)?;
    let scope = scope.or(resolved.scope).unwrap_or_default();
    let requests = secrets
        .iter()
        .map(|secret| {
            Ok(SealRequest {
                secret,
                namespace: pick(
                    &secret.namespace,
                    &args.namespace,
                    "namespace",
                    &crate::given_as::given_as("namespace", "-n/--namespace"),
                    secret,
                )?,
                name: secret.name.as_deref().ok_or_else(|| {
                    Failure::new(format!("{}: has no metadata.name", secret.describe()))
                        .hint("set metadata.name, or seal this file on its own with --name")
                })?,
                scope,
                recipients: &resolved.recipients,
            })
        })
        .collect::<Result<Vec<_>>>()
        .within(&name)?;
    let sealed = requests
        .par_iter()
        .map(|request| {
            let sealed = seal_secret(request);
            progress.secret_done();
            sealed
        })
        .collect::<Result<Vec<SealedSecret>, _>>()
        .within(&name)?;
    let items = secrets.iter().map(|s| s.data.len()).sum();
    drop(secrets);
    let text = yaml::to_string_multiple(&sealed).within(&name)?;
    write_atomic(&job.output, text.as_bytes(), Mode::Public)?;
    Ok(Outcome::Sealed {
        secrets: sealed.len(),
        items,
        source: announced_source(&resolved),
    })
}

/// Where recipients came from, said once for all the files they sealed: a rule, not each
/// path it matched. Nothing for -r/-R, which the user gave.
fn announced_source(resolved: &Resolved) -> Option<String> {
    let source = match &resolved.source {
        Source::Flags => return None,
        Source::Rule { config, index, .. } => {
            format!("rules[{index}] of {}", config.display())
        }
        Source::Cluster(key) => key.describe(),
    };
    let keys = if resolved.recipients.len() == 1 {
        "key"
    } else {
        "keys"
    };
    Some(format!(
        "{keys} {} from {source}",
        list(&resolved.key_ids())
    ))
}

/// Whether a file seal cannot parse says `kind: Secret` on a line of its own (as YAML or
/// JSON writes it): then it is a broken Secret manifest, not some other file.
fn names_kind_secret(text: &str) -> bool {
    text.lines().any(|line| {
        let squeezed: String = line
            .chars()
            .filter(|c| !c.is_whitespace() && !matches!(c, '"' | '\''))
            .collect();
        squeezed
            .split([',', '{', '}'])
            .any(|part| part == "kind:Secret" || part.starts_with("kind:Secret#"))
    })
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Each failed file's two lines, in input order, then which keys were used, then the one
/// summary line: as `seal: ...` when every file was sealed, as the closing refusal when not.
fn report(
    jobs: &[Job],
    outcomes: Vec<Outcome>,
    outputs_skipped: usize,
    started: Instant,
) -> Result<()> {
    let (mut files, mut secrets, mut items, mut no_secret) = (0, 0, 0, 0);
    let mut failed = 0;
    let mut sources: BTreeMap<String, usize> = BTreeMap::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Sealed {
                secrets: s,
                items: i,
                source,
            } => {
                files += 1;
                secrets += s;
                items += i;
                if let Some(source) = source {
                    *sources.entry(source).or_default() += 1;
                }
            }
            Outcome::NoSecret => no_secret += 1,
            Outcome::Failed(failure) => {
                eprintln!("{failure}");
                failed += 1;
            }
        }
    }
    for (source, count) in &sources {
        say(format!("sealed {} to {source}", plural(*count, "file")));
    }
    let mut summary = format!(
        "sealed {}: {}, {} in {:.2} s",
        plural(files, "file"),
        plural(secrets, "Secret"),
        plural(items, "item"),
        started.elapsed().as_secs_f64()
    );
    if no_secret > 0 {
        summary.push_str(&format!(
            "; passed over {} holding no Secret",
            plural(no_secret, "file")
        ));
    }
    if outputs_skipped > 0 {
        summary.push_str(&format!(
            "; skipped {} sealed already",
            plural(outputs_skipped, "file")
        ));
    }
    if failed > 0 {
        return Err(Failure::new(format!(
            "{failed} of {} not sealed (each is named above, and has no output); {summary}",
            plural(jobs.len(), "file")
        ))
        .hint(
            "the other files' outputs were written; fix each file as its hint says and seal it again",
        ));
    }
    if files == 0 {
        return Err(Failure::new(format!("found no Secret to seal; {summary}"))
            .hint("name Secret manifests (kind: Secret) or directories holding them"));
    }
    say(summary);
    Ok(())
}
