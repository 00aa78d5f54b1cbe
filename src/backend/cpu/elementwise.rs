//! Elementwise kernels over strided, broadcast operands.
//!
//! A [`Plan`] merges the dimensions that every operand walks contiguously, so most
//! calls become one tight loop over rows; rows are spread over threads when the
//! tensor is large.

use super::{BinaryOp, CmpOp, ElementwiseOps, UnaryOp};
use crate::backend::cpu::math::Float;
use crate::backend::cpu::{alloc, vectorized, Num, PARALLEL_THRESHOLD};
use crate::backend::CpuStorage;
use crate::shape::Layout;
use crate::{Error, Result};
use formulas::EluCoefs;
use rayon::prelude::*;
use std::mem::MaybeUninit;

#[path = "elementwise/formulas.rs"]
mod formulas;

impl ElementwiseOps for CpuStorage {
    fn unary(&self, op: UnaryOp, layout: &Layout) -> Result<CpuStorage> {
        let dtype = self.dtype();
        op.check_dtype(dtype)?;
        let (s, l) = self.widened(layout)?;
        let out = match s.as_ref() {
            CpuStorage::F32(v) => CpuStorage::F32(unary_float(v, &l, op)?),
            CpuStorage::F64(v) => CpuStorage::F64(unary_float(v, &l, op)?),
            CpuStorage::I64(v) => CpuStorage::I64(unary_int(v, &l, op)?),
            CpuStorage::U8(v) => CpuStorage::U8(unary_int(v, &l, op)?),
            CpuStorage::F16(_) | CpuStorage::BF16(_) => unreachable!("widened to f32"),
        };
        out.convert(dtype)
    }

    fn binary(
        &self,
        op: BinaryOp,
        ll: &Layout,
        rhs: &CpuStorage,
        rl: &Layout,
    ) -> Result<CpuStorage> {
        let dtype = self.dtype();
        op.check_dtype(dtype)?;
        let ((a, al), (b, bl)) = (self.widened(ll)?, rhs.widened(rl)?);
        let out = match (a.as_ref(), b.as_ref()) {
            (CpuStorage::F32(x), CpuStorage::F32(y)) if is_float_only(op) => {
                CpuStorage::F32(binary_float(x, &al, y, &bl, op)?)
            }
            (CpuStorage::F64(x), CpuStorage::F64(y)) if is_float_only(op) => {
                CpuStorage::F64(binary_float(x, &al, y, &bl, op)?)
            }
            (CpuStorage::F32(x), CpuStorage::F32(y)) => binary(x, &al, y, &bl, op)?,
            (CpuStorage::F64(x), CpuStorage::F64(y)) => binary(x, &al, y, &bl, op)?,
            (CpuStorage::I64(x), CpuStorage::I64(y)) => binary(x, &al, y, &bl, op)?,
            (CpuStorage::U8(x), CpuStorage::U8(y)) => binary(x, &al, y, &bl, op)?,
            _ => {
                return Err(Error::DTypeMismatch {
                    op: "binary",
                    expected: dtype,
                    got: rhs.dtype(),
                })
            }
        };
        out.convert(dtype)
    }

    fn compare(&self, op: CmpOp, ll: &Layout, rhs: &CpuStorage, rl: &Layout) -> Result<CpuStorage> {
        let ((a, al), (b, bl)) = (self.widened(ll)?, rhs.widened(rl)?);
        let out = match (a.as_ref(), b.as_ref()) {
            (CpuStorage::F32(x), CpuStorage::F32(y)) => compare(x, &al, y, &bl, op)?,
            (CpuStorage::F64(x), CpuStorage::F64(y)) => compare(x, &al, y, &bl, op)?,
            (CpuStorage::I64(x), CpuStorage::I64(y)) => compare(x, &al, y, &bl, op)?,
            (CpuStorage::U8(x), CpuStorage::U8(y)) => compare(x, &al, y, &bl, op)?,
            _ => {
                return Err(Error::DTypeMismatch {
                    op: "compare",
                    expected: self.dtype(),
                    got: rhs.dtype(),
                })
            }
        };
        Ok(CpuStorage::U8(out))
    }
}

