//! `seal import bitnami`: turn a repository's Bitnami SealedSecrets into seal's, file by
//! file, opening them with the sealed-secrets controller's keys. Plaintext lives only in
//! wiped buffers between the two seals; nothing but sealed files is written.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use seal_shared::names::{self, NameKind};
use seal_shared::sealed_secret::{SealRequest, SealedSecret, seal_secret};
use seal_shared::yaml;
use serde_json::Value;

use crate::bitnami::keys::{ControllerKeys, KeysError};
use crate::bitnami::object::{self, API_VERSION};
use crate::failure::{Context, Failure, Result, say};
use crate::files::{
    Input, KeyFile, Mode, beside, check_path_arg, check_suffix, read_key_file, write_atomic,
};
use crate::progress::Progress;
use crate::recipients::{RecipientArgs, Target, list};

/// The annotation that lets seal-operator take over the Secret a Bitnami SealedSecret owns.
const ADOPT: &str = "seal.dev/adopt-existing-secret";

/// Import SealedSecrets from other tools
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    from: From,
}

#[derive(clap::Subcommand, Debug)]
enum From {
    Bitnami(BitnamiArgs),
}

/// Convert Bitnami sealed-secrets files (bitnami.com/v1alpha1 SealedSecrets) into seal's
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    kubectl get secret -n kube-system -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml > keys.yaml\n  \
    seal import bitnami --controller-keys keys.yaml --dry-run clusters/\n  \
    seal import bitnami --controller-keys keys.yaml clusters/\n  \
    seal import bitnami --controller-keys keys.yaml --suffix .seal db.yaml   # writes db.seal.yaml\n\n\
    Each file's SealedSecrets are opened with the controller's keys and sealed again with age to \
    the recipients seal encrypt would use for that file: -r/-R, else the nearest .seal.yaml \
    rule (never a cluster's key, asked implicitly). Scope, template labels, annotations, type \
    and immutable are kept, and each output carries seal.dev/adopt-existing-secret: \"true\" \
    so seal-operator takes the Secret over from the Bitnami controller without a gap. A file \
    is converted whole or not at all; a directory is searched for .yaml, .yml and .json files \
    naming bitnami.com/v1alpha1. Values are never printed or written unsealed.")]
pub struct BitnamiArgs {
    /// Files or directories to convert (directories are searched recursively)
    #[arg(value_name = "FILE|DIR", required = true)]
    paths: Vec<PathBuf>,

    /// The sealed-secrets controller's private keys: the output of `kubectl get secret -n
    /// kube-system -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml`
    #[arg(long, value_name = "KEYS.yaml")]
    controller_keys: PathBuf,

    /// Seal to this age recipient (age1...); repeat for several clusters or a recovery key
    #[arg(
        short = 'r',
        long = "recipient",
        value_name = "RECIPIENT",
        env = "SEAL_RECIPIENT",
        value_delimiter = ','
    )]
    recipients: Vec<String>,

    /// Seal to every recipient listed in FILE (age's recipients file format); repeatable
    #[arg(
        short = 'R',
        long = "recipients-file",
        value_name = "FILE",
        env = "SEAL_RECIPIENTS_FILE",
        value_delimiter = ','
    )]
    recipients_files: Vec<PathBuf>,

    /// Write each result beside its file, SUFFIX put before the extension (db.yaml with
    /// .seal gives db.seal.yaml), instead of replacing the file
    #[arg(long, value_name = "SUFFIX")]
    suffix: Option<String>,

    /// Namespace for SealedSecrets whose file names none (applied with `kubectl -n` or a
    /// kustomization); the output names it. Objects that name their own keep it
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    namespace: Option<String>,

    /// Open and seal everything, report, but write nothing
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: Args) -> Result<()> {
    match args.from {
        From::Bitnami(args) => bitnami(args),
    }
}

/// What became of one file.
enum Outcome {
    Converted {
        written: PathBuf,
        objects: Vec<String>,
        keys: String,
    },
    Skipped {
        kind: &'static str,
        failure: Failure,
    },
    /// In a directory, a file that holds no Bitnami SealedSecret.
    NotBitnami,
}

