//! Built-in layer modules. Each holds its parameters (created with PyTorch's default
//! initialisation, see [`nn::init`](super::init)) and calls the matching
//! `nn::functional` op in `forward`.

mod activation;
mod activation_kind;
mod attention;
mod conv;
mod dropout;
mod embedding;
mod flatten;
mod group_norm;
mod layer_norm;
mod linear;
mod loss;
mod norm;
mod pool;
mod resample;
mod rnn;
mod rnn_cell;
mod sequential;
mod transformer;
mod transformer_decoder;

// Glob re-exports, as in `nn::functional`: a new layer is written in its family's
// file and nowhere else.
pub use activation::*;
pub use activation_kind::*;
pub use attention::*;
pub use conv::*;
pub use dropout::*;
pub use embedding::*;
pub use flatten::*;
pub use group_norm::*;
pub use layer_norm::*;
pub use linear::*;
pub use loss::*;
pub use norm::*;
pub use pool::*;
pub use resample::*;
pub use rnn::{LstmOutput, RnnOpts, GRU, LSTM, RNN};
pub use rnn_cell::{GRUCell, LSTMCell};
pub use sequential::*;
pub use transformer::*;
pub use transformer_decoder::*;