/// Output elements per parallel task (64 KiB of f32): large enough that rayon's
/// per-task cost vanishes, small enough to balance the threads.
const TASK_LEN: usize = 1 << 14;

/// Operand walk for `N` layouts of the same (broadcast) shape.
struct Plan<const N: usize> {
    outer_shape: Vec<usize>,
    outer_strides: [Vec<usize>; N],
    offsets: [usize; N],
    inner: usize,
    inner_strides: [usize; N],
}

impl<const N: usize> Plan<N> {
    fn new(layouts: [&Layout; N]) -> Self {
        let shape = &layouts[0].shape;
        // Merge dims from the right: dim d joins the run on its right when every operand
        // steps over that run contiguously. Size-1 dims are dropped.
        let mut dims: Vec<(usize, [usize; N])> = Vec::new();
        for d in (0..shape.len()).rev() {
            if shape[d] == 1 {
                continue;
            }
            let strides: [usize; N] = std::array::from_fn(|k| layouts[k].strides[d]);
            match dims.last_mut() {
                Some((size, st)) if (0..N).all(|k| strides[k] == st[k] * *size) => {
                    *size *= shape[d]
                }
                _ => dims.push((shape[d], strides)),
            }
        }
        dims.reverse();
        let (inner, inner_strides) = dims.pop().unwrap_or((1, [0; N]));
        Plan {
            outer_shape: dims.iter().map(|d| d.0).collect(),
            outer_strides: std::array::from_fn(|k| dims.iter().map(|d| d.1[k]).collect()),
            offsets: std::array::from_fn(|k| layouts[k].offset),
            inner,
            inner_strides,
        }
    }

    /// Storage offset of each operand at the start of row `row`.
    fn row_base(&self, mut row: usize) -> [usize; N] {
        let mut base = self.offsets;
        for d in (0..self.outer_shape.len()).rev() {
            let i = row % self.outer_shape[d];
            row /= self.outer_shape[d];
            for (k, b) in base.iter_mut().enumerate() {
                *b += i * self.outer_strides[k][d];
            }
        }
        base
    }

    /// Fills a fresh output of `numel` elements: calls `fill(piece, bases)` for
    /// consecutive pieces of rows, `bases` being each operand's storage offset at the
    /// piece's first element. `fill` must write every element of its piece.
    ///
    /// Work is cut into ranges of [`TASK_LEN`] output elements, not into rows: a
    /// contiguous tensor merges into a single row, which must still spread over threads.
    /// The output is not zeroed first: that would be one more pass over memory, on
    /// one thread, for ops that are bound by memory traffic.
    fn run<U: Copy + Send + 'static>(
        &self,
        numel: usize,
        fill: impl Fn(&mut [MaybeUninit<U>], [usize; N]) + Sync,
    ) -> Result<Vec<U>> {
        let mut out = alloc::buffer(numel)?;
        let inner = self.inner;
        let task = |(t, chunk): (usize, &mut [MaybeUninit<U>])| {
            let start = t * TASK_LEN;
            let mut done = 0;
            while done < chunk.len() {
                let (row, col) = ((start + done) / inner, (start + done) % inner);
                let len = (inner - col).min(chunk.len() - done);
                let mut bases = self.row_base(row);
                for (b, s) in bases.iter_mut().zip(self.inner_strides) {
                    *b += col * s;
                }
                fill(&mut chunk[done..done + len], bases);
                done += len;
            }
        };
        let slots = &mut out.spare_capacity_mut()[..numel];
        if numel >= PARALLEL_THRESHOLD {
            slots.par_chunks_mut(TASK_LEN).enumerate().for_each(task);
        } else {
            // One task: `start` is 0 and the chunk is the whole output.
            task((0, slots));
        }
        // SAFETY: the capacity is at least `numel`, and the tasks above cover
        // slots[0..numel] exactly (chunks of one slice, each walked to its end in
        // pieces), with `fill` writing every element of every piece (Map1Row and
        // Map2Row write each slot of `out` once); U is Copy, so nothing needs dropping.
        unsafe { out.set_len(numel) };
        Ok(out)
    }
}

