//! Scalars that do not fit the dtype: `full`, `fill_`, `masked_fill` and `clamp`
//! convert a scalar by one rule, PyTorch's ("value cannot be converted to type
//! uint8_t without overflow"), on every device, against the table that
//! `scripts/golden/scalar_convert.py` writes (its comments say how kiln's f64 scalars
//! map to PyTorch's int and float ones).

mod common;

use common::{device_test, host, Golden};
use kiln::{DType, Device, Error, Result, Tensor};

const DTYPES: [(&str, DType); 6] = [
    ("u8", DType::U8),
    ("i64", DType::I64),
    ("f16", DType::F16),
    ("bf16", DType::BF16),
    ("f32", DType::F32),
    ("f64", DType::F64),
];

/// The argument an `InvalidArgument` error names.
fn arg_name<T: std::fmt::Debug>(r: Result<T>) -> &'static str {
    match r {
        Err(Error::InvalidArgument { name, .. }) => name,
        other => panic!("expected an invalid argument, got {other:?}"),
    }
}

/// `(value, PyTorch accepts it, its element as f64)` for every golden value of `d`.
fn full_table(g: &Golden, d: &str) -> Vec<(f64, bool, f64)> {
    let values = host(&g.get(&format!("full.{d}.value")));
    let ok = host(&g.get(&format!("full.{d}.ok")));
    let out = host(&g.get(&format!("full.{d}.out")));
    (0..values.len())
        .map(|i| (values[i], ok[i] == 1.0, out[i]))
        .collect()
}

/// Equal as elements: NaN meets NaN.
fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

device_test! {
    /// `Tensor::full` takes what PyTorch's `torch.full` takes, with its element, and
    /// refuses what it refuses with an `Err` naming `value`; `fill_` and `masked_fill`
    /// apply the same conversion (a refused value changes nothing).
    fn full_fill_and_masked_fill_convert_as_pytorch(dev) {
        let g = Golden::load("scalar_convert");
        for (d, dtype) in DTYPES {
            for (v, ok, want) in full_table(&g, d) {
                let what = format!("{v} into {dtype:?}");
                let full = Tensor::full(&[2], v, dtype, dev);
                let mask = Tensor::from_vec(vec![1u8, 0, 1], &[3], dev).unwrap();
                let masked = Tensor::zeros(&[3], dtype, dev).unwrap().masked_fill(&mask, v);
                let target = Tensor::zeros(&[3], dtype, dev).unwrap();
                let fill = target.fill_(v);
                if !ok {
                    assert_eq!(arg_name(full), "value", "full: {what}");
                    assert_eq!(arg_name(fill), "value", "fill_: {what}");
                    assert_eq!(host(&target), [0.0; 3], "a refused fill_ changes nothing");
                    assert_eq!(arg_name(masked), "value", "masked_fill: {what}");
                    continue;
                }
                let full = full.unwrap_or_else(|e| panic!("full: {what}: {e}"));
                assert!(host(&full).iter().all(|&x| same(x, want)), "full: {what}: {:?}", host(&full));
                fill.unwrap_or_else(|e| panic!("fill_: {what}: {e}"));
                assert!(host(&target).iter().all(|&x| same(x, want)), "fill_: {what}");
                let masked = host(&masked.unwrap_or_else(|e| panic!("masked_fill: {what}: {e}")));
                assert!(same(masked[0], want) && masked[1] == 0.0 && same(masked[2], want), "masked_fill: {what}");
            }
        }
    }

    /// An integer bound clamps as a number (one beyond the dtype on the side it does
    /// not limit changes nothing; one no element can reach is an `Err` naming it), a
    /// float dtype refuses a finite bound beyond its range, as PyTorch.
    fn clamp_bounds_follow_pytorch(dev) {
        let g = Golden::load("scalar_convert");
        for (d, dtype) in DTYPES {
            let key = |k: &str| format!("clamp.{d}.{k}");
            let bounds = host(&g.get(&key("bound")));
            let x = g.get(&key("x")).to_dtype(dtype).unwrap().to_device(dev).unwrap();
            for (side, is_min) in [("min", true), ("max", false)] {
                let ok = host(&g.get(&key(&format!("{side}_ok"))));
                let out = g.get(&key(&format!("{side}_out")));
                for (i, &b) in bounds.iter().enumerate() {
                    let got = if is_min { x.clamp(b, None) } else { x.clamp(None, b) };
                    let what = format!("{dtype:?} clamp {side} {b}");
                    if ok[i] == 0.0 {
                        assert_eq!(arg_name(got), side, "{what}");
                        continue;
                    }
                    let got = got.unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(got.dtype(), dtype, "{what}");
                    let want = host(&out.narrow(0, i, 1).unwrap());
                    assert_eq!(host(&got), want, "{what}");
                }
            }
        }
    }

    /// A fractional or non-finite bound clamps an integer tensor in F32 (PyTorch's
    /// `int_tensor.clamp(min=0.5)` is a float tensor), and comparisons with a scalar
    /// the dtype cannot hold compare the numbers (`U8 < 300` holds everywhere).
    fn integer_tensors_meet_other_scalars_as_numbers(dev) {
        let x = Tensor::from_vec(vec![1i64, 5], &[2], dev).unwrap();
        let y = x.clamp(2.5, None).unwrap();
        assert_eq!((y.dtype(), host(&y)), (DType::F32, vec![2.5, 5.0]));
        let u = Tensor::from_vec(vec![0u8, 7, 255], &[3], dev).unwrap();
        let y = u.clamp(None, f64::NAN).unwrap();
        assert_eq!(y.dtype(), DType::F32);
        assert!(host(&y).iter().all(|v| v.is_nan()));
        assert_eq!(host(&u.lt_scalar(300.0).unwrap()), [1.0; 3]);
        assert_eq!(host(&u.gt_scalar(-1.0).unwrap()), [1.0; 3]);
        assert_eq!(host(&u.eq_scalar(-1.0).unwrap()), [0.0; 3], "-1 is no U8 element");
        let h = Tensor::from_vec(vec![1.0f32, 2.0], &[2], dev).unwrap().to_dtype(DType::F16).unwrap();
        assert_eq!(host(&h.lt_scalar(1e6).unwrap()), [1.0; 2]);
    }
}

/// The instances on the CPU: U8 `masked_fill` with 300, NaN or -0.5 is an
/// error (it gave 255, 0 and 0), an integer -1 wraps to 255 as in PyTorch.
#[test]
fn u8_masked_fill_refuses_what_it_cannot_hold() {
    let dev = Device::Cpu;
    let x = Tensor::from_vec(vec![1u8, 2, 3], &[3], &dev).unwrap();
    let m = Tensor::from_vec(vec![1u8, 0, 1], &[3], &dev).unwrap();
    for v in [300.0, f64::NAN, -0.5, f64::INFINITY, 256.0] {
        assert_eq!(arg_name(x.masked_fill(&m, v)), "value", "{v}");
    }
    assert_eq!(host(&x.masked_fill(&m, -1.0).unwrap()), [255.0, 2.0, 255.0]);
    assert_eq!(host(&x.masked_fill(&m, 2.7).unwrap()), [2.0, 2.0, 2.0]);
}
