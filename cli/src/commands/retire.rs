//! `seal keys retire ID` and `seal keys unretire ID`: ask seal-operator's leader to retire a
//! key that no SealedSecret needs any more, or to bring a retired key back within its grace
//! period, and wait for its answer.

use std::time::Duration;

use seal_shared::keys::KeyId;
use seal_shared::public_keys::{KeyAction, KeyAnswer};

use crate::cluster::{ClusterArgs, request_key_action};
use crate::failure::{Failure, Result, say};

/// Retire a decrypt-only key: it opens nothing from then on, and its private key is deleted
/// after the operator's grace period (7 days by default)
#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  seal keys retire 0c87a417f764bcf7\n\n\
    Refused while any SealedSecret still needs the key (reseal those first: seal reseal),\n\
    and for the sealing key. Until the grace period is over, `seal keys unretire ID` brings\n\
    the key back. Sets the annotation key-request.seal.dev/ID on the public-key ConfigMap;\n\
    the operator's leader answers under key-answer.seal.dev/ID. Needs permission to patch\n\
    that ConfigMap.")]
pub struct RetireArgs {
    #[command(flatten)]
    request: RequestArgs,
}

/// Bring a retired key back to decrypt-only before its grace period is over
#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  seal keys unretire 0c87a417f764bcf7\n\n\
    The key opens what is sealed to it again and is no longer to be deleted; it never seals\n\
    again (a newer key does). Once the grace period is over the key is gone, and only a\n\
    backup (seal keys restore) brings it back.")]
pub struct UnretireArgs {
    #[command(flatten)]
    request: RequestArgs,
}

#[derive(clap::Args, Debug)]
struct RequestArgs {
    /// The key id, as `seal keys` lists it (16 hex digits)
    #[arg(value_name = "ID", value_parser = parse_key_id)]
    key: KeyId,

    #[command(flatten)]
    cluster: ClusterArgs,

    /// How long to wait for the operator's answer, e.g. 60s, 2m
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = super::rotate::parse_wait)]
    timeout: Duration,
}

/// A key id through the one key-id parser. The text is not quoted back: whatever was pasted
/// here may be a private key.
fn parse_key_id(text: &str) -> Result<KeyId, String> {
    text.trim().parse::<KeyId>().map_err(|_| {
        "not a key id: expected the 16 hex digits `seal keys` lists in its KEY ID column".to_owned()
    })
}

pub fn retire(args: RetireArgs) -> Result<()> {
    run(args.request, KeyAction::Retire)
}

pub fn unretire(args: UnretireArgs) -> Result<()> {
    run(args.request, KeyAction::Unretire)
}

fn run(args: RequestArgs, action: KeyAction) -> Result<()> {
    if args.timeout.is_zero() {
        return Err(
            Failure::new("--timeout 0: the answer is what this command is for")
                .hint("give a timeout such as 60s")
                .usage(),
        );
    }
    let outcome = request_key_action(&args.cluster, args.key, action, args.timeout)?;
    let answer = outcome.answer;
    if answer.outcome == "refused" {
        return Err(refused(args.key, action, &answer));
    }
    say(format!(
        "{} (seal-operator in namespace {} of context {:?})",
        answer.message, args.cluster.controller_namespace, outcome.cluster.context
    ));
    Ok(())
}

/// The operator's refusal, as one error line and what to do about it.
fn refused(key: KeyId, action: KeyAction, answer: &KeyAnswer) -> Failure {
    let what = format!("key {key}: cannot {} it", action.as_str());
    if answer.needed_by > 0 {
        let more = answer.needed_by.saturating_sub(answer.sealed_secrets.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        return Failure::new(format!(
            "{what}: {} SealedSecret(s) still need it: {}{more}",
            answer.needed_by,
            answer.sealed_secrets.join(", ")
        ))
        .hint(format!(
            "reseal them to the current key first (`seal reseal`), apply them, then retire {key} again"
        ));
    }
    let hint = if matches!(answer.reason.as_str(), "SealingKey" | "StillActive") {
        "a key must stop sealing before it is retired: `seal rotate`, reseal what is sealed to it (`seal reseal`), then retire it".to_owned()
    } else {
        "`seal keys` lists the cluster's keys and their states".to_owned()
    };
    Failure::new(format!("{what}: {}", answer.message)).hint(hint)
}
