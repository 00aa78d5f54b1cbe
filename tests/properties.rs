//! Property tests: random shapes, strides, dtypes and arguments — 0, 1, small
//! numbers and values near `usize::MAX` — thrown at the public ops. Every call must
//! return `Ok` with the shape PyTorch's formula gives, or an `Err`; never panic; and a
//! failing call leaves its inputs unchanged. A fuzz-style part feeds random and
//! mutated bytes to checkpoint and IDX loading.
//!
//! Cheap by default (256 cases per property, about 3 s on 2 cores); set
//! `PROPTEST_CASES=10000` for a deeper local run. Huge sizes never allocate: a shape
//! with a dim of 2^40 or more either overflows or asks for terabytes, which the
//! allocator refuses at once.

use kiln::nn::{self, functional as F, Conv2dOpts, Module};
use kiln::{DType, Device, Tensor};
use proptest::prelude::*;
use proptest::test_runner::Config;

const CPU: Device = Device::Cpu;

/// 256 cases per property unless `PROPTEST_CASES` says otherwise.
fn config() -> Config {
    let mut c = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 256;
    }
    c
}

/// A size: mostly small, sometimes one of the values that break unchecked arithmetic.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 0usize..4,
        1 => Just(usize::MAX),
        1 => Just(usize::MAX - 1),
        1 => Just(usize::MAX / 2),
        1 => Just(1usize << 40),
        1 => Just(1usize << 62),
    ]
}

/// A small size, for tensors that are actually made.
fn small() -> impl Strategy<Value = usize> {
    0usize..4
}

fn dtype() -> impl Strategy<Value = DType> {
    prop_oneof![
        Just(DType::F32),
        Just(DType::F64),
        Just(DType::F16),
        Just(DType::BF16),
        Just(DType::I64),
        Just(DType::U8),
    ]
}

fn float_dtype() -> impl Strategy<Value = DType> {
    prop_oneof![
        Just(DType::F32),
        Just(DType::F64),
        Just(DType::F16),
        Just(DType::BF16)
    ]
}

/// A tensor of `shape` and `dtype` with distinct small values, possibly seen through
/// a transposed (non-contiguous) view of the same shape.
fn tensor(shape: &[usize], dtype: DType, transposed: bool) -> Tensor {
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n).map(|i| (i % 7) as f64).collect();
    let rank = shape.len();
    if transposed && rank >= 2 {
        let mut swapped = shape.to_vec();
        swapped.swap(0, rank - 1);
        let t = Tensor::from_vec(values, &swapped, &CPU).unwrap();
        return t.transpose(0, rank - 1).unwrap().to_dtype(dtype).unwrap();
    }
    Tensor::from_vec(values, shape, &CPU)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// Shape, strides, offset and values: what a failing call must leave as it was.
fn snapshot(t: &Tensor) -> (Vec<usize>, Vec<usize>, usize, Vec<f64>) {
    (
        t.shape().to_vec(),
        t.strides().to_vec(),
        t.storage_offset(),
        t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap(),
    )
}

