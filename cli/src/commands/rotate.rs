use std::time::Duration;

use crate::cluster::{ClusterArgs, request_rotation};
use crate::failure::Result;

/// Ask seal-operator for a new sealing key now, and wait until it is published (older keys
/// stay for decrypting)
#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  seal rotate && seal keys\n\n\
    Sets the annotation seal.dev/rotate-requested-at on the public-key ConfigMap to a new\n\
    request id; the operator's leader answers it with exactly one new key, and marks the\n\
    ConfigMap seal.dev/rotate-answered with the same id once that key is published. Prints\n\
    the new key id. Needs permission to patch that ConfigMap.")]
pub struct Args {
    #[command(flatten)]
    cluster: ClusterArgs,

    /// How long to wait for the new key to be published, e.g. 60s, 2m; 0 returns at once
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_wait)]
    timeout: Duration,
}

pub(crate) fn parse_wait(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .map_err(|_| "expected a duration such as 60s or 2m".to_owned())?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err("expected a duration in s or m, such as 60s or 2m".to_owned()),
    }
}

pub fn run(args: Args) -> Result<()> {
    let (request, key) = request_rotation(&args.cluster, args.timeout)?;
    match key {
        Some(key) => {
            crate::failure::say(format!(
                "rotation request {request} answered: new sealing key {} (recipient {})",
                key.id, key.recipient
            ));
            crate::files::write_stdout(format!("{}\n", key.id).as_bytes())
        }
        None => {
            crate::failure::say(format!(
                "requested a new sealing key (request {request}); `seal keys` shows it once the operator has published it"
            ));
            Ok(())
        }
    }
}