/// `f` on each element of `a` (at `al`), into a contiguous vector.
pub(crate) fn map1<T: Copy + Sync, U: Copy + Send + 'static>(
    a: &[T],
    al: &Layout,
    f: impl Fn(T) -> U + Sync,
) -> Result<Vec<U>> {
    // An empty view's strides may be saturated (see `contiguous_strides`): no plan.
    if al.numel() == 0 {
        return Ok(Vec::new());
    }
    let plan = Plan::new([al]);
    let [stride] = plan.inner_strides;
    plan.run(al.numel(), |out, [offset]| {
        vectorized(Map1Row {
            out,
            a,
            offset,
            stride,
            f: &f,
        })
    })
}

/// One piece of a row of [`map1`]: `out[j] = f(a[offset + j * stride])`.
struct Map1Row<'a, T, U, F> {
    out: &'a mut [MaybeUninit<U>],
    a: &'a [T],
    offset: usize,
    stride: usize,
    f: &'a F,
}

impl<T: Copy, U, F: Fn(T) -> U> pulp::WithSimd for Map1Row<'_, T, U, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Map1Row {
            out,
            a,
            offset,
            stride,
            f,
        } = self;
        if stride == 1 {
            let n = out.len();
            out.iter_mut()
                .zip(&a[offset..offset + n])
                .for_each(|(o, &x)| {
                    o.write(f(x));
                });
        } else {
            out.iter_mut().enumerate().for_each(|(j, o)| {
                o.write(f(a[offset + j * stride]));
            });
        }
    }
}

/// `f` on pairs of elements of `a` and `b` (layouts broadcast to one shape).
pub(crate) fn map2<T: Copy + Sync, U: Copy + Send + 'static>(
    a: &[T],
    al: &Layout,
    b: &[T],
    bl: &Layout,
    f: impl Fn(T, T) -> U + Sync,
) -> Result<Vec<U>> {
    if al.numel() == 0 {
        return Ok(Vec::new());
    }
    let plan = Plan::new([al, bl]);
    let strides = plan.inner_strides;
    plan.run(al.numel(), |out, offsets| {
        vectorized(Map2Row {
            out,
            a,
            b,
            offsets,
            strides,
            f: &f,
        })
    })
}

/// One piece of a row of [`map2`]:
/// `out[j] = f(a[offsets[0] + j * strides[0]], b[offsets[1] + j * strides[1]])`.
struct Map2Row<'a, T, U, F> {
    out: &'a mut [MaybeUninit<U>],
    a: &'a [T],
    b: &'a [T],
    offsets: [usize; 2],
    strides: [usize; 2],
    f: &'a F,
}

impl<T: Copy, U, F: Fn(T, T) -> U> pulp::WithSimd for Map2Row<'_, T, U, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Map2Row {
            out,
            a,
            b,
            offsets: [oa, ob],
            strides,
            f,
        } = self;
        let n = out.len();
        // The common stride patterns get loops the compiler can vectorize.
        match strides {
            [1, 1] => out
                .iter_mut()
                .zip(a[oa..oa + n].iter().zip(&b[ob..ob + n]))
                .for_each(|(o, (&x, &y))| {
                    o.write(f(x, y));
                }),
            [1, 0] => out.iter_mut().zip(&a[oa..oa + n]).for_each(|(o, &x)| {
                o.write(f(x, b[ob]));
            }),
            [0, 1] => out.iter_mut().zip(&b[ob..ob + n]).for_each(|(o, &y)| {
                o.write(f(a[oa], y));
            }),
            [sa, sb] => out.iter_mut().enumerate().for_each(|(j, o)| {
                o.write(f(a[oa + j * sa], b[ob + j * sb]));
            }),
        }
    }
}

