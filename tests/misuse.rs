//! Misuse that PyTorch rejects is an `Err` here too, with a message that names the
//! problem in the user's terms — never a panic, never a silently wrong result.

use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::data::{load_mnist, write_idx_images, write_idx_labels, ImageDataset};
use kiln::nn::functional as F;
use kiln::{DType, Device, Error, Tensor};
use std::path::PathBuf;

fn ones(shape: &[usize]) -> Tensor {
    Tensor::ones(shape, DType::F64, &Device::Cpu).unwrap()
}

#[test]
fn a_second_backward_through_a_released_graph_is_an_error_and_changes_nothing() {
    let w = ones(&[2]).requires_grad();
    let loss = w.mul_scalar(3.0).unwrap().sum_all().unwrap();
    loss.backward().unwrap();
    assert_eq!(w.grad().unwrap().to_vec::<f64>().unwrap(), [3.0, 3.0]);
    match loss.backward() {
        Err(Error::GraphReleased { op }) => assert_eq!(op, "sum"),
        other => panic!("expected Error::GraphReleased, got {other:?}"),
    }
    assert_eq!(w.grad().unwrap().to_vec::<f64>().unwrap(), [3.0, 3.0]);
    // A graph sharing a released part is released too, as in PyTorch.
    let h = w.mul_scalar(2.0).unwrap();
    h.sum_all().unwrap().backward().unwrap();
    assert!(h
        .mul_scalar(1.0)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .is_err());
}

#[test]
fn backward_retain_graph_allows_another_backward_that_accumulates() {
    let w = ones(&[2]).requires_grad();
    let loss = w.mul_scalar(3.0).unwrap().sum_all().unwrap();
    loss.backward_retain_graph().unwrap();
    loss.backward_retain_graph().unwrap();
    loss.backward().unwrap();
    assert_eq!(w.grad().unwrap().to_vec::<f64>().unwrap(), [9.0, 9.0]);
    assert!(loss.backward().is_err(), "the last call released the graph");
}

#[test]
fn integer_tensors_cannot_require_grad() {
    let ints = Tensor::from_vec(vec![1i64, 2], &[2], &Device::Cpu).unwrap();
    assert!(matches!(
        ints.clone().try_requires_grad(),
        Err(Error::UnsupportedDType {
            dtype: DType::I64,
            ..
        })
    ));
    assert!(!ints.requires_grad().requires_grad_flag());
    assert!(ones(&[1]).try_requires_grad().unwrap().requires_grad_flag());
}

#[test]
fn gradcheck_rejects_a_zero_eps_and_bad_tolerances() {
    // A deliberately wrong gradient: the op's value is 2x but we check against x.
    let wrong = |x: &[Tensor]| x[0].detach().mul_scalar(2.0)?.add(&x[0].mul_scalar(0.0)?);
    let x = [ones(&[3])];
    for (eps, atol, rtol, name) in [
        (0.0, 1e-5, 1e-3, "opts.eps"),
        (-1e-6, 1e-5, 1e-3, "opts.eps"),
        (f64::NAN, 1e-5, 1e-3, "opts.eps"),
        (1e-6, -1.0, 1e-3, "opts.atol"),
        (1e-6, 1e-5, f64::INFINITY, "opts.rtol"),
    ] {
        match gradcheck(wrong, &x, GradcheckOpts { eps, atol, rtol }) {
            Err(Error::InvalidArgument { name: got, .. }) => assert_eq!(got, name),
            other => panic!("eps {eps}, atol {atol}, rtol {rtol}: got {other:?}"),
        }
    }
    assert!(matches!(
        gradcheck(wrong, &x, GradcheckOpts::default()),
        Err(Error::Gradcheck { .. })
    ));
}

