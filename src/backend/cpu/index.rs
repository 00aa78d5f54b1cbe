//! The CPU reference of the index primitives (see `backend/index.rs`): index
//! validation, gather, scatter_add (in the order the CUDA kernel sums: the base, then
//! increasing position along `dim`), index_put_rows (in index order, like the CUDA
//! kernel) and where_cond.

use super::IndexOps;
use crate::backend::cpu::dtype::{
    contiguous_as, dispatch_dtype, float_kernel, same_dtype, with_vec,
};
use crate::backend::cpu::{alloc, CpuStorage, Num};
use crate::dtype::WithDType;
use crate::shape::{contiguous_strides, Layout};
use crate::{DType, Result};

impl IndexOps for CpuStorage {
    fn index_bounds(&self, layout: &Layout) -> Result<Option<(i64, i64)>> {
        same_dtype("index_bounds", DType::I64, self.dtype())?;
        let v = contiguous_as::<i64>(self, layout)?;
        Ok(v.iter().fold(None, |acc, &x| match acc {
            None => Some((x, x)),
            Some((lo, hi)) => Some((lo.min(x), hi.max(x))),
        }))
    }

    fn gather(
        &self,
        layout: &Layout,
        dim: usize,
        idx: &CpuStorage,
        idx_layout: &Layout,
    ) -> Result<CpuStorage> {
        same_dtype("gather", DType::I64, idx.dtype())?;
        let ix = contiguous_as::<i64>(idx, idx_layout)?;
        with_vec!(self, v => Ok(CpuStorage::from_vec(gather_at(
            v,
            layout,
            dim,
            &ix,
            &idx_layout.shape
        )?)))
    }

    fn scatter_add(
        &self,
        layout: &Layout,
        dim: usize,
        idx: &CpuStorage,
        idx_layout: &Layout,
        src: &CpuStorage,
        src_layout: &Layout,
    ) -> Result<CpuStorage> {
        let dtype = self.dtype();
        same_dtype("scatter_add", dtype, src.dtype())?;
        same_dtype("scatter_add", DType::I64, idx.dtype())?;
        let ix = contiguous_as::<i64>(idx, idx_layout)?;
        Ok(float_kernel!("scatter_add", dtype, |T| {
            let mut out = contiguous_as::<T>(self, layout)?.into_owned();
            let s = contiguous_as::<T>(src, src_layout)?;
            let sizes = Sizes {
                out: &layout.shape,
                idx: &idx_layout.shape,
                src: &src_layout.shape,
            };
            scatter_add_at(&mut out, dim, &ix, &s, sizes);
            out
        }))
    }

    fn index_put_rows(
        &self,
        layout: &Layout,
        idx: &CpuStorage,
        idx_layout: &Layout,
        src: &CpuStorage,
        src_layout: &Layout,
        accumulate: bool,
    ) -> Result<CpuStorage> {
        let dtype = self.dtype();
        same_dtype("index_put", dtype, src.dtype())?;
        same_dtype("index_put", DType::I64, idx.dtype())?;
        let ix = contiguous_as::<i64>(idx, idx_layout)?;
        let rows = Rows {
            base: (self, layout),
            src: (src, src_layout),
            idx: &ix,
            accumulate,
        };
        // Halves accumulate in f32 and round once, as the CUDA kernel does.
        match dtype {
            DType::F64 => put_rows::<f64>(rows),
            DType::I64 => put_rows::<i64>(rows),
            DType::U8 => put_rows::<u8>(rows),
            DType::F32 | DType::F16 | DType::BF16 => put_rows::<f32>(rows)?.convert(dtype),
        }
    }

