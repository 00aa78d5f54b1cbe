//! 2-D pooling on the CPU (max with argmax indices, average, adaptive average),
//! parallel over (image, channel) planes. Windows follow PyTorch's kernels exactly:
//! the max keeps the first largest value (a NaN wins) of its dilated window, the
//! average divides by the window's size including padding (`count_include_pad=True`)
//! or by the input elements it holds.

use super::{AdaptivePool2dParams, Pool2dParams, PoolOps};
use crate::backend::cpu::alloc;
use crate::backend::cpu::dtype::{contiguous_as, float_kernel};
use crate::backend::cpu::gemm_util::Float;
use crate::backend::cpu::{per_plane, CpuStorage};
use crate::shape::Layout;
use crate::{DType, Result};

impl PoolOps for CpuStorage {
    /// Max pooling; see [`crate::backend::pool::PoolOps::max_pool2d`].
    fn max_pool2d(&self, layout: &Layout, p: &Pool2dParams) -> Result<(CpuStorage, CpuStorage)> {
        let mut indices = alloc::filled(p.output_len(), 0i64)?;
        let values = float_kernel!("max_pool2d", self.dtype(), |T| {
            let x = contiguous_as::<T>(self, layout)?;
            max_forward(p, &x, &mut indices)?
        });
        Ok((values, CpuStorage::I64(indices)))
    }

    /// Gradient of max pooling; see [`crate::backend::pool::PoolOps::max_pool2d_backward`].
    fn max_pool2d_backward(
        &self,
        gl: &Layout,
        indices: &CpuStorage,
        il: &Layout,
        p: &Pool2dParams,
    ) -> Result<CpuStorage> {
        crate::backend::cpu::dtype::same_dtype("max_pool2d_backward", DType::I64, indices.dtype())?;
        let idx = contiguous_as::<i64>(indices, il)?;
        Ok(float_kernel!("max_pool2d_backward", self.dtype(), |T| {
            let g = contiguous_as::<T>(self, gl)?;
            max_backward(p, &g, &idx)?
        }))
    }

    /// Average pooling; see [`crate::backend::pool::PoolOps::avg_pool2d`].
    fn avg_pool2d(&self, layout: &Layout, p: &Pool2dParams) -> Result<CpuStorage> {
        Ok(float_kernel!("avg_pool2d", self.dtype(), |T| {
            let x = contiguous_as::<T>(self, layout)?;
            avg_forward(p, &x)?
        }))
    }

    /// Gradient of average pooling; see [`crate::backend::pool::PoolOps::avg_pool2d_backward`].
    fn avg_pool2d_backward(&self, gl: &Layout, p: &Pool2dParams) -> Result<CpuStorage> {
        Ok(float_kernel!("avg_pool2d_backward", self.dtype(), |T| {
            let g = contiguous_as::<T>(self, gl)?;
            avg_backward(p, &g)?
        }))
    }

    /// Adaptive average pooling; see [`crate::backend::pool::PoolOps::adaptive_avg_pool2d`].
    fn adaptive_avg_pool2d(&self, layout: &Layout, p: &AdaptivePool2dParams) -> Result<CpuStorage> {
        Ok(float_kernel!("adaptive_avg_pool2d", self.dtype(), |T| {
            let x = contiguous_as::<T>(self, layout)?;
            adaptive_forward(p, &x)?
        }))
    }

    /// Gradient of adaptive average pooling.
    fn adaptive_avg_pool2d_backward(
        &self,
        gl: &Layout,
        p: &AdaptivePool2dParams,
    ) -> Result<CpuStorage> {
        Ok(float_kernel!(
            "adaptive_avg_pool2d_backward",
            self.dtype(),
            |T| {
                let g = contiguous_as::<T>(self, gl)?;
                adaptive_backward(p, &g)?
            }
        ))
    }
}

