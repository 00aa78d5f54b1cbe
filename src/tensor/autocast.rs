//! Autocast's state (per thread) and the hooks at the top of each listed op that pick
//! its compute dtype. Part of the tensor layer, because tensor ops call the hooks;
//! the public face, and the lists of which op runs in which dtype, are [`crate::amp`].

use crate::{DType, Error, Result, Tensor};
use std::cell::Cell;
use std::marker::PhantomData;

thread_local! {
    /// The autocast dtype of this thread; `None` when autocast is off.
    static AUTOCAST: Cell<Option<DType>> = const { Cell::new(None) };
}

/// While it lives, autocast on this thread is in the state its constructor set; on
/// drop the previous state comes back (so guards nest). Returned by [`autocast`] and
/// [`autocast_off`]. Not `Send`: the state is per thread.
#[must_use = "autocast is in effect only while the guard lives"]
#[derive(Debug)]
pub struct AutocastGuard {
    previous: Option<DType>,
    _not_send: PhantomData<*const ()>,
}

impl AutocastGuard {
    fn set(state: Option<DType>) -> AutocastGuard {
        AutocastGuard {
            previous: AUTOCAST.with(|a| a.replace(state)),
            _not_send: PhantomData,
        }
    }
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        AUTOCAST.with(|a| a.set(self.previous));
    }
}

/// Turns autocast on for this thread with `dtype` (BF16 or F16, the lower-precision
/// types `torch.autocast` accepts) until the returned guard is dropped, like
/// `with torch.autocast(device, dtype=dtype):`. Any other dtype is an `Err` naming
/// `dtype`, and autocast stays as it was. See [`kiln::amp`](crate::amp) for
/// which ops run in which dtype.
///
/// ```
/// use kiln::{DType, Device, Tensor};
/// # fn main() -> kiln::Result<()> {
/// let x = Tensor::randn(&[2, 3], DType::F32, &Device::Cpu)?;
/// let w = Tensor::randn(&[3, 4], DType::F32, &Device::Cpu)?;
/// {
///     let _ac = kiln::autocast(DType::BF16)?;
///     assert_eq!(x.matmul(&w)?.dtype(), DType::BF16);
/// }
/// assert_eq!(x.matmul(&w)?.dtype(), DType::F32);
/// # Ok(())
/// # }
/// ```
pub fn autocast(dtype: DType) -> Result<AutocastGuard> {
    match dtype {
        DType::BF16 | DType::F16 => Ok(AutocastGuard::set(Some(dtype))),
        other => Err(Error::arg(
            "dtype",
            format!("autocast takes BF16 or F16, got {other:?}"),
        )),
    }
}

/// Turns autocast off for this thread until the returned guard is dropped, like
/// `torch.autocast(device, enabled=False)` inside an autocast region.
pub fn autocast_off() -> AutocastGuard {
    AutocastGuard::set(None)
}

/// True while an [`autocast`] guard (and no later [`autocast_off`] guard) is alive on
/// this thread (`torch.is_autocast_enabled()`).
pub fn is_autocast_enabled() -> bool {
    autocast_dtype().is_some()
}

/// The dtype autocast lowers to on this thread, `None` when autocast is off.
pub fn autocast_dtype() -> Option<DType> {
    AUTOCAST.with(Cell::get)
}

/// How an op chooses its compute dtype under autocast.
#[derive(Clone, Copy)]
enum Policy {
    /// The autocast dtype.
    Lower,
    /// F32; the result keeps that dtype.
    F32,
    /// F32, with the result cast back to the first input's dtype.
    F32KeepDType,
    /// The widest floating-point dtype of the inputs.
    Promote,
}

/// `t` cast to `to`: floats only, F64 only to F64 (PyTorch's autocast never lowers
/// it), and no copy when `t` already has `to`.
fn cast(t: &Tensor, to: DType) -> Result<Tensor> {
    let from = t.dtype();
    let eligible = from.is_float() && (from != DType::F64 || to == DType::F64);
    if eligible && from != to {
        t.to_dtype(to)
    } else {
        Ok(t.clone())
    }
}

