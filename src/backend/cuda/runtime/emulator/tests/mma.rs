//! The tensor-core instructions of kernels/mma.cuh on the emulated device, each against
//! a scalar statement of the PTX ISA written here independently of kernels/emu/mma.h:
//! `mma.sync` (fragments packed by the ISA's layouts, results exact), `ldmatrix` (plain
//! and transposed), `cp.async` (with zero fill) and `cvt.rna.tf32.f32`.

use super::*;

impl Emu {
    fn u32s(&mut self, data: &[u32]) -> u64 {
        let bytes = (data.len() * 4).next_multiple_of(512);
        self.upload(
            &data.iter().map(|v| v.to_le_bytes()).collect::<Vec<_>>(),
            bytes,
        )
    }

    fn read_u32(&self, ptr: u64, n: usize) -> Vec<u32> {
        let raw = self.download(ptr, 4 * n);
        raw.chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
}

/// Lane l's groupID and threadID_in_group.
fn group(l: usize) -> (usize, usize) {
    (l / 4, l % 4)
}

#[derive(Clone, Copy, Debug)]
enum Input {
    F16,
    Bf16,
    Tf32,
}

impl Input {
    /// The bits of `v` (exactly representable) in this type.
    fn bits(self, v: f32) -> u32 {
        match self {
            Input::F16 => half::f16::from_f32(v).to_bits() as u32,
            Input::Bf16 => half::bf16::from_f32(v).to_bits() as u32,
            Input::Tf32 => v.to_bits(),
        }
    }
}

#[test]
fn mma_sync_follows_the_ptx_fragment_layouts() {
    let mut emu = Emu::new();
    for (kind, input) in [Input::F16, Input::Bf16, Input::Tf32]
        .into_iter()
        .enumerate()
    {
        let k = if matches!(input, Input::Tf32) { 8 } else { 16 };
        // Multiples of 1/8 below 2: exact in every input type, and so are all products
        // and sums in f32, so the result must be exact.
        let a: Vec<f32> = (0..16 * k)
            .map(|i| ((i * 37 % 29) as f32 - 14.0) / 8.0)
            .collect();
        let b: Vec<f32> = (0..k * 8)
            .map(|i| ((i * 11 % 23) as f32 - 11.0) / 8.0)
            .collect();
        let c: Vec<f32> = (0..16 * 8).map(|i| (i as f32 - 60.0) / 4.0).collect();
        let (mut ra, mut rb, mut rc) = (vec![0u32; 128], vec![0u32; 64], vec![0f32; 128]);
        for l in 0..32 {
            let (g, t) = group(l);
            for i in 0..4 {
                ra[4 * l + i] = match input {
                    // rows g (+8 for odd i), columns 2t, 2t + 1 (+8 for i >= 2)
                    Input::F16 | Input::Bf16 => {
                        let (row, col) = (g + 8 * (i % 2), 2 * t + 8 * (i / 2));
                        input.bits(a[row * k + col]) | input.bits(a[row * k + col + 1]) << 16
                    }
                    // row g (+8 for odd i), column t (+4 for i >= 2); the low 13 bits
                    // are garbage the tensor cores must ignore.
                    Input::Tf32 => input.bits(a[(g + 8 * (i % 2)) * k + t + 4 * (i / 2)]) | 0x1555,
                };
                rc[4 * l + i] = c[(g + 8 * (i / 2)) * 8 + 2 * t + i % 2];
            }
            for i in 0..2 {
                rb[2 * l + i] = match input {
                    // rows 2t, 2t + 1 (+8 for i = 1), column g
                    Input::F16 | Input::Bf16 => {
                        let row = 2 * t + 8 * i;
                        input.bits(b[row * 8 + g]) | input.bits(b[(row + 1) * 8 + g]) << 16
                    }
                    // row t (+4 for i = 1), column g
                    Input::Tf32 => input.bits(b[(t + 4 * i) * 8 + g]) | 0x0aaa,
                };
            }
        }
        let (da, db, dc, dd) = (emu.u32s(&ra), emu.u32s(&rb), emu.f32s(&rc), emu.alloc(512));
        let args = [
            KernelArg::Ptr(da),
            KernelArg::Ptr(db),
            KernelArg::Ptr(dc),
            KernelArg::Ptr(dd),
            KernelArg::U32(kind as u32),
        ];
        emu.launch(KernelId::SelftestMma, 1, 32, 0, &args).unwrap();
        let d = emu.read_f32(dd, 128);
        for l in 0..32 {
            let (g, t) = group(l);
            for i in 0..4 {
                let (row, col) = (g + 8 * (i / 2), 2 * t + i % 2);
                let want = c[row * 8 + col]
                    + (0..k)
                        .map(|kk| a[row * k + kk] * b[kk * 8 + col])
                        .sum::<f32>();
                assert_eq!(d[4 * l + i], want, "{input:?}: lane {l}, element {i}");
            }
        }
    }
}

#[test]
fn ldmatrix_gives_each_lane_its_fragment_plain_and_transposed() {
    let mut emu = Emu::new();
    // 32 rows of 8 halves, all distinct; lane l gives the address of row rows[l].
    let src: Vec<u16> = (0..256).map(|i| 1000 + i as u16).collect();
    let rows: Vec<u32> = (0..32).map(|l| (l * 7 + 3) % 32).collect();
    let src_bytes: Vec<[u8; 2]> = src.iter().map(|v| v.to_le_bytes()).collect();
    let dsrc = emu.upload(&src_bytes, 512);
    let drows = emu.u32s(&rows);
    for (variant, matrices, trans) in [(0, 4, false), (1, 4, true), (2, 2, false), (3, 2, true)] {
        let out = emu.alloc(512);
        let args = [
            KernelArg::Ptr(dsrc),
            KernelArg::Ptr(drows),
            KernelArg::Ptr(out),
            KernelArg::U32(variant),
        ];
        emu.launch(KernelId::SelftestLdmatrix, 1, 32, 0, &args)
            .unwrap();
        let got = emu.read_u32(out, 128);
        for l in 0..32 {
            for i in 0..4 {
                // Element (r, c) of matrix i: row r is the one lane 8i + r pointed at.
                let at = |r: usize, c: usize| src[8 * rows[8 * i + r] as usize + c] as u32;
                let (g, t) = group(l);
                let want = match (i < matrices, trans) {
                    (false, _) => 0,
                    (true, false) => at(g, 2 * t) | at(g, 2 * t + 1) << 16,
                    (true, true) => at(2 * t, g) | at(2 * t + 1, g) << 16,
                };
                assert_eq!(got[4 * l + i], want, "variant {variant}, lane {l}, reg {i}");
            }
        }
    }
    // Planted: row addresses in global memory, which the GPU's ldmatrix cannot read.
    let out = emu.alloc(512);
    let args = [
        KernelArg::Ptr(dsrc),
        KernelArg::Ptr(drows),
        KernelArg::Ptr(out),
        KernelArg::U32(4),
    ];
    let err = emu
        .launch(KernelId::SelftestLdmatrix, 1, 32, 0, &args)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ldmatrix: a row address is not in shared memory"),
        "{err}"
    );
}

