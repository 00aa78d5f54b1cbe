//! Convolution on the CPU (1, 2 or 3 spatial dimensions, as 3): im2col + GEMM,
//! parallel over the batch.
//!
//! For one image and one group the input is unfolded into a matrix `col` of
//! (c_in_per_group·kd·kh·kw) rows by (out_d·out_h·out_w) columns, so that
//! * forward:          `out_g = W_g · col`            (c_out_g × out positions),
//! * grad of input:    `col_grad = W_gᵀ · gout_g`, folded back with col2im,
//! * grad of weight:   `gW_g += gout_g · colᵀ`, summed over the batch.
//!
//! A 1×1×1 kernel with stride 1 and no padding needs no unfolding: `col` is the input.
//! The gradient of the input starts from the bias when one is given (the transposed
//! convolution's forward).
//! With at least as many images as threads, each thread takes whole images and runs
//! a single-threaded GEMM (no synchronisation inside an image); with fewer images
//! the GEMM itself is parallel.

use super::{ConvOps, ConvParams};
use crate::backend::cpu::alloc;
use crate::backend::cpu::dtype::{contiguous_as, float_kernel, same_dtype};
use crate::backend::cpu::gemm_util::{gemm, Float, Mat};
use crate::backend::cpu::CpuStorage;
use crate::shape::Layout;
use crate::Result;
use rayon::prelude::*;

impl ConvOps for CpuStorage {
    /// Forward convolution; see [`crate::backend::conv::ConvOps::conv`].
    fn conv(
        &self,
        xl: &Layout,
        weight: &CpuStorage,
        wl: &Layout,
        bias: Option<(&CpuStorage, &Layout)>,
        p: &ConvParams,
    ) -> Result<CpuStorage> {
        check_dtypes("conv", self, weight, bias)?;
        Ok(float_kernel!("conv", self.dtype(), |T| {
            let x = contiguous_as::<T>(self, xl)?;
            let w = contiguous_as::<T>(weight, wl)?;
            let b = bias.map(|(b, bl)| contiguous_as::<T>(b, bl)).transpose()?;
            forward(p, &x, &w, b.as_deref())?
        }))
    }

    /// Gradient of the input; see [`crate::backend::conv::ConvOps::conv_backward_input`].
    fn conv_backward_input(
        &self,
        gl: &Layout,
        weight: &CpuStorage,
        wl: &Layout,
        bias: Option<(&CpuStorage, &Layout)>,
        p: &ConvParams,
    ) -> Result<CpuStorage> {
        check_dtypes("conv_backward_input", self, weight, bias)?;
        Ok(float_kernel!("conv_backward_input", self.dtype(), |T| {
            let g = contiguous_as::<T>(self, gl)?;
            let w = contiguous_as::<T>(weight, wl)?;
            let b = bias.map(|(b, bl)| contiguous_as::<T>(b, bl)).transpose()?;
            backward_input(p, &g, &w, b.as_deref())?
        }))
    }

    /// Gradient of the weight; see [`crate::backend::conv::ConvOps::conv_backward_weight`].
    fn conv_backward_weight(
        &self,
        xl: &Layout,
        grad_out: &CpuStorage,
        gl: &Layout,
        p: &ConvParams,
    ) -> Result<CpuStorage> {
        same_dtype("conv_backward_weight", self.dtype(), grad_out.dtype())?;
        Ok(float_kernel!("conv_backward_weight", self.dtype(), |T| {
            let x = contiguous_as::<T>(self, xl)?;
            let g = contiguous_as::<T>(grad_out, gl)?;
            backward_weight(p, &x, &g)?
        }))
    }
}

/// `Err(DTypeMismatch)` unless the weight and the bias have `x`'s dtype.
fn check_dtypes(
    op: &'static str,
    x: &CpuStorage,
    weight: &CpuStorage,
    bias: Option<(&CpuStorage, &Layout)>,
) -> Result<()> {
    same_dtype(op, x.dtype(), weight.dtype())?;
    if let Some((b, _)) = bias {
        same_dtype(op, x.dtype(), b.dtype())?;
    }
    Ok(())
}

