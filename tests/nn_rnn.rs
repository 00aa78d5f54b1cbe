//! nn::RNN / LSTM / GRU / LSTMCell / GRUCell against PyTorch (scripts/golden/rnn.py,
//! f64): PyTorch's state_dicts load by their names; outputs, final states, and the
//! gradients of the input, the initial states and every parameter agree on every
//! device — tanh and ReLU, bias-free, batch-first, multi-layer, bidirectional, LSTM
//! with proj_size, unbatched inputs, variable lengths (PyTorch's packed sequences)
//! handled by masks. Also: PyTorch's initialisation and names, an f64 gradcheck,
//! dropout between layers, bad arguments.

mod common;

use common::{assert_close, device_test, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::{Activation, Forward, GRUCell, LSTMCell, Module, RnnOpts, GRU, LSTM, RNN};
use kiln::{DType, Device, Error, Result, Tensor};

const TOL: f64 = 1e-10;

/// `module` in f64 with case `case`'s PyTorch state_dict.
fn load_case<M: Module>(g: &Golden, case: &str, module: M, dev: &Device) -> M {
    module.to_dtype(DType::F64).unwrap();
    let sd: Vec<(String, Tensor)> = module
        .state_dict()
        .into_iter()
        .map(|(n, _)| {
            let t = g.on(&format!("{case}.sd.{n}"), dev);
            (n, t)
        })
        .collect();
    module.load_state_dict(&sd).unwrap();
    module
}

/// The case's inputs (`x` and those of `names` it has) as leaves on `dev`.
fn inputs(g: &Golden, case: &str, names: &[&str], dev: &Device) -> Vec<Tensor> {
    names
        .iter()
        .map(|n| g.on(&format!("{case}.{n}"), dev).requires_grad())
        .collect()
}

/// Checks the results (named as in the fixture), then backpropagates PyTorch's upstream
/// gradients and checks the inputs' and every parameter's gradients.
fn check(
    g: &Golden,
    case: &str,
    results: &[(&str, &Tensor)],
    leaves: &[(&str, &Tensor)],
    m: &dyn Module,
    dev: &Device,
) {
    let mut loss: Option<Tensor> = None;
    for (name, r) in results {
        assert_close(r, &g.get(&format!("{case}.{name}")), dev, TOL, TOL);
        let term = r
            .mul(&g.on(&format!("{case}.g_{name}"), dev))
            .unwrap()
            .sum_all()
            .unwrap();
        loss = Some(match loss {
            Some(l) => l.add(&term).unwrap(),
            None => term,
        });
    }
    loss.unwrap().backward().unwrap();
    for (name, t) in leaves {
        assert_close(
            &t.grad().unwrap(),
            &g.get(&format!("{case}.grad_{name}")),
            dev,
            TOL,
            TOL,
        );
    }
    for (name, p) in m.named_parameters() {
        let grad = p
            .grad()
            .unwrap_or_else(|| panic!("{case}: {name} has no gradient"));
        assert_close(&grad, &g.get(&format!("{case}.grad.{name}")), dev, TOL, TOL);
    }
}

fn lengths(g: &Golden, case: &str) -> Vec<usize> {
    g.get(&format!("{case}.lengths"))
        .to_vec::<i64>()
        .unwrap()
        .into_iter()
        .map(|l| l as usize)
        .collect()
}

device_test! {
    fn rnn_tanh_two_layers_with_h0(dev) {
        let g = Golden::load("rnn");
        let m = load_case(&g, "rnn_tanh", RNN::new(5, 4, RnnOpts::new().num_layers(2), dev).unwrap(), dev);
        let v = inputs(&g, "rnn_tanh", &["x", "h0"], dev);
        let (out, h) = m.forward_state(&v[0], Some(&v[1])).unwrap();
        check(&g, "rnn_tanh", &[("out", &out), ("h_n", &h)], &[("x", &v[0]), ("h0", &v[1])], &m, dev);
    }

    fn rnn_relu_without_bias_batch_first(dev) {
        let g = Golden::load("rnn");
        let o = RnnOpts::new().nonlinearity(Activation::Relu).bias(false).batch_first(true);
        let m = load_case(&g, "rnn_relu", RNN::new(5, 4, o, dev).unwrap(), dev);
        let v = inputs(&g, "rnn_relu", &["x"], dev);
        let (out, h) = m.forward_state(&v[0], None).unwrap();
        check(&g, "rnn_relu", &[("out", &out), ("h_n", &h)], &[("x", &v[0])], &m, dev);
    }

    fn lstm_plain(dev) {
        let g = Golden::load("rnn");
        let m = load_case(&g, "lstm", LSTM::new(5, 4, RnnOpts::new(), dev).unwrap(), dev);
        let v = inputs(&g, "lstm", &["x"], dev);
        let (out, (h, c)) = m.forward_state(&v[0], None).unwrap();
        check(&g, "lstm", &[("out", &out), ("h_n", &h), ("c_n", &c)], &[("x", &v[0])], &m, dev);
    }

    fn lstm_bidirectional_two_layers_proj_size(dev) {
        let g = Golden::load("rnn");
        let o = RnnOpts::new().num_layers(2).bidirectional(true).proj_size(3).batch_first(true);
        let m = load_case(&g, "lstm_big", LSTM::new(5, 6, o, dev).unwrap(), dev);
        let v = inputs(&g, "lstm_big", &["x", "h0", "c0"], dev);
        let (out, (h, c)) = m.forward_state(&v[0], Some((&v[1], &v[2]))).unwrap();
        assert_eq!(out.shape(), &[3, 6, 6]);
        check(&g, "lstm_big", &[("out", &out), ("h_n", &h), ("c_n", &c)],
            &[("x", &v[0]), ("h0", &v[1]), ("c0", &v[2])], &m, dev);
    }

    fn lstm_variable_lengths_match_packed_sequences(dev) {
        let g = Golden::load("rnn");
        let case = "lstm_big_lengths";
        let o = RnnOpts::new().num_layers(2).bidirectional(true).proj_size(3).batch_first(true);
        let m = load_case(&g, case, LSTM::new(5, 6, o, dev).unwrap(), dev);
        let v = inputs(&g, case, &["x", "h0", "c0"], dev);
        let (out, (h, c)) = m.forward_lengths(&v[0], &lengths(&g, case), Some((&v[1], &v[2]))).unwrap();
        check(&g, case, &[("out", &out), ("h_n", &h), ("c_n", &c)],
            &[("x", &v[0]), ("h0", &v[1]), ("c0", &v[2])], &m, dev);
    }

    fn gru_bidirectional_two_layers(dev) {
        let g = Golden::load("rnn");
        let o = RnnOpts::new().num_layers(2).bidirectional(true);
        let m = load_case(&g, "gru", GRU::new(5, 4, o, dev).unwrap(), dev);
        let v = inputs(&g, "gru", &["x", "h0"], dev);
        let (out, h) = m.forward_state(&v[0], Some(&v[1])).unwrap();
        check(&g, "gru", &[("out", &out), ("h_n", &h)], &[("x", &v[0]), ("h0", &v[1])], &m, dev);
    }

    fn gru_and_rnn_variable_lengths(dev) {
        let g = Golden::load("rnn");
        let m = load_case(&g, "gru_lengths", GRU::new(5, 4, RnnOpts::new().bidirectional(true), dev).unwrap(), dev);
        let v = inputs(&g, "gru_lengths", &["x"], dev);
        let (out, h) = m.forward_lengths(&v[0], &lengths(&g, "gru_lengths"), None).unwrap();
        check(&g, "gru_lengths", &[("out", &out), ("h_n", &h)], &[("x", &v[0])], &m, dev);

        let o = RnnOpts::new().bidirectional(true).nonlinearity(Activation::Relu).batch_first(true);
        let m = load_case(&g, "rnn_lengths", RNN::new(5, 4, o, dev).unwrap(), dev);
        let v = inputs(&g, "rnn_lengths", &["x", "h0"], dev);
        let (out, h) = m.forward_lengths(&v[0], &lengths(&g, "rnn_lengths"), Some(&v[1])).unwrap();
        check(&g, "rnn_lengths", &[("out", &out), ("h_n", &h)], &[("x", &v[0]), ("h0", &v[1])], &m, dev);
    }

    fn lstm_unbatched_input(dev) {
        let g = Golden::load("rnn");
        let case = "lstm_unbatched";
        let m = load_case(&g, case, LSTM::new(5, 4, RnnOpts::new().num_layers(2), dev).unwrap(), dev);
        let v = inputs(&g, case, &["x", "h0", "c0"], dev);
        let (out, (h, c)) = m.forward_state(&v[0], Some((&v[1], &v[2]))).unwrap();
        check(&g, case, &[("out", &out), ("h_n", &h), ("c_n", &c)],
            &[("x", &v[0]), ("h0", &v[1]), ("c0", &v[2])], &m, dev);
    }

    fn cells(dev) {
        let g = Golden::load("rnn");
        let m = load_case(&g, "lstm_cell", LSTMCell::new(5, 4, dev).unwrap(), dev);
        let v = inputs(&g, "lstm_cell", &["x", "h0", "c0"], dev);
        let (h, c) = m.forward_state(&v[0], Some((&v[1], &v[2]))).unwrap();
        check(&g, "lstm_cell", &[("h", &h), ("c", &c)], &[("x", &v[0]), ("h0", &v[1]), ("c0", &v[2])], &m, dev);

        let m = load_case(&g, "gru_cell", GRUCell::with_bias(5, 4, false, dev).unwrap(), dev);
        let v = inputs(&g, "gru_cell", &["x", "h0"], dev);
        let h = m.forward_state(&v[0], Some(&v[1])).unwrap();
        check(&g, "gru_cell", &[("h", &h)], &[("x", &v[0]), ("h0", &v[1])], &m, dev);
    }

    /// Dropout between layers follows the mode; eval is deterministic.
    fn dropout_between_layers_follows_the_mode(dev) {
        let m = GRU::new(3, 8, RnnOpts::new().num_layers(2).dropout(0.5), dev).unwrap();
        let x = Tensor::randn(&[4, 2, 3], DType::F32, dev).unwrap();
        let (a, b) = (m.forward(&x).unwrap(), m.forward(&x).unwrap());
        assert_ne!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
        m.eval();
        assert_eq!(m.forward(&x).unwrap().to_vec::<f32>().unwrap(), m.forward(&x).unwrap().to_vec::<f32>().unwrap());
    }
}

#[test]
fn names_shapes_and_init_follow_pytorch() {
    let dev = Device::Cpu;
    let lstm = LSTM::new(
        32,
        64,
        RnnOpts::new()
            .num_layers(2)
            .bidirectional(true)
            .proj_size(16),
        &dev,
    )
    .unwrap();
    let params = lstm.named_parameters();
    let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).take(10).collect();
    assert_eq!(
        names,
        [
            "weight_ih_l0",
            "weight_hh_l0",
            "bias_ih_l0",
            "bias_hh_l0",
            "weight_hr_l0",
            "weight_ih_l0_reverse",
            "weight_hh_l0_reverse",
            "bias_ih_l0_reverse",
            "bias_hh_l0_reverse",
            "weight_hr_l0_reverse",
        ]
    );
    assert_eq!(params.len(), 20);
    let shape = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1
            .shape()
            .to_vec()
    };
    assert_eq!(shape("weight_ih_l0"), [256, 32]);
    assert_eq!(shape("weight_hh_l0"), [256, 16]);
    assert_eq!(shape("weight_hr_l0"), [16, 64]);
    assert_eq!(shape("weight_ih_l1_reverse"), [256, 32]);
    // U(±1/√hidden) for every parameter.
    for (name, p) in &params {
        let v = p.to_vec::<f32>().unwrap();
        assert!(v.iter().all(|w| w.abs() <= 0.125), "{name}");
        assert!(v.iter().any(|w| w.abs() > 0.1), "{name}");
    }
    assert_eq!(
        kiln::nn::repr(&lstm),
        "LSTM(32, 64, proj_size=16, num_layers=2, bidirectional=True)"
    );
    let x = Tensor::randn(&[5, 3, 32], DType::F32, &dev).unwrap();
    let (out, (h, c)) = lstm.forward_state(&x, None).unwrap();
    assert_eq!(
        (out.shape(), h.shape(), c.shape()),
        (&[5, 3, 32][..], &[4, 3, 16][..], &[4, 3, 64][..])
    );
    let gru = GRU::new(32, 64, RnnOpts::new(), &dev).unwrap();
    assert_eq!(gru.named_parameters()[0].1.shape(), &[192, 32]);
    let cell = GRUCell::new(3, 5, &dev).unwrap();
    let names: Vec<String> = cell
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]);
}

