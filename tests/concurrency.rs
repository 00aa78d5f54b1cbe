//! Ops on tensors that share storage, run from several threads at once, finish.
//!
//! Each test races two loops on two threads and fails (instead of hanging) when they
//! have not both finished within a deadline: the signature of a deadlock between the
//! storage locks (a read lock taken twice on one storage with a writer queued between
//! the two, or two locks taken in opposite orders).

use kiln::nn::functional as F;
use kiln::nn::Conv2dOpts;
use kiln::optim::{Adam, Optimizer, Sgd};
use kiln::{DType, Device, Tensor};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long each thread keeps running its op: long enough for the racy
/// interleavings to occur on a loaded machine.
const RUN_FOR: Duration = Duration::from_millis(1500);

/// Runs `a` and `b` in loops on two threads for [`RUN_FOR`]; panics when they have
/// not both finished within 20 s.
fn race(what: &str, a: impl Fn() + Send + 'static, b: impl Fn() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    for op in [Box::new(a) as Box<dyn Fn() + Send>, Box::new(b)] {
        let done = done.clone();
        thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < RUN_FOR {
                op();
            }
            let _ = done.send(());
        });
    }
    for _ in 0..2 {
        if finished.recv_timeout(Duration::from_secs(20)).is_err() {
            panic!("{what}: the threads did not finish within 20 s (deadlock)");
        }
    }
}

fn vector(values: &[f32]) -> Tensor {
    Tensor::from_vec(values.to_vec(), &[values.len()], &Device::Cpu).unwrap()
}

#[test]
fn an_op_reading_one_storage_twice_does_not_deadlock_with_a_writer() {
    let x = vector(&[1.0, 2.0, 3.0]);
    let y = vector(&[4.0, 5.0, 6.0]);
    let (x1, x2) = (x.clone(), x.clone());
    race(
        "x.add(&x) against x.copy_(&y)",
        move || {
            x1.add(&x1).unwrap();
            x1.gt(&x1).unwrap();
        },
        move || x2.copy_(&y).unwrap(),
    );
}

#[test]
fn matmul_of_a_tensor_with_its_transpose_does_not_deadlock_with_a_writer() {
    let x = Tensor::from_vec(vec![1f32, 2., 3., 4.], &[2, 2], &Device::Cpu).unwrap();
    let y = x.zeros_like().unwrap();
    let (x1, x2) = (x.clone(), x.clone());
    race(
        "x.matmul(&x.t) against x.copy_(&y)",
        move || {
            x1.matmul(&x1.transpose(0, 1).unwrap()).unwrap();
        },
        move || x2.copy_(&y).unwrap(),
    );
}

#[test]
fn conv2d_with_its_input_as_the_weight_does_not_deadlock_with_a_writer() {
    let x = Tensor::rand(&[1, 1, 3, 3], DType::F32, &Device::Cpu).unwrap();
    let w = x.clone();
    let y = x.zeros_like().unwrap();
    let x2 = x.clone();
    race(
        "conv2d(x, x) against x.copy_(&y)",
        move || {
            F::conv2d(&x, &w, None, Conv2dOpts::new()).unwrap();
        },
        move || x2.copy_(&y).unwrap(),
    );
}

#[test]
fn copies_in_opposite_directions_do_not_deadlock() {
    let a = vector(&[1.0, 2.0]);
    let b = vector(&[3.0, 4.0]);
    let (a1, b1, a2, b2) = (a.clone(), b.clone(), a, b);
    race(
        "a.copy_(&b) against b.copy_(&a)",
        move || a1.copy_(&b1).unwrap(),
        move || b2.copy_(&a2).unwrap(),
    );
}

#[test]
fn a_copy_into_a_view_of_its_own_source_finishes_and_is_right() {
    let x = vector(&[1.0, 2.0, 3.0, 4.0]);
    x.narrow(0, 0, 2)
        .unwrap()
        .copy_(&x.narrow(0, 2, 2).unwrap())
        .unwrap();
    assert_eq!(x.to_vec::<f32>().unwrap(), [3.0, 4.0, 3.0, 4.0]);
}

#[test]
fn fused_optimizer_steps_do_not_deadlock_with_copies_between_parameter_and_gradient() {
    for adam in [false, true] {
        let p = vector(&[1.0, 2.0]).requires_grad();
        p.mul(&p).unwrap().sum_all().unwrap().backward().unwrap();
        let g = p.grad().unwrap();
        let opt: Box<dyn Optimizer + Send> = if adam {
            Box::new(Adam::new([p.clone()], 1e-3).unwrap())
        } else {
            Box::new(Sgd::new([p.clone()], 1e-3).unwrap().momentum(0.9))
        };
        let opt = Mutex::new(opt);
        race(
            "step() against grad.copy_(&param)",
            move || opt.lock().unwrap().step().unwrap(),
            move || g.copy_(&p.detach()).unwrap(),
        );
    }
}

#[test]
fn batch_norm_with_weight_and_bias_in_one_storage_does_not_deadlock_with_a_writer() {
    // weight and bias are rows of one (2, C) tensor, which another thread rewrites.
    let affine = Tensor::from_vec(vec![1f32, 1., 1., 0., 0., 0.], &[2, 3], &Device::Cpu).unwrap();
    let fresh = affine.zeros_like().unwrap();
    let (a1, a2) = (affine.clone(), affine);
    race(
        "batch_norm(weight, bias in one storage) against copy_",
        move || {
            let x = Tensor::rand(&[4, 3], DType::F32, &Device::Cpu).unwrap();
            let (rm, rv) = (x.zeros_like().unwrap(), x.ones_like().unwrap());
            let (rm, rv) = (rm.narrow(0, 0, 1).unwrap(), rv.narrow(0, 0, 1).unwrap());
            let (rm, rv) = (rm.reshape(&[3]).unwrap(), rv.reshape(&[3]).unwrap());
            let w = a1.narrow(0, 0, 1).unwrap().reshape(&[3]).unwrap();
            let b = a1.narrow(0, 1, 1).unwrap().reshape(&[3]).unwrap();
            F::batch_norm(&x, &rm, &rv, Some(&w), Some(&b), false, 0.1, 1e-5).unwrap();
        },
        move || a2.copy_(&fresh).unwrap(),
    );
}

#[test]
fn cross_entropy_of_logits_and_targets_does_not_deadlock_with_writers() {
    let logits = Tensor::rand(&[8, 5], DType::F32, &Device::Cpu)
        .unwrap()
        .requires_grad();
    let target = Tensor::from_vec(
        (0..8).map(|i| i % 5).collect::<Vec<i64>>(),
        &[8],
        &Device::Cpu,
    )
    .unwrap();
    let (l1, t1) = (logits.clone(), target.clone());
    let fresh = target.zeros_like().unwrap();
    race(
        "cross_entropy against a copy_ into its targets",
        move || {
            F::cross_entropy(&l1, &t1).unwrap().backward().unwrap();
        },
        move || target.copy_(&fresh).unwrap(),
    );
}
