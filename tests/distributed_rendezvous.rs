//! `kiln::distributed`'s rendezvous: torchrun's and Slurm's variables, the TCP store
//! (ranks as child processes of this test binary, as torchrun starts them, and as
//! threads) and the file store, the barrier, rank 0's bytes reaching every rank, and
//! bounded failures: a rank that never comes or dies, a store that cannot be reached or
//! hosted, each an `Err` naming the rank and the address within the timeout.

use kiln::distributed::{rendezvous, InitOpts, Rendezvous, TcpStore};
use kiln::Error;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The launcher variables a child must not inherit from the test's own environment.
const LAUNCH_VARS: &[&str] = &[
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "SLURM_PROCID",
    "SLURM_NTASKS",
    "SLURM_LOCALID",
];

/// Starts this test binary's `child` test with `vars` as its launcher environment and
/// `mode` telling it what to do.
fn spawn(child: &str, mode: &str, vars: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", child, "--nocapture", "--test-threads", "1"])
        .env("KILN_DIST_CHILD", mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in LAUNCH_VARS {
        cmd.env_remove(var);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Asserts that the child ran its test and passed, showing its output if not.
fn assert_passed(what: &str, out: Output) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{what}: {text}"
    );
}

/// The child's mode, or None in the parent run (the child tests are then no-ops).
fn child_mode() -> Option<String> {
    std::env::var("KILN_DIST_CHILD").ok()
}

#[test]
fn launcher_variables_are_read_like_torchrun() {
    let master = [("MASTER_ADDR", "10.0.0.1"), ("MASTER_PORT", "29500")];
    let slurm = [
        ("SLURM_PROCID", "3"),
        ("SLURM_NTASKS", "4"),
        ("SLURM_LOCALID", "1"),
    ];
    let torchrun = [
        ("RANK", "5"),
        ("WORLD_SIZE", "8"),
        ("LOCAL_RANK", "1"),
        ("LOCAL_WORLD_SIZE", "4"),
    ];
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("ok 5 8 1 4", [&torchrun[..], &master].concat()),
        ("ok 3 4 1 -", [&slurm[..], &master].concat()),
        // torchrun's RANK and WORLD_SIZE win over Slurm's; SLURM_LOCALID stands in.
        (
            "ok 0 2 1 -",
            [&slurm[..], &master, &[("RANK", "0"), ("WORLD_SIZE", "2")]].concat(),
        ),
        ("err RANK", master.to_vec()),
        ("err MASTER_ADDR", vec![("RANK", "0"), ("WORLD_SIZE", "1")]),
        (
            "err MASTER_PORT",
            vec![("RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "h")],
        ),
        (
            "err RANK",
            [&master[..], &[("RANK", "x"), ("WORLD_SIZE", "2")]].concat(),
        ),
        ("err WORLD_SIZE", [&master[..], &[("RANK", "0")]].concat()),
        (
            "err rank",
            [&master[..], &[("RANK", "2"), ("WORLD_SIZE", "2")]].concat(),
        ),
        (
            "err MASTER_PORT",
            vec![
                ("RANK", "0"),
                ("WORLD_SIZE", "2"),
                ("MASTER_ADDR", "h"),
                ("MASTER_PORT", "70000"),
            ],
        ),
    ];
    let children: Vec<_> = cases
        .iter()
        .map(|(expect, vars)| {
            let mut vars: Vec<(&str, String)> =
                vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
            vars.push(("KILN_DIST_EXPECT", expect.to_string()));
            spawn("env_child", "env", &vars)
        })
        .collect();
    for ((expect, vars), child) in cases.iter().zip(children) {
        assert_passed(
            &format!("{vars:?} → {expect}"),
            child.wait_with_output().unwrap(),
        );
    }
}

/// Child of [`launcher_variables_are_read_like_torchrun`]: `InitOpts::from_env()` is
/// `ok RANK WORLD LOCAL LOCAL_WORLD|-` (at MASTER_ADDR 10.0.0.1:29500) or `err NAME`.
#[test]
fn env_child() {
    if child_mode().as_deref() != Some("env") {
        return;
    }
    let expect = std::env::var("KILN_DIST_EXPECT").unwrap();
    let words: Vec<&str> = expect.split(' ').collect();
    let got = InitOpts::from_env();
    match words[..] {
        ["ok", rank, world, local, local_world] => {
            let mut want = InitOpts::tcp(
                "10.0.0.1",
                29500,
                rank.parse().unwrap(),
                world.parse().unwrap(),
            )
            .local_rank(local.parse().unwrap());
            if let Ok(n) = local_world.parse() {
                want = want.local_world_size(n);
            }
            assert_eq!(got.unwrap(), want);
        }
        ["err", name] => match got {
            Err(Error::InvalidArgument { name: got, .. }) => assert_eq!(got, name),
            other => panic!("expected an error naming {name}, got {other:?}"),
        },
        _ => panic!("bad KILN_DIST_EXPECT {expect}"),
    }
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What every rank does once it has met the others: rank 0's id reaches it, every
/// rank's key is visible to it, and barriers pass.
fn exercise(rdzv: &Rendezvous) {
    let id = rdzv
        .share_from_root("nccl-id", || Ok(b"unique-id".to_vec()))
        .unwrap();
    assert_eq!(id, b"unique-id");
    let me = rdzv.rank();
    rdzv.store()
        .set(&format!("hello/{me}"), format!("from {me}").as_bytes())
        .unwrap();
    rdzv.barrier().unwrap();
    for r in 0..rdzv.world_size() {
        let v = rdzv
            .store()
            .try_get(&format!("hello/{r}"), Duration::ZERO)
            .unwrap();
        assert_eq!(
            v.unwrap(),
            format!("from {r}").as_bytes(),
            "rank {me} reads rank {r}"
        );
    }
    rdzv.barrier().unwrap();
}

/// Runs `world` ranks on threads, rank `r` joining with `opts(r)`.
fn on_threads(world: usize, opts: impl Fn(usize) -> InitOpts + Sync) {
    std::thread::scope(|s| {
        let ranks: Vec<_> = (0..world)
            .map(|r| {
                let opts = &opts;
                s.spawn(move || {
                    let rdzv = rendezvous(&opts(r)).unwrap();
                    assert_eq!((rdzv.rank(), rdzv.world_size()), (r, world));
                    exercise(&rdzv);
                })
            })
            .collect();
        for rank in ranks {
            rank.join().unwrap();
        }
    });
}

#[test]
fn ranks_meet_through_a_tcp_store_in_child_processes() {
    let port = free_port().to_string();
    let children: Vec<_> = (0..3)
        .map(|r| {
            let vars = [
                ("RANK", r.to_string()),
                ("WORLD_SIZE", "3".to_string()),
                ("LOCAL_RANK", r.to_string()),
                ("MASTER_ADDR", "127.0.0.1".to_string()),
                ("MASTER_PORT", port.clone()),
            ];
            spawn("rank_child", "meet", &vars)
        })
        .collect();
    for (r, child) in children.into_iter().enumerate() {
        assert_passed(&format!("rank {r}"), child.wait_with_output().unwrap());
    }
}

/// Child of the process tests: joins by `env://`, then `meet`s the others, or for
/// `die-R`, rank R exits right after joining and every other rank must fail within
/// the (short) timeout with an error naming the dead rank.
#[test]
fn rank_child() {
    let Some(mode) = child_mode() else { return };
    let opts = InitOpts::from_env().unwrap();
    if mode == "meet" {
        exercise(&rendezvous(&opts.timeout(Duration::from_secs(30))).unwrap());
        return;
    }
    // Long enough for the other child to start on a loaded machine.
    let opts = opts.timeout(Duration::from_secs(5));
    let dead: usize = mode.strip_prefix("die-").unwrap().parse().unwrap();
    let me = std::env::var("RANK").unwrap().parse::<usize>().unwrap();
    let start = Instant::now();
    let result = rendezvous(&opts).and_then(|rdzv| {
        if me == dead {
            std::process::exit(0);
        }
        rdzv.barrier()
    });
    let msg = result.expect_err("a rank died").to_string();
    assert!(start.elapsed() < Duration::from_secs(20), "{msg}");
    assert!(
        msg.contains(&format!("rank {me}")) && msg.contains("127.0.0.1:"),
        "{msg}"
    );
    let names_dead = if dead == 0 {
        "rank 0".to_string()
    } else {
        format!("[{dead}]")
    };
    assert!(msg.contains(&names_dead), "{msg}");
}

#[test]
fn a_rank_that_dies_fails_the_others_naming_it() {
    for dead in [1, 0] {
        let port = free_port().to_string();
        let children: Vec<_> = (0..2)
            .map(|r| {
                let vars = [
                    ("RANK", r.to_string()),
                    ("WORLD_SIZE", "2".to_string()),
                    ("MASTER_ADDR", "127.0.0.1".to_string()),
                    ("MASTER_PORT", port.clone()),
                ];
                spawn("rank_child", &format!("die-{dead}"), &vars)
            })
            .collect();
        for (r, child) in children.into_iter().enumerate() {
            let out = child.wait_with_output().unwrap();
            if r == dead {
                assert!(out.status.success(), "the dying rank {r} exits cleanly");
            } else {
                assert_passed(&format!("rank {r} when rank {dead} dies"), out);
            }
        }
    }
}

#[test]
fn ranks_meet_on_threads_through_tcp_and_file_stores() {
    let port = free_port();
    on_threads(4, |r| {
        InitOpts::tcp("127.0.0.1", port, r, 4).timeout(Duration::from_secs(20))
    });
    let file = std::env::temp_dir().join(format!("kiln-rdzv-{}-meet", std::process::id()));
    let _ = std::fs::remove_file(&file);
    on_threads(3, |r| {
        InitOpts::file(&file, r, 3).timeout(Duration::from_secs(20))
    });
    std::fs::remove_file(&file).unwrap();
}

/// The message of an `Error::Distributed` from `rank`.
fn distributed_error(result: kiln::Result<Rendezvous>, rank: usize) -> String {
    match result {
        Err(e @ Error::Distributed { rank: r, .. }) if r == rank => e.to_string(),
        other => panic!("expected a distributed error from rank {rank}, got {other:?}"),
    }
}

#[test]
fn a_rank_that_never_comes_is_named_within_the_timeout() {
    let file = std::env::temp_dir().join(format!("kiln-rdzv-{}-absent", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let timeout = Duration::from_millis(300);
    let start = Instant::now();
    std::thread::scope(|s| {
        let ranks: Vec<_> = (0..2)
            .map(|r| {
                let file = &file;
                s.spawn(move || rendezvous(&InitOpts::file(file, r, 3).timeout(timeout)))
            })
            .collect();
        for (r, rank) in ranks.into_iter().enumerate() {
            let msg = distributed_error(rank.join().unwrap(), r);
            assert!(
                msg.contains("ranks [2] of 3") && msg.contains(&file.display().to_string()),
                "{msg}"
            );
        }
    });
    assert!(start.elapsed() < Duration::from_secs(5));
    std::fs::remove_file(&file).unwrap();

    // Nobody hosts the TCP store: a client gives up after the timeout, naming it.
    let port = free_port();
    let start = Instant::now();
    let msg = distributed_error(
        rendezvous(&InitOpts::tcp("127.0.0.1", port, 1, 2).timeout(timeout)),
        1,
    );
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn disagreements_and_a_taken_port_are_errors() {
    let file = std::env::temp_dir().join(format!("kiln-rdzv-{}-sizes", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let timeout = Duration::from_secs(5);
    std::thread::scope(|s| {
        let a = s.spawn(|| rendezvous(&InitOpts::file(&file, 0, 2).timeout(timeout)));
        let b = s.spawn(|| rendezvous(&InitOpts::file(&file, 1, 2).timeout(timeout)));
        let c = s.spawn(|| rendezvous(&InitOpts::file(&file, 2, 3).timeout(timeout)));
        a.join().unwrap().unwrap();
        b.join().unwrap().unwrap();
        let msg = distributed_error(c.join().unwrap(), 2);
        assert!(msg.contains("a world of 2 ranks"), "{msg}");
    });
    std::fs::remove_file(&file).unwrap();

    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    match TcpStore::new("127.0.0.1", port, true, 0, timeout) {
        Err(e @ Error::Distributed { rank: 0, .. }) => {
            assert!(e.to_string().contains("MASTER_PORT"), "{e}")
        }
        other => panic!("expected an error for a taken port, got {other:?}"),
    }
    match rendezvous(&InitOpts::file(&file, 3, 3)) {
        Err(Error::InvalidArgument { name: "rank", .. }) => {}
        other => panic!("expected an error naming rank, got {other:?}"),
    }
}
