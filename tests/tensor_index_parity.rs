//! The index family's CUDA parity sweep: gather, index_select, scatter_add and the
//! other index kernels on every dtype against the CPU backend (tests/common/parity.rs),
//! with the check that it launches every kernel of kernels/index.cu. The golden tests
//! are in tests/tensor_index.rs; this binary holds only tests that take the parity
//! lock, so the launch counts that tell which scatter_add path served a call are not
//! moved by a golden test on another thread.

mod common;

/// The index kernels on every dtype against the CPU backend (tests/common/parity.rs),
/// and the check that these tests launch every kernel of kernels/index.cu.
mod cuda_parity {
    use crate::common::launches;
    use crate::common::parity::{
        assert_close, assert_every_kernel_launched, assert_exact, gpu_or_skip, pair_t, tol, ALL,
        FLOATS,
    };
    use kiln::nn::functional as F;
    use kiln::{DType, Device, Tensor};

    /// Runs `f`; on the emulated device, asserts that it launched the scatter_add
    /// kernel `family` of `dtype` and not the one of `other` (which path served it).
    fn assert_serves(
        family: &str,
        other: &str,
        dtype: DType,
        f: impl FnOnce() -> Tensor,
    ) -> Tensor {
        let suffix = format!("{dtype:?}").to_lowercase();
        let (kernel, other) = (format!("{family}_{suffix}"), format!("{other}_{suffix}"));
        let before = (launches(&kernel), launches(&other));
        let out = f();
        if let (Some(k), Some(o)) = before {
            assert_eq!(launches(&kernel), Some(k + 1), "{kernel} ran once");
            assert_eq!(launches(&other), Some(o), "{other} did not run");
        }
        out
    }

    /// The backward of index_select of rows (an embedding's gradient: scatter_add along
    /// dim 0 of a 2-D output, one id per src row) runs scatter_add_rows and equals the
    /// CPU bit for bit: one id repeated 200 times, ids never used, more ids than a block
    /// has threads (several chunks), more columns than one pass of the kernel covers
    /// and not a multiple of its threads, strided base and src; F::embedding's weight
    /// gradient; no ids at all. Scatters along dim 1 still run the general scatter_add (as does
    /// an index that is not broadcast, `index_ops_match_the_cpu_in_every_dtype`).
    #[test]
    fn row_scatter_add_matches_the_cpu_bit_for_bit() {
        let (dev, _gpu) = gpu_or_skip!("row_scatter_add_matches_the_cpu_bit_for_bit");
        let (rows, cols, n) = (23, 1030, 600);
        // Id 5 at every third position, the others in [0, 16): ids 16..23 never occur.
        let ids: Vec<i64> = (0..n)
            .map(|t| if t % 3 == 0 { 5 } else { (t * 7 % 16) as i64 })
            .collect();
        let ids_cpu = Tensor::from_vec(ids, &[n], &Device::Cpu).unwrap();
        let ids_gpu = ids_cpu.to_device(&dev).unwrap();
        let along = |ids: &Tensor, dim: usize, shape: &[usize]| {
            let mut one = [1, 1];
            one[dim] = n;
            ids.reshape(&one).unwrap().broadcast_as(shape).unwrap()
        };
        for dtype in FLOATS {
            let (base_cpu, base_gpu) = pair_t(&[rows, cols], dtype, 15, &dev);
            let (src_cpu, src_gpu) = pair_t(&[n, cols], dtype, 16, &dev);
            let rows_of = |ids: &Tensor, base: &Tensor, src: &Tensor| {
                base.scatter_add(0, &along(ids, 0, &[n, cols]), src)
                    .unwrap()
            };
            let got = assert_serves("scatter_add_rows", "scatter_add", dtype, || {
                rows_of(&ids_gpu, &base_gpu, &src_gpu)
            });
            let want = rows_of(&ids_cpu, &base_cpu, &src_cpu);
            assert_exact(&format!("row scatter_add {dtype:?}"), &got, &want);
            // The same sums along dim 1 of the transposed operands: the general kernel.
            let cols_of = |ids: &Tensor, base: &Tensor, src: &Tensor| {
                let (base, src) = (base.transpose(0, 1).unwrap(), src.transpose(0, 1).unwrap());
                base.scatter_add(1, &along(ids, 1, &[cols, n]), &src)
                    .unwrap()
            };
            let got = assert_serves("scatter_add", "scatter_add_rows", dtype, || {
                cols_of(&ids_gpu, &base_gpu, &src_gpu)
            });
            let want = want.transpose(0, 1).unwrap();
            assert_exact(&format!("scatter_add dim 1 {dtype:?}"), &got, &want);
            let embedding_grad = |ids: &Tensor, weight: &Tensor, up: &Tensor| {
                let w = weight.detach().requires_grad();
                let y = F::embedding(&ids.reshape(&[20, 30]).unwrap(), &w).unwrap();
                let up = up.reshape(&[20, 30, cols]).unwrap();
                y.mul(&up).unwrap().sum_all().unwrap().backward().unwrap();
                w.grad().unwrap()
            };
            let got = assert_serves("scatter_add_rows", "scatter_add", dtype, || {
                embedding_grad(&ids_gpu, &base_gpu, &src_gpu)
            });
            let want = embedding_grad(&ids_cpu, &base_cpu, &src_cpu);
            assert_exact(&format!("embedding grad {dtype:?}"), &got, &want);
        }
        // No ids: the row kernel passes the base through.
        let none = Tensor::from_vec(Vec::<i64>::new(), &[0, 1], &dev).unwrap();
        let none = none.broadcast_as(&[0, cols]).unwrap();
        let nothing = Tensor::zeros(&[0, cols], DType::F32, &dev).unwrap();
        let (base_cpu, base_gpu) = pair_t(&[rows, cols], DType::F32, 17, &dev);
        let got = assert_serves("scatter_add_rows", "scatter_add", DType::F32, || {
            base_gpu.scatter_add(0, &none, &nothing).unwrap()
        });
        assert_exact("row scatter_add of no ids", &got, &base_cpu);
    }

