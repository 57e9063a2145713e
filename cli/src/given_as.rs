//! Where each argument's value came from (a flag or an environment variable), recorded once
//! after parsing, so that an error names the variable the user actually set.

use std::sync::OnceLock;

use clap::ArgMatches;
use clap::parser::ValueSource;

/// For each argument of the command being run that has a value: its id and how the user
/// gave it (`SEAL_NAMESPACE`, or `-n/--namespace`).
static GIVEN_AS: OnceLock<Vec<(String, String)>> = OnceLock::new();

/// Remembers how each argument was given, so that an error about a value names the
/// environment variable it came from rather than a flag the user never typed.
pub fn record_sources(command: &clap::Command, matches: &ArgMatches) {
    let Some((name, sub_matches)) = matches.subcommand() else {
        return;
    };
    let Some(sub) = command.find_subcommand(name) else {
        return;
    };
    let sources = sub
        .get_arguments()
        .filter_map(|arg| {
            let id = arg.get_id().as_str();
            let source = sub_matches.value_source(id)?;
            let label = match (source, arg.get_env()) {
                (ValueSource::EnvVariable, Some(env)) => env.to_string_lossy().into_owned(),
                _ => flag_label(arg),
            };
            Some((id.to_owned(), label))
        })
        .collect();
    let _ = GIVEN_AS.set(sources);
}

fn flag_label(arg: &clap::Arg) -> String {
    match (arg.get_short(), arg.get_long()) {
        (Some(short), Some(long)) => format!("-{short}/--{long}"),
        (None, Some(long)) => format!("--{long}"),
        (Some(short), None) => format!("-{short}"),
        (None, None) => arg
            .get_value_names()
            .and_then(|names| names.first())
            .map_or_else(|| arg.get_id().to_string(), ToString::to_string),
    }
}

/// How the argument `id` was given; `fallback` (its flag) when not recorded.
pub fn given_as(id: &str, fallback: &str) -> String {
    GIVEN_AS
        .get()
        .and_then(|all| all.iter().find(|(known, _)| known == id))
        .map_or_else(|| fallback.to_owned(), |(_, label)| label.clone())
}
