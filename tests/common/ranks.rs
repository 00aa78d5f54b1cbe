//! Ranks as processes for the distributed tests: each rank is a child process of the
//! test binary running its `child` test on its own emulated CUDA device
//! (`KILN_CUDA_EMULATE_DEVICES`), the ranks meeting through a fresh rendezvous file.

use kiln::distributed::{self as dist, InitOpts, ProcessGroup};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Whether this run has the emulated device: the collectives then run for real.
pub fn emulated() -> bool {
    cfg!(feature = "cuda-emulator") && std::env::var("KILN_CUDA_EMULATE").is_ok_and(|v| v == "1")
}

/// The child's mode, or None in the parent run (the child tests are then no-ops).
pub fn child_mode() -> Option<String> {
    std::env::var("KILN_COLL_CHILD").ok()
}

/// Starts `world` ranks running the `child` test in `mode`, meeting in a fresh file.
pub fn spawn_ranks(mode: &str, world: usize) -> Vec<Child> {
    let rdzv =
        std::env::temp_dir().join(format!("kiln-coll-{}-{mode}-{world}", std::process::id()));
    let _ = std::fs::remove_file(&rdzv);
    (0..world)
        .map(|rank| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child", "--nocapture", "--test-threads", "1"])
                .env("KILN_COLL_CHILD", mode)
                .env("KILN_COLL_RANK", rank.to_string())
                .env("KILN_COLL_WORLD", world.to_string())
                .env("KILN_COLL_RDZV", &rdzv)
                .env("KILN_CUDA_EMULATE_DEVICES", world.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect()
}

/// Each rank's output, and whether it passed its test.
pub fn outcomes(children: Vec<Child>) -> Vec<(bool, String)> {
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status.success() && text.contains("1 passed"), text)
        })
        .collect()
}

/// In the parent run on the emulated device, runs `mode` on `world` ranks and asserts
/// that every rank passed (a no-op in a child and without the emulated device).
pub fn run_on_ranks(mode: &str, world: usize) {
    if child_mode().is_none() && emulated() {
        all_pass(mode, world);
    }
}

/// Without the emulated device (and no GPU here), joining a group is an `Err` that
/// says why there is no CUDA device (a no-op in a child and on the emulated device).
pub fn assert_no_group_without_a_device() {
    if child_mode().is_some() || emulated() {
        return;
    }
    let file = std::env::temp_dir().join(format!("kiln-ranks-{}-cpu", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let e = dist::init_process_group(InitOpts::file(&file, 0, 1))
        .unwrap_err()
        .to_string();
    let _ = std::fs::remove_file(&file);
    assert!(e.to_lowercase().contains("cuda"), "{e}");
}

/// Runs `mode` on `world` ranks and asserts that every rank passed.
pub fn all_pass(mode: &str, world: usize) {
    for (rank, (passed, text)) in outcomes(spawn_ranks(mode, world)).into_iter().enumerate() {
        assert!(passed, "{mode}: rank {rank} of {world}: {text}");
    }
}

/// Joins the group of the child's environment, with `timeout`.
pub fn join(timeout: Duration) -> ProcessGroup {
    let var = |k: &str| std::env::var(k).unwrap();
    let (rank, world) = (
        var("KILN_COLL_RANK").parse().unwrap(),
        var("KILN_COLL_WORLD").parse().unwrap(),
    );
    let opts = InitOpts::file(var("KILN_COLL_RDZV"), rank, world).timeout(timeout);
    dist::init_process_group(opts).unwrap()
}
