use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A value that must never show up anywhere but in decrypt's output.
pub const SENTINEL: &str = "sentinel-9f3c2a7e-never-print-me";

pub struct Workspace {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub output: Output,
}

impl Run {
    pub fn ok(self) -> Self {
        assert!(
            self.output.status.success(),
            "seal failed: {}",
            self.stderr()
        );
        self
    }

    /// A refusal: exit 1 and the two lines every refusal has.
    pub fn fails(self) -> Self {
        self.fails_with(1)
    }

    /// A usage error: exit 2, in the same two lines.
    pub fn usage_error(self) -> Self {
        self.fails_with(2)
    }

    fn fails_with(self, code: i32) -> Self {
        assert_eq!(
            self.output.status.code(),
            Some(code),
            "expected exit {code}; stderr: {}",
            self.stderr()
        );
        let stderr = self.stderr();
        assert!(!stderr.contains("panicked"), "panic: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert!(
            lines.len() == 2
                && lines[0].starts_with("seal: error: ")
                && lines[1].starts_with("  hint: ")
                && lines[1].len() > "  hint: ".len(),
            "not one error line and one hint line: {stderr:?}"
        );
        assert!(
            !stderr.chars().any(|c| c.is_control() && c != '\n'),
            "raw control character in {stderr:?}"
        );
        assert!(
            !stderr.contains(SENTINEL),
            "secret value in an error: {stderr}"
        );
        self
    }

    pub fn stderr_lacks(self, needle: &str) -> Self {
        assert!(
            !self.stderr().contains(needle),
            "stderr has {needle:?}: {}",
            self.stderr()
        );
        self
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn stderr_has(self, needle: &str) -> Self {
        assert!(
            self.stderr().contains(needle),
            "stderr lacks {needle:?}: {}",
            self.stderr()
        );
        self
    }
}

impl Workspace {
    pub fn new() -> Self {
        Workspace {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, contents).unwrap();
        path
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    pub fn seal(&self, args: &[&str]) -> Run {
        self.seal_with_stdin(args, None)
    }

    pub fn seal_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        self.seal_with(args, &[], stdin)
    }

    /// Runs seal with only PATH, a KUBECONFIG that names no file (so no test reaches a real
    /// cluster by accident) and `env` set.
    pub fn seal_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Run {
        let mut child = Command::new(env!("CARGO_BIN_EXE_seal"))
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KUBECONFIG", self.path("no-such-kubeconfig"))
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        if let Some(input) = stdin {
            // seal may refuse (a bad flag) and exit before it reads its input.
            match pipe.write_all(input) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other.unwrap(),
            }
        }
        drop(pipe);
        Run {
            output: child.wait_with_output().unwrap(),
        }
    }

    /// Makes an identity file and returns its recipient and the private key itself.
    pub fn keygen_with_key(&self, name: &str) -> (String, String) {
        let recipient = self.keygen(name);
        let key = self
            .read(name)
            .lines()
            .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
            .expect("no key in the identity file")
            .to_owned();
        (recipient, key)
    }

    /// Makes an identity file and returns its recipient.
    pub fn keygen(&self, name: &str) -> String {
        self.seal(&["keygen", "-o", name])
            .ok()
            .stdout()
            .trim()
            .to_owned()
    }

    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

pub fn secret(namespace: &str, name: &str, string_data: &[(&str, &str)]) -> String {
    let mut text = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\nstringData:\n"
    );
    for (k, v) in string_data {
        text.push_str(&format!("  {k}: {v}\n"));
    }
    text
}

/// The base64 ciphertext of one item in a sealed YAML file.
pub fn item(sealed: &str, key: &str) -> String {
    let prefix = format!("    {key}: ");
    sealed
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no item {key} in:\n{sealed}"))
        .to_owned()
}

pub fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`{name}` is not installed; the README's test command (./test.sh) installs it (Debian package `{name}`)")
    })
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}
