//! `seal reseal`: brings items sealed to a cluster's old keys up to its current sealing key,
//! in place, keeping every other recipient and every binding. Online the operator reseals
//! each item (it holds the keys); offline an identity opens it here, in memory only.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use seal_shared::keys::{KeyId, KeyRing, SealRecipient};
use seal_shared::public_keys::{CONFIGMAP, KEYS_KEY};
use seal_shared::reseal::{
    ClusterKeys, ResealReply, ResealRequest, Resealed, Standing, reseal_entry,
};
use seal_shared::sealed_secret::{
    API_VERSION, SealedSecret, describe_sealed, inspect_entry, parse_sealed_secrets,
    set_items_in_text,
};

use crate::cluster::OperatorRoute;
use crate::config::{Config, Subject};
use crate::failure::{Failure, Result, clean, say};
use crate::files::{Input, Mode, read_recipients_file, write_atomic, write_stdout};
use crate::keylist::KeyList;
use crate::progress::Progress;
use crate::recipients::{list, parse_values};

/// Reseal items sealed to a cluster's old keys to its current sealing key, in place
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    seal reseal clusters/prod/          # online: seal-operator reseals each stale item\n  \
    seal reseal --dry-run               # list what would change, write nothing\n  \
    seal reseal -i recovery.key --keys keys.json clusters/prod/   # offline, no cluster\n  \
    seal reseal --operator-url http://127.0.0.1:8080 .   # with kubectl port-forward\n\n\
    An item is stale when the key ids in its header include one of the cluster's keys but \
    not its current sealing key; it is sealed again to the current key plus every other \
    recipient it had (a recovery key, another cluster), under the same binding. Items already \
    sealed to the current key, and items sealed to none of the cluster's keys, are left byte \
    for byte; a file is rewritten (atomically, through a symbolic link to the file it names) \
    only when one of its items changed. A recipient other than the cluster's keys is kept by \
    its age1 recipient: from -r/-R, the file's .seal.yaml rule, or the public half of an -i \
    identity; an item with a recipient none of these gives is refused, never sealed without it.\n\n\
    Online (no -i), the cluster's keys are read from the seal-public-keys ConfigMap and each \
    stale item is sent to seal-operator's reseal endpoint, through the API server's service \
    proxy (you need get and create on services/proxy for the seal-operator Service) or \
    --operator-url. The operator opens an item only where its binding admits it and seals it \
    only to its current key and recipients the item already names; it answers ciphertext \
    only. Offline, -i opens each item here; the plaintext is never written anywhere and is \
    wiped from memory once sealed again.\n\n\
    Exit status: 0 when every stale item was resealed, 1 when any was refused, 2 usage error.")]
pub struct Args {
    /// Files or directories to reseal; directories are searched recursively, skipping what
    /// ignore files exclude
    #[arg(value_name = "PATH", default_value = ".")]
    paths: Vec<PathBuf>,

    /// List what would change (file, SealedSecret, item, old key -> new key); write nothing
    #[arg(long)]
    dry_run: bool,

    /// Offline: open items with this age identity file (a recovery key or an old cluster
    /// key); repeatable. Needs --keys
    #[arg(
        short,
        long = "identity",
        value_name = "FILE",
        requires = "keys",
        conflicts_with = "operator_url"
    )]
    identities: Vec<PathBuf>,

    /// Offline: the cluster's key list (the seal-public-keys ConfigMap's keys.json, or GET
    /// /v1/keys); its active key is the one to reseal to. Needs -i
    #[arg(long, value_name = "FILE", requires = "identities")]
    keys: Option<PathBuf>,

    /// Keep this recipient (age1...) on items whose header names its key id; repeatable
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    recipients: Vec<String>,

    /// Keep the recipients listed in FILE on items whose header names their key ids;
    /// repeatable
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    recipients_files: Vec<PathBuf>,

    /// Online: the cluster and namespace of seal-operator (its public-key ConfigMap and its
    /// Service)
    #[command(flatten, next_help_heading = "Cluster (online)")]
    cluster: crate::cluster::ClusterArgs,

    /// Reach seal-operator's HTTP port at this address instead of through the API server's
    /// service proxy (e.g. http://127.0.0.1:8080 with kubectl port-forward)
    #[arg(long, value_name = "URL")]
    operator_url: Option<String>,
}

/// How items are opened: here with identities, or by the operator.
enum Opener {
    Offline(KeyRing),
    Online(OperatorRoute),
}

/// One stale item to reseal.
struct Planned {
    file: usize,
    doc: usize,
    key: String,
    encoded: String,
    old: Vec<KeyId>,
    /// The recipients (besides the cluster's keys) that the item keeps.
    kept: Vec<SealRecipient>,
    /// The ids the resealed item must name, in order.
    expected: Vec<KeyId>,
}

