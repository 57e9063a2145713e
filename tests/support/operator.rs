//! Running the real seal-operator and seal binaries from the workspace's target directory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

/// A binary of the workspace, from the target directory this test was built into. A binary
/// older than any source it was built from is refused: it would test code that is gone.
/// (`cargo test` builds a package's binaries only for that package's own integration tests,
/// never for this crate's.)
pub fn bin(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("no target directory")?;
    let path = dir.join(name);
    let build = build_command(dir);
    anyhow::ensure!(
        path.is_file(),
        "{} is not built; run `{build}` (./test.sh does)",
        path.display()
    );
    if let Some(source) = newer_source(&path)? {
        anyhow::bail!(
            "{} is older than {}, so it would test old code; run `{build}` first (./test.sh does)",
            path.display(),
            source.display()
        );
    }
    Ok(path)
}

/// The cargo command that builds the binaries into `dir` (target/debug, target/release, or
/// a custom profile's directory).
fn build_command(dir: &Path) -> String {
    let profile = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => String::new(),
        Some("release") => " --release".to_owned(),
        Some(other) => format!(" --profile {other}"),
    };
    format!("cargo build -p seal-cli -p seal-operator{profile}")
}

/// A source file changed after `binary` was built, if any. Cargo lists the workspace sources
/// a binary was built from in `<binary>.d`, tests excepted, so an edit to a test alone does
/// not make the binary stale; without that file every file under the crates' `src` counts.
fn newer_source(binary: &Path) -> Result<Option<PathBuf>> {
    let built = std::fs::metadata(binary)?.modified()?;
    let sources = match std::fs::read_to_string(binary.with_file_name(format!(
        "{}.d",
        binary.file_name().and_then(|n| n.to_str()).unwrap_or_default()
    ))) {
        Ok(listing) => dep_info_sources(&listing),
        Err(_) => workspace_sources()?,
    };
    for source in sources {
        // A source that is gone was removed from the crate, which changed another file too.
        let Ok(changed) = std::fs::metadata(&source).and_then(|m| m.modified()) else {
            continue;
        };
        if changed > built {
            return Ok(Some(source));
        }
    }
    Ok(None)
}

/// The prerequisites in a Makefile-style dep-info file (`target: a.rs b.rs`, spaces in
/// names escaped with a backslash).
fn dep_info_sources(listing: &str) -> Vec<PathBuf> {
    let mut sources = Vec::new();
    for line in listing.lines() {
        let Some((_, prerequisites)) = line.split_once(": ") else {
            continue;
        };
        let mut current = String::new();
        let mut chars = prerequisites.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => current.extend(chars.next()),
                ' ' => {
                    if !current.is_empty() {
                        sources.push(PathBuf::from(std::mem::take(&mut current)));
                    }
                }
                _ => current.push(c),
            }
        }
        if !current.is_empty() {
            sources.push(PathBuf::from(current));
        }
    }
    sources
}

/// Every file under the binaries' crates' `src` directories.
fn workspace_sources() -> Result<Vec<PathBuf>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut pending: Vec<PathBuf> = ["cli/src", "operator/src", "shared/src"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    let mut files = Vec::new();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("{}", dir.display()))? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                pending.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    Ok(files)
}

/// A port no other operator of this test process was given, and free when asked. Taken
/// below the kernel's ephemeral range: a port the kernel hands out for `:0` is released
/// before the operator binds it, and in between the kernel may hand it again, to a client
/// connection or to another test's `:0` (seen as "Address already in use" under load).
fn free_port() -> Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    // Processes that run at once start apart; within one, each port is handed out once.
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id() % 600 * 20;
    for _ in 0..SPAN {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN;
        let port = u16::try_from(FIRST + offset)?;
        // Free on every address, so a bind to 127.0.0.1 or to 0.0.0.0 succeeds alike.
        if TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("no free port between {FIRST} and {}", FIRST + SPAN)
}

