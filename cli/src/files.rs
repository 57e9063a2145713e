//! Reading inputs and writing outputs: bounded reads, atomic writes, careful modes.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use seal_shared::escape::contains_identity;
use seal_shared::keys::{SealRecipient, parse_recipients_file};
use seal_shared::limits::MAX_INPUT_BYTES;
use zeroize::Zeroizing;

use crate::failure::{Context, Failure, Result};

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

    fn read_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
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
        Ok(bytes)
    }

    /// Reads the whole input as one Secret value, any bytes, wiped when dropped.
    pub fn read_value(&self) -> Result<Zeroizing<Vec<u8>>> {
        self.read_bytes()
    }

    /// Reads the whole input as UTF-8 text, refusing anything larger than any sane manifest.
    /// The buffer is wiped when dropped: it may hold plaintext Secret values.
    pub fn read_text(&self) -> Result<Zeroizing<String>> {
        into_text(self.read_bytes()?).map_err(|offset| {
            Failure::new(format!(
                "{}: not UTF-8 text (invalid byte at offset {offset})",
                self.name()
            ))
            .hint("manifests must be UTF-8 YAML or JSON; put binary values base64-encoded under `data`")
        })
    }
}

fn into_text(mut bytes: Zeroizing<Vec<u8>>) -> std::result::Result<Zeroizing<String>, usize> {
    match std::str::from_utf8(&bytes) {
        Ok(_) => Ok(Zeroizing::new(
            String::from_utf8(std::mem::take(&mut *bytes)).unwrap_or_default(),
        )),
        Err(e) => Err(e.valid_up_to()),
    }
}

/// Which kind of key file is being read, for what its errors say.
#[derive(Clone, Copy)]
pub enum KeyFile {
    /// `-i`: private keys.
    Identities,
    /// `-R` or a `.seal.yaml` `recipientsFile`: public keys.
    Recipients,
}

/// Refuses a path argument that is really a private key: `-i AGE-SECRET-KEY-1...` would
/// otherwise come back as "cannot read AGE-SECRET-KEY-1...: no such file".
pub fn check_path_arg(path: &Path, given_as: &str) -> Result<()> {
    if contains_identity(&path.to_string_lossy()) {
        return Err(Failure::new(format!(
            "{given_as}: this is a private key (an age identity), not a file name; it must not be shared"
        ))
        .hint("save the key in a file (mode 0600) and pass the file's path; clear it from your shell history"));
    }
    Ok(())
}

/// Reads an identity or recipients file, wiped after use (a recipients file given by
/// mistake may hold a private key). `given_as` says where the path came from.
pub fn read_key_file(path: &Path, kind: KeyFile, given_as: &str) -> Result<Zeroizing<String>> {
    check_path_arg(path, given_as)?;
    let input = Input::File(path.to_path_buf());
    let bytes = input.read_bytes().within(given_as).map_err(|failure| {
        // `-R age1...`: a recipient where a file is expected.
        if matches!(kind, KeyFile::Recipients)
            && path.to_string_lossy().starts_with("age1")
            && !path.exists()
        {
            failure.hint("-R takes a file listing recipients; pass a single recipient with -r")
        } else {
            failure
        }
    })?;
    into_text(bytes).map_err(|_| {
        let hint = match kind {
            KeyFile::Identities => {
                "pass a text identity file (AGE-SECRET-KEY-1...); decrypt a passphrase-protected one with `age -d` first"
            }
            KeyFile::Recipients => "a recipients file is text: one age1... recipient per line",
        };
        Failure::new(format!("{}: not a text file", input.name())).hint(hint)
    })
}

/// Where an output goes: a file, or standard output for `-` or no `-o`.
pub enum Output {
    Stdout,
    File(PathBuf),
}

impl Output {
    pub fn from_arg(arg: Option<&Path>) -> Output {
        match arg {
            None => Output::Stdout,
            Some(path) if path == Path::new("-") => Output::Stdout,
            Some(path) => Output::File(path.to_path_buf()),
        }
    }

    pub fn write(&self, contents: &[u8], mode: Mode) -> Result<()> {
        match self {
            Output::Stdout => write_stdout(contents),
            Output::File(path) => write_atomic(path, contents, mode),
        }
    }
}

/// Who may read a written file.
#[derive(Clone, Copy)]
pub enum Mode {
    /// Sealed output: safe to share. A file being replaced keeps its mode.
    Public,
    /// Plaintext or private keys: owner only, always.
    Private,
}

