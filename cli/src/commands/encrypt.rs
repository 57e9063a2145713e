use std::path::PathBuf;

use rayon::prelude::*;
use seal_shared::manifest::{PlainSecret, parse_secrets};
use seal_shared::names::{self, NameKind};
use seal_shared::sealed_secret::{
    SealRequest, SealedSecret, describe_sealed, for_output, parse_sealed_secrets, seal_items_into,
    seal_secret,
};
use seal_shared::{Scope, yaml};

use crate::failure::{Context, Failure, Result};
use crate::files::{Input, Mode, Output, check_path_arg, write_atomic};
use crate::recipients::RecipientArgs;

/// Seal Secret manifests into SealedSecrets
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    seal encrypt -r age1... secret.yaml > secret.sealed.yaml\n  \
    kubectl create secret generic db --from-literal=password=s3cr3t --dry-run=client -o yaml | seal encrypt -n prod -R keys.txt\n  \
    kubectl get secret db -n prod -o yaml | seal encrypt -R keys.txt   # server bookkeeping is left out\n  \
    seal encrypt --merge-into secret.sealed.yaml rotated-password.yaml\n  \
    seal encrypt -w secret.yaml     # replace the plain file with its sealed form\n\n\
    Recipients come from -r/-R, else from the nearest .seal.yaml rule matching the file.")]
pub struct Args {
    /// Secret manifest(s) to seal: YAML or JSON, one or many documents; `-` or absent for stdin
    #[arg(value_name = "FILE")]
    input: Option<PathBuf>,

    #[command(flatten)]
    recipients: RecipientArgs,

    /// What each item is bound to: strict (namespace, name, key), namespace-wide (namespace,
    /// key) or cluster-wide (key) [default: strict, or the .seal.yaml rule's]
    #[arg(long, value_name = "SCOPE", env = "SEAL_SCOPE")]
    scope: Option<String>,

    /// Namespace for Secrets whose manifest names none
    #[arg(short = 'n', long, value_name = "NAMESPACE", env = "SEAL_NAMESPACE")]
    namespace: Option<String>,

    /// Name for a Secret whose manifest names none
    #[arg(long, value_name = "NAME")]
    name: Option<String>,

    /// Write the SealedSecrets to FILE (atomically; through a symbolic link to the file it
    /// names) instead of stdout; `-` is stdout
    #[arg(short, long, value_name = "FILE", conflicts_with_all = ["in_place", "merge_into"])]
    output: Option<PathBuf>,

    /// Replace the input file with its sealed form (through a symbolic link, the file it
    /// names; a file with several hard links is refused, as the others would keep the plaintext)
    #[arg(short = 'w', long, conflicts_with = "merge_into")]
    in_place: bool,

    /// Seal a Secret that has no items (no data, no stringData) instead of refusing it
    #[arg(long)]
    allow_empty: bool,

    /// Add or replace only the input's keys in this existing SealedSecret file, in place;
    /// every other item stays byte for byte
    #[arg(long, value_name = "SEALED")]
    merge_into: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let input = Input::from_arg(args.input.as_deref());
    if let Input::File(path) = &input {
        check_path_arg(path, "the input file")?;
    }
    if args.in_place && matches!(input, Input::Stdin) {
        return Err(Failure::new("--in-place needs an input file, not stdin")
            .hint("name the file to replace: seal encrypt -w secret.yaml"));
    }
    let scope = flag_scope(&args)?;
    check_flag_name(
        &args.namespace,
        NameKind::Namespace,
        "namespace",
        "-n/--namespace",
    )?;
    check_flag_name(&args.name, NameKind::SecretName, "name", "--name")?;
    let output = Output::from_arg(args.output.as_deref());
    let text = input.read_text()?;
    let secrets = parse_secrets(&text).within(input.name())?;
    drop(text);
    if !args.allow_empty
        && let Some(empty) = secrets.iter().find(|s| s.data.is_empty())
    {
        return Err(Failure::new(format!(
            "{}: has no items (no data, no stringData)",
            empty.describe()
        ))
        .hint(
            "add the values under stringData or data; pass --allow-empty to seal an empty Secret",
        ))
        .within(input.name());
    }
    let resolved = args.recipients.resolve(&input)?;
    let scope = scope.or(resolved.scope).unwrap_or_default();

    if let Some(target) = &args.merge_into {
        check_path_arg(target, "--merge-into")?;
        return merge(&args, target, &secrets, &resolved.recipients);
    }

