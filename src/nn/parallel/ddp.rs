//! [`DistributedDataParallel`]: PyTorch's DDP wrapper.

use super::reducer::{Config, Reducer};
use crate::autograd::hooks::{self, HookHandle};
use crate::distributed::{ProcessGroup, Work};
use crate::nn::{Forward, Member, Module};
use crate::{Device, Error, Result, Tensor};
use std::sync::Arc;

/// PyTorch's default bucket cap, `bucket_cap_mb=25`.
const DEFAULT_BUCKET_MB: f64 = 25.0;
/// PyTorch's first bucket (`dist._DEFAULT_FIRST_BUCKET_BYTES`): small, so the first
/// all-reduce starts early in the backward.
const FIRST_BUCKET_BYTES: usize = 1 << 20;

/// Data-parallel training over a [`ProcessGroup`] (PyTorch's
/// `nn.parallel.DistributedDataParallel`): every rank holds the same model and trains
/// on its own share of each batch, and the gradients are averaged over the ranks
/// during `backward`, so every rank's optimizer takes the same step.
///
/// * [`DistributedDataParallel::new`] broadcasts rank 0's parameters and buffers, so
///   every rank starts from the same weights.
/// * The gradients go into buckets (25 MB, the first 1 MB; parameters in reverse
///   registration order) and each bucket's all-reduce (average) starts as soon as its
///   last gradient is final in `backward`, overlapping the rest of the backward pass;
///   `backward` returns once every bucket is averaged into the parameters' `.grad`.
/// * [`DistributedDataParallel::no_sync`] accumulates gradients locally; the next
///   backward outside it averages the accumulated gradients.
/// * A parameter that got no gradient in a backward is an `Err` naming it, unless
///   [`DistributedDataParallel::find_unused_parameters`] is on (its gradient then
///   counts as zero on this rank).
/// * In training mode each `forward` first broadcasts rank 0's buffers (batch-norm
///   statistics), as PyTorch's `broadcast_buffers=True` default does.
///
/// It is a [`Module`] whose one child is the wrapped model, named `module`:
/// `state_dict` keys carry PyTorch's `module.` prefix; `ddp.module().state_dict()`
/// has none.
pub struct DistributedDataParallel<M> {
    module: M,
    pg: ProcessGroup,
    cfg: Config,
    broadcast_buffers: bool,
    reducer: Arc<Reducer>,
    _hook: HookHandle,
}

impl<M: Module> DistributedDataParallel<M> {
    /// Wraps `module`, whose parameters and buffers must be on the group's device
    /// (`pg.device()`), and broadcasts rank 0's parameters and buffers to every rank.
    /// An `Err` naming `module` for a model elsewhere (a CPU model: NCCL moves device
    /// memory only).
    pub fn new(module: M, pg: &ProcessGroup) -> Result<Self> {
        let dev = pg.device();
        let tensors = module_tensors(&module);
        if let Some((name, t)) = tensors.iter().find(|(_, t)| t.device() != dev) {
            let why = match t.device() {
                Device::Cpu => {
                    "NCCL all-reduces device memory only; move the model with \
                                `net.to_device(&pg.device())` first"
                }
                _ => "DDP runs each rank's model on the rank's own device, pg.device()",
            };
            return Err(Error::arg(
                "module",
                format!(
                    "DistributedDataParallel of a model whose `{name}` is on {:?}, not on the \
                     group's {dev:?}: {why}",
                    t.device()
                ),
            ));
        }
        broadcast_from_root(pg, tensors.iter().map(|(_, t)| t))?;
        let cfg = Config {
            bucket_cap: mb_to_bytes(DEFAULT_BUCKET_MB),
            first_bucket_cap: FIRST_BUCKET_BYTES,
            find_unused: false,
        };
        let (reducer, hook) = reducer_for(&module, pg, cfg);
        Ok(DistributedDataParallel {
            module,
            pg: pg.clone(),
            cfg,
            broadcast_buffers: true,
            reducer,
            _hook: hook,
        })
    }

    /// PyTorch's `find_unused_parameters`: when on, a parameter that got no gradient
    /// in a backward counts as zeros in the average (and keeps no gradient when no
    /// rank had one); when off (the default) it makes `backward` an `Err` naming it.
    pub fn find_unused_parameters(self, on: bool) -> Self {
        let cfg = Config {
            find_unused: on,
            ..self.cfg
        };
        self.with_config(cfg)
    }