pub(crate) fn unary_float<T: Float>(v: &[T], l: &Layout, op: UnaryOp) -> Result<Vec<T>> {
    let zero = T::from_f64(0.0);
    match op {
        UnaryOp::Neg => map1(v, l, |x| -x),
        UnaryOp::Exp => map1(v, l, T::exp),
        UnaryOp::Log => map1(v, l, T::ln),
        UnaryOp::Sqrt => map1(v, l, T::sqrt),
        // `x <= 0` is false for NaN, so NaN passes through as in PyTorch.
        UnaryOp::Relu => map1(v, l, |x| if x <= zero { zero } else { x }),
        UnaryOp::Sigmoid => map1(v, l, T::sigmoid),
        UnaryOp::Tanh => map1(v, l, T::tanh),
        UnaryOp::Abs => map1(v, l, T::abs),
        UnaryOp::AddScalar(s) => scalar_map(v, l, s, |x, s| x + s),
        UnaryOp::MulScalar(s) => scalar_map(v, l, s, |x, s| x * s),
        UnaryOp::DivScalar(s) => scalar_map(v, l, s, |x, s| x / s),
        UnaryOp::PowScalar(s) => scalar_map(v, l, s, T::powf),
        UnaryOp::Gelu => map1(v, l, T::gelu),
        UnaryOp::GeluGrad => map1(v, l, T::gelu_grad),
        UnaryOp::GeluTanh => map1(v, l, T::gelu_tanh),
        UnaryOp::GeluTanhGrad => map1(v, l, T::gelu_tanh_grad),
        // `x > 0` is false for NaN, so NaN·s keeps it NaN, as in PyTorch.
        UnaryOp::LeakyRelu(s) => scalar_map(v, l, s, |x, s| if x > zero { x } else { x * s }),
        UnaryOp::LeakyReluGrad(s) => {
            scalar_map(v, l, s, |x, s| if x > zero { T::from_f64(1.0) } else { s })
        }
        UnaryOp::Silu => map1(v, l, T::silu),
        UnaryOp::SiluGrad => map1(v, l, T::silu_grad),
        UnaryOp::Softplus(s) => scalar_map(v, l, s, T::softplus),
        UnaryOp::SoftplusGrad(s) => scalar_map(v, l, s, T::softplus_grad),
        UnaryOp::Sin => map1(v, l, T::sin),
        UnaryOp::Cos => map1(v, l, T::cos),
        UnaryOp::Floor => map1(v, l, T::floor),
        UnaryOp::Ceil => map1(v, l, T::ceil),
        UnaryOp::Round => map1(v, l, T::round_even),
        UnaryOp::Trunc => map1(v, l, T::trunc),
        UnaryOp::Sign => map1(v, l, formulas::sign),
        // Forced inline: erf is past the inliner's size limit, and a call per element
        // keeps the loop from vectorizing (5× slower).
        UnaryOp::Erf => map1(
            v,
            l,
            #[inline(always)]
            |x| x.erf(),
        ),
        UnaryOp::Log1p => map1(v, l, T::ln_1p),
        UnaryOp::Expm1 => map1(v, l, T::exp_m1),
        UnaryOp::Reciprocal => map1(v, l, |x| T::from_f64(1.0) / x),
        UnaryOp::Square => map1(v, l, |x| x * x),
        UnaryOp::Exp2 => map1(v, l, T::exp2),
        UnaryOp::Log2 => map1(v, l, T::log2),
        UnaryOp::Hardswish => map1(v, l, formulas::hardswish),
        UnaryOp::HardswishGrad => map1(v, l, formulas::hardswish_grad),
        UnaryOp::Hardsigmoid => map1(v, l, formulas::hardsigmoid),
        UnaryOp::HardsigmoidGrad => map1(v, l, formulas::hardsigmoid_grad),
        UnaryOp::Hardtanh { min, max } => {
            let (lo, hi) = (T::from_f64(min), T::from_f64(max));
            map1(v, l, |x| formulas::hardtanh(x, lo, hi))
        }
        UnaryOp::HardtanhGrad { min, max } => {
            let (lo, hi) = (T::from_f64(min), T::from_f64(max));
            map1(v, l, |x| formulas::hardtanh_grad(x, lo, hi))
        }
        UnaryOp::Elu(a) => elu_map(v, l, EluCoefs::elu(a), false),
        UnaryOp::EluGrad(a) => elu_map(v, l, EluCoefs::elu(a), true),
        UnaryOp::Selu => elu_map(v, l, EluCoefs::selu(), false),
        UnaryOp::SeluGrad => elu_map(v, l, EluCoefs::selu(), true),
        UnaryOp::Celu(a) => elu_map(v, l, EluCoefs::celu(a), false),
        UnaryOp::CeluGrad(a) => elu_map(v, l, EluCoefs::celu_grad(a), true),
        UnaryOp::Mish => map1(v, l, formulas::mish),
        UnaryOp::MishGrad => map1(v, l, formulas::mish_grad),
        UnaryOp::LogSigmoid => map1(
            v,
            l,
            #[inline(always)]
            |x| x.log_sigmoid(),
        ),
        UnaryOp::LogSigmoidGrad => map1(v, l, T::log_sigmoid_grad),
        UnaryOp::Softsign => map1(v, l, formulas::softsign),
        UnaryOp::SoftsignGrad => map1(v, l, formulas::softsign_grad),
        UnaryOp::SmoothL1(s) => scalar_map(v, l, s, formulas::smooth_l1),
        UnaryOp::SmoothL1Grad(s) => scalar_map(v, l, s, formulas::smooth_l1_grad),
        UnaryOp::Huber(s) => scalar_map(v, l, s, formulas::huber),
        UnaryOp::HuberGrad(s) => scalar_map(v, l, s, formulas::huber_grad),
    }
}

