use std::path::PathBuf;

use age::secrecy::SecretString;
use seal_shared::KeyRing;
use seal_shared::sealed_secret::{describe_sealed, parse_sealed_secrets, unseal_secret};
use seal_shared::yaml;
use zeroize::Zeroizing;

use crate::failure::{Context, Result};
use crate::files::{Input, KeyFile, Mode, Output, check_path_arg, read_key_file};

/// Recover plain Secrets from SealedSecrets with an identity (the offline recovery path)
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  seal decrypt -i recovery.key sealed.yaml\n  \
    seal decrypt -i cluster.key -o secret.yaml sealed.yaml   # written with mode 0600\n\n\
    Every item's binding is checked against the SealedSecret it is in: an item copied from \
    another namespace, name or key is refused, as the operator refuses it."
)]
pub struct Args {
    /// SealedSecret file(s) to open; `-` or absent for stdin
    #[arg(value_name = "FILE")]
    input: Option<PathBuf>,

    /// age identity file (AGE-SECRET-KEY-1...); repeatable
    #[arg(
        short,
        long = "identity",
        value_name = "FILE",
        env = "SEAL_IDENTITY",
        value_delimiter = ',',
        required = true
    )]
    identities: Vec<PathBuf>,

    /// Write the plain Secret to FILE (mode 0600, atomically; through a symbolic link to the
    /// file it names) instead of stdout; `-` is stdout
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// The keys of every `-i` identity file, read through the bounded key-file reader.
pub(crate) fn read_identities(paths: &[PathBuf]) -> Result<KeyRing> {
    let given_as = crate::given_as::given_as("identities", "-i/--identity");
    let mut ring = KeyRing::new();
    for path in paths {
        let text = read_key_file(path, KeyFile::Identities, &given_as)?;
        ring.add_identity_file(
            &SecretString::from(text.as_str().to_owned()),
            &path.display().to_string(),
        )?;
    }
    Ok(ring)
}

pub fn run(args: Args) -> Result<()> {
    let ring = read_identities(&args.identities)?;
    let input = Input::from_arg(args.input.as_deref());
    if let Input::File(path) = &input {
        check_path_arg(path, "the input file")?;
    }
    let output = Output::from_arg(args.output.as_deref());
    let sealed = parse_sealed_secrets(&input.read_text()?).within(input.name())?;
    let mut manifests = Vec::with_capacity(sealed.len());
    for doc in &sealed {
        let (manifest, _) = unseal_secret(doc, &ring)
            .within(describe_sealed(doc))
            .within(input.name())?;
        manifests.push(manifest);
    }
    let yaml = Zeroizing::new(yaml::to_string_multiple(&manifests)?);
    output.write(yaml.as_bytes(), Mode::Private)
}
