//! What the user sees when a command fails: which file and object, what went wrong, and
//! what to do next. Built from the library's typed errors at the edge of each command.
//!
//! Every refusal prints exactly two lines, `seal: error: <where>: <what>` and
//! `  hint: <what to do>`. Text from input (names, paths, a cluster's replies) is escaped
//! on the way out, so a manifest cannot write control characters to the terminal or forge
//! a line of its own.

use std::fmt;
use std::io;

use seal_shared::error::{IdentityError, ManifestProblem, RecipientError};
use seal_shared::escape::{escape, withhold_identities};

#[derive(Clone)]
pub struct Failure {
    /// Where: a file, then an object inside it, outermost first.
    context: Vec<String>,
    message: String,
    hint: Option<String>,
    broken_pipe: bool,
    /// The process's exit status: 1 for a refusal, 2 for a usage error.
    code: u8,
}

pub type Result<T, E = Failure> = std::result::Result<T, E>;

impl Failure {
    pub fn new(message: impl fmt::Display) -> Self {
        Failure {
            context: Vec::new(),
            message: message.to_string(),
            hint: None,
            broken_pipe: false,
            code: 1,
        }
    }

    /// Marks this as a usage error (a bad argument or an unreadable input the command was
    /// told to use): exit status 2, as for a mistake on the command line.
    pub fn usage(mut self) -> Self {
        self.code = 2;
        self
    }

    pub fn exit_code(&self) -> u8 {
        self.code
    }

    /// The where and what of the failure as one line, without the `seal: error:` prefix or
    /// the hint: for commands that report problems as findings rather than refusing.
    pub fn message(&self) -> String {
        let mut line = String::new();
        for place in &self.context {
            line.push_str(place);
            line.push_str(": ");
        }
        line.push_str(&self.message);
        clean(&line)
    }

    /// Sets what to do next, replacing any hint already there.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds where it happened, outermost last-added, as [`Context::within`] does for a
    /// result.
    pub fn context(mut self, place: impl fmt::Display) -> Self {
        self.context.insert(0, place.to_string());
        self
    }

    pub fn is_broken_pipe(&self) -> bool {
        self.broken_pipe
    }

    /// A failed read or write of `what`. The message has the system's reason only: an
    /// `io::Error` from tempfile also names the temporary file, which means nothing to the
    /// user.
    pub fn io(what: impl fmt::Display, error: io::Error) -> Self {
        let broken_pipe = error.kind() == io::ErrorKind::BrokenPipe;
        let hint = match error.kind() {
            io::ErrorKind::NotFound => "check the path",
            io::ErrorKind::PermissionDenied => {
                "check the permissions of the file and of its directory"
            }
            io::ErrorKind::IsADirectory => "name a file, not a directory",
            io::ErrorKind::StorageFull => "free some disk space",
            io::ErrorKind::ReadOnlyFilesystem => "write to a writable file system",
            _ => "check the path and try again",
        };
        Failure {
            broken_pipe,
            ..Failure::new(format!("{what}: {}", io_reason(&error))).hint(hint)
        }
    }
}

/// The system's reason for an I/O error (`permission denied`), without any path a library
/// added to it. tempfile wraps the system's error in one of its own that names the path.
pub fn io_reason(error: &io::Error) -> String {
    let mut code = error.raw_os_error();
    let mut inner: Option<&(dyn std::error::Error + 'static)> = error.get_ref().map(|e| e as _);
    while code.is_none()
        && let Some(current) = inner
    {
        code = current
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error);
        inner = current.source();
    }
    let reason = match code {
        Some(code) => io::Error::from_raw_os_error(code).to_string(),
        None => match error.kind() {
            io::ErrorKind::NotFound => "no such file or directory".to_owned(),
            kind => io::Error::from(kind).to_string(),
        },
    };
    // "Permission denied (os error 13)" -> "permission denied"
    let reason = reason.split(" (os error").next().unwrap_or_default();
    let mut chars = reason.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "unknown error".to_owned(),
    }
}

/// Adds where a failure happened, outermost last-added.
pub trait Context<T> {
    fn within(self, place: impl fmt::Display) -> Result<T>;
}

