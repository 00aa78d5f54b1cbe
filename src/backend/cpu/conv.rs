//! 2-D convolution on the CPU: im2col + GEMM, parallel over the batch.
//!
//! For one image and one group the input is unfolded into a matrix `col` of
//! (c_in_per_group·kh·kw) rows by (out_h·out_w) columns, so that
//! * forward:          `out_g = W_g · col`            (c_out_g × out positions),
//! * grad of input:    `col_grad = W_gᵀ · gout_g`, folded back with col2im,
//! * grad of weight:   `gW_g += gout_g · colᵀ`, summed over the batch.
//!
//! A 1×1 kernel with stride 1 and no padding needs no unfolding: `col` is the input.
//! With at least as many images as threads, each thread takes whole images and runs
//! a single-threaded GEMM (no synchronisation inside an image); with fewer images
//! the GEMM itself is parallel.

use super::{Conv2dParams, ConvOps};
use crate::backend::cpu::alloc;
use crate::backend::cpu::dtype::{contiguous_as, float_kernel, same_dtype};
use crate::backend::cpu::gemm_util::{gemm, Float, Mat};
use crate::backend::cpu::CpuStorage;
use crate::shape::Layout;
use crate::Result;
use rayon::prelude::*;

impl ConvOps for CpuStorage {
    /// Forward convolution; see [`crate::backend::conv::ConvOps::conv2d`].
    fn conv2d(
        &self,
        xl: &Layout,
        weight: &CpuStorage,
        wl: &Layout,
        bias: Option<(&CpuStorage, &Layout)>,
        p: &Conv2dParams,
    ) -> Result<CpuStorage> {
        same_dtype("conv2d", self.dtype(), weight.dtype())?;
        if let Some((b, _)) = bias {
            same_dtype("conv2d", self.dtype(), b.dtype())?;
        }
        Ok(float_kernel!("conv2d", self.dtype(), |T| {
            let x = contiguous_as::<T>(self, xl)?;
            let w = contiguous_as::<T>(weight, wl)?;
            let b = bias.map(|(b, bl)| contiguous_as::<T>(b, bl)).transpose()?;
            forward(p, &x, &w, b.as_deref())?
        }))
    }

    /// Gradient of the input; see [`crate::backend::conv::ConvOps::conv2d_backward_input`].
    fn conv2d_backward_input(
        &self,
        gl: &Layout,
        weight: &CpuStorage,
        wl: &Layout,
        p: &Conv2dParams,
    ) -> Result<CpuStorage> {
        same_dtype("conv2d_backward_input", self.dtype(), weight.dtype())?;
        Ok(float_kernel!("conv2d_backward_input", self.dtype(), |T| {
            let g = contiguous_as::<T>(self, gl)?;
            let w = contiguous_as::<T>(weight, wl)?;
            backward_input(p, &g, &w)?
        }))
    }

    /// Gradient of the weight; see [`crate::backend::conv::ConvOps::conv2d_backward_weight`].
    fn conv2d_backward_weight(
        &self,
        xl: &Layout,
        grad_out: &CpuStorage,
        gl: &Layout,
        p: &Conv2dParams,
    ) -> Result<CpuStorage> {
        same_dtype("conv2d_backward_weight", self.dtype(), grad_out.dtype())?;
        Ok(float_kernel!("conv2d_backward_weight", self.dtype(), |T| {
            let x = contiguous_as::<T>(self, xl)?;
            let g = contiguous_as::<T>(grad_out, gl)?;
            backward_weight(p, &x, &g)?
        }))
    }
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
    p: &Conv2dParams,
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
        p.col_rows() * p.out_plane()
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

fn forward<T: Float>(p: &Conv2dParams, x: &[T], w: &[T], bias: Option<&[T]>) -> Result<Vec<T>> {
    per_image(
        p,
        x,
        p.c_in * p.h * p.w,
        p.output_len(),
        |src, dst, col, par| forward_image(p, src, w, bias, dst, col, par),
    )
}

/// The im2col matrix (col_rows × out_plane) of group `g` of one image: the input
/// itself for a pointwise (1×1, stride 1) conv, else written into `col`.
fn group_columns<'a, T: Float>(
    p: &Conv2dParams,
    x: &'a [T],
    g: usize,
    col: &'a mut [T],
) -> &'a [T] {
    let len = p.c_in_per_group() * p.h * p.w;
    let xg = &x[g * len..(g + 1) * len];
    if p.is_pointwise() {
        xg
    } else {
        im2col(p, xg, col);
        col
    }
}