    /// The index kernels against the CPU on strided operands: gather and where_cond in
    /// every dtype (bit for bit), scatter_add in every float dtype (bit for bit: both
    /// backends sum in one order), index_bounds through every checked op, and the sin
    /// and cos cases of the unary kernels.
    #[test]
    fn index_ops_match_the_cpu_in_every_dtype() {
        let (dev, _gpu) = gpu_or_skip!("index_ops_match_the_cpu_in_every_dtype");
        let ids: Vec<i64> = (0..9 * 6).map(|i| (i * 5 % 7) as i64).collect();
        let base = Tensor::from_vec(ids, &[9, 6], &Device::Cpu).unwrap();
        // (6, 9) transposed views of indices in [0, 7), on both devices.
        let idx_cpu = base.transpose(0, 1).unwrap();
        let idx_gpu = base.to_device(&dev).unwrap().transpose(0, 1).unwrap();
        let (cond_cpu, cond_gpu) = pair_t(&[6, 7], DType::U8, 9, &dev);
        for dtype in ALL {
            let (cpu, gpu) = pair_t(&[6, 7], dtype, 10, &dev);
            let what = format!("gather {dtype:?}");
            let got = gpu.gather(1, &idx_gpu).unwrap();
            assert_exact(&what, &got, &cpu.gather(1, &idx_cpu).unwrap());
            let (b_cpu, b_gpu) = pair_t(&[7], dtype, 11, &dev);
            let what = format!("where_cond {dtype:?}");
            let got = cond_gpu.where_cond(&gpu, &b_gpu).unwrap();
            assert_exact(&what, &got, &cond_cpu.where_cond(&cpu, &b_cpu).unwrap());
        }
        for dtype in FLOATS {
            let (base_cpu, base_gpu) = pair_t(&[7, 9], dtype, 12, &dev);
            let (src_cpu, src_gpu) = pair_t(&[6, 9], dtype, 13, &dev);
            let what = format!("scatter_add {dtype:?}");
            let got = base_gpu.scatter_add(0, &idx_gpu, &src_gpu).unwrap();
            let want = base_cpu.scatter_add(0, &idx_cpu, &src_cpu).unwrap();
            assert_exact(&what, &got, &want);
            let (cpu, gpu) = pair_t(&[5, 3], dtype, 14, &dev);
            let (atol, rtol) = tol(dtype);
            assert_close(
                &format!("sin {dtype:?}"),
                &gpu.sin().unwrap(),
                &cpu.sin().unwrap(),
                atol,
                rtol,
            );
            assert_close(
                &format!("cos {dtype:?}"),
                &gpu.cos().unwrap(),
                &cpu.cos().unwrap(),
                atol,
                rtol,
            );
        }
        let bad = Tensor::from_vec(vec![0i64, 9], &[1, 2], &dev).unwrap();
        assert!(idx_gpu
            .to_dtype(DType::F32)
            .unwrap()
            .gather(1, &bad)
            .is_err());
    }

    /// Advanced indexing's `index_put` (the `index_put_rows` kernels) in every dtype
    /// against the CPU bit for bit, adding and replacing: a strided base, an index with
    /// repeats (sums in index order, the last write wins) and negative positions, more
    /// positions than a block has threads, values broadcast along the rows.
    #[test]
    fn index_put_matches_the_cpu_in_every_dtype() {
        let (dev, _gpu) = gpu_or_skip!("index_put_matches_the_cpu_in_every_dtype");
        let ids: Vec<i64> = (0..300).map(|t| (t * 5 % 9) as i64 - 4).collect();
        let idx_cpu = Tensor::from_vec(ids, &[300], &Device::Cpu).unwrap();
        let idx_gpu = idx_cpu.to_device(&dev).unwrap();
        for dtype in ALL {
            let (base_cpu, base_gpu) = pair_t(&[9, 37], dtype, 15, &dev);
            let (v_cpu, v_gpu) = pair_t(&[300, 1], dtype, 16, &dev);
            for accumulate in [true, false] {
                let what = format!("index_put {dtype:?} accumulate {accumulate}");
                let put = |base: &Tensor, idx: &Tensor, v: &Tensor| {
                    let v = v.broadcast_as(&[300, 37]).unwrap();
                    base.index_put(&[Some(idx)], &v, accumulate).unwrap()
                };
                let got = put(&base_gpu, &idx_gpu, &v_gpu);
                assert_exact(&what, &got, &put(&base_cpu, &idx_cpu, &v_cpu));
            }
        }
    }

    /// On the emulated device: the parity tests above, run one after another, launch
    /// every kernel of kernels/index.cu.
    #[test]
    fn every_index_kernel_is_launched() {
        let suite: [fn(); 3] = [
            row_scatter_add_matches_the_cpu_bit_for_bit,
            index_ops_match_the_cpu_in_every_dtype,
            index_put_matches_the_cpu_in_every_dtype,
        ];
        assert_every_kernel_launched("index", &suite, &[]);
    }
}
