//! Text from a manifest, a file name or a cluster, made safe to print.
//!
//! A name holding ESC or a newline could otherwise move the cursor, recolour the terminal
//! or forge a line such as `seal: ok` in a terminal, a log or an Event. Both the CLI (every
//! message it prints) and the operator (log fields, Events, conditions) pass such text
//! through [`escape`]. Backslashes are left alone, so escaping twice changes nothing.

use std::borrow::Cow;
use std::fmt;

/// Whether `c` could change how the surrounding text is laid out or read: C0/C1 control
/// characters (ESC, CR, LF, ...), Unicode line and paragraph separators, and the invisible
/// formatting characters that reorder or hide text (bidi overrides, zero-width characters).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// `text` with every character that [`needs_escape`] written as a visible escape: `\n`,
/// `\r`, `\t`, or `\u{1b}`.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Formats a string through [`escape`]: `format!("{}", Escaped(name))`.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(self.0))
    }
}

/// The prefixes of age's private-key encodings: X25519 identities and plugin identities.
const IDENTITY_PREFIXES: [&str; 2] = ["AGE-SECRET-KEY-", "AGE-PLUGIN-"];

/// Whether `text` holds something that looks like an age private key, in any case.
pub fn contains_identity(text: &str) -> bool {
    let upper = text.to_ascii_uppercase();
    IDENTITY_PREFIXES.iter().any(|p| upper.contains(p))
}

/// `text` with anything that looks like an age private key replaced by a placeholder. A last
/// line of defence for messages that quote input (for example a command-line parser's);
/// errors about keys are written never to quote them in the first place. A mention of the
/// format itself (`AGE-SECRET-KEY-1...`) is left alone.
pub fn withhold_identities(text: &str) -> Cow<'_, str> {
    if !contains_identity(text) {
        return Cow::Borrowed(text);
    }
    // The Bech32 encoding and a plugin name use letters, digits and '-' only; a key ends at
    // the first other character. Anything under this many is no key.
    const SHORTEST_KEY_TAIL: usize = 8;
    let upper = text.to_ascii_uppercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut searched = 0;
    while let Some((start, prefix)) = IDENTITY_PREFIXES
        .iter()
        .filter_map(|p| upper[searched..].find(p).map(|at| (searched + at, p.len())))
        .min()
    {
        let tail = text[start + prefix..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(text.len() - start - prefix);
        let end = start + prefix + tail;
        if tail >= SHORTEST_KEY_TAIL {
            out.push_str(&text[copied..start]);
            out.push_str("(private key withheld)");
            copied = end;
        }
        searched = end;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_invisible_characters_become_visible() {
        assert_eq!(escape("db"), "db");
        assert!(matches!(escape("plain/text: ok"), Cow::Borrowed(_)));
        assert_eq!(escape("a\nseal: ok"), "a\\nseal: ok");
        assert_eq!(escape("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(escape("x\r\t\u{7f}\u{85}"), "x\\r\\t\\u{7f}\\u{85}");
        assert_eq!(escape("ab\u{202e}cd"), "ab\\u{202e}cd");
        assert_eq!(escape("zero\u{200b}width"), "zero\\u{200b}width");
        assert_eq!(escape("line\u{2028}sep"), "line\\u{2028}sep");
        assert_eq!(escape("ünïcödé"), "ünïcödé");
    }

    #[test]
    fn escaping_twice_changes_nothing() {
        let once = escape("a\n\u{1b}b\\c").into_owned();
        assert_eq!(escape(&once), once);
    }

    #[test]
    fn identities_are_withheld_in_any_case() {
        let key = "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQY";
        let text = format!(
            "unexpected argument '{key}' found; and '{}'",
            key.to_lowercase()
        );
        let out = withhold_identities(&text);
        assert!(!out.to_uppercase().contains("QYQSZ"), "{out}");
        assert_eq!(
            out,
            "unexpected argument '(private key withheld)' found; and '(private key withheld)'"
        );
        assert_eq!(
            withhold_identities("x AGE-PLUGIN-YUBIKEY-1ABC y"),
            "x (private key withheld) y"
        );
        assert!(matches!(withhold_identities("age1abc"), Cow::Borrowed(_)));
        assert_eq!(
            withhold_identities("an identity (AGE-SECRET-KEY-1...)"),
            "an identity (AGE-SECRET-KEY-1...)"
        );
    }
}
