//! Reading inputs and writing outputs: bounded reads, atomic writes, careful modes.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use seal_shared::limits::MAX_INPUT_BYTES;
use zeroize::Zeroizing;

use crate::failure::{Failure, Result};

/// An input named on the command line: a path, or `-` for standard input.
#[derive(Clone, Debug)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    pub fn from_arg(arg: Option<&Path>) -> Input {
        match arg {
            None => Input::Stdin,
            Some(path) if path == Path::new("-") => Input::Stdin,
            Some(path) => Input::File(path.to_path_buf()),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "<stdin>".to_owned(),
            Input::File(path) => path.display().to_string(),
        }
    }

    /// Reads the whole input as UTF-8 text, refusing anything larger than any sane manifest.
    /// The buffer is wiped when dropped: it may hold plaintext Secret values.
    pub fn read_text(&self) -> Result<Zeroizing<String>> {
        let mut bytes = Zeroizing::new(Vec::new());
        let limit = MAX_INPUT_BYTES as u64 + 1;
        let read = match self {
            Input::Stdin => io::stdin().lock().take(limit).read_to_end(&mut bytes),
            Input::File(path) => {
                fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut bytes))
            }
        };
        read.map_err(|e| Failure::io(format!("cannot read {}", self.name()), e))?;
        if bytes.len() > MAX_INPUT_BYTES {
            return Err(Failure::new(format!(
                "{}: input is larger than {MAX_INPUT_BYTES} bytes",
                self.name()
            ))
            .hint("Kubernetes limits a Secret to 1 MiB; split the file"));
        }
        match std::str::from_utf8(&bytes) {
            Ok(_) => {
                let text = String::from_utf8(std::mem::take(&mut *bytes)).unwrap_or_default();
                Ok(Zeroizing::new(text))
            }
            Err(e) => Err(Failure::new(format!(
                "{}: not UTF-8 text (invalid byte at offset {})",
                self.name(),
                e.valid_up_to()
            ))
            .hint("manifests must be UTF-8 YAML or JSON; put binary values base64-encoded under `data`")),
        }
    }
}

/// Who may read a written file.
#[derive(Clone, Copy)]
pub enum Mode {
    /// Sealed output: safe to share.
    Public,
    /// Plaintext or private keys: owner only.
    Private,
}

impl Mode {
    fn bits(self) -> u32 {
        match self {
            Mode::Public => 0o644,
            Mode::Private => 0o600,
        }
    }
}

/// Replaces `path` with `contents` atomically: readers see the old file or the new one,
/// never half of either, and a failure leaves no output behind.
pub fn write_atomic(path: &Path, contents: &[u8], mode: Mode) -> Result<()> {
    let fail = |e: io::Error| Failure::io(format!("cannot write {}", path.display()), e);
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".seal-")
        .permissions(Permissions::from_mode(mode.bits()))
        .tempfile_in(dir)
        .map_err(fail)?;
    temp.write_all(contents).map_err(fail)?;
    temp.as_file().sync_all().map_err(fail)?;
    temp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Creates `path` with owner-only permissions, refusing to replace anything there.
pub fn create_private(path: &Path, contents: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(Mode::Private.bits())
        .open(path)
        .map_err(|e| {
            let failure = Failure::io(format!("cannot create {}", path.display()), e);
            if path.exists() {
                failure.hint("it already exists; seal never overwrites a key file")
            } else {
                failure
            }
        })?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = fs::remove_file(path);
        return Err(Failure::io(format!("cannot write {}", path.display()), e));
    }
    Ok(())
}

/// Writes to standard output, treating a closed pipe as a normal end.
pub fn write_stdout(contents: &[u8]) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(contents)
        .and_then(|()| out.flush())
        .map_err(|e| Failure::io("cannot write to stdout", e))
}