impl<T, E: Into<Failure>> Context<T> for std::result::Result<T, E> {
    fn within(self, place: impl fmt::Display) -> Result<T> {
        self.map_err(|e| {
            let mut failure = e.into();
            failure.context.insert(0, place.to_string());
            failure
        })
    }
}

impl From<seal_shared::keys::KeyError> for Failure {
    fn from(error: seal_shared::keys::KeyError) -> Self {
        Failure::from(seal_shared::Error::from(error))
    }
}

impl From<seal_shared::Error> for Failure {
    fn from(error: seal_shared::Error) -> Self {
        let hint = hint_for(&error);
        Failure::new(&error).hint(hint)
    }
}

/// What to do about each library error. Every variant has its own advice; the wildcard
/// arms exist only because the library's enums are non-exhaustive.
fn hint_for(error: &seal_shared::Error) -> String {
    use seal_shared::Error as E;
    use seal_shared::item::{SealItemError as S, UnsealError as U};
    let keygen = "recipients look like age1...; make a key pair with `seal keygen` or `age-keygen`";
    match error {
        E::InFile { source, .. } => hint_for(source),
        E::Recipient(problem) => match problem {
            RecipientError::PrivateKey => "remove it and give its recipient instead \
                (`age-keygen -y KEYFILE` prints it); if the key was committed or shared, replace it"
                .to_owned(),
            RecipientError::TrailingComment => {
                "put the comment on a line of its own, starting with #".to_owned()
            }
            RecipientError::Ssh | RecipientError::Plugin => {
                format!("seal needs an X25519 recipient: {keygen}")
            }
            RecipientError::Checksum | RecipientError::Length { .. } => {
                "copy the recipient again, whole (`seal keys --recipient` prints a cluster's)"
                    .to_owned()
            }
            _ => keygen.to_owned(),
        },
        E::Identity(problem) => match problem {
            IdentityError::Recipient => "-i takes the private key (AGE-SECRET-KEY-1...), \
                the file written by `seal keygen -o` or `age-keygen -o`"
                .to_owned(),
            IdentityError::Encrypted => {
                "decrypt the identity file with `age -d` first, then pass the result with -i"
                    .to_owned()
            }
            _ => "pass the identity file written by `seal keygen -o` or `age-keygen -o` with -i"
                .to_owned(),
        },
        E::Yaml { .. } => "fix the YAML at that position; JSON is accepted too".to_owned(),
        E::Manifest(manifest) => manifest_hint(&manifest.problem),
        E::Document(_) => "fix the document".to_owned(),
        E::TooLarge { .. } => "Kubernetes refuses Secrets over 1 MiB; split the Secret".to_owned(),
        E::NoNamespace { .. } => "set metadata.namespace, or pass -n/--namespace".to_owned(),
        E::Unbound { .. } => {
            "give the SealedSecret in the file its metadata.name (and namespace)".to_owned()
        }
        E::Seal { source, .. } => match **source {
            S::NoRecipients => "pass -r age1... or -R recipients.txt".to_owned(),
            S::TooManyRecipients { .. } => {
                "seal to one key per cluster plus any recovery keys".to_owned()
            }
            _ => "this is a bug in seal; please report it".to_owned(),
        },
        E::Unseal { source, .. } => match **source {
            U::NoMatchingKey { .. } => "pass the identity of one of those keys with -i; \
                `seal keys` lists a cluster's key ids"
                .to_owned(),
            U::BindingMismatch { .. } => {
                "seal the value again for this place: seal encrypt --merge-into".to_owned()
            }
            U::NewerVersion(_) => "upgrade seal to a version that knows this binding".to_owned(),
            U::Binding(seal_shared::binding::BindingStanzaError::UnsupportedVersion(_)) => {
                "open it with the key it was sealed to, so seal can check it; or reseal the value from its source"
                    .to_owned()
            }
            U::TooLarge => "Kubernetes refuses Secrets over 1 MiB; reseal a smaller value".to_owned(),
            ref other if other.reason() == "HeaderTooLarge" => {
                "seal the value again from its source: seal encrypt --merge-into".to_owned()
            }
            _ => "reseal the value from its source with seal encrypt --merge-into".to_owned(),
        },
        E::CiphertextBase64 { .. } => {
            "the item was damaged (an edit or a merge?); reseal it with seal encrypt --merge-into"
                .to_owned()
        }
        E::ScopeMismatch { .. } => {
            "reseal the item with the SealedSecret's scope (seal encrypt --merge-into), or restore spec.scope"
                .to_owned()
        }
        E::Serialize(_) => "this is a bug in seal; please report it".to_owned(),
        _ => "this is a bug in seal; please report it".to_owned(),
    }
}

