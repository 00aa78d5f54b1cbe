//! Reverse-mode automatic differentiation over a dynamic graph.
//!
//! Each op that has an input requiring grad records a `Node`: its inputs and a
//! closure that maps the output's gradient to the inputs' gradients. The closures
//! are written with ordinary tensor ops, so backward runs on whatever device the
//! tensors live on. `backward` walks the graph in reverse topological order and
//! accumulates into the `.grad` of every leaf it reaches, like PyTorch.

mod gradcheck;
pub(crate) mod hooks;

pub use gradcheck::{gradcheck, GradcheckOpts};

use crate::tensor::TensorId;
use crate::{Error, Result, Tensor};
use parking_lot::Mutex;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};

/// Maps (output, gradient of the output) to one optional gradient per input.
pub(crate) type BackwardFn =
    Box<dyn Fn(&Tensor, &Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync>;

/// One recorded op of the graph.
pub(crate) struct Node {
    pub(crate) name: &'static str,
    pub(crate) inputs: Vec<Tensor>,
    /// The gradient closure (holding what it saved from the forward pass); `None`
    /// once a `backward` that did not retain the graph went through this node.
    backward: Mutex<Option<BackwardFn>>,
    /// For a slice of its one input (`narrow`), where: `backward` adds the output's
    /// gradient into that region of the input's gradient in place, instead of the
    /// closure's input-sized zeros around it. T slices of one tensor (an RNN's steps,
    /// `split`, `chunk`) then cost O(T) memory traffic, not O(T²).
    region: Option<Region>,
}

/// `input.narrow(dim, start, len)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Region {
    pub(crate) dim: usize,
    pub(crate) start: usize,
    pub(crate) len: usize,
}

