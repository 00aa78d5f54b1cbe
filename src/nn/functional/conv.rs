//! (being written)

/// Padding of a convolution (placeholder until conv2d lands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Zero rows and columns added on each side: (height, width).
    Explicit(usize, usize),
}

/// Options of a 2-D convolution (placeholder until conv2d lands).
#[derive(Debug, Clone, Copy, Default)]
pub struct Conv2dOpts;