/// PyTorch's count of a shape, `None` when it overflows.
fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// `(size + 2·pad − dil·(k−1) − 1) / stride + 1`, PyTorch's conv/pool output size,
/// `None` when the window does not fit or the arithmetic overflows.
fn out_size(size: usize, pad: usize, dil: usize, k: usize, stride: usize) -> Option<usize> {
    let padded = size.checked_add(pad.checked_mul(2)?)?;
    let ext = dil.checked_mul(k.checked_sub(1)?)?.checked_add(1)?;
    Some(padded.checked_sub(ext)? / stride + 1)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn creation_gives_the_shape_or_an_error(
        shape in prop::collection::vec(size(), 0..4),
        dtype in dtype(),
        which in 0usize..5,
        value in prop_oneof![Just(0.0), Just(1.0), Just(-1.0), Just(f64::NAN), Just(1e300)],
    ) {
        let r = match which {
            0 => Tensor::zeros(&shape, dtype, &CPU),
            1 => Tensor::ones(&shape, dtype, &CPU),
            2 => Tensor::full(&shape, value, dtype, &CPU),
            3 => Tensor::rand(&shape, dtype, &CPU),
            _ => Tensor::randn(&shape, dtype, &CPU),
        };
        if let Ok(t) = r {
            prop_assert_eq!(t.shape(), &shape[..]);
            prop_assert_eq!(Some(t.numel()), numel(&shape));
            prop_assert_eq!(t.dtype(), dtype);
        }
    }

    #[test]
    fn arange_gives_n_elements_or_an_error(n in size(), dtype in dtype()) {
        if let Ok(t) = Tensor::arange(n, dtype, &CPU) {
            prop_assert_eq!(t.shape(), &[n][..]);
        }
    }

    #[test]
    fn views_follow_pytorch_or_fail_cleanly(
        shape in prop::collection::vec(small(), 0..4),
        dtype in dtype(),
        transposed in any::<bool>(),
        target in prop::collection::vec(size(), 0..4),
        (dim, start, len) in (size(), size(), size()),
        perm in prop::collection::vec(size(), 0..4),
    ) {
        let x = tensor(&shape, dtype, transposed);
        let before = snapshot(&x);
        let rank = shape.len();
        let n = x.numel();

        match x.reshape(&target) {
            Ok(y) => {
                prop_assert_eq!(y.numel(), n);
                let inferred = target.iter().filter(|&&d| d == usize::MAX).count();
                if inferred == 0 {
                    prop_assert_eq!(y.shape(), &target[..]);
                }
            }
            Err(_) => prop_assert_eq!(snapshot(&x), before.clone()),
        }
        match x.narrow(dim, start, len) {
            Ok(y) => {
                prop_assert!(dim < rank && start + len <= shape[dim]);
                let mut want = shape.clone();
                want[dim] = len;
                prop_assert_eq!(y.shape(), &want[..]);
            }
            Err(_) => prop_assert_eq!(snapshot(&x), before.clone()),
        }
        match x.permute(&perm) {
            Ok(y) => {
                let want: Vec<usize> = perm.iter().map(|&d| shape[d]).collect();
                prop_assert_eq!(y.shape(), &want[..]);
            }
            Err(_) => prop_assert_eq!(snapshot(&x), before.clone()),
        }
        match x.flatten(start.min(8), len.min(8)) {
            Ok(y) => prop_assert_eq!(y.numel(), n),
            Err(_) => prop_assert_eq!(snapshot(&x), before.clone()),
        }
        match x.unsqueeze(dim) {
            Ok(y) => prop_assert_eq!(y.rank(), rank + 1),
            Err(_) => prop_assert!(dim > rank),
        }
        match x.broadcast_as(&target) {
            Ok(y) => prop_assert_eq!(y.shape(), &target[..]),
            Err(_) => prop_assert_eq!(snapshot(&x), before.clone()),
        }
        let _ = x.transpose(dim, start);
        let _ = x.squeeze(dim);
        prop_assert_eq!(snapshot(&x), before);
    }

    #[test]
    fn cat_joins_or_fails_cleanly(
        a in prop::collection::vec(small(), 1..4),
        b in prop::collection::vec(small(), 1..4),
        dim in size(),
        dtypes in (dtype(), dtype()),
    ) {
        let (x, y) = (tensor(&a, dtypes.0, false), tensor(&b, dtypes.1, true));
        let (bx, by) = (snapshot(&x), snapshot(&y));
        match Tensor::cat(&[&x, &y], dim) {
            Ok(z) => {
                let mut want = a.clone();
                want[dim] += b[dim];
                prop_assert_eq!(z.shape(), &want[..]);
            }
            Err(_) => {
                prop_assert_eq!(snapshot(&x), bx);
                prop_assert_eq!(snapshot(&y), by);
            }
        }
    }

    #[test]
    fn matmul_follows_pytorch_or_fails_cleanly(
        a in prop::collection::vec(small(), 1..4),
        b in prop::collection::vec(small(), 1..4),
        dtype in dtype(),
        transposed in any::<bool>(),
    ) {
        let (x, y) = (tensor(&a, dtype, transposed), tensor(&b, dtype, false));
        let (bx, by) = (snapshot(&x), snapshot(&y));
        match x.matmul(&y) {
            Ok(z) => {
                prop_assert!(dtype.is_float());
                // 1-D · 1-D is a scalar; otherwise the inner sizes agree.
                let k_a = a[a.len() - 1];
                let k_b = if b.len() == 1 { b[0] } else { b[b.len() - 2] };
                prop_assert_eq!(k_a, k_b);
                if a.len() == 1 && b.len() == 1 {
                    prop_assert_eq!(z.rank(), 0);
                }
            }
            Err(_) => {
                prop_assert_eq!(snapshot(&x), bx);
                prop_assert_eq!(snapshot(&y), by);
            }
        }
    }

    #[test]
    fn conv2d_gives_pytorchs_output_size_or_an_error(
        (n, c, h, w) in (small(), 1usize..3, small(), small()),
        (k, out_c) in (1usize..4, 1usize..3),
        (stride, padding, dilation, groups) in (size(), size(), size(), size()),
        dtype in float_dtype(),
    ) {
        let x = tensor(&[n, c, h, w], dtype, false);
        let wt = tensor(&[out_c, c, k, k], dtype, false);
        let (bx, bw) = (snapshot(&x), snapshot(&wt));
        let opts = Conv2dOpts::new().stride(stride).padding(padding).dilation(dilation).groups(groups);
        match F::conv2d(&x, &wt, None, opts) {
            Ok(y) => {
                prop_assert!(stride > 0 && groups == 1);
                let o = out_size(h, padding, dilation, k, stride);
                let p = out_size(w, padding, dilation, k, stride);
                prop_assert_eq!(y.shape(), &[n, out_c, o.unwrap(), p.unwrap()][..]);
            }
            Err(_) => {
                prop_assert_eq!(snapshot(&x), bx);
                prop_assert_eq!(snapshot(&wt), bw);
            }
        }
    }

    #[test]
    fn pools_give_pytorchs_output_size_or_an_error(
        (n, c, h, w) in (small(), small(), small(), small()),
        (kernel, stride, padding) in (size(), size(), size()),
        avg in any::<bool>(),
        adaptive in (size(), size()),
        dtype in float_dtype(),
    ) {
        let x = tensor(&[n, c, h, w], dtype, true);
        let before = snapshot(&x);
        let r = if avg {
            F::avg_pool2d(&x, kernel, stride, padding)
        } else {
            F::max_pool2d(&x, kernel, stride, padding)
        };
        match r {
            Ok(y) => {
                prop_assert!(stride > 0 && padding <= kernel / 2);
                prop_assert!(c > 0 && h > 0 && w > 0, "only the batch may be empty");
                let o = out_size(h, padding, 1, kernel, stride).unwrap();
                let p = out_size(w, padding, 1, kernel, stride).unwrap();
                prop_assert_eq!(y.shape(), &[n, c, o, p][..]);
            }
            Err(_) => prop_assert_eq!(snapshot(&x), before.clone()),
        }
        match F::adaptive_avg_pool2d(&x, adaptive) {
            Ok(y) => prop_assert_eq!(y.shape(), &[n, c, adaptive.0, adaptive.1][..]),
            Err(_) => prop_assert_eq!(snapshot(&x), before),
        }
    }

    #[test]
    fn reductions_follow_pytorch_or_fail_cleanly(
        shape in prop::collection::vec(small(), 0..4),
        dtype in dtype(),
        transposed in any::<bool>(),
        dim in size(),
        keepdim in any::<bool>(),
    ) {
        let x = tensor(&shape, dtype, transposed);
        let before = snapshot(&x);
        let mut want = shape.clone();
        if dim < shape.len() {
            if keepdim { want[dim] = 1 } else { want.remove(dim); }
        }
        for r in [x.sum(dim, keepdim), x.max(dim, keepdim), x.argmin(dim, keepdim)] {
            match r {
                Ok(y) => prop_assert_eq!(y.shape(), &want[..]),
                Err(_) => prop_assert_eq!(snapshot(&x), before.clone()),
            }
        }
        if let Ok(s) = x.sum_all() {
            prop_assert_eq!(s.rank(), 0);
            let want_dtype = if dtype.is_float() { dtype } else { DType::I64 };
            prop_assert_eq!(s.dtype(), want_dtype);
        }
        prop_assert_eq!(snapshot(&x), before);
    }

    #[test]
    fn elementwise_ops_broadcast_and_promote_like_pytorch(
        a in prop::collection::vec(small(), 0..4),
        b in prop::collection::vec(small(), 0..4),
        dtype in dtype(),
        scalar in prop_oneof![
            Just(0.0), Just(1.0), Just(-1.0), Just(0.5), Just(300.0), Just(f64::NAN),
            Just(f64::INFINITY), Just(1e30), Just(-9.3e18), Just(9.3e18),
        ],
    ) {
        let (x, y) = (tensor(&a, dtype, true), tensor(&b, dtype, false));
        let (bx, by) = (snapshot(&x), snapshot(&y));
        for r in [x.add(&y), x.mul(&y), x.sub(&y), x.maximum(&y), x.eq(&y)] {
            if r.is_err() {
                prop_assert_eq!(snapshot(&x), bx.clone());
                prop_assert_eq!(snapshot(&y), by.clone());
            }
        }
        let integral = scalar.fract() == 0.0 && scalar.abs() < 9.2e18;
        let want = if dtype.is_float() || integral { dtype } else { DType::F32 };
        for r in [x.add_scalar(scalar), x.mul_scalar(scalar), x.sub_scalar(scalar)] {
            let z = r.unwrap();
            prop_assert_eq!(z.dtype(), want);
            prop_assert_eq!(z.shape(), &a[..]);
        }
        prop_assert_eq!(x.div_scalar(scalar).unwrap().dtype(), if dtype.is_float() { dtype } else { DType::F32 });
        let _ = x.relu();
        let _ = x.exp();
        prop_assert_eq!(snapshot(&x), bx);
    }

    #[test]
    fn loading_a_corrupt_checkpoint_is_an_error(
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
        random in prop::collection::vec(any::<u8>(), 0..64),
        which in 0usize..3,
    ) {
        let model = nn::Linear::new(3, 2, &CPU).unwrap();
        let dir = std::env::temp_dir().join(format!("kiln-prop-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.safetensors");
        model.save(&path).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        match which {
            0 => {
                for (at, b) in &mutations {
                    let i = at.index(bytes.len());
                    bytes[i] = *b;
                }
            }
            1 => bytes.truncate(cut.index(bytes.len())),
            _ => bytes = random.clone(),
        }
        std::fs::write(&path, &bytes).unwrap();
        let fresh = nn::Linear::new(3, 2, &CPU).unwrap();
        // Ok (a mutation in padding or in a value) or Err; never a panic.
        let _ = fresh.load(&path);
        let _ = nn::load(&fresh, &path);
    }

    #[test]
    fn loading_crafted_idx_files_is_an_error(
        header in prop::collection::vec(any::<u8>(), 0..20),
        dims in (size(), size(), size()),
        payload in prop::collection::vec(any::<u8>(), 0..32),
        craft in any::<bool>(),
    ) {
        let dir = std::env::temp_dir().join(format!("kiln-prop-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let images = if craft {
            let mut b = vec![0, 0, 8, 3];
            for d in [dims.0, dims.1, dims.2] {
                b.extend((d as u32).to_be_bytes());
            }
            b.extend(&payload);
            b
        } else {
            let mut b = header.clone();
            b.extend(&payload);
            b
        };
        let mut labels = vec![0, 0, 8, 1];
        labels.extend((dims.0 as u32).to_be_bytes());
        labels.extend(&payload);
        for prefix in ["train", "t10k"] {
            std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), &images).unwrap();
            std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), &labels).unwrap();
        }
        let _ = kiln::data::load_mnist(&dir);
    }
}