    /// PyTorch's `bucket_cap_mb`: the size of the gradient buckets in MiB (default
    /// 25; the first bucket is at most 1 MiB). Smaller buckets start communicating
    /// earlier and are more collectives. An `Err` naming `mb` unless it is positive
    /// and finite.
    pub fn bucket_cap_mb(self, mb: f64) -> Result<Self> {
        if !(mb.is_finite() && mb > 0.0) {
            return Err(Error::arg(
                "mb",
                format!("a bucket cap of {mb} MiB; it must be positive and finite"),
            ));
        }
        let bucket_cap = mb_to_bytes(mb);
        let cfg = Config {
            bucket_cap,
            first_bucket_cap: FIRST_BUCKET_BYTES.min(bucket_cap),
            ..self.cfg
        };
        Ok(self.with_config(cfg))
    }

    /// PyTorch's `broadcast_buffers` (default `true`): whether each training-mode
    /// `forward` first copies rank 0's buffers to every rank.
    pub fn broadcast_buffers(mut self, on: bool) -> Self {
        self.broadcast_buffers = on;
        self
    }

    /// The wrapped model.
    pub fn module(&self) -> &M {
        &self.module
    }

    /// The parameter names of each gradient bucket, in the order their all-reduces are
    /// issued (the same on every rank).
    pub fn bucket_names(&self) -> Vec<Vec<String>> {
        self.reducer.bucket_names()
    }

    /// While the returned guard lives, `backward` accumulates gradients locally
    /// without communicating (PyTorch's `no_sync()`); the first backward after it
    /// averages the accumulated gradients.
    pub fn no_sync(&self) -> NoSyncGuard<'_> {
        self.reducer.set_sync(false);
        NoSyncGuard {
            reducer: &self.reducer,
        }
    }

    /// The same wrapper with the reducer rebuilt for `cfg`.
    fn with_config(self, cfg: Config) -> Self {
        let (reducer, hook) = reducer_for(&self.module, &self.pg, cfg);
        DistributedDataParallel {
            module: self.module,
            pg: self.pg,
            cfg,
            broadcast_buffers: self.broadcast_buffers,
            reducer,
            _hook: hook,
        }
    }
}

/// Communication stays off while it lives. Made by [`DistributedDataParallel::no_sync`].
#[must_use = "gradients skip the all-reduce only while the guard lives"]
pub struct NoSyncGuard<'a> {
    reducer: &'a Reducer,
}

impl Drop for NoSyncGuard<'_> {
    fn drop(&mut self) {
        self.reducer.set_sync(true);
    }
}

impl<M: Module> Module for DistributedDataParallel<M> {
    fn visit<'a>(&'a self, visitor: &mut dyn FnMut(&str, Member<'a>)) {
        visitor("module", Member::Child(&self.module));
    }

    fn type_name(&self) -> String {
        "DistributedDataParallel".into()
    }
}

impl<M: Module + Forward> Forward for DistributedDataParallel<M> {
    /// Broadcasts rank 0's buffers (in training mode, unless turned off), then runs
    /// the wrapped model.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.broadcast_buffers && self.module.is_training() && self.pg.world_size() > 1 {
            let buffers = self.module.buffers();
            broadcast_from_root(&self.pg, buffers.iter().map(|b| &**b))?;
        }
        self.module.forward(x)
    }
}

/// A reducer of `module`'s parameters, registered as their gradient-ready hook.
fn reducer_for<M: Module>(
    module: &M,
    pg: &ProcessGroup,
    cfg: Config,
) -> (Arc<Reducer>, HookHandle) {
    let reducer = Arc::new(Reducer::new(pg, module.named_parameters(), cfg));
    let hook = hooks::register(reducer.watched(), reducer.clone());
    (reducer, hook)
}

/// Every parameter and buffer of `module` with its name.
fn module_tensors<M: Module>(module: &M) -> Vec<(String, Tensor)> {
    let params = module.named_parameters().into_iter();
    let buffers = module.named_buffers().into_iter();
    params
        .map(|(n, p)| (n, p.tensor().clone()))
        .chain(buffers.map(|(n, b)| (n, (*b).clone())))
        .collect()
}

/// Overwrites each of `tensors` with rank 0's, all broadcasts in flight at once.
fn broadcast_from_root<'a>(
    pg: &ProcessGroup,
    tensors: impl Iterator<Item = &'a Tensor>,
) -> Result<()> {
    let mut pending: Vec<(Work, &Tensor, Tensor)> = Vec::new();
    for t in tensors {
        // A non-contiguous tensor is broadcast through a contiguous copy.
        let buf = match t.is_contiguous() {
            true => t.detach(),
            false => t.contiguous()?,
        };
        pending.push((pg.broadcast_async(&buf, 0)?, t, buf));
    }
    for (work, t, buf) in pending {
        work.wait()?;
        if !t.is_contiguous() {
            t.copy_(&buf)?;
        }
    }
    Ok(())
}

fn mb_to_bytes(mb: f64) -> usize {
    (mb * (1 << 20) as f64) as usize
}