/// An ELU-family op (`grad`: its derivative) with the coefficients `c`.
fn elu_map<T: Float>(v: &[T], l: &Layout, c: EluCoefs<T>, grad: bool) -> Result<Vec<T>> {
    if grad {
        map1(v, l, |x| c.grad(x))
    } else {
        map1(v, l, |x| c.apply(x))
    }
}

fn scalar_map<T: Float>(
    v: &[T],
    l: &Layout,
    s: f64,
    f: impl Fn(T, T) -> T + Sync,
) -> Result<Vec<T>> {
    let s = T::from_f64(s);
    map1(v, l, |x| f(x, s))
}

/// An integer op. The tensor layer hands integer dtypes only integral scalars that
/// fit in i64 (see `Tensor::add_scalar`); they wrap into `T` as in PyTorch, so
/// `U8 5 + (-1)` is 4, the same on every device (`UnaryOp::int_scalar`).
pub(crate) fn unary_int<T: Num>(v: &[T], l: &Layout, op: UnaryOp) -> Result<Vec<T>> {
    let zero = T::default();
    let s = T::from_i64_wrapping(op.int_scalar());
    match op {
        UnaryOp::Neg => map1(v, l, |x| zero.sub(x)),
        UnaryOp::Relu => map1(v, l, |x| if x < zero { zero } else { x }),
        UnaryOp::Abs => map1(v, l, |x| if x < zero { zero.sub(x) } else { x }),
        UnaryOp::AddScalar(_) => map1(v, l, |x| x.add(s)),
        UnaryOp::MulScalar(_) => map1(v, l, |x| x.mul(s)),
        // Integers are already whole.
        UnaryOp::Floor | UnaryOp::Ceil | UnaryOp::Round | UnaryOp::Trunc => map1(v, l, |x| x),
        UnaryOp::Sign => {
            let (one, minus_one) = (T::from_i64_wrapping(1), T::from_i64_wrapping(-1));
            map1(v, l, |x| match x.partial_cmp(&zero) {
                Some(std::cmp::Ordering::Greater) => one,
                Some(std::cmp::Ordering::Less) => minus_one,
                _ => zero,
            })
        }
        UnaryOp::Square => map1(v, l, |x| x.mul(x)),
        _ => unreachable!("refused by UnaryOp::allows_integers"),
    }
}

/// True for the binary ops that only float dtypes take (see `BinaryOp::check_dtype`):
/// they have float math of their own, in [`binary_float`].
fn is_float_only(op: BinaryOp) -> bool {
    matches!(
        op,
        BinaryOp::Atan2 | BinaryOp::BinaryCrossEntropy | BinaryOp::BinaryCrossEntropyGrad
    )
}

