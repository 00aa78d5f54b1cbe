//! The emulator checked on its own kernels (`kernels/emu/selftest.cu`): planted bugs
//! are caught, intrinsics follow CUDA's semantics, launch limits and copies are checked.
//! The parity of every kiln kernel with the CPU is tested in tests/cuda.rs.

use super::*;

/// The emulated seams, with helpers to move f32/i32/u16 data in and out.
struct Emu {
    exec: EmulatedExecutor,
    mem: EmulatedMemory,
}

impl Emu {
    fn new() -> Self {
        let (exec, mem) = open();
        Emu { exec, mem }
    }

    /// A fresh allocation of exactly `bytes` (a multiple of 512), ending at a guard page.
    fn alloc(&mut self, bytes: usize) -> u64 {
        self.mem.alloc(bytes).expect("emulated memory")
    }

    fn upload<const N: usize>(&mut self, data: &[[u8; N]], bytes: usize) -> u64 {
        let ptr = self.alloc(bytes);
        let flat: Vec<u8> = data.concat();
        self.exec.copy_htod(ptr, &flat).unwrap();
        ptr
    }

    fn f32s(&mut self, data: &[f32]) -> u64 {
        let bytes = (data.len() * 4).next_multiple_of(512);
        self.upload(
            &data.iter().map(|v| v.to_le_bytes()).collect::<Vec<_>>(),
            bytes,
        )
    }

    fn i32s(&mut self, data: &[i32]) -> u64 {
        let bytes = (data.len() * 4).next_multiple_of(512);
        self.upload(
            &data.iter().map(|v| v.to_le_bytes()).collect::<Vec<_>>(),
            bytes,
        )
    }

    fn download(&self, ptr: u64, bytes: usize) -> Vec<u8> {
        let mut out = vec![0u8; bytes];
        self.exec.copy_dtoh(&mut out, ptr).unwrap();
        out
    }

