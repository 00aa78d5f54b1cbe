//! Requests no memory can satisfy, shape arithmetic that overflows, and integer
//! tensor-scalar ops: each is an `Err` or PyTorch's answer, never an abort, a panic
//! or a silently wrong value.
//!
//! The out-of-memory cases ask for terabytes, which the allocator refuses at once
//! (nothing is touched), so they cost nothing.

mod common;

use common::{assert_err, device_test};
use kiln::nn::{self, functional as F, Conv2dOpts};
use kiln::{DType, Device, Error, Tensor};

const CPU: Device = Device::Cpu;

// ---- 1. host allocations fail with an error naming the size -----------------------

#[test]
fn creating_a_tensor_larger_than_memory_is_an_error() {
    assert_err!(
        Tensor::zeros(&[1 << 40], DType::F32, &CPU),
        Error::HostOutOfMemory {
            bytes: 0x400_0000_0000
        }
    );
    assert_err!(
        Tensor::ones(&[1 << 40], DType::BF16, &CPU),
        Error::HostOutOfMemory {
            bytes: 0x200_0000_0000
        }
    );
    assert_err!(
        Tensor::randn(&[1 << 38], DType::F32, &CPU),
        Error::HostOutOfMemory {
            bytes: 0x100_0000_0000
        }
    );
    assert_err!(
        Tensor::rand(&[1 << 38], DType::F64, &CPU),
        Error::HostOutOfMemory { .. }
    );
    assert_err!(
        Tensor::arange(1 << 40, DType::I64, &CPU),
        Error::HostOutOfMemory { .. }
    );
    let msg = Tensor::zeros(&[1 << 40], DType::F32, &CPU)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("4.00 TiB"), "{msg}");
}

#[test]
fn a_layer_larger_than_memory_is_an_error() {
    assert_err!(
        nn::Linear::new(1 << 20, 1 << 20, &CPU),
        Error::HostOutOfMemory { .. }
    );
}

#[test]
fn a_product_larger_than_memory_is_an_error() {
    let a = Tensor::zeros(&[1 << 20, 0], DType::F32, &CPU).unwrap();
    let b = Tensor::zeros(&[0, 1 << 20], DType::F32, &CPU).unwrap();
    assert_err!(a.matmul(&b), Error::HostOutOfMemory { .. });
}

#[test]
fn sizes_that_overflow_usize_are_errors() {
    assert!(Tensor::arange(usize::MAX, DType::F32, &CPU).is_err());
    assert!(Tensor::arange(usize::MAX, DType::U8, &CPU).is_err());
    let empty = Tensor::zeros(&[0, usize::MAX], DType::F32, &CPU).unwrap();
    assert!(empty.sum(0, false).is_err());
    let wide = Tensor::zeros(&[usize::MAX, 0, 2], DType::F32, &CPU).unwrap();
    assert_eq!(wide.sum(0, false).unwrap().shape(), &[0, 2]);
    let wider = Tensor::zeros(&[usize::MAX, 0, usize::MAX], DType::I64, &CPU).unwrap();
    assert!(wider.sum(1, false).is_err());
}

// ---- 2. shape arithmetic is checked -----------------------------------------------

#[test]
fn conv2d_with_huge_padding_or_dilation_is_an_error() {
    let x = Tensor::zeros(&[1, 1, 3, 3], DType::F32, &CPU).unwrap();
    let w = Tensor::zeros(&[1, 1, 3, 3], DType::F32, &CPU).unwrap();
    assert_err!(
        F::conv2d(&x, &w, None, Conv2dOpts::new().padding(1 << 62)),
        Error::InvalidArgument {
            name: "padding",
            ..
        }
    );
    assert_err!(
        F::conv2d(&x, &w, None, Conv2dOpts::new().dilation(usize::MAX)),
        Error::InvalidArgument {
            name: "dilation",
            ..
        }
    );
    // A padding the output cannot hold, with a stride that keeps the output small
    // in one direction only.
    assert!(F::conv2d(&x, &w, None, Conv2dOpts::new().padding((1 << 40, 0))).is_err());
    // Still fine: a large but honest padding.
    let y = F::conv2d(&x, &w, None, Conv2dOpts::new().padding(2)).unwrap();
    assert_eq!(y.shape(), &[1, 1, 5, 5]);
}