#[test]
fn gradcheck_f64_lstm_and_gru() {
    let dev = Device::Cpu;
    let lstm = LSTM::new(3, 2, RnnOpts::new().bidirectional(true).proj_size(1), &dev).unwrap();
    lstm.to_dtype(DType::F64).unwrap();
    let x = Tensor::randn(&[3, 2, 3], DType::F64, &dev).unwrap();
    let f = |v: &[Tensor]| -> Result<Tensor> { Ok(lstm.forward_lengths(&v[0], &[3, 2], None)?.0) };
    gradcheck(f, std::slice::from_ref(&x), GradcheckOpts::default()).unwrap();
    let gru = GRUCell::new(3, 2, &dev).unwrap();
    gru.to_dtype(DType::F64).unwrap();
    let h = Tensor::randn(&[2, 2], DType::F64, &dev).unwrap();
    let f =
        |v: &[Tensor]| -> Result<Tensor> { gru.forward_state(&v[0].narrow(0, 0, 2)?, Some(&v[1])) };
    gradcheck(
        f,
        &[x.reshape(&[6, 3]).unwrap(), h],
        GradcheckOpts::default(),
    )
    .unwrap();
}

fn assert_invalid_arg<T: std::fmt::Debug>(r: Result<T>, expected: &str) {
    match r {
        Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, expected),
        other => panic!("expected an invalid `{expected}`, got {other:?}"),
    }
}