struct FileState {
    path: PathBuf,
    shown: String,
    text: zeroize::Zeroizing<String>,
    docs: Vec<SealedSecret>,
}

#[derive(Default)]
struct Counts {
    current: usize,
    not_clusters: usize,
    refused: usize,
}

pub fn run(args: Args) -> Result<()> {
    let (mode, keys, origin) = if let Some(path) = &args.keys {
        let ring = crate::commands::decrypt::read_identities(&args.identities)?;
        let keys = KeyList::load(path)?;
        (Opener::Offline(ring), keys, path.display().to_string())
    } else {
        let (data, cluster) = crate::cluster::public_keys(&args.cluster)?;
        let origin = format!(
            "ConfigMap {}/{CONFIGMAP} in context {:?} ({})",
            args.cluster.controller_namespace, cluster.context, cluster.server
        );
        let text = data.get(KEYS_KEY).ok_or_else(|| {
            Failure::new(format!("{origin} has no {KEYS_KEY}"))
                .hint("is seal-operator ready? it writes the key list with the public keys")
        })?;
        let keys = KeyList::parse(text).map_err(|f| {
            Failure::new(format!("{origin}: {KEYS_KEY}: {}", f.message()))
                .hint("the ConfigMap was edited by hand? the operator rewrites it")
        })?;
        let route = match &args.operator_url {
            Some(url) => OperatorRoute::Url(url.clone()),
            None => OperatorRoute::ServiceProxy(args.cluster.clone()),
        };
        (Opener::Online(route), keys, origin)
    };
    let current = keys.current().map_err(|f| {
        Failure::new(format!("{origin}: {}", f.message()))
            .hint("fetch the cluster's key list again")
    })?;
    let all_ids = keys.ids();
    let cluster = ClusterKeys {
        current,
        all: &all_ids,
    };
    let mut extra = parse_values(&args.recipients, "-r/--recipient")?;
    for path in &args.recipients_files {
        extra.extend(read_recipients_file(path, "-R/--recipients-file")?);
    }
    if let Opener::Offline(ring) = &mode {
        // An identity's public half is a recipient the user holds: a recovery key keeps itself.
        extra.extend(
            ring.ids()
                .filter_map(|id| ring.get(id))
                .map(|k| k.recipient()),
        );
    }

    say(format!(
        "resealing to key {} (the active key in {origin}); the cluster's keys: {}",
        current.id,
        list(&all_ids)
    ));
    let paths = crate::commands::verify::collect(&args.paths)?;
    let mut files: Vec<FileState> = Vec::new();
    let mut planned: Vec<Planned> = Vec::new();
    let mut counts = Counts::default();
    let mut configs: HashMap<PathBuf, Option<Config>> = HashMap::new();
    for path in &paths {
        let Some(file) = read_file(path, &mut counts) else {
            continue;
        };
        let known = known_for(path, &extra, &mut configs)?;
        let index = files.len();
        plan_file(index, &file, &cluster, &known, &mut planned, &mut counts);
        files.push(file);
    }

    if args.dry_run {
        let lines: String = planned
            .iter()
            .map(|item| line(&files, item, current.id))
            .collect();
        write_stdout(lines.as_bytes())?;
        summary(&files, &planned, 0, &counts, true);
        return refusals(&counts);
    }

    let bar = Progress::counting(planned.len(), "items");
    let results: Vec<Result<String>> = match &mode {
        Opener::Offline(ring) => planned
            .par_iter()
            .map(|item| {
                let result = reseal_offline(&files[item.file], item, ring, &cluster);
                bar.file_done();
                result
            })
            .collect(),
        Opener::Online(route) => {
            let requests = planned
                .iter()
                .map(|item| request_for(&files[item.file], item, current.id))
                .collect();
            let (answers, place) =
                crate::cluster::reseal_items(route, requests, &|| bar.file_done())
                    .inspect_err(|_| bar.finish())?;
            say(format!("resealed through {place}"));
            answers
                .into_iter()
                .zip(&planned)
                .map(|(answer, item)| check_reply(answer?, item))
                .collect()
        }
    };
    bar.finish();

    let mut changes: BTreeMap<usize, BTreeMap<usize, BTreeMap<String, String>>> = BTreeMap::new();
    for (item, result) in planned.iter().zip(results) {
        match result {
            Ok(encoded) => {
                changes
                    .entry(item.file)
                    .or_default()
                    .entry(item.doc)
                    .or_default()
                    .insert(item.key.clone(), encoded);
            }
            Err(failure) => {
                let file = &files[item.file];
                refuse(
                    &mut counts,
                    failure
                        .context(format!("item {:?}", item.key))
                        .context(describe_sealed(&file.docs[item.doc]))
                        .context(&file.shown),
                );
            }
        }
    }
    let mut resealed = 0;
    let mut lines = String::new();
    for (index, doc_changes) in &changes {
        let file = &files[*index];
        let items: usize = doc_changes.values().map(BTreeMap::len).sum();
        let written = set_items_in_text(&file.text, &file.docs, doc_changes)
            .map_err(|e| {
                Failure::new(format!("cannot rewrite in place: {e}")).hint(
                    "nothing was written to this file; write the items of spec.encryptedData one per line (key: base64), as seal does",
                )
            })
            .and_then(|out| write_atomic(&file.path, out.as_bytes(), Mode::Public));
        match written {
            Ok(()) => {
                resealed += items;
                for item in planned.iter().filter(|p| {
                    p.file == *index
                        && doc_changes
                            .get(&p.doc)
                            .is_some_and(|c| c.contains_key(&p.key))
                }) {
                    lines.push_str(&line(&files, item, current.id));
                }
            }
            Err(failure) => {
                counts.refused += items - 1;
                refuse(&mut counts, failure.context(&file.shown));
            }
        }
    }
    write_stdout(lines.as_bytes())?;
    summary(&files, &planned, resealed, &counts, false);
    refusals(&counts)
}