/// How the batch is split: whole images per thread, or one image at a time with a
/// parallel GEMM.
fn images_in_parallel(n: usize) -> bool {
    let threads = rayon::current_num_threads();
    threads > 1 && n >= threads && (n.is_multiple_of(threads) || n >= 4 * threads)
}

/// Images per task when images run in parallel: a few tasks per thread so that a
/// busy core does not hold up the others, each task reusing one `col` buffer.
fn images_per_task(n: usize) -> usize {
    n.div_ceil(2 * rayon::current_num_threads()).max(1)
}

/// Runs `image(src, dst, col, parallel_gemm)` for every image, where `src` is the
/// image's slice of `input` (`in_img` elements each) and `dst` its slice of a fresh
/// zeroed output of `out_len` elements. With enough images they run in parallel,
/// each task reusing one im2col buffer; otherwise one at a time with a parallel GEMM.
fn per_image<T: Float>(
    p: &ConvParams,
    input: &[T],
    in_img: usize,
    out_len: usize,
    image: impl Fn(&[T], &mut [T], &mut [T], bool) + Sync,
) -> Result<Vec<T>> {
    let mut out = alloc::filled(out_len, T::default())?;
    if out.is_empty() {
        return Ok(out);
    }
    let out_img = out_len / p.n;
    let col_len = if p.is_pointwise() {
        0
    } else {
        p.col_rows() * p.out_spatial()
    };
    let src = |img: usize| &input[img * in_img..(img + 1) * in_img];
    if images_in_parallel(p.n) {
        let per = images_per_task(p.n);
        out.par_chunks_mut(out_img * per)
            .enumerate()
            .try_for_each(|(t, dst)| {
                let mut col = alloc::filled(col_len, T::default())?;
                for (i, dst) in dst.chunks_mut(out_img).enumerate() {
                    image(src(t * per + i), dst, &mut col, false);
                }
                Ok::<(), crate::Error>(())
            })?;
    } else {
        let mut col = alloc::filled(col_len, T::default())?;
        for (img, dst) in out.chunks_mut(out_img).enumerate() {
            image(src(img), dst, &mut col, true);
        }
    }
    Ok(out)
}

fn forward<T: Float>(p: &ConvParams, x: &[T], w: &[T], bias: Option<&[T]>) -> Result<Vec<T>> {
    per_image(
        p,
        x,
        p.c_in * p.in_spatial(),
        p.output_len(),
        |src, dst, col, par| forward_image(p, src, w, bias, dst, col, par),
    )
}

/// The im2col matrix (col_rows × out_spatial) of group `g` of one image: the input
/// itself for a pointwise (1×1, stride 1) conv, else written into `col`.
fn group_columns<'a, T: Float>(p: &ConvParams, x: &'a [T], g: usize, col: &'a mut [T]) -> &'a [T] {
    let len = p.c_in_per_group() * p.in_spatial();
    let xg = &x[g * len..(g + 1) * len];
    if p.is_pointwise() {
        xg
    } else {
        im2col(p, xg, col);
        col
    }
}

fn forward_image<T: Float>(
    p: &ConvParams,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
    col: &mut [T],
    parallel: bool,
) {
    let (cog, k, ohw) = (p.c_out_per_group(), p.col_rows(), p.out_spatial());
    for g in 0..p.groups {
        let cols = group_columns(p, x, g, col);
        let dst = &mut out[g * cog * ohw..(g + 1) * cog * ohw];
        if let Some(b) = bias {
            for (r, row) in dst.chunks_mut(ohw).enumerate() {
                row.fill(b[g * cog + r]);
            }
        }
        let wg = Mat::rows(&w[g * cog * k..(g + 1) * cog * k], cog, k);
        gemm(
            dst,
            ohw,
            bias.is_some(),
            wg,
            Mat::rows(cols, k, ohw),
            parallel,
        );
    }
}

fn backward_input<T: Float>(
    p: &ConvParams,
    g: &[T],
    w: &[T],
    bias: Option<&[T]>,
) -> Result<Vec<T>> {
    per_image(
        p,
        g,
        p.c_out * p.out_spatial(),
        p.input_len(),
        |src, dst, col, par| backward_input_image(p, src, w, bias, dst, col, par),
    )
}