#[test]
fn bad_arguments_are_errors() {
    let dev = Device::Cpu;
    assert_invalid_arg(LSTM::new(0, 4, RnnOpts::new(), &dev), "input_size");
    assert_invalid_arg(
        LSTM::new(3, 4, RnnOpts::new().num_layers(0), &dev),
        "num_layers",
    );
    assert_invalid_arg(
        LSTM::new(3, 4, RnnOpts::new().proj_size(4), &dev),
        "proj_size",
    );
    assert_invalid_arg(
        GRU::new(3, 4, RnnOpts::new().proj_size(2), &dev),
        "proj_size",
    );
    assert_invalid_arg(
        GRU::new(3, 4, RnnOpts::new().dropout(-0.1), &dev),
        "dropout",
    );
    assert_invalid_arg(
        RNN::new(3, 4, RnnOpts::new().nonlinearity(Activation::Gelu), &dev),
        "nonlinearity",
    );
    let lstm = LSTM::new(3, 4, RnnOpts::new(), &dev).unwrap();
    let x = Tensor::zeros(&[5, 2, 3], DType::F32, &dev).unwrap();
    assert_invalid_arg(
        lstm.forward(&Tensor::zeros(&[5, 2, 4], DType::F32, &dev).unwrap()),
        "input",
    );
    assert_invalid_arg(
        lstm.forward(&Tensor::zeros(&[0, 2, 3], DType::F32, &dev).unwrap()),
        "input",
    );
    let h = Tensor::zeros(&[1, 3, 4], DType::F32, &dev).unwrap();
    assert_invalid_arg(lstm.forward_state(&x, Some((&h, &h))), "hx");
    assert_invalid_arg(lstm.forward_lengths(&x, &[5, 6], None), "lengths");
    assert_invalid_arg(lstm.forward_lengths(&x, &[5], None), "lengths");
    let cell = LSTMCell::new(3, 4, &dev).unwrap();
    assert_invalid_arg(cell.forward_state(&x, None), "input");
    let (x2, h2) = (
        Tensor::zeros(&[2, 3], DType::F32, &dev).unwrap(),
        Tensor::zeros(&[3, 4], DType::F32, &dev).unwrap(),
    );
    assert_invalid_arg(cell.forward_state(&x2, Some((&h2, &h2))), "hx");
}