    let requests = secrets
        .iter()
        .map(|secret| {
            Ok(SealRequest {
                secret,
                namespace: pick(
                    &secret.namespace,
                    &args.namespace,
                    "namespace",
                    &crate::cli::given_as("namespace", "-n/--namespace"),
                    secret,
                )?,
                name: pick(&secret.name, &args.name, "name", "--name", secret)?.ok_or_else(
                    || {
                        Failure::new(format!("{}: has no metadata.name", secret.describe()))
                            .hint("set metadata.name or pass --name")
                    },
                )?,
                scope,
                recipients: &resolved.recipients,
            })
        })
        .collect::<Result<Vec<_>>>()
        .within(input.name())?;
    let sealed = requests
        .par_iter()
        .map(seal_secret)
        .collect::<Result<Vec<SealedSecret>, _>>()
        .within(input.name())?;
    let yaml = yaml::to_string_multiple(&sealed)?;
    match (&input, args.in_place) {
        (Input::File(path), true) => write_atomic(path, yaml.as_bytes(), Mode::Public),
        _ => output.write(yaml.as_bytes(), Mode::Public),
    }
}

/// `--scope` or `SEAL_SCOPE`, checked here so that an error names the one the user gave.
fn flag_scope(args: &Args) -> Result<Option<Scope>> {
    let Some(text) = &args.scope else {
        return Ok(None);
    };
    text.parse::<Scope>()
        .map(Some)
        .map_err(|e| Failure::new(e).hint("use strict, namespace-wide or cluster-wide"))
        .within(crate::cli::given_as("scope", "--scope"))
}

/// A namespace or name from a flag or the environment obeys the same rule as one from a
/// manifest: an item sealed for a name no object can have could never be unsealed.
fn check_flag_name(value: &Option<String>, kind: NameKind, id: &str, flag: &str) -> Result<()> {
    let Some(value) = value else {
        return Ok(());
    };
    names::check(kind, value)
        .map_err(|e| Failure::new(e).hint("pass a name Kubernetes accepts"))
        .within(crate::cli::given_as(id, flag))
}

/// The manifest's value, or the flag's when the manifest has none; both differing is an error
/// rather than a silent choice.
fn pick<'a>(
    manifest: &'a Option<String>,
    flag: &'a Option<String>,
    what: &str,
    flag_name: &str,
    secret: &PlainSecret,
) -> Result<Option<&'a str>> {
    match (manifest, flag) {
        (Some(m), Some(f)) if m != f => Err(Failure::new(format!(
            "{}: the manifest's {what} {m:?} differs from {flag_name} {f:?}",
            secret.describe()
        ))
        .hint(format!("drop {flag_name}, or change the manifest"))),
        (Some(m), _) => Ok(Some(m)),
        (None, f) => Ok(f.as_deref()),
    }
}

fn merge(
    args: &Args,
    target: &std::path::Path,
    secrets: &[PlainSecret],
    recipients: &[seal_shared::SealRecipient],
) -> Result<()> {
    let target_input = Input::File(target.to_path_buf());
    let target_name = target_input.name();
    let mut sealed = parse_sealed_secrets(&target_input.read_text()?).within(&target_name)?;
    for secret in secrets {
        let index = find_target(&sealed, secret, args).within(&target_name)?;
        let doc = &mut sealed[index];
        if let Some(scope) = flag_scope(args)?
            && scope != doc.spec.scope
        {
            return Err(Failure::new(format!(
                "{}: --scope {scope} differs from the file's scope {}",
                describe_sealed(doc),
                doc.spec.scope
            ))
            .hint("items of one SealedSecret share its scope; drop --scope"));
        }
        seal_items_into(
            doc,
            secret.data.iter().map(|(k, v)| (k.as_str(), v.as_slice())),
            recipients,
        )
        .within(&target_name)?;
    }
    let out: Vec<SealedSecret> = sealed.iter().map(for_output).collect();
    write_atomic(
        target,
        yaml::to_string_multiple(&out)?.as_bytes(),
        Mode::Public,
    )
}

fn find_target(sealed: &[SealedSecret], secret: &PlainSecret, args: &Args) -> Result<usize> {
    let name = secret.name.as_deref().or(args.name.as_deref());
    let namespace = secret.namespace.as_deref().or(args.namespace.as_deref());
    let matches: Vec<usize> = sealed
        .iter()
        .enumerate()
        .filter(|(_, s)| name.is_none_or(|n| s.metadata.name.as_deref() == Some(n)))
        .filter(|(_, s)| namespace.is_none_or(|ns| s.metadata.namespace.as_deref() == Some(ns)))
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(Failure::new(format!(
            "no SealedSecret here matches {}",
            secret.describe()
        ))
        .hint("the input Secret's name and namespace must match the SealedSecret to merge into")),
        _ => Err(Failure::new(format!(
            "several SealedSecrets here match {}",
            secret.describe()
        ))
        .hint("name the Secret (metadata.name, metadata.namespace) to pick one")),
    }
}