/// What changes (or would) for one item: where it is, its old keys and the new one.
fn line(files: &[FileState], item: &Planned, current: KeyId) -> String {
    let file = &files[item.file];
    format!(
        "{}: {}: item {:?}: {} -> {current}\n",
        file.shown,
        clean(&describe_sealed(&file.docs[item.doc])),
        item.key,
        list(&item.old),
    )
}

fn refuse(counts: &mut Counts, failure: Failure) {
    counts.refused += 1;
    eprintln!("{failure}");
}

fn refusals(counts: &Counts) -> Result<()> {
    if counts.refused == 0 {
        return Ok(());
    }
    Err(Failure::new(format!(
        "{} item(s) or file(s) were not resealed",
        counts.refused
    ))
    .hint(
        "each is listed above with its reason; the rest were resealed, and those stay as they were",
    ))
}

fn summary(files: &[FileState], planned: &[Planned], resealed: usize, counts: &Counts, dry: bool) {
    let changed_files = {
        let mut seen: Vec<usize> = planned.iter().map(|p| p.file).collect();
        seen.dedup();
        seen.len()
    };
    let done = if dry {
        format!(
            "{} item(s) in {changed_files} file(s) would be resealed",
            planned.len()
        )
    } else {
        format!("{resealed} item(s) resealed in {changed_files} file(s)")
    };
    say(format!(
        "reseal: {} SealedSecret file(s) read: {done}; {} already current, {} sealed to none of the cluster's keys (left alone), {} refused{}",
        files.len(),
        counts.current,
        counts.not_clusters,
        counts.refused,
        if dry {
            " (dry run: nothing written)"
        } else {
            ""
        }
    ));
}

/// Reads a file that may hold SealedSecrets. A file that names none is skipped; one that
/// names some but does not read as SealedSecrets only is refused.
fn read_file(path: &Path, counts: &mut Counts) -> Option<FileState> {
    let shown = crate::commands::verify::shown(path);
    let text = match Input::File(path.to_path_buf()).read_text() {
        Ok(text) => text,
        Err(failure) => {
            refuse(counts, failure);
            return None;
        }
    };
    if !text.contains(API_VERSION) {
        return None;
    }
    match parse_sealed_secrets(&text) {
        Ok(docs) => Some(FileState {
            path: path.to_path_buf(),
            shown,
            text,
            docs,
        }),
        Err(error) => {
            refuse(
                counts,
                Failure::from(error)
                    .hint("seal reseal rewrites files that hold SealedSecrets only; fix the file or leave it out")
                    .context(&shown),
            );
            None
        }
    }
}

/// The recipients an item in `path` may keep: -r/-R, identities' public halves, and the
/// file's `.seal.yaml` rule.
fn known_for(
    path: &Path,
    extra: &[SealRecipient],
    configs: &mut HashMap<PathBuf, Option<Config>>,
) -> Result<Vec<SealRecipient>> {
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    if !configs.contains_key(&dir) {
        let found = Config::find(&dir).map_err(Failure::usage)?;
        configs.insert(dir.clone(), found);
    }
    let mut known = extra.to_vec();
    if let Some(Some(config)) = configs.get(&dir) {
        let relative = config.relative(path);
        // A file no rule matches keeps only what the flags give: the rule is a source of
        // recipients here, not a policy (seal verify checks that).
        if let Ok(rule) = config.rule_for(&Subject::Path(&relative)) {
            known.extend(rule.recipients.iter().cloned());
        }
    }
    Ok(known)
}

