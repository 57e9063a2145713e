use std::path::PathBuf;

use age::secrecy::ExposeSecret;
use seal_shared::keys::SealIdentity;
use zeroize::Zeroizing;

use crate::failure::Result;
use crate::files::{create_private, write_stdout};

/// Generate an age identity (for example an offline recovery key)
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  seal keygen -o recovery.key        # prints the recipient to seal to\n  \
    seal encrypt -r $(seal keygen -o recovery.key) -r age1cluster... secret.yaml"
)]
pub struct Args {
    /// Write the identity to FILE (created with mode 0600; an existing file is never replaced).
    /// Without it, or with `-`, the identity goes to stdout and the recipient to stderr, as
    /// age-keygen does.
    #[arg(short, long, value_name = "FILE", env = "SEAL_KEYGEN_OUTPUT")]
    output: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let identity = SealIdentity::generate();
    let recipient = identity.recipient();
    let secret = identity.to_secret_string();
    let contents = Zeroizing::new(format!(
        "# seal key id: {}\n# public key: {}\n{}\n",
        recipient.id,
        recipient.recipient,
        secret.expose_secret()
    ));
    match args
        .output
        .as_deref()
        .filter(|p| *p != std::path::Path::new("-"))
    {
        Some(path) => {
            create_private(path, contents.as_bytes())?;
            write_stdout(format!("{}\n", recipient.recipient).as_bytes())
        }
        None => {
            eprintln!("Public key: {}", recipient.recipient);
            write_stdout(contents.as_bytes())
        }
    }
}
