//! A one-line progress bar on stderr for commands that work through many files. Drawn only
//! when stderr is a terminal (in a pipe or a CI log it would be noise) and only once a run
//! has lasted long enough to want one; cleared when the run ends, so what stays on the
//! terminal is the command's own lines.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a run goes before its bar appears.
const SHOW_AFTER: Duration = Duration::from_millis(500);
/// How often the bar is redrawn at most.
const REDRAW_EVERY: Duration = Duration::from_millis(100);
const WIDTH: usize = 30;

pub struct Progress {
    total: usize,
    /// What is counted: `files`, `items`.
    unit: &'static str,
    files: AtomicUsize,
    secrets: AtomicUsize,
    start: Instant,
    /// When the bar was last drawn; `None` for a stderr that is no terminal.
    drawn: Option<Mutex<Option<Instant>>>,
}

impl Progress {
    /// A bar for `total` files.
    pub fn new(total: usize) -> Self {
        Progress::counting(total, "files")
    }

    /// A bar for `total` of `unit` (`items`).
    pub fn counting(total: usize, unit: &'static str) -> Self {
        Progress {
            total,
            unit,
            files: AtomicUsize::new(0),
            secrets: AtomicUsize::new(0),
            start: Instant::now(),
            drawn: std::io::stderr().is_terminal().then(|| Mutex::new(None)),
        }
    }

    /// One more file (or whatever the bar counts) done.
    pub fn file_done(&self) {
        self.files.fetch_add(1, Ordering::Relaxed);
        self.draw();
    }

    /// One more Secret sealed, in a file still being worked on.
    pub fn secret_done(&self) {
        self.secrets.fetch_add(1, Ordering::Relaxed);
        self.draw();
    }

    fn draw(&self) {
        let Some(drawn) = &self.drawn else {
            return;
        };
        let now = Instant::now();
        if now.duration_since(self.start) < SHOW_AFTER {
            return;
        }
        // Another thread drawing now is as good as this one drawing.
        let Ok(mut last) = drawn.try_lock() else {
            return;
        };
        if last.is_some_and(|at| now.duration_since(at) < REDRAW_EVERY) {
            return;
        }
        *last = Some(now);
        let files = self.files.load(Ordering::Relaxed);
        let secrets = self.secrets.load(Ordering::Relaxed);
        let filled = files.min(self.total) * WIDTH / self.total.max(1);
        let mut line = format!(
            "\r[{}{}] {files}/{} {}",
            "#".repeat(filled),
            " ".repeat(WIDTH - filled),
            self.total,
            self.unit
        );
        if secrets > 0 {
            line.push_str(&format!(", {secrets} Secrets sealed"));
        }
        let mut out = std::io::stderr().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }

    /// Clears the bar, if one was drawn, before the command prints its own lines.
    pub fn finish(&self) {
        if let Some(drawn) = &self.drawn
            && let Ok(last) = drawn.lock()
            && last.is_some()
        {
            let mut out = std::io::stderr().lock();
            let _ = out.write_all(b"\r\x1b[2K");
            let _ = out.flush();
        }
    }
}
