//! Matrix products with PyTorch's `matmul` rules: 1-D operands are promoted to
//! matrices and the added dimension removed again; batch dimensions broadcast.

use super::{StorageLocks, Tensor};
use crate::autograd::record;
use crate::backend::matmul::{Activation, MatmulDims};
use crate::shape::{broadcast_shape, checked_numel, numel, Layout};
use crate::{Error, Result};

impl Tensor {
    /// Matrix product, batched and broadcast over leading dimensions like `torch.matmul`.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        if let Some(y) = crate::tensor::autocast::lower([self, rhs], [], |[a, b], []| a.matmul(b)) {
            return y;
        }
        let _op = crate::profiler::op("matmul", &[self, rhs]);
        self.check_same_device("matmul", rhs)?;
        self.check_same_dtype("matmul", rhs)?;
        if self.rank() == 0 || rhs.rank() == 0 {
            return Err(Error::shape(
                "matmul",
                "both operands need at least one dimension",
            ));
        }
        let a = if self.rank() == 1 {
            self.unsqueeze(0)?
        } else {
            self.clone()
        };
        let b = if rhs.rank() == 1 {
            rhs.unsqueeze(1)?
        } else {
            rhs.clone()
        };
        let mut out = a.matmul_nd(&b)?;
        if rhs.rank() == 1 {
            out = out.squeeze(out.rank() - 1)?;
        }
        if self.rank() == 1 {
            out = out.squeeze(out.rank() - if rhs.rank() == 1 { 1 } else { 2 })?;
        }
        Ok(out)
    }

    /// Both operands have rank ≥ 2.
    fn matmul_nd(&self, rhs: &Tensor) -> Result<Tensor> {
        let (ra, rb) = (self.rank(), rhs.rank());
        let (m, k) = (self.shape()[ra - 2], self.shape()[ra - 1]);
        let (k2, n) = (rhs.shape()[rb - 2], rhs.shape()[rb - 1]);
        if k != k2 {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                lhs: self.shape().to_vec(),
                rhs: rhs.shape().to_vec(),
            });
        }
        let batch_shape =
            broadcast_shape("matmul", &self.shape()[..ra - 2], &rhs.shape()[..rb - 2])?;
        let mut shape = batch_shape.clone();
        shape.extend([m, n]);
        // The product's shape must be addressable (`[2^40, 0] @ [0, 2^40]` is not).
        checked_numel("matmul", &shape)?;
        let batch = numel(&batch_shape);
        let (a_src, al) = self.batched_layout(&batch_shape, m, k)?;
        let (b_src, bl) = rhs.batched_layout(&batch_shape, k, n)?;
        let locks = StorageLocks::read(&[&a_src, &b_src]);
        let out = locks
            .get(0)
            .matmul(&al, locks.get(1), &bl, MatmulDims { batch, m, n, k })?;
        drop(locks);
        let out = Tensor::from_storage(out, &shape);
        let (a, b) = (self.detach(), rhs.detach());
        Ok(record(out, "matmul", &[self, rhs], move |_, g| {
            let ga = g.matmul(&b.transpose_last()?)?.sum_to_shape(a.shape())?;
            let gb = a.transpose_last()?.matmul(g)?.sum_to_shape(b.shape())?;
            Ok(vec![Some(ga), Some(gb)])
        }))
    }

    /// A tensor and a 3-D layout (batch, rows, cols) of its storage that walk this
    /// tensor broadcast to `batch_shape`; a contiguous copy is made only when the
    /// batch dims cannot be merged into one stride.
    fn batched_layout(
        &self,
        batch_shape: &[usize],
        rows: usize,
        cols: usize,
    ) -> Result<(Tensor, Layout)> {
        let mut full = batch_shape.to_vec();
        full.extend([rows, cols]);
        let view = self.detach().broadcast_as(&full)?;
        let r = view.rank();
        let l = view.layout();
        let batch = numel(batch_shape);
        // The batch dims must collapse into one stride: true when broadcast (all 0) or
        // laid out regularly; otherwise copy to contiguous.
        let collapsed = collapse_batch(&l.shape[..r - 2], &l.strides[..r - 2]);
        Ok(match collapsed {
            Some(stride) => {
                let layout = Layout {
                    shape: vec![batch, rows, cols],
                    strides: vec![stride, l.strides[r - 2], l.strides[r - 1]],
                    offset: l.offset,
                };
                (view, layout)
            }
            None => (
                view.contiguous_copy()?,
                Layout::contiguous(&[batch, rows, cols]),
            ),
        })
    }

    /// `act(self · weightᵀ + bias)` for a 2-D `self` (rows, in), `weight` (out, in) and
    /// `bias` (out) of one dtype and device, by one fused GEMM where the backend has
    /// one (cuBLASLt's epilogue), else `None`: the caller composes the unfused ops. No
    /// graph is recorded. A bias that is not contiguous is not fused.
    pub(crate) fn linear_fused(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        act: Activation,
    ) -> Result<Option<Tensor>> {
        let (&[rows, in_f], &[out_f, w_in]) = (self.shape(), weight.shape()) else {
            return Ok(None);
        };
        // The library reads memory by these sizes: anything inconsistent is not fused
        // (the callers have already returned its error).
        let bad_bias =
            |b: &Tensor| b.shape() != [out_f] || (out_f > 1 && b.layout().strides != [1]);
        if w_in != in_f || bias.is_some_and(bad_bias) {
            return Ok(None);
        }
        let (x, w) = (self.layout(), weight.layout());
        let xl = Layout {
            shape: vec![1, rows, in_f],
            strides: vec![0, x.strides[0], x.strides[1]],
            offset: x.offset,
        };
        // weightᵀ as a (1, in, out) view of the weight's storage.
        let wl = Layout {
            shape: vec![1, in_f, out_f],
            strides: vec![0, w.strides[1], w.strides[0]],
            offset: w.offset,
        };
        let mut operands = vec![self, weight];
        operands.extend(bias);
        let locks = StorageLocks::read(&operands);
        let dims = MatmulDims {
            batch: 1,
            m: rows,
            n: out_f,
            k: in_f,
        };
        let bias = bias.map(|b| (locks.get(2), b.layout().offset));
        let out = locks
            .get(0)
            .matmul_epilogue(&xl, locks.get(1), &wl, dims, bias, act)?;
        Ok(out.map(|s| Tensor::from_storage(s, &[rows, out_f])))
    }

    /// For 2-D `self` (m, k) and `rhs` (k, n): `(self · rhs, self summed over dim 1)`
    /// from one fused GEMM where the backend has one (cuBLASLt's `BGRADB` epilogue:
    /// a linear layer's weight and bias gradients from `gᵀ · x`), else `None`. No graph
    /// is recorded.
    pub(crate) fn matmul_bias_grad(&self, rhs: &Tensor) -> Result<Option<(Tensor, Tensor)>> {
        let (&[m, k], &[k2, n]) = (self.shape(), rhs.shape()) else {
            return Ok(None);
        };
        if k != k2 || self.dtype() != rhs.dtype() {
            return Ok(None);
        }
        let as3 = |l: &Layout, rows: usize, cols: usize| Layout {
            shape: vec![1, rows, cols],
            strides: vec![0, l.strides[0], l.strides[1]],
            offset: l.offset,
        };
        let (al, bl) = (as3(self.layout(), m, k), as3(rhs.layout(), k, n));
        let locks = StorageLocks::read(&[self, rhs]);
        let dims = MatmulDims { batch: 1, m, n, k };
        let out = locks
            .get(0)
            .matmul_bias_grad(&al, locks.get(1), &bl, dims)?;
        Ok(out.map(|(p, g)| {
            (
                Tensor::from_storage(p, &[m, n]),
                Tensor::from_storage(g, &[m]),
            )
        }))
    }

    fn transpose_last(&self) -> Result<Tensor> {
        self.transpose(self.rank() - 2, self.rank() - 1)
    }
}

/// One stride that walks all batch dims, if there is one.
fn collapse_batch(shape: &[usize], strides: &[usize]) -> Option<usize> {
    let dims: Vec<(usize, usize)> = shape
        .iter()
        .copied()
        .zip(strides.iter().copied())
        .filter(|&(d, _)| d != 1)
        .collect();
    if dims.iter().all(|&(_, s)| s == 0) {
        return Some(0);
    }
    for w in dims.windows(2) {
        // An overflow can only come from an empty tensor's dims: copy those instead.
        if Some(w[0].1) != w[1].1.checked_mul(w[1].0) {
            return None;
        }
    }
    dims.last().map(|&(_, s)| s)
}
