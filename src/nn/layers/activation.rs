//! Parameter-free activation modules.

use crate::nn::{Forward, Member, Module};
use crate::{Result, Tensor};

/// `max(x, 0)` element-wise, like `nn.ReLU()`: `let act = nn::ReLU;`.
///
/// A unit struct has no [`Mode`](crate::nn::Mode) field, so `ReLU` alone reports
/// training mode; it behaves the same in both modes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReLU;

impl Module for ReLU {
    fn visit<'a>(&'a self, _: &mut dyn FnMut(&str, Member<'a>)) {}
}

impl Forward for ReLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.relu()
    }
}
