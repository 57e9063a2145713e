mod many;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use seal_shared::manifest::{PlainSecret, parse_secrets};
use seal_shared::names::{self, NameKind};
use seal_shared::sealed_secret::{
    MergeError, SealRequest, SealedSecret, describe_sealed, inspect_entry, parse_sealed_secrets,
    seal_items_into, seal_secret, set_items_in_text,
};
use seal_shared::{KeyId, Scope, yaml};

use zeroize::Zeroizing;

use super::literal;
use crate::failure::{Context, Failure, Result};
use crate::files::{Input, Mode, Output, check_path_arg, write_atomic};
use crate::recipients::{RecipientArgs, Resolved, Target, list};

/// Seal Secret manifests into SealedSecrets
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    seal encrypt -r age1... secret.yaml > secret.sealed.yaml\n  \
    kubectl create secret generic db --from-literal=password=s3cr3t --dry-run=client -o yaml | seal encrypt -n prod -R keys.txt\n  \
    kubectl get secret db -n prod -o yaml | seal encrypt -R keys.txt   # server bookkeeping is left out\n  \
    seal encrypt --merge-into secret.sealed.yaml rotated-password.yaml\n  \
    seal encrypt --filename clusters/prod/db.yaml < db.yaml   # stdin, with that path's .seal.yaml rule\n  \
    seal encrypt -w secret.yaml     # replace the plain file with its sealed form\n  \
    seal encrypt -R keys.txt db.yaml redis.yaml clusters/   # writes db.sealed.yaml, ... beside each\n  \
    seal encrypt --name db -n prod --from-file password=./pw.txt --from-literal user=admin\n  \
    printf '%s' \"$PASSWORD\" | seal encrypt --raw --name db -n prod --key password\n\n\
    Values given with --from-literal are visible to other users in the process list (ps) and \
    may land in shell history: use --from-file, or --raw with the value on stdin, for \
    anything that matters.\n\n\
    Recipients come from -r/-R, else from the nearest .seal.yaml (which must have a rule for the \
    file; for stdin, name the file with --filename), else from the cluster's current key. \
    With --merge-into, the target file picks the rule, and new items go to the same keys as its \
    other items.\n\n\
    With several inputs or a directory, each file's SealedSecrets go beside it (--suffix), each \
    with its own .seal.yaml rule, on every core; a file in a directory that holds no Secret is \
    passed over. Every file is tried: one that fails is named with its error and gets no \
    output, the others are written, and seal exits 1. A summary line ends the run.")]
pub struct Args {
    /// Secret manifest(s) to seal: YAML or JSON, one or many documents; `-` or absent for
    /// stdin. Several files, or a directory (searched for .yaml, .yml and .json files holding
    /// Secrets, skipping what .gitignore ignores), write each input's SealedSecrets beside it
    #[arg(value_name = "FILE|DIR", conflicts_with_all = ["from_literal", "from_file", "raw"])]
    input: Vec<PathBuf>,

    /// Write each input's SealedSecrets beside it, SUFFIX put before the extension (db.yaml
    /// gives db.sealed.yaml; a .json input gives .yaml), atomically; files already ending in
    /// SUFFIX are skipped. Implied, as .sealed, by several inputs or a directory; give it to
    /// do the same for one file [default: .sealed]
    #[arg(long, value_name = "SUFFIX", conflicts_with_all = ["output", "in_place", "merge_into", "raw", "from_literal", "from_file"])]
    suffix: Option<String>,

    /// Seal a Secret with this item instead of reading a manifest (needs --name); repeatable.
    /// The value is visible in the process list: prefer --from-file
    #[arg(
        long = "from-literal",
        value_name = "KEY=VALUE",
        conflicts_with = "raw"
    )]
    from_literal: Vec<String>,

    /// Seal a Secret with an item whose value is the file's bytes (KEY=PATH, or PATH with the
    /// file's name as key; needs --name); repeatable
    #[arg(long = "from-file", value_name = "[KEY=]PATH", conflicts_with = "raw")]
    from_file: Vec<String>,

    /// The Secret's type with --from-literal/--from-file (e.g. kubernetes.io/basic-auth)
    #[arg(long = "type", value_name = "TYPE")]
    type_: Option<String>,

    /// Seal one value read from stdin (every byte, a final newline included) for --key, and
    /// print just the item's base64, for Helm values and kustomize patches
    #[arg(long, requires = "key", conflicts_with_all = ["merge_into", "in_place", "type_"])]
    raw: bool,

    /// With --raw: the item key the value is bound to
    #[arg(long, value_name = "KEY", requires = "raw")]
    key: Option<String>,

    #[command(flatten)]
    recipients: RecipientArgs,

    /// What each item is bound to: strict (namespace, name, key), namespace-wide (namespace,
    /// key) or cluster-wide (key) [default: strict, or the .seal.yaml rule's]
    #[arg(long, value_name = "SCOPE", env = "SEAL_SCOPE")]
    scope: Option<String>,

    /// Namespace for Secrets whose manifest names none (with --merge-into, also for a target
    /// SealedSecret that names none); differing from the manifest is an error
    #[arg(short = 'n', long, value_name = "NAMESPACE", env = "SEAL_NAMESPACE")]
    namespace: Option<String>,

    /// Name for a Secret whose manifest names none; differing from the manifest is an error
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
    /// every other byte of it stays (comments, other documents, layout)
    #[arg(long, value_name = "SEALED")]
    merge_into: Option<PathBuf>,

    /// With --merge-into, seal the new items to the recipients given (-r/-R, .seal.yaml or
    /// the cluster) even though the target's other items are sealed to other keys
    #[arg(long, requires = "merge_into")]
    override_recipients: bool,
}

