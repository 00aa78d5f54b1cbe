//! What a profiling session recorded: per-op aggregates, a table like PyTorch's
//! `key_averages().table()`, and a Chrome trace.

use super::record::{Event, Totals};
use crate::{Error, Result};
use serde_json::json;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

/// What a [`Profiler`](super::Profiler) recorded between `start` and `stop`.
#[derive(Debug, Clone)]
pub struct Report {
    events: Vec<Event>,
    wall: Duration,
    memory: MemoryTraffic,
    kernel_launches: u64,
}

/// One op's aggregate over a session: a row of [`Report::table`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpStats {
    /// The op's name as autograd records it; gradients end in `" backward"`.
    pub name: String,
    /// How many times it ran.
    pub calls: u64,
    /// Host time from call to return, nested ops included, summed over the calls.
    pub cpu_total: Duration,
    /// [`OpStats::cpu_total`] less the time of the ops nested in it.
    pub self_cpu: Duration,
    /// Kernels it launched itself (not through a nested op).
    pub kernel_launches: u64,
    /// Buffers it allocated itself (not through a nested op).
    pub allocs: u64,
    /// The bytes of those buffers.
    pub bytes_allocated: u64,
}

/// Allocator traffic of a session: buffers handed out by and returned to the CPU pool
/// and the CUDA caching allocator, by any op or none.
///
/// On the CPU, every buffer the backend takes is an allocation (a tensor's storage or
/// an op's scratch space, such as a convolution's column matrix), but only tensor
/// storages come back through the pool: the frees count those, and scratch buffers go
/// back to Rust's allocator unseen. On CUDA every buffer is both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryTraffic {
    /// Buffers allocated.
    pub allocs: u64,
    /// Their bytes.
    pub bytes_allocated: u64,
    /// Buffers freed.
    pub frees: u64,
    /// Their bytes.
    pub bytes_freed: u64,
}

impl Report {
    pub(super) fn new(events: Vec<Event>, totals: Totals) -> Report {
        let [allocs, bytes_allocated, frees, bytes_freed] = totals.traffic;
        Report {
            events,
            wall: totals.wall,
            memory: MemoryTraffic {
                allocs,
                bytes_allocated,
                frees,
                bytes_freed,
            },
            kernel_launches: totals.launches,
        }
    }

    /// One row per op name, by decreasing [`OpStats::cpu_total`].
    pub fn ops(&self) -> Vec<OpStats> {
        let mut rows: HashMap<(&str, bool), OpStats> = HashMap::new();
        for e in &self.events {
            let row = rows.entry((e.name, e.backward)).or_insert_with(|| OpStats {
                name: display_name(e),
                calls: 0,
                cpu_total: Duration::ZERO,
                self_cpu: Duration::ZERO,
                kernel_launches: 0,
                allocs: 0,
                bytes_allocated: 0,
            });
            row.calls += 1;
            row.cpu_total += e.cpu;
            row.self_cpu += e.self_cpu;
            row.kernel_launches += e.launches;
            row.allocs += e.allocs;
            row.bytes_allocated += e.bytes_allocated;
        }
        let mut rows: Vec<OpStats> = rows.into_values().collect();
        rows.sort_by(|a, b| b.cpu_total.cmp(&a.cpu_total).then(a.name.cmp(&b.name)));
        rows
    }

    /// The [`OpStats`] row of op `name` (`"linear"`, `"linear backward"`), if it ran.
    pub fn op(&self, name: &str) -> Option<OpStats> {
        self.ops().into_iter().find(|r| r.name == name)
    }

    /// Allocator traffic over the whole session.
    pub fn memory(&self) -> MemoryTraffic {
        self.memory
    }

    /// Kernel launches over the whole session (0 on the CPU).
    pub fn kernel_launches(&self) -> u64 {
        self.kernel_launches
    }

    /// Time from `start` to `stop`.
    pub fn wall_time(&self) -> Duration {
        self.wall
    }

