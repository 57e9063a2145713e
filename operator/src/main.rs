//! seal-operator's entry point: parse flags, then run (see lib.rs for where things are).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use seal_operator::args::{Args, Command};
use seal_operator::run;
use seal_shared::escape::{escape, withhold_identities};

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) => {
            // clap quotes a rejected value in its message; a private key given by mistake
            // must not land in the pod's log.
            let rendered = error.render().to_string();
            let shown = withhold_identities(&rendered);
            if error.use_stderr() {
                eprint!("{shown}");
                return ExitCode::from(2);
            }
            print!("{shown}");
            return ExitCode::SUCCESS;
        }
    };
    let result = match args.command {
        Some(Command::Crd) => run::print_crd(),
        None => run::run(args.run).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!(
                "seal-operator: error: {}",
                escape(&withhold_identities(&message))
            );
            ExitCode::FAILURE
        }
    }
}
