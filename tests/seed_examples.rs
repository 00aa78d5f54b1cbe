//! The seed's examples, exactly as API.md ("User-defined modules: the seed's
//! examples") writes them, each run in training mode and after `eval()`: `MyModel`
//! (nn::Conv2d + nn::ReLU) and `FunctionalModel` (Parameters passed to F::conv2d)
//! give a direct convolution computed here by hand; `Model1` (nn::Dropout) and
//! `Model3` (F::dropout told `self.is_training()`) drop about half in training and
//! nothing in eval. Then API.md's "Modules" snippet.

// ---- API.md, "User-defined modules: the seed's examples", verbatim (as rustfmt lays
// it out). It compiles on its own: the `Forward` import below is for the checks. ----

use kiln::nn::{self, functional as F, Conv2dOpts, Module};
use kiln::{Device, Result, Tensor};

// Layers with learnable parameters are built once, in the constructor.
#[derive(nn::Module)]
struct MyModel {
    conv1: nn::Conv2d,
    act: nn::ReLU,
}

impl MyModel {
    fn new(dev: &Device) -> Result<Self> {
        Ok(Self {
            conv1: nn::Conv2d::new(3, 6, 3, Conv2dOpts::new().stride(1).padding(1), dev)?,
            act: nn::ReLU,
        })
    }
}
impl nn::Forward for MyModel {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.act.forward(&self.conv1.forward(x)?)
    }
}

// The functional style: the module owns Parameters and passes them to F::conv2d.
#[derive(nn::Module)]
struct FunctionalModel {
    weight: nn::Parameter,
    bias: nn::Parameter,
}
impl nn::Forward for FunctionalModel {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::relu(&F::conv2d(
            x,
            &self.weight,
            Some(&self.bias),
            Conv2dOpts::new(),
        )?)
    }
}

// Dropout: the module form follows eval(); the functional form is told the mode.
#[derive(nn::Module)]
struct Model1 {
    dropout: nn::Dropout,
}
impl nn::Forward for Model1 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.dropout.forward(x)
    }
}
#[derive(nn::Module, Default)]
struct Model3 {
    mode: nn::Mode, // a module with no children keeps its own mode flag
}
impl nn::Forward for Model3 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::dropout(x, 0.5, self.is_training())
    }
}

// ---- The checks ----

use kiln::nn::Forward as _;
use kiln::DType;

fn names<T>(list: Vec<(String, T)>) -> Vec<String> {
    list.into_iter().map(|(name, _)| name).collect()
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap()
}

/// A direct (loop) convolution with stride 1, padding `pad`, dilation 1, groups 1,
/// followed by a ReLU, in f64: the reference the conv models must agree with.
/// `x` is (N, C, H, W), `w` (O, C, KH, KW), `b` (O); returns the values and shape.
fn conv_relu_by_hand(x: &Tensor, w: &Tensor, b: &Tensor, pad: usize) -> (Vec<f64>, Vec<usize>) {
    let [n, c, h, wd] = x.shape()[..] else {
        panic!("x is 4-D")
    };
    let [o, c2, kh, kw] = w.shape()[..] else {
        panic!("w is 4-D")
    };
    assert_eq!(c, c2);
    let (xv, wv, bv) = (values(x), values(w), values(b));
    let (oh, ow) = (h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1);
    let mut out = vec![0f64; n * o * oh * ow];
    for ni in 0..n {
        for oi in 0..o {
            for y in 0..oh {
                for xo in 0..ow {
                    let mut acc = bv[oi];
                    for ci in 0..c {
                        for i in 0..kh {
                            for j in 0..kw {
                                // Input position, skipping the zero padding.
                                let (yy, xx) = (y + i, xo + j);
                                if yy < pad || xx < pad || yy - pad >= h || xx - pad >= wd {
                                    continue;
                                }
                                let xi = ((ni * c + ci) * h + yy - pad) * wd + xx - pad;
                                let wi = ((oi * c + ci) * kh + i) * kw + j;
                                acc += xv[xi] * wv[wi];
                            }
                        }
                    }
                    out[((ni * o + oi) * oh + y) * ow + xo] = acc.max(0.0);
                }
            }
        }
    }
    (out, vec![n, o, oh, ow])
}

