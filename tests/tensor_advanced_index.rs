//! Advanced indexing (`index`, `index_put`) and `F::one_hot` against PyTorch on every
//! device, f64 gradchecks, the determinism of repeated positions, and the errors.
//!
//! The fixture is written by `scripts/golden/advanced_index.py`; the PyTorch expression
//! of each case is the comment above it here and above its `case(...)` line there.
//! `a` is the case's input `in0`, index tensors and values follow in order; `put` is
//! `torch.ops.aten.index_put`. The CUDA parity sweep of `index_put_rows` is in
//! tests/tensor_index_parity.rs (the index family's sweep).

mod common;

use common::{assert_err, golden_case_names, golden_cases, host, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::functional as F;
use kiln::{DType, Device, Error, Tensor};
use std::sync::OnceLock;

fn golden() -> &'static Golden {
    static GOLDEN: OnceLock<Golden> = OnceLock::new();
    GOLDEN.get_or_init(|| Golden::load("advanced_index"))
}

golden_cases! {
    // a (3,5)[:, i], i = [4, 0, -1, 2]
    index_cols(2) => |x| x[0].index(&[None, Some(&x[1])]);
    // a (4,3)[i], i (2,3)
    index_rows_2d(2) => |x| x[0].index(&[Some(&x[1])]);
    // a (2,4,5)[:, i, j]
    index_adjacent(3) => |x| x[0].index(&[None, Some(&x[1]), Some(&x[2])]);
    // a (4,5)[i, j], i (3,1), j (2,)
    index_broadcast(3) => |x| x[0].index(&[Some(&x[1]), Some(&x[2])]);
    // a (3,4,5)[i, :, j]
    index_separated(3) => |x| x[0].index(&[Some(&x[1]), None, Some(&x[2])]);
    // a (5,4).t()[:, i]
    index_t(2) => |x| x[0].transpose(0, 1)?.index(&[None, Some(&x[1])]);
    // a (3,4)[:, i], i empty
    index_empty(2) => |x| x[0].index(&[None, Some(&x[1])]);
    // a (4,6) f32 [i]
    index_f32(2) => |x| x[0].index(&[Some(&x[1])]);
    // a (3,4) int64 [:, i]
    index_i64(2) => |x| x[0].index(&[None, Some(&x[1])]);
    // put(a (5,3), [i], v (4,3), True), i = [1, 3, 1, -1]
    put_acc_rows(3) => |x| x[0].index_put(&[Some(&x[1])], &x[2], true);
    // put(a (5,3), [i], v (3,3), False)
    put_replace_rows(3) => |x| x[0].index_put(&[Some(&x[1])], &x[2], false);
    // put(a (3,4), [None, j], v (3,3), True), j = [1, 3, 1]
    put_acc_cols(3) => |x| x[0].index_put(&[None, Some(&x[1])], &x[2], true);
    // put(a (4,5), [i, j], v (1,), True), repeated pairs
    put_acc_pairs(4) => |x| x[0].index_put(&[Some(&x[1]), Some(&x[2])], &x[3], true);
    // put(a (3,4,5), [i, None, j], v (2,4), False)
    put_replace_separated(4) => |x| x[0].index_put(&[Some(&x[1]), None, Some(&x[2])], &x[3], false);
    // put(a (4,3) f32 .t(), [None, i], v (3,2), True), i = [0, 0]
    put_acc_t_f32(3) => |x| x[0].transpose(0, 1)?.index_put(&[None, Some(&x[1])], &x[2], true);
    // put(a (3,4), [i], v (0,4), True), i empty
    put_acc_empty(3) => |x| x[0].index_put(&[Some(&x[1])], &x[2], true);
    // put(a (3,4) int64, [i], v int64, True), i = [2, 0, 2]
    put_acc_i64(3) => |x| x[0].index_put(&[Some(&x[1])], &x[2], true);
    // F.one_hot(l (2,3), 5)
    one_hot(1) => |x| F::one_hot(&x[0], 5);
    // F.one_hot(l (4,), -1)
    one_hot_infer(1) => |x| F::one_hot(&x[0], -1);
    // F.one_hot(l (0,), 3)
    one_hot_empty(1) => |x| F::one_hot(&x[0], 3);
}

/// Every case in the fixture has a test here, and every test its case.
#[test]
fn every_fixture_case_is_tested() {
    let mut tested: Vec<String> = CASES.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(golden_case_names("advanced_index"), tested);
}

fn ids(v: &[i64], shape: &[usize], dev: &Device) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape, dev).unwrap()
}

fn f64s(shape: &[usize], dev: &Device) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n)
        .map(|i| ((i * 37 % 23) as f64 - 11.0) / 7.0)
        .collect();
    Tensor::from_vec(v, shape, dev).unwrap()
}

