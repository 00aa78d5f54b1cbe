//! A profiler for whole training steps, like `torch.profiler`.
//!
//! ```no_run
//! # fn main() -> kiln::Result<()> {
//! let prof = kiln::profiler::Profiler::start()?;
//! /* ... a few training steps ... */
//! let report = prof.stop()?;
//! println!("{}", report.table(20));
//! report.export_chrome_trace("trace.json")?;
//! # Ok(()) }
//! ```
//!
//! While a [`Profiler`] runs, every op is timed on the CPU from its call to its return,
//! under the name autograd records it by (`linear`, `conv2d`, `matmul`, …), with its
//! inputs' shapes, dtype and device and the thread it ran on; each gradient op of
//! `backward` is timed in autograd's walk as "`name` backward". Ops called inside another
//! (`linear` calls `matmul` where no fused GEMM applies) are nested rows, as in PyTorch:
//! an op's CPU total includes them, its self CPU time does not. Kernel launches (CUDA
//! device) and allocator traffic (the CPU buffer pool and the CUDA caching allocator)
//! are counted in all and for the innermost op that caused them (a cuBLASLt call counts
//! as one launch). Ops that autograd never records (comparisons, `argmax`, the
//! optimizers' fused in-place steps) have no row of their own: their time is in the
//! enclosing op's self time, or in no op.
//!
//! The CUDA column of PyTorch's table (times from CUDA events) is not reported: the
//! times here are host times, which on a GPU measure launch overhead, not kernel time.
//!
//! Off, the cost is one relaxed atomic load per op, allocation and launch.

mod record;
mod report;

pub(crate) use record::{alloc, backward_op, free, launch, op, Input};
pub use report::{MemoryTraffic, OpStats, Report};

use crate::{Error, Result};

/// A running profiling session: [`Profiler::start`] it, run the steps, [`Profiler::stop`]
/// it for the [`Report`]. One runs at a time in a process; it records the ops of every
/// thread. Dropping it without `stop` ends the session and discards what it recorded.
#[derive(Debug)]
#[must_use = "the session records until `stop` is called"]
pub struct Profiler {
    _private: (),
}

impl Profiler {
    /// Starts recording every op, kernel launch and allocation of the process.
    ///
    /// Errors when a profiler is already running.
    pub fn start() -> Result<Profiler> {
        if record::begin() {
            Ok(Profiler { _private: () })
        } else {
            Err(Error::arg(
                "Profiler::start",
                "a profiler is already running; stop it first",
            ))
        }
    }

    /// Stops recording and returns what was recorded. Ops still running on other
    /// threads when it stops are left out.
    pub fn stop(self) -> Result<Report> {
        let (recorded, totals) = record::finish().ok_or_else(|| {
            Error::arg("Profiler::stop", "the profiling session has already ended")
        })?;
        Ok(Report::new(recorded.events, totals))
    }
}

/// Ends the session (after `stop` there is none left, and this does nothing).
impl Drop for Profiler {
    fn drop(&mut self) {
        record::finish();
    }
}