    fn read_f32(&self, ptr: u64, n: usize) -> Vec<f32> {
        let raw = self.download(ptr, 4 * n);
        raw.chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    fn read_i32(&self, ptr: u64, n: usize) -> Vec<i32> {
        let raw = self.download(ptr, 4 * n);
        raw.chunks(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    fn read_u16(&self, ptr: u64, n: usize) -> Vec<u16> {
        let raw = self.download(ptr, 2 * n);
        raw.chunks(2)
            .map(|c| u16::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    fn launch(
        &self,
        kernel: KernelId,
        grid: u32,
        block: u32,
        shared: u32,
        args: &[KernelArg],
    ) -> Result<()> {
        super::super::launch::check_args(kernel, args)?;
        let cfg = LaunchConfig {
            grid: (grid, 1, 1),
            block: (block, 1, 1),
            shared_bytes: shared,
        };
        self.exec.launch(kernel, cfg, args)
    }
}

mod mma;

fn ramp(n: usize) -> Vec<f32> {
    (0..n).map(|i| i as f32 * 0.5 - 7.0).collect()
}

#[test]
fn a_planted_read_past_the_end_is_caught_not_silently_read() {
    let mut emu = Emu::new();
    let x = ramp(128); // 512 bytes: the allocation ends exactly at its guard page
    let (dx, dout) = (emu.f32s(&x), emu.alloc(512));
    let args = |n: u64| [KernelArg::Ptr(dx), KernelArg::Ptr(dout), KernelArg::U64(n)];
    emu.launch(KernelId::SelftestReadPastEnd, 1, 128, 0, &args(127))
        .unwrap();
    assert_eq!(emu.read_f32(dout, 127), x[1..]);

    let err = emu
        .launch(KernelId::SelftestReadPastEnd, 1, 128, 0, &args(128))
        .unwrap_err()
        .to_string();
    for part in [
        "selftest_read_past_end",
        "invalid memory access",
        "0 bytes past the end of the 512-byte device allocation",
        &format!("0x{dx:x}"),
        "block (0, 0, 0), thread (127, 0, 0)",
    ] {
        assert!(err.contains(part), "{part:?} missing from: {err}");
    }
    // The device is still usable after the fault.
    emu.launch(KernelId::SelftestReadPastEnd, 1, 128, 0, &args(127))
        .unwrap();
}

#[test]
fn a_planted_missing_syncthreads_gives_wrong_results() {
    let mut emu = Emu::new();
    let x = ramp(512);
    let (dx, dout) = (emu.f32s(&x), emu.alloc(2048));
    // Each thread reads the slot of its next (shift 1) or previous (shift 255) neighbour.
    for shift in [1u32, 255] {
        let want: Vec<f32> = (0..512)
            .map(|i| x[i / 256 * 256 + (i % 256 + shift as usize) % 256])
            .collect();
        let run = |synced: u32| {
            let args = [dx, dout].map(KernelArg::Ptr);
            let args = [
                args[0],
                args[1],
                KernelArg::U32(shift),
                KernelArg::U32(synced),
            ];
            emu.launch(KernelId::SelftestRotate, 2, 256, 0, &args)
                .unwrap();
            emu.read_f32(dout, 512)
        };
        assert_eq!(run(1), want, "shift {shift}, with the barrier");
        // Without it, the two blocks run their threads in opposite orders, so in one of
        // them each reader comes before the neighbour it reads; shared memory is
        // poisoned per block, so the correct run just before cannot hide the race.
        let broken = run(0);
        let wrong = broken.iter().zip(&want).filter(|(g, w)| g != w).count();
        assert!(wrong >= 255, "shift {shift}: only {wrong} of 512 wrong");
        assert!(
            broken.iter().any(|v| v.is_nan()),
            "unwritten slots read as poison"
        );
    }
}

/// Shared memory declared in a template or an inline device function is poisoned per
/// block like a kernel's own: without the barrier, the unwritten slots read as NaN,
/// not as the values the correct launch just before left there.
#[test]
fn shared_memory_of_template_and_inline_functions_is_poisoned() {
    let mut emu = Emu::new();
    let x = ramp(512);
    let (dx, dout) = (emu.f32s(&x), emu.alloc(2048));
    let want: Vec<f32> = (0..512)
        .map(|i| x[i / 256 * 256 + (i % 256 + 1) % 256])
        .collect();
    for tiled in [0u32, 1] {
        let run = |synced: u32| {
            let args = [
                KernelArg::Ptr(dx),
                KernelArg::Ptr(dout),
                KernelArg::U32(1),
                KernelArg::U32(synced),
                KernelArg::U32(tiled),
            ];
            emu.launch(KernelId::SelftestRotateNested, 2, 256, 0, &args)
                .unwrap();
            emu.read_f32(dout, 512)
        };
        assert_eq!(run(1), want, "tiled {tiled}, with the barrier");
        let broken = run(0);
        let poisoned = broken.iter().filter(|v| v.is_nan()).count();
        assert!(
            poisoned >= 255,
            "tiled {tiled}: only {poisoned} of 512 read poison"
        );
    }
}

#[test]
fn dynamic_shared_memory_is_per_launch_and_guarded() {
    let mut emu = Emu::new();
    let x = ramp(256);
    let (dx, dout) = (emu.f32s(&x), emu.alloc(1024));
    let args = |overrun: u32| {
        [
            KernelArg::Ptr(dx),
            KernelArg::Ptr(dout),
            KernelArg::U32(overrun),
        ]
    };
    emu.launch(KernelId::SelftestReverseDynamic, 2, 128, 512, &args(0))
        .unwrap();
    let want: Vec<f32> = x
        .chunks(128)
        .flat_map(|c| c.iter().rev().copied())
        .collect();
    assert_eq!(emu.read_f32(dout, 256), want);
    let err = emu
        .launch(KernelId::SelftestReverseDynamic, 2, 128, 512, &args(1))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("0 bytes past the end of the block's 512-byte dynamic shared memory"),
        "{err}"
    );
}

#[test]
fn a_barrier_in_divergent_code_is_an_error() {
    let mut emu = Emu::new();
    let out = emu.alloc(512);
    let err = emu
        .launch(
            KernelId::SelftestDivergentBarrier,
            1,
            64,
            0,
            &[KernelArg::Ptr(out)],
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("__syncthreads() reached by 32 threads"),
        "{err}"
    );
}

#[test]
fn warp_shuffles_votes_and_atomics_follow_cuda() {
    let mut emu = Emu::new();
    let threads = 64usize;
    // Warp 0 all positive, warp 1 with one non-positive lane.
    let x: Vec<i32> = (0..threads as i32)
        .map(|t| if t == 45 { -3 } else { t * 7 + 1 })
        .collect();
    let (dx, dout, counter) = (emu.i32s(&x), emu.alloc(8 * 4 * threads), emu.i32s(&[0]));
    let args = [
        KernelArg::Ptr(dx),
        KernelArg::Ptr(dout),
        KernelArg::Ptr(counter),
    ];
    emu.launch(KernelId::SelftestWarp, 1, threads as u32, 0, &args)
        .unwrap();
    let out = emu.read_i32(dout, 8 * threads);
    for t in 0..threads {
        let (warp, lane) = (t / 32 * 32, t % 32);
        let v = |l: usize| x[warp + l];
        let up = if lane % 8 < 2 { v(lane) } else { v(lane - 2) };
        let down = if lane + 5 >= 32 { v(lane) } else { v(lane + 5) };
        let odd: u32 = (0..32).filter(|&l| v(l) & 1 != 0).map(|l| 1u32 << l).sum();
        let positive: Vec<bool> = (0..32).map(|l| v(l) > 0).collect();
        let want = [
            v(3),
            up,
            down,
            v(lane ^ 6),
            odd as i32,
            positive.iter().any(|&p| p) as i32,
            positive.iter().all(|&p| p) as i32,
        ];
        assert_eq!(&out[8 * t..8 * t + 7], &want, "thread {t}");
    }
    let mut tickets: Vec<i32> = (0..threads).map(|t| out[8 * t + 7]).collect();
    tickets.sort();
    assert_eq!(
        tickets,
        (0..threads as i32).collect::<Vec<_>>(),
        "one atomicAdd each"
    );
    assert_eq!(emu.read_i32(counter, 1), [threads as i32]);
}

#[test]
fn half_and_bfloat16_conversions_match_the_half_crate_bit_for_bit() {
    let mut emu = Emu::new();
    // Every f16 and bf16 value, the midpoints between neighbours (ties to even), and
    // values past the largest finite f16 and below its smallest subnormal.
    let mut x: Vec<f32> = (0..=u16::MAX)
        .flat_map(|b| {
            let h = half::f16::from_bits(b).to_f32();
            let bf = half::bf16::from_bits(b).to_f32();
            let next = half::f16::from_bits(b.wrapping_add(1)).to_f32();
            [h, bf, (h + next) / 2.0]
        })
        .collect();
    x.extend([
        65504.0,
        65519.99,
        65520.0,
        1e6,
        -1e-8,
        2.9e-8,
        3.0e-8,
        f32::MAX,
        f32::MIN_POSITIVE,
    ]);
    let n = x.len();
    let dx = emu.f32s(&x);
    let (dh, db, dback) = (
        emu.alloc((2 * n).next_multiple_of(512)),
        emu.alloc((2 * n).next_multiple_of(512)),
        emu.alloc((8 * n).next_multiple_of(512)),
    );
    let args = [dx, dh, db, dback].map(KernelArg::Ptr);
    let args = [args[0], args[1], args[2], args[3], KernelArg::U64(n as u64)];
    emu.launch(KernelId::SelftestConvert, 8, 256, 0, &args)
        .unwrap();
    let (h, b, back) = (
        emu.read_u16(dh, n),
        emu.read_u16(db, n),
        emu.read_f32(dback, 2 * n),
    );
    for (i, &v) in x.iter().enumerate() {
        let (want_h, want_b) = (half::f16::from_f32(v), half::bf16::from_f32(v));
        if v.is_nan() {
            assert!(half::f16::from_bits(h[i]).is_nan() && half::bf16::from_bits(b[i]).is_nan());
            continue;
        }
        assert_eq!(h[i], want_h.to_bits(), "f16 of {v:e}");
        assert_eq!(b[i], want_b.to_bits(), "bf16 of {v:e}");
        assert_eq!(
            back[2 * i].to_bits(),
            want_h.to_f32().to_bits(),
            "f16 {v:e} widened"
        );
        assert_eq!(
            back[2 * i + 1].to_bits(),
            want_b.to_f32().to_bits(),
            "bf16 {v:e} widened"
        );
    }
}

#[test]
fn launch_limits_and_copy_bounds_are_checked() {
    let mut emu = Emu::new();
    let out = emu.alloc(512);
    let args = [KernelArg::Ptr(out)];
    for (block, shared, what) in [
        (2048, 0, "invalid block"),
        (0, 0, "invalid block"),
        (64, 64 << 10, "dynamic shared memory above 48 KiB"),
    ] {
        let err = emu
            .launch(KernelId::SelftestDivergentBarrier, 1, block, shared, &args)
            .unwrap_err()
            .to_string();
        assert!(err.contains(what), "{err}");
    }
    let err = emu
        .exec
        .copy_htod(out + 8, &[0u8; 512])
        .unwrap_err()
        .to_string();
    assert!(err.contains("not inside one device allocation"), "{err}");
    assert!(emu.exec.copy_dtod(out, out + 256, 512).is_err());
    assert!(emu.exec.copy_dtod(out, out + 256, 256).is_ok());
    assert!(emu.mem.free(out + 512, 512).is_err(), "not an allocation");
    emu.mem.free(out, 512).unwrap();
    let mut back = [0u8; 4];
    assert!(emu.exec.copy_dtoh(&mut back, out).is_err(), "freed memory");
    assert!(matches!(
        emu.mem.alloc(CAPACITY + 512),
        Err(RawAllocError::OutOfMemory)
    ));
}

#[test]
fn launches_are_counted_per_kernel() {
    let mut emu = Emu::new();
    let out = emu.alloc(512);
    let count = || {
        launch_counts()
            .into_iter()
            .find(|(name, _)| *name == "selftest_divergent_barrier")
            .unwrap()
            .1
    };
    let before = count();
    let _ = emu.launch(
        KernelId::SelftestDivergentBarrier,
        1,
        64,
        0,
        &[KernelArg::Ptr(out)],
    );
    assert!(count() > before);
    assert_eq!(launch_counts().len(), KernelId::ALL.len());
}

#[test]
fn an_unknown_op_code_traps_instead_of_computing_another_op() {
    use super::super::kernels::op_code;
    use super::super::launch::MAX_DIMS;
    let mut emu = Emu::new();
    // One element (thread 0 of the block computes it), contiguous, rank 1.
    let mut dims = [0u64; MAX_DIMS];
    dims[0] = 1;
    let mut strides = [0i64; MAX_DIMS];
    strides[0] = 1;
    let x = emu.f32s(&[2.0]);
    let out = emu.f32s(&[-1.0]);
    let unary = |kernel, op: u32| {
        let args = [
            KernelArg::U64(1),
            KernelArg::I32(1),
            KernelArg::Dims(dims),
            KernelArg::Ptr(x),
            KernelArg::Strides(strides),
            KernelArg::Ptr(out),
            KernelArg::U32(op),
            KernelArg::F64(0.0),
            KernelArg::F64(0.0),
            KernelArg::I64(0),
        ];
        emu.launch(kernel, 1, 32, 0, &args)
    };
    let neg = op_code("UnaryCode", "neg").unwrap();
    unary(KernelId::UnaryF32, neg).unwrap();
    assert_eq!(emu.read_f32(out, 1), [-2.0]);

    let exp = op_code("UnaryCode", "exp").unwrap();
    // 999 is no op; exp is one the host refuses for integers (x is read as an i64 there;
    // its value does not matter).
    for (kernel, op) in [(KernelId::UnaryF32, 999), (KernelId::UnaryI64, exp)] {
        let err = unary(kernel, op).unwrap_err().to_string();
        for part in [
            kernel.name(),
            "the kernel trapped (__trap())",
            "block (0, 0, 0), thread (0, 0, 0)",
        ] {
            assert!(err.contains(part), "{part:?} missing from: {err}");
        }
    }
    assert_eq!(emu.read_f32(out, 1), [-2.0], "nothing was written");
    // The device is still usable after the trap.
    unary(KernelId::UnaryF32, neg).unwrap();
}
