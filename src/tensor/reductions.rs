//! Reductions built on the reduce, scan and elementwise primitives: `logsumexp`,
//! `std`, `norm`, `prod`, `max_dim`/`min_dim` (values and indices) and `any`/`all`.
//! Each runs as a few kernels on the tensor's device; the gradients that a
//! composition would get wrong (a norm at zero, a product with zeros) are PyTorch's.

use super::Tensor;
use crate::autograd::record;
use crate::shape::check_dim;
use crate::{Error, Result};

impl Tensor {
    /// `log(Σ exp(x))` over `dims` (every dim when empty), computed stably like
    /// `torch.logsumexp(x, dims, keepdim)`: the maximum is taken out before the
    /// exponentials (an infinite maximum is not, so `-inf` lines give `-inf` and
    /// `+inf` ones `+inf`); an empty reduction gives `-inf`. Float dtypes; the
    /// gradient is the softmax over `dims`.
    pub fn logsumexp(&self, dims: &[usize], keepdim: bool) -> Result<Tensor> {
        if let Some(y) = super::autocast::fp32([self], [], |[x], []| x.logsumexp(dims, keepdim)) {
            return y;
        }
        self.check_float("logsumexp")?;
        let dims = self.reduced_dims("logsumexp", dims)?;
        let lse = if dims.iter().any(|&d| self.shape()[d] == 0) {
            // Σ over nothing is 0, and log(0) = -inf, with a gradient (of nothing).
            self.sum_dims(&dims, true)?.add_scalar(f64::NEG_INFINITY)?
        } else {
            let mut m = self.detach();
            for &d in &dims {
                m = m.max(d, true)?;
            }
            let m = m.masked_fill(&m.abs()?.eq_scalar(f64::INFINITY)?, 0.0)?;
            self.sub(&m)?.exp()?.sum_dims(&dims, true)?.log()?.add(&m)?
        };
        lse.drop_dims(&dims, keepdim)
    }

    /// The standard deviation along `dim`: `sqrt` of [`Tensor::var`] with the same
    /// arguments, like `torch.std(x, dim, unbiased, keepdim)`. Float dtypes. The
    /// gradient is PyTorch's: through `var` scaled by `1 / (2·std)`, and 0 on lines
    /// whose std is 0 (where a plain `sqrt` would give `inf · 0 = NaN`).
    pub fn std(&self, dim: usize, unbiased: bool, keepdim: bool) -> Result<Tensor> {
        let _op = crate::profiler::op("std", &[self]);
        let var = self.var(dim, unbiased, keepdim)?;
        let std = var.detach().sqrt()?;
        let s = std.clone();
        Ok(record(std, "std", &[&var], move |_, g| {
            let scale = g.div(&s.mul_scalar(2.0)?)?;
            Ok(vec![Some(scale.masked_fill(&s.eq_scalar(0.0)?, 0.0)?)])
        }))
    }

    /// The vector `p`-norm over `dims` (every dim when empty), like
    /// `torch.linalg.vector_norm(x, p, dims, keepdim)` (and `x.norm(p, dims)`):
    /// `(Σ |x|^p)^(1/p)`, the maximum (`p = inf`) or minimum (`-inf`) of `|x|`, or
    /// the number of non-zero elements (`p = 0`). Float dtypes. The gradient is
    /// PyTorch's: 0 where the norm is 0, shared equally between tied extremes for
    /// `±inf`, none for `p = 0`.
    pub fn norm(&self, p: f64, dims: &[usize], keepdim: bool) -> Result<Tensor> {
        if let Some(y) = super::autocast::fp32([self], [], |[x], []| x.norm(p, dims, keepdim)) {
            return y;
        }
        let _op = crate::profiler::op("norm", &[self]);
        self.check_float("norm")?;
        if p.is_nan() {
            return Err(Error::arg("p", "norm: p must not be NaN"));
        }
        let dims = self.reduced_dims("norm", dims)?;
        let x = self.detach();
        let norm = x.norm_raw(p, &dims)?;
        // Recorded with the dims kept: `g` has the norm's shape.
        let (kept, reduced) = (norm.clone(), dims.clone());
        let out = record(norm, "norm", &[self], move |_, g| {
            Ok(vec![Some(x.norm_grad(p, &reduced, &kept, g)?)])
        });
        out.drop_dims(&dims, keepdim)
    }

    /// The `p`-norm over `dims`, keeping them (no gradient).
    fn norm_raw(&self, p: f64, dims: &[usize]) -> Result<Tensor> {
        let a = self.abs()?;
        if p == 0.0 {
            let zeros = self.eq_scalar(0.0)?.to_dtype(self.dtype())?;
            return zeros.neg()?.add_scalar(1.0)?.sum_dims(dims, true);
        }
        if p.is_infinite() {
            let mut m = a;
            for &d in dims {
                m = if p > 0.0 {
                    m.max(d, true)?
                } else {
                    m.min(d, true)?
                };
            }
            return Ok(m);
        }
        match p {
            1.0 => a.sum_dims(dims, true),
            2.0 => a.mul(&a)?.sum_dims(dims, true)?.sqrt(),
            _ => a.powf(p)?.sum_dims(dims, true)?.powf(1.0 / p),
        }
    }

