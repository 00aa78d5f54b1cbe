//! PyTorch's recurrent layers: [`RNN`] (tanh or ReLU), [`LSTM`] (with `proj_size`) and
//! [`GRU`], with PyTorch's parameter names (`weight_ih_l0`, `weight_hh_l0`,
//! `bias_ih_l0`, `bias_hh_l0`, `weight_hr_l0`, `*_reverse`), initialisation, gate
//! order and options ([`RnnOpts`]), so a PyTorch `state_dict` loads and gives PyTorch's
//! outputs and final states.
//!
//! Each layer and direction computes the input projection of every time step as one
//! GEMM, then runs one recurrent GEMM and the gate update per step. Sequences of
//! different lengths in one padded batch ([`LSTM::forward_lengths`], ...) are handled
//! by masks, with PyTorch's packed-sequence results: outputs past a sequence's end are
//! 0, its final state is the state at its last step, and the reverse direction starts
//! at its last step.

use super::rnn_cell::{CellKind, CellWeights};
use super::Activation;
use crate::nn::functional as F;
use crate::nn::summary::{py_bool, py_float};
use crate::nn::{Forward, Member, Mode, Module};
use crate::{Device, Error, Result, Tensor};

/// Options of the recurrent layers, PyTorch's keyword arguments with its defaults:
/// `num_layers` 1, `bias` true, `batch_first` false (inputs `(L, N, in)`), `dropout` 0
/// (between layers, training only), `bidirectional` false, `proj_size` 0 (LSTM
/// only), `nonlinearity` tanh (RNN only).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RnnOpts {
    num_layers: usize,
    bias: bool,
    batch_first: bool,
    dropout: f64,
    bidirectional: bool,
    proj_size: usize,
    nonlinearity: Activation,
}

impl Default for RnnOpts {
    fn default() -> Self {
        RnnOpts {
            num_layers: 1,
            bias: true,
            batch_first: false,
            dropout: 0.0,
            bidirectional: false,
            proj_size: 0,
            nonlinearity: Activation::Tanh,
        }
    }
}

impl RnnOpts {
    /// PyTorch's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stacked layers, each reading the previous one's output.
    pub fn num_layers(mut self, n: usize) -> Self {
        self.num_layers = n;
        self
    }

    /// Whether the layers have `bias_ih` and `bias_hh`.
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Inputs and outputs are `(N, L, ·)` instead of `(L, N, ·)` (states stay
    /// `(layers·directions, N, ·)`, as in PyTorch).
    pub fn batch_first(mut self, batch_first: bool) -> Self {
        self.batch_first = batch_first;
        self
    }

    /// Dropout on each layer's output but the last, in training mode.
    pub fn dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }

    /// A second direction that reads the sequence backwards; outputs concatenate both.
    pub fn bidirectional(mut self, bidirectional: bool) -> Self {
        self.bidirectional = bidirectional;
        self
    }

    /// LSTM only: project each hidden state to `proj_size` features (`weight_hr`).
    pub fn proj_size(mut self, proj_size: usize) -> Self {
        self.proj_size = proj_size;
        self
    }

    /// RNN only: [`Activation::Tanh`] (default) or [`Activation::Relu`].
    pub fn nonlinearity(mut self, act: Activation) -> Self {
        self.nonlinearity = act;
        self
    }

    fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }
}

/// The layers, directions and weights of a recurrent module, and its computation.
#[derive(Debug)]
struct Recurrent {
    kind: CellKind,
    input_size: usize,
    hidden_size: usize,
    opts: RnnOpts,
    /// One per layer and direction, layer-major (PyTorch's parameter order).
    cells: Vec<CellWeights>,
    mode: Mode,
}

/// The result of a recurrent pass: the output and the final `h` and (LSTM) `c`.
type Outputs = (Tensor, Tensor, Option<Tensor>);

