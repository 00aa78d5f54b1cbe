//! DDP's reducer: the parameters' gradients in buckets, each bucket all-reduced
//! (averaged) as soon as its last gradient is final during `backward`.
//!
//! Buckets hold parameters in reverse registration order (roughly the order backward
//! finishes them), cut at a byte cap (the first bucket's smaller, so communication
//! starts early) and at a change of dtype. The reducer is an autograd gradient-ready
//! hook ([`GradHook`]): each parameter whose gradient is final marks its slot; a bucket
//! whose slots are all marked is flattened into one tensor and its async all-reduce
//! enqueued — in bucket order only (a ready bucket waits for the ones before it), so
//! every rank issues the same collectives in the same order whatever order its
//! backward finished them in. At the end of the `backward` the reducer waits for every
//! bucket and sets each parameter's `.grad` to its view of the averaged bucket: the
//! gradients are averaged when `backward` returns (so gradient clipping and the
//! optimizer, whichever runs next, see them), and a failed collective is `backward`'s
//! `Err`.

use crate::autograd::hooks::GradHook;
use crate::distributed::{ProcessGroup, ReduceOp, Work};
use crate::nn::Parameter;
use crate::tensor::TensorId;
use crate::{DType, Error, Result, Tensor};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// How the reducer is set up (`DistributedDataParallel`'s options).
#[derive(Debug, Clone, Copy)]
pub(super) struct Config {
    /// The byte cap of every bucket but the first.
    pub(super) bucket_cap: usize,
    /// The byte cap of the first bucket.
    pub(super) first_bucket_cap: usize,
    /// Parameters without a gradient count as zeros instead of being an `Err`.
    pub(super) find_unused: bool,
}

/// The gradients of one module's parameters, bucketed and all-reduced during backward.
pub(super) struct Reducer {
    pg: ProcessGroup,
    /// Names and parameters, in registration order.
    names: Vec<String>,
    params: Vec<Parameter>,
    /// Each bucket's parameters (indices into `params`), in bucket order.
    buckets: Vec<Vec<usize>>,
    /// A parameter's index and bucket, by tensor id.
    slot: HashMap<TensorId, (usize, usize)>,
    find_unused: bool,
    /// False while a `no_sync` guard lives: gradients accumulate locally.
    sync: AtomicBool,
    state: Mutex<State>,
}

/// One backward's progress.
#[derive(Default)]
struct State {
    /// Per parameter: its gradient is final in this backward.
    ready: Vec<bool>,
    /// Per bucket: how many of its parameters are not ready yet.
    pending: Vec<usize>,
    /// The next bucket to enqueue.
    next: usize,
    /// The enqueued buckets: index, flattened gradients, the all-reduce.
    launched: Vec<(usize, Tensor, Work)>,
}

impl Reducer {
    /// A reducer of `named` (registration order) over `pg`.
    pub(super) fn new(pg: &ProcessGroup, named: Vec<(String, Parameter)>, cfg: Config) -> Self {
        let (names, params): (Vec<String>, Vec<Parameter>) = named.into_iter().unzip();
        let buckets = bucket_order(&params, &cfg);
        let mut slot = HashMap::new();
        for (b, bucket) in buckets.iter().enumerate() {
            for &i in bucket {
                slot.insert(params[i].id(), (i, b));
            }
        }
        let reducer = Reducer {
            pg: pg.clone(),
            names,
            params,
            buckets,
            slot,
            find_unused: cfg.find_unused,
            sync: AtomicBool::new(true),
            state: Mutex::new(State::default()),
        };
        reducer.reset(&mut reducer.state.lock());
        reducer
    }

    /// The ids of the parameters whose gradients are reduced: what the hook watches.
    pub(super) fn watched(&self) -> Vec<TensorId> {
        self.slot.keys().copied().collect()
    }

    /// The parameter names of each bucket, in bucket order.
    pub(super) fn bucket_names(&self) -> Vec<Vec<String>> {
        let name = |&i: &usize| self.names[i].clone();
        self.buckets
            .iter()
            .map(|b| b.iter().map(name).collect())
            .collect()
    }

    /// Turns communication on (`true`) or off (`false`, `no_sync`).
    pub(super) fn set_sync(&self, sync: bool) {
        self.sync.store(sync, Ordering::SeqCst);
    }

    /// Ready for the next backward.
    fn reset(&self, st: &mut State) {
        st.ready = vec![false; self.params.len()];
        st.pending = self.buckets.iter().map(Vec::len).collect();
        st.next = 0;
        st.launched.clear();
    }

    /// Enqueues every bucket, in order, whose parameters are all ready.
    fn launch_ready(&self, st: &mut State) -> Result<()> {
        while st.next < self.buckets.len() && st.pending[st.next] == 0 {
            let b = st.next;
            st.next += 1;
            let flat = self.flatten(b)?;
            let work = self.pg.all_reduce_async(&flat, ReduceOp::Avg)?;
            st.launched.push((b, flat, work));
        }
        Ok(())
    }