/// The first input index of dilated window `o` inside the input (its start moved on
/// by whole dilations past the padding) and the end of its span (clipped to `size`):
/// PyTorch's `hstart`/`hend` of max pooling. The window reads `first..end` by `dilation`.
fn window(
    o: usize,
    stride: usize,
    pad: usize,
    k: usize,
    dilation: usize,
    size: usize,
) -> (usize, usize) {
    let start = (o * stride) as isize - pad as isize;
    let end = (start + ((k - 1) * dilation) as isize + 1).min(size as isize);
    // Past the padding by whole dilations: `start + ceil(-start / d) · d`.
    let first = match usize::try_from(-start) {
        Ok(before) => before.div_ceil(dilation) * dilation - before,
        Err(_) => start as usize,
    };
    (first, end.max(0) as usize)
}

fn max_forward<T: Float>(p: &Pool2dParams, x: &[T], indices: &mut [i64]) -> Result<Vec<T>> {
    let (ih, iw, oh, ow) = (p.h, p.w, p.out_h, p.out_w);
    let neg_inf = T::from_f64(f64::NEG_INFINITY);
    let mut pairs = alloc::filled(p.output_len(), (T::default(), 0i64))?;
    per_plane(&mut pairs, oh * ow, p.input_len(), |plane, o| {
        let src = &x[plane * ih * iw..(plane + 1) * ih * iw];
        let (dh, dw) = (p.dilation_h, p.dilation_w);
        for oy in 0..oh {
            let (y0, y1) = window(oy, p.stride_h, p.pad_h, p.kh, dh, ih);
            for ox in 0..ow {
                let (x0, x1) = window(ox, p.stride_w, p.pad_w, p.kw, dw, iw);
                let (mut best, mut at) = (neg_inf, y0 * iw + x0);
                for y in (y0..y1).step_by(dh) {
                    for xx in (x0..x1).step_by(dw) {
                        let v = src[y * iw + xx];
                        if v > best || v.is_nan() {
                            best = v;
                            at = y * iw + xx;
                        }
                    }
                }
                o[oy * ow + ox] = (best, at as i64);
            }
        }
    });
    indices
        .iter_mut()
        .zip(&pairs)
        .for_each(|(i, &(_, at))| *i = at);
    alloc::collect(pairs.into_iter().map(|(v, _)| v))
}

fn max_backward<T: Float>(p: &Pool2dParams, g: &[T], idx: &[i64]) -> Result<Vec<T>> {
    let (ihw, ohw) = (p.h * p.w, p.out_h * p.out_w);
    let mut gx = alloc::filled(p.input_len(), T::default())?;
    per_plane(&mut gx, ihw, p.input_len(), |plane, dst| {
        let gs = &g[plane * ohw..(plane + 1) * ohw];
        let is = &idx[plane * ohw..(plane + 1) * ohw];
        for (&v, &i) in gs.iter().zip(is) {
            // Indices come from `max_forward` over this plane, so they are in range;
            // a foreign index tensor is ignored where it points outside the plane.
            if let Some(slot) = usize::try_from(i).ok().and_then(|i| dst.get_mut(i)) {
                *slot = slot.add(v);
            }
        }
    });
    Ok(gx)
}

/// Window bounds of average pooling and its share of the divisor: with
/// `include_pad`, PyTorch's `pool_size`, which counts padding but not the part of a
/// window beyond the padded input (ceil mode's overhang); else the input rows alone.
fn avg_window(o: usize, p: &Pool2dParams, vertical: bool) -> (usize, usize, usize) {
    let (stride, pad, k, size) = if vertical {
        (p.stride_h, p.pad_h, p.kh, p.h)
    } else {
        (p.stride_w, p.pad_w, p.kw, p.w)
    };
    let start = (o * stride) as isize - pad as isize;
    let end = (start + k as isize).min((size + pad) as isize);
    let (s, e) = (start.max(0) as usize, end.clamp(0, size as isize) as usize);
    let e = e.max(s);
    let count = if p.count_include_pad {
        (end - start).max(0) as usize
    } else {
        e - s
    };
    (s, e, count)
}

