//! Activation checkpointing (`kiln::utils::checkpoint`): gradients equal the plain
//! run's bit for bit (dropout included), the generator ends where the plain run leaves
//! it, batch norm's statistics move once, parameters behind an input that needs no
//! gradient still train, and the models' per-block option changes memory, not results.

mod common;

use common::device_test;
use kiln::models::gpt::{Gpt, GptConfig};
use kiln::models::{ResNet, ResNetConfig};
use kiln::nn::{self, functional as F, Forward, Module};
use kiln::optim::{Optimizer, Sgd};
use kiln::{DType, Device, Error, Result, Tensor};
use std::sync::Arc;

/// Linear → dropout → GELU → Linear: parameters, randomness and a nonlinearity.
#[derive(Debug, nn::Module)]
struct Block {
    fc1: nn::Linear,
    drop: nn::Dropout,
    fc2: nn::Linear,
}

impl Block {
    fn new(dev: &Device) -> Block {
        Block {
            fc1: nn::Linear::new(6, 10, dev).unwrap(),
            drop: nn::Dropout::new(0.3).unwrap(),
            fc2: nn::Linear::new(10, 6, dev).unwrap(),
        }
    }
}

impl Forward for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = F::gelu(&self.drop.forward(&self.fc1.forward(x)?)?)?;
        self.fc2.forward(&h)
    }
}

/// Held by every test of this file: they run one at a time, so that the others'
/// allocations stay out of the peak-memory test's allocator statistics.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f32::to_bits)
        .collect()
}

/// Every parameter's gradient (bit patterns), then cleared.
fn take_grads(m: &impl Module) -> Vec<Vec<u32>> {
    m.parameters()
        .iter()
        .map(|p| {
            let g = bits(&p.grad().expect("every parameter gets a gradient"));
            p.zero_grad();
            g
        })
        .collect()
}

/// Two blocks in a row, each plain or checkpointed; the loss's gradient for `x`
/// (when it needs one) and every parameter, and the generator's state after.
fn run(
    blocks: &[Arc<Block>; 2],
    x: &Tensor,
    checkpointed: bool,
) -> (Option<Vec<u32>>, Vec<Vec<u32>>, Tensor) {
    kiln::manual_seed(7);
    let mut h = x.clone();
    for block in blocks {
        h = if checkpointed {
            let b = Arc::clone(block);
            kiln::utils::checkpoint(move |x| b.forward(x), &h).unwrap()
        } else {
            block.forward(&h).unwrap()
        };
    }
    h.mul(&h).unwrap().sum_all().unwrap().backward().unwrap();
    let x_grad = x.grad().map(|g| bits(&g));
    x.zero_grad();
    let grads = blocks.iter().flat_map(|b| take_grads(b.as_ref())).collect();
    (x_grad, grads, kiln::rng_state())
}

