//! Resampling on the CPU, parallel over planes: per axis, each output index reads one
//! or two input indices ("taps") with weights computed exactly as PyTorch's CPU
//! kernels do (UpSample.h: `nearest_idx`, `area_pixel_compute_scale`,
//! `area_pixel_compute_source_index`, `guard_index_and_lambda`), in the compute type
//! (f64 for f64, f32 otherwise); an output is the weighted sum over its taps' product.
//! The backward scatters each output's gradient along the same taps, plane by plane in
//! output order (deterministic).

use super::{UpsampleAxis, UpsampleMode, UpsampleOps, UpsampleParams};
use crate::backend::cpu::alloc;
use crate::backend::cpu::dtype::{contiguous_as, float_kernel};
use crate::backend::cpu::gemm_util::Float;
use crate::backend::cpu::{per_plane, CpuStorage};
use crate::shape::Layout;
use crate::Result;

impl UpsampleOps for CpuStorage {
    fn upsample(&self, layout: &Layout, p: &UpsampleParams) -> Result<CpuStorage> {
        Ok(float_kernel!("upsample", self.dtype(), |T| {
            let x = contiguous_as::<T>(self, layout)?;
            forward::<T>(p, &x)?
        }))
    }

    fn upsample_backward(&self, gl: &Layout, p: &UpsampleParams) -> Result<CpuStorage> {
        Ok(float_kernel!("upsample_backward", self.dtype(), |T| {
            let g = contiguous_as::<T>(self, gl)?;
            backward::<T>(p, &g)?
        }))
    }
}

/// The input indices and weights one output index reads along an axis.
#[derive(Clone, Copy)]
struct Taps<T> {
    index: [usize; 2],
    weight: [T; 2],
    /// 1 (nearest, or a linear axis that copies) or 2.
    len: usize,
}

/// The taps of every output index of axis `a`.
fn axis_taps<T: Float>(a: &UpsampleAxis, mode: UpsampleMode, align: bool) -> Vec<Taps<T>> {
    let one = T::from_f64(1.0);
    let copy = |i| Taps {
        index: [i, i],
        weight: [one, T::default()],
        len: 1,
    };
    (0..a.output)
        .map(|o| match mode {
            // PyTorch's linear kernels copy an axis whose size does not change.
            _ if a.input == a.output => copy(o),
            UpsampleMode::Nearest => copy(nearest_source(o, a)),
            UpsampleMode::Linear => {
                let (i0, l1) = linear_source::<T>(o, a, align);
                Taps {
                    index: [i0, i0 + usize::from(i0 + 1 < a.input)],
                    weight: [one.sub(l1), l1],
                    len: 2,
                }
            }
        })
        .collect()
}

/// PyTorch's `nearest_idx`: output `o` reads `min(floor(o · scale), input − 1)` in
/// f32, `scale` being `1 / scale_factor` when given, else `input / output`
/// (`o / 2` exactly when the output doubles the input).
fn nearest_source(o: usize, a: &UpsampleAxis) -> usize {
    if a.output == 2 * a.input {
        return o >> 1;
    }
    let scale = match a.scale {
        Some(s) => (1.0 / s) as f32,
        None => a.input as f32 / a.output as f32,
    };
    ((o as f32 * scale).floor() as usize).min(a.input - 1)
}

/// PyTorch's linear source of output `o`: the first input index and the weight
/// `lambda1` of the next. The real index is computed in f64 and rounded to `T`, as
/// `area_pixel_compute_source_index` does (`scale * (o + 0.5) - 0.5`, clamped at 0).
fn linear_source<T: Float>(o: usize, a: &UpsampleAxis, align: bool) -> (usize, T) {
    let ratio = if align {
        if a.output > 1 {
            T::from_f64((a.input - 1) as f64).div(T::from_f64((a.output - 1) as f64))
        } else {
            T::default()
        }
    } else {
        match a.scale {
            Some(s) => T::from_f64(1.0 / s),
            None => T::from_f64(a.input as f64).div(T::from_f64(a.output as f64)),
        }
    };
    let real = if align {
        ratio.mul(T::from_f64(o as f64))
    } else {
        let r = T::from_f64(ratio.to_f64() * (o as f64 + 0.5) - 0.5);
        if r < T::default() {
            T::default()
        } else {
            r
        }
    };
    // `real` ≥ 0, so truncation is floor.
    let i0 = (real.to_f64() as usize).min(a.input - 1);
    let l1 = real.sub(T::from_f64(i0 as f64));
    let l1 = if l1 < T::default() {
        T::default()
    } else if l1 > T::from_f64(1.0) {
        T::from_f64(1.0)
    } else {
        l1
    };
    (i0, l1)
}

/// The taps of the three axes.
fn all_taps<T: Float>(p: &UpsampleParams) -> [Vec<Taps<T>>; 3] {
    p.axes.map(|a| axis_taps(&a, p.mode, p.align_corners))
}

fn forward<T: Float>(p: &UpsampleParams, x: &[T]) -> Result<Vec<T>> {
    let [td, th, tw] = all_taps::<T>(p);
    let [d, h, w] = p.axes.map(|a| a.input);
    let in_plane = d * h * w;
    let out_plane = td.len() * th.len() * tw.len();
    let mut out = alloc::filled(p.output_len(), T::default())?;
    per_plane(&mut out, out_plane, p.output_len(), |plane, o| {
        let src = &x[plane * in_plane..(plane + 1) * in_plane];
        let mut at = 0;
        for tz in &td {
            for ty in &th {
                for tx in &tw {
                    // PyTorch's nesting: the width's sum inside the height's inside the
                    // depth's.
                    let mut acc = T::default();
                    for a in 0..tz.len {
                        let mut plane_sum = T::default();
                        for b in 0..ty.len {
                            let row = &src[(tz.index[a] * h + ty.index[b]) * w..];
                            let mut row_sum = T::default();
                            for c in 0..tx.len {
                                row_sum = row_sum.add(tx.weight[c].mul(row[tx.index[c]]));
                            }
                            plane_sum = plane_sum.add(ty.weight[b].mul(row_sum));
                        }
                        acc = acc.add(tz.weight[a].mul(plane_sum));
                    }
                    o[at] = acc;
                    at += 1;
                }
            }
        }
    });
    Ok(out)
}

fn backward<T: Float>(p: &UpsampleParams, g: &[T]) -> Result<Vec<T>> {
    let [td, th, tw] = all_taps::<T>(p);
    let [d, h, w] = p.axes.map(|a| a.input);
    let in_plane = d * h * w;
    let out_plane = td.len() * th.len() * tw.len();
    let mut gx = alloc::filled(p.input_len(), T::default())?;
    per_plane(&mut gx, in_plane, p.output_len(), |plane, dst| {
        let gs = &g[plane * out_plane..(plane + 1) * out_plane];
        let mut at = 0;
        for tz in &td {
            for ty in &th {
                for tx in &tw {
                    let v = gs[at];
                    at += 1;
                    for a in 0..tz.len {
                        for b in 0..ty.len {
                            let wzy = tz.weight[a].mul(ty.weight[b]);
                            let row = (tz.index[a] * h + ty.index[b]) * w;
                            for c in 0..tx.len {
                                let slot = &mut dst[row + tx.index[c]];
                                *slot = slot.add(wzy.mul(tx.weight[c]).mul(v));
                            }
                        }
                    }
                }
            }
        }
    });
    Ok(gx)
}
