//! Fused optimizer steps on the CPU, the reference for `kernels/optim.cu`: one loop
//! reads each element of the parameter, its gradient and its state once, computes in
//! f32 (f32, f16, bf16) or f64, and writes the parameter and the state back in place.
//! The element rules ([`sgd_element`], [`adam_element`]) are written once, with the
//! scalars converted to the compute type once per step, as the kernel does.

use super::{check_step_operands, AdamStep, OptimOps, SgdStep};
use crate::backend::cpu::dtype::contiguous_as;
use crate::backend::cpu::{vectorized, CpuStorage};
use crate::dtype::WithDType;
use crate::shape::Layout;
use crate::{DType, Error, Result};
use half::{bf16, f16};
use std::ops::{Add, Div, Mul, Sub};

/// The arithmetic a step computes in: f32 or f64.
trait Compute:
    WithDType
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
{
    /// The square root.
    fn sqrt(self) -> Self;
    /// True for NaN.
    fn is_nan(self) -> bool;
}

impl Compute for f32 {
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
}

impl Compute for f64 {
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
}

/// An f64 scalar in the compute type.
fn c<C: Compute>(v: f64) -> C {
    C::from_f64(v)
}

/// `$body` with `$t` the storage type of `$dtype` and `$c` its compute type; an
/// error for non-float dtypes.
macro_rules! per_float_dtype {
    ($op:expr, $dtype:expr, |$t:ident, $c:ident| $body:expr) => {
        match $dtype {
            DType::F32 => {
                type $t = f32;
                type $c = f32;
                $body
            }
            DType::F64 => {
                type $t = f64;
                type $c = f64;
                $body
            }
            DType::F16 => {
                type $t = f16;
                type $c = f32;
                $body
            }
            DType::BF16 => {
                type $t = bf16;
                type $c = f32;
                $body
            }
            dtype @ (DType::I64 | DType::U8) => Err(Error::UnsupportedDType { op: $op, dtype }),
        }
    };
}

/// The storage's elements as `T`, writable (the dtypes were checked to agree).
fn typed<'a, T: WithDType>(op: &'static str, s: &'a mut CpuStorage) -> Result<&'a mut [T]> {
    let dtype = s.dtype();
    s.as_mut_slice::<T>().ok_or(Error::DTypeMismatch {
        op,
        expected: T::DTYPE,
        got: dtype,
    })
}

/// The storage indices of the parameter's elements in row-major order.
fn param_indices(layout: &Layout) -> Box<dyn Iterator<Item = usize> + '_> {
    match layout.contiguous_range() {
        Some(r) => Box::new(r),
        None => Box::new(layout.indices()),
    }
}

/// SGD's scalars in the compute type.
struct SgdScalars<C> {
    lr: C,
    momentum: C,
    grad_scale: C,
    weight_decay: C,
}

/// One element of an SGD step: the new parameter and the new momentum buffer.
fn sgd_element<C: Compute>(
    p: C,
    mut g: C,
    buf: Option<C>,
    s: &SgdStep,
    k: &SgdScalars<C>,
) -> (C, Option<C>) {
    if s.weight_decay != 0.0 {
        g = g + k.weight_decay * p;
    }
    let buf = buf.map(|b| {
        let b = if s.first {
            g
        } else {
            k.momentum * b + k.grad_scale * g
        };
        g = if s.nesterov { g + k.momentum * b } else { b };
        b
    });
    (p - k.lr * g, buf)
}

/// Adam's scalars in the compute type.
struct AdamScalars<C> {
    decay: C,
    weight_decay: C,
    beta1: C,
    one_minus_beta1: C,
    beta2: C,
    one_minus_beta2: C,
    eps: C,
    step_size: C,
    bias2_sqrt: C,
}

/// One element of an Adam step: the new parameter, m, v and v_max. The maximum
/// propagates NaN, as `torch.maximum` does.
#[inline(always)]
fn adam_element<C: Compute>(
    mut p: C,
    mut g: C,
    (m, v, v_max): (C, C, Option<C>),
    s: &AdamStep,
    k: &AdamScalars<C>,
) -> (C, C, C, Option<C>) {
    if s.weight_decay != 0.0 {
        if s.decoupled {
            p = p * k.decay;
        } else {
            g = g + k.weight_decay * p;
        }
    }
    let m = m * k.beta1 + g * k.one_minus_beta1;
    let v = v * k.beta2 + g * g * k.one_minus_beta2;
    let v_max = v_max.map(|prev| if v > prev || v.is_nan() { v } else { prev });
    let denom = v_max.unwrap_or(v).sqrt() / k.bias2_sqrt + k.eps;
    (p - m / denom * k.step_size, m, v, v_max)
}

