//! YAML in and out. Output quotes every string a YAML 1.1 reader (as Kubernetes tooling
//! uses) would turn into a boolean or number, and writes long base64 on one line.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Parses every document of a YAML (or JSON) stream. Duplicate keys are errors.
pub fn from_multiple<T: DeserializeOwned>(text: &str) -> Result<Vec<T>> {
    serde_saphyr::from_multiple(text).map_err(yaml_error)
}

fn yaml_error(error: serde_saphyr::Error) -> Error {
    let (line, column) = error
        .location()
        .map(|l| (l.line() as usize, l.column() as usize))
        .unwrap_or((0, 0));
    Error::Yaml {
        line,
        column,
        message: error.without_snippet().to_string(),
    }
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
