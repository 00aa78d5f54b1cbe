//! Dropout on the CPU: element `i` is kept, and scaled by `1/(1-p)`, iff its Philox
//! word is below `rng::keep_threshold(p)` — the mapping in docs/ARCHITECTURE.md, so the mask
//! depends only on (seed, offset, i) and the CUDA kernel reproduces it bit for bit.
//! Applying the same primitive to the output's gradient gives the input's gradient,
//! so the mask is never stored.
//!
//! Speed: Philox is computed for [`LANES`] blocks at once in plain arrays, inside
//! `pulp`'s runtime CPU dispatch, so the compiler vectorises the rounds with the
//! widest SIMD the machine has (AVX2 or AVX-512 on x86) without `unsafe` here.

use super::DropoutOps;
use crate::backend::cpu::dtype::{compute_dtype, contiguous_as, float_kernel, Num};
use crate::backend::cpu::gemm_util::Float;
use crate::backend::cpu::{alloc, CpuStorage};
use crate::dtype::WithDType;
use crate::rng::{keep_threshold, PhiloxStream};
use crate::shape::Layout;
use crate::{DType, Result};
use rayon::prelude::*;

/// Philox blocks computed side by side (8 makes rustc 1.95's register allocator
/// crash in release builds; 16 compiles and vectorises well).
const LANES: usize = 16;
/// Elements covered by one batch of blocks.
const BATCH: usize = 4 * LANES;
/// Elements per parallel task (a multiple of `BATCH`).
const CHUNK: usize = 1 << 14;

impl DropoutOps for CpuStorage {
    /// Dropout with drop probability `p`; see [`crate::backend::dropout::DropoutOps::dropout`].
    fn dropout(&self, layout: &Layout, stream: PhiloxStream, p: f64) -> Result<CpuStorage> {
        let threshold = keep_threshold(p);
        let scale = 1.0 / (1.0 - p);
        Ok(float_kernel!("dropout", self.dtype(), |T| {
            let x = contiguous_as::<T>(self, layout)?;
            apply(&x, stream, threshold, T::from_f64(scale))?
        }))
    }

    /// The separate passes (bias, dropout's [`apply`], residual add): the reference.
    fn bias_dropout_add(
        &self,
        layout: &Layout,
        bias: (&CpuStorage, &Layout),
        residual: (&CpuStorage, &Layout),
        mask: Option<(PhiloxStream, f64)>,
    ) -> Result<CpuStorage> {
        Ok(float_kernel!("bias_dropout_add", self.dtype(), |T| {
            let x = contiguous_as::<T>(self, layout)?;
            let b = contiguous_as::<T>(bias.0, bias.1)?;
            let r = contiguous_as::<T>(residual.0, residual.1)?;
            let d = b.len();
            let dtype = self.dtype();
            let biased = alloc::collect(x.iter().enumerate().map(|(i, &v)| v.add(b[i % d])))?;
            let biased = rounded_to(biased, dtype)?;
            let dropped = match mask {
                Some((stream, p)) => {
                    let scale = T::from_f64(1.0 / (1.0 - p));
                    rounded_to(apply(&biased, stream, keep_threshold(p), scale)?, dtype)?
                }
                None => biased,
            };
            alloc::collect(dropped.iter().zip(r.iter()).map(|(&v, &r)| r.add(v)))?
        }))
    }

    /// Dropout's [`apply`] on the gradient, then its column sums row by row.
    fn bias_dropout_add_backward(
        &self,
        layout: &Layout,
        d: usize,
        mask: Option<(PhiloxStream, f64)>,
    ) -> Result<(Option<CpuStorage>, CpuStorage)> {
        /// `(grad_x, grad_bias)`: grad_x in `dtype` (rounded before it is summed, as
        /// the separate ops and the CUDA kernel sum it), grad_bias in `T`.
        fn run<T: Float>(
            g: &CpuStorage,
            layout: &Layout,
            d: usize,
            mask: Option<(PhiloxStream, f64)>,
        ) -> Result<(Option<CpuStorage>, CpuStorage)> {
            let dtype = g.dtype();
            let g = contiguous_as::<T>(g, layout)?;
            let gx = mask
                .map(|(stream, p)| {
                    let scale = T::from_f64(1.0 / (1.0 - p));
                    CpuStorage::from_vec(apply(&g, stream, keep_threshold(p), scale)?)
                        .convert(dtype)
                })
                .transpose()?;
            let summed = match &gx {
                Some(gx) => contiguous_as::<T>(gx, &Layout::contiguous(&[g.len()]))?,
                None => g,
            };
            let mut sums = alloc::filled(d, T::default())?;
            for row in summed.chunks(d.max(1)) {
                for (s, &v) in sums.iter_mut().zip(row) {
                    *s = s.add(v);
                }
            }
            Ok((gx, CpuStorage::from_vec(sums)))
        }
        let dtype = self.dtype();
        let (gx, gbias) = match compute_dtype("bias_dropout_add", dtype)? {
            DType::F64 => run::<f64>(self, layout, d, mask)?,
            _ => run::<f32>(self, layout, d, mask)?,
        };
        Ok((gx, gbias.convert(dtype)?))
    }
}

