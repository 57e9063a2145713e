//! Kubernetes naming rules for the parts of a placement, one validator per kind of name,
//! used whatever the name's source (a manifest, a flag, an environment variable, a
//! SealedSecret). Enforcing them before sealing also keeps the binding's line-based encoding
//! unambiguous: none of them may hold a newline. Kubernetes would refuse anything else, and
//! an item sealed for a name no object can have could never be unsealed.

use std::fmt;

/// The three kinds of name a sealed item is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    /// A namespace: an RFC 1123 label.
    Namespace,
    /// A Secret's (or SealedSecret's) name: an RFC 1123 subdomain.
    SecretName,
    /// A key of a Secret's data: Kubernetes' ConfigMap key rule.
    ItemKey,
}

impl NameKind {
    fn noun(self) -> &'static str {
        match self {
            NameKind::Namespace => "namespace",
            NameKind::SecretName => "name",
            NameKind::ItemKey => "key",
        }
    }

    /// What a valid name of this kind looks like, for the message that refuses one.
    pub fn rule(self) -> &'static str {
        match self {
            NameKind::Namespace => {
                "a namespace is 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
            }
            NameKind::SecretName => {
                "a name is 1 to 253 lowercase letters, digits, '-' and '.', in dot-separated parts that each start and end with a letter or digit"
            }
            NameKind::ItemKey => {
                "a key is 1 to 253 letters, digits, '-', '_' and '.', and is not '.' or '..' nor starts with '..'"
            }
        }
    }

    fn max(self) -> usize {
        match self {
            NameKind::Namespace => 63,
            NameKind::SecretName | NameKind::ItemKey => 253,
        }
    }
}

/// What is wrong with a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameProblem {
    Empty,
    TooLong {
        len: usize,
    },
    /// The first character the rule does not allow.
    Character(char),
    /// A part (between dots, or the whole label) does not start and end with a letter or digit.
    Edge,
    /// An empty part between dots: `a..b`.
    EmptyPart,
    /// `.`, `..`, or a key starting with `..`.
    DotPath,
}

/// A name refused by its rule. Displays the name quoted and escaped, never raw.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct InvalidName {
    pub kind: NameKind,
    pub value: String,
    pub problem: NameProblem,
}

impl fmt::Display for InvalidName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind;
        write!(f, "{} {:?} is not valid: ", kind.noun(), self.value)?;
        match &self.problem {
            NameProblem::Empty => write!(f, "it is empty"),
            NameProblem::TooLong { len } => {
                write!(f, "it is {len} characters long, more than {}", kind.max())
            }
            NameProblem::Character(c) => write!(f, "it contains {c:?}"),
            NameProblem::Edge => write!(f, "it must start and end with a letter or digit"),
            NameProblem::EmptyPart => write!(f, "it has an empty part between two dots"),
            NameProblem::DotPath => write!(f, "it is or starts with a '.' path"),
        }?;
        write!(f, " ({})", kind.rule())
    }
}

/// Checks `value` against the rule for `kind`.
pub fn check(kind: NameKind, value: &str) -> Result<(), InvalidName> {
    let problem = match kind {
        NameKind::Namespace => dns_label(value, kind.max()),
        NameKind::SecretName => dns_subdomain(value),
        NameKind::ItemKey => item_key(value),
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(InvalidName {
            kind,
            value: value.to_owned(),
            problem,
        }),
    }
}

pub fn check_namespace(namespace: &str) -> Result<(), InvalidName> {
    check(NameKind::Namespace, namespace)
}

pub fn check_object_name(name: &str) -> Result<(), InvalidName> {
    check(NameKind::SecretName, name)
}

pub fn check_data_key(key: &str) -> Result<(), InvalidName> {
    check(NameKind::ItemKey, key)
}

fn length(value: &str, max: usize) -> Option<NameProblem> {
    if value.is_empty() {
        return Some(NameProblem::Empty);
    }
    let len = value.chars().count();
    (len > max).then_some(NameProblem::TooLong { len })
}

fn first_bad(value: &str, allowed: impl Fn(char) -> bool) -> Option<NameProblem> {
    value
        .chars()
        .find(|&c| !allowed(c))
        .map(NameProblem::Character)
}

fn lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// RFC 1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
fn dns_label(value: &str, max: usize) -> Option<NameProblem> {
    length(value, max)
        .or_else(|| first_bad(value, |c| lower_alnum(c) || c == '-'))
        .or_else(|| label_edges(value))
}

fn label_edges(label: &str) -> Option<NameProblem> {
    let ok = label.starts_with(lower_alnum) && label.ends_with(lower_alnum);
    (!ok).then_some(NameProblem::Edge)
}

/// RFC 1123 subdomain as Kubernetes checks it: labels joined by dots, 253 at most in all.
fn dns_subdomain(value: &str) -> Option<NameProblem> {
    length(value, NameKind::SecretName.max())
        .or_else(|| first_bad(value, |c| lower_alnum(c) || c == '-' || c == '.'))
        .or_else(|| {
            value.split('.').find_map(|label| {
                if label.is_empty() {
                    Some(NameProblem::EmptyPart)
                } else {
                    label_edges(label)
                }
            })
        })
}

/// A ConfigMap/Secret key: `[-._a-zA-Z0-9]+`, at most 253, and no `.`/`..` path.
fn item_key(value: &str) -> Option<NameProblem> {
    length(value, NameKind::ItemKey.max())
        .or_else(|| first_bad(value, |c| c.is_ascii_alphanumeric() || "-._".contains(c)))
        .or_else(|| (value == "." || value.starts_with("..")).then_some(NameProblem::DotPath))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_keys() {
        for ok in [
            "a",
            "tls.crt",
            "A_b-c.d",
            ".dockerconfigjson",
            "a..b",
            "-",
            "_",
        ] {
            assert!(check_data_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "..a",
            "a b",
            "a/b",
            "a\nb",
            "é",
            &"k".repeat(254),
        ] {
            assert!(check_data_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_data_key(&"k".repeat(253)).is_ok());
    }

    #[test]
    fn names_are_rfc_1123_subdomains() {
        for ok in ["db", "my-app.v1", "a.b.c", "0", "a-b", &"a".repeat(253)] {
            assert!(check_object_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a_b",
            "a\n",
            "a..b",
            "a.-b",
            "a-.b",
            ".a",
            "a.",
            "../../x",
            "Not A Name",
            &"a".repeat(254),
        ] {
            assert!(check_object_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn namespaces_are_rfc_1123_labels() {
        for ok in ["prod", "team-a", "0", &"a".repeat(63)] {
            assert!(check_namespace(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a_b",
            "a\n",
            "my-app.v1",
            "a..b",
            "../../x",
            "Not A Namespace",
            &"a".repeat(64),
        ] {
            assert!(check_namespace(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_refusal_names_the_problem_and_escapes_the_name() {
        let err = check_namespace("a\u{1b}[2Jb\nseal: ok").unwrap_err();
        let text = err.to_string();
        assert!(!text.contains('\u{1b}') && !text.contains('\n'), "{text}");
        assert!(
            text.contains(r"\u{1b}") && text.contains("namespace"),
            "{text}"
        );
        assert_eq!(
            check_object_name("a..b").unwrap_err().problem,
            NameProblem::EmptyPart
        );
        assert_eq!(
            check_object_name("a.-b").unwrap_err().problem,
            NameProblem::Edge
        );
        assert_eq!(check_namespace("").unwrap_err().problem, NameProblem::Empty);
    }
}
