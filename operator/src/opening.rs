//! Where items are opened. Opening is CPU work (X25519 per recipient stanza,
//! ChaCha20-Poly1305 per byte): it runs on tokio's blocking threads, at most one piece of
//! work per core at a time, whoever asks (a reconcile, a reseal call), so that a burst of
//! expensive items never delays the Lease renewal, the probes or the watches on the
//! runtime's own threads, and waiting work waits at most for a core to come free.

use std::sync::LazyLock;

use tokio::sync::Semaphore;

static CORES: LazyLock<Semaphore> = LazyLock::new(|| {
    Semaphore::new(std::thread::available_parallelism().map_or(1, |cores| cores.get()))
});

/// Runs `work` on a blocking thread once a core is free. Fails only if the pool is gone or
/// the work panicked; the reason is a fixed phrase, never the work's data.
pub async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, &'static str> {
    let permit = CORES.acquire().await.map_err(|_| "the pool is closed")?;
    // The permit goes with the work: a caller cancelled meanwhile frees its core only once
    // the work is done.
    tokio::task::spawn_blocking(move || {
        let done = work();
        drop(permit);
        done
    })
    .await
    .map_err(|_| "the opening task failed")
}