fn forward_image<T: Float>(
    p: &Conv2dParams,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
    col: &mut [T],
    parallel: bool,
) {
    let (cog, k, ohw) = (p.c_out_per_group(), p.col_rows(), p.out_plane());
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

fn backward_input<T: Float>(p: &Conv2dParams, g: &[T], w: &[T]) -> Result<Vec<T>> {
    per_image(
        p,
        g,
        p.c_out * p.out_plane(),
        p.input_len(),
        |src, dst, col, par| backward_input_image(p, src, w, dst, col, par),
    )
}

/// `gx` arrives zeroed.
fn backward_input_image<T: Float>(
    p: &Conv2dParams,
    g: &[T],
    w: &[T],
    gx: &mut [T],
    col: &mut [T],
    parallel: bool,
) {
    let (cog, k, ohw) = (p.c_out_per_group(), p.col_rows(), p.out_plane());
    let group_len = p.c_in_per_group() * p.h * p.w;
    for grp in 0..p.groups {
        let gg = Mat::rows(&g[grp * cog * ohw..(grp + 1) * cog * ohw], cog, ohw);
        let wt = Mat::rows(&w[grp * cog * k..(grp + 1) * cog * k], cog, k).t();
        let gxg = &mut gx[grp * group_len..(grp + 1) * group_len];
        if p.is_pointwise() {
            gemm(gxg, ohw, false, wt, gg, parallel);
        } else {
            gemm(col, ohw, false, wt, gg, parallel);
            col2im(p, col, gxg);
        }
    }
}

fn backward_weight<T: Float>(p: &Conv2dParams, x: &[T], g: &[T]) -> Result<Vec<T>> {
    let wlen = p.weight_len();
    let (x_img, g_img) = (p.c_in * p.h * p.w, p.c_out * p.out_plane());
    let col_len = if p.is_pointwise() {
        0
    } else {
        p.col_rows() * p.out_plane()
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
    p: &Conv2dParams,
    x: &[T],
    g: &[T],
    gw: &mut [T],
    col: &mut [T],
    parallel: bool,
) {
    let (cog, k, ohw) = (p.c_out_per_group(), p.col_rows(), p.out_plane());
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

/// Unfolds one group of one image (`cig` planes of h×w) into `col`
/// (cig·kh·kw rows of out_h·out_w).
fn im2col<T: Float>(p: &Conv2dParams, x: &[T], col: &mut [T]) {
    let (ohw, plane) = (p.out_plane(), p.h * p.w);
    for (row, dst) in col.chunks_mut(ohw).enumerate() {
        let (c, ky, kx) = (row / (p.kh * p.kw), row / p.kw % p.kh, row % p.kw);
        let src = &x[c * plane..(c + 1) * plane];
        let x_off = (kx * p.dilation_w) as isize - p.pad_left as isize;
        let (lo, hi) = valid_range(p.out_w, p.stride_w, x_off, p.w);
        for (oy, d) in dst.chunks_mut(p.out_w).enumerate() {
            let iy = (oy * p.stride_h + ky * p.dilation_h) as isize - p.pad_top as isize;
            if iy < 0 || iy >= p.h as isize || lo == hi {
                d.fill(T::default());
                continue;
            }
            let line = &src[iy as usize * p.w..(iy as usize + 1) * p.w];
            d[..lo].fill(T::default());
            d[hi..].fill(T::default());
            let first = (lo as isize * p.stride_w as isize + x_off) as usize;
            if p.stride_w == 1 {
                d[lo..hi].copy_from_slice(&line[first..first + (hi - lo)]);
            } else {
                for (j, v) in d[lo..hi].iter_mut().enumerate() {
                    *v = line[first + j * p.stride_w];
                }
            }
        }
    }
}

/// Folds `col` back onto one group of one image, adding overlapping contributions.
fn col2im<T: Float>(p: &Conv2dParams, col: &[T], x: &mut [T]) {
    let (ohw, plane) = (p.out_plane(), p.h * p.w);
    for (row, src) in col.chunks(ohw).enumerate() {
        let (c, ky, kx) = (row / (p.kh * p.kw), row / p.kw % p.kh, row % p.kw);
        let dst = &mut x[c * plane..(c + 1) * plane];
        let x_off = (kx * p.dilation_w) as isize - p.pad_left as isize;
        let (lo, hi) = valid_range(p.out_w, p.stride_w, x_off, p.w);
        if lo == hi {
            continue;
        }
        for (oy, s) in src.chunks(p.out_w).enumerate() {
            let iy = (oy * p.stride_h + ky * p.dilation_h) as isize - p.pad_top as isize;
            if iy < 0 || iy >= p.h as isize {
                continue;
            }
            let line = &mut dst[iy as usize * p.w..(iy as usize + 1) * p.w];
            let first = (lo as isize * p.stride_w as isize + x_off) as usize;
            if p.stride_w == 1 {
                let span = &mut line[first..first + (hi - lo)];
                span.iter_mut()
                    .zip(&s[lo..hi])
                    .for_each(|(a, &b)| *a = a.add(b));
            } else {
                for (j, &v) in s[lo..hi].iter().enumerate() {
                    let a = &mut line[first + j * p.stride_w];
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
