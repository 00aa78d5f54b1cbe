//! Softmax and log-softmax along one dimension.

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::Result;

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/softmax.rs"]
mod cpu;
#[path = "cuda/ops/softmax.rs"]
mod cuda;

/// The softmax primitive of a backend.
pub(crate) trait SoftmaxOps: Sized {
    /// Softmax (or log-softmax when `log`) of the elements of `layout` along `dim`,
    /// computed stably: each slice's maximum is subtracted before `exp`. The result
    /// is contiguous with `layout`'s shape.
    fn softmax(&self, layout: &Layout, dim: usize, log: bool) -> Result<Self>;
}

impl Storage {
    /// See [`SoftmaxOps::softmax`].
    pub(crate) fn softmax(&self, layout: &Layout, dim: usize, log: bool) -> Result<Storage> {
        let name = if log { "log_softmax" } else { "softmax" };
        dispatch!(name, (self), |(s)| s.softmax(layout, dim, log))
    }
}
