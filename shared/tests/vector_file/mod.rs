//! Reads seal's known-answer vectors (shared/tests/vectors/*.yaml): each a SealedSecret of one
//! item whose leading comments say what opening it must give. Used by the library's, the
//! CLI's and the operator's tests (the latter two include this file by path), so all three
//! judge the same files the same way.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// One vector: its file, the SealedSecret text and the expected verdict.
pub struct Vector {
    pub name: String,
    pub path: PathBuf,
    pub text: String,
    /// What the case is, in words.
    pub case: String,
    /// `ok`, or the class of refusal (an `UnsealError` variant or a document error).
    pub verdict: String,
    /// The stable reason the operator reports (`Unsealed` when it opens).
    pub reason: String,
    /// A part of the message every surface must show, for refusals.
    pub message: Option<String>,
    /// The plaintext, for vectors that open.
    pub value: Option<String>,
    /// The id of the key that opens it, for vectors that open.
    pub key_id: Option<String>,
}

impl Vector {
    pub fn opens(&self) -> bool {
        self.verdict == "ok"
    }
}

/// The directory of vectors, from the manifest directory of the crate running the test.
pub fn dir(manifest_dir: &str) -> PathBuf {
    let own = Path::new(manifest_dir).join("tests/vectors");
    if own.is_dir() {
        own
    } else {
        Path::new(manifest_dir).join("../shared/tests/vectors")
    }
}

/// The identity that every vector is judged with.
pub fn identity_path(dir: &Path) -> PathBuf {
    dir.join("identity.txt")
}

/// Every vector in `dir`, sorted by name. Panics on a file that lacks its expectations, so
/// a vector can never silently stop being checked.
pub fn load_all(dir: &Path) -> Vec<Vector> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 20,
        "{}: only {} vectors",
        dir.display(),
        paths.len()
    );
    paths.into_iter().map(|p| load(&p)).collect()
}

fn load(path: &Path) -> Vector {
    let text = std::fs::read_to_string(path).unwrap();
    let field = |name: &str| {
        let prefix = format!("# {name}: ");
        text.lines()
            .take_while(|l| l.starts_with('#'))
            .find_map(|l| l.strip_prefix(&prefix))
            .map(str::to_owned)
    };
    let required = |name: &str| {
        field(name).unwrap_or_else(|| panic!("{}: no `# {name}:` line", path.display()))
    };
    let vector = Vector {
        name: path.file_stem().unwrap().to_string_lossy().into_owned(),
        path: path.to_owned(),
        case: required("case"),
        verdict: required("verdict"),
        reason: required("reason"),
        message: field("message"),
        value: field("value"),
        key_id: field("key-id"),
        text: text.clone(),
    };
    if vector.opens() {
        assert!(
            vector.value.is_some() && vector.key_id.is_some(),
            "{}: an opening vector names its value and key id",
            path.display()
        );
    } else {
        assert!(
            vector.message.is_some(),
            "{}: a refused vector names part of its message",
            path.display()
        );
    }
    vector
}