pub fn run(mut args: Args) -> Result<()> {
    let literals: Vec<Zeroizing<String>> = std::mem::take(&mut args.from_literal)
        .into_iter()
        .map(Zeroizing::new)
        .collect();
    let generic = !literals.is_empty() || !args.from_file.is_empty();
    if args.type_.is_some() && !generic {
        return Err(
            Failure::new("--type applies to --from-literal/--from-file only")
                .hint("a manifest sets its own `type:`; drop --type"),
        );
    }
    if many::wanted(&args) {
        let scope = flag_scope(&args)?;
        check_flag_name(
            &args.namespace,
            NameKind::Namespace,
            "namespace",
            "-n/--namespace",
        )?;
        return many::run(&args, scope);
    }
    let input = Input::from_arg(args.input.first().map(PathBuf::as_path));
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
    if args.raw {
        return raw(&args, scope, &output);
    }
    let secrets = if generic {
        vec![literal::secret(
            literals,
            &args.from_file,
            args.name.as_deref(),
            args.namespace.as_deref(),
            args.type_.as_deref(),
        )?]
    } else {
        let text = input.read_text()?;
        parse_secrets(&text).within(input.name())?
    };
    // Values from flags and files name no manifest: their input reads as stdin's does.
    let input = if generic { Input::Stdin } else { input };
    refuse_empty(&secrets, args.allow_empty).within(input.name())?;

    if let Some(target) = &args.merge_into {
        check_path_arg(target, "--merge-into")?;
        return merge(&args, target, &secrets, scope);
    }

    let resolved = args.recipients.resolve(match &input {
        Input::File(path) => Target::File(path),
        Input::Stdin => Target::Stdin,
    })?;
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
    }?;
    // Said once the output is written, so that a refusal stays its two lines.
    resolved.announce();
    Ok(())
}

/// `--raw`: one value from stdin, sealed for `--key` of `--name` in `-n`, printed alone.
fn raw(args: &Args, scope: Option<Scope>, output: &Output) -> Result<()> {
    let key = args.key.as_deref().unwrap_or_default();
    let resolved = args.recipients.resolve(Target::Stdin)?;
    let scope = scope.or(resolved.scope).unwrap_or_default();
    if scope.binds_name() && args.name.is_none() {
        return Err(Failure::new(format!(
            "--raw with scope {scope} binds the item to a Secret name"
        ))
        .hint("pass --name NAME, or --scope namespace-wide or cluster-wide"));
    }
    let secret = literal::raw(key, args.name.as_deref(), args.namespace.as_deref())?;
    let sealed = seal_secret(&SealRequest {
        secret: &secret,
        namespace: args.namespace.as_deref(),
        name: args.name.as_deref().unwrap_or_default(),
        scope,
        recipients: &resolved.recipients,
    })
    .within("stdin")?;
    let item = sealed.spec.encrypted_data.get(key).ok_or_else(|| {
        Failure::new("the sealed item is missing").hint("this is a bug in seal; please report it")
    })?;
    output.write(format!("{item}\n").as_bytes(), Mode::Public)?;
    resolved.announce();
    // Said after the output, so that a refusal stays its two lines.
    if secret.data.get(key).is_some_and(|v| v.ends_with(b"\n")) {
        crate::failure::say(
            "the value on stdin ends with a newline, which is sealed as part of it (use printf '%s' or echo -n to leave it out)",
        );
    }
    Ok(())
}

/// `--scope` or `SEAL_SCOPE`, checked here so that an error names the one the user gave.
fn flag_scope(args: &Args) -> Result<Option<Scope>> {
    let Some(text) = &args.scope else {
        return Ok(None);
    };
    text.parse::<Scope>()
        .map(Some)
        .map_err(|e| Failure::new(e).hint("use strict, namespace-wide or cluster-wide"))
        .within(crate::given_as::given_as("scope", "--scope"))
}

