//! How far a sealed item may travel: which parts of its placement it is bound to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The scope of a sealed item, as in Bitnami sealed-secrets, so users meet familiar names.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Bound to namespace, Secret name and item key.
    #[default]
    Strict,
    /// Bound to namespace and item key; the Secret may be renamed.
    NamespaceWide,
    /// Bound to the item key only; the Secret may move to any namespace and name.
    ClusterWide,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Strict => "strict",
            Scope::NamespaceWide => "namespace-wide",
            Scope::ClusterWide => "cluster-wide",
        }
    }

    pub fn binds_namespace(self) -> bool {
        matches!(self, Scope::Strict | Scope::NamespaceWide)
    }

    pub fn binds_name(self) -> bool {
        matches!(self, Scope::Strict)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The only failure when reading a scope: the text names none of the three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}: expected strict, namespace-wide or cluster-wide")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_owned()))
    }
}
