//! seal-operator's entry point: parse flags, then run (see lib.rs for where things are).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use seal_operator::args::{Args, Command};
use seal_operator::run;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Some(Command::Crd) => run::print_crd(),
        None => run::run(args.run).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("seal-operator: error: {message}");
            ExitCode::FAILURE
        }
    }
}