    /// Bucket `b`'s gradients as one flat tensor (zeros for a parameter without a
    /// gradient); with `find_unused`, followed by one flag per parameter, 1 where this
    /// rank has a gradient for it, whose average tells who has.
    fn flatten(&self, b: usize) -> Result<Tensor> {
        let bucket = &self.buckets[b];
        let first = &self.params[bucket[0]];
        let (dtype, dev) = (first.dtype(), first.device());
        let mut parts = Vec::with_capacity(bucket.len() + 1);
        let mut used = Vec::with_capacity(bucket.len());
        for &i in bucket {
            let p = &self.params[i];
            let grad = p.grad();
            used.push(if grad.is_some() { 1.0f32 } else { 0.0 });
            parts.push(match grad {
                Some(g) => g.reshape(&[p.numel()])?,
                None => Tensor::zeros(&[p.numel()], dtype, &dev)?,
            });
        }
        if self.find_unused {
            let n = used.len();
            let flags = Tensor::from_vec(used, &[n], &crate::Device::Cpu)?;
            parts.push(flags.to_dtype(dtype)?.to_device(&dev)?);
        }
        let refs: Vec<&Tensor> = parts.iter().collect();
        Tensor::cat(&refs, 0)
    }

    /// Waits for bucket `b`'s all-reduce and sets its parameters' gradients to their
    /// views of the averaged `flat` (those no rank had a gradient for keep none).
    fn finish_bucket(&self, b: usize, flat: &Tensor, work: Work) -> Result<()> {
        work.wait()?;
        let bucket = &self.buckets[b];
        let total: usize = bucket.iter().map(|&i| self.params[i].numel()).sum();
        let someone_has = match self.find_unused {
            true => flat
                .narrow(0, total, bucket.len())?
                .to_dtype(DType::F64)?
                .to_vec::<f64>()?
                .into_iter()
                .map(|f| f > 0.0)
                .collect(),
            false => vec![true; bucket.len()],
        };
        let mut offset = 0;
        for (&i, has) in bucket.iter().zip(someone_has) {
            let p = &self.params[i];
            if has {
                let grad = flat.narrow(0, offset, p.numel())?.reshape(p.shape())?;
                p.set_grad(Some(grad));
            }
            offset += p.numel();
        }
        Ok(())
    }

    /// The end of a synced backward: the `Err` naming parameters without a gradient
    /// (unless `find_unused`, which enqueues their buckets with zeros), then every
    /// bucket waited for and written back.
    fn finish(&self, st: &mut State, completed: bool) -> Result<()> {
        let unready: Vec<usize> = (0..self.params.len()).filter(|&i| !st.ready[i]).collect();
        let mut outcome = Ok(());
        if completed && !unready.is_empty() {
            if self.find_unused {
                st.pending.iter_mut().for_each(|n| *n = 0);
                outcome = self.launch_ready(st);
            } else {
                outcome = Err(self.unused_error(&unready));
            }
        }
        // Every enqueued bucket is waited for, whatever happened, so this rank's
        // collectives stay in step with the others'.
        for (b, flat, work) in std::mem::take(&mut st.launched) {
            let done = match outcome.is_ok() && completed {
                true => self.finish_bucket(b, &flat, work),
                false => work.wait(),
            };
            if outcome.is_ok() {
                outcome = done;
            }
        }
        outcome
    }

    fn unused_error(&self, unready: &[usize]) -> Error {
        let names: Vec<&str> = unready.iter().map(|&i| self.names[i].as_str()).collect();
        Error::Distributed {
            rank: self.pg.rank(),
            msg: format!(
                "DistributedDataParallel: {} parameter(s) got no gradient in this backward: {}. \
                 Check that forward uses them, or build the wrapper with \
                 `.find_unused_parameters(true)` to all-reduce zeros for them",
                names.len(),
                names.join(", ")
            ),
        }
    }
}

impl GradHook for Reducer {
    fn grad_ready(&self, leaf: &Tensor) -> Result<()> {
        if !self.sync.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(&(i, b)) = self.slot.get(&leaf.id()) else {
            return Ok(());
        };
        let mut st = self.state.lock();
        if std::mem::replace(&mut st.ready[i], true) {
            return Ok(());
        }
        st.pending[b] -= 1;
        self.launch_ready(&mut st)
    }

    fn backward_end(&self, completed: bool) -> Result<()> {
        let mut st = self.state.lock();
        let outcome = match self.sync.load(Ordering::SeqCst) {
            true => self.finish(&mut st, completed),
            false => Ok(()),
        };
        self.reset(&mut st);
        outcome
    }
}

/// The parameters in buckets: reverse registration order, a new bucket at a change of
/// dtype or when the next gradient would pass the cap (the first bucket's cap first).
fn bucket_order(params: &[Parameter], cfg: &Config) -> Vec<Vec<usize>> {
    let mut buckets: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0;
    for i in (0..params.len()).rev() {
        let p = &params[i];
        let size = p.numel() * p.dtype().size_in_bytes();
        let cap = match buckets.len() {
            1 => cfg.first_bucket_cap,
            _ => cfg.bucket_cap,
        };
        let fits = buckets
            .last()
            .is_some_and(|b| params[b[0]].dtype() == p.dtype() && bytes + size <= cap);
        if fits {
            buckets.last_mut().expect("checked").push(i);
            bytes += size;
        } else {
            buckets.push(vec![i]);
            bytes = size;
        }
    }
    buckets
}