/// `gx` arrives zeroed; with a bias, each channel's plane starts from its bias.
fn backward_input_image<T: Float>(
    p: &ConvParams,
    g: &[T],
    w: &[T],
    bias: Option<&[T]>,
    gx: &mut [T],
    col: &mut [T],
    parallel: bool,
) {
    let (cog, k, ohw) = (p.c_out_per_group(), p.col_rows(), p.out_spatial());
    if let Some(b) = bias {
        for (plane, &v) in gx.chunks_mut(p.in_spatial()).zip(b) {
            plane.fill(v);
        }
    }
    let group_len = p.c_in_per_group() * p.in_spatial();
    for grp in 0..p.groups {
        let gg = Mat::rows(&g[grp * cog * ohw..(grp + 1) * cog * ohw], cog, ohw);
        let wt = Mat::rows(&w[grp * cog * k..(grp + 1) * cog * k], cog, k).t();
        let gxg = &mut gx[grp * group_len..(grp + 1) * group_len];
        if p.is_pointwise() {
            gemm(gxg, ohw, bias.is_some(), wt, gg, parallel);
        } else {
            gemm(col, ohw, false, wt, gg, parallel);
            col2im(p, col, gxg);
        }
    }
}

fn backward_weight<T: Float>(p: &ConvParams, x: &[T], g: &[T]) -> Result<Vec<T>> {
    let wlen = p.weight_len();
    let (x_img, g_img) = (p.c_in * p.in_spatial(), p.c_out * p.out_spatial());
    let col_len = if p.is_pointwise() {
        0
    } else {
        p.col_rows() * p.out_spatial()
    };
    if p.output_len() == 0 {
        return alloc::filled(wlen, T::default());
    }
    let accumulate = |images: std::ops::Range<usize>, parallel: bool| -> Result<Vec<T>> {
        let mut gw = alloc::filled(wlen, T::default())?;
        let mut col = alloc::filled(col_len, T::default())?;
        for img in images {
            let xs = &x[img * x_img..(img + 1) * x_img];
            let gs = &g[img * g_img..(img + 1) * g_img];
            backward_weight_image(p, xs, gs, &mut gw, &mut col, parallel);
        }
        Ok(gw)
    };
    if images_in_parallel(p.n) {
        let per = images_per_task(p.n);
        let tasks = p.n.div_ceil(per);
        let partials: Vec<Vec<T>> = (0..tasks)
            .into_par_iter()
            .map(|t| accumulate(t * per..((t + 1) * per).min(p.n), false))
            .collect::<Result<_>>()?;
        let mut total = alloc::filled(wlen, T::default())?;
        for part in partials {
            total.iter_mut().zip(part).for_each(|(a, b)| *a = a.add(b));
        }
        Ok(total)
    } else {
        accumulate(0..p.n, true)
    }
}

/// Adds this image's contribution to `gw`.
fn backward_weight_image<T: Float>(
    p: &ConvParams,
    x: &[T],
    g: &[T],
    gw: &mut [T],
    col: &mut [T],
    parallel: bool,
) {
    let (cog, k, ohw) = (p.c_out_per_group(), p.col_rows(), p.out_spatial());
    for grp in 0..p.groups {
        let cols = group_columns(p, x, grp, col);
        let gg = Mat::rows(&g[grp * cog * ohw..(grp + 1) * cog * ohw], cog, ohw);
        let dst = &mut gw[grp * cog * k..(grp + 1) * cog * k];
        gemm(dst, k, true, gg, Mat::rows(cols, k, ohw).t(), parallel);
    }
}

/// Output columns `lo..hi` whose input column `ox * stride + offset` lies in
/// `0..size` (all others read padding).
fn valid_range(out: usize, stride: usize, offset: isize, size: usize) -> (usize, usize) {
    let (s, size) = (stride as isize, size as isize);
    let lo = if offset < 0 { (-offset + s - 1) / s } else { 0 };
    let hi = if size > offset {
        (size - offset + s - 1) / s
    } else {
        0
    };
    let hi = (hi as usize).min(out);
    ((lo as usize).min(hi), hi)
}

/// Where one row of `col` (channel, kernel tap) meets the input: the channel's plane
/// offset, the first input column `x_off` (of output column 0), the output columns
/// `lo..hi` that land inside the input, and per output line (out_d·out_h of them) the
/// offset of the input line it reads, `None` where that line is padding.
struct ColRow<'a> {
    p: &'a ConvParams,
    c: usize,
    kz: usize,
    ky: usize,
    x_off: isize,
    lo: usize,
    hi: usize,
}

