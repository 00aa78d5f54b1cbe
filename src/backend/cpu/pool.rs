//! Pooling on the CPU (max with argmax indices, average; fixed or adaptive windows)
//! over (planes, d, h, w) volumes, parallel over planes. Windows follow PyTorch's
//! kernels exactly ([`PoolParams::span`]): the max keeps the first largest value (a
//! NaN wins) of its dilated window, the average divides by PyTorch's divisor.

use super::{PoolOps, PoolParams, Span};
use crate::backend::cpu::alloc;
use crate::backend::cpu::dtype::{contiguous_as, float_kernel, same_dtype};
use crate::backend::cpu::gemm_util::Float;
use crate::backend::cpu::{per_plane, CpuStorage};
use crate::shape::Layout;
use crate::{DType, Result};

impl PoolOps for CpuStorage {
    /// Max pooling; see [`crate::backend::pool::PoolOps::max_pool`].
    fn max_pool(&self, layout: &Layout, p: &PoolParams) -> Result<(CpuStorage, CpuStorage)> {
        let mut indices = alloc::filled(p.output_len(), 0i64)?;
        let values = float_kernel!("max_pool", self.dtype(), |T| {
            let x = contiguous_as::<T>(self, layout)?;
            max_forward(p, &x, &mut indices)?
        });
        Ok((values, CpuStorage::I64(indices)))
    }

    /// Gradient of max pooling; see [`crate::backend::pool::PoolOps::max_pool_backward`].
    fn max_pool_backward(
        &self,
        gl: &Layout,
        indices: &CpuStorage,
        il: &Layout,
        p: &PoolParams,
    ) -> Result<CpuStorage> {
        same_dtype("max_pool_backward", DType::I64, indices.dtype())?;
        let idx = contiguous_as::<i64>(indices, il)?;
        Ok(float_kernel!("max_pool_backward", self.dtype(), |T| {
            let g = contiguous_as::<T>(self, gl)?;
            max_backward(p, &g, &idx)?
        }))
    }

    /// Average pooling; see [`crate::backend::pool::PoolOps::avg_pool`].
    fn avg_pool(&self, layout: &Layout, p: &PoolParams) -> Result<CpuStorage> {
        Ok(float_kernel!("avg_pool", self.dtype(), |T| {
            let x = contiguous_as::<T>(self, layout)?;
            avg_forward(p, &x)?
        }))
    }

    /// Gradient of average pooling; see [`crate::backend::pool::PoolOps::avg_pool_backward`].
    fn avg_pool_backward(&self, gl: &Layout, p: &PoolParams) -> Result<CpuStorage> {
        Ok(float_kernel!("avg_pool_backward", self.dtype(), |T| {
            let g = contiguous_as::<T>(self, gl)?;
            avg_backward(p, &g)?
        }))
    }
}

/// The window of every output along each axis, computed once per call rather than
/// once per output.
fn spans(p: &PoolParams, max: bool) -> Result<[Vec<Span>; 3]> {
    let axis = |a: usize| alloc::collect((0..p.output[a]).map(|o| p.span(a, o, max)));
    Ok([axis(0)?, axis(1)?, axis(2)?])
}

/// Calls `f(output index in its volume, depth, height, width spans)` for each output
/// of a volume, in row-major order.
fn each_window(spans: &[Vec<Span>; 3], mut f: impl FnMut(usize, &Span, &Span, &Span)) {
    let mut j = 0;
    for sz in &spans[0] {
        for sy in &spans[1] {
            for sx in &spans[2] {
                f(j, sz, sy, sx);
                j += 1;
            }
        }
    }
}

/// The start of each row (`(z, y)`) of a window in its volume, `[.., h, w]` in size.
fn window_rows(sz: &Span, sy: &Span, [_, h, w]: [usize; 3]) -> impl Iterator<Item = usize> {
    let sy = *sy;
    (sz.lo..sz.hi).step_by(sz.step).flat_map(move |z| {
        (sy.lo..sy.hi)
            .step_by(sy.step)
            .map(move |y| (z * h + y) * w)
    })
}

