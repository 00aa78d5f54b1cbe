//! Cumulative sums and products along a dimension (`cumsum`, `cumprod`), and their
//! gradients.

use super::Tensor;
use crate::autograd::record;
use crate::backend::scan::{ScanOp, ScanParams};
use crate::shape::check_dim;
use crate::{DType, Result};

impl Tensor {
    /// The running sum along `dim`, like `torch.cumsum(x, dim)`: element `j` of a line
    /// is the sum of its elements `0..=j`. Float and I64 tensors keep their dtype; U8
    /// sums to I64 (PyTorch's promotion of integer scans). A 0-d tensor takes dim 0 and
    /// is its own sum.
    ///
    /// ```
    /// # use kiln::{Device, Tensor};
    /// let x = Tensor::from_vec(vec![1f32, 2., 3., 4.], &[2, 2], &Device::Cpu)?;
    /// assert_eq!(x.cumsum(1)?.to_vec::<f32>()?, [1., 3., 3., 7.]);
    /// # Ok::<(), kiln::Error>(())
    /// ```
    pub fn cumsum(&self, dim: usize) -> Result<Tensor> {
        let _op = crate::profiler::op("cumsum", &[self]);
        let (x, p) = self.scan_input("cumsum", dim)?;
        let out = x.scan_raw(&p, ScanOp::Sum, false)?;
        Ok(record(out, "cumsum", &[&x], move |_, g| {
            // Each input element feeds every later output: the reverse running sum.
            Ok(vec![Some(g.scan_raw(&p, ScanOp::Sum, true)?)])
        }))
    }

    /// The running product along `dim`, like `torch.cumprod(x, dim)`. Dtypes as
    /// [`Tensor::cumsum`]. The gradient is exact where a line holds zeros (PyTorch's
    /// rule), not the `Σ g·out / x` that a zero would turn into NaN.
    pub fn cumprod(&self, dim: usize) -> Result<Tensor> {
        let _op = crate::profiler::op("cumprod", &[self]);
        let (x, p) = self.scan_input("cumprod", dim)?;
        let out = x.scan_raw(&p, ScanOp::Prod, false)?;
        let saved = x.detach();
        Ok(record(out, "cumprod", &[&x], move |out, g| {
            let gx = saved.storage().cumprod_backward(
                [saved.layout(), out.layout(), g.layout()],
                &out.storage(),
                &g.storage(),
                &p,
            )?;
            Ok(vec![Some(Tensor::from_storage(gx, saved.shape()))])
        }))
    }

    /// The tensor a scan runs on (U8 widened to I64) and its (outer, len, inner) view.
    fn scan_input(&self, op: &'static str, dim: usize) -> Result<(Tensor, ScanParams)> {
        let shape = self.shape();
        // A 0-d tensor is scanned as one element, along its dim 0 as PyTorch allows.
        let dim = check_dim(op, dim, shape.len().max(1))?;
        let size = |dims: &[usize]| dims.iter().product::<usize>();
        let p = match shape.len() {
            0 => ScanParams {
                outer: 1,
                len: 1,
                inner: 1,
            },
            _ => ScanParams {
                outer: size(&shape[..dim]),
                len: shape[dim],
                inner: size(&shape[dim + 1..]),
            },
        };
        let x = match self.dtype() {
            DType::U8 => self.to_dtype(DType::I64)?,
            _ => self.clone(),
        };
        Ok((x, p))
    }

    /// The scan primitive on this tensor's layout, with its shape.
    fn scan_raw(&self, p: &ScanParams, op: ScanOp, reverse: bool) -> Result<Tensor> {
        let out = self.storage().scan(self.layout(), p, op, reverse)?;
        Ok(Tensor::from_storage(out, self.shape()))
    }
}