    /// The `n` ops with the largest CPU total as a text table, like PyTorch's
    /// `key_averages().table(sort_by="cpu_time_total", row_limit=n)`: name, calls, self
    /// CPU, CPU total, CPU total as a percentage of all ops' self CPU time (the time
    /// spent in ops, each instant counted once per thread), average, the kernels the op
    /// launched itself (only when the session launched any) and the bytes it allocated
    /// itself; then the session's totals.
    pub fn table(&self, n: usize) -> String {
        let rows = self.ops();
        let all_self: Duration = rows.iter().map(|r| r.self_cpu).sum();
        type Cell = fn(&OpStats, Duration) -> String;
        let mut columns: Vec<(&str, Cell)> = vec![
            ("Calls", |r, _| r.calls.to_string()),
            ("Self CPU", |r, _| time(r.self_cpu)),
            ("CPU total", |r, _| time(r.cpu_total)),
            ("CPU %", |r, all| {
                format!("{:.2}%", percent(r.cpu_total, all))
            }),
            ("CPU avg", |r, _| {
                time(r.cpu_total.div_f64(r.calls.max(1) as f64))
            }),
        ];
        if self.kernel_launches > 0 {
            columns.push(("Kernels", |r, _| r.kernel_launches.to_string()));
        }
        columns.push(("Allocated", |r, _| bytes(r.bytes_allocated)));
        let width = rows
            .iter()
            .take(n)
            .map(|r| r.name.len())
            .fold(4, usize::max);
        let mut header = format!("{:<width$}", "Name");
        for (title, _) in &columns {
            let _ = write!(header, "  {title:>10}");
        }
        let rule = "-".repeat(header.len());
        let mut out = format!("{rule}\n{header}\n{rule}\n");
        for r in rows.iter().take(n) {
            let _ = write!(out, "{:<width$}", r.name);
            for (_, cell) in &columns {
                let _ = write!(out, "  {:>10}", cell(r, all_self));
            }
            out.push('\n');
        }
        let m = self.memory;
        let _ = write!(
            out,
            "{rule}\nSelf CPU time total: {}  (wall {}; {} ops)\n\
             Kernel launches: {}\n\
             Allocations: {} ({}); frees: {} ({})\n",
            time(all_self),
            time(self.wall),
            self.events.len(),
            self.kernel_launches,
            m.allocs,
            bytes(m.bytes_allocated),
            m.frees,
            bytes(m.bytes_freed),
        );
        out
    }

    /// Writes the session as a Chrome trace (`chrome://tracing`, Perfetto): a JSON
    /// object whose `traceEvents` are complete (`"ph": "X"`) events, one per op call,
    /// with `ts` and `dur` in microseconds from the session's start, the thread as
    /// `tid`, and the inputs' shapes, dtype and device, the kernels launched and bytes
    /// allocated in `args`.
    pub fn export_chrome_trace(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let path = path.as_ref();
        let pid = std::process::id();
        let events: Vec<serde_json::Value> = self
            .events
            .iter()
            .map(|e| {
                json!({
                    "name": display_name(e),
                    "cat": if e.backward { "backward" } else { "op" },
                    "ph": "X",
                    "ts": micros(e.start),
                    "dur": micros(e.cpu),
                    "pid": pid,
                    "tid": e.thread,
                    "args": {
                        "shapes": e.shapes,
                        "dtype": e.dtype.map(|d| format!("{d:?}")),
                        "device": e.device.map(|d| d.to_string()),
                        "kernel_launches": e.launches,
                        "bytes_allocated": e.bytes_allocated,
                    },
                })
            })
            .collect();
        let trace = json!({ "traceEvents": events, "displayTimeUnit": "ms" });
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::create(path).map_err(io)?;
        let mut w = std::io::BufWriter::new(file);
        serde_json::to_writer(&mut w, &trace).map_err(|e| io(e.into()))?;
        std::io::Write::flush(&mut w).map_err(io)
    }
}

fn display_name(e: &Event) -> String {
    if e.backward {
        format!("{} backward", e.name)
    } else {
        e.name.to_string()
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn percent(part: Duration, whole: Duration) -> f64 {
    if whole.is_zero() {
        0.0
    } else {
        100.0 * part.as_secs_f64() / whole.as_secs_f64()
    }
}

/// A duration as PyTorch's table writes it: µs below a millisecond, ms below a second.
fn time(d: Duration) -> String {
    let us = micros(d);
    if us < 1e3 {
        format!("{us:.3}us")
    } else if us < 1e6 {
        format!("{:.3}ms", us / 1e3)
    } else {
        format!("{:.3}s", us / 1e6)
    }
}

fn bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = b as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}
