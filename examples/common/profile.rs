//! `--profile` of the training examples: a few steps after warm-up under
//! `kiln::profiler`, the table of the top ops, and a Chrome trace. Included with
//! `#[path]`; not an example itself.

use kiln::profiler::Profiler;
use kiln::{Result, Tensor};

/// Training steps profiled.
pub const STEPS: usize = 3;

/// Runs `step` (one training step, returning its loss) [`STEPS`] times under the
/// profiler, prints the 20 ops with the largest CPU total, and writes the Chrome trace to
/// the temporary directory as `<name>-trace.json`, printing its path. Each step's loss
/// is read, so a CUDA step's work has finished inside the session.
pub fn profile(name: &str, mut step: impl FnMut() -> Result<Tensor>) -> Result<()> {
    let prof = Profiler::start()?;
    for _ in 0..STEPS {
        step()?.item::<f32>()?;
    }
    let report = prof.stop()?;
    println!("{STEPS} profiled steps:\n{}", report.table(20));
    let path = std::env::temp_dir().join(format!("{name}-trace.json"));
    report.export_chrome_trace(&path)?;
    println!(
        "Chrome trace: {} (chrome://tracing or https://ui.perfetto.dev)",
        path.display()
    );
    Ok(())
}
