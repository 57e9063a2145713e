//! Command-line flags; each also readable from a `SEAL_*` environment variable.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use seal_shared::keys::SealRecipient;

#[derive(Parser, Debug)]
#[command(
    name = "seal-operator",
    version,
    about = "Unseals SealedSecrets into Secrets, owns and rotates the cluster's age keys",
    after_help = "Examples:\n  seal-operator --namespace seal-system\n  \
        seal-operator --kubeconfig ~/.kube/config --namespace seal-system --leader-election=false\n  \
        seal-operator crd > crd.yaml"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the SealedSecret CustomResourceDefinition as YAML
    Crd,
}

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Kubeconfig to use; default: KUBECONFIG's usual rules, then the in-cluster config
    #[arg(long, env = "SEAL_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<std::path::PathBuf>,

    /// The operator's own namespace, where its keys, public-key ConfigMap and Lease live
    /// [default: the pod's namespace]
    #[arg(long, env = "SEAL_NAMESPACE", value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Only unseal SealedSecrets in this namespace [default: all namespaces]
    #[arg(long, env = "SEAL_WATCH_NAMESPACE", value_name = "NAMESPACE")]
    pub watch_namespace: Option<String>,

    /// How often a new sealing key is generated, e.g. 30d, 12h, 90s; 0 disables rotation
    #[arg(long, env = "SEAL_KEY_ROTATION_PERIOD", default_value = "30d", value_parser = parse_duration)]
    pub key_rotation_period: Duration,

    /// How long a retired key's private key is kept before its Secret is deleted, e.g. 7d,
    /// 12h; until then `seal keys unretire` brings it back. Measured on the operator's clock
    #[arg(long, env = "SEAL_KEY_RETIRE_GRACE", default_value = "7d", value_parser = parse_duration)]
    pub key_retire_grace: Duration,

    /// Log format on stderr (the audit log always goes to stdout as JSON lines); text is
    /// coloured only when stderr is a terminal
    #[arg(long, env = "SEAL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,

    /// Address for /livez, /readyz and /v1/keys
    #[arg(long, env = "SEAL_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,

    /// Address for /metrics (Prometheus)
    #[arg(long, env = "SEAL_METRICS_ADDR", default_value = "0.0.0.0:9090")]
    pub metrics_addr: SocketAddr,

    /// Elect a leader with a Lease so that several replicas are safe; only the leader
    /// creates and rotates keys
    #[arg(long, env = "SEAL_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,

    /// This replica's identity in leader election [default: the pod or host name]
    #[arg(long, env = "SEAL_POD_NAME", value_name = "NAME")]
    pub identity: Option<String>,

    /// Reseal requests (POST /v1/reseal) answered per second, on average, by this replica;
    /// 0 turns the endpoint off
    #[arg(
        long,
        env = "SEAL_RESEAL_RATE",
        default_value_t = 50,
        value_name = "PER_SECOND"
    )]
    pub reseal_rate: u32,

    /// Reseal requests answered at once before the rate applies (the token bucket's size)
    #[arg(
        long,
        env = "SEAL_RESEAL_BURST",
        default_value_t = 100,
        value_name = "REQUESTS"
    )]
    pub reseal_burst: u32,

    /// Back up every key, age-encrypted to this recipient (age1...), in the ConfigMap
    /// seal-key-backup before the key is published; repeatable
    #[arg(
        long = "key-backup-recipient",
        env = "SEAL_KEY_BACKUP_RECIPIENTS",
        value_name = "RECIPIENT",
        value_delimiter = ',',
        value_parser = parse_backup_recipient
    )]
    pub key_backup_recipients: Vec<SealRecipient>,
}

/// A backup recipient, through the one recipient validator. The input is never echoed: a
/// private key given here by mistake must not land in a pod's logs.
fn parse_backup_recipient(text: &str) -> Result<SealRecipient, String> {
    text.parse::<SealRecipient>().map_err(|_| {
        if text.trim().to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") {
            "this is a private key (an age identity), not a recipient; it must not be shared: give the public half (age1...) of the backup key".to_owned()
        } else {
            "not an age X25519 recipient (expected age1...)".to_owned()
        }
    })
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// Parses `30d`, `12h`, `15m`, `90s`, `500ms` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 30d, 12h, 90s"))?;
    let seconds = match unit {
        "" | "s" => n,
        "ms" => return Ok(Duration::from_millis(n)),
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => {
            return Err(format!(
                "invalid duration unit {unit:?}: use ms, s, m, h or d"
            ));
        }
    };
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("3w").is_err());
        assert!(parse_duration("d").is_err());
    }
}