fn bitnami(args: BitnamiArgs) -> Result<()> {
    let keys_given_as = "--controller-keys";
    let keys_text = read_key_file(&args.controller_keys, KeyFile::Identities, keys_given_as)?;
    let keys = ControllerKeys::parse(&keys_text)
        .map_err(keys_failure)
        .within(args.controller_keys.display())?;
    drop(keys_text);
    if let Some(suffix) = &args.suffix {
        check_suffix(suffix)?;
    }
    if let Some(namespace) = &args.namespace {
        names::check(NameKind::Namespace, namespace)
            .map_err(|e| Failure::new(e).hint("pass a name Kubernetes accepts"))
            .within("-n/--namespace")?;
    }
    let recipients = RecipientArgs {
        recipients: args.recipients.clone(),
        recipients_files: args.recipients_files.clone(),
        filename: None,
        cluster: crate::cluster::ClusterArgs::usual(),
    };
    let files = collect_files(&args.paths)?;
    say(format!(
        "opening with {} controller key(s): {}",
        keys.len(),
        keys.names().join(", ")
    ));

    let progress = Progress::new(files.len());
    let outcomes: Vec<(PathBuf, Outcome)> = files
        .par_iter()
        .map(|(path, named)| {
            let outcome = convert_file(path, *named, &keys, &recipients, &args);
            progress.file_done();
            (path.clone(), outcome)
        })
        .collect();
    progress.finish();

    report(&outcomes, args.dry_run)
}

fn keys_failure(error: KeysError) -> Failure {
    let hint = match &error {
        KeysError::Yaml(_) | KeysError::Empty | KeysError::NotASecret { .. } => {
            "export the keys with: kubectl get secret -n kube-system -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml"
        }
        _ => {
            "each key Secret needs data.tls.key, a base64 PEM RSA private key, as sealed-secrets writes it"
        }
    };
    Failure::new(error).hint(hint)
}

/// The files to look at, in a stable order, each with whether the user named it (a named
/// file that is not a Bitnami SealedSecret is reported; one found in a directory is not).
fn collect_files(paths: &[PathBuf]) -> Result<Vec<(PathBuf, bool)>> {
    let mut files = Vec::new();
    for path in paths {
        check_path_arg(path, "FILE|DIR")?;
        let meta = fs::metadata(path)
            .map_err(|e| Failure::io(format!("cannot read {}", path.display()), e))?;
        if meta.is_dir() {
            walk(path, &mut files)?;
        } else {
            files.push((path.clone(), true));
        }
    }
    files.sort();
    files.dedup_by(|a, b| a.0 == b.0);
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<(PathBuf, bool)>) -> Result<()> {
    let entries =
        fs::read_dir(dir).map_err(|e| Failure::io(format!("cannot read {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Failure::io(format!("cannot read {}", dir.display()), e))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        // The entry's own type: a symbolic link to a directory is not followed, so a loop
        // cannot make the walk endless; a link to a file is converted through the link.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if !hidden {
                walk(&path, files)?;
            }
        } else if !hidden
            && path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
            && path.is_file()
        {
            files.push((path, false));
        }
    }
    Ok(())
}

fn convert_file(
    path: &Path,
    named: bool,
    keys: &ControllerKeys,
    recipients: &RecipientArgs,
    args: &BitnamiArgs,
) -> Outcome {
    match try_convert(path, named, keys, recipients, args) {
        Ok(outcome) => outcome,
        Err((kind, failure)) => Outcome::Skipped {
            kind,
            failure: failure.context(path.display()),
        },
    }
}