/// The widest float dtype among `ts` (F16 with BF16 is F32, as PyTorch promotes).
fn widest<'a>(ts: impl Iterator<Item = &'a Tensor>) -> Option<DType> {
    fn rank(d: DType) -> u8 {
        match d {
            DType::F64 => 3,
            DType::F32 => 2,
            _ => 1,
        }
    }
    ts.map(Tensor::dtype)
        .filter(|d| d.is_float())
        .reduce(|a, b| match (a, b) {
            (a, b) if a == b => a,
            (a, b) if rank(a) != rank(b) => {
                if rank(a) > rank(b) {
                    a
                } else {
                    b
                }
            }
            _ => DType::F32, // F16 with BF16
        })
}

/// The autocast dispatch of one op: `None` when autocast is off on this thread (the
/// op then runs as written). Otherwise the floating-point tensors of `args` and
/// `opts` are cast by `policy`, and `op` runs on them with autocast off.
fn dispatch<const N: usize, const M: usize>(
    policy: Policy,
    args: [&Tensor; N],
    opts: [Option<&Tensor>; M],
    op: impl FnOnce([&Tensor; N], [Option<&Tensor>; M]) -> Result<Tensor>,
) -> Option<Result<Tensor>> {
    let dtype = autocast_dtype()?;
    let run = || {
        let to = match policy {
            Policy::Lower => dtype,
            Policy::F32 | Policy::F32KeepDType => DType::F32,
            // With no float input nothing is cast, whatever `to` is.
            Policy::Promote => widest(args.iter().copied().chain(opts.iter().flatten().copied()))
                .unwrap_or(DType::F32),
        };
        let cast_args = args
            .map(|t| cast(t, to))
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
        let cast_opts = opts
            .map(|t| t.map(|t| cast(t, to)).transpose())
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
        let _off = autocast_off();
        let out = op(
            std::array::from_fn(|i| &cast_args[i]),
            std::array::from_fn(|i| cast_opts[i].as_ref()),
        )?;
        match (policy, args.first()) {
            (Policy::F32KeepDType, Some(first)) => cast(&out, first.dtype()),
            _ => Ok(out),
        }
    };
    Some(run())
}

/// The hook of an op on autocast's lower-precision list (matmul, linear, conv): see
/// [`dispatch`].
pub(crate) fn lower<const N: usize, const M: usize>(
    args: [&Tensor; N],
    opts: [Option<&Tensor>; M],
    op: impl FnOnce([&Tensor; N], [Option<&Tensor>; M]) -> Result<Tensor>,
) -> Option<Result<Tensor>> {
    dispatch(Policy::Lower, args, opts, op)
}

/// The hook of an op on autocast's f32 list (softmax, losses, reductions, exp, log).
pub(crate) fn fp32<const N: usize, const M: usize>(
    args: [&Tensor; N],
    opts: [Option<&Tensor>; M],
    op: impl FnOnce([&Tensor; N], [Option<&Tensor>; M]) -> Result<Tensor>,
) -> Option<Result<Tensor>> {
    dispatch(Policy::F32, args, opts, op)
}

/// The hook of an op that computes in f32 and returns its first input's dtype
/// (batch norm, as cuDNN does under PyTorch's CUDA autocast).
pub(crate) fn fp32_keep_dtype<const N: usize, const M: usize>(
    args: [&Tensor; N],
    opts: [Option<&Tensor>; M],
    op: impl FnOnce([&Tensor; N], [Option<&Tensor>; M]) -> Result<Tensor>,
) -> Option<Result<Tensor>> {
    dispatch(Policy::F32KeepDType, args, opts, op)
}

/// The hook of an op that runs in the widest float dtype of its inputs (binary ops).
pub(crate) fn promote<const N: usize, const M: usize>(
    args: [&Tensor; N],
    opts: [Option<&Tensor>; M],
    op: impl FnOnce([&Tensor; N], [Option<&Tensor>; M]) -> Result<Tensor>,
) -> Option<Result<Tensor>> {
    dispatch(Policy::Promote, args, opts, op)
}
