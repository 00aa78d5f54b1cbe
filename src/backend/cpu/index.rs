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
use rayon::prelude::*;

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
        if let Some(rows) = RowIndex::of(idx, idx_layout, dim, &layout.shape) {
            return dispatch_dtype!(self.dtype(), T => {
                let v = contiguous_as::<T>(self, layout)?;
                Ok(CpuStorage::from_vec(gather_rows(&v, &rows)?))
            });
        }
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
        let rows = (src_layout.shape == idx_layout.shape)
            .then(|| RowIndex::of(idx, idx_layout, dim, &layout.shape))
            .flatten();
        let ix = match rows {
            Some(_) => Default::default(),
            None => contiguous_as::<i64>(idx, idx_layout)?,
        };
        Ok(float_kernel!("scatter_add", dtype, |T| {
            let mut out = contiguous_as::<T>(self, layout)?.into_owned();
            let s = contiguous_as::<T>(src, src_layout)?;
            match &rows {
                Some(rows) => scatter_add_rows(&mut out, &s, rows),
                None => {
                    let sizes = Sizes {
                        out: &layout.shape,
                        idx: &idx_layout.shape,
                        src: &src_layout.shape,
                    };
                    scatter_add_at(&mut out, dim, &ix, &s, sizes);
                }
            }
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

/// The index of a gather or scatter_add that moves whole rows: one position per
/// entry along `dim`, repeated (stride 0) over every other dimension, each as large
/// as the data's — `index_select` and its gradient. Those go row by row: the general
/// walk would widen the index to the full shape and work out every element's
/// address from its coordinates.
struct RowIndex {
    /// The positions along `dim`, in order.
    positions: Vec<i64>,
    /// Product of the sizes before `dim`.
    outer: usize,
    /// The data's size along `dim`.
    len: usize,
    /// Product of the sizes after `dim`: one row.
    inner: usize,
}

impl RowIndex {
    /// The row index `idx` (at `l`) is over data of `shape`, if it is one.
    fn of(idx: &CpuStorage, l: &Layout, dim: usize, shape: &[usize]) -> Option<RowIndex> {
        let repeated =
            (0..l.shape.len()).all(|d| d == dim || (l.strides[d] == 0 && l.shape[d] == shape[d]));
        let v = idx
            .as_slice::<i64>()
            .filter(|_| repeated && l.shape.len() == shape.len())?;
        let at = |j: usize| v[l.offset + j * l.strides[dim]];
        Some(RowIndex {
            positions: (0..l.shape[dim]).map(at).collect(),
            outer: shape[..dim].iter().product(),
            len: shape[dim],
            inner: shape[dim + 1..].iter().product(),
        })
    }

    /// The row a position names (`None` out of range: the tensor layer refuses
    /// those before calling).
    fn row(&self, j: usize) -> Option<usize> {
        usize::try_from(self.positions[j])
            .ok()
            .filter(|&r| r < self.len)
    }
}

/// [`gather_at`] of a [`RowIndex`] over the contiguous `v`: rows copied, in parallel.
fn gather_rows<T: WithDType + Default>(v: &[T], r: &RowIndex) -> Result<Vec<T>> {
    let n = r.positions.len();
    let mut out = alloc::filled(r.outer * n * r.inner, T::default())?;
    if out.is_empty() {
        return Ok(out);
    }
    // Tasks of at least ~16K elements: a rayon task per short row costs more than it.
    let min_rows = (1 << 14) / r.inner;
    out.par_chunks_mut(r.inner)
        .enumerate()
        .with_min_len(min_rows.max(1))
        .for_each(|(k, dst)| {
            let (o, j) = (k / n, k % n);
            if let Some(row) = r.row(j) {
                dst.copy_from_slice(&v[(o * r.len + row) * r.inner..][..r.inner]);
            }
        });
    Ok(out)
}

/// [`scatter_add_at`] of a [`RowIndex`]: each src row added to the row it names, in
/// increasing position (the general walk's order, so the sums are the same bits);
/// parallel over the blocks before `dim`.
fn scatter_add_rows<T: Num>(out: &mut [T], s: &[T], r: &RowIndex) {
    let (n, block) = (r.positions.len(), r.len * r.inner);
    if block == 0 || n == 0 {
        return;
    }
    out.par_chunks_mut(block).enumerate().for_each(|(o, dst)| {
        for j in 0..n {
            let Some(row) = r.row(j) else { continue };
            let from = &s[(o * n + j) * r.inner..][..r.inner];
            for (d, &x) in dst[row * r.inner..][..r.inner].iter_mut().zip(from) {
                *d = d.add(x);
            }
        }
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The row paths give the general walks' results bit for bit, repeated and
    /// out-of-order positions included (so the sums' order shows), along a middle dim.
    #[test]
    fn row_paths_match_the_general_walks() {
        let shape = [3, 5, 4];
        let (dim, positions) = (1, vec![4i64, 0, 4, 2, 4, 1, 0]);
        let n = positions.len();
        let data: Vec<f32> = (0..60).map(|i| (i as f32 * 0.37).sin() * 1e3).collect();
        let idx = CpuStorage::from_vec(positions.clone());
        // The index as index_select passes it: (1, n, 1) repeated over (3, n, 4).
        let idx_layout = Layout {
            shape: vec![3, n, 4],
            strides: vec![0, 1, 0],
            offset: 0,
        };
        let rows = RowIndex::of(&idx, &idx_layout, dim, &shape).expect("a row index");
        let wide: Vec<i64> = (0..3 * n * 4).map(|k| positions[(k / 4) % n]).collect();

        let gathered = gather_rows(&data, &rows).unwrap();
        let walked = gather_at(&data, &Layout::contiguous(&shape), dim, &wide, &[3, n, 4]);
        assert_eq!(gathered, walked.unwrap());

        let src: Vec<f32> = (0..3 * n * 4)
            .map(|i| (i as f32 * 0.91).cos() * 1e-3)
            .collect();
        let (mut by_rows, mut by_walk) = (data.clone(), data);
        scatter_add_rows(&mut by_rows, &src, &rows);
        let sizes = Sizes {
            out: &shape,
            idx: &[3, n, 4],
            src: &[3, n, 4],
        };
        scatter_add_at(&mut by_walk, dim, &wide, &src, sizes);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&by_rows), bits(&by_walk));
    }
}