type Skip = (&'static str, Failure);

fn try_convert(
    path: &Path,
    named: bool,
    keys: &ControllerKeys,
    recipients: &RecipientArgs,
    args: &BitnamiArgs,
) -> std::result::Result<Outcome, Skip> {
    let unreadable = |f: Failure| ("unreadable files", f);
    let input = Input::File(path.to_path_buf());
    let text = input.read_text().map_err(unreadable)?;
    if !named && !text.contains(API_VERSION) {
        return Ok(Outcome::NotBitnami);
    }
    let docs: Vec<Value> =
        yaml::from_multiple(&text).map_err(|e| ("unreadable files", Failure::from(e)))?;
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    if !docs.iter().any(object::is_bitnami_sealed_secret) {
        if named {
            return Err((
                "no Bitnami SealedSecret",
                Failure::new(format!("holds no {API_VERSION} SealedSecret"))
                    .hint("name files (or directories) of Bitnami SealedSecrets"),
            ));
        }
        return Ok(Outcome::NotBitnami);
    }
    if docs.iter().any(|d| !object::is_bitnami_sealed_secret(d)) {
        return Err((
            "files mixing other documents",
            Failure::new(format!(
                "holds documents other than {API_VERSION} SealedSecrets, which rewriting the file would lose"
            ))
            .hint("move the other documents to files of their own, then import again"),
        ));
    }
    let resolved = recipients
        .resolve_offline(Target::File(path))
        .map_err(|f| ("no recipients", f))?;
    let mut sealed = Vec::with_capacity(docs.len());
    let mut described = Vec::with_capacity(docs.len());
    for doc in &docs {
        let place = object::describe(doc);
        let opened = object::open(doc, keys, args.namespace.as_deref()).map_err(|refusal| {
            let kind = refusal.kind();
            let hint = refusal.hint();
            (kind, Failure::new(refusal).hint(hint).context(&place))
        })?;
        let request = SealRequest {
            secret: &opened.secret,
            namespace: opened.namespace.as_deref(),
            name: &opened.name,
            scope: opened.scope,
            recipients: &resolved.recipients,
        };
        let mut out: SealedSecret = seal_secret(&request)
            .map_err(|e| ("values seal refuses", Failure::from(e).context(&place)))?;
        drop(opened.secret);
        if !opened.labels.is_empty() {
            out.metadata.labels = Some(opened.labels);
        }
        let mut annotations: BTreeMap<String, String> = opened.annotations;
        annotations.insert(ADOPT.to_owned(), "true".to_owned());
        out.metadata.annotations = Some(annotations);
        sealed.push(out);
        described.push(place);
    }
    let text =
        yaml::to_string_multiple(&sealed).map_err(|e| ("values seal refuses", Failure::from(e)))?;
    let target = match &args.suffix {
        Some(suffix) => beside(path, suffix, None),
        None => path.to_path_buf(),
    };
    if !args.dry_run {
        write_atomic(&target, text.as_bytes(), Mode::Public)
            .map_err(|f| ("unwritable files", f))?;
    }
    let keys = format!(
        "to {} from {}",
        list(&resolved.key_ids()),
        resolved.describe()
    );
    Ok(Outcome::Converted {
        written: target,
        objects: described,
        keys,
    })
}

fn report(outcomes: &[(PathBuf, Outcome)], dry_run: bool) -> Result<()> {
    let mut converted_files = 0;
    let mut converted_objects = 0;
    let mut skipped: BTreeMap<&str, usize> = BTreeMap::new();
    let verb = if dry_run {
        "would convert"
    } else {
        "converted"
    };
    for (path, outcome) in outcomes {
        match outcome {
            Outcome::Converted {
                written,
                objects,
                keys,
            } => {
                converted_files += 1;
                converted_objects += objects.len();
                let place = if written == path {
                    path.display().to_string()
                } else {
                    format!("{} -> {}", path.display(), written.display())
                };
                say(format!("{verb} {place}: {} {keys}", objects.join(", ")));
            }
            Outcome::Skipped { kind, failure } => {
                *skipped.entry(kind).or_default() += 1;
                let text = failure.to_string();
                let mut lines = text.lines();
                let what = lines
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("seal: error: ");
                eprintln!("seal: skipped {what}");
                for hint in lines {
                    eprintln!("{hint}");
                }
            }
            Outcome::NotBitnami => {}
        }
    }
    let skipped_total: usize = skipped.values().sum();
    let why = skipped
        .iter()
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect::<Vec<_>>()
        .join(", ");
    let summary = format!(
        "{verb} {converted_files} file(s) ({converted_objects} SealedSecret(s)); skipped {skipped_total}{}",
        if why.is_empty() {
            String::new()
        } else {
            format!(" ({why})")
        }
    );
    if skipped_total > 0 {
        return Err(Failure::new(summary).hint(
            "the files above were left as they were; fix each as its hint says and import them again",
        ));
    }
    if converted_files == 0 {
        return Err(Failure::new("found no Bitnami SealedSecret to convert")
            .hint("name files or directories holding bitnami.com/v1alpha1 SealedSecrets"));
    }
    say(summary);
    Ok(())
}