common::device_test! {
    /// Finite differences agree with the gradients of `index` and of `index_put` (both
    /// modes; to the tensor and the values), through strided views and broadcast values.
    fn gradchecks(dev) {
        let opts = GradcheckOpts::default;
        let x = f64s(&[4, 3, 5], dev).transpose(0, 2).unwrap().requires_grad(); // (5,3,4)
        let i = ids(&[4, 0, 4, -2], &[2, 2], dev);
        let j = ids(&[1, 3], &[2], dev);
        let xs = std::slice::from_ref(&x);
        gradcheck(|t| t[0].index(&[Some(&i), None, Some(&j)]), xs, opts()).unwrap();
        gradcheck(|t| t[0].index(&[None, None, Some(&j)]), xs, opts()).unwrap();
        let v = f64s(&[2, 2, 3], dev).requires_grad();
        let both = [x.clone(), v];
        gradcheck(|t| t[0].index_put(&[Some(&i), None, Some(&j)], &t[1], true), &both, opts())
            .unwrap();
        let k = ids(&[3, 0], &[2], dev);
        let w = f64s(&[3, 1], dev).requires_grad();
        gradcheck(|t| t[0].index_put(&[None, None, Some(&k)], &t[1], false), &[x, w], opts())
            .unwrap();
    }

    /// Repeated positions: accumulate sums them all, replace keeps the last value (the
    /// same on every device); a 0-d index drops its dimension; no index tensor at all
    /// is the whole tensor for `index`.
    fn repeats_and_edges(dev) {
        let x = Tensor::zeros(&[3, 2], DType::F64, dev).unwrap();
        let i = ids(&[2, 0, 2, 2], &[4], dev);
        let v = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], &[4, 2], dev)
            .unwrap();
        let acc = x.index_put(&[Some(&i)], &v, true).unwrap();
        assert_eq!(host(&acc), [3.0, 4.0, 0.0, 0.0, 13.0, 16.0]);
        let last = x.index_put(&[Some(&i)], &v, false).unwrap();
        assert_eq!(host(&last), [3.0, 4.0, 0.0, 0.0, 7.0, 8.0]);
        let scalar = ids(&[1], &[], dev);
        let row = f64s(&[3, 2], dev).index(&[Some(&scalar)]).unwrap();
        assert_eq!(row.shape(), &[2]);
        assert_eq!(x.index(&[None, None]).unwrap().shape(), &[3, 2]);
        let empty = Tensor::zeros(&[0, 2], DType::F64, dev).unwrap();
        let none = ids(&[], &[0], dev);
        assert_eq!(empty.index(&[Some(&none)]).unwrap().shape(), &[0, 2]);
    }

    /// Out-of-range positions, non-I64 indices, too many indices, shapes that do not
    /// broadcast, values of another dtype or shape are `Err`s naming the argument.
    fn errors(dev) {
        let x = f64s(&[3, 4], dev);
        let far = ids(&[0, 4], &[2], dev);
        assert_err!(x.index(&[None, Some(&far)]), Error::InvalidArgument { name: "indices", .. });
        let neg = ids(&[-4], &[1], dev);
        assert_err!(x.index(&[Some(&neg)]), Error::InvalidArgument { name: "indices", .. });
        let f = x.clone();
        assert_err!(x.index(&[Some(&f)]), Error::InvalidArgument { name: "indices", .. });
        let i = ids(&[0, 1], &[2], dev);
        assert_err!(
            x.index(&[Some(&i), Some(&i), None]),
            Error::InvalidArgument { name: "indices", .. }
        );
        let three = ids(&[0, 1, 2], &[3], dev);
        assert_err!(
            x.index(&[Some(&i), Some(&three)]),
            Error::InvalidArgument { name: "indices", .. }
        );
        let v = Tensor::zeros(&[2, 4], DType::F32, dev).unwrap();
        assert_err!(x.index_put(&[Some(&i)], &v, true), Error::InvalidArgument { name: "values", .. });
        let v = f64s(&[3, 4], dev);
        assert_err!(x.index_put(&[Some(&i)], &v, true), Error::InvalidArgument { name: "values", .. });
        assert_err!(x.index_put(&[None], &v, true), Error::InvalidArgument { name: "indices", .. });
        assert_err!(
            x.index_put(&[Some(&far)], &f64s(&[2, 4], dev), false),
            Error::InvalidArgument { name: "indices", .. }
        );
    }

    /// one_hot: ids outside `[0, num_classes)` or negative are `Err`s naming `labels`;
    /// a float `labels`, a bad count, or inferring from no labels are `Err`s.
    fn one_hot_errors(dev) {
        let l = ids(&[0, 3], &[2], dev);
        assert_err!(F::one_hot(&l, 3), Error::InvalidArgument { name: "labels", .. });
        let neg = ids(&[-1, 0], &[2], dev);
        assert_err!(F::one_hot(&neg, 3), Error::InvalidArgument { name: "labels", .. });
        assert_err!(F::one_hot(&neg, -1), Error::InvalidArgument { name: "labels", .. });
        assert_err!(F::one_hot(&l, -2), Error::InvalidArgument { name: "num_classes", .. });
        let none = ids(&[], &[0], dev);
        assert_err!(F::one_hot(&none, -1), Error::InvalidArgument { name: "num_classes", .. });
        let f = f64s(&[2], dev);
        assert_err!(F::one_hot(&f, 3), Error::InvalidArgument { name: "labels", .. });
        let t = ids(&[0, 1, 2, 1], &[2, 2], dev).transpose(0, 1).unwrap();
        assert_eq!(host(&F::one_hot(&t, 3).unwrap()), [1., 0., 0., 0., 0., 1., 0., 1., 0., 0., 1., 0.]);
    }
}
