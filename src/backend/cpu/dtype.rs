//! Per-dtype dispatch of the CPU backend: which Rust type a storage's elements are,
//! the numeric traits the kernels are generic over, and dtype conversion.
//!
//! f16 and bf16 are storage types here: kernels widen them to f32, compute, and
//! narrow the result back (as PyTorch does for many CPU ops), so each kernel exists
//! once per compute type.

use super::{alloc, gather, CpuStorage, PARALLEL_THRESHOLD};
use crate::dtype::WithDType;
use crate::shape::Layout;
use crate::{DType, Error, Result};
use rayon::prelude::*;
use std::borrow::Cow;

/// Calls `$body` with `$v` bound to the vector inside any variant.
macro_rules! with_vec {
    ($s:expr, $v:ident => $body:expr) => {
        match $s {
            $crate::backend::CpuStorage::F32($v) => $body,
            $crate::backend::CpuStorage::F64($v) => $body,
            $crate::backend::CpuStorage::F16($v) => $body,
            $crate::backend::CpuStorage::BF16($v) => $body,
            $crate::backend::CpuStorage::I64($v) => $body,
            $crate::backend::CpuStorage::U8($v) => $body,
        }
    };
}
pub(crate) use with_vec;

/// Element types the kernels compute in (f16/bf16 are widened to f32 first).
pub(crate) trait Num: WithDType + PartialOrd + Default {
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    fn is_nan(self) -> bool;
    fn wrap(v: Vec<Self>) -> CpuStorage;
    /// `v` in this type, wrapping modulo 2^bits for integers (how PyTorch applies an
    /// integer scalar to a U8 tensor: `u8 + (-1)` subtracts one), rounded for floats.
    fn from_i64_wrapping(v: i64) -> Self;
    /// The value as an i64: exact for the integer types, truncated for floats.
    fn to_i64(self) -> i64;
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
            fn from_i64_wrapping(v: i64) -> Self {
                v as $t
            }
            fn to_i64(self) -> i64 {
                self as i64
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
            fn from_i64_wrapping(v: i64) -> Self {
                // Truncation keeps the low bits: the value modulo 2^bits.
                v as $t
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
        }
    };
}
num_float!(f32, F32);
num_float!(f64, F64);
num_int!(i64, I64);
num_int!(u8, U8);

impl CpuStorage {
    /// The element type.
    pub(crate) fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
            CpuStorage::F16(_) => DType::F16,
            CpuStorage::BF16(_) => DType::BF16,
            CpuStorage::I64(_) => DType::I64,
            CpuStorage::U8(_) => DType::U8,
        }
    }

    /// A storage of `n` copies of `value` converted to `dtype`, made directly in
    /// `dtype` (no f64 staging buffer).
    pub(crate) fn full(n: usize, value: f64, dtype: DType) -> Result<CpuStorage> {
        fn fill<T: WithDType>(n: usize, value: f64) -> Result<CpuStorage> {
            Ok(CpuStorage::from_vec(alloc::filled(n, T::from_f64(value))?))
        }
        dispatch_dtype!(dtype, T => fill::<T>(n, value))
    }

    /// Elements converted to `dtype` (no copy when it is already `dtype`).
    pub(crate) fn convert(self, dtype: DType) -> Result<CpuStorage> {
        if self.dtype() == dtype {
            return Ok(self);
        }
        with_vec!(self, v => convert_slice(&v, dtype))
    }

    /// A contiguous copy of the elements of `layout`, converted to `dtype`.
    pub(crate) fn copied(&self, layout: &Layout, dtype: DType) -> Result<CpuStorage> {
        let same = self.dtype() == dtype;
        with_vec!(self, v => {
            let run = match layout.contiguous_range() {
                Some(r) => Cow::Borrowed(&v[r]),
                None => Cow::Owned(gather(v, layout)?),
            };
            if !same {
                return convert_slice(&run, dtype);
            }
            Ok(CpuStorage::from_vec(match run {
                Cow::Borrowed(r) => alloc::copied(r)?,
                Cow::Owned(o) => o,
            }))
        })
    }

    /// f16/bf16 widened to f32 (with the contiguous layout of the copy); other
    /// dtypes borrowed as they are.
    pub(crate) fn widened(&self, layout: &Layout) -> Result<(Cow<'_, CpuStorage>, Layout)> {
        Ok(match self.dtype() {
            DType::F16 | DType::BF16 => (
                Cow::Owned(self.copied(layout, DType::F32)?),
                Layout::contiguous(&layout.shape),
            ),
            _ => (Cow::Borrowed(self), layout.clone()),
        })
    }
}

