//! The CPU backend: the reference implementation of every primitive.
//!
//! One file per op family, each implementing that family's trait for [`CpuStorage`]
//! and declared by the family's file (`backend/<family>.rs`); this module holds what
//! they share: the storage, `dtype.rs` (the per-dtype dispatch: kernels are generic
//! over the element type, f16/bf16 computed in f32), `math.rs` (the `Float` math),
//! `alloc.rs` and `gemm_util.rs`.

pub(crate) mod alloc;
pub(crate) mod dtype;
pub(crate) mod gemm_util;
pub(crate) mod lanes;
pub(crate) mod math;

use crate::backend::BackendStorage;
use crate::dtype::WithDType;
use crate::shape::Layout;
use crate::{DType, Device, Result};
use dtype::with_vec;
pub(crate) use dtype::Num;
use half::{bf16, f16};
use rayon::prelude::*;

/// Host memory of one dtype.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CpuStorage {
    /// f32 elements.
    F32(Vec<f32>),
    /// f64 elements.
    F64(Vec<f64>),
    /// f16 elements.
    F16(Vec<f16>),
    /// bf16 elements.
    BF16(Vec<bf16>),
    /// i64 elements.
    I64(Vec<i64>),
    /// u8 elements.
    U8(Vec<u8>),
}

/// Work below this many elements stays on one thread (rayon's overhead dominates).
pub(crate) const PARALLEL_THRESHOLD: usize = 1 << 15;

/// Runs `f(plane index, plane of out)` over every `plane_len`-element plane of `out`
/// (the image-shaped families: pad, pool, upsample), in parallel when `work` (the
/// elements read or written) reaches [`PARALLEL_THRESHOLD`].
pub(crate) fn per_plane<T: Send>(
    out: &mut [T],
    plane_len: usize,
    work: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    if plane_len == 0 || out.is_empty() {
        return;
    }
    if work >= PARALLEL_THRESHOLD {
        out.par_chunks_mut(plane_len)
            .enumerate()
            .for_each(|(i, o)| f(i, o));
    } else {
        out.chunks_mut(plane_len)
            .enumerate()
            .for_each(|(i, o)| f(i, o));
    }
}

/// Runs `op` compiled for the widest SIMD instruction set this CPU has (AVX2 or
/// AVX-512 on x86-64), picked at run time. The crate itself targets baseline x86-64,
/// whose SSE2 loops move a half or a quarter of the data per instruction. Kernels put
/// their inner loops in a [`pulp::WithSimd`] whose `with_simd` is `#[inline(always)]`,
/// so the loops are inlined into (and auto-vectorized for) each instruction set.
#[inline(always)]
pub(crate) fn vectorized<Op: pulp::WithSimd>(op: Op) -> Op::Output {
    pulp::Arch::new().dispatch(op)
}

impl BackendStorage for CpuStorage {
    fn dtype(&self) -> DType {
        CpuStorage::dtype(self)
    }

    fn device(&self) -> Device {
        Device::Cpu
    }

    fn copy_as(&self, layout: &Layout, dtype: DType) -> Result<CpuStorage> {
        self.copied(layout, dtype)
    }

    fn copy_from(
        &mut self,
        dst_layout: &Layout,
        src: &CpuStorage,
        src_layout: &Layout,
    ) -> Result<()> {
        // Another dtype is converted into a contiguous copy first.
        let converted;
        let (src, src_layout) = if src.dtype() == self.dtype() {
            (src, src_layout)
        } else {
            converted = (
                src.copied(src_layout, self.dtype())?,
                Layout::contiguous(&src_layout.shape),
            );
            (&converted.0, &converted.1)
        };
        with_vec!(self, dst => {
            let Some(vals) = src.as_slice() else {
                unreachable!("the source has the destination's dtype")
            };
            match dst_layout.contiguous_range() {
                Some(r) => gather_into(vals, src_layout, &mut dst[r]),
                None => scatter(vals, src_layout, dst, dst_layout),
            }
        });
        Ok(())
    }

    fn to_cpu(&self, layout: &Layout) -> Result<CpuStorage> {
        self.copied(layout, self.dtype())
    }
}

impl CpuStorage {
    /// Hands the memory to the allocator's pool for reuse, leaving `self` empty: what
    /// a tensor's storage does when its last handle is dropped.
    pub(crate) fn recycle(&mut self) {
        with_vec!(self, v => alloc::recycle(std::mem::take(v)))
    }