/// A namespace or name from a flag or the environment obeys the same rule as one from a
/// manifest: an item sealed for a name no object can have could never be unsealed.
fn check_flag_name(value: &Option<String>, kind: NameKind, id: &str, flag: &str) -> Result<()> {
    let Some(value) = value else {
        return Ok(());
    };
    names::check(kind, value)
        .map_err(|e| Failure::new(e).hint("pass a name Kubernetes accepts"))
        .within(crate::given_as::given_as(id, flag))
}

/// An empty Secret is refused unless `--allow-empty` says it is meant: an empty Secret is
/// most often a mistake (a typo in `stringData`).
fn refuse_empty(secrets: &[PlainSecret], allow_empty: bool) -> Result<()> {
    match secrets.iter().find(|s| s.data.is_empty()) {
        Some(empty) if !allow_empty => Err(Failure::new(format!(
            "{}: has no items (no data, no stringData)",
            empty.describe()
        ))
        .hint(
            "add the values under stringData or data; pass --allow-empty to seal an empty Secret",
        )),
        _ => Ok(()),
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

/// Seals the input's items into the matching SealedSecrets of `target` and rewrites only
/// those items' text. Recipients follow the target, not the input: its `.seal.yaml` rule,
/// and by default exactly the keys its other items are sealed to.
fn merge(args: &Args, target: &Path, secrets: &[PlainSecret], scope: Option<Scope>) -> Result<()> {
    let target_input = Input::File(target.to_path_buf());
    let target_name = target_input.name();
    let text = target_input.read_text()?;
    let original = parse_sealed_secrets(&text).within(&target_name)?;
    let resolved = args.recipients.resolve(Target::File(target))?;
    let mut sealed = original.clone();
    let mut changes: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
    let mut notes = Vec::new();
    for secret in secrets {
        let (index, namespace) = find_target(&sealed, secret, args).within(&target_name)?;
        let doc = &sealed[index];
        let place = describe_sealed(doc);
        if let Some(scope) = scope
            && scope != doc.spec.scope
        {
            let flag = crate::given_as::given_as("scope", "--scope");
            return Err(Failure::new(format!(
                "{place}: {flag} {scope} differs from the file's scope {}",
                doc.spec.scope
            ))
            .hint(format!(
                "items of one SealedSecret share its scope; drop {flag}"
            )))
            .within(&target_name);
        }
        let existing = existing_items(doc, secret).within(&target_name)?;
        // The namespace the new items are bound to: the SealedSecret's own, or, for one that
        // is applied with `kubectl -n`, the one the user names. Never an empty one.
        let mut sealing = doc.clone();
        if doc.metadata.namespace.is_none() && doc.spec.scope.binds_namespace() {
            let chosen = bound_namespace(&place, doc.spec.scope, namespace, &existing)
                .within(&target_name)?;
            sealing.metadata.namespace = Some(chosen);
        }
        notes.extend(
            check_recipients(&place, &existing, &resolved, args.override_recipients)
                .within(&target_name)?,
        );
        seal_items_into(
            &mut sealing,
            secret.data.iter().map(|(k, v)| (k.as_str(), v.as_slice())),
            &resolved.recipients,
        )
        .within(&target_name)?;
        let doc_changes = changes.entry(index).or_default();
        for key in secret.data.keys() {
            if let Some(value) = sealing.spec.encrypted_data.get(key) {
                doc_changes.insert(key.clone(), value.clone());
            }
        }
        sealed[index].spec.encrypted_data = sealing.spec.encrypted_data;
    }
    let out = set_items_in_text(&text, &original, &changes)
        .map_err(merge_failure)
        .within(&target_name)?;
    write_atomic(target, out.as_bytes(), Mode::Public)?;
    resolved.announce();
    for note in notes {
        crate::failure::say(note);
    }
    Ok(())
}

fn merge_failure(error: MergeError) -> Failure {
    let hint = match &error {
        MergeError::Edit { .. } => {
            "write the items of spec.encryptedData one per line (key: base64), as seal does, and merge again"
        }
        _ => "nothing was written; please report this with the file's layout (not its items)",
    };
    Failure::new(format!("cannot merge in place: {error}")).hint(hint)
}

/// What the target's items say in the clear about their keys and binding, per item. An
/// unreadable item is an error unless the merge replaces it.
struct Existing {
    /// Per distinct set of key ids, the items sealed to exactly that set.
    key_sets: BTreeMap<BTreeSet<KeyId>, Vec<String>>,
    /// The namespaces the items are bound to, with an item bound to each.
    namespaces: BTreeMap<String, String>,
}

fn existing_items(doc: &SealedSecret, secret: &PlainSecret) -> Result<Existing> {
    let mut existing = Existing {
        key_sets: BTreeMap::new(),
        namespaces: BTreeMap::new(),
    };
    for (key, encoded) in &doc.spec.encrypted_data {
        let (binding, ids) = match inspect_entry(key, encoded) {
            Ok(found) => found,
            Err(_) if secret.data.contains_key(key) => continue,
            Err(e) => {
                return Err(Failure::from(e)
                    .hint("seal cannot tell which keys this item is sealed to; reseal it (merge it again) or remove it from the file"))
                .within(describe_sealed(doc));
            }
        };
        existing
            .key_sets
            .entry(ids.into_iter().collect())
            .or_default()
            .push(key.clone());
        if binding.scope.binds_namespace() {
            existing
                .namespaces
                .entry(binding.namespace)
                .or_insert_with(|| key.clone());
        }
    }
    Ok(existing)
}

/// The namespace to bind the new items of a SealedSecret that names none: the one given,
/// which must be the one its other items are bound to.
fn bound_namespace(
    place: &str,
    scope: Scope,
    given: Option<&str>,
    existing: &Existing,
) -> Result<String> {
    let known: Vec<&String> = existing.namespaces.keys().collect();
    let Some(given) = given else {
        let hint = match known.as_slice() {
            [one] => format!("its items are bound to namespace {one}: pass -n {one}"),
            _ => "pass -n NAMESPACE, the namespace it is applied in".to_owned(),
        };
        return Err(Failure::new(format!(
            "{place}: has no metadata.namespace, but its scope {scope} binds items to one"
        ))
        .hint(hint));
    };
    if let Some((other, item)) = existing
        .namespaces
        .iter()
        .find(|(ns, _)| ns.as_str() != given)
    {
        return Err(Failure::new(format!(
            "{place}: has no metadata.namespace, and its item {item:?} is bound to namespace {other}, not {given}"
        ))
        .hint(format!("pass -n {other}, or reseal the whole Secret for {given}")));
    }
    Ok(given.to_owned())
}

/// New items go to the keys the target's items are sealed to: a Secret whose items open
/// with different keys cannot be unsealed whole by any one cluster. With the override, the
/// note to print once the merge is written.
fn check_recipients(
    place: &str,
    existing: &Existing,
    resolved: &Resolved,
    override_recipients: bool,
) -> Result<Option<String>> {
    let wanted: BTreeSet<KeyId> = resolved.key_ids().into_iter().collect();
    let sets = &existing.key_sets;
    if sets.is_empty() || (sets.len() == 1 && sets.contains_key(&wanted)) {
        return Ok(None);
    }
    let found = sets
        .iter()
        .map(|(ids, items)| {
            let ids: Vec<KeyId> = ids.iter().copied().collect();
            let noun = if items.len() == 1 { "item" } else { "items" };
            format!("{} ({noun} {})", list(&ids), items.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ");
    let wanted_list = list(&wanted.iter().copied().collect::<Vec<_>>());
    if override_recipients {
        return Ok(Some(format!(
            "{place}: sealed the new items to {wanted_list} although its items are sealed to {found} (--override-recipients)"
        )));
    }
    Err(Failure::new(format!(
        "{place}: its items are sealed to key ids {found}, but {} gives {wanted_list}",
        resolved.describe()
    ))
    .hint("new items must open with the same keys as the others: fix the .seal.yaml rule or -r/-R; if the keys really changed, reseal the whole Secret or pass --override-recipients"))
}

/// The SealedSecret the input Secret is merged into, and the namespace the input names (the
/// manifest's, else -n). A SealedSecret without a namespace matches any, for files applied
/// with `kubectl apply -n`.
fn find_target<'a>(
    sealed: &[SealedSecret],
    secret: &'a PlainSecret,
    args: &'a Args,
) -> Result<(usize, Option<&'a str>)> {
    let name = pick(&secret.name, &args.name, "name", "--name", secret)?;
    let namespace = pick(
        &secret.namespace,
        &args.namespace,
        "namespace",
        &crate::given_as::given_as("namespace", "-n/--namespace"),
        secret,
    )?;
    let named: Vec<usize> = sealed
        .iter()
        .enumerate()
        .filter(|(_, s)| name.is_none_or(|n| s.metadata.name.as_deref() == Some(n)))
        .map(|(i, _)| i)
        .collect();
    let in_namespace = |loose: bool| -> Vec<usize> {
        named
            .iter()
            .copied()
            .filter(|&i| {
                let theirs = sealed[i].metadata.namespace.as_deref();
                namespace.is_none_or(|ns| theirs == Some(ns) || (loose && theirs.is_none()))
            })
            .collect()
    };
    let mut matches = in_namespace(false);
    if matches.is_empty() {
        matches = in_namespace(true);
    }
    match matches.as_slice() {
        [one] => Ok((*one, namespace)),
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
