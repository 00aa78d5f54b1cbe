//! The CPU backend: the reference implementation of every primitive.
//!
//! Kernels are generic over the element type. f16 and bf16 are storage types here:
//! they are widened to f32, computed, and narrowed back (as PyTorch does for many
//! CPU ops), so each kernel exists once.

mod conv;
mod dropout;
mod elementwise;
pub(crate) mod gemm_util;
mod math;
mod matmul;
mod pool;
mod reduce;
mod softmax;

use crate::backend::{BinaryOp, CmpOp, MatmulDims, ReduceOp, UnaryOp};
use crate::dtype::WithDType;
use crate::shape::Layout;
use crate::{DType, Error, Result};
use half::{bf16, f16};
use rayon::prelude::*;

/// Host memory of one dtype.
#[derive(Debug, Clone, PartialEq)]
pub enum CpuStorage {
    /// f32 elements.
    F32(Vec<f32>),
    /// f64 elements.
    F64(Vec<f64>),
    /// f16 elements.
    F16(Vec<f16>),
    /// bf16 elements.
    BF16(Vec<bf16>),
    /// i64 elements.
    I64(Vec<i64>),
    /// u8 elements.
    U8(Vec<u8>),
}

/// Calls `$body` with `$v` bound to the vector inside any variant.
macro_rules! with_vec {
    ($s:expr, $v:ident => $body:expr) => {
        match $s {
            CpuStorage::F32($v) => $body,
            CpuStorage::F64($v) => $body,
            CpuStorage::F16($v) => $body,
            CpuStorage::BF16($v) => $body,
            CpuStorage::I64($v) => $body,
            CpuStorage::U8($v) => $body,
        }
    };
}

/// Element types the kernels compute in (f16/bf16 are widened to f32 first).
pub(crate) trait Num: WithDType + PartialOrd + Default {
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    fn is_nan(self) -> bool;
    fn wrap(v: Vec<Self>) -> CpuStorage;
}

