//! Bad input gives an `Err` of the variant that names the problem, never a panic.
//! (A panic would fail these tests too: each call below must return.)

mod common;

use common::assert_err;
use kiln::{DType, Device, Error, Tensor};

const CPU: Device = Device::Cpu;

fn f64s(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec((0..n).map(|i| i as f64 + 1.0).collect(), shape, &CPU).unwrap()
}

fn f32s(shape: &[usize]) -> Tensor {
    f64s(shape).to_dtype(DType::F32).unwrap()
}

fn i64s(shape: &[usize]) -> Tensor {
    f64s(shape).to_dtype(DType::I64).unwrap()
}

#[test]
fn non_broadcastable_shapes() {
    let (a, b) = (f64s(&[2, 3]), f64s(&[4]));
    assert_err!(a.add(&b), Error::ShapeMismatch { op: "add", .. });
    assert_err!(a.sub(&b), Error::ShapeMismatch { .. });
    assert_err!(a.mul(&b), Error::ShapeMismatch { .. });
    assert_err!(a.div(&b), Error::ShapeMismatch { .. });
    assert_err!(a.maximum(&b), Error::ShapeMismatch { .. });
    assert_err!(a.eq(&b), Error::ShapeMismatch { .. });
    // Mismatch in a leading dimension, both ranks > 1.
    assert_err!(
        f64s(&[2, 3, 4]).add(&f64s(&[3, 3, 4])),
        Error::ShapeMismatch { .. }
    );
    assert_err!(
        f64s(&[3, 1]).broadcast_as(&[3, 4, 2]),
        Error::ShapeMismatch { .. }
    );
    assert_err!(
        f64s(&[2, 3]).broadcast_as(&[3]),
        Error::ShapeMismatch { .. }
    );
}

#[test]
fn matmul_shapes() {
    assert_err!(
        f64s(&[2, 3]).matmul(&f64s(&[4, 5])),
        Error::ShapeMismatch { op: "matmul", .. }
    );
    assert_err!(
        f64s(&[2, 2, 3]).matmul(&f64s(&[3, 3, 4])),
        Error::ShapeMismatch { .. }
    );
    assert_err!(f64s(&[3]).matmul(&f64s(&[4])), Error::ShapeMismatch { .. });
    let scalar = Tensor::scalar(1.0f64, &CPU).unwrap();
    assert_err!(
        scalar.matmul(&f64s(&[1])),
        Error::Shape { op: "matmul", .. }
    );
}

#[test]
fn from_vec_length_mismatch() {
    assert_err!(
        Tensor::from_vec(vec![1f32, 2., 3.], &[2, 2], &CPU),
        Error::ElementCount {
            op: "from_vec",
            expected: 4,
            got: 3,
            ..
        }
    );
    assert_err!(
        Tensor::from_vec(Vec::<f64>::new(), &[], &CPU),
        Error::ElementCount {
            expected: 1,
            got: 0,
            ..
        }
    );
}

#[test]
fn invalid_dim() {
    let x = f64s(&[2, 3]);
    assert_err!(
        x.sum(2, false),
        Error::DimOutOfRange {
            op: "sum",
            dim: 2,
            rank: 2
        }
    );
    assert_err!(x.mean(5, true), Error::DimOutOfRange { dim: 5, .. });
    assert_err!(x.max(2, false), Error::DimOutOfRange { .. });
    assert_err!(x.min(2, false), Error::DimOutOfRange { .. });
    assert_err!(x.argmax(2, false), Error::DimOutOfRange { .. });
    assert_err!(x.argmin(3, true), Error::DimOutOfRange { .. });
    assert_err!(
        x.transpose(0, 2),
        Error::DimOutOfRange {
            op: "transpose",
            ..
        }
    );
    assert_err!(x.transpose(7, 0), Error::DimOutOfRange { .. });
    assert_err!(x.narrow(2, 0, 1), Error::DimOutOfRange { op: "narrow", .. });
    assert_err!(x.unsqueeze(3), Error::DimOutOfRange { .. });
    assert_err!(x.squeeze(2), Error::DimOutOfRange { .. });
    assert_err!(x.flatten(0, 2), Error::DimOutOfRange { .. });
    assert_err!(
        Tensor::cat(&[&x, &x], 2),
        Error::DimOutOfRange { op: "cat", .. }
    );
    let scalar = Tensor::scalar(1.0f64, &CPU).unwrap();
    assert_err!(scalar.sum(0, false), Error::DimOutOfRange { rank: 0, .. });
}

