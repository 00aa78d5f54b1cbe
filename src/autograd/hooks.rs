//! Gradient-ready hooks (PyTorch's post-accumulate-grad hooks and the reducer's
//! end-of-backward callback): what `DistributedDataParallel` starts its all-reduces
//! from while `backward` still runs.
//!
//! The walk reaches each leaf once per `backward`, after every gradient flowing into
//! it has been summed (reverse topological order), so the moment its `.grad` was
//! accumulated is the moment it is final for that `backward`. A hook registered for a
//! set of leaves hears of each of them then, and of the end of the outermost
//! `backward` that reached any of them. With no hook registered, the cost per leaf is
//! one atomic load.

use crate::tensor::TensorId;
use crate::{Result, Tensor};
use parking_lot::RwLock;
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// What a registered hook is told.
pub(crate) trait GradHook: Send + Sync {
    /// `leaf`'s gradient for this `backward` has been accumulated into its `.grad`;
    /// an `Err` ends the `backward` with it.
    fn grad_ready(&self, leaf: &Tensor) -> Result<()>;

    /// The outermost `backward` that reached this hook's leaves ended: `completed`
    /// when its walk succeeded (the `Err` then becomes `backward`'s), else the walk's
    /// own `Err` is returned and this one ignored.
    fn backward_end(&self, completed: bool) -> Result<()>;
}

/// One registration: the leaves it watches and the hook.
struct Registered {
    key: u64,
    leaves: HashSet<TensorId>,
    hook: Arc<dyn GradHook>,
}

/// The number of registrations: the walk's fast path when it is zero.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static NEXT_KEY: AtomicU64 = AtomicU64::new(0);
static HOOKS: RwLock<Vec<Registered>> = RwLock::new(Vec::new());

thread_local! {
    /// The hooks that heard of a leaf in the `backward` running on this thread.
    static FIRED: RefCell<Vec<(u64, Arc<dyn GradHook>)>> = const { RefCell::new(Vec::new()) };
}

/// Keeps a hook registered; dropping it unregisters the hook.
pub(crate) struct HookHandle {
    key: u64,
}

impl Drop for HookHandle {
    fn drop(&mut self) {
        HOOKS.write().retain(|r| r.key != self.key);
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Registers `hook` for `leaves` until the handle is dropped.
pub(crate) fn register(
    leaves: impl IntoIterator<Item = TensorId>,
    hook: Arc<dyn GradHook>,
) -> HookHandle {
    let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    HOOKS.write().push(Registered {
        key,
        leaves: leaves.into_iter().collect(),
        hook,
    });
    ACTIVE.fetch_add(1, Ordering::SeqCst);
    HookHandle { key }
}

/// Tells the hooks watching `leaf` that its gradient is final.
pub(super) fn leaf_ready(leaf: &Tensor) -> Result<()> {
    if ACTIVE.load(Ordering::Relaxed) == 0 {
        return Ok(());
    }
    let id = leaf.id();
    let watching: Vec<(u64, Arc<dyn GradHook>)> = HOOKS
        .read()
        .iter()
        .filter(|r| r.leaves.contains(&id))
        .map(|r| (r.key, r.hook.clone()))
        .collect();
    for (key, hook) in watching {
        FIRED.with_borrow_mut(|fired| {
            if !fired.iter().any(|(k, _)| *k == key) {
                fired.push((key, hook.clone()));
            }
        });
        hook.grad_ready(leaf)?;
    }
    Ok(())
}

/// Tells the hooks that heard of a leaf in this thread's outermost `backward` that
/// it ended (`completed` when its walk succeeded); the first hook's `Err`.
pub(super) fn backward_end(completed: bool) -> Result<()> {
    let fired = FIRED.take();
    let mut first = Ok(());
    for (_, hook) in fired {
        let r = hook.backward_end(completed);
        if first.is_ok() {
            first = r;
        }
    }
    first
}