    /// Number of elements stored.
    pub(crate) fn len(&self) -> usize {
        with_vec!(self, v => v.len())
    }

    /// The elements as a `Vec<T>` when `T` is this storage's type.
    pub(crate) fn as_slice<T: WithDType>(&self) -> Option<&[T]> {
        with_vec!(self, v => (v as &dyn std::any::Any).downcast_ref::<Vec<T>>().map(|v| v.as_slice()))
    }

    /// The elements, writable, when `T` is this storage's type.
    pub(crate) fn as_mut_slice<T: WithDType>(&mut self) -> Option<&mut [T]> {
        with_vec!(self, v => (v as &mut dyn std::any::Any).downcast_mut::<Vec<T>>().map(|v| v.as_mut_slice()))
    }

    /// The elements as a `Vec<T>` when `T` is this storage's type (no copy).
    pub(crate) fn into_vec<T: WithDType>(self) -> Option<Vec<T>> {
        with_vec!(self, v => (Box::new(v) as Box<dyn std::any::Any>).downcast::<Vec<T>>().ok().map(|v| *v))
    }

    /// Wraps a vector.
    pub(crate) fn from_vec<T: WithDType>(v: Vec<T>) -> CpuStorage {
        let any: Box<dyn std::any::Any> = Box::new(v);
        match T::DTYPE {
            DType::F32 => CpuStorage::F32(*any.downcast().expect("dtype matches")),
            DType::F64 => CpuStorage::F64(*any.downcast().expect("dtype matches")),
            DType::F16 => CpuStorage::F16(*any.downcast().expect("dtype matches")),
            DType::BF16 => CpuStorage::BF16(*any.downcast().expect("dtype matches")),
            DType::I64 => CpuStorage::I64(*any.downcast().expect("dtype matches")),
            DType::U8 => CpuStorage::U8(*any.downcast().expect("dtype matches")),
        }
    }
}

/// The storage offset where row `row` (of the last dimension) of `layout` starts.
fn row_start(layout: &Layout, row: usize) -> usize {
    let (shape, strides) = (&layout.shape, &layout.strides);
    let (mut r, mut at) = (row, layout.offset);
    for d in (0..shape.len().saturating_sub(1)).rev() {
        at += (r % shape[d]) * strides[d];
        r /= shape[d];
    }
    at
}

/// Copies the run of `dst.len()` elements of `v` from `start`, `stride` apart.
#[inline]
fn copy_run<T: Copy>(v: &[T], start: usize, stride: usize, dst: &mut [T]) {
    match stride {
        0 => dst.fill(v[start]),
        1 => dst.copy_from_slice(&v[start..start + dst.len()]),
        s => dst
            .iter_mut()
            .enumerate()
            .for_each(|(j, d)| *d = v[start + j * s]),
    }
}

/// The elements of `layout`, in row-major order.
///
/// Rows of the last dimension are copied with a tight loop (a fill for a broadcast
/// row, a slice copy for unit stride), in parallel for large tensors: a strided or
/// broadcast view costs about what a contiguous copy does.
pub(crate) fn gather<T: Copy + Send + Sync + Default + 'static>(
    v: &[T],
    layout: &Layout,
) -> Result<Vec<T>> {
    if let Some(r) = layout.contiguous_range() {
        return alloc::copied(&v[r]);
    }
    let mut out = alloc::filled(layout.numel(), T::default())?;
    gather_into(v, layout, &mut out);
    Ok(out)
}

/// [`gather`] into `out` (`layout.numel()` elements).
fn gather_into<T: Copy + Send + Sync>(v: &[T], layout: &Layout, out: &mut [T]) {
    if let Some(r) = layout.contiguous_range() {
        out.copy_from_slice(&v[r]);
        return;
    }
    if layout.numel() == 0 {
        return;
    }
    // Not contiguous and not empty, so rank ≥ 1 and every dimension is non-zero.
    let rank = layout.shape.len();
    let (inner, stride) = (layout.shape[rank - 1], layout.strides[rank - 1]);
    if out.len() < PARALLEL_THRESHOLD {
        for (row, dst) in out.chunks_mut(inner).enumerate() {
            copy_run(v, row_start(layout, row), stride, dst);
        }
        return;
    }
    out.par_chunks_mut(inner)
        .with_min_len(PARALLEL_THRESHOLD / inner.max(1))
        .enumerate()
        .for_each(|(row, dst)| {
            let start = row_start(layout, row);
            if inner >= 2 * PARALLEL_THRESHOLD {
                dst.par_chunks_mut(PARALLEL_THRESHOLD)
                    .enumerate()
                    .for_each(|(k, d)| {
                        copy_run(v, start + k * PARALLEL_THRESHOLD * stride, stride, d)
                    });
            } else {
                copy_run(v, start, stride, dst);
            }
        });
}

