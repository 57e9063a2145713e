//! Setting entries of one mapping inside a YAML file, in place: every byte outside the
//! changed values stays as it was, so comments, other documents, key order and layout
//! survive. Used to merge new items into a SealedSecret file that lives in Git.
//!
//! Only what the edit needs is understood: scalars that are plain, single- or double-quoted
//! can be replaced; anything else in the way is refused rather than rewritten. Callers read
//! the result back to check it says exactly what they meant.

use std::collections::BTreeMap;

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span, StructureStyle};

/// Why a file could not be edited in place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    #[error("invalid YAML at line {line}: {message}")]
    Parse { line: usize, message: String },
    #[error("document {0} is not in the file")]
    NoDocument(usize),
    #[error("{path} is not a mapping seal can edit")]
    NotAMapping { path: String },
    #[error("{path} is written as {form}")]
    Unsupported { path: String, form: &'static str },
    #[error("the file is nested too deeply to edit")]
    TooDeep,
}

/// Deeper than any Kubernetes object; keeps the recursive reader within the stack.
const MAX_DEPTH: usize = 64;

/// Sets `entries` in the mapping found by following `path` (mapping keys) from the root of
/// the `document`-th non-empty document. Existing keys keep their place and only their value
/// changes; new keys go after the greatest existing key below them, so a sorted mapping stays
/// sorted. Values are written on one line, in the style of the value they replace.
pub fn set_entries(
    text: &str,
    document: usize,
    path: &[&str],
    entries: &BTreeMap<String, String>,
) -> Result<String, EditError> {
    let documents = read(text)?;
    let root = documents
        .get(document)
        .ok_or(EditError::NoDocument(document + 1))?;
    let mut parent: Option<&Node> = None;
    let mut node = root;
    let mut walked = String::new();
    for key in path {
        walked = if walked.is_empty() {
            (*key).to_owned()
        } else {
            format!("{walked}.{key}")
        };
        let next = node.get(key).ok_or_else(|| EditError::NotAMapping {
            path: walked.clone(),
        })?;
        parent = Some(node);
        node = next;
    }
    let Kind::Map {
        flow,
        entries: existing,
    } = &node.kind
    else {
        return Err(EditError::NotAMapping { path: walked });
    };
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut added: Vec<(&str, &str)> = Vec::new();
    for (key, value) in entries {
        match existing.iter().find(|(k, _)| k.is_scalar(key)) {
            Some((_, old)) => {
                let place = format!("{walked}.{}", key.escape_debug());
                let style = old.replaceable_style(&place)?;
                edits.push((old.start, old.end, scalar(value, style)));
            }
            None => added.push((key, value)),
        }
    }
    if !added.is_empty() {
        insert(
            text, node, *flow, existing, parent, &added, newline, &walked, &mut edits,
        )?;
    }
    edits.sort_by_key(|(start, _, _)| *start);
    let mut out =
        String::with_capacity(text.len() + edits.iter().map(|e| e.2.len()).sum::<usize>());
    let mut at = 0;
    for (start, end, replacement) in edits {
        if start < at {
            return Err(EditError::NotAMapping { path: walked });
        }
        out.push_str(&text[at..start]);
        out.push_str(&replacement);
        at = end;
    }
    out.push_str(&text[at..]);
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn insert(
    text: &str,
    map: &Node,
    flow: bool,
    existing: &[(Node, Node)],
    parent: Option<&Node>,
    added: &[(&str, &str)],
    newline: &str,
    walked: &str,
    edits: &mut Vec<(usize, usize, String)>,
) -> Result<(), EditError> {
    let check = |node: &Node, key: &str| -> Result<(), EditError> {
        node.line_style(&format!("{walked}.{}", key.escape_debug()))
            .map(|_| ())
    };
    // The style of the neighbours, so a JSON file stays JSON and a quoted file stays quoted.
    let (key_style, value_style) = match existing.first() {
        Some((k, v)) => (k.scalar_style(), v.scalar_style()),
        None => match parent.and_then(|p| p.first_key_style()) {
            Some(style) => (Some(style), Some(style)),
            None => (None, None),
        },
    };
    let entry = |key: &str, value: &str| {
        format!(
            "{}: {}",
            scalar_key(key, key_style),
            scalar(value, value_style.unwrap_or(ScalarStyle::Plain))
        )
    };
    if existing.is_empty() {
        if flow {
            let body: Vec<String> = added.iter().map(|(k, v)| entry(k, v)).collect();
            let block_parent =
                parent.is_some_and(|p| matches!(p.kind, Kind::Map { flow: false, .. }));
            if block_parent && key_style != Some(ScalarStyle::DoubleQuoted) {
                // `encryptedData: {}` in a block file becomes a block mapping, as seal writes
                // it; the `{}` (and the space before it) is all that is replaced.
                let indent = " ".repeat(parent_key_column(text, map.start) + 2);
                let start = text[..map.start].trim_end_matches(' ').len();
                let lines: String = body
                    .iter()
                    .map(|line| format!("{newline}{indent}{line}"))
                    .collect();
                edits.push((start, map.end, lines));
            } else {
                edits.push((map.start, map.end, format!("{{{}}}", body.join(", "))));
            }
            return Ok(());
        }
        // An empty block mapping has no text of its own to anchor to.
        return Err(EditError::NotAMapping {
            path: walked.to_owned(),
        });
    }
    for (key, value) in added {
        let before = existing
            .iter()
            .filter(|(k, _)| k.scalar_value().is_some_and(|s| s < *key))
            .max_by(|a, b| a.0.scalar_value().cmp(&b.0.scalar_value()));
        let line = entry(key, value);
        if flow {
            match before {
                Some((_, v)) => edits.push((v.end, v.end, format!(", {line}"))),
                None => {
                    let first = &existing[0].0;
                    edits.push((first.start, first.start, format!("{line}, ")));
                }
            }
            continue;
        }
        let indent = " ".repeat(existing[0].0.col);
        match before {
            Some((k, v)) => {
                check(v, k.scalar_value().unwrap_or_default())?;
                let end = line_end(text, v);
                if end == text.len() && !text.ends_with('\n') {
                    edits.push((end, end, format!("{newline}{indent}{line}")));
                } else {
                    edits.push((end, end, format!("{indent}{line}{newline}")));
                }
            }
            None => {
                let first = &existing[0].0;
                let start = line_start(text, first.start);
                if text[start..first.start].bytes().any(|b| b != b' ') {
                    return Err(EditError::NotAMapping {
                        path: walked.to_owned(),
                    });
                }
                edits.push((start, start, format!("{indent}{line}{newline}")));
            }
        }
    }
    Ok(())
}

fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// The offset just past the line on which a one-line value ends.
fn line_end(text: &str, value: &Node) -> usize {
    text[value.end..]
        .find('\n')
        .map_or(text.len(), |i| value.end + i + 1)
}

/// The column of the key whose value starts at `at` (for `key: {}`), in bytes from the
/// line start; keys are preceded by spaces only in a block mapping.
fn parent_key_column(text: &str, at: usize) -> usize {
    let start = line_start(text, at);
    text[start..at].bytes().take_while(|b| *b == b' ').count()
}

fn scalar(value: &str, style: ScalarStyle) -> String {
    match style {
        ScalarStyle::DoubleQuoted => serde_json::to_string(value).unwrap_or_default(),
        ScalarStyle::SingleQuoted => format!("'{}'", value.replace('\'', "''")),
        _ => plain_or_quoted(value),
    }
}

fn scalar_key(key: &str, style: Option<ScalarStyle>) -> String {
    match style {
        Some(ScalarStyle::DoubleQuoted) => serde_json::to_string(key).unwrap_or_default(),
        _ => plain_or_quoted(key),
    }
}

/// The text as a plain scalar when that reads back as the same string, else quoted the way
/// seal's own writer quotes it (which also guards YAML 1.1 readers: `yes`, `012`).
fn plain_or_quoted(value: &str) -> String {
    match serde_saphyr::to_string_with_options(&value, crate::yaml::options()) {
        Ok(written) => {
            let written = written.trim_end_matches('\n');
            if written.contains('\n') {
                serde_json::to_string(value).unwrap_or_default()
            } else {
                written.to_owned()
            }
        }
        Err(_) => serde_json::to_string(value).unwrap_or_default(),
    }
}

struct Node {
    kind: Kind,
    /// Byte offsets of the node's text: quotes and braces included, anchors and tags not.
    start: usize,
    end: usize,
    col: usize,
    anchored: bool,
}

enum Kind {
    Scalar {
        value: String,
        style: ScalarStyle,
    },
    Alias,
    Map {
        flow: bool,
        entries: Vec<(Node, Node)>,
    },
    Seq,
}

impl Node {
    fn scalar_value(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    fn is_scalar(&self, text: &str) -> bool {
        self.scalar_value() == Some(text)
    }

    fn scalar_style(&self) -> Option<ScalarStyle> {
        match &self.kind {
            Kind::Scalar { style, .. } => Some(*style),
            _ => None,
        }
    }

    fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map { entries, .. } => entries
                .iter()
                .find(|(k, _)| k.is_scalar(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    fn first_key_style(&self) -> Option<ScalarStyle> {
        match &self.kind {
            Kind::Map { entries, .. } => entries.first().and_then(|(k, _)| k.scalar_style()),
            _ => None,
        }
    }

    /// The style a replacement of this value is written in; refuses what cannot be replaced
    /// by one line without touching its surroundings.
    fn replaceable_style(&self, path: &str) -> Result<ScalarStyle, EditError> {
        let style = self.line_style(path)?;
        if self.anchored {
            // An alias elsewhere may refer to this value; replacing it would change that too.
            return Err(EditError::Unsupported {
                path: path.to_owned(),
                form: "an anchored value (&name)",
            });
        }
        Ok(style)
    }

    /// The node's style if it ends where its line can be continued, as plain, quoted and alias
    /// values do.
    fn line_style(&self, path: &str) -> Result<ScalarStyle, EditError> {
        let unsupported = |form| EditError::Unsupported {
            path: path.to_owned(),
            form,
        };
        match &self.kind {
            Kind::Scalar { style, .. } => match style {
                ScalarStyle::Plain | ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                    Ok(*style)
                }
                _ => Err(unsupported("a block scalar (| or >)")),
            },
            Kind::Alias => Ok(ScalarStyle::Plain),
            Kind::Map { .. } | Kind::Seq => Err(unsupported("a mapping or list")),
        }
    }
}

fn offsets(span: &Span) -> Result<(usize, usize), EditError> {
    match (span.start.byte_offset(), span.end.byte_offset()) {
        (Some(start), Some(end)) if start <= end => Ok((start, end)),
        _ => Err(EditError::Parse {
            line: span.start.line(),
            message: "no source position".into(),
        }),
    }
}

/// Every non-empty document of the stream as a tree, as serde-saphyr counts documents.
fn read(text: &str) -> Result<Vec<Node>, EditError> {
    let mut events = Events {
        parser: Parser::new_from_str(text),
    };
    let mut documents = Vec::new();
    loop {
        let (event, _) = events.next()?;
        match event {
            Event::StreamEnd => return Ok(documents),
            Event::DocumentStart(..) => {
                let (event, span) = events.next()?;
                let root = node(&mut events, event, span, 0)?;
                let empty = matches!(&root.kind, Kind::Scalar { value, style: ScalarStyle::Plain }
                    if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"));
                if !empty {
                    documents.push(root);
                }
            }
            _ => {}
        }
    }
}

struct Events<'a> {
    parser: Parser<'a, serde_saphyr::granit_parser::StrInput<'a>>,
}

impl<'a> Events<'a> {
    /// The next event that is part of the data: comments and anchor names are skipped.
    fn next(&mut self) -> Result<(Event<'a>, Span), EditError> {
        loop {
            match self.parser.next_event() {
                None => {
                    return Err(EditError::Parse {
                        line: 0,
                        message: "unexpected end of input".into(),
                    });
                }
                Some(Err(e)) => {
                    return Err(EditError::Parse {
                        line: e.marker().line(),
                        message: e.info().to_owned(),
                    });
                }
                Some(Ok((event, span))) => match event {
                    Event::Scalar(..)
                    | Event::Alias(..)
                    | Event::MappingStart(..)
                    | Event::MappingEnd
                    | Event::SequenceStart(..)
                    | Event::SequenceEnd
                    | Event::DocumentStart(..)
                    | Event::DocumentEnd
                    | Event::StreamStart
                    | Event::StreamEnd => return Ok((event, span)),
                    _ => {}
                },
            }
        }
    }
}

fn node<'a>(
    events: &mut Events<'a>,
    event: Event<'a>,
    span: Span,
    depth: usize,
) -> Result<Node, EditError> {
    if depth > MAX_DEPTH {
        return Err(EditError::TooDeep);
    }
    let (start, end) = offsets(&span)?;
    let col = span.start.col();
    let unexpected = |line| EditError::Parse {
        line,
        message: "unexpected event".into(),
    };
    match event {
        Event::Scalar(value, style, anchor, _) => Ok(Node {
            kind: Kind::Scalar {
                value: value.into_owned(),
                style,
            },
            start,
            end,
            col,
            anchored: anchor != 0,
        }),
        Event::Alias(_) => Ok(Node {
            kind: Kind::Alias,
            start,
            end,
            col,
            anchored: false,
        }),
        Event::MappingStart(style, anchor, _) => {
            let mut entries = Vec::new();
            loop {
                let (event, span) = events.next()?;
                if matches!(event, Event::MappingEnd) {
                    let (_, close) = offsets(&span)?;
                    return Ok(Node {
                        kind: Kind::Map {
                            flow: style == StructureStyle::Flow,
                            entries,
                        },
                        start,
                        end: close,
                        col,
                        anchored: anchor != 0,
                    });
                }
                let key = node(events, event, span, depth + 1)?;
                let (event, span) = events.next()?;
                let value = node(events, event, span, depth + 1)?;
                entries.push((key, value));
            }
        }
        Event::SequenceStart(_, anchor, _) => loop {
            let (event, span) = events.next()?;
            if matches!(event, Event::SequenceEnd) {
                let (_, close) = offsets(&span)?;
                return Ok(Node {
                    kind: Kind::Seq,
                    start,
                    end: close,
                    col,
                    anchored: anchor != 0,
                });
            }
            node(events, event, span, depth + 1)?;
        },
        _ => Err(unexpected(span.start.line())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str, doc: usize, entries: &[(&str, &str)]) -> Result<String, EditError> {
        let entries = entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        set_entries(text, doc, &["spec", "encryptedData"], &entries)
    }

    const FILE: &str = "# keep me\napiVersion: seal.dev/v1\nkind: SealedSecret\nmetadata:\n  name: db   # the db\n  namespace: prod\nspec:\n  encryptedData:\n    # first\n    b: BBBB\n    d: 'DDDD'   # quoted\n    # before f\n    f: \"FFFF\"\n  template: {type: Opaque}\n---\n# second\nkind: SealedSecret\nspec: {encryptedData: {}}\n";

    #[test]
    fn replaces_values_in_their_own_style_and_keeps_every_other_byte() {
        let out = set(FILE, 0, &[("b", "NEWB"), ("d", "NEWD"), ("f", "NEWF")]).unwrap();
        let expected = FILE
            .replace("b: BBBB", "b: NEWB")
            .replace("d: 'DDDD'", "d: 'NEWD'")
            .replace("f: \"FFFF\"", "f: \"NEWF\"");
        assert_eq!(out, expected);
    }

    #[test]
    fn inserts_new_keys_in_order_next_to_their_neighbours() {
        let out = set(FILE, 0, &[("a", "AAAA"), ("c", "CCCC"), ("g", "GGGG")]).unwrap();
        let expected = FILE
            .replace("    b: BBBB\n", "    a: AAAA\n    b: BBBB\n    c: CCCC\n")
            .replace("f: \"FFFF\"\n", "f: \"FFFF\"\n    g: GGGG\n");
        assert_eq!(out, expected);
    }

    #[test]
    fn fills_an_empty_flow_mapping_in_the_second_document() {
        let out = set(FILE, 1, &[("k", "KKKK")]).unwrap();
        assert_eq!(
            out,
            FILE.replace("{encryptedData: {}}", "{encryptedData: {k: KKKK}}")
        );
        let block = "kind: SealedSecret\nspec:\n  encryptedData: {}   # none yet\n";
        let out = set(block, 0, &[("a", "A"), ("b", "B")]).unwrap();
        assert_eq!(
            out,
            "kind: SealedSecret\nspec:\n  encryptedData:\n    a: A\n    b: B   # none yet\n"
        );
    }

    #[test]
    fn json_stays_json() {
        let json = "{\"kind\": \"SealedSecret\", \"spec\": {\"encryptedData\": {\"b\": \"B\"}}}\n";
        let out = set(json, 0, &[("a", "A"), ("b", "B2"), ("c", "C")]).unwrap();
        assert_eq!(
            out,
            "{\"kind\": \"SealedSecret\", \"spec\": {\"encryptedData\": {\"a\": \"A\", \"b\": \"B2\", \"c\": \"C\"}}}\n"
        );
        let empty = "{\"spec\": {\"encryptedData\": {}}}";
        assert_eq!(
            set(empty, 0, &[("a", "A")]).unwrap(),
            "{\"spec\": {\"encryptedData\": {\"a\": \"A\"}}}"
        );
    }

    #[test]
    fn long_values_stay_on_one_plain_line() {
        let long = "YWdl".repeat(200);
        let out = set("spec:\n  encryptedData:\n    a: A\n", 0, &[("b", &long)]).unwrap();
        assert_eq!(
            out,
            format!("spec:\n  encryptedData:\n    a: A\n    b: {long}\n")
        );
    }

    #[test]
    fn keys_yaml_would_retype_are_quoted_and_crlf_is_kept() {
        let text = "spec:\r\n  encryptedData:\r\n    a: A\r\n";
        let out = set(text, 0, &[("yes", "V")]).unwrap();
        assert_eq!(
            out,
            "spec:\r\n  encryptedData:\r\n    a: A\r\n    \"yes\": V\r\n"
        );
        let no_newline = "spec:\n  encryptedData:\n    a: A";
        assert_eq!(
            set(no_newline, 0, &[("b", "B")]).unwrap(),
            "spec:\n  encryptedData:\n    a: A\n    b: B"
        );
    }

    #[test]
    fn refuses_what_it_cannot_edit_in_place() {
        let block = "spec:\n  encryptedData:\n    a: |\n      AAAA\n";
        assert!(matches!(
            set(block, 0, &[("a", "X")]),
            Err(EditError::Unsupported { .. })
        ));
        let anchored = "spec:\n  encryptedData:\n    a: &x AAAA\n    b: *x\n";
        assert!(matches!(
            set(anchored, 0, &[("a", "X")]),
            Err(EditError::Unsupported { .. })
        ));
        assert!(matches!(
            set("spec: {}\n", 0, &[("a", "X")]),
            Err(EditError::NotAMapping { .. })
        ));
        assert!(matches!(
            set(FILE, 2, &[("a", "X")]),
            Err(EditError::NoDocument(3))
        ));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(set(&deep, 0, &[("a", "X")]).is_err());
    }
}