#[track_caller]
fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "element {i}: got {g}, want {w}"
        );
    }
}

fn randn(shape: &[usize]) -> Tensor {
    Tensor::randn(shape, DType::F32, &Device::Cpu).unwrap()
}

#[test]
fn my_model_is_conv_then_relu_in_both_modes() {
    let model = MyModel::new(&Device::Cpu).unwrap();
    assert_eq!(
        names(model.named_parameters()),
        ["conv1.weight", "conv1.bias"]
    );
    assert_eq!(names(model.named_children()), ["conv1", "act"]);
    assert_eq!(model.conv1.weight.shape(), &[6, 3, 3, 3]);
    assert_eq!(model.conv1.bias.as_ref().unwrap().shape(), &[6]);
    // Odd, non-square input; padding 1 keeps the 5×7 size.
    let x = randn(&[2, 3, 5, 7]);
    let conv1_bias = model.conv1.bias.as_deref().unwrap();
    let (want, want_shape) = conv_relu_by_hand(&x, &model.conv1.weight, conv1_bias, 1);
    assert_eq!(want_shape, [2, 6, 5, 7]);
    // The same weights through F::conv2d directly.
    let functional = F::relu(
        &F::conv2d(
            &x,
            &model.conv1.weight,
            Some(conv1_bias),
            Conv2dOpts::new().stride(1).padding(1),
        )
        .unwrap(),
    )
    .unwrap();
    assert_close(&values(&functional), &want, 1e-5);
    assert!(model.is_training() && model.conv1.is_training());
    let train_out = model.forward(&x).unwrap();
    assert_eq!(train_out.shape(), &[2, 6, 5, 7]);
    assert_close(&values(&train_out), &want, 1e-5);
    model.eval();
    assert!(!model.is_training() && !model.conv1.is_training());
    let eval_out = model.forward(&x).unwrap();
    assert_eq!(eval_out.shape(), &[2, 6, 5, 7]);
    assert_eq!(
        values(&eval_out),
        values(&train_out),
        "no mode-dependent layer"
    );
}

#[test]
fn functional_model_is_f_conv2d_with_its_parameters() {
    let model = FunctionalModel {
        weight: nn::Parameter::new(randn(&[4, 3, 3, 2])).unwrap(),
        bias: nn::Parameter::new(randn(&[4])).unwrap(),
    };
    assert_eq!(names(model.named_parameters()), ["weight", "bias"]);
    let x = randn(&[2, 3, 6, 5]);
    // Conv2dOpts::new(): stride 1, no padding, so (6, 5) → (4, 4).
    let (want, want_shape) = conv_relu_by_hand(&x, &model.weight, &model.bias, 0);
    let y = model.forward(&x).unwrap();
    assert_eq!(y.shape(), want_shape.as_slice());
    assert_eq!(y.shape(), &[2, 4, 4, 4]);
    assert_close(&values(&y), &want, 1e-5);

    // Gradients reach the Parameters. For loss = Σ relu(conv): d/dbias[o] counts the
    // active outputs of channel o; d/dweight[o,c,i,j] sums the inputs under them.
    y.sum_all().unwrap().backward().unwrap();
    let xv = values(&x);
    let mut grad_b = [0f64; 4];
    let mut grad_w = vec![0f64; 4 * 3 * 3 * 2];
    // Output element k of the (2, 4, 4, 4) result is (n, o, oy, ox).
    for k in (0..want.len()).filter(|&k| want[k] > 0.0) {
        let (n, o, oy, ox) = (k / 64, (k / 16) % 4, (k / 4) % 4, k % 4);
        grad_b[o] += 1.0;
        for c in 0..3 {
            for i in 0..3 {
                for j in 0..2 {
                    grad_w[((o * 3 + c) * 3 + i) * 2 + j] +=
                        xv[((n * 3 + c) * 6 + oy + i) * 5 + ox + j];
                }
            }
        }
    }
    assert!(grad_b.iter().any(|&g| g > 0.0), "some output is active");
    assert_close(
        &values(&model.bias.grad().expect("bias grad")),
        &grad_b,
        1e-5,
    );
    assert_close(
        &values(&model.weight.grad().expect("weight grad")),
        &grad_w,
        1e-5,
    );
    model.zero_grad();
    assert!(model.weight.grad().is_none() && model.bias.grad().is_none());

    // No Mode anywhere: eval() changes nothing and the output is the same.
    model.eval();
    let y_eval = model.forward(&x).unwrap();
    assert_eq!(values(&y_eval), values(&y));
}

