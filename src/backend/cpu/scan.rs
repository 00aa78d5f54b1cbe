//! Scans on the CPU: each line walked in order with PyTorch's CPU accumulator, so every
//! output is the running value rounded once; parallel over blocks of `outer`.

use super::{ScanOp, ScanOps, ScanParams};
use crate::backend::cpu::dtype::{contiguous_as, same_dtype};
use crate::backend::cpu::{alloc, CpuStorage};
use crate::shape::Layout;
use crate::{DType, Error, Result, WithDType};
use half::{bf16, f16};
use rayon::prelude::*;

/// An element type and its scan accumulator: PyTorch's CPU `acc_type`.
trait Acc: WithDType + Default {
    /// The accumulator.
    type A: Copy;
    fn widen(self) -> Self::A;
    fn narrow(a: Self::A) -> Self;
    /// `a op b`.
    fn combine(op: ScanOp, a: Self::A, b: Self::A) -> Self::A;
}

macro_rules! float_acc {
    ($t:ty, $a:ty) => {
        impl Acc for $t {
            type A = $a;
            fn widen(self) -> $a {
                self.to_f64() as $a
            }
            fn narrow(a: $a) -> $t {
                <$t>::from_f64(f64::from(a))
            }
            fn combine(op: ScanOp, a: $a, b: $a) -> $a {
                match op {
                    ScanOp::Sum => a + b,
                    ScanOp::Prod => a * b,
                }
            }
        }
    };
}
float_acc!(f32, f64);
float_acc!(f64, f64);
float_acc!(f16, f32);
float_acc!(bf16, f32);

impl Acc for i64 {
    type A = i64;
    fn widen(self) -> i64 {
        self
    }
    fn narrow(a: i64) -> i64 {
        a
    }
    /// Wraps on overflow, as PyTorch's integer scans do.
    fn combine(op: ScanOp, a: i64, b: i64) -> i64 {
        match op {
            ScanOp::Sum => a.wrapping_add(b),
            ScanOp::Prod => a.wrapping_mul(b),
        }
    }
}

impl ScanOps for CpuStorage {
    fn scan(&self, layout: &Layout, p: &ScanParams, op: ScanOp, reverse: bool) -> Result<Self> {
        let run = |s| (s, layout, p, op, reverse);
        Ok(match self.dtype() {
            DType::F32 => CpuStorage::from_vec(scan_lines::<f32>(run(self))?),
            DType::F64 => CpuStorage::from_vec(scan_lines::<f64>(run(self))?),
            DType::F16 => CpuStorage::from_vec(scan_lines::<f16>(run(self))?),
            DType::BF16 => CpuStorage::from_vec(scan_lines::<bf16>(run(self))?),
            DType::I64 => CpuStorage::from_vec(scan_lines::<i64>(run(self))?),
            dtype @ DType::U8 => return Err(Error::UnsupportedDType { op: "scan", dtype }),
        })
    }

    fn cumprod_backward(
        &self,
        layouts: [&Layout; 3],
        out: &CpuStorage,
        grad: &CpuStorage,
        p: &ScanParams,
    ) -> Result<CpuStorage> {
        let dtype = self.dtype();
        if !dtype.is_float() {
            return Err(Error::UnsupportedDType {
                op: "cumprod_backward",
                dtype,
            });
        }
        same_dtype("cumprod_backward", dtype, out.dtype())?;
        same_dtype("cumprod_backward", dtype, grad.dtype())?;
        // Computed in f64 for every float dtype (the CUDA kernel does the same).
        let x = contiguous_as::<f64>(self, layouts[0])?;
        let o = contiguous_as::<f64>(out, layouts[1])?;
        let g = contiguous_as::<f64>(grad, layouts[2])?;
        let gx = cumprod_grad(&x, &o, &g, p)?;
        CpuStorage::from_vec(gx).convert(dtype)
    }
}

/// Runs `f(block, line_in_block)` for every line, parallel over the `outer` blocks of
/// `len * inner` elements, each `f` writing its line of `out`.
fn for_each_line<T: Send>(
    out: &mut [T],
    p: &ScanParams,
    f: impl Fn(usize, usize, &mut [T]) + Sync,
) {
    let block = p.len * p.inner;
    if block == 0 {
        return;
    }
    out.par_chunks_mut(block).enumerate().for_each(|(o, dst)| {
        for i in 0..p.inner {
            f(o, i, dst);
        }
    });
}

/// The positions of a line's elements, from its first or (`reverse`) its last.
fn line_positions(p: &ScanParams, i: usize, reverse: bool) -> impl Iterator<Item = usize> {
    let (len, inner) = (p.len, p.inner);
    (0..len).map(move |j| i + inner * if reverse { len - 1 - j } else { j })
}

/// The scan of one dtype; the arguments of [`ScanOps::scan`], the storage first.
fn scan_lines<T: Acc + Send + Sync>(
    (s, layout, p, op, reverse): (&CpuStorage, &Layout, &ScanParams, ScanOp, bool),
) -> Result<Vec<T>> {
    let x = contiguous_as::<T>(s, layout)?;
    let mut out = alloc::filled(p.numel(), T::default())?;
    let block = p.len * p.inner;
    for_each_line(&mut out, p, |o, i, dst| {
        let src = &x[o * block..(o + 1) * block];
        let mut acc: Option<T::A> = None;
        for at in line_positions(p, i, reverse) {
            let v = src[at].widen();
            let next = acc.map_or(v, |a| T::combine(op, a, v));
            acc = Some(next);
            dst[at] = T::narrow(next);
        }
    });
    Ok(out)
}

/// [`ScanOps::cumprod_backward`] in f64.
fn cumprod_grad(x: &[f64], out: &[f64], g: &[f64], p: &ScanParams) -> Result<Vec<f64>> {
    let mut gx = alloc::filled(p.numel(), 0.0)?;
    let block = p.len * p.inner;
    for_each_line(&mut gx, p, |o, i, dst| {
        let base = o * block;
        let at = |j: usize| i + p.inner * j;
        let zero = (0..p.len)
            .find(|&j| x[base + at(j)] == 0.0)
            .unwrap_or(p.len);
        // Before the first zero: Σ_{j≥k} g·out, over all j (terms past a zero are 0),
        // divided by x[k].
        let mut tail = 0.0;
        for j in (0..p.len).rev() {
            tail += g[base + at(j)] * out[base + at(j)];
            if j < zero {
                dst[at(j)] = tail / x[base + at(j)];
            }
        }
        if zero < p.len {
            // At the zero: the products without x[zero], which is 0.
            let mut prefix = if zero == 0 {
                1.0
            } else {
                out[base + at(zero - 1)]
            };
            let mut sum = 0.0;
            for j in zero..p.len {
                if j > zero {
                    prefix *= x[base + at(j)];
                }
                sum += g[base + at(j)] * prefix;
            }
            dst[at(zero)] = sum;
        }
    });
    Ok(gx)
}