/// `v` rounded to `dtype` (a half type; f32 and f64 are `T` itself) and widened back:
/// the rounding of a separate op's output, which the CUDA kernels repeat.
fn rounded_to<T: Float>(v: Vec<T>, dtype: DType) -> Result<Vec<T>> {
    if dtype == T::DTYPE {
        return Ok(v);
    }
    let n = v.len();
    let half = CpuStorage::from_vec(v).convert(dtype)?;
    Ok(contiguous_as::<T>(&half, &Layout::contiguous(&[n]))?.into_owned())
}

/// Output `i` is `x[i] * scale` where kept and `x[i] * 0` elsewhere (a product, as in
/// PyTorch, so a dropped NaN or infinity still gives NaN).
fn apply<T: Float>(x: &[T], stream: PhiloxStream, threshold: u64, scale: T) -> Result<Vec<T>> {
    let mut out = crate::backend::cpu::alloc::filled(x.len(), T::default())?;
    let task = |c: usize, dst: &mut [T], src: &[T]| {
        pulp::Arch::new().dispatch(Chunk {
            dst,
            src,
            stream,
            first_block: (c * CHUNK / 4) as u64,
            threshold,
            scale,
        })
    };
    if x.len() > CHUNK {
        out.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .enumerate()
            .for_each(|(c, (d, s))| task(c, d, s));
    } else {
        task(0, &mut out, x);
    }
    Ok(out)
}

/// One task's elements; `pulp` runs `with_simd` with the machine's SIMD features
/// enabled, and everything it calls is inlined into that context.
struct Chunk<'a, T> {
    dst: &'a mut [T],
    src: &'a [T],
    stream: PhiloxStream,
    first_block: u64,
    threshold: u64,
    scale: T,
}

impl<T: Float> pulp::WithSimd for Chunk<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let zero = T::default();
        let mut words = [0u32; BATCH];
        let blocks = self.dst.chunks_mut(BATCH).zip(self.src.chunks(BATCH));
        for (j, (d, s)) in blocks.enumerate() {
            philox_batch(
                self.stream,
                self.first_block + (j * LANES) as u64,
                &mut words,
            );
            for ((o, &v), &w) in d.iter_mut().zip(s).zip(&words) {
                let factor = if u64::from(w) < self.threshold {
                    self.scale
                } else {
                    zero
                };
                *o = v.mul(factor);
            }
        }
    }
}

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// The words of `LANES` consecutive Philox4x32-10 blocks starting at block
/// `first` of `stream`, in element order (word `i % 4` of block `i / 4`): the same
/// numbers as [`PhiloxStream::block`], laid out for vectorisation.
#[inline(always)]
fn philox_batch(stream: PhiloxStream, first: u64, out: &mut [u32; BATCH]) {
    let (mut c0, mut c1) = ([0u32; LANES], [0u32; LANES]);
    let (mut c2, mut c3) = ([0u32; LANES], [0u32; LANES]);
    for l in 0..LANES {
        let n = stream.offset.wrapping_add(first + l as u64);
        c0[l] = n as u32;
        c1[l] = (n >> 32) as u32;
    }
    let (mut k0, mut k1) = (stream.seed as u32, (stream.seed >> 32) as u32);
    for _ in 0..10 {
        for l in 0..LANES {
            let p0 = u64::from(M0) * u64::from(c0[l]);
            let p1 = u64::from(M1) * u64::from(c2[l]);
            let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
            let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
            c0[l] = hi1 ^ c1[l] ^ k0;
            c1[l] = lo1;
            c2[l] = hi0 ^ c3[l] ^ k1;
            c3[l] = lo0;
        }
        k0 = k0.wrapping_add(W0);
        k1 = k1.wrapping_add(W1);
    }
    for l in 0..LANES {
        out[4 * l] = c0[l];
        out[4 * l + 1] = c1[l];
        out[4 * l + 2] = c2[l];
        out[4 * l + 3] = c3[l];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_matches_the_reference_philox() {
        let stream = PhiloxStream {
            seed: 0x0123_4567_89ab_cdef,
            offset: u64::from(u32::MAX) - 3, // crosses into the counter's high word
        };
        let mut words = [0u32; BATCH];
        philox_batch(stream, 1, &mut words);
        for (i, &w) in words.iter().enumerate() {
            assert_eq!(w, stream.block(1 + i / 4)[i % 4], "word {i}");
        }
    }
}