thread_local! {
    static NO_GRAD_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// While a guard lives, ops on this thread record no graph. Returned by [`no_grad`].
#[must_use = "gradients are disabled only while the guard lives"]
pub struct NoGradGuard {
    _not_send: std::marker::PhantomData<*const ()>,
}

/// Disables graph recording on this thread until the returned guard is dropped.
pub fn no_grad() -> NoGradGuard {
    NO_GRAD_DEPTH.with(|d| d.set(d.get() + 1));
    NoGradGuard {
        _not_send: std::marker::PhantomData,
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        NO_GRAD_DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// True unless a [`NoGradGuard`] is alive on this thread.
pub fn is_grad_enabled() -> bool {
    NO_GRAD_DEPTH.with(|d| d.get() == 0)
}

/// While it lives, ops on this thread record a graph even inside [`no_grad`]
/// (PyTorch's `enable_grad`): activation checkpointing recomputes its block with a
/// graph during `backward`, which otherwise records nothing.
pub(crate) struct EnableGradGuard {
    outer_depth: usize,
    _not_send: std::marker::PhantomData<*const ()>,
}

pub(crate) fn enable_grad() -> EnableGradGuard {
    EnableGradGuard {
        outer_depth: NO_GRAD_DEPTH.replace(0),
        _not_send: std::marker::PhantomData,
    }
}

impl Drop for EnableGradGuard {
    fn drop(&mut self) {
        NO_GRAD_DEPTH.set(self.outer_depth);
    }
}

/// Records `out = op(inputs)` in the graph when grad is enabled and an input needs it.
pub(crate) fn record(
    out: Tensor,
    name: &'static str,
    inputs: &[&Tensor],
    backward: impl Fn(&Tensor, &Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
) -> Tensor {
    if !is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad_flag()) {
        return out;
    }
    attach(out, name, inputs, backward)
}

/// Records `out = op(inputs)` whatever the inputs need: for an op whose closure
/// reaches leaves other than its inputs (activation checkpointing's parameters).
pub(crate) fn attach(
    out: Tensor,
    name: &'static str,
    inputs: &[&Tensor],
    backward: impl Fn(&Tensor, &Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
) -> Tensor {
    let inputs = inputs.iter().map(|&t| t.clone()).collect();
    out.with_grad_fn(Node {
        name,
        inputs,
        backward: Mutex::new(Some(Box::new(backward))),
        region: None,
    })
}

/// Records `out = input.narrow(region)`: [`record`] with the region, which `backward`
/// uses to accumulate in place (`dense` is the closure's answer, for everything else
/// that calls node closures).
pub(crate) fn record_region(
    out: Tensor,
    input: &Tensor,
    region: Region,
    dense: impl Fn(&Tensor, &Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
) -> Tensor {
    if !is_grad_enabled() || !input.requires_grad_flag() {
        return out;
    }
    out.with_grad_fn(Node {
        name: "narrow",
        inputs: vec![input.clone()],
        backward: Mutex::new(Some(Box::new(dense))),
        region: Some(region),
    })
}

thread_local! {
    /// Id and shape of every parameter leaf the last `backward` on this thread reached.
    /// Per thread, because a training loop calls `backward` and `step` on one thread:
    /// a process-wide record let another thread's backward (parallel tests, several
    /// models trained at once) replace it between the two, hiding a real unregistered
    /// parameter or reporting another model's as one.
    static LAST_BACKWARD_PARAMETERS: RefCell<Vec<(TensorId, Vec<usize>)>> =
        const { RefCell::new(Vec::new()) };
    /// How many `backward` calls are running on this thread: a checkpointed block's
    /// backward runs inside another, and adds its parameters to the outer one's.
    static BACKWARD_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Err when the last `backward` reached parameters whose ids are not in `held` (an
/// optimizer's parameters).
pub(crate) fn check_unregistered_parameters(
    held: impl IntoIterator<Item = TensorId>,
) -> Result<()> {
    let held: HashSet<TensorId> = held.into_iter().collect();
    let shapes: Vec<Vec<usize>> = LAST_BACKWARD_PARAMETERS.with_borrow(|reached| {
        reached
            .iter()
            .filter(|(id, _)| !held.contains(id))
            .map(|(_, shape)| shape.clone())
            .collect()
    });
    if shapes.is_empty() {
        Ok(())
    } else {
        Err(Error::UnregisteredParameters { shapes })
    }
}

/// Computes the gradient of the scalar `root` and accumulates it into every leaf.
/// Unless `retain_graph`, the graph's gradient closures (and the tensors they saved)
/// are released afterwards, and a later `backward` through any of its nodes is
/// [`Error::GraphReleased`], as in PyTorch; that error comes before any leaf changes.
pub(crate) fn backward(root: &Tensor, retain_graph: bool) -> Result<()> {
    if root.numel() != 1 {
        return Err(Error::NotScalar {
            op: "backward",
            shape: root.shape().to_vec(),
        });
    }
    let seed = Tensor::ones(root.shape(), root.dtype(), &root.device())?;
    backward_from(root, seed, retain_graph)
}

/// [`backward`] from a `root` of any shape whose gradient is `seed` (PyTorch's
/// `torch.autograd.backward(root, seed)`).
pub(crate) fn backward_from(root: &Tensor, seed: Tensor, retain_graph: bool) -> Result<()> {
    let _autocast_off = crate::tensor::autocast::autocast_off(); // each gradient op runs in its forward op's dtype
    if !root.requires_grad_flag() {
        return Err(Error::NoGraph);
    }
    if seed.shape() != root.shape() {
        return Err(Error::shape(
            "backward",
            format!(
                "the gradient of a root of shape {:?} has shape {:?}",
                root.shape(),
                seed.shape()
            ),
        ));
    }
    let _guard = no_grad();
    let order = reverse_topological_order(root);
    if let Some(node) = order
        .iter()
        .filter_map(|t| t.grad_fn())
        .find(|node| node.backward.lock().is_none())
    {
        return Err(Error::GraphReleased { op: node.name });
    }
    let mut reached_parameters = Vec::new();
    let mut grads: HashMap<TensorId, Tensor> = HashMap::new();
    grads.insert(root.id(), seed);
    if BACKWARD_DEPTH.get() == 0 {
        LAST_BACKWARD_PARAMETERS.with_borrow_mut(Vec::clear);
    }
    BACKWARD_DEPTH.set(BACKWARD_DEPTH.get() + 1);
    let walked = walk(&order, grads, &mut reached_parameters);
    BACKWARD_DEPTH.set(BACKWARD_DEPTH.get() - 1);
    // The hooks' end (DDP waits for its all-reduces there) comes with the outermost
    // backward, before the graph is released; the walk's own error comes first.
    let ended = match BACKWARD_DEPTH.get() {
        0 => hooks::backward_end(walked.is_ok()),
        _ => Ok(()),
    };
    walked?;
    ended?;
    LAST_BACKWARD_PARAMETERS.with_borrow_mut(|last| last.append(&mut reached_parameters));
    if !retain_graph {
        for node in order.iter().filter_map(|t| t.grad_fn()) {
            *node.backward.lock() = None;
        }
    }
    Ok(())
}

/// Sends the gradients in `grads` through `order` (reverse topological), into the
/// leaves; records the parameters reached.
fn walk(
    order: &[Tensor],
    mut grads: HashMap<TensorId, Tensor>,
    reached_parameters: &mut Vec<(TensorId, Vec<usize>)>,
) -> Result<()> {
    // Gradients this walk allocated itself (sums, and the buffers that regions are
    // added into): only these may be written in place. A closure's result may be
    // shared (add's backward hands the same tensor to both inputs).
    let mut owned: HashSet<TensorId> = HashSet::new();
    let mut uses = leaf_uses(order);
    for t in order {
        let Some(grad) = grads.remove(&t.id()) else {
            continue;
        };
        let Some(node) = t.grad_fn() else {
            settle_leaf(t, grad, reached_parameters)?;
            continue;
        };
        if let Some(region) = node.region {
            if node.backward.lock().is_none() {
                return Err(Error::GraphReleased { op: node.name });
            }
            let input = &node.inputs[0];
            if !input.requires_grad_flag() {
                continue;
            }
            let id = input.id();
            let acc = match grads.remove(&id) {
                Some(prev) if owned.contains(&id) => prev,
                Some(prev) => prev.contiguous_copy()?,
                None => Tensor::zeros(input.shape(), grad.dtype(), &grad.device())?,
            };
            let _op = crate::profiler::backward_op(node.name, &grad);
            acc.add_into_region(region, &grad)?;
            owned.insert(id);
            grads.insert(id, acc);
            settle_used_leaves(node, &mut uses, &mut grads, reached_parameters)?;
            continue;
        }
        let input_grads = match &*node.backward.lock() {
            Some(backward) => {
                let _op = crate::profiler::backward_op(node.name, &grad);
                backward(&t.detach(), &grad)?
            }
            // Released by another thread's backward since the check above.
            None => return Err(Error::GraphReleased { op: node.name }),
        };
        for (input, g) in node.inputs.iter().zip(input_grads) {
            let Some(g) = g else { continue };
            if !input.requires_grad_flag() {
                continue;
            }
            if g.shape() != input.shape() {
                return Err(Error::shape(
                    "backward",
                    format!(
                        "{} produced a gradient of shape {:?} for an input of shape {:?}",
                        node.name,
                        g.shape(),
                        input.shape()
                    ),
                ));
            }
            let sum = match grads.remove(&input.id()) {
                Some(prev) => {
                    owned.insert(input.id());
                    prev.add(&g)?
                }
                None => {
                    owned.remove(&input.id());
                    g
                }
            };
            grads.insert(input.id(), sum);
        }
        settle_used_leaves(node, &mut uses, &mut grads, reached_parameters)?;
    }
    Ok(())
}

/// How many uses (node inputs) each leaf of `order` has: a leaf's gradient is final
/// once that many nodes have run.
fn leaf_uses(order: &[Tensor]) -> HashMap<TensorId, usize> {
    let mut uses = HashMap::new();
    for node in order.iter().filter_map(|t| t.grad_fn()) {
        for input in &node.inputs {
            if input.requires_grad_flag() && input.grad_fn().is_none() {
                *uses.entry(input.id()).or_insert(0) += 1;
            }
        }
    }
    uses
}

/// After `node` ran: each leaf input whose last use it was gets its gradient now, not
/// at its place in the order (the DFS order puts every leaf near the end), so the
/// gradient-ready hooks hear of the last layers' parameters while the first layers'
/// backward is still to run (DDP's overlap).
fn settle_used_leaves(
    node: &Node,
    uses: &mut HashMap<TensorId, usize>,
    grads: &mut HashMap<TensorId, Tensor>,
    reached_parameters: &mut Vec<(TensorId, Vec<usize>)>,
) -> Result<()> {
    for input in &node.inputs {
        let Some(n) = uses.get_mut(&input.id()) else {
            continue;
        };
        *n -= 1;
        if *n == 0 {
            if let Some(grad) = grads.remove(&input.id()) {
                settle_leaf(input, grad, reached_parameters)?;
            }
        }
    }
    Ok(())
}

/// Accumulates a leaf's final gradient of this walk and tells its hooks.
fn settle_leaf(
    leaf: &Tensor,
    grad: Tensor,
    reached_parameters: &mut Vec<(TensorId, Vec<usize>)>,
) -> Result<()> {
    accumulate_leaf(leaf, grad)?;
    if leaf.is_parameter() {
        reached_parameters.push((leaf.id(), leaf.shape().to_vec()));
    }
    hooks::leaf_ready(leaf)
}

fn accumulate_leaf(leaf: &Tensor, grad: Tensor) -> Result<()> {
    let total = match leaf.grad() {
        Some(prev) => prev.add(&grad)?,
        None => grad.contiguous()?,
    };
    leaf.set_grad(Some(total.detach()));
    Ok(())
}

/// Every tensor that `root` depends on through the graph (leaves included), each
/// after all the tensors that use it.
fn reverse_topological_order(root: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut visited = HashSet::new();
    // Iterative post-order DFS: (tensor, children already pushed).
    let mut stack = vec![(root.clone(), false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !visited.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        if let Some(node) = t.grad_fn() {
            for input in node.inputs.iter().filter(|i| i.requires_grad_flag()) {
                if !visited.contains(&input.id()) {
                    stack.push((input.clone(), false));
                }
            }
        }
    }
    order.reverse();
    order
}