impl Recurrent {
    fn new(
        kind: CellKind,
        input_size: usize,
        hidden_size: usize,
        opts: RnnOpts,
        device: &Device,
    ) -> Result<Recurrent> {
        check_opts(kind, input_size, hidden_size, &opts)?;
        let d = opts.directions();
        let out = if opts.proj_size > 0 {
            opts.proj_size
        } else {
            hidden_size
        };
        let cells = (0..opts.num_layers * d)
            .map(|i| {
                let input = if i < d { input_size } else { d * out };
                CellWeights::new(
                    kind,
                    [input, hidden_size, opts.proj_size],
                    opts.bias,
                    device,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Recurrent {
            kind,
            input_size,
            hidden_size,
            opts,
            cells,
            mode: Mode::default(),
        })
    }

    fn visit<'a>(&'a self, visitor: &mut dyn FnMut(&str, Member<'a>)) {
        let d = self.opts.directions();
        for (i, cell) in self.cells.iter().enumerate() {
            let reverse = if i % d == 1 { "_reverse" } else { "" };
            cell.visit(&format!("_l{}{reverse}", i / d), visitor);
        }
        visitor("", Member::Mode(&self.mode));
    }

    /// PyTorch's `RNNBase.extra_repr`.
    fn extra_repr(&self) -> String {
        let o = &self.opts;
        let mut s = format!("{}, {}", self.input_size, self.hidden_size);
        if o.proj_size != 0 {
            s += &format!(", proj_size={}", o.proj_size);
        }
        if o.num_layers != 1 {
            s += &format!(", num_layers={}", o.num_layers);
        }
        if !o.bias {
            s += &format!(", bias={}", py_bool(false));
        }
        if o.batch_first {
            s += &format!(", batch_first={}", py_bool(true));
        }
        if o.dropout != 0.0 {
            s += &format!(", dropout={}", py_float(o.dropout));
        }
        if o.bidirectional {
            s += &format!(", bidirectional={}", py_bool(true));
        }
        if self.kind == CellKind::Rnn(Activation::Relu) {
            s += ", nonlinearity='relu'";
        }
        s
    }

    /// The feature size of the hidden state `h` (the projection's when there is one).
    fn out_size(&self) -> usize {
        if self.opts.proj_size > 0 {
            self.opts.proj_size
        } else {
            self.hidden_size
        }
    }

    /// The whole pass: `x` as the user gives it, optional initial states, optional
    /// sequence lengths; results in the user's layout.
    fn run(
        &self,
        x: &Tensor,
        h0: Option<&Tensor>,
        c0: Option<&Tensor>,
        lengths: Option<&[usize]>,
    ) -> Result<Outputs> {
        let unbatched = self.check_input(x)?;
        if unbatched && lengths.is_some() {
            return Err(Error::arg("lengths", "need a batched input (N sequences)"));
        }
        let x = if unbatched {
            x.unsqueeze(1)?
        } else if self.opts.batch_first {
            x.transpose(0, 1)?
        } else {
            x.clone()
        };
        let (t, n) = (x.shape()[0], x.shape()[1]);
        let states = self.opts.num_layers * self.opts.directions();
        let h0 = self.initial_state("hx", h0, [states, n, self.out_size()], &x, unbatched)?;
        let c0 = match self.kind {
            CellKind::Lstm => {
                Some(self.initial_state("cx", c0, [states, n, self.hidden_size], &x, unbatched)?)
            }
            _ => None,
        };
        let masks = lengths.map(|l| step_masks(l, t, &x)).transpose()?;
        let (out, h, c) = self.layers(&x, &h0, c0.as_ref(), masks.as_ref())?;
        let out = if unbatched {
            out.squeeze(1)?
        } else if self.opts.batch_first {
            out.transpose(0, 1)?
        } else {
            out
        };
        let back = |s: Tensor| if unbatched { s.squeeze(1) } else { Ok(s) };
        Ok((out, back(h)?, c.map(back).transpose()?))
    }

    /// Every layer and direction on `x (T, N, in)`.
    fn layers(
        &self,
        x: &Tensor,
        h0: &Tensor,
        c0: Option<&Tensor>,
        masks: Option<&Tensor>,
    ) -> Result<Outputs> {
        let d = self.opts.directions();
        let (mut input, mut hs, mut cs) = (x.clone(), Vec::new(), Vec::new());
        for layer in 0..self.opts.num_layers {
            let mut outs = Vec::with_capacity(d);
            for dir in 0..d {
                let i = layer * d + dir;
                let c = c0.map(|c| c.narrow(0, i, 1)?.squeeze(0)).transpose()?;
                let (o, h, c) = self.direction(
                    i,
                    dir == 1,
                    &input,
                    h0.narrow(0, i, 1)?.squeeze(0)?,
                    c,
                    masks,
                )?;
                outs.push(o);
                hs.push(h);
                cs.extend(c);
            }
            input = if d == 1 {
                outs.remove(0)
            } else {
                Tensor::cat(&[&outs[0], &outs[1]], 2)?
            };
            if layer + 1 < self.opts.num_layers {
                input = F::dropout(&input, self.opts.dropout, self.mode.is_training())?;
            }
        }
        let stack = |v: &[Tensor]| Tensor::stack(&v.iter().collect::<Vec<_>>(), 0);
        let c = if cs.is_empty() {
            None
        } else {
            Some(stack(&cs)?)
        };
        Ok((input, stack(&hs)?, c))
    }

    /// Cell `i` over `x (T, N, in)` forwards or backwards from `h (N, out)` and `c`:
    /// the outputs `(T, N, out)` in time order and the final states.
    fn direction(
        &self,
        i: usize,
        reverse: bool,
        x: &Tensor,
        mut h: Tensor,
        mut c: Option<Tensor>,
        masks: Option<&Tensor>,
    ) -> Result<Outputs> {
        let w = &self.cells[i];
        let t = x.shape()[0];
        let xp = w.project_input(x)?;
        let mut outs: Vec<Option<Tensor>> = vec![None; t];
        let order: Box<dyn Iterator<Item = usize>> = if reverse {
            Box::new((0..t).rev())
        } else {
            Box::new(0..t)
        };
        for s in order {
            let (hn, cn) = w.step(self.kind, &xp.narrow(0, s, 1)?.squeeze(0)?, &h, c.as_ref())?;
            match masks {
                // Past a sequence's end the state is kept and the output is 0.
                Some(m) => {
                    let m = m.narrow(0, s, 1)?.squeeze(0)?;
                    h = h.add(&m.mul(&hn.sub(&h)?)?)?;
                    c = match (c, cn) {
                        (Some(c), Some(cn)) => Some(c.add(&m.mul(&cn.sub(&c)?)?)?),
                        _ => None,
                    };
                    outs[s] = Some(hn.mul(&m)?);
                }
                None => {
                    outs[s] = Some(hn.clone());
                    (h, c) = (hn, cn);
                }
            }
        }
        let outs: Vec<Tensor> = outs.into_iter().flatten().collect();
        Ok((Tensor::stack(&outs.iter().collect::<Vec<_>>(), 0)?, h, c))
    }

    /// Err naming `input` unless `x` is a float `(T, N, in)`, `(N, T, in)` or `(T, in)`
    /// with `T >= 1`; whether it is unbatched.
    fn check_input(&self, x: &Tensor) -> Result<bool> {
        let ok = matches!(x.rank(), 2 | 3)
            && x.shape()[x.rank() - 1] == self.input_size
            && x.dtype().is_float();
        let time = if x.rank() == 3 && self.opts.batch_first {
            1
        } else {
            0
        };
        if !ok || x.shape()[time] == 0 {
            return Err(Error::arg(
                "input",
                format!(
                    "needs a float (L, N, {0}), (N, L, {0}) with batch_first, or (L, {0}) tensor with L >= 1, got {1:?} {2:?}",
                    self.input_size,
                    x.dtype(),
                    x.shape()
                ),
            ));
        }
        Ok(x.rank() == 2)
    }

    /// The initial state `given` checked against `shape` (without the batch dim when
    /// unbatched), or zeros; as `(states, N, features)`.
    fn initial_state(
        &self,
        name: &'static str,
        given: Option<&Tensor>,
        shape: [usize; 3],
        x: &Tensor,
        unbatched: bool,
    ) -> Result<Tensor> {
        let Some(t) = given else {
            return Tensor::zeros(&shape, x.dtype(), &x.device());
        };
        let want: Vec<usize> = if unbatched {
            vec![shape[0], shape[2]]
        } else {
            shape.to_vec()
        };
        if t.shape() != want || t.dtype() != x.dtype() {
            return Err(Error::arg(
                name,
                format!(
                    "needs {:?} {want:?} (layers·directions, N, features), got {:?} {:?}",
                    x.dtype(),
                    t.dtype(),
                    t.shape()
                ),
            ));
        }
        if unbatched {
            t.unsqueeze(1)
        } else {
            Ok(t.clone())
        }
    }
}

/// `(T, N, 1)` masks in `x`'s dtype: 1 where step `t` is inside sequence `n`.
fn step_masks(lengths: &[usize], t: usize, x: &Tensor) -> Result<Tensor> {
    let n = x.shape()[1];
    if lengths.len() != n || lengths.iter().any(|&l| l == 0 || l > t) {
        return Err(Error::arg(
            "lengths",
            format!("needs {n} lengths in 1..={t}, got {lengths:?}"),
        ));
    }
    let m: Vec<f64> = (0..t)
        .flat_map(|s| lengths.iter().map(move |&l| if s < l { 1.0 } else { 0.0 }))
        .collect();
    Tensor::from_vec(m, &[t, n, 1], &x.device())?.to_dtype(x.dtype())
}

/// Err naming the first invalid size or option.
fn check_opts(kind: CellKind, input_size: usize, hidden_size: usize, o: &RnnOpts) -> Result<()> {
    for (name, n) in [
        ("input_size", input_size),
        ("hidden_size", hidden_size),
        ("num_layers", o.num_layers),
    ] {
        if n == 0 {
            return Err(Error::arg(name, "must be at least 1"));
        }
    }
    if !(0.0..=1.0).contains(&o.dropout) {
        return Err(Error::arg(
            "dropout",
            format!("probability must be in [0, 1], got {}", o.dropout),
        ));
    }
    if o.proj_size > 0 && (kind != CellKind::Lstm || o.proj_size >= hidden_size) {
        return Err(Error::arg(
            "proj_size",
            format!(
                "is for the LSTM only, below hidden_size = {hidden_size}; got {}",
                o.proj_size
            ),
        ));
    }
    if let CellKind::Rnn(act) = kind {
        if act == Activation::Gelu {
            return Err(Error::arg(
                "nonlinearity",
                "nn::RNN takes Tanh or Relu, as PyTorch's",
            ));
        }
    }
    Ok(())
}

macro_rules! recurrent_module {
    ($name:ident) => {
        impl Module for $name {
            fn visit<'a>(&'a self, visitor: &mut dyn FnMut(&str, Member<'a>)) {
                self.0.visit(visitor)
            }

            fn extra_repr(&self) -> String {
                self.0.extra_repr()
            }
        }

        impl Forward for $name {
            /// The output alone, from zero initial states.
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                Ok(self.0.run(x, None, None, None)?.0)
            }
        }
    };
}

/// `nn.RNN(input_size, hidden_size, ...)`: `h' = tanh(W_ih·x + b_ih + W_hh·h + b_hh)`
/// (or ReLU, [`RnnOpts::nonlinearity`]) per step, per layer and direction.
#[derive(Debug)]
pub struct RNN(Recurrent);
recurrent_module!(RNN);

/// `nn.LSTM(input_size, hidden_size, ...)`: PyTorch's LSTM (gates input, forget, cell,
/// output), with an optional projection of the hidden state (`proj_size`).
#[derive(Debug)]
pub struct LSTM(Recurrent);
recurrent_module!(LSTM);

/// `nn.GRU(input_size, hidden_size, ...)`: PyTorch's GRU (gates reset, update, new).
#[derive(Debug)]
pub struct GRU(Recurrent);
recurrent_module!(GRU);

impl RNN {
    /// A layer stack on `device` (F32) initialised U(±1/√hidden) as PyTorch's. Err
    /// naming a zero size or an invalid option.
    pub fn new(
        input_size: usize,
        hidden_size: usize,
        opts: RnnOpts,
        device: &Device,
    ) -> Result<RNN> {
        let kind = CellKind::Rnn(opts.nonlinearity);
        Ok(RNN(Recurrent::new(
            kind,
            input_size,
            hidden_size,
            opts,
            device,
        )?))
    }

