//! Padding on the CPU (the reference for `kernels/pad.cu`), parallel over planes.
//! The index rules are `backend/pad.rs`'s `source` and `receivers`.

use super::{Pad2dParams, PadOps};
use crate::backend::cpu::alloc;
use crate::backend::cpu::dtype::{contiguous_as, float_kernel};
use crate::backend::cpu::gemm_util::Float;
use crate::backend::cpu::{per_plane, CpuStorage};
use crate::backend::pad::{receivers, source};
use crate::shape::Layout;
use crate::Result;

impl PadOps for CpuStorage {
    /// See [`crate::backend::pad::PadOps::pad2d`].
    fn pad2d(&self, layout: &Layout, p: &Pad2dParams) -> Result<CpuStorage> {
        Ok(float_kernel!("pad2d", self.dtype(), |T| {
            let x = contiguous_as::<T>(self, layout)?;
            forward(p, &x)?
        }))
    }

    /// See [`crate::backend::pad::PadOps::pad2d_backward`].
    fn pad2d_backward(&self, gl: &Layout, p: &Pad2dParams) -> Result<CpuStorage> {
        Ok(float_kernel!("pad2d_backward", self.dtype(), |T| {
            let g = contiguous_as::<T>(self, gl)?;
            backward(p, &g)?
        }))
    }
}

fn forward<T: Float>(p: &Pad2dParams, x: &[T]) -> Result<Vec<T>> {
    let (oh, ow) = (p.out_h(), p.out_w());
    let fill = T::from_f64(p.value);
    let mut out = alloc::filled(p.output_len(), fill)?;
    per_plane(&mut out, oh * ow, p.output_len(), |plane, o| {
        let src = &x[plane * p.h * p.w..(plane + 1) * p.h * p.w];
        for oy in 0..oh {
            let Some(iy) = source(oy, p.h, p.top, p.kind) else {
                continue;
            };
            for ox in 0..ow {
                if let Some(ix) = source(ox, p.w, p.left, p.kind) {
                    o[oy * ow + ox] = src[iy * p.w + ix];
                }
            }
        }
    });
    Ok(out)
}

fn backward<T: Float>(p: &Pad2dParams, g: &[T]) -> Result<Vec<T>> {
    let (oh, ow) = (p.out_h(), p.out_w());
    let mut gx = alloc::filled(p.input_len(), T::default())?;
    per_plane(&mut gx, p.h * p.w, p.input_len(), |plane, gi| {
        let src = &g[plane * oh * ow..(plane + 1) * oh * ow];
        for iy in 0..p.h {
            let rows = receivers(iy, p.h, p.top, p.bottom, p.kind);
            for ix in 0..p.w {
                let cols = receivers(ix, p.w, p.left, p.right, p.kind);
                let mut acc = T::default();
                for &(y0, y1) in &rows {
                    for oy in y0..y1 {
                        for &(x0, x1) in &cols {
                            for ox in x0..x1 {
                                acc = acc.add(src[oy * ow + ox]);
                            }
                        }
                    }
                }
                gi[iy * p.w + ix] = acc;
            }
        }
    });
    Ok(gx)
}
