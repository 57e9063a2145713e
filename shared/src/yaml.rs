//! YAML in and out. Output quotes every string a YAML 1.1 reader (as Kubernetes tooling
//! uses) would turn into a boolean or number, and writes long base64 on one line.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::escape::escape;
use crate::limits::{MAX_YAML_DOCUMENTS, MAX_YAML_EVENTS, MAX_YAML_NODES};

/// Parses every document of a YAML (or JSON) stream. Duplicate keys are errors.
pub fn from_multiple<T: DeserializeOwned>(text: &str) -> Result<Vec<T>> {
    serde_saphyr::from_multiple_with_options(text, parse_options()).map_err(|e| yaml_error(&e))
}

/// serde-saphyr's defaults (duplicate keys refused, budgets on), with the budgets of
/// [`crate::limits`]: its own document limit (1,024) would refuse a file of many Secrets
/// that the byte and node limits accept.
fn parse_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = MAX_YAML_NODES;
    budget.max_events = MAX_YAML_EVENTS;
    budget.max_documents = MAX_YAML_DOCUMENTS;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// The error in plain words with its position. Never the parser's own text where that can
/// quote the input (`invalid type: string "hunter2"`) or name its API (`use Option<String>`).
pub fn yaml_error(error: &serde_saphyr::Error) -> Error {
    let (line, column) = error
        .location()
        .map(|l| (l.line() as usize, l.column() as usize))
        .unwrap_or((0, 0));
    Error::Yaml {
        line,
        column,
        message: message(error).into_owned(),
    }
}

fn message(error: &serde_saphyr::Error) -> Cow<'_, str> {
    use serde_saphyr::Error as E;
    use serde_saphyr::budget::BudgetBreach as B;
    let too_big = "the document is too large or too complex for a Secret manifest";
    match error {
        E::WithSnippet { error, .. } | E::AliasError { error, .. } => message(error),
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | E::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => Cow::Owned(format!(
            "expected {}, found {}",
            expected_kind(expected),
            value_kind(unexpected)
        )),
        E::NullIntoString { .. } | E::InvalidCharNull { .. } => Cow::Borrowed(
            "a value is null here (a bare ~, null or nothing after the colon); quote it",
        ),
        E::DuplicateMappingKey { key: Some(key), .. } => {
            Cow::Owned(format!("duplicate key {:?}", escape(key)))
        }
        E::DuplicateMappingKey { key: None, .. } => Cow::Borrowed("duplicate key"),
        E::SerdeUnknownField { field, .. } => {
            Cow::Owned(format!("unknown field {:?}", escape(field)))
        }
        E::SerdeUnknownVariant {
            variant, expected, ..
        } => Cow::Owned(format!(
            "unknown value {:?}; expected one of {}",
            escape(variant),
            expected.join(", ")
        )),
        E::SerdeMissingField { field, .. } => Cow::Owned(format!("missing field {field:?}")),
        E::SerdeInvalidLength { .. } => Cow::Borrowed("wrong number of entries"),
        E::QuotingRequired { .. } => Cow::Borrowed("this value must be quoted"),
        E::NonFiniteFloat { .. } => {
            Cow::Borrowed("this value reads as a number that is not finite; quote it")
        }
        E::Unexpected { expected, .. } => Cow::Owned(format!(
            "expected {}",
            match *expected {
                "mapping start" => "a mapping (key: value lines) here",
                "string scalar" => "a single text value here, not a list or mapping",
                "sequence start" => "a list here",
                other => other,
            }
        )),
        E::Budget {
            breach: B::Depth { .. },
            ..
        } => Cow::Borrowed("the document is nested too deeply for a Secret manifest"),
        E::Budget {
            breach: B::Documents { .. },
            ..
        } => Cow::Owned(format!(
            "more than {MAX_YAML_DOCUMENTS} documents in one input; split the file"
        )),
        E::Budget {
            breach: B::Nodes { .. },
            ..
        } => Cow::Owned(format!(
            "more than {MAX_YAML_NODES} YAML nodes (keys, values, mappings, lists) in one input; split the file"
        )),
        E::Budget { .. }
        | E::AliasReplayCounterOverflow { .. }
        | E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. } => Cow::Borrowed(too_big),
        E::Message { msg, .. } | E::HookError { msg, .. } | E::SerdeVariantId { msg, .. } => {
            escape(msg)
        }
        E::InvalidUtf8Input => Cow::Borrowed("not UTF-8 text"),
        other => {
            // Parser and structure errors: serde-saphyr's user-facing wording does not quote
            // values. Its layout and any control characters are flattened to one line.
            let text = other.render_with_formatter(&serde_saphyr::UserMessageFormatter);
            let first = text.lines().next().unwrap_or_default();
            Cow::Owned(escape(strip_location(first)).into_owned())
        }
    }
}

/// serde's `Unexpected` reads `string "hunter2"`, `integer `5``, `map`: the kind only.
fn value_kind(unexpected: &str) -> String {
    let kind = unexpected
        .split(['"', '`', '\''])
        .next()
        .unwrap_or_default()
        .trim();
    match kind {
        "" => "something else".to_owned(),
        "unit value" => "null".to_owned(),
        k if k.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("an {}", escape(k)),
        k => format!("a {}", escape(k)),
    }
}

/// serde names Rust types (`struct DocumentHead`); a reader knows mappings.
fn expected_kind(expected: &str) -> Cow<'_, str> {
    if expected.starts_with("struct ") || expected == "a map" {
        Cow::Borrowed("a mapping")
    } else {
        escape(expected)
    }
}

/// serde-saphyr appends ` at line L, column C`; the position is reported separately.
fn strip_location(text: &str) -> &str {
    text.rfind(" at line ").map_or(text, |at| &text[..at])
}

pub(crate) fn options() -> serde_saphyr::SerializerOptions {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    options
}

/// Writes documents separated by `---`, in a stable layout so that reseals diff cleanly.
pub fn to_string_multiple<T: Serialize>(docs: &[T]) -> Result<String> {
    serde_saphyr::to_string_multiple_with_options(docs, options())
        .map_err(|e| Error::Serialize(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn yaml_1_1_lookalikes_survive_a_round_trip_quoted() {
        let tricky = [
            "yes",
            "on",
            "NO",
            "Off",
            "y",
            "n",
            "012",
            "0x1F",
            "1e3",
            "12:30",
            "~",
            "null",
            "true",
            "",
            " leading space",
            "trailing space ",
            "multi\nline\n",
            "#comment",
            "- dash",
            "a: b",
            "'quoted'",
            "\"dq\"",
            "tab\there",
            "ünïcödé",
            "---",
            "...",
            "*alias",
            "&anchor",
            "!tag",
            "%percent",
            "@at",
        ];
        let map: BTreeMap<String, String> = tricky
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("k{i}"), v.to_string()))
            .collect();
        let text = to_string_multiple(&[&map]).unwrap();
        let back: Vec<BTreeMap<String, String>> = from_multiple(&text).unwrap();
        assert_eq!(back[0], map, "{text}");
        for plain in [
            "yes", "on", "NO", "Off", "y", "n", "012", "12:30", "null", "true", "~",
        ] {
            let line = format!(": {plain}\n");
            assert!(!text.contains(&line), "{plain:?} written unquoted:\n{text}");
        }
    }
}
