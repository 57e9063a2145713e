//! `seal`: seal Kubernetes Secrets with age so they can live in Git.
#![forbid(unsafe_code)]

mod cli;
mod cluster;
mod commands;
mod config;
mod failure;
mod files;
mod recipients;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) if failure.is_broken_pipe() => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::FAILURE
        }
    }
}
