//! Activation checkpointing: trade compute for memory by recomputing a block's
//! activations during `backward` instead of keeping them from the forward pass.

use crate::autograd::{self, is_grad_enabled};
use crate::tensor::autocast::{autocast, autocast_dtype, autocast_off};
use crate::{rng, Result, Tensor};
use std::cell::Cell;

thread_local! {
    static RECOMPUTING: Cell<bool> = const { Cell::new(false) };
}

/// True while a checkpointed block runs again during backward: ops with side effects
/// (batch norm's running statistics) skip them, as the forward pass did them once.
pub(crate) fn is_recomputing() -> bool {
    RECOMPUTING.get()
}

/// Runs `f(x)` keeping none of its activations: only `x` (and `f`) are saved, and
/// `backward` runs `f` again, with a graph, to get the gradients of `x` and of every
/// parameter `f` uses (PyTorch's `torch.utils.checkpoint.checkpoint`).
///
/// The recomputation replays the forward exactly: the random generator is set back
/// to where the forward found it (dropout draws the same masks; PyTorch's
/// `preserve_rng_state`) and then restored to where `backward` had it, and autocast is
/// as it was in the forward. So the gradients equal those of `f(x)` without
/// checkpointing, bit for bit. Parameters the block reaches are accumulated like any
/// other leaf, and count as reached for the optimizer's unregistered-parameter check.
///
/// `f` runs again during `backward`, so it owns what it uses: a closure over an
/// `Arc` of the block, say. It should reach the rest of the graph only through `x`
/// and leaves (parameters): a tensor computed outside with a graph of its own would
/// be differentiated twice.
///
/// Peak memory: the forward builds the block's graph once to learn whether anything
/// in it requires grad (so frozen blocks record nothing, and a block whose input
/// needs no gradient still trains its parameters), then frees it when `f` returns.
/// Under [`crate::no_grad`] this is just `f(x)`.
///
/// ```
/// use kiln::prelude::*;
/// use std::sync::Arc;
/// # fn main() -> kiln::Result<()> {
/// let dev = Device::Cpu;
/// let block = Arc::new(nn::Linear::new(4, 4, &dev)?);
/// let x = Tensor::randn(&[2, 4], DType::F32, &dev)?;
/// let b = Arc::clone(&block);
/// let y = kiln::utils::checkpoint(move |x| b.forward(x)?.relu(), &x)?;
/// y.sum_all()?.backward()?;
/// assert!(block.weight.tensor().grad().is_some());
/// # Ok(())
/// # }
/// ```
pub fn checkpoint<F>(f: F, x: &Tensor) -> Result<Tensor>
where
    F: Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static,
{
    let _op = crate::profiler::op("checkpoint", &[x]);
    if !is_grad_enabled() {
        return f(x);
    }
    let forward = Replay {
        rng: rng::state(),
        autocast: autocast_dtype(),
    };
    let input = x.detach();
    let out = f(&input)?;
    if !x.requires_grad_flag() && !out.requires_grad_flag() {
        return Ok(out);
    }
    let out = out.detach();
    let x_needs_grad = x.requires_grad_flag();
    Ok(autograd::attach(out, "checkpoint", &[x], move |_, grad| {
        let leaf = if x_needs_grad {
            input.detach().requires_grad()
        } else {
            input.detach()
        };
        forward.run(|| {
            let y = f(&leaf)?;
            if y.requires_grad_flag() {
                autograd::backward_from(&y, grad.clone(), false)?;
            }
            Ok(vec![leaf.grad()])
        })
    }))
}

/// What the forward pass ran under, to run it again the same way.
#[derive(Clone, Copy)]
struct Replay {
    rng: (u64, u64),
    autocast: Option<crate::DType>,
}

impl Replay {
    /// Runs `body` with a graph, the forward's generator state and autocast; then puts
    /// the generator back where it was (on error too).
    fn run<T>(&self, body: impl FnOnce() -> Result<T>) -> Result<T> {
        let (seed, offset) = rng::state();
        rng::set_state(self.rng.0, self.rng.1);
        let outer = RECOMPUTING.replace(true);
        let result = (|| {
            let _grad = autograd::enable_grad();
            let _autocast = match self.autocast {
                Some(dtype) => autocast(dtype)?,
                None => autocast_off(),
            };
            body()
        })();
        RECOMPUTING.set(outer);
        rng::set_state(seed, offset);
        result
    }
}