impl<'a> ColRow<'a> {
    fn new(p: &'a ConvParams, row: usize) -> Self {
        let [_, kh, kw] = p.kernel;
        let (c, tap) = (row / p.taps(), row % p.taps());
        let (kz, ky, kx) = (tap / (kh * kw), tap / kw % kh, tap % kw);
        let x_off = (kx * p.dilation[2]) as isize - p.pad[2] as isize;
        let (lo, hi) = valid_range(p.output[2], p.stride[2], x_off, p.input[2]);
        ColRow {
            p,
            c,
            kz,
            ky,
            x_off,
            lo,
            hi,
        }
    }

    /// The offset in the group's input of the line that output line `line` reads
    /// (its first column, before `x_off`), or `None` for padding.
    fn line(&self, line: usize) -> Option<usize> {
        let p = self.p;
        let [d, h, w] = p.input;
        let (oz, oy) = (line / p.output[1], line % p.output[1]);
        let at = |o: usize, k: usize, axis: usize, size: usize| {
            let i = (o * p.stride[axis] + k * p.dilation[axis]) as isize - p.pad[axis] as isize;
            (0..size as isize).contains(&i).then_some(i as usize)
        };
        let (iz, iy) = (at(oz, self.kz, 0, d)?, at(oy, self.ky, 1, h)?);
        Some(((self.c * d + iz) * h + iy) * w)
    }

    /// The input column of output column `lo`.
    fn first(&self) -> usize {
        (self.lo as isize * self.p.stride[2] as isize + self.x_off) as usize
    }
}

/// Unfolds one group of one image (`cig` volumes of d×h×w) into `col`
/// (cig·kd·kh·kw rows of out_d·out_h·out_w).
fn im2col<T: Float>(p: &ConvParams, x: &[T], col: &mut [T]) {
    let (out_w, stride) = (p.output[2], p.stride[2]);
    for (row, dst) in col.chunks_mut(p.out_spatial()).enumerate() {
        let r = ColRow::new(p, row);
        let (lo, hi, first) = (r.lo, r.hi, r.first());
        for (line, d) in dst.chunks_mut(out_w).enumerate() {
            let Some(start) = r.line(line).filter(|_| lo < hi) else {
                d.fill(T::default());
                continue;
            };
            let src = &x[start + first..];
            d[..lo].fill(T::default());
            d[hi..].fill(T::default());
            if stride == 1 {
                d[lo..hi].copy_from_slice(&src[..hi - lo]);
            } else {
                for (j, v) in d[lo..hi].iter_mut().enumerate() {
                    *v = src[j * stride];
                }
            }
        }
    }
}

/// Folds `col` back onto one group of one image, adding overlapping contributions.
fn col2im<T: Float>(p: &ConvParams, col: &[T], x: &mut [T]) {
    let (out_w, stride) = (p.output[2], p.stride[2]);
    for (row, src) in col.chunks(p.out_spatial()).enumerate() {
        let r = ColRow::new(p, row);
        let (lo, hi, first) = (r.lo, r.hi, r.first());
        if lo == hi {
            continue;
        }
        for (line, s) in src.chunks(out_w).enumerate() {
            let Some(start) = r.line(line) else {
                continue;
            };
            let dst = &mut x[start + first..];
            if stride == 1 {
                dst[..hi - lo]
                    .iter_mut()
                    .zip(&s[lo..hi])
                    .for_each(|(a, &b)| *a = a.add(b));
            } else {
                for (j, &v) in s[lo..hi].iter().enumerate() {
                    let a = &mut dst[j * stride];
                    *a = a.add(v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_range_clips_padding_and_stride() {
        // 5 outputs, stride 2, offset -1, input 6: columns -1,1,3,5,7 → valid 1..=3.
        assert_eq!(valid_range(5, 2, -1, 6), (1, 4));
        // Offset beyond the input: nothing valid.
        assert_eq!(valid_range(3, 1, 9, 4), (0, 0));
        // No padding, stride 1.
        assert_eq!(valid_range(4, 1, 0, 4), (0, 4));
    }
}