fn manifest_hint(problem: &ManifestProblem) -> String {
    use ManifestProblem as P;
    match problem {
        P::NoObjects => "give a Secret manifest: apiVersion: v1, kind: Secret, metadata, stringData or data".into(),
        P::AlreadySealed => "to add or change items use `seal encrypt --merge-into SEALED NEW.yaml`".into(),
        P::NoApiVersion | P::WrongApiVersion(_) => "a Secret starts with apiVersion: v1 and kind: Secret".into(),
        P::NoKind => "a Secret starts with apiVersion: v1 and kind: Secret".into(),
        P::List => "seal one Secret at a time (kubectl get secret NAME -o yaml), or several as ----separated documents".into(),
        P::NotASecret(_) => "seal encrypts Secrets only: split the file or remove that document".into(),
        P::UnknownField { .. } => "fix the field's name or indentation; seal refuses fields Kubernetes does not know, so a typo cannot seal an empty Secret".into(),
        P::GenerateName => "set metadata.name".into(),
        P::Name { .. } => "rename it; Kubernetes would refuse that name".into(),
        P::Base64 { .. } => "put plain text under stringData instead, or encode it with `base64 -w0`".into(),
        P::Null { field, .. } => {
            if field.starts_with("metadata") {
                "quote it ('~', 'null' or '') to keep that text".into()
            } else {
                "quote it ('~', 'null' or '') to seal that text, or remove the key".into()
            }
        }
        P::InDataAndStringData { .. } => "keep the key in one of data and stringData".into(),
        P::ValueInMetadata { .. } => "labels and annotations are not encrypted: remove the value from it".into(),
        P::NotSealedSecret { .. } | P::NoSealedSecrets => "give a file written by seal encrypt".into(),
        _ => "fix the document".into(),
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = String::new();
        for place in &self.context {
            line.push_str(place);
            line.push_str(": ");
        }
        line.push_str(&self.message);
        write!(f, "seal: error: {}", clean(&line))?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {}", clean(hint))?;
        }
        Ok(())
    }
}

/// Says on stderr what seal chose or did (which keys it sealed to), as one `seal: ` line
/// made as safe to print as a refusal: a path or a context name is input too.
pub fn say(text: impl fmt::Display) {
    eprintln!("seal: {}", clean(&text.to_string()));
}

/// One line of text that is safe to print: no control characters, no private key.
pub fn clean(text: &str) -> String {
    escape(&withhold_identities(text)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_two_lines_whatever_its_text() {
        let failure = Failure::new("name \u{1b}[31mx\nseal: ok")
            .hint("do\nthis")
            .within_test("file\r.yaml");
        let text = failure.to_string();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert!(text.starts_with("seal: error: file\\r.yaml: name \\u{1b}[31mx\\nseal: ok"));
    }

    #[test]
    fn io_reasons_drop_paths_and_codes() {
        let error = io::Error::new(
            io::ErrorKind::PermissionDenied,
            "permission denied at path \"/x/.seal-abc123\"",
        );
        assert_eq!(io_reason(&error), "permission denied");
        assert_eq!(
            io_reason(&io::Error::from_raw_os_error(2)),
            "no such file or directory"
        );
        let wrapped = io::Error::new(
            io::ErrorKind::NotFound,
            Box::new(io::Error::from_raw_os_error(13)) as Box<dyn std::error::Error + Send + Sync>,
        );
        assert_eq!(io_reason(&wrapped), "permission denied");
    }

    impl Failure {
        fn within_test(mut self, place: &str) -> Self {
            self.context.insert(0, place.to_owned());
            self
        }
    }
}