#[test]
fn cp_async_copies_src_size_bytes_and_zero_fills_the_rest() {
    let mut emu = Emu::new();
    let src: Vec<[u8; 1]> = (0..512).map(|i| [(i * 7 + 1) as u8]).collect();
    let dsrc = emu.upload(&src, 512);
    let size: Vec<u32> = (0..32).map(|l| [16, 8, 4][l % 3]).collect();
    let src_bytes: Vec<u32> = (0..32).map(|l| (l as u32 * 5) % (size[l] + 1)).collect();
    let (dsize, dbytes, out) = (emu.u32s(&size), emu.u32s(&src_bytes), emu.alloc(512));
    let args = [
        KernelArg::Ptr(dsrc),
        KernelArg::Ptr(dsize),
        KernelArg::Ptr(dbytes),
        KernelArg::Ptr(out),
    ];
    emu.launch(KernelId::SelftestCpAsync, 1, 32, 0, &args)
        .unwrap();
    let got = emu.download(out, 512);
    for l in 0..32 {
        for i in 0..16 {
            let want = if i < src_bytes[l] as usize {
                src[16 * l + i][0]
            } else if i < size[l] as usize {
                0
            } else {
                0xab // beyond the copy: untouched
            };
            assert_eq!(got[16 * l + i], want, "lane {l}, byte {i}");
        }
    }
}

/// cvt.rna.tf32.f32 by value: the nearer of the two tf32 neighbours of |x|, the larger
/// on a tie; infinities and NaN unchanged.
fn tf32_reference(x: f32) -> u32 {
    if !x.is_finite() {
        return x.to_bits();
    }
    let sign = x.to_bits() & 0x8000_0000;
    let lo = x.to_bits() & 0x7fff_e000;
    let exp = (lo >> 23) as i32;
    let ulp = 2f64.powi(exp.max(1) - 127 - 10);
    let lo_val = f32::from_bits(lo) as f64;
    let above = (x.abs() as f64 - lo_val) * 2.0;
    sign | if above >= ulp { lo + 0x2000 } else { lo }
}

#[test]
fn tf32_conversion_rounds_to_nearest_with_ties_away_from_zero() {
    let mut emu = Emu::new();
    let one = |mantissa: u32| f32::from_bits(0x3f80_0000 | mantissa);
    let mut x = vec![
        1.0,
        one(0x1000),            // a tie: away, to 1 + 2^-10
        one(0x0fff),            // just below the tie: down
        -one(0x1000),           // negative tie: away from zero
        one(0x3000),            // tie above an odd mantissa: away, not to even
        f32::MAX,               // rounds up past the largest tf32: infinity
        f32::from_bits(0x1fff), // subnormals round like normals
        f32::from_bits(0x1000),
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];
    let mut state = 0x2545_f491_u32;
    for _ in 0..4000 {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let v = f32::from_bits(state);
        if !v.is_nan() {
            x.push(v);
        }
    }
    let n = x.len();
    let (dx, out) = (emu.f32s(&x), emu.alloc((4 * n).next_multiple_of(512)));
    let args = [
        KernelArg::Ptr(dx),
        KernelArg::Ptr(out),
        KernelArg::U32(n as u32),
    ];
    emu.launch(
        KernelId::SelftestTf32,
        n.div_ceil(256) as u32,
        256,
        0,
        &args,
    )
    .unwrap();
    let got = emu.read_u32(out, n);
    assert_eq!(got[1], one(0x2000).to_bits());
    assert_eq!(got[5], f32::INFINITY.to_bits());
    for (v, g) in x.iter().zip(&got) {
        assert_eq!(*g, tf32_reference(*v), "{v:e} ({:#010x})", v.to_bits());
    }
}