fn avg_forward<T: Float>(p: &Pool2dParams, x: &[T]) -> Result<Vec<T>> {
    let (ih, iw, oh, ow) = (p.h, p.w, p.out_h, p.out_w);
    let mut out = alloc::filled(p.output_len(), T::default())?;
    per_plane(&mut out, oh * ow, p.input_len(), |plane, o| {
        let src = &x[plane * ih * iw..(plane + 1) * ih * iw];
        for oy in 0..oh {
            let (y0, y1, ch) = avg_window(oy, p, true);
            for ox in 0..ow {
                let (x0, x1, cw) = avg_window(ox, p, false);
                let mut sum = T::default();
                for y in y0..y1 {
                    for &v in &src[y * iw + x0..y * iw + x1] {
                        sum = sum.add(v);
                    }
                }
                o[oy * ow + ox] = if y0 < y1 && x0 < x1 {
                    sum.div(T::from_f64((ch * cw) as f64))
                } else {
                    T::default()
                };
            }
        }
    });
    Ok(out)
}

fn avg_backward<T: Float>(p: &Pool2dParams, g: &[T]) -> Result<Vec<T>> {
    let (ih, iw, oh, ow) = (p.h, p.w, p.out_h, p.out_w);
    let mut gx = alloc::filled(p.input_len(), T::default())?;
    per_plane(&mut gx, ih * iw, p.input_len(), |plane, dst| {
        let gs = &g[plane * oh * ow..(plane + 1) * oh * ow];
        for oy in 0..oh {
            let (y0, y1, ch) = avg_window(oy, p, true);
            for ox in 0..ow {
                let (x0, x1, cw) = avg_window(ox, p, false);
                let share = gs[oy * ow + ox].div(T::from_f64((ch * cw) as f64));
                for y in y0..y1 {
                    for a in &mut dst[y * iw + x0..y * iw + x1] {
                        *a = a.add(share);
                    }
                }
            }
        }
    });
    Ok(gx)
}

fn adaptive_forward<T: Float>(p: &AdaptivePool2dParams, x: &[T]) -> Result<Vec<T>> {
    let (ih, iw, oh, ow) = (p.h, p.w, p.out_h, p.out_w);
    let mut out = alloc::filled(p.planes() * oh * ow, T::default())?;
    let work = p.planes() * ih * iw;
    per_plane(&mut out, oh * ow, work, |plane, o| {
        let src = &x[plane * ih * iw..(plane + 1) * ih * iw];
        for oy in 0..oh {
            let (y0, y1) = AdaptivePool2dParams::window(oy, ih, oh);
            for ox in 0..ow {
                let (x0, x1) = AdaptivePool2dParams::window(ox, iw, ow);
                let mut sum = T::default();
                for y in y0..y1 {
                    for &v in &src[y * iw + x0..y * iw + x1] {
                        sum = sum.add(v);
                    }
                }
                o[oy * ow + ox] = sum.div(T::from_f64(((y1 - y0) * (x1 - x0)) as f64));
            }
        }
    });
    Ok(out)
}

fn adaptive_backward<T: Float>(p: &AdaptivePool2dParams, g: &[T]) -> Result<Vec<T>> {
    let (ih, iw, oh, ow) = (p.h, p.w, p.out_h, p.out_w);
    let mut gx = alloc::filled(p.planes() * ih * iw, T::default())?;
    let work = p.planes() * ih * iw;
    per_plane(&mut gx, ih * iw, work, |plane, dst| {
        let gs = &g[plane * oh * ow..(plane + 1) * oh * ow];
        for oy in 0..oh {
            let (y0, y1) = AdaptivePool2dParams::window(oy, ih, oh);
            for ox in 0..ow {
                let (x0, x1) = AdaptivePool2dParams::window(ox, iw, ow);
                let share = gs[oy * ow + ox].div(T::from_f64(((y1 - y0) * (x1 - x0)) as f64));
                for y in y0..y1 {
                    for a in &mut dst[y * iw + x0..y * iw + x1] {
                        *a = a.add(share);
                    }
                }
            }
        }
    });
    Ok(gx)
}
