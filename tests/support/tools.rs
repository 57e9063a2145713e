//! The chart tests' external tools, installed by `tests/chart/tools` and found through
//! `SEAL_HELM` and `SEAL_KUBECTL`. A missing tool fails the test; it never skips it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, bail};

fn tool(variable: &str) -> Result<String> {
    std::env::var(variable).ok().filter(|p| !p.is_empty()).with_context(|| {
        format!("{variable} is not set; run the tests through ./test.sh, or eval \"$(tests/chart/tools)\" first")
    })
}

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<Output> {
    let mut child = Command::new(program)
        .args(args)
        .env("KUBECONFIG", crate::kubeconfig_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    let mut pipe = child.stdin.take().context("no stdin")?;
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes())?;
    }
    drop(pipe);
    Ok(child.wait_with_output()?)
}

fn ok(output: Output, what: &str) -> Result<String> {
    if !output.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// Runs helm; the output of a failure is returned as an error.
pub fn helm(args: &[&str]) -> Result<String> {
    ok(run(&tool("SEAL_HELM")?, args, None)?, "helm")
}

/// Runs helm and returns its raw result, for checks that expect failure.
pub fn helm_output(args: &[&str]) -> Result<Output> {
    run(&tool("SEAL_HELM")?, args, None)
}

/// The real kubectl, as a command to which the caller adds its own environment.
pub fn kubectl_command() -> Result<Command> {
    Ok(Command::new(tool("SEAL_KUBECTL")?))
}

pub fn kubectl(args: &[&str], stdin: Option<&str>) -> Result<String> {
    ok(run(&tool("SEAL_KUBECTL")?, args, stdin)?, "kubectl")
}

/// The chart rendered with `args`, as JSON values, one per object.
pub fn render(args: &[&str]) -> Result<Vec<serde_json::Value>> {
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/seal-operator");
    let mut all = vec!["template", "seal", chart];
    all.extend_from_slice(args);
    let text = helm(&all)?;
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// Runs promtool (the Debian package `prometheus`, which ./test.sh installs; `SEAL_PROMTOOL`
/// names another) in `dir`. A missing promtool is an error, never a skip.
pub fn promtool(args: &[&str], dir: &std::path::Path) -> Result<Output> {
    let program = std::env::var("SEAL_PROMTOOL")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "promtool".to_owned());
    Command::new(&program)
        .args(args)
        .current_dir(dir)
        .output()
        .with_context(|| {
            format!(
                "cannot run {program}; install it with `apt-get install prometheus` (./test.sh does)"
            )
        })
}

/// The chart's source files, for tests that compare with what it renders.
pub fn chart_file(path: &str) -> Result<String> {
    let full = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/seal-operator/").to_owned() + path;
    std::fs::read_to_string(&full).with_context(|| format!("reading {full}"))
}