/// Checks a dropout output for input `ones`: in training about half the elements
/// (within 4σ) are 0 and the rest 2 = 1/(1-0.5); otherwise all are 1.
#[track_caller]
fn check_dropout(y: &Tensor, training: bool) {
    let v = values(y);
    if training {
        assert!(
            v.iter().all(|&e| e == 0.0 || e == 2.0),
            "values other than 0 and 2"
        );
        let n = v.len() as f64;
        let dropped = v.iter().filter(|&&e| e == 0.0).count() as f64;
        let sigma = (n * 0.25).sqrt();
        assert!(
            (dropped - n / 2.0).abs() < 4.0 * sigma,
            "dropped {dropped} of {n}"
        );
    } else {
        assert!(v.iter().all(|&e| e == 1.0), "eval must not drop or scale");
    }
}

fn ones() -> Tensor {
    Tensor::ones(&[64, 100], DType::F32, &Device::Cpu).unwrap()
}

#[test]
fn model1_dropout_module_follows_eval() {
    let model = Model1 {
        dropout: nn::Dropout::new(0.5).unwrap(),
    };
    assert!(model.is_training() && model.dropout.is_training());
    let first = model.forward(&ones()).unwrap();
    check_dropout(&first, true);
    // Each call draws a fresh mask.
    assert_ne!(values(&first), values(&model.forward(&ones()).unwrap()));
    model.eval();
    assert!(!model.is_training() && !model.dropout.is_training());
    check_dropout(&model.forward(&ones()).unwrap(), false);
    model.train();
    assert!(model.dropout.is_training());
    check_dropout(&model.forward(&ones()).unwrap(), true);
}

#[test]
fn model3_functional_dropout_follows_its_own_mode() {
    let model = Model3::default();
    assert!(model.is_training());
    assert!(model.named_parameters().is_empty() && model.named_children().is_empty());
    check_dropout(&model.forward(&ones()).unwrap(), true);
    model.eval(); // through `&self`: the binding is not `mut`
    assert!(!model.is_training());
    check_dropout(&model.forward(&ones()).unwrap(), false);
    model.train();
    assert!(model.is_training());
    check_dropout(&model.forward(&ones()).unwrap(), true);
}

// ---- API.md, "Modules" ----