#[test]
fn bad_view_arguments() {
    let x = f64s(&[2, 3]);
    // squeeze of a dimension that is not 1
    assert_err!(x.squeeze(1), Error::InvalidArgument { name: "dim", .. });
    // flatten with start > end
    assert_err!(
        f64s(&[2, 3, 4]).flatten(2, 1),
        Error::InvalidArgument { name: "start", .. }
    );
    // cat of nothing, and of tensors whose other dims differ
    assert_err!(Tensor::cat(&[], 0), Error::InvalidArgument { .. });
    assert_err!(
        Tensor::cat(&[&x, &f64s(&[3, 4])], 0),
        Error::ShapeMismatch { op: "cat", .. }
    );
    assert_err!(
        Tensor::cat(&[&x, &f64s(&[2, 3, 1])], 0),
        Error::ShapeMismatch { .. }
    );
    // copy_ between shapes that differ
    assert_err!(x.copy_(&f64s(&[3, 2])), Error::ShapeMismatch { .. });
}

#[test]
fn dtype_mismatch() {
    let (a, b) = (f32s(&[2, 3]), f64s(&[2, 3]));
    assert_err!(
        a.add(&b),
        Error::DTypeMismatch {
            op: "add",
            expected: DType::F32,
            got: DType::F64
        }
    );
    assert_err!(b.mul(&a), Error::DTypeMismatch { .. });
    assert_err!(a.gt(&b), Error::DTypeMismatch { .. });
    assert_err!(
        a.matmul(&f64s(&[3, 2])),
        Error::DTypeMismatch { op: "matmul", .. }
    );
    assert_err!(
        Tensor::cat(&[&a, &b], 0),
        Error::DTypeMismatch { op: "cat", .. }
    );
}

#[test]
fn matmul_of_integers_is_unsupported() {
    assert_err!(
        i64s(&[2, 3]).matmul(&i64s(&[3, 2])),
        Error::UnsupportedDType {
            op: "matmul",
            dtype: DType::I64
        }
    );
}

#[test]
fn backward_on_non_scalar() {
    let x = f64s(&[2, 3]).requires_grad();
    let y = x.mul_scalar(2.0).unwrap();
    assert_err!(y.backward(), Error::NotScalar { op: "backward", .. });
    assert!(x.grad().is_none(), "a failed backward must not touch grads");
}

#[test]
fn backward_without_graph() {
    // A tensor that never required grad.
    let loss = f64s(&[2, 3]).sum_all().unwrap();
    assert_err!(loss.backward(), Error::NoGraph);
    // A result computed under no_grad from a leaf that does.
    let x = f64s(&[2, 3]).requires_grad();
    let loss = {
        let _guard = kiln::no_grad();
        x.sum_all().unwrap()
    };
    assert_err!(loss.backward(), Error::NoGraph);
    // A detached result.
    let loss = x.sum_all().unwrap().detach();
    assert_err!(loss.backward(), Error::NoGraph);
}

#[test]
fn item_on_non_scalar() {
    assert_err!(
        f64s(&[2, 3]).item::<f64>(),
        Error::NotScalar { op: "item", .. }
    );
    assert_err!(f64s(&[0]).item::<f64>(), Error::NotScalar { .. });
}

#[test]
fn to_vec_and_item_with_wrong_type() {
    assert_err!(
        f32s(&[2, 3]).to_vec::<f64>(),
        Error::DTypeMismatch {
            op: "to_vec",
            expected: DType::F32,
            got: DType::F64
        }
    );
    assert_err!(i64s(&[2]).to_vec::<u8>(), Error::DTypeMismatch { .. });
    assert_err!(f64s(&[1]).item::<f32>(), Error::DTypeMismatch { .. });
}

#[test]
fn reshape_errors() {
    let x = f64s(&[2, 3]);
    assert_err!(
        x.reshape(&[4, 2]),
        Error::ElementCount {
            op: "reshape",
            got: 6,
            ..
        }
    );
    // 6 elements cannot be split into rows of 4: the `shape` argument is wrong.
    assert_err!(
        x.reshape(&[usize::MAX, 4]),
        Error::InvalidArgument { name: "shape", .. }
    );
    assert_err!(
        x.reshape(&[usize::MAX, usize::MAX]),
        Error::InvalidArgument { name: "shape", .. }
    );
    // An inferred dimension next to a zero-sized one is ambiguous.
    assert_err!(
        x.reshape(&[0, usize::MAX]),
        Error::InvalidArgument { name: "shape", .. }
    );
}

#[test]
fn permute_invalid() {
    let x = f64s(&[2, 3, 4]);
    for dims in [&[0, 1][..], &[0, 1, 1], &[0, 1, 3], &[2, 1, 0, 3]] {
        assert_err!(x.permute(dims), Error::InvalidArgument { name: "dims", .. });
    }
}

#[test]
fn narrow_out_of_range() {
    let x = f64s(&[2, 5]);
    assert_err!(
        x.narrow(1, 3, 3),
        Error::InvalidArgument { name: "len", .. }
    );
    assert_err!(x.narrow(1, 6, 0), Error::InvalidArgument { .. });
    assert_err!(x.narrow(0, usize::MAX, 2), Error::InvalidArgument { .. });
}

