//! `F::linear` against PyTorch (tests/data/linear.safetensors, written by
//! scripts/golden/linear.py), finite differences, and its argument errors.

mod common;

use common::{assert_close, device_test};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::functional as F;
use kiln::{DType, Device, Error, Tensor};

/// Every case is `F.linear(x, w, b)`; see the script for the shapes.
fn check_case(name: &str, has_bias: bool, dtype: DType, tol: f64, dev: &Device) {
    common::check_weighted_case("linear", name, has_bias, dtype, tol, dev, |x, w, b| {
        F::linear(x, w, b)
    });
}

device_test! {
    fn golden_2d(dev) {
        // F.linear(x[5,7], w[3,7], b[3])
        check_case("linear_2d", true, DType::F64, 1e-12, dev);
        check_case("linear_2d", true, DType::F32, 1e-5, dev);
    }

    fn golden_3d(dev) {
        // F.linear(x[2,3,7], w[4,7], b[4])
        check_case("linear_3d", true, DType::F64, 1e-12, dev);
        check_case("linear_3d", true, DType::F32, 1e-5, dev);
    }

    fn golden_1d(dev) {
        // F.linear(x[7], w[3,7], b[3])
        check_case("linear_1d", true, DType::F64, 1e-12, dev);
    }

    fn golden_no_bias(dev) {
        // F.linear(x[4,6], w[5,6])
        check_case("linear_nobias", false, DType::F64, 1e-12, dev);
    }
}

fn randn(shape: &[usize]) -> Tensor {
    randn_on(shape, &Device::Cpu)
}

fn randn_on(shape: &[usize], dev: &Device) -> Tensor {
    Tensor::randn(shape, DType::F64, dev).unwrap()
}

#[test]
fn gradcheck_ranks_1_to_3() {
    kiln::manual_seed(5);
    for x_shape in [&[4][..], &[3, 4], &[2, 3, 4]] {
        let inputs = [randn(x_shape), randn(&[5, 4]), randn(&[5])];
        gradcheck(
            |t| F::linear(&t[0], &t[1], Some(&t[2])),
            &inputs,
            GradcheckOpts::default(),
        )
        .unwrap();
        gradcheck(
            |t| F::linear(&t[0], &t[1], None),
            &inputs[..2],
            GradcheckOpts::default(),
        )
        .unwrap();
    }
}

device_test! {
    fn non_contiguous_input(dev) {
        kiln::manual_seed(6);
        let x = randn_on(&[4, 3], dev).requires_grad();
        let w = randn_on(&[2, 4], dev);
        let y = F::linear(&x.transpose(0, 1).unwrap(), &w, None).unwrap();
        let want = x
            .transpose(0, 1)
            .unwrap()
            .matmul(&w.transpose(0, 1).unwrap())
            .unwrap();
        assert_close(&y, &want, dev, 1e-12, 1e-12);
        y.sum_all().unwrap().backward().unwrap();
        assert_eq!(x.grad().unwrap().shape(), &[4, 3]);
    }

    fn zero_in_features_give_the_bias(dev) {
        // PyTorch: F.linear(torch.randn(5, 0), torch.randn(3, 0), b) == b.expand(5, 3)
        let x = Tensor::zeros(&[5, 0], DType::F64, dev).unwrap();
        let w = Tensor::zeros(&[3, 0], DType::F64, dev).unwrap();
        let b = Tensor::from_vec(vec![1.0f64, -2.0, 3.0], &[3], dev).unwrap();
        let y = F::linear(&x, &w, Some(&b)).unwrap();
        assert_close(&y, &b.broadcast_as(&[5, 3]).unwrap(), dev, 0.0, 0.0);
    }
}

fn arg_name(e: Error) -> &'static str {
    match e {
        Error::InvalidArgument { name, .. } => name,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn argument_errors() {
    let w = randn(&[3, 4]);
    assert_eq!(
        arg_name(F::linear(&randn(&[2, 5]), &w, None).unwrap_err()),
        "input"
    );
    let scalar = Tensor::scalar(1.0f64, &Device::Cpu).unwrap();
    assert_eq!(arg_name(F::linear(&scalar, &w, None).unwrap_err()), "input");
    assert_eq!(
        arg_name(F::linear(&randn(&[2, 4]), &randn(&[3, 4, 1]), None).unwrap_err()),
        "weight"
    );
    assert_eq!(
        arg_name(F::linear(&randn(&[2, 4]), &w, Some(&randn(&[4]))).unwrap_err()),
        "bias"
    );
    let w32 = w.to_dtype(DType::F32).unwrap();
    let e = F::linear(&randn(&[2, 4]), &w32, None).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DTypeMismatch {
                op: "linear weight",
                ..
            }
        ),
        "{e:?}"
    );
    let b32 = randn(&[3]).to_dtype(DType::F32).unwrap();
    let e = F::linear(&randn(&[2, 4]), &w, Some(&b32)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DTypeMismatch {
                op: "linear bias",
                ..
            }
        ),
        "{e:?}"
    );
}
