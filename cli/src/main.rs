//! `seal`: seal Kubernetes Secrets with age so they can live in Git.
#![forbid(unsafe_code)]

mod bitnami;
mod cli;
mod cluster;
mod commands;
mod config;
mod failure;
mod files;
mod given_as;
mod keylist;
mod progress;
mod recipients;
mod walk;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    let mut command = cli::Cli::command();
    if invoked_as_kubectl_plugin() {
        // kubectl runs `kubectl-seal` for `kubectl seal ...`; usage and help say what the
        // user typed.
        command = command.bin_name("kubectl seal");
    }
    let parsed = command
        .clone()
        .try_get_matches()
        .and_then(|matches| Ok((cli::Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return usage(&error),
    };
    given_as::record_sources(&command, &matches);
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) if failure.is_broken_pipe() => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

/// Whether this binary was started under the name kubectl gives plugins (`kubectl-seal`, a
/// copy or a link of `seal` on PATH).
fn invoked_as_kubectl_plugin() -> bool {
    std::env::args_os()
        .next()
        .as_deref()
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_stem)
        .is_some_and(|name| name == "kubectl-seal")
}

/// Help and version go to stdout as clap writes them; mistakes get seal's two lines.
fn usage(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let code = u8::try_from(error.exit_code()).unwrap_or(2);
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
        }
        _ => eprintln!("{}", cli::usage_error(error)),
    }
    ExitCode::from(code)
}
