//! The hooks that ops, autograd's walk, the allocators and the kernel launcher call.
//!
//! Each hook starts with one relaxed load of [`ACTIVE`] and does nothing more while no
//! [`Profiler`](super::Profiler) runs: no allocation, no lock, no clock read. While one
//! runs, an op's scope pushes a frame on its thread's stack (so the op's allocations
//! and launches go to it, and its time to its parent's child time) and, when it ends,
//! appends an [`Event`] to the session's list.

use crate::{DType, Device};
use parking_lot::Mutex;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// True while a profiler runs: the one load the hot path pays.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Which profiler session runs (0: none yet); a scope opened under another session
/// than the one it closes under is dropped, not reported.
static SESSION: AtomicU64 = AtomicU64::new(0);
/// The running session's start and its events (locked only while profiling).
static RECORDED: Mutex<Option<Recorded>> = Mutex::new(None);
/// Allocator traffic of the running session, all threads together.
static TRAFFIC: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
const ALLOCS: usize = 0;
const BYTES_ALLOCATED: usize = 1;
const FREES: usize = 2;
const BYTES_FREED: usize = 3;
/// Kernel launches of the running session, all threads together.
static LAUNCHES: AtomicU64 = AtomicU64::new(0);
/// The next small thread number to hand out (trace `tid`s are small integers).
static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The scopes open on this thread, innermost last.
    static STACK: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
    /// This thread's number in the trace (0: not yet given one).
    static THREAD: Cell<u64> = const { Cell::new(0) };
}

/// What the profiler notes of an op's input (implemented by `Tensor`, which sits in a
/// layer above: the allocators and the launcher below it call the hooks too).
pub(crate) trait Input {
    /// The input's shape.
    fn shape(&self) -> &[usize];
    /// Its element type.
    fn dtype(&self) -> DType;
    /// Its device.
    fn device(&self) -> Device;
}

/// One finished op: what the report aggregates and the trace shows.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) name: &'static str,
    /// The op's gradient, timed in autograd's walk (shown as "`name` backward").
    pub(crate) backward: bool,
    pub(crate) thread: u64,
    /// Start, from the session's start.
    pub(crate) start: Duration,
    pub(crate) cpu: Duration,
    /// `cpu` less the time of the scopes nested in it on the same thread.
    pub(crate) self_cpu: Duration,
    pub(crate) launches: u64,
    pub(crate) allocs: u64,
    pub(crate) bytes_allocated: u64,
    /// The inputs' shapes; dtype and device of the first input.
    pub(crate) shapes: Vec<Vec<usize>>,
    pub(crate) dtype: Option<DType>,
    pub(crate) device: Option<Device>,
}

/// A session's events and counters, taken by [`finish`].
pub(crate) struct Recorded {
    pub(crate) epoch: Instant,
    pub(crate) events: Vec<Event>,
}

/// Totals of a finished session besides its events.
pub(crate) struct Totals {
    pub(crate) wall: Duration,
    pub(crate) traffic: [u64; 4],
    pub(crate) launches: u64,
}

/// An open scope on a thread's stack.
struct Frame {
    session: u64,
    start: Instant,
    child: Duration,
    event: Event,
}

/// Starts a session; false when one runs already.
pub(crate) fn begin() -> bool {
    let mut recorded = RECORDED.lock();
    if recorded.is_some() {
        return false;
    }
    for counter in &TRAFFIC {
        counter.store(0, Relaxed);
    }
    LAUNCHES.store(0, Relaxed);
    SESSION.fetch_add(1, Relaxed);
    *recorded = Some(Recorded {
        epoch: Instant::now(),
        events: Vec::new(),
    });
    ACTIVE.store(true, Relaxed);
    true
}

/// Ends the running session and hands over what it recorded (`None` when none runs).
pub(crate) fn finish() -> Option<(Recorded, Totals)> {
    let mut recorded = RECORDED.lock();
    ACTIVE.store(false, Relaxed);
    let taken = recorded.take()?;
    let totals = Totals {
        wall: taken.epoch.elapsed(),
        traffic: TRAFFIC.each_ref().map(|c| c.load(Relaxed)),
        launches: LAUNCHES.load(Relaxed),
    };
    Some((taken, totals))
}

/// Times an op from its creation to its drop (the op's name as autograd records it).
#[must_use = "the op is timed until the scope is dropped"]
pub(crate) struct OpScope {
    open: bool,
}

