//! What the user sees when a command fails: which file and object, what went wrong, and
//! what to do next. Built from the library's typed errors at the edge of each command.

use std::fmt;

pub struct Failure {
    /// Where: a file, then an object inside it, outermost first.
    context: Vec<String>,
    message: String,
    hint: Option<String>,
    broken_pipe: bool,
}

pub type Result<T, E = Failure> = std::result::Result<T, E>;

impl Failure {
    pub fn new(message: impl fmt::Display) -> Self {
        Failure {
            context: Vec::new(),
            message: message.to_string(),
            hint: None,
            broken_pipe: false,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_broken_pipe(&self) -> bool {
        self.broken_pipe
    }

    pub fn io(what: impl fmt::Display, error: std::io::Error) -> Self {
        let broken_pipe = error.kind() == std::io::ErrorKind::BrokenPipe;
        Failure {
            broken_pipe,
            ..Failure::new(format!("{what}: {error}"))
        }
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

impl From<seal_shared::Error> for Failure {
    fn from(error: seal_shared::Error) -> Self {
        use seal_shared::Error as E;
        use seal_shared::item::SealItemError as S;
        use seal_shared::item::UnsealError as U;
        let hint = match &error {
            E::Yaml { .. } => Some("fix the YAML at that position; JSON is accepted too"),
            E::InvalidRecipient { .. } | E::UnsupportedRecipient { .. } => {
                Some("recipients look like age1...; make one with `seal keygen` or `age-keygen`")
            }
            E::InvalidIdentity { .. } => {
                Some("pass the identity file written by `seal keygen` or `age-keygen` with -i")
            }
            E::Unseal { source, .. } if matches!(**source, U::NoMatchingKey { .. }) => Some(
                "pass the identity of one of those keys with -i; `seal keys` lists a cluster's key ids",
            ),
            E::Unseal { source, .. } if matches!(**source, U::BindingMismatch { .. }) => {
                Some("seal the value again for this place: seal encrypt --merge-into")
            }
            E::TooLarge { .. } => Some("Kubernetes refuses Secrets over 1 MiB; split the Secret"),
            E::Unseal { source, .. } if source.reason() == "HeaderTooLarge" => {
                Some("seal the value again from its source: seal encrypt --merge-into")
            }
            E::Seal { source, .. } if matches!(**source, S::TooManyRecipients { .. }) => {
                Some("seal to one key per cluster plus any recovery keys")
            }
            _ => None,
        };
        let failure = Failure::new(error);
        match hint {
            Some(hint) => failure.hint(hint),
            None => failure,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seal: error: ")?;
        for place in &self.context {
            write!(f, "{place}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}