/// The float-only binary ops.
fn binary_float<T: Float>(
    a: &[T],
    al: &Layout,
    b: &[T],
    bl: &Layout,
    op: BinaryOp,
) -> Result<Vec<T>> {
    match op {
        BinaryOp::Atan2 => map2(a, al, b, bl, T::atan2),
        BinaryOp::BinaryCrossEntropy => map2(a, al, b, bl, formulas::binary_cross_entropy),
        BinaryOp::BinaryCrossEntropyGrad => map2(a, al, b, bl, formulas::binary_cross_entropy_grad),
        _ => unreachable!("binary_float serves only is_float_only ops"),
    }
}

pub(crate) fn binary<T: Num>(
    a: &[T],
    al: &Layout,
    b: &[T],
    bl: &Layout,
    op: BinaryOp,
) -> Result<CpuStorage> {
    let out = match op {
        BinaryOp::Add => map2(a, al, b, bl, T::add),
        BinaryOp::Sub => map2(a, al, b, bl, T::sub),
        BinaryOp::Mul => map2(a, al, b, bl, T::mul),
        BinaryOp::Div => map2(a, al, b, bl, T::div),
        BinaryOp::Maximum => map2(a, al, b, bl, |x, y| if x.is_nan() || x > y { x } else { y }),
        BinaryOp::Minimum => map2(a, al, b, bl, |x, y| if x.is_nan() || x < y { x } else { y }),
        _ => unreachable!("float-only ops run in binary_float"),
    }?;
    Ok(T::wrap(out))
}

pub(crate) fn compare<T: Num>(
    a: &[T],
    al: &Layout,
    b: &[T],
    bl: &Layout,
    op: CmpOp,
) -> Result<Vec<u8>> {
    match op {
        CmpOp::Eq => map2(a, al, b, bl, |x, y| u8::from(x == y)),
        CmpOp::Ne => map2(a, al, b, bl, |x, y| u8::from(x != y)),
        CmpOp::Lt => map2(a, al, b, bl, |x, y| u8::from(x < y)),
        CmpOp::Le => map2(a, al, b, bl, |x, y| u8::from(x <= y)),
        CmpOp::Gt => map2(a, al, b, bl, |x, y| u8::from(x > y)),
        CmpOp::Ge => map2(a, al, b, bl, |x, y| u8::from(x >= y)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_merges_contiguous_dims_and_keeps_broadcast() {
        let a = Layout::contiguous(&[4, 3, 5]);
        let b = Layout {
            shape: vec![4, 3, 5],
            strides: vec![0, 5, 1],
            offset: 0,
        };
        let plan = Plan::new([&a, &b]);
        assert_eq!(plan.inner, 15);
        assert_eq!(plan.outer_shape, vec![4]);
        assert_eq!(plan.row_base(2), [30, 0]);
    }

    #[test]
    fn parallel_pieces_that_start_mid_row_see_the_right_operands() {
        // 40 rows of 1000 (over PARALLEL_THRESHOLD, so split into TASK_LEN pieces that
        // do not line up with rows); b is a broadcast row, c a transposed view.
        let (rows, cols) = (40, 1000);
        let a: Vec<f32> = (0..rows * cols).map(|x| x as f32).collect();
        let al = Layout::contiguous(&[rows, cols]);
        let bl = Layout {
            shape: vec![rows, cols],
            strides: vec![0, 1],
            offset: 0,
        };
        let got = map2(&a, &al, &a, &bl, |x, y| x - y).unwrap();
        let want: Vec<f32> = (0..rows * cols).map(|i| (i - i % cols) as f32).collect();
        assert_eq!(got, want);

        let cl = Layout {
            shape: vec![cols, rows],
            strides: vec![1, cols],
            offset: 0,
        };
        let got = map1(&a, &cl, |x| x).unwrap();
        let want: Vec<f32> = (0..rows * cols)
            .map(|i| ((i % rows) * cols + i / rows) as f32)
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn map2_handles_transposed_operand() {
        let a: Vec<f32> = (0..6).map(|x| x as f32).collect();
        let al = Layout::contiguous(&[2, 3]);
        let bl = Layout {
            shape: vec![2, 3],
            strides: vec![1, 2],
            offset: 0,
        };
        assert_eq!(
            map2(&a, &al, &a, &bl, |x, y| x * 10.0 + y).unwrap(),
            vec![0., 12., 24., 31., 43., 55.]
        );
    }
}
