//! The known-answer vectors (shared/tests/vectors) through `seal decrypt`, as a user runs it:
//! each vector that opens prints its value, each refused one fails with its message.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::support::Workspace;

#[path = "../../../shared/tests/vector_file/mod.rs"]
mod vector_file;

#[test]
fn every_vector_gives_its_verdict_through_seal_decrypt() {
    let dir = vector_file::dir(env!("CARGO_MANIFEST_DIR"));
    let identity = vector_file::identity_path(&dir);
    let identity = identity.to_str().unwrap();
    let ws = Workspace::new();
    let mut wrong = Vec::new();
    for vector in vector_file::load_all(&dir) {
        let path = vector.path.to_str().unwrap();
        let run = ws.seal(&["decrypt", "-i", identity, path]);
        let problem = if vector.opens() {
            let value = STANDARD.encode(vector.value.as_deref().unwrap_or_default());
            match run.output.status.code() {
                Some(0) if run.stdout().contains(&value) => None,
                _ => Some(format!("did not open: {}", run.stderr())),
            }
        } else {
            let fragment = vector.message.as_deref().unwrap_or_default();
            let stderr = run.stderr();
            let rendered = stderr.starts_with("seal: error: ")
                && stderr.contains(path)
                && !stderr.contains("panicked");
            match run.output.status.code() {
                Some(1) if rendered && stderr.contains(fragment) => None,
                code => Some(format!(
                    "want exit 1 with {fragment:?}, got {code:?}: {stderr}"
                )),
            }
        };
        if let Some(problem) = problem {
            wrong.push(format!("{} ({}): {problem}", vector.name, vector.case));
        }
    }
    assert!(wrong.is_empty(), "verdicts changed:\n{}", wrong.join("\n"));
}