macro_rules! num_float {
    ($t:ty, $var:ident) => {
        impl Num for $t {
            fn add(self, o: Self) -> Self {
                self + o
            }
            fn sub(self, o: Self) -> Self {
                self - o
            }
            fn mul(self, o: Self) -> Self {
                self * o
            }
            fn div(self, o: Self) -> Self {
                self / o
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn wrap(v: Vec<Self>) -> CpuStorage {
                CpuStorage::$var(v)
            }
        }
    };
}
macro_rules! num_int {
    ($t:ty, $var:ident) => {
        impl Num for $t {
            fn add(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            fn sub(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            fn mul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            // Integer division is refused before it gets here (see `binary`).
            fn div(self, o: Self) -> Self {
                self.checked_div(o).unwrap_or_default()
            }
            fn is_nan(self) -> bool {
                false
            }
            fn wrap(v: Vec<Self>) -> CpuStorage {
                CpuStorage::$var(v)
            }
        }
    };
}
num_float!(f32, F32);
num_float!(f64, F64);
num_int!(i64, I64);
num_int!(u8, U8);

/// Work below this many elements stays on one thread (rayon's overhead dominates).
pub(crate) const PARALLEL_THRESHOLD: usize = 1 << 15;

/// Runs `op` compiled for the widest SIMD instruction set this CPU has (AVX2 or
/// AVX-512 on x86-64), picked at run time. The crate itself targets baseline x86-64,
/// whose SSE2 loops move a half or a quarter of the data per instruction. Kernels put
/// their inner loops in a [`pulp::WithSimd`] whose `with_simd` is `#[inline(always)]`,
/// so the loops are inlined into (and auto-vectorized for) each instruction set.
#[inline(always)]
pub(crate) fn vectorized<Op: pulp::WithSimd>(op: Op) -> Op::Output {
    pulp::Arch::new().dispatch(op)
}

impl CpuStorage {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
            CpuStorage::F16(_) => DType::F16,
            CpuStorage::BF16(_) => DType::BF16,
            CpuStorage::I64(_) => DType::I64,
            CpuStorage::U8(_) => DType::U8,
        }
    }

    /// Number of elements stored.
    pub fn len(&self) -> usize {
        with_vec!(self, v => v.len())
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A storage of `n` copies of `value` converted to `dtype`.
    pub fn full(n: usize, value: f64, dtype: DType) -> CpuStorage {
        CpuStorage::F64(vec![value; n]).convert(dtype)
    }

    /// Elements converted to `dtype` (a plain copy when it is already `dtype`).
    pub fn convert(self, dtype: DType) -> CpuStorage {
        if self.dtype() == dtype {
            return self;
        }
        with_vec!(self, v => convert_slice(&v, dtype))
    }

    /// f16/bf16 widened to f32; other dtypes unchanged.
    fn widened(&self, layout: &Layout) -> (std::borrow::Cow<'_, CpuStorage>, Layout) {
        match self.dtype() {
            DType::F16 | DType::BF16 => (
                std::borrow::Cow::Owned(self.copy_as(layout, DType::F32)),
                Layout::contiguous(&layout.shape),
            ),
            _ => (std::borrow::Cow::Borrowed(self), layout.clone()),
        }
    }

    pub(crate) fn unary(&self, op: UnaryOp, layout: &Layout) -> Result<CpuStorage> {
        let dtype = self.dtype();
        if !dtype.is_float() && !op.allows_integers() {
            return Err(Error::UnsupportedDType {
                op: unary_name(op),
                dtype,
            });
        }
        let (s, l) = self.widened(layout);
        let out = match s.as_ref() {
            CpuStorage::F32(v) => CpuStorage::F32(elementwise::unary_float(v, &l, op)),
            CpuStorage::F64(v) => CpuStorage::F64(elementwise::unary_float(v, &l, op)),
            CpuStorage::I64(v) => CpuStorage::I64(elementwise::unary_int(v, &l, op)),
            CpuStorage::U8(v) => CpuStorage::U8(elementwise::unary_int(v, &l, op)),
            CpuStorage::F16(_) | CpuStorage::BF16(_) => unreachable!("widened to f32"),
        };
        Ok(out.convert(dtype))
    }

    pub(crate) fn binary(
        &self,
        op: BinaryOp,
        ll: &Layout,
        rhs: &CpuStorage,
        rl: &Layout,
    ) -> Result<CpuStorage> {
        let dtype = self.dtype();
        if op == BinaryOp::Div && !dtype.is_float() {
            return Err(Error::UnsupportedDType { op: "div", dtype });
        }
        let ((a, al), (b, bl)) = (self.widened(ll), rhs.widened(rl));
        let out = match (a.as_ref(), b.as_ref()) {
            (CpuStorage::F32(x), CpuStorage::F32(y)) => elementwise::binary(x, &al, y, &bl, op),
            (CpuStorage::F64(x), CpuStorage::F64(y)) => elementwise::binary(x, &al, y, &bl, op),
            (CpuStorage::I64(x), CpuStorage::I64(y)) => elementwise::binary(x, &al, y, &bl, op),
            (CpuStorage::U8(x), CpuStorage::U8(y)) => elementwise::binary(x, &al, y, &bl, op),
            _ => {
                return Err(Error::DTypeMismatch {
                    op: "binary",
                    expected: dtype,
                    got: rhs.dtype(),
                })
            }
        };
        Ok(out.convert(dtype))
    }

    pub(crate) fn compare(
        &self,
        op: CmpOp,
        ll: &Layout,
        rhs: &CpuStorage,
        rl: &Layout,
    ) -> Result<CpuStorage> {
        let ((a, al), (b, bl)) = (self.widened(ll), rhs.widened(rl));
        let out = match (a.as_ref(), b.as_ref()) {
            (CpuStorage::F32(x), CpuStorage::F32(y)) => elementwise::compare(x, &al, y, &bl, op),
            (CpuStorage::F64(x), CpuStorage::F64(y)) => elementwise::compare(x, &al, y, &bl, op),
            (CpuStorage::I64(x), CpuStorage::I64(y)) => elementwise::compare(x, &al, y, &bl, op),
            (CpuStorage::U8(x), CpuStorage::U8(y)) => elementwise::compare(x, &al, y, &bl, op),
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

    pub(crate) fn reduce(&self, op: ReduceOp, layout: &Layout, dim: usize) -> Result<CpuStorage> {
        let dtype = self.dtype();
        let (s, l) = self.widened(layout);
        let out = match s.as_ref() {
            CpuStorage::F32(v) => reduce::reduce(v, &l, dim, op),
            CpuStorage::F64(v) => reduce::reduce(v, &l, dim, op),
            CpuStorage::I64(v) => reduce::reduce(v, &l, dim, op),
            CpuStorage::U8(v) => reduce::reduce(v, &l, dim, op),
            CpuStorage::F16(_) | CpuStorage::BF16(_) => unreachable!("widened to f32"),
        };
        Ok(match (op, dtype) {
            (ReduceOp::Sum | ReduceOp::Max | ReduceOp::Min, DType::F16 | DType::BF16) => {
                out.convert(dtype)
            }
            _ => out,
        })
    }

    pub(crate) fn softmax(&self, layout: &Layout, dim: usize, log: bool) -> Result<CpuStorage> {
        let dtype = self.dtype();
        let op = if log { "log_softmax" } else { "softmax" };
        if !dtype.is_float() {
            return Err(Error::UnsupportedDType { op, dtype });
        }
        let shape = &layout.shape;
        if dim >= shape.len() {
            return Err(Error::DimOutOfRange {
                op,
                dim,
                rank: shape.len(),
            });
        }
        let outer: usize = shape[..dim].iter().product();
        let inner: usize = shape[dim + 1..].iter().product();
        let (s, l) = self.widened(layout);
        fn run<T: elementwise::Float>(
            v: &[T],
            l: &Layout,
            sizes: (usize, usize, usize),
            log: bool,
        ) -> Vec<T> {
            let (outer, len, inner) = sizes;
            match l.contiguous_range() {
                Some(r) => softmax::softmax(&v[r], outer, len, inner, log),
                None => softmax::softmax(&gather(v, l), outer, len, inner, log),
            }
        }
        let sizes = (outer, shape[dim], inner);
        let out = match s.as_ref() {
            CpuStorage::F32(v) => CpuStorage::F32(run(v, &l, sizes, log)),
            CpuStorage::F64(v) => CpuStorage::F64(run(v, &l, sizes, log)),
            _ => unreachable!("float dtypes checked above, f16/bf16 widened"),
        };
        Ok(out.convert(dtype))
    }

    pub(crate) fn matmul(
        &self,
        ll: &Layout,
        rhs: &CpuStorage,
        rl: &Layout,
        dims: MatmulDims,
    ) -> Result<CpuStorage> {
        let dtype = self.dtype();
        let ((a, al), (b, bl)) = (self.widened(ll), rhs.widened(rl));
        let out = match (a.as_ref(), b.as_ref()) {
            (CpuStorage::F32(x), CpuStorage::F32(y)) => {
                CpuStorage::F32(matmul::matmul(x, &al, y, &bl, dims))
            }
            (CpuStorage::F64(x), CpuStorage::F64(y)) => {
                CpuStorage::F64(matmul::matmul(x, &al, y, &bl, dims))
            }
            _ if dtype != rhs.dtype() => {
                return Err(Error::DTypeMismatch {
                    op: "matmul",
                    expected: dtype,
                    got: rhs.dtype(),
                })
            }
            _ => {
                return Err(Error::UnsupportedDType {
                    op: "matmul",
                    dtype,
                })
            }
        };
        Ok(out.convert(dtype))
    }

    /// A contiguous copy of the elements of `layout`, converted to `dtype`.
    pub(crate) fn copy_as(&self, layout: &Layout, dtype: DType) -> CpuStorage {
        let same = self.dtype() == dtype;
        with_vec!(self, v => {
            match layout.contiguous_range() {
                Some(r) if same => with_same_type(v[r].to_vec()),
                Some(r) => convert_slice(&v[r], dtype),
                None => {
                    let gathered: Vec<_> = gather(v, layout);
                    if same { with_same_type(gathered) } else { convert_slice(&gathered, dtype) }
                }
            }
        })
    }

    /// Writes `src` at `src_layout` into `self` at `dst_layout` (same shape), converting dtype.
    pub(crate) fn copy_from(
        &mut self,
        dst_layout: &Layout,
        src: &CpuStorage,
        src_layout: &Layout,
    ) -> Result<()> {
        let values = src.copy_as(src_layout, self.dtype());
        let dst_len = self.len();
        with_vec!(self, dst => {
            let vals: &[_] = with_same_type_ref(&values);
            if let Some(r) = dst_layout.contiguous_range() {
                dst[r].copy_from_slice(vals);
            } else {
                for (i, &x) in dst_layout.indices().zip(vals) {
                    debug_assert!(i < dst_len);
                    dst[i] = x;
                }
            }
        });
        Ok(())
    }

    /// The elements as a `Vec<T>` when `T` is this storage's type.
    pub fn as_slice<T: WithDType>(&self) -> Option<&[T]> {
        with_vec!(self, v => (v as &dyn std::any::Any).downcast_ref::<Vec<T>>().map(|v| v.as_slice()))
    }

    /// Mutable access to the elements when `T` is this storage's type.
    pub fn as_mut_slice<T: WithDType>(&mut self) -> Option<&mut [T]> {
        with_vec!(self, v => (v as &mut dyn std::any::Any).downcast_mut::<Vec<T>>().map(|v| v.as_mut_slice()))
    }

    /// Wraps a vector.
    pub fn from_vec<T: WithDType>(v: Vec<T>) -> CpuStorage {
        let any: Box<dyn std::any::Any> = Box::new(v);
        match T::DTYPE {
            DType::F32 => CpuStorage::F32(*any.downcast().expect("dtype matches")),
            DType::F64 => CpuStorage::F64(*any.downcast().expect("dtype matches")),
            DType::F16 => CpuStorage::F16(*any.downcast().expect("dtype matches")),
            DType::BF16 => CpuStorage::BF16(*any.downcast().expect("dtype matches")),
            DType::I64 => CpuStorage::I64(*any.downcast().expect("dtype matches")),
            DType::U8 => CpuStorage::U8(*any.downcast().expect("dtype matches")),
        }
    }
}

pub(crate) fn unary_name(op: UnaryOp) -> &'static str {
    match op {
        UnaryOp::Neg => "neg",
        UnaryOp::Exp => "exp",
        UnaryOp::Log => "log",
        UnaryOp::Sqrt => "sqrt",
        UnaryOp::Relu => "relu",
        UnaryOp::Sigmoid => "sigmoid",
        UnaryOp::Tanh => "tanh",
        UnaryOp::Abs => "abs",
        UnaryOp::AddScalar(_) => "add_scalar",
        UnaryOp::MulScalar(_) => "mul_scalar",
        UnaryOp::DivScalar(_) => "div_scalar",
        UnaryOp::PowScalar(_) => "pow_scalar",
        UnaryOp::Gelu => "gelu",
        UnaryOp::GeluGrad => "gelu_backward",
        UnaryOp::GeluTanh => "gelu_tanh",
        UnaryOp::GeluTanhGrad => "gelu_tanh_backward",
    }
}

/// The elements of `layout`, in row-major order.
///
/// Rows of the last dimension are copied with a tight loop (a fill for a broadcast
/// row, a slice copy for unit stride), in parallel for large tensors: a strided or
/// broadcast view costs about what a contiguous copy does.
pub(crate) fn gather<T: Copy + Send + Sync + Default>(v: &[T], layout: &Layout) -> Vec<T> {
    if let Some(r) = layout.contiguous_range() {
        return v[r].to_vec();
    }
    if layout.numel() == 0 {
        return Vec::new();
    }
    // Not contiguous and not empty, so rank ≥ 1 and every dimension is non-zero.
    let (shape, strides) = (&layout.shape, &layout.strides);
    let rank = shape.len();
    let (inner, stride) = (shape[rank - 1], strides[rank - 1]);
    let row_start = |row: usize| {
        let (mut r, mut at) = (row, layout.offset);
        for d in (0..rank - 1).rev() {
            at += (r % shape[d]) * strides[d];
            r /= shape[d];
        }
        at
    };
    let copy_run = |start: usize, dst: &mut [T]| match stride {
        0 => dst.fill(v[start]),
        1 => dst.copy_from_slice(&v[start..start + dst.len()]),
        s => dst
            .iter_mut()
            .enumerate()
            .for_each(|(j, d)| *d = v[start + j * s]),
    };
    let mut out = vec![T::default(); layout.numel()];
    if out.len() < PARALLEL_THRESHOLD {
        for (row, dst) in out.chunks_mut(inner).enumerate() {
            copy_run(row_start(row), dst);
        }
        return out;
    }
    out.par_chunks_mut(inner)
        .with_min_len(PARALLEL_THRESHOLD / inner.max(1))
        .enumerate()
        .for_each(|(row, dst)| {
            let start = row_start(row);
            if inner >= 2 * PARALLEL_THRESHOLD {
                dst.par_chunks_mut(PARALLEL_THRESHOLD)
                    .enumerate()
                    .for_each(|(k, d)| copy_run(start + k * PARALLEL_THRESHOLD * stride, d));
            } else {
                copy_run(start, dst);
            }
        });
    out
}

fn with_same_type<T: WithDType>(v: Vec<T>) -> CpuStorage {
    CpuStorage::from_vec(v)
}

fn with_same_type_ref<T: WithDType>(s: &CpuStorage) -> &[T] {
    s.as_slice::<T>()
        .expect("copy_as produced the destination dtype")
}

fn convert_slice<T: WithDType>(v: &[T], dtype: DType) -> CpuStorage {
    fn map<T: WithDType, U: WithDType>(v: &[T]) -> Vec<U> {
        if v.len() >= PARALLEL_THRESHOLD {
            v.par_iter().map(|&x| U::from_f64(x.to_f64())).collect()
        } else {
            v.iter().map(|&x| U::from_f64(x.to_f64())).collect()
        }
    }
    match dtype {
        DType::F32 => CpuStorage::F32(map(v)),
        DType::F64 => CpuStorage::F64(map(v)),
        DType::F16 => CpuStorage::F16(map(v)),
        DType::BF16 => CpuStorage::BF16(map(v)),
        DType::I64 => CpuStorage::I64(map(v)),
        DType::U8 => CpuStorage::U8(map(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `gather` agrees with the plain strided walk on transposed, broadcast and
    /// narrowed views, small (sequential) and large (parallel, split rows).
    #[test]
    fn gather_matches_the_strided_walk() {
        let v: Vec<u32> = (0..200_000).collect();
        let layouts = [
            Layout {
                shape: vec![3, 4, 5],
                strides: vec![1, 3, 12],
                offset: 2,
            },
            Layout {
                shape: vec![4, 6],
                strides: vec![0, 1],
                offset: 7,
            },
            Layout {
                shape: vec![100_000],
                strides: vec![0],
                offset: 5,
            },
            Layout {
                shape: vec![2, 70_000],
                strides: vec![1, 2],
                offset: 0,
            },
            Layout {
                shape: vec![300, 200],
                strides: vec![1, 300],
                offset: 11,
            },
            Layout {
                shape: vec![40_000, 1],
                strides: vec![3, 1],
                offset: 1,
            },
            Layout {
                shape: vec![5, 9_000],
                strides: vec![20_000, 2],
                offset: 3,
            },
        ];
        for l in &layouts {
            let want: Vec<u32> = l.indices().map(|i| v[i]).collect();
            assert_eq!(gather(&v, l), want, "{l:?}");
        }
    }
}