#[test]
fn reshape_errors_show_the_inferred_dimension_as_minus_one() {
    let t = ones(&[10]);
    let msg = t.reshape(&[usize::MAX, 3]).unwrap_err().to_string();
    assert!(
        msg.contains("[-1, 3]") && !msg.contains("18446744073709551615"),
        "{msg}"
    );
    let msg = t
        .reshape(&[usize::MAX, usize::MAX])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("[-1, -1]"), "{msg}");
}

#[test]
fn pool_padding_errors_read_like_pytorchs() {
    let x = ones(&[1, 1, 4, 4]);
    let msg = F::max_pool2d(&x, 2, 2, 2).unwrap_err().to_string();
    assert!(
        msg.contains("padding (2, 2) must be at most half of kernel_size (2, 2)"),
        "{msg}"
    );
    assert!(!msg.contains("Size2d"), "{msg}");
}

#[test]
fn dataset_select_out_of_range_is_an_error() {
    let d = ImageDataset {
        images: vec![0.5; 8],
        labels: vec![0, 1],
        height: 2,
        width: 2,
    };
    assert_eq!(d.select(&[1, 0]).unwrap().labels, [1, 0]);
    let err = d.select(&[0, 2]).unwrap_err().to_string();
    assert!(err.contains("index 2 is out of range"), "{err}");
    let inconsistent = ImageDataset {
        images: vec![0.5; 3],
        ..d.clone()
    };
    assert!(inconsistent.select(&[0]).is_err());
    assert!(inconsistent.batches(1, None, &Device::Cpu).is_err());
    let overflowing = ImageDataset {
        height: usize::MAX,
        ..d
    };
    assert!(overflowing.batches(1, Some(0), &Device::Cpu).is_err());
}

/// A directory with MNIST files whose headers are crafted.
fn crafted_mnist(test: &str, image_dims: [u32; 3], labels: &[u8]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("misuse-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for prefix in ["train", "t10k"] {
        let mut bytes = vec![0, 0, 8, 3];
        for d in image_dims {
            bytes.extend(d.to_be_bytes());
        }
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), bytes).unwrap();
        write_idx_labels(dir.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
    }
    dir
}

#[test]
fn crafted_mnist_headers_are_errors() {
    // Sizes whose product overflows, with no payload.
    let dir = crafted_mnist("overflow", [u32::MAX, u32::MAX, u32::MAX], &[1, 2]);
    assert!(load_mnist(&dir).is_err());
    // Zero images of a huge size, and labels that are not there.
    let dir = crafted_mnist("huge_empty", [0, u32::MAX, u32::MAX], &[1, 2]);
    assert!(load_mnist(&dir).is_err());
    // Images of zero pixels with labels: counts cannot be checked.
    let dir = crafted_mnist("zero_pixels", [2, 0, 7], &[1, 2]);
    assert!(load_mnist(&dir).is_err());
    // A well-formed pair still loads and batches.
    let dir = crafted_mnist("good", [0, 2, 2], &[]);
    for prefix in ["train", "t10k"] {
        write_idx_images(
            dir.join(format!("{prefix}-images-idx3-ubyte")),
            &[0, 255, 0, 255],
            1,
            2,
            2,
        )
        .unwrap();
        write_idx_labels(dir.join(format!("{prefix}-labels-idx1-ubyte")), &[7]).unwrap();
    }
    let (train, _) = load_mnist(&dir).unwrap();
    assert_eq!(train.batches(4, Some(1), &Device::Cpu).unwrap().len(), 1);
}

#[test]
fn random_tensors_and_layers_of_impossible_sizes_are_errors() {
    assert!(Tensor::rand(&[usize::MAX], DType::F32, &Device::Cpu).is_err());
    assert!(Tensor::randn(&[1 << 40, 1 << 40], DType::F32, &Device::Cpu).is_err());
    assert!(kiln::nn::Linear::new(usize::MAX, 2, &Device::Cpu).is_err());
    assert!(kiln::nn::init::uniform(&[usize::MAX], -1.0, 1.0, DType::F32, &Device::Cpu).is_err());
}
