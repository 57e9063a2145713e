//! Finding the manifests a command works on: the files named, and the YAML and JSON files
//! under the directories named, as `seal verify` and `seal encrypt` both walk them.

use std::path::{Path, PathBuf};

use crate::config;
use crate::failure::{Failure, Result};
use crate::files::check_path_arg;

/// A manifest to work on, and whether the user named it (rather than a directory holding it):
/// a named file that is not what the command expects is an error, a found one is passed over.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Manifest {
    pub path: PathBuf,
    pub named: bool,
}

/// The manifests `paths` name: each path that is a file, as given, and every `.yaml`, `.yml`
/// and `.json` file under each directory that no ignore file excludes (`.gitignore`,
/// `.git/info/exclude`, `.ignore`; not the user's global gitignore, so every machine sees
/// the same files). Hidden files are included: a plaintext Secret in a hidden directory is
/// still a Secret. Symbolic links are not followed into directories, so a loop cannot make
/// the walk endless. Sorted, each file once. `given_as` names the argument in errors.
pub fn collect_manifests(paths: &[PathBuf], given_as: &str) -> Result<Vec<Manifest>> {
    let mut named = std::collections::BTreeSet::new();
    let mut found = std::collections::BTreeSet::new();
    for path in paths {
        check_path_arg(path, given_as)?;
        let meta = std::fs::metadata(path)
            .map_err(|e| Failure::io(format!("cannot read {}", path.display()), e))?;
        if meta.is_file() {
            named.insert(path.clone());
            continue;
        }
        let walker = ignore::WalkBuilder::new(path)
            .hidden(false)
            .git_global(false)
            .require_git(false)
            .filter_entry(|entry| entry.file_name() != ".git")
            .build();
        for entry in walker {
            let entry = entry.map_err(|e| {
                Failure::new(format!(
                    "cannot search {}: {}",
                    path.display(),
                    crate::failure::clean(&e.to_string())
                ))
                .hint("check the directory's permissions and any ignore file under it")
            })?;
            if entry.file_type().is_some_and(|t| t.is_file()) && is_manifest(entry.path()) {
                found.insert(entry.into_path());
            }
        }
    }
    let mut manifests: Vec<Manifest> = named
        .iter()
        .map(|path| Manifest {
            path: path.clone(),
            named: true,
        })
        .collect();
    manifests.extend(
        found
            .into_iter()
            .filter(|path| !named.contains(path))
            .map(|path| Manifest { path, named: false }),
    );
    manifests.sort();
    Ok(manifests)
}

/// A file a directory walk takes for a manifest: YAML or JSON, but not seal's own
/// `.seal.yaml`.
fn is_manifest(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name != config::FILE_NAME
        && [".yaml", ".yml", ".json"]
            .iter()
            .any(|ext| name.ends_with(ext))
}
