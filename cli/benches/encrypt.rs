//! `seal encrypt` on one file of 10,000 Secrets, as a whole process, against a floor process
//! that does nothing but `age::encrypt` the same values: the CPU seal spends beyond age's own
//! is what its YAML, checks, binding and output cost. Prints its figures; run with
//! `cargo bench -p seal-cli --bench encrypt`.
//!
//! Workload: 10,000 Secrets of 5 items (16 to 1024 bytes of text under stringData), strict,
//! to one recipient given with -r; both processes use every core. CPU is user + system time
//! of the child (getrusage), start-up included, three interleaved runs.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use seal_shared::keys::SealIdentity;

const SECRETS: usize = 10_000;
const ITEM_SIZES: [usize; 5] = [16, 32, 64, 256, 1024];
/// Set in the environment of the floor process, which this same binary becomes.
const FLOOR: &str = "SEAL_BENCH_ENCRYPT_FLOOR";

/// Item `k` of Secret `i`: printable, varied text, the same in both processes.
fn value(i: usize, k: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state = (i as u64 * 31 + k as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..ITEM_SIZES[k])
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state % ALPHABET.len() as u64) as usize]
        })
        .collect()
}

fn manifest() -> String {
    let mut text = String::with_capacity(SECRETS * 1600);
    for i in 0..SECRETS {
        let _ = write!(
            text,
            "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: secret-{i}\n  namespace: bench\ntype: Opaque\nstringData:\n"
        );
        for k in 0..ITEM_SIZES.len() {
            let value = String::from_utf8(value(i, k)).unwrap_or_default();
            let _ = writeln!(text, "  item-{k}: {value}");
        }
    }
    text
}

/// The floor: parse the recipient once, then `age::encrypt` every value on every core.
fn floor(recipient: &str) {
    let recipient: age::x25519::Recipient = recipient.parse().expect("a recipient");
    let bytes: usize = (0..SECRETS)
        .into_par_iter()
        .map(|i| {
            (0..ITEM_SIZES.len())
                .map(|k| {
                    age::encrypt(&recipient, &value(i, k))
                        .expect("age encrypts")
                        .len()
                })
                .sum::<usize>()
        })
        .sum();
    std::hint::black_box(bytes);
}

/// User + system CPU of every child this process has waited for.
fn children_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given.
    let usage = unsafe {
        assert_eq!(
            libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()),
            0
        );
        usage.assume_init()
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Runs `command` to the end and returns its CPU time and wall time.
fn measure(command: &mut Command) -> (Duration, Duration) {
    let before = children_cpu();
    let start = Instant::now();
    let out = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("the process runs");
    let wall = start.elapsed();
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (children_cpu() - before, wall)
}

fn main() {
    if let Ok(recipient) = std::env::var(FLOOR) {
        floor(&recipient);
        return;
    }
    let recipient = SealIdentity::generate().recipient().recipient.to_string();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let input = dir.path().join("secrets.yaml");
    std::fs::write(&input, manifest()).expect("the workload is written");
    let output = dir.path().join("secrets.sealed.yaml");
    let me = std::env::current_exe().expect("the bench's own path");

    let mut ratios = Vec::new();
    println!(
        "seal encrypt, one file of {SECRETS} Secrets x {} items ({} bytes of input), {} cores:",
        ITEM_SIZES.len(),
        std::fs::metadata(&input).map_or(0, |m| m.len()),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for run in 1..=3 {
        let (floor_cpu, floor_wall) = measure(Command::new(&me).env(FLOOR, &recipient));
        let (seal_cpu, seal_wall) = measure(
            Command::new(env!("CARGO_BIN_EXE_seal"))
                .args(["encrypt", "-r", &recipient])
                .arg(&input)
                .arg("-o")
                .arg(&output),
        );
        let ratio = seal_cpu.as_secs_f64() / floor_cpu.as_secs_f64();
        ratios.push(ratio);
        println!(
            "  run {run}: age::encrypt floor {:.2} s CPU ({:.2} s wall), seal encrypt {:.2} s CPU ({:.2} s wall): {ratio:.2}x the floor",
            floor_cpu.as_secs_f64(),
            floor_wall.as_secs_f64(),
            seal_cpu.as_secs_f64(),
            seal_wall.as_secs_f64(),
        );
    }
    let sealed = std::fs::read_to_string(&output).expect("seal wrote its output");
    assert_eq!(sealed.matches("kind: SealedSecret").count(), SECRETS);
    ratios.sort_by(f64::total_cmp);
    println!(
        "  CPU overhead: median {:.2}x, range {:.2}x to {:.2}x the floor (target <= 1.15x)",
        ratios[1], ratios[0], ratios[2]
    );
}