/// Writes the elements of `src` (at `src_layout`) into the elements of `dst` at
/// `dst_layout` (same shape, not contiguous, no two elements at one place), a row of
/// the last dimension at a time.
fn scatter<T: Copy>(src: &[T], src_layout: &Layout, dst: &mut [T], dst_layout: &Layout) {
    let rank = dst_layout.shape.len();
    let Some(&inner) = dst_layout.shape.last() else {
        return;
    };
    if inner == 0 || dst_layout.numel() == 0 {
        return;
    }
    let (ds, ss) = (dst_layout.strides[rank - 1], src_layout.strides[rank - 1]);
    for row in 0..dst_layout.numel() / inner {
        let (d0, s0) = (row_start(dst_layout, row), row_start(src_layout, row));
        if ds == 1 {
            copy_run(src, s0, ss, &mut dst[d0..d0 + inner]);
        } else {
            for j in 0..inner {
                dst[d0 + j * ds] = src[s0 + j * ss];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `gather` agrees with the plain strided walk on transposed, broadcast and
    /// narrowed views, small (sequential) and large (parallel, split rows).
    #[test]
    fn gather_matches_the_strided_walk() {
        let v: Vec<u32> = (0..200_000).collect();
        let layouts = [
            Layout {
                shape: vec![3, 4, 5],
                strides: vec![1, 3, 12],
                offset: 2,
            },
            Layout {
                shape: vec![4, 6],
                strides: vec![0, 1],
                offset: 7,
            },
            Layout {
                shape: vec![100_000],
                strides: vec![0],
                offset: 5,
            },
            Layout {
                shape: vec![2, 70_000],
                strides: vec![1, 2],
                offset: 0,
            },
            Layout {
                shape: vec![300, 200],
                strides: vec![1, 300],
                offset: 11,
            },
            Layout {
                shape: vec![40_000, 1],
                strides: vec![3, 1],
                offset: 1,
            },
            Layout {
                shape: vec![5, 9_000],
                strides: vec![20_000, 2],
                offset: 3,
            },
        ];
        for l in &layouts {
            let want: Vec<u32> = l.indices().map(|i| v[i]).collect();
            assert_eq!(gather(&v, l).unwrap(), want, "{l:?}");
        }
    }

    /// `copy_from` into a strided region (a transposed view, a narrowed column
    /// block) from a strided source writes what the element-by-element walk writes,
    /// and nothing else.
    #[test]
    fn copy_from_matches_the_strided_walk() {
        let region = |shape: Vec<usize>, strides: Vec<usize>, offset| Layout {
            shape,
            strides,
            offset,
        };
        let cases = [
            // (destination region, source layout) of one shape.
            (
                region(vec![4, 6], vec![1, 4], 0),
                Layout::contiguous(&[4, 6]),
            ),
            (
                region(vec![5, 3], vec![9, 1], 3),
                region(vec![5, 3], vec![1, 5], 0),
            ),
            (
                region(vec![2, 3, 4], vec![36, 12, 2], 1),
                region(vec![2, 3, 4], vec![0, 4, 1], 2),
            ),
        ];
        for (dst_l, src_l) in &cases {
            let src: Vec<f32> = (0..40).map(|x| x as f32).collect();
            let mut want = vec![-1.0f32; 80];
            for (d, s) in dst_l.indices().zip(src_l.indices()) {
                want[d] = src[s];
            }
            let mut dst = CpuStorage::F32(vec![-1.0; 80]);
            dst.copy_from(dst_l, &CpuStorage::F32(src), src_l).unwrap();
            assert_eq!(
                dst.as_slice::<f32>().unwrap(),
                &want[..],
                "{dst_l:?} <- {src_l:?}"
            );
        }
    }
}