#[test]
fn modules_snippet() -> Result<()> {
    let dev = Device::Cpu;
    let conv = nn::Conv2d::new(3, 6, 3, Conv2dOpts::new().stride(1).padding(1), &dev)?; // == nn.Conv2d(3,6,3,1,1)
    let conv_nb = nn::Conv2d::no_bias(16, 32, (3, 1), Conv2dOpts::new().groups(16), &dev)?;
    let fc = nn::Linear::new(120, 84, &dev)?;
    let fc_nb = nn::Linear::no_bias(84, 10, &dev)?;
    let drop = nn::Dropout::new(0.5)?; // Err for p outside [0, 1]
    let bn = nn::BatchNorm2d::new(6, &dev)?; // running stats update in training mode only
    let pool = nn::MaxPool2d::new(2, 2);
    let flat = nn::Flatten::new(); // flattens dims 1.. like nn.Flatten()
    let act = nn::ReLU;
    // The layers' parameters have PyTorch's shapes.
    assert_eq!(conv.weight.shape(), &[6, 3, 3, 3]);
    assert_eq!(conv_nb.weight.shape(), &[32, 1, 3, 1]);
    assert!(conv_nb.bias.is_none());
    assert_eq!(fc.weight.shape(), &[84, 120]);
    assert_eq!(fc_nb.weight.shape(), &[10, 84]);
    assert!(fc_nb.bias.is_none());
    assert_eq!(drop.p(), 0.5);
    assert_eq!(names(bn.named_parameters()), ["weight", "bias"]);
    // ...and chain: (2,3,8,8) → conv (2,6,8,8) → bn → relu → pool (2,6,4,4) → (2,96).
    let img = randn(&[2, 3, 8, 8]);
    let chained = [&conv as &dyn nn::Layer, &bn, &act, &pool, &flat]
        .iter()
        .try_fold(img, |h, layer| layer.forward(&h))?;
    assert_eq!(chained.shape(), &[2, 96]);
    assert_eq!(
        conv_nb.forward(&randn(&[1, 16, 5, 4]))?.shape(),
        &[1, 32, 3, 4]
    );

    let x = randn(&[3, 1, 8, 8]);
    let net = nn::Sequential::new()
        .add(nn::Conv2d::new(
            1,
            8,
            3,
            Conv2dOpts::new().padding(1),
            &dev,
        )?)
        .add(nn::ReLU)
        .add(nn::MaxPool2d::new(2, 2))
        .add(nn::Flatten::new())
        .add(nn::Dropout::new(0.25)?)
        .add(nn::Linear::new(8 * 4 * 4, 10, &dev)?);
    let y = net.forward(&x)?;
    assert_eq!(y.shape(), &[3, 10]);
    // Conv2d, Flatten, Dropout and Linear keep a mode flag, and all follow the
    // Sequential's train()/eval(). ReLU and MaxPool2d hold no Mode (they act the
    // same in both modes), so they always report training.
    let with_mode = [0, 3, 4, 5];
    let child_modes = |net: &nn::Sequential| -> Vec<bool> {
        with_mode
            .iter()
            .map(|&i| net.get(i).unwrap().is_training())
            .collect()
    };
    assert_eq!(child_modes(&net), [true; 4], "new modules train");
    net.eval();
    assert!(!net.is_training()); // every child is now in eval mode
    assert_eq!(child_modes(&net), [false; 4]);
    // In eval the net is deterministic and is the functional pipeline with its weights.
    let params: Vec<(String, nn::Parameter)> = net.named_parameters();
    assert_eq!(
        names(params.clone()),
        ["0.weight", "0.bias", "5.weight", "5.bias"]
    );
    let p = |i: usize| -> &Tensor { &params[i].1 };
    let h = F::relu(&F::conv2d(
        &x,
        p(0),
        Some(p(1)),
        Conv2dOpts::new().padding(1),
    )?)?;
    let h = F::flatten(&F::max_pool2d(&h, 2, 2, 0)?, 1, 3)?;
    let want = F::linear(&h, p(2), Some(p(3)))?;
    let y_eval = net.forward(&x)?;
    assert_close(&values(&y_eval), &values(&want), 1e-6);
    assert_eq!(values(&net.forward(&x)?), values(&y_eval));
    net.train();
    assert!(net.is_training());
    assert_eq!(child_modes(&net), [true; 4]);
    let mut shapes = Vec::new();
    for (name, p) in net.named_parameters() {
        shapes.push((name, p.shape().to_vec()));
    }
    assert_eq!(
        shapes,
        [
            ("0.weight".to_string(), vec![8, 1, 3, 3]),
            ("0.bias".to_string(), vec![8]),
            ("5.weight".to_string(), vec![10, 128]),
            ("5.bias".to_string(), vec![10]),
        ]
    );
    let n: usize = net.parameters().iter().map(|p| p.numel()).sum();
    // 8·1·3·3 + 8 + 10·128 + 10
    assert_eq!(n, 72 + 8 + 1280 + 10);
    Ok(())
}
