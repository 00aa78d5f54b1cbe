//! Helpers shared by the integration tests: golden fixtures and closeness checks.
//!
//! Golden fixtures are safetensors files under `tests/data/`, written by the
//! committed scripts under `scripts/golden/` (PyTorch CPU). A key is
//! `<case>.<tensor>`, e.g. `conv_stride2.x`, `conv_stride2.out`, `conv_stride2.grad_x`.
#![allow(dead_code)]

use kiln::{DType, Device, Tensor};
use std::collections::HashMap;

/// The tensors of one fixture file, by key.
pub struct Golden {
    tensors: HashMap<String, Tensor>,
    file: String,
}

impl Golden {
    /// Loads `tests/data/<area>.safetensors`.
    pub fn load(area: &str) -> Golden {
        let file = format!(
            "{}/tests/data/{area}.safetensors",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&file)
            .unwrap_or_else(|e| panic!("{file}: {e}; run scripts/golden/{area}.py"));
        let st = safetensors::SafeTensors::deserialize(&bytes).expect("valid safetensors");
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(name, view)| (name, to_tensor(&view)))
            .collect();
        Golden { tensors, file }
    }

    /// The tensor stored under `key` (on the CPU).
    pub fn get(&self, key: &str) -> Tensor {
        self.tensors
            .get(key)
            .unwrap_or_else(|| panic!("{}: no key {key}", self.file))
            .clone()
    }

    /// The tensor stored under `key`, on `device`.
    pub fn on(&self, key: &str, device: &Device) -> Tensor {
        self.get(key).to_device(device).expect("to_device")
    }
}

fn to_tensor(view: &safetensors::tensor::TensorView<'_>) -> Tensor {
    let data = view.data();
    let shape = view.shape();
    let dev = Device::Cpu;
    match view.dtype() {
        safetensors::Dtype::F32 => Tensor::from_vec(decode(data, f32::from_le_bytes), shape, &dev),
        safetensors::Dtype::F64 => Tensor::from_vec(decode(data, f64::from_le_bytes), shape, &dev),
        safetensors::Dtype::I64 => Tensor::from_vec(decode(data, i64::from_le_bytes), shape, &dev),
        safetensors::Dtype::U8 => Tensor::from_vec(data.to_vec(), shape, &dev),
        other => panic!("fixture dtype {other:?} not supported"),
    }
    .expect("fixture tensor")
}

fn decode<T, const N: usize>(data: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
    data.chunks_exact(N)
        .map(|c| f(c.try_into().expect("chunk size")))
        .collect()
}

/// Asserts that `got` and `want` have one shape and agree within `atol + rtol*|want|`.
#[track_caller]
pub fn assert_close(got: &Tensor, want: &Tensor, atol: f64, rtol: f64) {
    assert_eq!(got.shape(), want.shape(), "shapes differ");
    let g = got.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
    let w = want.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let ok = (a - b).abs() <= atol + rtol * b.abs() || (a.is_nan() && b.is_nan());
        assert!(
            ok,
            "element {i}: got {a}, want {b} (atol {atol}, rtol {rtol})"
        );
    }
}

/// Checks an op of an input, a weight and an optional bias (conv2d, linear) against
/// golden case `name` of fixture `area`: the output, then the gradients of `x`, `w`
/// and `b` under PyTorch's upstream gradient `gy`. Inputs are converted to `dtype`;
/// `tol` is both the absolute and the relative tolerance.
pub fn check_weighted_case(
    area: &str,
    name: &str,
    has_bias: bool,
    dtype: DType,
    tol: f64,
    op: impl Fn(&Tensor, &Tensor, Option<&Tensor>) -> kiln::Result<Tensor>,
) {
    let g = Golden::load(area);
    let key = |k: &str| format!("{name}.{k}");
    let get = |k: &str| g.get(&key(k)).to_dtype(dtype).unwrap();
    let x = get("x").requires_grad();
    let w = get("w").requires_grad();
    let b = has_bias.then(|| get("b").requires_grad());
    let y = op(&x, &w, b.as_ref()).unwrap();
    assert_eq!(y.dtype(), dtype);
    assert_close(&y, &g.get(&key("out")), tol, tol);
    y.mul(&get("gy"))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&x.grad().unwrap(), &g.get(&key("grad_x")), tol, tol);
    assert_close(&w.grad().unwrap(), &g.get(&key("grad_w")), tol, tol);
    if let Some(b) = b {
        assert_close(&b.grad().unwrap(), &g.get(&key("grad_b")), tol, tol);
    }
}