/// Runs `$body` with the type alias `$t` bound to the element type of `$dtype`.
macro_rules! dispatch_dtype {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            $crate::DType::F32 => {
                type $t = f32;
                $body
            }
            $crate::DType::F64 => {
                type $t = f64;
                $body
            }
            $crate::DType::F16 => {
                type $t = half::f16;
                $body
            }
            $crate::DType::BF16 => {
                type $t = half::bf16;
                $body
            }
            $crate::DType::I64 => {
                type $t = i64;
                $body
            }
            $crate::DType::U8 => {
                type $t = u8;
                $body
            }
        }
    };
}
pub(crate) use dispatch_dtype;

/// The elements of `layout` as a contiguous slice of `T`: borrowed when the storage
/// already holds `T` contiguously, else converted (f16/bf16 widen) and copied.
pub(crate) fn contiguous_as<'a, T: WithDType>(
    s: &'a CpuStorage,
    layout: &Layout,
) -> Result<Cow<'a, [T]>> {
    if let (Some(range), Some(all)) = (layout.contiguous_range(), s.as_slice::<T>()) {
        return Ok(Cow::Borrowed(&all[range]));
    }
    let copy = s.copied(layout, T::DTYPE)?;
    match copy.into_vec::<T>() {
        Some(v) => Ok(Cow::Owned(v)),
        None => unreachable!("copied() converts to the requested dtype"),
    }
}

/// The dtype a float storage computes in: f32 for f32/f16/bf16, f64 for f64.
pub(crate) fn compute_dtype(op: &'static str, dtype: DType) -> Result<DType> {
    match dtype {
        DType::F64 => Ok(DType::F64),
        DType::F32 | DType::F16 | DType::BF16 => Ok(DType::F32),
        _ => Err(Error::UnsupportedDType { op, dtype }),
    }
}

/// Err unless `got` equals `expected` (the tensor layer checks first; this guards
/// backends called directly).
pub(crate) fn same_dtype(op: &'static str, expected: DType, got: DType) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::DTypeMismatch { op, expected, got })
    }
}

/// Runs a float kernel in the compute type of `dtype` and converts the result back.
macro_rules! float_kernel {
    ($op:expr, $dtype:expr, |$t:ident| $body:expr) => {{
        let dtype: $crate::DType = $dtype;
        match $crate::backend::cpu::dtype::compute_dtype($op, dtype)? {
            $crate::DType::F64 => {
                type $t = f64;
                $crate::backend::CpuStorage::F64($body)
            }
            _ => {
                type $t = f32;
                $crate::backend::CpuStorage::F32($body).convert(dtype)?
            }
        }
    }};
}
pub(crate) use float_kernel;

fn convert_slice<T: WithDType>(v: &[T], dtype: DType) -> Result<CpuStorage> {
    fn map<T: WithDType, U: WithDType>(v: &[T]) -> Result<CpuStorage> {
        Ok(CpuStorage::from_vec(if v.len() >= PARALLEL_THRESHOLD {
            alloc::par_collect(v.par_iter().map(|&x| U::from_f64(x.to_f64())))?
        } else {
            alloc::collect(v.iter().map(|&x| U::from_f64(x.to_f64())))?
        }))
    }
    dispatch_dtype!(dtype, U => map::<T, U>(v))
}