fn max_forward<T: Float>(p: &PoolParams, x: &[T], indices: &mut [i64]) -> Result<Vec<T>> {
    let (ip, op) = (p.input_plane(), p.output_plane());
    let spans = spans(p, true)?;
    let neg_inf = T::from_f64(f64::NEG_INFINITY);
    let mut pairs = alloc::filled(p.output_len(), (T::default(), 0i64))?;
    per_plane(&mut pairs, op, p.input_len(), |plane, o| {
        let src = &x[plane * ip..(plane + 1) * ip];
        let [_, h, w] = p.input;
        each_window(&spans, |j, sz, sy, sx| {
            let (mut best, mut at) = (neg_inf, (sz.lo * h + sy.lo) * w + sx.lo);
            for row in window_rows(sz, sy, p.input) {
                for i in (row + sx.lo..row + sx.hi).step_by(sx.step) {
                    let v = src[i];
                    if v > best || v.is_nan() {
                        best = v;
                        at = i;
                    }
                }
            }
            o[j] = (best, at as i64);
        });
    });
    indices
        .iter_mut()
        .zip(&pairs)
        .for_each(|(i, &(_, at))| *i = at);
    alloc::collect(pairs.into_iter().map(|(v, _)| v))
}

fn max_backward<T: Float>(p: &PoolParams, g: &[T], idx: &[i64]) -> Result<Vec<T>> {
    let (ip, op) = (p.input_plane(), p.output_plane());
    let mut gx = alloc::filled(p.input_len(), T::default())?;
    per_plane(&mut gx, ip, p.input_len(), |plane, dst| {
        let gs = &g[plane * op..(plane + 1) * op];
        let is = &idx[plane * op..(plane + 1) * op];
        for (&v, &i) in gs.iter().zip(is) {
            // Indices come from `max_forward` over this volume, so they are in range;
            // a foreign index tensor is ignored where it points outside the volume.
            if let Some(slot) = usize::try_from(i).ok().and_then(|i| dst.get_mut(i)) {
                *slot = slot.add(v);
            }
        }
    });
    Ok(gx)
}

/// An average window's divisor: the product of its axes' counts.
fn divisor<T: Float>(sz: &Span, sy: &Span, sx: &Span) -> T {
    T::from_f64((sz.count * sy.count * sx.count) as f64)
}

fn avg_forward<T: Float>(p: &PoolParams, x: &[T]) -> Result<Vec<T>> {
    let (ip, op) = (p.input_plane(), p.output_plane());
    let spans = spans(p, false)?;
    let mut out = alloc::filled(p.output_len(), T::default())?;
    per_plane(&mut out, op, p.input_len(), |plane, o| {
        let src = &x[plane * ip..(plane + 1) * ip];
        each_window(&spans, |j, sz, sy, sx| {
            if sz.lo == sz.hi || sy.lo == sy.hi || sx.lo == sx.hi {
                return; // a window that reads no input averages to 0
            }
            let mut sum = T::default();
            for row in window_rows(sz, sy, p.input) {
                for &v in &src[row + sx.lo..row + sx.hi] {
                    sum = sum.add(v);
                }
            }
            o[j] = sum.div(divisor(sz, sy, sx));
        });
    });
    Ok(out)
}

fn avg_backward<T: Float>(p: &PoolParams, g: &[T]) -> Result<Vec<T>> {
    let (ip, op) = (p.input_plane(), p.output_plane());
    let spans = spans(p, false)?;
    let mut gx = alloc::filled(p.input_len(), T::default())?;
    per_plane(&mut gx, ip, p.input_len(), |plane, dst| {
        let gs = &g[plane * op..(plane + 1) * op];
        each_window(&spans, |j, sz, sy, sx| {
            let share = gs[j].div(divisor(sz, sy, sx));
            for row in window_rows(sz, sy, p.input) {
                for a in &mut dst[row + sx.lo..row + sx.hi] {
                    *a = a.add(share);
                }
            }
        });
    });
    Ok(gx)
}