/// Adam on a contiguous parameter without AMSGrad's maximum (the common case) as
/// zipped slices inside the SIMD dispatch, where the loop vectorizes; the same
/// [`adam_element`] as the general loop, so the results are the same bits.
struct AdamSlices<'a, T, C> {
    p: &'a mut [T],
    g: &'a [C],
    m: &'a mut [T],
    v: &'a mut [T],
    step: &'a AdamStep,
    k: &'a AdamScalars<C>,
}

impl<T: WithDType, C: Compute> pulp::WithSimd for AdamSlices<'_, T, C> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Self {
            p,
            g,
            m,
            v,
            step,
            k,
        } = self;
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let state = (wide(*m), wide(*v), None);
            let (new_p, new_m, new_v, _) = adam_element(wide(*p), g, state, step, k);
            (*p, *m, *v) = (narrow(new_p), narrow(new_m), narrow(new_v));
        }
    }
}

/// A storage element in the compute type.
#[inline(always)]
fn wide<T: WithDType, C: Compute>(x: T) -> C {
    C::from_f64(x.to_f64())
}

/// A compute-type value rounded to the storage type.
#[inline(always)]
fn narrow<T: WithDType, C: Compute>(x: C) -> T {
    T::from_f64(x.to_f64())
}

impl OptimOps for CpuStorage {
    fn sgd_step(
        &mut self,
        layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
        momentum_buf: Option<&mut CpuStorage>,
        step: &SgdStep,
    ) -> Result<()> {
        const OP: &str = "sgd_step";
        let states: Vec<_> = momentum_buf.iter().map(|b| (b.dtype(), b.len())).collect();
        let (dtype, gd) = (self.dtype(), grad.dtype());
        check_step_operands(OP, layout, dtype, grad_layout, gd, &states)?;
        per_float_dtype!(OP, dtype, |T, C| {
            let k = SgdScalars::<C> {
                lr: c(step.lr),
                momentum: c(step.momentum),
                grad_scale: c(1.0 - step.dampening),
                weight_decay: c(step.weight_decay),
            };
            let g = contiguous_as::<C>(grad, grad_layout)?;
            let p = typed::<T>(OP, self)?;
            let mut buf = momentum_buf.map(|b| typed::<T>(OP, b)).transpose()?;
            for (i, pi) in param_indices(layout).enumerate() {
                let b = buf.as_ref().map(|b| wide(b[i]));
                let (new_p, new_b) = sgd_element(wide(p[pi]), g[i], b, step, &k);
                p[pi] = narrow::<T, C>(new_p);
                if let (Some(buf), Some(b)) = (buf.as_mut(), new_b) {
                    buf[i] = narrow::<T, C>(b);
                }
            }
            Ok(())
        })
    }

    fn adam_step(
        &mut self,
        layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
        m: &mut CpuStorage,
        v: &mut CpuStorage,
        v_max: Option<&mut CpuStorage>,
        step: &AdamStep,
    ) -> Result<()> {
        const OP: &str = "adam_step";
        let mut states = vec![(m.dtype(), m.len()), (v.dtype(), v.len())];
        states.extend(v_max.iter().map(|s| (s.dtype(), s.len())));
        let (dtype, gd) = (self.dtype(), grad.dtype());
        check_step_operands(OP, layout, dtype, grad_layout, gd, &states)?;
        per_float_dtype!(OP, dtype, |T, C| {
            let k = AdamScalars::<C> {
                decay: c(1.0 - step.lr * step.weight_decay),
                weight_decay: c(step.weight_decay),
                beta1: c(step.beta1),
                one_minus_beta1: c(1.0 - step.beta1),
                beta2: c(step.beta2),
                one_minus_beta2: c(1.0 - step.beta2),
                eps: c(step.eps),
                step_size: c(step.step_size),
                bias2_sqrt: c(step.bias2_sqrt),
            };
            let g = contiguous_as::<C>(grad, grad_layout)?;
            let p = typed::<T>(OP, self)?;
            let (m, v) = (typed::<T>(OP, m)?, typed::<T>(OP, v)?);
            let mut v_max = v_max.map(|s| typed::<T>(OP, s)).transpose()?;
            if let (Some(r), None) = (layout.contiguous_range(), v_max.as_ref()) {
                let p = &mut p[r];
                vectorized(AdamSlices {
                    p,
                    g: &g,
                    m,
                    v,
                    step,
                    k: &k,
                });
                return Ok(());
            }
            for (i, pi) in param_indices(layout).enumerate() {
                let prev_max = v_max.as_ref().map(|s| wide(s[i]));
                let state = (wide(m[i]), wide(v[i]), prev_max);
                let (new_p, new_m, new_v, new_max) =
                    adam_element(wide(p[pi]), g[i], state, step, &k);
                p[pi] = narrow::<T, C>(new_p);
                m[i] = narrow::<T, C>(new_m);
                v[i] = narrow::<T, C>(new_v);
                if let (Some(s), Some(x)) = (v_max.as_mut(), new_max) {
                    s[i] = narrow::<T, C>(x);
                }
            }
            Ok(())
        })
    }
}