    /// The gradient of the norm `norm` over `dims` (kept) of this tensor under `g`
    /// (of the norm's shape), as PyTorch's `linalg_vector_norm_backward`.
    fn norm_grad(&self, p: f64, dims: &[usize], norm: &Tensor, g: &Tensor) -> Result<Tensor> {
        let sign = self.sign()?;
        if p == 0.0 {
            return self.zeros_like();
        }
        if p.is_infinite() {
            // Shared equally between the elements that reach the extreme.
            let hit = self.abs()?.eq(norm)?.to_dtype(self.dtype())?;
            let count = hit.sum_dims(dims, true)?;
            return sign.mul(&hit)?.mul(&g.div(&count)?);
        }
        let zero_norm = norm.eq_scalar(0.0)?;
        let scale = match p {
            1.0 => g.clone(),
            _ => g.div(&norm.powf(p - 1.0)?)?.masked_fill(&zero_norm, 0.0)?,
        };
        let scaled = match p {
            1.0 => sign,
            2.0 => self.clone(),
            // sign·|x|^(p-1), 0 at x = 0 (where |x|^(p-1) is infinite for p < 1).
            _ => sign
                .mul(&self.abs()?.powf(p - 1.0)?)?
                .masked_fill(&self.eq_scalar(0.0)?, 0.0)?,
        };
        scaled.mul(&scale)
    }

    /// The product of the elements along `dim`, like `torch.prod(x, dim, keepdim)`:
    /// the last element of [`Tensor::cumprod`], whose gradient is exact where the
    /// line holds zeros. Dtypes as `cumprod` (U8 gives I64); an empty dimension
    /// gives 1.
    pub fn prod(&self, dim: usize, keepdim: bool) -> Result<Tensor> {
        if let Some(y) = super::autocast::fp32([self], [], |[x], []| x.prod(dim, keepdim)) {
            return y;
        }
        if self.rank() == 0 {
            check_dim("prod", dim, 1)?;
            return self.cumprod(0);
        }
        check_dim("prod", dim, self.rank())?;
        match self.shape()[dim] {
            // 0·Σ + 1 keeps the dtype rules of a reduction and a gradient (of nothing).
            0 => self.sum(dim, keepdim)?.mul_scalar(0.0)?.add_scalar(1.0),
            len if keepdim => self.cumprod(dim)?.narrow(dim, len - 1, 1),
            len => self.cumprod(dim)?.select(dim, len - 1),
        }
    }

    /// The maximum along `dim` and its position (I64), like `torch.max(x, dim,
    /// keepdim)`: the first maximum, or the first NaN. The gradient goes to that
    /// position.
    pub fn max_dim(&self, dim: usize, keepdim: bool) -> Result<(Tensor, Tensor)> {
        Ok((self.max(dim, keepdim)?, self.argmax(dim, keepdim)?))
    }

    /// The minimum along `dim` and its position (I64), like `torch.min(x, dim,
    /// keepdim)`: the first minimum, or the first NaN.
    pub fn min_dim(&self, dim: usize, keepdim: bool) -> Result<(Tensor, Tensor)> {
        Ok((self.min(dim, keepdim)?, self.argmin(dim, keepdim)?))
    }

    /// 1 (U8, 0-d) when any element is non-zero (NaN counts), like `torch.any(x)`.
    pub fn any(&self) -> Result<Tensor> {
        self.reshape(&[self.numel()])?.any_dim(0, false)
    }

    /// 1 (U8, 0-d) when every element is non-zero (an empty tensor's are), like
    /// `torch.all(x)`.
    pub fn all(&self) -> Result<Tensor> {
        self.reshape(&[self.numel()])?.all_dim(0, false)
    }

    /// Whether any element along `dim` is non-zero, as U8 (PyTorch's `any(x, dim,
    /// keepdim)`; kiln has no bool dtype). Every dtype.
    pub fn any_dim(&self, dim: usize, keepdim: bool) -> Result<Tensor> {
        check_dim("any_dim", dim, self.rank())?;
        let len = self.shape()[dim] as f64;
        self.zeros_along(dim, keepdim)?.lt_scalar(len)
    }

    /// Whether every element along `dim` is non-zero, as U8 (PyTorch's `all(x, dim,
    /// keepdim)`). Every dtype.
    pub fn all_dim(&self, dim: usize, keepdim: bool) -> Result<Tensor> {
        check_dim("all_dim", dim, self.rank())?;
        self.zeros_along(dim, keepdim)?.eq_scalar(0.0)
    }

    /// How many elements along `dim` are 0 (I64).
    fn zeros_along(&self, dim: usize, keepdim: bool) -> Result<Tensor> {
        self.detach().eq_scalar(0.0)?.sum(dim, keepdim)
    }

    /// `dims` checked against the rank, sorted, without repeats; every dim when empty.
    pub(crate) fn reduced_dims(&self, op: &'static str, dims: &[usize]) -> Result<Vec<usize>> {
        if dims.is_empty() {
            return Ok((0..self.rank()).collect());
        }
        let mut sorted = Vec::with_capacity(dims.len());
        for &d in dims {
            check_dim(op, d, self.rank())?;
            if sorted.contains(&d) {
                return Err(Error::arg(
                    "dims",
                    format!("{op}: dimension {d} appears twice in {dims:?}"),
                ));
            }
            sorted.push(d);
        }
        sorted.sort_unstable();
        Ok(sorted)
    }

    /// The sum over each of `dims`, keeping them as size 1 when `keepdim`.
    pub(crate) fn sum_dims(&self, dims: &[usize], keepdim: bool) -> Result<Tensor> {
        let mut s = self.clone();
        for &d in dims {
            s = s.sum(d, true)?;
        }
        s.drop_dims(dims, keepdim)
    }

    /// This tensor (with `dims` of size 1) without `dims`, unless `keepdim`.
    pub(crate) fn drop_dims(&self, dims: &[usize], keepdim: bool) -> Result<Tensor> {
        if keepdim {
            return Ok(self.clone());
        }
        let shape: Vec<usize> = (0..self.rank())
            .filter(|d| !dims.contains(d))
            .map(|d| self.shape()[d])
            .collect();
        self.reshape(&shape)
    }
}