#[test]
fn pooling_with_huge_windows_or_outputs_is_an_error() {
    let x = Tensor::zeros(&[1, 1, 4, 4], DType::F32, &CPU).unwrap();
    assert!(F::max_pool2d(&x, usize::MAX, 1, usize::MAX / 2).is_err());
    assert!(F::avg_pool2d(&x, (usize::MAX, 2), 1, (usize::MAX / 2, 0)).is_err());
    assert!(F::adaptive_avg_pool2d(&x, (usize::MAX, 1)).is_err());
    assert!(F::adaptive_avg_pool2d(&x, (1 << 62, 1 << 2)).is_err());
}

#[test]
fn views_of_empty_tensors_with_huge_dims_do_not_overflow() {
    let e = Tensor::zeros(&[0], DType::F32, &CPU).unwrap();
    let r = e.reshape(&[0, usize::MAX - 1, 2]).unwrap();
    assert_eq!(r.shape(), &[0, usize::MAX - 1, 2]);
    assert_eq!(r.narrow(1, usize::MAX - 3, 2).unwrap().shape(), &[0, 2, 2]);
    assert_eq!(r.transpose(0, 2).unwrap().contiguous().unwrap().numel(), 0);
    assert_eq!(r.add_scalar(1.0).unwrap().numel(), 0);
    assert!(r.flatten(1, 2).is_err());
    let big = Tensor::zeros(&[0, 1 << 40, 1 << 40], DType::F32, &CPU).unwrap();
    assert!(big.flatten(0, 2).is_ok());
    assert!(big.flatten(1, 2).is_err());
    let a = Tensor::zeros(&[0, usize::MAX], DType::U8, &CPU).unwrap();
    let b = Tensor::zeros(&[0, 2], DType::U8, &CPU).unwrap();
    assert!(Tensor::cat(&[&a, &b], 1).is_err());
    let one = Tensor::zeros(&[1], DType::F32, &CPU).unwrap();
    assert!(one.broadcast_as(&[usize::MAX, usize::MAX]).is_err());
}