    fn where_cond(
        &self,
        layout: &Layout,
        a: &CpuStorage,
        a_layout: &Layout,
        b: &CpuStorage,
        b_layout: &Layout,
    ) -> Result<CpuStorage> {
        same_dtype("where_cond", DType::U8, self.dtype())?;
        same_dtype("where_cond", a.dtype(), b.dtype())?;
        let cond = contiguous_as::<u8>(self, layout)?;
        dispatch_dtype!(a.dtype(), T => {
            let (av, bv) = (contiguous_as::<T>(a, a_layout)?, contiguous_as::<T>(b, b_layout)?);
            let picked = cond.iter().zip(av.iter().zip(bv.iter()));
            let out = alloc::collect(picked.map(|(&c, (&x, &y))| if c != 0 { x } else { y }))?;
            Ok(CpuStorage::from_vec(out))
        })
    }
}

/// Steps `coords` to the next position of `shape` in row-major order.
fn advance(coords: &mut [usize], shape: &[usize]) {
    for d in (0..coords.len()).rev() {
        coords[d] += 1;
        if coords[d] < shape[d] {
            return;
        }
        coords[d] = 0;
    }
}

/// `out[c] = v[c with c[dim] = ix[c]]` over the index's `shape` (0 where an index is
/// out of range; the tensor layer refuses those before calling).
fn gather_at<T: WithDType + Default>(
    v: &[T],
    l: &Layout,
    dim: usize,
    ix: &[i64],
    shape: &[usize],
) -> Result<Vec<T>> {
    let len = l.shape[dim] as i64;
    let mut out = alloc::filled(ix.len(), T::default())?;
    let mut coords = vec![0usize; shape.len()];
    for (o, &j) in out.iter_mut().zip(ix.iter()) {
        if (0..len).contains(&j) {
            let at = coords.iter().enumerate().fold(l.offset, |at, (d, &c)| {
                let c = if d == dim { j as usize } else { c };
                at + c * l.strides[d]
            });
            *o = v[at];
        }
        advance(&mut coords, shape);
    }
    Ok(out)
}

/// The shapes of scatter_add's operands (all contiguous here).
#[derive(Clone, Copy)]
struct Sizes<'a> {
    out: &'a [usize],
    idx: &'a [usize],
    src: &'a [usize],
}

/// `out[c with c[dim] = ix[c]] += s[c]` for every position `c` of the index, in
/// row-major order of the index: each output element receives its terms in
/// increasing position along `dim`, the order of the CUDA kernel.
fn scatter_add_at<T: Num>(out: &mut [T], dim: usize, ix: &[i64], s: &[T], sizes: Sizes<'_>) {
    let (os, ss) = (contiguous_strides(sizes.out), contiguous_strides(sizes.src));
    let len = sizes.out[dim] as i64;
    let mut coords = vec![0usize; sizes.idx.len()];
    for &j in ix {
        if (0..len).contains(&j) {
            let (mut to, mut so) = (0, 0);
            for (d, &c) in coords.iter().enumerate() {
                to += if d == dim { j as usize } else { c } * os[d];
                so += c * ss[d];
            }
            out[to] = out[to].add(s[so]);
        }
        advance(&mut coords, sizes.idx);
    }
}

/// The operands of [`IndexOps::index_put_rows`].
struct Rows<'a> {
    base: (&'a CpuStorage, &'a Layout),
    src: (&'a CpuStorage, &'a Layout),
    idx: &'a [i64],
    accumulate: bool,
}

/// [`IndexOps::index_put_rows`] computed in `T`: each src row, in index order, added
/// to or written over the row it names.
fn put_rows<T: Num>(r: Rows<'_>) -> Result<CpuStorage> {
    let mut out = contiguous_as::<T>(r.base.0, r.base.1)?.into_owned();
    let src = contiguous_as::<T>(r.src.0, r.src.1)?;
    let (rows, cols) = (r.base.1.shape[0], r.base.1.shape[1]);
    for (t, &row) in r.idx.iter().enumerate() {
        let Some(row) = usize::try_from(row).ok().filter(|&row| row < rows) else {
            continue;
        };
        let from = &src[t * cols..(t + 1) * cols];
        for (d, &v) in out[row * cols..(row + 1) * cols].iter_mut().zip(from) {
            *d = if r.accumulate { d.add(v) } else { v };
        }
    }
    Ok(T::wrap(out))
}
