//! The module traits: [`Module`] (structure: parameters, buffers, children, mode,
//! checkpoints) and [`Forward`] (computation), and [`ModuleField`], which lets
//! `#[derive(Module)]` learn a struct's structure from its field types.

use super::checkpoint;
use super::parameter::{Buffer, Mode, Parameter};
use crate::{DType, Device, Error, Result, Tensor, TensorId};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

/// One direct member of a module, as reported by [`Module::visit`].
#[derive(Clone, Copy)]
pub enum Member<'a> {
    /// A learnable parameter; its name is part of the checkpoint key.
    Parameter(&'a Parameter),
    /// A non-learnable tensor saved in checkpoints (running statistics).
    Buffer(&'a Buffer),
    /// A submodule; its name prefixes its members' names (`body.0.weight`).
    Child(&'a dyn Module),
    /// The module's own train/eval flag (its name is not used).
    Mode(&'a Mode),
}

/// The structure of a neural-network module: PyTorch's `nn.Module` minus `forward`.
///
/// An implementation only lists its direct members in [`Module::visit`];
/// `#[derive(nn::Module)]` writes that method from the struct's fields. Everything
/// else — names, parameter lists, train/eval, checkpoints — is derived from it.
///
/// Names are PyTorch's: a member's name, prefixed by the names of the children that
/// lead to it, joined with dots (`heads.1.fc.bias`).
///
/// Mode: [`Module::train`] / [`Module::eval`] set the module's own [`Mode`] (if it
/// has one), the mode slot of each of its [`Parameter`] and [`Buffer`] values, and
/// the mode of every descendant. [`Module::is_training`] reports the module's own
/// `Mode` when it has one; otherwise the mode of its first child (in declaration
/// order) that reports one, recursively; otherwise the slot of its first parameter
/// or buffer; and `true` when there is none of these. `#[derive(Module)]` refuses a
/// struct that could have none of these (see the derive's docs), unless it is
/// marked `#[module(stateless)]`, so a derived module's `is_training()` follows
/// `train()`/`eval()` called on it or on any ancestor.
///
/// The trait is object-safe: `Box<dyn Module>`, `&dyn Module` and [`Layer`] objects
/// work. `save` and `load` take a generic path and so need a sized receiver; call
/// them on a `Box<dyn Module>` or a `&dyn Module` (both implement `Module`) or use
/// [`save`](super::save) / [`load`](super::load).
pub trait Module {
    /// Calls `visitor` once per direct member (parameters, buffers, children, the
    /// mode flag) with the member's name, in a fixed order (declaration order).
    fn visit<'a>(&'a self, visitor: &mut dyn FnMut(&str, Member<'a>));

    /// Every parameter of this module and its descendants with its dotted name. A
    /// parameter reachable twice (shared weights) is listed once, under its first name.
    fn named_parameters(&self) -> Vec<(String, Parameter)> {
        let mut seen = HashSet::<TensorId>::new();
        collect_entries(self)
            .into_iter()
            .filter_map(|(name, entry)| match entry {
                Entry::Parameter(p) if seen.insert(p.id()) => Some((name, p)),
                _ => None,
            })
            .collect()
    }

    /// Every parameter of this module and its descendants, each once: what an
    /// optimizer is built from.
    fn parameters(&self) -> Vec<Parameter> {
        self.named_parameters()
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    /// Every buffer of this module and its descendants with its dotted name, each once.
    fn named_buffers(&self) -> Vec<(String, Buffer)> {
        let mut seen = HashSet::<TensorId>::new();
        collect_entries(self)
            .into_iter()
            .filter_map(|(name, entry)| match entry {
                Entry::Buffer(b) if seen.insert(b.id()) => Some((name, b)),
                _ => None,
            })
            .collect()
    }

    /// Every buffer of this module and its descendants, each once.
    fn buffers(&self) -> Vec<Buffer> {
        self.named_buffers().into_iter().map(|(_, b)| b).collect()
    }

    /// The direct children with their names (a `Vec` field `heads` gives `heads.0`, …).
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        let mut out = Vec::new();
        self.visit(&mut |name, member| {
            if let Member::Child(child) = member {
                out.push((name.to_owned(), child));
            }
        });
        out
    }

    /// Sets training mode on this module and every descendant.
    fn train(&self) {
        self.set_training(true);
    }

    /// Sets eval mode on this module and every descendant.
    fn eval(&self) {
        self.set_training(false);
    }

    /// Sets training (`true`) or eval (`false`) mode on this module and every descendant.
    fn set_training(&self, training: bool) {
        self.visit(&mut |_, member| match member {
            Member::Mode(mode) => mode.set_training(training),
            Member::Child(child) => child.set_training(training),
            Member::Parameter(p) => p.holder_mode().set_training(training),
            Member::Buffer(b) => b.holder_mode().set_training(training),
        });
    }

    /// True in training mode: the rule is in the [trait docs](Module).
    fn is_training(&self) -> bool {
        mode_flag(self).unwrap_or(true)
    }

    /// Clears the gradient of every parameter (PyTorch's `zero_grad(set_to_none=True)`).
    fn zero_grad(&self) {
        for p in self.parameters() {
            p.zero_grad();
        }
    }

    /// Moves every parameter and buffer of this module and its descendants to
    /// `device`, in place (PyTorch's `module.to(device)`), with the gradients they
    /// have accumulated.
    ///
    /// In place means that every handle sees the move: the [`Parameter`]s an
    /// optimizer was built from before the call are the same tensors, so the
    /// optimizer keeps working. Its state (momentum, Adam's moments) created on the
    /// old device follows the parameter on the next `step`. Tensors sharing a
    /// parameter's memory (its views, `state_dict` entries) move with it.
    ///
    /// All-or-nothing: every tensor is copied to `device` first, and only when all
    /// copies succeeded are they swapped in, so on an error (a device that is not
    /// usable, out of memory) nothing has moved.
    fn to_device(&self, device: &Device) -> Result<()> {
        crate::tensor::relocate_in_place(&module_tensors(self), Some(device), &|d| d)
    }

    /// Casts every float parameter and buffer of this module and its descendants to
    /// `dtype` in place (PyTorch's `module.to(dtype)`), gradients included; integer
    /// buffers (BatchNorm's `num_batches_tracked`) keep their dtype. `dtype` must be
    /// a float type (an `Err` naming `dtype` otherwise, and nothing changes). Each
    /// tensor stays on its device. All-or-nothing and in place like
    /// [`Module::to_device`].
    fn to_dtype(&self, dtype: DType) -> Result<()> {
        if !dtype.is_float() {
            return Err(Error::arg(
                "dtype",
                format!(
                    "Module::to_dtype casts parameters, which must stay float: {dtype:?} is not                      a float dtype (F32, F64, F16 or BF16)"
                ),
            ));
        }
        crate::tensor::relocate_in_place(&module_tensors(self), None, &|d| {
            if d.is_float() {
                dtype
            } else {
                d
            }
        })
    }

    /// The module's name in [`nn::summary`](super::summary): the struct's name
    /// (`#[derive(Module)]` writes it; the default is the last segment of the
    /// Rust type name), like PyTorch's `_get_name()`.
    fn type_name(&self) -> String {
        short_type_name(std::any::type_name::<Self>())
    }

    /// The layer's arguments as [`nn::summary`](super::summary) prints them between
    /// the parentheses, like PyTorch's `extra_repr` (e.g. `in_features=4,
    /// out_features=2, bias=True`); empty by default.
    fn extra_repr(&self) -> String {
        String::new()
    }

    /// Every parameter and buffer under its checkpoint name, in declaration order,
    /// as detached tensors that share the module's storage. Shared tensors appear
    /// under each of their names, as in PyTorch.
    fn state_dict(&self) -> Vec<(String, Tensor)> {
        collect_entries(self)
            .into_iter()
            .map(|(name, entry)| (name, entry.tensor().detach()))
            .collect()
    }

    /// Copies `state` into this module's parameters and buffers, strictly and
    /// atomically: any missing, unexpected, mis-shaped or wrong-dtype entry returns
    /// [`Error::Checkpoint`](crate::Error::Checkpoint) naming each of them, and then
    /// nothing has changed. Tensors may be on any device.
    fn load_state_dict(&self, state: &[(String, Tensor)]) -> Result<()> {
        checkpoint::load_entries(self, "state_dict", state)
    }

    /// Writes [`Module::state_dict`] to `path` as safetensors (the temporary file is
    /// renamed into place, so an existing file is never left half-written).
    fn save<P: AsRef<Path>>(&self, path: P) -> Result<()>
    where
        Self: Sized,
    {
        checkpoint::save(self, path.as_ref())
    }

    /// Reads a safetensors checkpoint (kiln's or PyTorch's `save_file(state_dict)`),
    /// or a `torch.save(model.state_dict())` file (`.pth`, `.pt`, `.bin`: see
    /// [`load_tensors`](crate::load_tensors) for what it accepts), into this module,
    /// strictly and atomically like [`Module::load_state_dict`]; an unreadable or
    /// corrupt file is an `Err` too, and leaves the module unchanged.
    fn load<P: AsRef<Path>>(&self, path: P) -> Result<()>
    where
        Self: Sized,
    {
        checkpoint::load(self, path.as_ref())
    }
}

/// The computation of a module: `y = module.forward(&x)?`.
pub trait Forward {
    /// Applies the module to `x`.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;
}

/// A module that can run forward: what [`Sequential`](super::Sequential) holds as
/// `Box<dyn Layer>`. Implemented for every `Module + Forward + Send + Sync` type; a
/// `&dyn Layer` converts to `&dyn Module` and `&dyn Forward`.
pub trait Layer: Module + Forward + Send + Sync {}

impl<T: Module + Forward + Send + Sync + ?Sized> Layer for T {}

macro_rules! forward_through_pointer {
    ($($ptr:ty),*) => {$(
        impl<M: Module + ?Sized> Module for $ptr {
            fn visit<'a>(&'a self, visitor: &mut dyn FnMut(&str, Member<'a>)) {
                (**self).visit(visitor)
            }
            fn type_name(&self) -> String {
                (**self).type_name()
            }
            fn extra_repr(&self) -> String {
                (**self).extra_repr()
            }
        }
        impl<M: Forward + ?Sized> Forward for $ptr {
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                (**self).forward(x)
            }
        }
    )*};
}
forward_through_pointer!(Box<M>, Arc<M>, &M);

/// How a field of a `#[derive(Module)]` struct reports what it holds.
///
/// Implemented for [`Parameter`] (a parameter), [`Buffer`] (a buffer), [`Mode`] (the
/// module's own flag), every [`Module`] (a child, including `Box<dyn Layer>`),
/// `Vec<T>` and `[T; N]` (elements named `name.0`, `name.1`, …), `Option<T>`
/// (`name` when `Some`, nothing when `None`), and plain configuration values
/// (integers, floats, `bool`, `String`, `(usize, usize)`, `Device`, `DType`,
/// `PhantomData`), which hold nothing. Mark other fields `#[module(skip)]`.
///
/// A plain tensor field is rejected, since it is unclear whether it should be
/// learned, saved or neither:
///
/// ```compile_fail
/// use kiln::{nn, Tensor};
/// #[derive(nn::Module)]
/// struct Bad { table: Tensor }
/// ```
///
/// ```
/// use kiln::{nn, Tensor};
/// #[derive(nn::Module)]
/// struct Good { table: nn::Buffer, #[module(skip)] scratch: Tensor }
/// ```
///
/// The derive accepts `#[module(skip)]` on fields and `#[module(stateless)]` /
/// `#[module(extra_repr)]` on the struct (see the derive's docs), and only structs:
///
/// ```compile_fail
/// use kiln::nn;
/// #[derive(nn::Module)]
/// struct Bad { #[module(rename = "x")] act: nn::ReLU, mode: nn::Mode }
/// ```
///
/// A module needs somewhere to keep its train/eval mode, so that `is_training()`
/// follows `eval()`: a struct of mode-less layers alone is refused (the error says
/// to add `mode: nn::Mode`) unless it declares that it has no mode to follow:
///
/// ```compile_fail
/// use kiln::nn;
/// #[derive(nn::Module)]
/// struct Bad { act: nn::ReLU, scale: f64 }
/// ```
///
/// ```
/// use kiln::nn::{self, Module};
/// #[derive(nn::Module)]
/// struct Good { act: nn::ReLU, mode: nn::Mode }
/// #[derive(nn::Module)]
/// #[module(stateless)]
/// struct AlwaysTheSame { act: nn::ReLU }
/// let good = Good { act: nn::ReLU, mode: nn::Mode::default() };
/// good.eval();
/// assert!(!good.is_training());
/// ```
///
/// ```compile_fail
/// use kiln::nn;
/// #[derive(nn::Module)]
/// enum Bad { A(nn::ReLU) }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a module, Parameter, Buffer or Mode, so #[derive(Module)] cannot visit it",
    label = "a field of this type",
    note = "mark the field #[module(skip)] to leave it out, wrap learnable tensors in nn::Parameter and saved state in nn::Buffer, or implement nn::Module for the type"
)]
pub trait ModuleField {
    /// Calls `visitor` for what this field holds, named `name`.
    fn visit_field<'a>(&'a self, name: &str, visitor: &mut dyn FnMut(&str, Member<'a>));
}

impl<M: Module> ModuleField for M {
    fn visit_field<'a>(&'a self, name: &str, visitor: &mut dyn FnMut(&str, Member<'a>)) {
        visitor(name, Member::Child(self));
    }
}

impl ModuleField for Parameter {
    fn visit_field<'a>(&'a self, name: &str, visitor: &mut dyn FnMut(&str, Member<'a>)) {
        visitor(name, Member::Parameter(self));
    }
}

impl ModuleField for Buffer {
    fn visit_field<'a>(&'a self, name: &str, visitor: &mut dyn FnMut(&str, Member<'a>)) {
        visitor(name, Member::Buffer(self));
    }
}

impl ModuleField for Mode {
    fn visit_field<'a>(&'a self, name: &str, visitor: &mut dyn FnMut(&str, Member<'a>)) {
        visitor(name, Member::Mode(self));
    }
}

impl<T: ModuleField> ModuleField for Vec<T> {
    fn visit_field<'a>(&'a self, name: &str, visitor: &mut dyn FnMut(&str, Member<'a>)) {
        self.as_slice().visit_field(name, visitor);
    }
}

impl<T: ModuleField, const N: usize> ModuleField for [T; N] {
    fn visit_field<'a>(&'a self, name: &str, visitor: &mut dyn FnMut(&str, Member<'a>)) {
        self.as_slice().visit_field(name, visitor);
    }
}

impl<T: ModuleField> ModuleField for [T] {
    fn visit_field<'a>(&'a self, name: &str, visitor: &mut dyn FnMut(&str, Member<'a>)) {
        for (i, item) in self.iter().enumerate() {
            item.visit_field(&format!("{name}.{i}"), visitor);
        }
    }
}

impl<T: ModuleField> ModuleField for Option<T> {
    fn visit_field<'a>(&'a self, name: &str, visitor: &mut dyn FnMut(&str, Member<'a>)) {
        if let Some(inner) = self {
            inner.visit_field(name, visitor);
        }
    }
}

macro_rules! holds_nothing {
    ($($t:ty),*) => {$(
        impl ModuleField for $t {
            fn visit_field<'a>(&'a self, _: &str, _: &mut dyn FnMut(&str, Member<'a>)) {}
        }
    )*};
}
holds_nothing!(
    bool,
    u8,
    u16,
    u32,
    u64,
    usize,
    i8,
    i16,
    i32,
    i64,
    isize,
    f32,
    f64,
    String,
    crate::Device,
    crate::DType,
    (usize, usize)
);

impl<T: ?Sized> ModuleField for std::marker::PhantomData<T> {
    fn visit_field<'a>(&'a self, _: &str, _: &mut dyn FnMut(&str, Member<'a>)) {}
}

/// `kiln::nn::layers::linear::Linear` → `Linear`; generic arguments dropped.
fn short_type_name(full: &str) -> String {
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base).to_owned()
}

/// Every parameter and buffer tensor of `module` (shared ones once per name).
fn module_tensors<M: Module + ?Sized>(module: &M) -> Vec<Tensor> {
    collect_entries(module)
        .into_iter()
        .map(|(_, entry)| entry.tensor().clone())
        .collect()
}

/// A parameter or buffer found while walking a module tree.
pub(crate) enum Entry {
    Parameter(Parameter),
    Buffer(Buffer),
}

impl Entry {
    pub(crate) fn tensor(&self) -> &Tensor {
        match self {
            Entry::Parameter(p) => p,
            Entry::Buffer(b) => b,
        }
    }
}

/// Every parameter and buffer of `module` and its descendants with its dotted name,
/// in visiting order, duplicates (shared tensors) included.
pub(crate) fn collect_entries<M: Module + ?Sized>(module: &M) -> Vec<(String, Entry)> {
    let mut out = Vec::new();
    collect_into(module, "", &mut out);
    out
}

fn collect_into<M: Module + ?Sized>(module: &M, prefix: &str, out: &mut Vec<(String, Entry)>) {
    module.visit(&mut |name, member| {
        let full = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        };
        match member {
            Member::Parameter(p) => out.push((full, Entry::Parameter(p.clone()))),
            Member::Buffer(b) => out.push((full, Entry::Buffer(b.clone()))),
            Member::Child(child) => collect_into(child, &full, out),
            Member::Mode(_) => {}
        }
    });
}

/// The module's own mode, else its first child's that has one, else the mode slot
/// of its first parameter or buffer, else `None`.
fn mode_flag<M: Module + ?Sized>(module: &M) -> Option<bool> {
    let (mut own, mut from_child, mut from_slot) = (None, None, None);
    module.visit(&mut |_, member| match member {
        Member::Mode(mode) if own.is_none() => own = Some(mode.is_training()),
        Member::Child(child) if from_child.is_none() => from_child = mode_flag(child),
        Member::Parameter(p) if from_slot.is_none() => {
            from_slot = Some(p.holder_mode().is_training())
        }
        Member::Buffer(b) if from_slot.is_none() => from_slot = Some(b.holder_mode().is_training()),
        _ => {}
    });
    own.or(from_child).or(from_slot)
}