    /// PyTorch's `rnn(x, h0)`: the output `(L, N, D·H)` (batch-first if so made) and the
    /// final state `(layers·D, N, H)`; `h0` zeros when `None`. An unbatched `(L, in)`
    /// input takes and gives states without the N dim. Errors name `input` or `hx`.
    pub fn forward_state(&self, x: &Tensor, h0: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
        let (out, h, _) = self.0.run(x, h0, None, None)?;
        Ok((out, h))
    }

    /// [`RNN::forward_state`] for a padded batch of sequences of `lengths` (PyTorch's
    /// packed sequences): outputs past each length are 0, each final state is at its
    /// sequence's end. Errors name `lengths` too.
    pub fn forward_lengths(
        &self,
        x: &Tensor,
        lengths: &[usize],
        h0: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let (out, h, _) = self.0.run(x, h0, None, Some(lengths))?;
        Ok((out, h))
    }
}

impl GRU {
    /// A layer stack on `device` (F32) initialised U(±1/√hidden) as PyTorch's. Err
    /// naming a zero size or an invalid option.
    pub fn new(
        input_size: usize,
        hidden_size: usize,
        opts: RnnOpts,
        device: &Device,
    ) -> Result<GRU> {
        Ok(GRU(Recurrent::new(
            CellKind::Gru,
            input_size,
            hidden_size,
            opts,
            device,
        )?))
    }

