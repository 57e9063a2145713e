use clap_complete::Shell;

use crate::failure::Result;

/// Print a shell completion script
#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  seal completion bash > /etc/bash_completion.d/seal")]
pub struct Args {
    /// The shell to complete for
    shell: Shell,
}

/// Writes the completion script for `command` (the whole `seal` command line).
pub fn run(args: Args, mut command: clap::Command) -> Result<()> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "seal", &mut out);
    crate::files::write_stdout(&out)
}