#[test]
fn integer_division() {
    let (a, b) = (i64s(&[2, 3]), i64s(&[3]));
    assert_err!(
        a.div(&b),
        Error::UnsupportedDType {
            dtype: DType::I64,
            ..
        }
    );
    let u = a.to_dtype(DType::U8).unwrap();
    assert_err!(
        u.div(&u),
        Error::UnsupportedDType {
            dtype: DType::U8,
            ..
        }
    );
}

#[test]
fn float_ops_on_integers() {
    let x = i64s(&[2, 3]);
    assert_err!(
        x.exp(),
        Error::UnsupportedDType {
            op: "exp",
            dtype: DType::I64
        }
    );
    assert_err!(x.log(), Error::UnsupportedDType { .. });
    assert_err!(x.sqrt(), Error::UnsupportedDType { .. });
    assert_err!(x.sigmoid(), Error::UnsupportedDType { .. });
    assert_err!(x.tanh(), Error::UnsupportedDType { .. });
    assert_err!(x.powf(2.0), Error::UnsupportedDType { .. });
    // True division promotes to F32, as `torch.tensor([1, 2]) / 2` does.
    assert_eq!(x.div_scalar(2.0).unwrap().dtype(), DType::F32);
    assert_err!(x.mean(0, false), Error::UnsupportedDType { op: "mean", .. });
    assert_err!(x.mean_all(), Error::UnsupportedDType { .. });
    assert_err!(
        Tensor::randn(&[2], DType::I64, &CPU),
        Error::UnsupportedDType { op: "randn", .. }
    );
    assert_err!(
        Tensor::rand(&[2], DType::U8, &CPU),
        Error::UnsupportedDType { .. }
    );
}

#[test]
fn cuda_device_that_is_not_usable() {
    // Without a usable GPU every path to CUDA is an error, not a panic.
    if Device::cuda(0).is_ok() {
        return; // a GPU machine: covered by the CUDA tests
    }
    assert_err!(
        Device::cuda(0),
        Error::CudaUnavailable { ordinal: 0, .. }
            | Error::CudaDriverNotFound { ordinal: 0 }
            | Error::NoCudaDevice { ordinal: 0, .. }
            | Error::CudaOrdinalOutOfRange { ordinal: 0, .. }
            | Error::KernelsNotBuilt
    );
    assert!(f64s(&[2]).to_device(&Device::Cuda(0)).is_err());
    assert!(Tensor::zeros(&[2], DType::F32, &Device::Cuda(3)).is_err());
}

#[test]
fn extremum_over_an_empty_dimension() {
    // PyTorch refuses these too: there is no element to pick.
    let e = f64s(&[0, 3]);
    assert_err!(e.max(0, false), Error::Shape { op: "max", .. });
    assert_err!(e.min(0, true), Error::Shape { op: "min", .. });
    assert_err!(e.argmax(0, false), Error::Shape { op: "argmax", .. });
    assert_err!(e.argmin(0, false), Error::Shape { op: "argmin", .. });
    // A sum over nothing is 0; reducing a non-empty dim of an empty tensor is fine.
    assert_eq!(
        e.sum(0, false).unwrap().to_vec::<f64>().unwrap(),
        vec![0.0; 3]
    );
    assert_eq!(e.max(1, false).unwrap().shape(), &[0]);
}

#[test]
fn shapes_too_large_to_exist() {
    let huge = [usize::MAX, 2];
    assert_err!(
        Tensor::from_vec(vec![1f64], &huge, &CPU),
        Error::Shape { .. }
    );
    assert_err!(Tensor::zeros(&huge, DType::F32, &CPU), Error::Shape { .. });
    // The count fits in usize, its bytes do not.
    assert_err!(
        Tensor::ones(&[1 << 62], DType::F64, &CPU),
        Error::Shape { .. }
    );
    assert_err!(Tensor::randn(&huge, DType::F32, &CPU), Error::Shape { .. });
    assert_err!(
        Tensor::rand(&[1 << 61], DType::F32, &CPU),
        Error::Shape { .. }
    );
    let x = f64s(&[2, 3]);
    assert_err!(x.reshape(&[usize::MAX - 1, 3]), Error::Shape { .. });
    assert_err!(
        x.reshape(&[usize::MAX / 2, 4, usize::MAX]),
        Error::Shape { .. }
    );
}

#[test]
fn flatten_of_a_scalar() {
    let s = Tensor::scalar(2.0f64, &CPU).unwrap();
    assert_eq!(s.flatten(0, 0).unwrap().shape(), &[1]);
    assert_err!(s.flatten(0, 1), Error::DimOutOfRange { op: "flatten", .. });
    assert_err!(s.flatten(3, 5), Error::DimOutOfRange { .. });
}

#[test]
fn copy_into_a_broadcast_view() {
    // Several elements of the destination are one memory location (PyTorch refuses too).
    let x = f64s(&[1]);
    let view = x.broadcast_as(&[3]).unwrap();
    assert_err!(
        view.copy_(&f64s(&[3])),
        Error::InvalidArgument { name: "self", .. }
    );
    assert_eq!(x.to_vec::<f64>().unwrap(), vec![1.0], "nothing was written");
}
