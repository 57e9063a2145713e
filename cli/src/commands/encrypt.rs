use std::path::PathBuf;

use rayon::prelude::*;
use seal_shared::manifest::{PlainSecret, parse_secrets};
use seal_shared::sealed_secret::{
    SealRequest, SealedSecret, describe_sealed, for_output, parse_sealed_secrets, seal_items_into,
    seal_secret,
};
use seal_shared::{Scope, yaml};

use crate::failure::{Context, Failure, Result};
use crate::files::{Input, Mode, write_atomic, write_stdout};
use crate::recipients::RecipientArgs;

/// Seal Secret manifests into SealedSecrets
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    seal encrypt -r age1... secret.yaml > secret.sealed.yaml\n  \
    kubectl create secret generic db --from-literal=password=s3cr3t --dry-run=client -o yaml | seal encrypt -n prod -R keys.txt\n  \
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
    scope: Option<Scope>,

    /// Namespace for Secrets whose manifest names none
    #[arg(short = 'n', long, value_name = "NAMESPACE", env = "SEAL_NAMESPACE")]
    namespace: Option<String>,

    /// Name for a Secret whose manifest names none
    #[arg(long, value_name = "NAME")]
    name: Option<String>,

    /// Write the SealedSecrets to FILE (atomically) instead of stdout
    #[arg(short, long, value_name = "FILE", conflicts_with_all = ["in_place", "merge_into"])]
    output: Option<PathBuf>,

    /// Replace the input file with its sealed form
    #[arg(short = 'w', long, conflicts_with = "merge_into")]
    in_place: bool,

    /// Add or replace only the input's keys in this existing SealedSecret file, in place;
    /// every other item stays byte for byte
    #[arg(long, value_name = "SEALED")]
    merge_into: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let input = Input::from_arg(args.input.as_deref());
    if args.in_place && matches!(input, Input::Stdin) {
        return Err(Failure::new("--in-place needs an input file, not stdin"));
    }
    let text = input.read_text()?;
    let secrets = parse_secrets(&text).within(input.name())?;
    drop(text);
    let resolved = args.recipients.resolve(&input)?;
    let scope = args.scope.or(resolved.scope).unwrap_or_default();

    if let Some(target) = &args.merge_into {
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
                    "-n/--namespace",
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
    match (&args.output, args.in_place, &input) {
        (Some(path), _, _) => write_atomic(path, yaml.as_bytes(), Mode::Public),
        (None, true, Input::File(path)) => write_atomic(path, yaml.as_bytes(), Mode::Public),
        _ => write_stdout(yaml.as_bytes()),
    }
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
        if let Some(scope) = args.scope
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