device_test! {
    /// With dropout on, checkpointing changes nothing: the recomputation draws the
    /// forward's masks, and the generator ends where the plain run leaves it.
    fn gradients_and_the_generator_equal_the_plain_run(dev) {
        let (_serial, _own) = (serial(), common::own_generator());
        let blocks = [Arc::new(Block::new(dev)), Arc::new(Block::new(dev))];
        let x = Tensor::randn(&[5, 6], DType::F32, dev).unwrap().requires_grad();
        let plain = run(&blocks, &x, false);
        let checkpointed = run(&blocks, &x, true);
        assert!(plain.0.is_some());
        assert_eq!(plain.0, checkpointed.0, "the input's gradient");
        assert_eq!(plain.1, checkpointed.1, "the parameters' gradients");
        assert_eq!(
            plain.2.to_vec::<u8>().unwrap(),
            checkpointed.2.to_vec::<u8>().unwrap(),
            "the generator's state after backward"
        );
    }

    /// The first block of a network gets data that needs no gradient; its parameters
    /// must train anyway (PyTorch's reentrant checkpoint leaves them without one).
    fn parameters_train_when_the_input_needs_no_gradient(dev) {
        let (_serial, _own) = (serial(), common::own_generator());
        let blocks = [Arc::new(Block::new(dev)), Arc::new(Block::new(dev))];
        let x = Tensor::randn(&[3, 6], DType::F32, dev).unwrap();
        let plain = run(&blocks, &x, false);
        let checkpointed = run(&blocks, &x, true);
        assert_eq!(checkpointed.0, None);
        assert_eq!(plain.1, checkpointed.1);
    }

    /// A graph kept for a second backward recomputes again; gradients accumulate.
    fn a_retained_graph_recomputes_for_each_backward(dev) {
        let (_serial, _own) = (serial(), common::own_generator());
        let block = Arc::new(Block::new(dev));
        block.eval();
        let x = Tensor::randn(&[4, 6], DType::F32, dev).unwrap().requires_grad();
        let loss = |checkpointed: bool| {
            let b = Arc::clone(&block);
            let y = if checkpointed {
                kiln::utils::checkpoint(move |x| b.forward(x), &x).unwrap()
            } else {
                b.forward(&x).unwrap()
            };
            y.sum_all().unwrap()
        };
        let mut results = Vec::new();
        for checkpointed in [false, true] {
            let l = loss(checkpointed);
            l.backward_retain_graph().unwrap();
            l.backward().unwrap();
            results.push((bits(&x.grad().unwrap()), take_grads(block.as_ref())));
            x.zero_grad();
        }
        assert_eq!(results[0], results[1]);
    }

    /// Nothing to differentiate: no graph is recorded, as for the plain call.
    fn nothing_to_differentiate_records_no_graph(dev) {
        let (_serial, _own) = (serial(), common::own_generator());
        let x = Tensor::randn(&[2, 6], DType::F32, dev).unwrap();
        let y = kiln::utils::checkpoint(|x| x.tanh(), &x).unwrap();
        assert!(!y.requires_grad_flag());
        assert!(matches!(y.sum_all().unwrap().backward(), Err(Error::NoGraph)));
        let block = Arc::new(Block::new(dev));
        let _off = kiln::no_grad();
        let y = kiln::utils::checkpoint(move |x| block.forward(x), &x.requires_grad()).unwrap();
        assert!(!y.requires_grad_flag(), "no graph under no_grad");
    }

    /// Batch norm in training mode updates its running statistics in the forward
    /// pass only, not again when backward recomputes the block.
    fn batch_norm_statistics_move_once(dev) {
        let stats = |checkpointed: bool| {
            let bn = Arc::new(nn::BatchNorm1d::new(4, dev).unwrap());
            let x = Tensor::randn(&[8, 4], DType::F32, dev).unwrap().requires_grad();
            let b = Arc::clone(&bn);
            let y = if checkpointed {
                kiln::utils::checkpoint(move |x| b.forward(x), &x).unwrap()
            } else {
                b.forward(&x).unwrap()
            };
            y.mul(&y).unwrap().sum_all().unwrap().backward().unwrap();
            let grad = bits(&x.grad().unwrap());
            let buffers: Vec<Vec<u32>> = bn
                .buffers()
                .iter()
                .filter(|b| b.dtype().is_float())
                .map(|b| bits(b))
                .collect();
            (grad, buffers, take_grads(bn.as_ref()))
        };
        let (_serial, _own) = (serial(), common::own_generator());
        kiln::manual_seed(3);
        let plain = stats(false);
        kiln::manual_seed(3);
        let checkpointed = stats(true);
        assert_eq!(plain, checkpointed);
    }

    /// The optimizer's check for parameters it does not hold sees those reached
    /// inside a checkpointed block.
    fn unregistered_parameters_inside_a_block_are_reported(dev) {
        let (_serial, _own) = (serial(), common::own_generator());
        let block = Arc::new(Block::new(dev));
        block.eval();
        let outside = Tensor::ones(&[6], DType::F32, dev).unwrap().requires_grad();
        let mut opt = Sgd::new([outside.clone()], 0.1).unwrap();
        let b = Arc::clone(&block);
        let x = Tensor::randn(&[2, 6], DType::F32, dev).unwrap().mul(&outside).unwrap();
        let y = kiln::utils::checkpoint(move |x| b.forward(x), &x).unwrap();
        y.sum_all().unwrap().backward().unwrap();
        let err = opt.step().unwrap_err();
        let Error::UnregisteredParameters { shapes } = err else {
            panic!("expected UnregisteredParameters, got {err}");
        };
        assert_eq!(shapes.len(), block.parameters().len());
    }

    /// The models' per-block option gives the plain model's gradients.
    fn models_train_the_same_checkpointed(dev) {
        let (_serial, _own) = (serial(), common::own_generator());
        let config = GptConfig {
            vocab_size: 11,
            block_size: 8,
            n_layer: 2,
            n_head: 2,
            n_embd: 8,
            tie_weights: true,
        };
        let gpt = Gpt::new(config, dev).unwrap();
        let ids = Tensor::from_vec((0..12).map(|i| i % 11).collect::<Vec<i64>>(), &[2, 6], dev)
            .unwrap();
        let gpt_grads = |on: bool| {
            gpt.set_checkpoint(on);
            F::cross_entropy(&gpt.forward(&ids).unwrap().flatten(0, 1).unwrap(), &ids.flatten(0, 1).unwrap())
                .unwrap()
                .backward()
                .unwrap();
            take_grads(&gpt)
        };
        assert_eq!(gpt_grads(false), gpt_grads(true));

        let net = ResNet::new(ResNetConfig::new(3).width(2), dev).unwrap();
        let images = Tensor::randn(&[2, 3, 8, 8], DType::F32, dev).unwrap();
        let labels = Tensor::from_vec(vec![0i64, 2], &[2], dev).unwrap();
        let resnet_grads = |on: bool| {
            net.set_checkpoint(on);
            F::cross_entropy(&net.forward(&images).unwrap(), &labels)
                .unwrap()
                .backward()
                .unwrap();
            take_grads(&net)
        };
        assert_eq!(resnet_grads(false), resnet_grads(true));
    }
}