/// Opens the scope of forward op `name` on `inputs`; free while no profiler runs.
#[inline]
pub(crate) fn op<T: Input>(name: &'static str, inputs: &[&T]) -> OpScope {
    OpScope {
        open: ACTIVE.load(Relaxed) && open(name, false, inputs),
    }
}

/// Opens the scope of the gradient of op `name` (autograd's walk).
#[inline]
pub(crate) fn backward_op<T: Input>(name: &'static str, grad: &T) -> OpScope {
    OpScope {
        open: ACTIVE.load(Relaxed) && open(name, true, &[grad]),
    }
}

impl Drop for OpScope {
    #[inline]
    fn drop(&mut self) {
        if self.open {
            close();
        }
    }
}

#[cold]
#[inline(never)]
fn open<T: Input>(name: &'static str, backward: bool, inputs: &[&T]) -> bool {
    let first = inputs.first();
    let event = Event {
        name,
        backward,
        thread: thread_number(),
        start: Duration::ZERO,
        cpu: Duration::ZERO,
        self_cpu: Duration::ZERO,
        launches: 0,
        allocs: 0,
        bytes_allocated: 0,
        shapes: inputs.iter().map(|t| t.shape().to_vec()).collect(),
        dtype: first.map(|t| t.dtype()),
        device: first.map(|t| t.device()),
    };
    STACK.with_borrow_mut(|stack| {
        stack.push(Frame {
            session: SESSION.load(Relaxed),
            start: Instant::now(),
            child: Duration::ZERO,
            event,
        })
    });
    true
}

#[cold]
#[inline(never)]
fn close() {
    let end = Instant::now();
    let Some(mut frame) = STACK.with_borrow_mut(|stack| {
        let frame = stack.pop()?;
        let cpu = end.duration_since(frame.start);
        if let Some(parent) = stack.last_mut() {
            parent.child += cpu;
        }
        Some(frame)
    }) else {
        return;
    };
    let mut recorded = RECORDED.lock();
    let Some(session) = recorded.as_mut() else {
        return;
    };
    if frame.session != SESSION.load(Relaxed) {
        return;
    }
    let event = &mut frame.event;
    event.start = frame.start.saturating_duration_since(session.epoch);
    event.cpu = end.duration_since(frame.start);
    event.self_cpu = event.cpu.saturating_sub(frame.child);
    session.events.push(frame.event);
}

/// This thread's small number, given on first use.
fn thread_number() -> u64 {
    THREAD.with(|n| {
        if n.get() == 0 {
            n.set(NEXT_THREAD.fetch_add(1, Relaxed));
        }
        n.get()
    })
}

/// Counts an allocation of `bytes` (CPU pool or CUDA caching allocator).
#[inline]
pub(crate) fn alloc(bytes: usize) {
    if ACTIVE.load(Relaxed) {
        count_alloc(bytes as u64);
    }
}

/// Counts a buffer of `bytes` going back to its allocator.
#[inline]
pub(crate) fn free(bytes: usize) {
    if ACTIVE.load(Relaxed) {
        TRAFFIC[FREES].fetch_add(1, Relaxed);
        TRAFFIC[BYTES_FREED].fetch_add(bytes as u64, Relaxed);
    }
}

/// Counts a kernel launch, for the innermost op open on this thread.
#[inline]
pub(crate) fn launch() {
    if ACTIVE.load(Relaxed) {
        count_launch();
    }
}

#[cold]
#[inline(never)]
fn count_alloc(bytes: u64) {
    TRAFFIC[ALLOCS].fetch_add(1, Relaxed);
    TRAFFIC[BYTES_ALLOCATED].fetch_add(bytes, Relaxed);
    with_innermost(|e| {
        e.allocs += 1;
        e.bytes_allocated += bytes;
    });
}

#[cold]
#[inline(never)]
fn count_launch() {
    LAUNCHES.fetch_add(1, Relaxed);
    with_innermost(|e| e.launches += 1);
}

/// Applies `f` to the innermost open op's event on this thread, if any. `try_`: a
/// buffer freed while the thread's locals are torn down must not panic.
fn with_innermost(f: impl FnOnce(&mut Event)) {
    let _ = STACK.try_with(|stack| {
        if let Ok(mut stack) = stack.try_borrow_mut() {
            if let Some(frame) = stack.last_mut() {
                f(&mut frame.event);
            }
        }
    });
}
