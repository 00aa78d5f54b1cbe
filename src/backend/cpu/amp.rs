//! The fused non-finite check and unscale on the CPU, the reference for
//! `kernels/amp.cu`: f32 and bf16 compute in f32, f64 in f64, with `inv_scale`
//! rounded to f32 first (PyTorch keeps it in a float tensor).

use super::{check_unscale_operands, AmpOps};
use crate::backend::cpu::dtype::contiguous_as;
use crate::backend::cpu::CpuStorage;
use crate::dtype::WithDType;
use crate::shape::Layout;
use crate::{DType, Error, Result};
use half::bf16;

/// `g · inv` element by element in the compute type (`wide`: f64, else f32), and
/// whether an element of `g` is inf or NaN.
fn unscale<T: WithDType>(g: &[T], inv: f32, wide: bool) -> (Vec<T>, bool) {
    let mut found = false;
    let out = g
        .iter()
        .map(|&x| {
            let v = x.to_f64();
            found |= !v.is_finite();
            if wide {
                T::from_f64(v * f64::from(inv))
            } else {
                T::from_f64(f64::from(v as f32 * inv))
            }
        })
        .collect();
    (out, found)
}

impl AmpOps for CpuStorage {
    fn amp_unscale(&self, layout: &Layout, found_inf: &mut Self, inv_scale: f64) -> Result<Self> {
        let flag_len = found_inf.as_slice::<f32>().map_or(0, <[f32]>::len);
        check_unscale_operands(self.dtype(), found_inf.dtype(), flag_len)?;
        let inv = inv_scale as f32;
        let (out, found) = match self.dtype() {
            DType::F32 => {
                let (v, f) = unscale(&contiguous_as::<f32>(self, layout)?, inv, false);
                (CpuStorage::from_vec(v), f)
            }
            DType::F64 => {
                let (v, f) = unscale(&contiguous_as::<f64>(self, layout)?, inv, true);
                (CpuStorage::from_vec(v), f)
            }
            DType::BF16 => {
                let (v, f) = unscale(&contiguous_as::<bf16>(self, layout)?, inv, false);
                (CpuStorage::from_vec(v), f)
            }
            dtype => {
                return Err(Error::UnsupportedDType {
                    op: "amp_unscale",
                    dtype,
                })
            }
        };
        if found {
            if let Some(flag) = found_inf.as_mut_slice::<f32>() {
                flag[0] = 1.0;
            }
        }
        Ok(out)
    }
}
