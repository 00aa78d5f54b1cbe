//! Dropout with a counter-based (Philox) mask that the backward pass regenerates.

use super::{dispatch, Storage};
use crate::rng::PhiloxStream;
use crate::shape::Layout;
use crate::Result;

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/dropout.rs"]
mod cpu;
#[path = "cuda/ops/dropout.rs"]
mod cuda;

/// The dropout primitive of a backend.
pub(crate) trait DropoutOps: Sized {
    /// Dropout with drop probability `p` in (0, 1): element `i` (row-major in
    /// `layout`) is kept and scaled by `1/(1-p)` iff `stream.word(i) <
    /// rng::keep_threshold(p)`, else zeroed. The same call on the output's gradient
    /// gives the input's gradient. Contiguous result.
    fn dropout(&self, layout: &Layout, stream: PhiloxStream, p: f64) -> Result<Self>;
}

impl Storage {
    /// See [`DropoutOps::dropout`].
    pub(crate) fn dropout(&self, layout: &Layout, stream: PhiloxStream, p: f64) -> Result<Storage> {
        dispatch!("dropout", (self), |(s)| s.dropout(layout, stream, p))
    }
}