#[test]
fn idx_files_whose_sizes_overflow_are_errors() {
    let dir = std::env::temp_dir().join(format!("kiln-idx-overflow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Three sizes of 2^32 - 1 multiply past usize; no payload.
    let mut images = vec![0, 0, 8, 3];
    images.extend([0xff; 12]);
    let labels = [0u8, 0, 8, 1, 0, 0, 0, 0];
    for prefix in ["train", "t10k"] {
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), &images).unwrap();
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
    }
    assert_err!(
        kiln::data::load_mnist(&dir),
        Error::InvalidArgument { name: "dir", .. }
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- 3. integer tensor-scalar ops follow PyTorch's promotion -----------------------

device_test! {
    /// `torch.tensor([1, 2, 3]) * 0.5` is float32 `[0.5, 1.0, 1.5]`; `/ 2` too.
    fn an_integer_tensor_times_a_fraction_is_f32(dev) {
        let x = Tensor::from_vec(vec![1i64, 2, 3], &[3], dev).unwrap();
        let y = x.mul_scalar(0.5).unwrap();
        assert_eq!(y.dtype(), DType::F32);
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![0.5, 1.0, 1.5]);
        let y = x.add_scalar(0.25).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![1.25, 2.25, 3.25]);
        let y = x.div_scalar(2.0).unwrap();
        assert_eq!(y.dtype(), DType::F32);
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![0.5, 1.0, 1.5]);
        let y = x.mul_scalar(f64::NAN).unwrap();
        assert!(y.to_vec::<f32>().unwrap().iter().all(|v| v.is_nan()));
        // An integer scalar keeps the dtype.
        let y = x.mul_scalar(3.0).unwrap();
        assert_eq!(y.dtype(), DType::I64);
        assert_eq!(y.to_vec::<i64>().unwrap(), vec![3, 6, 9]);
    }

    /// `torch.tensor([5, 200], dtype=torch.uint8) + (-1)` is `[4, 199]`: integer
    /// scalars wrap into the tensor's dtype.
    fn integer_scalars_wrap_into_u8(dev) {
        let x = Tensor::from_vec(vec![5u8, 200], &[2], dev).unwrap();
        assert_eq!(x.add_scalar(-1.0).unwrap().to_vec::<u8>().unwrap(), vec![4, 199]);
        assert_eq!(x.sub_scalar(1.0).unwrap().to_vec::<u8>().unwrap(), vec![4, 199]);
        assert_eq!(x.add_scalar(100.0).unwrap().to_vec::<u8>().unwrap(), vec![105, 44]);
        assert_eq!(x.mul_scalar(-1.0).unwrap().to_vec::<u8>().unwrap(), vec![251, 56]);
        assert_eq!(x.add_scalar(256.0).unwrap().to_vec::<u8>().unwrap(), vec![5, 200]);
    }

    /// I64 sums are exact: 2^53 + 1 is not an f64.
    fn integer_sums_are_exact(dev) {
        let big = (1i64 << 53) + 1;
        let x = Tensor::from_vec(vec![big, 1, big, -1], &[2, 2], dev).unwrap();
        assert_eq!(x.sum_all().unwrap().item::<i64>().unwrap(), 2 * big);
        assert_eq!(x.sum(0, false).unwrap().to_vec::<i64>().unwrap(), vec![2 * big, 0]);
        assert_eq!(x.sum(1, false).unwrap().to_vec::<i64>().unwrap(), vec![big + 1, big - 1]);
        let y = Tensor::from_vec(vec![i64::MAX - 1, 1], &[2], dev).unwrap();
        assert_eq!(y.sum_all().unwrap().item::<i64>().unwrap(), i64::MAX);
        let u = Tensor::from_vec(vec![255u8; 300], &[300], dev).unwrap();
        assert_eq!(u.sum_all().unwrap().item::<i64>().unwrap(), 255 * 300);
    }
}

/// Found by tests/properties.rs: an empty batch made the output's count 0, but the
/// kernel still sized one output plane, `usize::MAX × 2`, unchecked.
#[test]
fn adaptive_pooling_an_empty_batch_to_a_huge_plane_is_an_error() {
    let x = Tensor::zeros(&[0, 1, 2, 2], DType::F32, &CPU).unwrap();
    assert!(F::adaptive_avg_pool2d(&x, (usize::MAX, 2)).is_err());
    assert_eq!(
        F::adaptive_avg_pool2d(&x, (3, 2)).unwrap().shape(),
        &[0, 1, 3, 2]
    );
}

/// Found by tests/properties.rs: a stride near `usize::MAX` overflowed the kernel's
/// signed index arithmetic; any stride past the input gives one output position.
#[test]
fn conv2d_with_a_huge_stride_gives_one_position() {
    let x = Tensor::ones(&[1, 1, 3, 3], DType::F32, &CPU).unwrap();
    let w = Tensor::ones(&[1, 1, 2, 2], DType::F32, &CPU).unwrap();
    for stride in [usize::MAX, usize::MAX / 2, 1 << 62] {
        let opts = Conv2dOpts::new().stride(stride).padding(1);
        let y = F::conv2d(&x.clone().requires_grad(), &w, None, opts).unwrap();
        assert_eq!(y.shape(), &[1, 1, 1, 1]);
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![1.0]);
    }
}
