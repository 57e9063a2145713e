use crate::cluster::{DEFAULT_CONTROLLER_NAMESPACE, request_rotation};
use crate::failure::Result;

/// Ask seal-operator for a new sealing key now (older keys stay for decrypting)
#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  seal rotate && sleep 5 && seal keys\n\n\
    Sets the annotation seal.dev/rotate-requested-at on the public-key ConfigMap; the\n\
    operator's leader generates a new key when the request is newer than the current key.\n\
    Needs permission to patch that ConfigMap.")]
pub struct Args {
    /// Namespace where seal-operator runs
    #[arg(long, value_name = "NAMESPACE", env = "SEAL_CONTROLLER_NAMESPACE", default_value = DEFAULT_CONTROLLER_NAMESPACE)]
    controller_namespace: String,
}

pub fn run(args: Args) -> Result<()> {
    let at = request_rotation(&args.controller_namespace)?;
    eprintln!(
        "requested a new sealing key at {at}; `seal keys` shows it once the operator has made it"
    );
    Ok(())
}