/// The file a path names once every symbolic link is followed, even when that file does not
/// exist yet (a link to a file still to be written). Writing to the link itself would
/// replace the link and leave the real file, perhaps holding plaintext, as it was.
pub fn resolve_links(path: &Path) -> Result<PathBuf> {
    let fail = |e| Failure::io(format!("cannot write {}", path.display()), e);
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&current).map_err(fail)?;
                current = match current.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(fail(e)),
        }
    }
    Err(Failure::new(format!(
        "cannot write {}: too many symbolic links",
        path.display()
    ))
    .hint("a chain of links loops; point the path at a file"))
}

/// Replaces the file `path` names (following symbolic links) with `contents` atomically:
/// readers see the old file or the new one, never half of either, and a failure leaves no
/// output behind. A file with several hard links is refused: the new file would take one
/// name only, and the others would keep the old content (for `-w`, the plaintext).
pub fn write_atomic(path: &Path, contents: &[u8], mode: Mode) -> Result<()> {
    let shown = path.display().to_string();
    let fail = |e: io::Error| Failure::io(format!("cannot write {shown}"), e);
    let real = resolve_links(path)?;
    let existing = match fs::metadata(&real) {
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(fail(e)),
    };
    if let Some(meta) = &existing {
        if !meta.is_file() {
            return Err(
                Failure::new(format!("cannot write {shown}: not a regular file"))
                    .hint("name a regular file, or - for stdout"),
            );
        }
        if meta.nlink() > 1 {
            return Err(Failure::new(format!(
                "{shown} has {} hard links; replacing it would leave its old content under the other names",
                meta.nlink()
            ))
            .hint(format!(
                "write to a new file instead (-o), then remove every name of the old one (`find . -samefile {shown}` lists those under this directory)"
            )));
        }
    }
    let bits = match (mode, &existing) {
        (Mode::Private, _) => 0o600,
        (Mode::Public, Some(meta)) => meta.permissions().mode() & 0o777,
        (Mode::Public, None) => 0o644,
    };
    let dir = match real.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".seal-")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(fail)?;
    temp.write_all(contents).map_err(fail)?;
    // Set after creation: the creation mode is cut by the umask, and a kept mode must be kept.
    temp.as_file()
        .set_permissions(Permissions::from_mode(bits))
        .map_err(fail)?;
    temp.as_file().sync_all().map_err(fail)?;
    temp.persist(&real).map_err(|e| fail(e.error))?;
    // The rename is durable once the directory is; a failure here changes nothing visible.
    if let Ok(dir) = fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Creates `path` with owner-only permissions, refusing to replace anything there.
pub fn create_private(path: &Path, contents: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
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

/// Reads a recipients file (`-R`, `SEAL_RECIPIENTS_FILE` or a `.seal.yaml` recipientsFile),
/// which must list at least one. `given_as` says where its path came from.
pub fn read_recipients_file(path: &Path, given_as: &str) -> Result<Vec<SealRecipient>> {
    let text = read_key_file(path, KeyFile::Recipients, given_as)?;
    let origin = path.display().to_string();
    let found = parse_recipients_file(&text, &origin)?;
    if found.is_empty() {
        return Err(Failure::new(format!("{origin}: lists no recipients")).hint(
            "put one age1... recipient per line in it (`seal keys --recipient` prints a cluster's)",
        ));
    }
    Ok(found)
}

/// Where the output for `path` goes beside it: SUFFIX before the extension (`dir/db.yaml`
/// with `.sealed` gives `dir/db.sealed.yaml`), with `extension` in place of the file's own
/// when given.
pub fn beside(path: &Path, suffix: &str, extension: Option<&str>) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let ext = extension.map(str::to_owned).or_else(|| {
        path.extension()
            .map(|ext| ext.to_string_lossy().into_owned())
    });
    let name = match ext {
        Some(ext) => format!("{stem}{suffix}.{ext}"),
        None => format!("{stem}{suffix}"),
    };
    path.with_file_name(name)
}

/// A suffix for outputs written beside their inputs (`--suffix`): something to add to a file
/// name, not a path, and not nothing (that would replace the input).
pub fn check_suffix(suffix: &str) -> Result<()> {
    if suffix.is_empty() || suffix.contains('/') || suffix.contains('\0') {
        return Err(
            Failure::new("--suffix must be non-empty and name no directory")
                .hint("pass a suffix such as .sealed (db.yaml becomes db.sealed.yaml)"),
        );
    }
    Ok(())
}