#[test]
fn checkpoint_passes_gradcheck_in_f64() {
    let (_serial, _own) = (serial(), common::own_generator());
    let dev = Device::Cpu;
    let w = Tensor::randn(&[3, 3], DType::F64, &dev).unwrap();
    let f = |xs: &[Tensor]| {
        let w = w.clone();
        kiln::utils::checkpoint(move |x| x.matmul(&w)?.tanh(), &xs[0])
    };
    let x = Tensor::randn(&[2, 3], DType::F64, &dev)
        .unwrap()
        .requires_grad();
    kiln::autograd::gradcheck(f, &[x], Default::default()).unwrap();
}

/// On the emulated device (whose allocator keeps statistics): a deep stack of
/// checkpointed blocks peaks at a fraction of the plain stack's allocated bytes.
#[test]
fn checkpointing_lowers_peak_memory() {
    let Some(dev) = common::cuda_or_skip("checkpointing_lowers_peak_memory") else {
        return;
    };
    let (_serial, _own) = (serial(), common::own_generator());
    let blocks: Vec<Arc<nn::Linear>> = (0..16)
        .map(|_| Arc::new(nn::Linear::new(64, 64, &dev).unwrap()))
        .collect();
    let x = Tensor::randn(&[1024, 64], DType::F32, &dev).unwrap();
    let peak = |checkpointed: bool| {
        kiln::cuda::synchronize(0).unwrap();
        kiln::cuda::reset_peak_memory_stats(0).unwrap();
        let before = kiln::cuda::memory_stats(0).unwrap().allocated_bytes.current;
        let mut h = x.clone();
        for block in &blocks {
            let b = Arc::clone(block);
            let f = move |x: &Tensor| F::gelu(&b.forward(x)?)?.tanh();
            h = if checkpointed {
                kiln::utils::checkpoint(f, &h).unwrap()
            } else {
                f(&h).unwrap()
            };
        }
        h.sum_all().unwrap().backward().unwrap();
        for b in &blocks {
            take_grads(b.as_ref());
        }
        kiln::cuda::memory_stats(0).unwrap().allocated_bytes.peak - before
    };
    let (plain, checkpointed) = (peak(false), peak(true));
    eprintln!("peak allocated bytes of 16 blocks: plain {plain}, checkpointed {checkpointed}");
    // Plain keeps three (1024, 64) activations per block (the linear map's output,
    // GELU's, tanh's); checkpointed keeps each block's input and recomputes one block
    // at a time: about a third, plus the weights' gradients and one block's backward.
    assert!(
        checkpointed * 10 < plain * 6,
        "peak allocated bytes: checkpointed {checkpointed}, plain {plain}"
    );
}