    /// PyTorch's `gru(x, h0)`: as [`RNN::forward_state`].
    pub fn forward_state(&self, x: &Tensor, h0: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
        let (out, h, _) = self.0.run(x, h0, None, None)?;
        Ok((out, h))
    }

    /// As [`RNN::forward_lengths`].
    pub fn forward_lengths(
        &self,
        x: &Tensor,
        lengths: &[usize],
        h0: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let (out, h, _) = self.0.run(x, h0, None, Some(lengths))?;
        Ok((out, h))
    }
}

/// The LSTM's results: the output and the final `(h, c)`.
pub type LstmOutput = (Tensor, (Tensor, Tensor));

impl LSTM {
    /// A layer stack on `device` (F32) initialised U(±1/√hidden) as PyTorch's. Err
    /// naming a zero size or an invalid option (`proj_size` not below `hidden_size`).
    pub fn new(
        input_size: usize,
        hidden_size: usize,
        opts: RnnOpts,
        device: &Device,
    ) -> Result<LSTM> {
        Ok(LSTM(Recurrent::new(
            CellKind::Lstm,
            input_size,
            hidden_size,
            opts,
            device,
        )?))
    }

    /// PyTorch's `lstm(x, (h0, c0))`: the output `(L, N, D·out)` (`out` = `proj_size`
    /// or `hidden_size`), and the final `h (layers·D, N, out)` and `c (layers·D, N,
    /// hidden)`; zero states when `None`. Errors name `input`, `hx` or `cx`.
    pub fn forward_state(
        &self,
        x: &Tensor,
        state: Option<(&Tensor, &Tensor)>,
    ) -> Result<LstmOutput> {
        self.with_state(x, state, None)
    }

    /// As [`RNN::forward_lengths`], with the cell state too.
    pub fn forward_lengths(
        &self,
        x: &Tensor,
        lengths: &[usize],
        state: Option<(&Tensor, &Tensor)>,
    ) -> Result<LstmOutput> {
        self.with_state(x, state, Some(lengths))
    }

    fn with_state(
        &self,
        x: &Tensor,
        state: Option<(&Tensor, &Tensor)>,
        lengths: Option<&[usize]>,
    ) -> Result<LstmOutput> {
        let (out, h, c) = self
            .0
            .run(x, state.map(|s| s.0), state.map(|s| s.1), lengths)?;
        Ok((out, (h, c.ok_or_else(|| Error::arg("cx", "missing"))?)))
    }
}