fn plan_file(
    index: usize,
    file: &FileState,
    cluster: &ClusterKeys<'_>,
    known: &[SealRecipient],
    planned: &mut Vec<Planned>,
    counts: &mut Counts,
) {
    for (doc_index, doc) in file.docs.iter().enumerate() {
        for (key, encoded) in &doc.spec.encrypted_data {
            let within = |failure: Failure| {
                failure
                    .context(format!("item {key:?}"))
                    .context(describe_sealed(doc))
                    .context(&file.shown)
            };
            // Unauthenticated, and only to choose: the item is opened before it is trusted.
            let ids = match inspect_entry(key, encoded) {
                Ok((_, ids)) => ids,
                Err(error) => {
                    let failure = Failure::from(error);
                    let message = failure.message();
                    let message = message
                        .strip_prefix(&format!("item {key:?}: "))
                        .unwrap_or(&message)
                        .to_owned();
                    refuse(
                        counts,
                        within(Failure::new(format!("cannot read its header: {message}")).hint(
                            "seal cannot tell which keys it is sealed to; reseal the value from its source with seal encrypt --merge-into",
                        )),
                    );
                    continue;
                }
            };
            let old = match cluster.standing(&ids) {
                Standing::Current => {
                    counts.current += 1;
                    continue;
                }
                Standing::NotTheClusters => {
                    counts.not_clusters += 1;
                    continue;
                }
                Standing::Stale { old } => old,
            };
            let expected = match cluster.recipients_for(&ids, known) {
                Ok(recipients) => recipients,
                Err(error) => {
                    refuse(
                        counts,
                        within(Failure::new(error).hint(
                            "give the missing recipient with -r age1... or -R FILE (or name it in the file's .seal.yaml rule); seal never drops a recipient",
                        )),
                    );
                    continue;
                }
            };
            let kept = expected
                .iter()
                .filter(|r| !cluster.all.contains(&r.id) && r.id != cluster.current.id)
                .cloned()
                .collect();
            planned.push(Planned {
                file: index,
                doc: doc_index,
                key: key.clone(),
                encoded: encoded.clone(),
                old,
                kept,
                expected: expected.iter().map(|r| r.id).collect(),
            });
        }
    }
}

fn reseal_offline(
    file: &FileState,
    item: &Planned,
    ring: &KeyRing,
    cluster: &ClusterKeys<'_>,
) -> Result<String> {
    let doc = &file.docs[item.doc];
    let Resealed { encoded, .. } =
        reseal_entry(doc, &item.key, &item.encoded, ring, cluster, &item.kept).map_err(|e| {
            let reason = e.reason();
            let text = e.to_string();
            let text = text
                .strip_prefix(&format!("item {:?}: ", item.key))
                .unwrap_or(&text)
                .to_owned();
            let hint = match reason {
                "NoMatchingKey" => {
                    "pass -i with an identity of one of those keys (the recovery key, or an old cluster key from its backup)"
                }
                "BindingMismatch" => {
                    "it was sealed for another place; seal its value again here: seal encrypt --merge-into"
                }
                _ => "reseal the value from its source with seal encrypt --merge-into",
            };
            Failure::new(text).hint(hint)
        })?;
    Ok(encoded)
}

fn request_for(file: &FileState, item: &Planned, current: KeyId) -> ResealRequest {
    let doc = &file.docs[item.doc];
    ResealRequest {
        namespace: doc.metadata.namespace.clone().unwrap_or_default(),
        name: doc.metadata.name.clone().unwrap_or_default(),
        scope: doc.spec.scope,
        key: item.key.clone(),
        item: item.encoded.clone(),
        recipients: item.kept.iter().map(|r| r.recipient.to_string()).collect(),
        to: current.to_string(),
    }
}

/// What the operator sent back must be an item for the same place, sealed to exactly the
/// keys asked for: checked from its header before it replaces anything.
fn check_reply(reply: ResealReply, item: &Planned) -> Result<String> {
    let wrong = |what: &str| {
        Err(
            Failure::new(format!("the operator's reply {what}; it was not written")).hint(
                "this is a bug in seal-operator, or not seal-operator answering; please report it",
            ),
        )
    };
    let Ok((binding, ids)) = inspect_entry(&item.key, &reply.item) else {
        return wrong("is not a sealed item");
    };
    let Ok((old_binding, _)) = inspect_entry(&item.key, &item.encoded) else {
        return wrong("answers an item seal cannot read");
    };
    if binding != old_binding {
        return wrong("carries another binding");
    }
    if ids != item.expected {
        return wrong("is sealed to other keys than asked for");
    }
    Ok(reply.item)
}
