//! A chain of layers applied in order.

use crate::nn::{Forward, Layer, Member, Mode, Module};
use crate::{Result, Tensor};

/// Layers applied one after another, like `nn.Sequential`; its children are named
/// `"0"`, `"1"`, … in the order they were added, so parameter names match PyTorch's
/// (`0.weight`, `3.bias`).
///
/// ```
/// use kiln::nn::{self, Forward, Module};
/// # fn main() -> kiln::Result<()> {
/// let net = nn::Sequential::new().add(nn::Flatten::new()).add(nn::ReLU);
/// let y = net.forward(&kiln::Tensor::ones(&[2, 3, 4], kiln::DType::F32, &kiln::Device::Cpu)?)?;
/// assert_eq!(y.shape(), &[2, 12]);
/// net.eval();
/// assert!(!net.is_training());
/// # Ok(())
/// # }
/// ```
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Layer>>,
    mode: Mode,
}

impl Sequential {
    /// An empty chain (its `forward` returns the input).
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// This chain with `layer` appended (named by its position).
    #[allow(clippy::should_implement_trait)] // a builder step, not arithmetic
    pub fn add<L: Layer + 'static>(mut self, layer: L) -> Sequential {
        self.layers.push(Box::new(layer));
        self
    }

    /// Appends `layer` in place.
    pub fn push<L: Layer + 'static>(&mut self, layer: L) {
        self.layers.push(Box::new(layer));
    }

    /// The number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True when there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The layer at `index`, if any.
    pub fn get(&self, index: usize) -> Option<&dyn Layer> {
        self.layers.get(index).map(|layer| &**layer)
    }

    /// The same chain (and mode) with each layer replaced by `f`'s answer for it.
    pub(crate) fn map_layers(
        self,
        mut f: impl FnMut(Box<dyn Layer>) -> Result<Box<dyn Layer>>,
    ) -> Result<Sequential> {
        let layers = self.layers.into_iter().map(&mut f).collect::<Result<_>>()?;
        Ok(Sequential {
            layers,
            mode: self.mode,
        })
    }
}

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequential")
            .field("len", &self.layers.len())
            .field("training", &self.mode.is_training())
            .finish()
    }
}

impl Module for Sequential {
    fn visit<'a>(&'a self, visitor: &mut dyn FnMut(&str, Member<'a>)) {
        visitor("training", Member::Mode(&self.mode));
        for (i, layer) in self.layers.iter().enumerate() {
            visitor(&i.to_string(), Member::Child(&**layer));
        }
    }
}

impl Forward for Sequential {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.clone();
        for layer in &self.layers {
            y = layer.forward(&y)?;
        }
        Ok(y)
    }
}
