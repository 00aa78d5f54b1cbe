//! Image transforms on the CPU: the crop-and-flip gather, parallel over (image,
//! channel) planes, for every dtype (a copy of elements, no arithmetic).

use super::{CropFlipParams, ImageOps};
use crate::backend::cpu::dtype::{contiguous_as, dispatch_dtype, same_dtype};
use crate::backend::cpu::{alloc, CpuStorage};
use crate::shape::Layout;
use crate::{DType, Result, WithDType};
use rayon::prelude::*;

impl ImageOps for CpuStorage {
    /// See [`crate::backend::image::ImageOps::crop_flip`].
    fn crop_flip(
        &self,
        layout: &Layout,
        params: &CpuStorage,
        params_layout: &Layout,
        p: &CropFlipParams,
    ) -> Result<CpuStorage> {
        same_dtype("crop_flip", DType::I64, params.dtype())?;
        let q = contiguous_as::<i64>(params, params_layout)?;
        Ok(dispatch_dtype!(self.dtype(), T => {
            let x = contiguous_as::<T>(self, layout)?;
            CpuStorage::from_vec(gather(&x, &q, p)?)
        }))
    }
}

/// The crop of every plane; see [`ImageOps::crop_flip`].
fn gather<T: WithDType + Default>(x: &[T], q: &[i64], p: &CropFlipParams) -> Result<Vec<T>> {
    let plane = p.out_h * p.out_w;
    let mut out = alloc::filled(p.n * p.c * plane, T::default())?;
    if plane == 0 {
        return Ok(out);
    }
    out.par_chunks_mut(plane).enumerate().for_each(|(nc, dst)| {
        let b = nc / p.c;
        let src = &x[nc * p.h * p.w..(nc + 1) * p.h * p.w];
        let (top, left, flip) = (q[3 * b], q[3 * b + 1], q[3 * b + 2] != 0);
        for (i, row) in dst.chunks_mut(p.out_w).enumerate() {
            let y = top + i as i64 - p.pad as i64;
            if y < 0 || y >= p.h as i64 {
                continue; // a padding row: zeros
            }
            let src_row = &src[y as usize * p.w..(y as usize + 1) * p.w];
            for (j, v) in row.iter_mut().enumerate() {
                let jj = if flip { p.out_w - 1 - j } else { j };
                let xx = left + jj as i64 - p.pad as i64;
                if xx >= 0 && xx < p.w as i64 {
                    *v = src_row[xx as usize];
                }
            }
        }
    });
    Ok(out)
}