/// A seal-operator process for one test namespace; killed when dropped.
pub struct Operator {
    child: Child,
    pub http_port: u16,
    pub metrics_port: u16,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Operator {
    pub fn start(namespace: &str, extra: &[&str]) -> Result<Operator> {
        Operator::start_with_kubeconfig(namespace, &crate::kubeconfig_path(), extra)
    }

    /// Starts the operator with its own credentials, for example a ServiceAccount's token.
    pub fn start_with_kubeconfig(
        namespace: &str,
        kubeconfig: &std::path::Path,
        extra: &[&str],
    ) -> Result<Operator> {
        Operator::spawn(namespace, kubeconfig, extra, "debug")
    }

    /// Starts the operator logging at `log` (a `SEAL_LOG` filter), as a benchmark wants it.
    pub fn start_with_log(namespace: &str, extra: &[&str], log: &str) -> Result<Operator> {
        Operator::spawn(namespace, &crate::kubeconfig_path(), extra, log)
    }

    /// Starts the operator with its HTTP port on every address, so that the API server can
    /// reach it at the machine's own address, as a Service's endpoint.
    pub fn start_reachable(namespace: &str, extra: &[&str]) -> Result<Operator> {
        Operator::spawn_on(
            namespace,
            &crate::kubeconfig_path(),
            extra,
            "debug",
            "0.0.0.0",
        )
    }

    fn spawn(
        namespace: &str,
        kubeconfig: &std::path::Path,
        extra: &[&str],
        log: &str,
    ) -> Result<Operator> {
        Operator::spawn_on(namespace, kubeconfig, extra, log, "127.0.0.1")
    }

    fn spawn_on(
        namespace: &str,
        kubeconfig: &std::path::Path,
        extra: &[&str],
        log: &str,
        http_host: &str,
    ) -> Result<Operator> {
        let dir = tempfile::tempdir()?;
        let (http_port, metrics_port) = (free_port()?, free_port()?);
        let stdout = dir.path().join("audit.log");
        let stderr = dir.path().join("operator.log");
        // JSON logs unless the test asks for another format (the flag may be given once).
        let format = if extra.iter().any(|a| a.starts_with("--log-format")) {
            &[][..]
        } else {
            &["--log-format", "json"][..]
        };
        // The watch namespace is the operator's own unless the test names another.
        let watch = if extra.iter().any(|a| a.starts_with("--watch-namespace")) {
            &[][..]
        } else {
            &["--watch-namespace", namespace][..]
        };
        let child = Command::new(bin("seal-operator")?)
            .args(["--namespace", namespace])
            .args(watch)
            .args(format)
            .arg(format!("--http-addr={http_host}:{http_port}"))
            .arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"))
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("SEAL_LOG", log)
            .stdout(Stdio::from(std::fs::File::create(&stdout)?))
            .stderr(Stdio::from(std::fs::File::create(&stderr)?))
            .spawn()?;
        Ok(Operator {
            child,
            http_port,
            metrics_port,
            stdout,
            stderr,
            _dir: dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn get(&self, port: u16, path: &str) -> Result<(u16, String)> {
        let url = format!("http://127.0.0.1:{port}{path}");
        let output = tokio::process::Command::new("curl")
            .args(["-sS", "-w", "\n%{http_code}", &url])
            .output()
            .await?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        Ok((code.parse().unwrap_or(0), body.to_owned()))
    }

    /// Ready within a minute: a start takes well under a second here, but CI machines are
    /// shared, and a test that waits longer only costs time when it fails anyway.
    pub async fn wait_ready(&self) -> Result<()> {
        crate::eventually("operator /readyz", Duration::from_secs(60), || async {
            Ok((self.get(self.http_port, "/readyz").await?.0 == 200).then_some(()))
        })
        .await
    }

    /// Everything the operator wrote: the audit log and its own log.
    pub fn output(&self) -> String {
        let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        format!("{}\n{}", read(&self.stdout), read(&self.stderr))
    }

    /// Sends SIGTERM and waits for the process to end on its own.
    pub fn terminate(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        anyhow::ensure!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()?
                .success(),
            "kill -TERM failed"
        );
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the operator did not stop within {timeout:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs the `seal` CLI against the test server.
pub fn seal(args: &[&str], dir: &std::path::Path) -> Result<std::process::Output> {
    Ok(Command::new(bin("seal")?)
        .args(args)
        .current_dir(dir)
        .env("KUBECONFIG", crate::kubeconfig_path())
        .output()?)
}

/// Seals a Secret of type `type_` with the `seal` CLI, the recipient read from the operator's ConfigMap in
/// `namespace`, and returns the SealedSecret.
pub fn seal_secret(
    namespace: &str,
    name: &str,
    type_: &str,
    items: &[(&str, &str)],
) -> Result<seal_shared::sealed_secret::SealedSecret> {
    let dir = tempfile::tempdir()?;
    let mut text = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels: {{app: shop}}\ntype: {type_}\nstringData:\n"
    );
    for (k, v) in items {
        text.push_str(&format!("  {k}: {v}\n"));
    }
    std::fs::write(dir.path().join("s.yaml"), text)?;
    let out = seal(
        &["encrypt", "--controller-namespace", namespace, "s.yaml"],
        dir.path(),
    )?;
    anyhow::ensure!(
        out.status.success(),
        "seal encrypt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(
        seal_shared::sealed_secret::parse_sealed_secrets(&String::from_utf8(out.stdout)?)?
            .remove(0),
    )
}

impl Operator {
    /// Whether this replica says it leads (its `seal_leader` gauge), read without a new
    /// process so that several replicas can be sampled every few milliseconds.
    pub async fn leads(&self) -> Result<bool> {
        leads_on(self.metrics_port).await
    }
}

/// Reads `seal_leader` from the metrics port `port`.
pub async fn leads_on(port: u16) -> Result<bool> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    let value = body
        .lines()
        .find_map(|l| l.strip_prefix("seal_leader "))
        .context("no seal_leader gauge")?;
    Ok(value.trim() == "1")
}

/// Samples which replicas say they lead, every 20 ms, until dropped.
pub struct LeaderSampler {
    ports: std::sync::Arc<std::sync::Mutex<Vec<(String, u16)>>>,
    record: std::sync::Arc<std::sync::Mutex<Samples>>,
    task: tokio::task::JoinHandle<()>,
}

/// What the sampler saw.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    pub taken: u64,
    /// Samples in which no replica said it led.
    pub leaderless: u64,
    /// Samples in which more than one replica said it led, with who did.
    pub overlaps: Vec<Vec<String>>,
    /// The longest run of consecutive overlapping samples, in samples.
    pub longest_overlap: u64,
    run: u64,
}

impl LeaderSampler {
    pub fn start() -> LeaderSampler {
        let ports = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, u16)>::new()));
        let record = std::sync::Arc::new(std::sync::Mutex::new(Samples::default()));
        let (p, r) = (ports.clone(), record.clone());
        let task = tokio::spawn(async move {
            loop {
                let current = p.lock().map(|g| g.clone()).unwrap_or_default();
                let mut leading = Vec::new();
                for (name, port) in current {
                    if leads_on(port).await.unwrap_or(false) {
                        leading.push(name);
                    }
                }
                if let Ok(mut samples) = r.lock() {
                    samples.taken += 1;
                    samples.leaderless += u64::from(leading.is_empty());
                    if leading.len() > 1 {
                        samples.run += 1;
                        samples.longest_overlap = samples.longest_overlap.max(samples.run);
                        samples.overlaps.push(leading);
                    } else {
                        samples.run = 0;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        LeaderSampler {
            ports,
            record,
            task,
        }
    }

    /// Samples these replicas from now on (replacing any earlier list).
    pub fn follow(&self, replicas: &[(&str, &Operator)]) {
        if let Ok(mut ports) = self.ports.lock() {
            *ports = replicas
                .iter()
                .map(|(name, op)| ((*name).to_owned(), op.metrics_port))
                .collect();
        }
    }

    pub fn samples(&self) -> Samples {
        self.record.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for LeaderSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_info_lists_the_sources() {
        let listing =
            "/t/debug/seal: /w/cli/src/main.rs /w/my\\ dir/lib.rs\n\n/w/cli/src/main.rs:\n";
        assert_eq!(
            dep_info_sources(listing),
            [
                PathBuf::from("/w/cli/src/main.rs"),
                PathBuf::from("/w/my dir/lib.rs")
            ]
        );
    }

    #[test]
    fn a_binary_older_than_a_source_is_refused() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let source = dir.path().join("main.rs");
        let binary = dir.path().join("seal");
        std::fs::write(&source, "fn main() {}")?;
        std::fs::write(&binary, "")?;
        let listing = format!("{}: {}\n", binary.display(), source.display());
        std::fs::write(dir.path().join("seal.d"), listing)?;
        let old = std::time::SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&source)?
            .set_modified(old)?;
        assert_eq!(newer_source(&binary)?, None);
        // An edit after the build.
        std::fs::File::options()
            .write(true)
            .open(&source)?
            .set_modified(old + Duration::from_secs(120))?;
        assert_eq!(newer_source(&binary)?, Some(source));
        Ok(())
    }

    #[test]
    fn the_build_command_matches_the_profile() {
        assert_eq!(
            build_command(Path::new("/w/target/debug")),
            "cargo build -p seal-cli -p seal-operator"
        );
        assert_eq!(
            build_command(Path::new("/w/target/release")),
            "cargo build -p seal-cli -p seal-operator --release"
        );
    }
}
