//! Pieces and rearrangements (`split`, `split_sizes`, `chunk`, `unbind`, `select`,
//! `unflatten`, `expand`, `repeat`, `repeat_interleave`, `roll`, `flip`) against
//! PyTorch on every device: values and gradients, strided and empty inputs, integer
//! dtypes; f64 gradchecks; views that share storage; and an `Err` naming each bad
//! argument.
//!
//! The fixture is written by `scripts/golden/rearrange.py`; the PyTorch expression of
//! each case is the comment above it here and there. `a` is the case's input `in0`.
//! Ops that return several tensors are checked through `weighted`: the parts joined
//! along a dim, part i scaled by i + 1, so both the pieces and their order show.

mod common;

use common::rng::uniform;
use common::{golden_case_names, golden_cases, host, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::{Device, Error, Result, Tensor};
use std::sync::OnceLock;

fn golden() -> &'static Golden {
    static GOLDEN: OnceLock<Golden> = OnceLock::new();
    GOLDEN.get_or_init(|| Golden::load("rearrange"))
}

/// The script's `weighted(parts, dim)`: part i times i + 1, joined along `dim`.
fn weighted(parts: Result<Vec<Tensor>>, dim: usize) -> Result<Tensor> {
    let scaled = scaled(parts?)?;
    Tensor::cat(&scaled.iter().collect::<Vec<_>>(), dim)
}

/// The script's `weighted_stack(parts)`: part i times i + 1, stacked along a new dim 0.
fn weighted_stack(parts: Result<Vec<Tensor>>) -> Result<Tensor> {
    let scaled = scaled(parts?)?;
    Tensor::stack(&scaled.iter().collect::<Vec<_>>(), 0)
}

fn scaled(parts: Vec<Tensor>) -> Result<Vec<Tensor>> {
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| p.mul_scalar((i + 1) as f64))
        .collect()
}

/// PyTorch's -1 in a size list.
const INFER: usize = usize::MAX;

golden_cases! {
    // weighted(a (3,7).split(3, 1), 1)
    split_d1(1) => |x| weighted(x[0].split(3, 1), 1);
    // weighted(a (6,2).split([1, 3, 2], 0), 0)
    split_sizes_d0(1) => |x| weighted(x[0].split_sizes(&[1, 3, 2], 0), 0);
    // weighted(a (2,7).chunk(3, 1), 1)   (pieces of 3, 3, 1)
    chunk_d1(1) => |x| weighted(x[0].chunk(3, 1), 1);
    // weighted(a (5,4).t().chunk(2, 1), 1)
    chunk_transposed(1) => |x| weighted(x[0].transpose(0, 1)?.chunk(2, 1), 1);
    // weighted_stack(a (3,4,2).unbind(1))
    unbind_d1(1) => |x| weighted_stack(x[0].unbind(1));
    // a (3,5,2).select(1, 3)
    select_d1(1) => |x| x[0].select(1, 3);
    // a (4,3).t().select(1, 2)
    select_transposed(1) => |x| x[0].transpose(0, 1)?.select(1, 2);
    // a (2,12,3).unflatten(1, (3, 4))
    unflatten_d1(1) => |x| x[0].unflatten(1, &[3, 4]);
    // a (4,6).t().unflatten(0, (2, -1))   (a strided view)
    unflatten_inferred(1) => |x| x[0].transpose(0, 1)?.unflatten(0, &[2, INFER]);
    // a (3,1).expand(2, 3, 4)
    expand_new_dims(1) => |x| x[0].expand(&[2, 3, 4]);
    // a (4,1).expand(-1, 5)
    expand_keep(1) => |x| x[0].expand(&[INFER, 5]);
    // a (2,3).repeat(2, 1, 3)
    repeat_2d(1) => |x| x[0].repeat(&[2, 1, 3]);
    // a (3,2).t().repeat(2, 2)
    repeat_transposed(1) => |x| x[0].transpose(0, 1)?.repeat(&[2, 2]);
    // a (2,3).repeat(0, 1)
    repeat_zero(1) => |x| x[0].repeat(&[0, 1]);
    // a (2,2) int64 .repeat(2, 3)
    repeat_i64(1) => |x| x[0].repeat(&[2, 3]);
    // a (3,2).repeat_interleave(2, 0)
    repeat_interleave_d0(1) => |x| x[0].repeat_interleave(2, 0);
    // a (2,3).t().repeat_interleave(3, 1)
    repeat_interleave_transposed(1) => |x| x[0].transpose(0, 1)?.repeat_interleave(3, 1);
    // a (3,4).roll((1, -2), (0, 1))
    roll_two(1) => |x| x[0].roll(&[1, -2], &[0, 1]);
    // a (3,4).roll(5)
    roll_flat(1) => |x| x[0].roll(&[5], &[]);
    // a (5,).roll(-12, 0)
    roll_big_shift(1) => |x| x[0].roll(&[-12], &[0]);
    // a (3,5).t().roll(2, 1)
    roll_transposed(1) => |x| x[0].transpose(0, 1)?.roll(&[2], &[1]);
    // a (0,3).roll(1, 1)
    roll_empty(1) => |x| x[0].roll(&[1], &[1]);
    // a (3,4).flip(0)
    flip_d0(1) => |x| x[0].flip(&[0]);
    // a (2,3,4).flip((0, 2))
    flip_two(1) => |x| x[0].flip(&[0, 2]);
    // a (4,3).t().flip(1)
    flip_transposed(1) => |x| x[0].transpose(0, 1)?.flip(&[1]);
    // a (3,5) float32 .flip(1)
    flip_f32(1) => |x| x[0].flip(&[1]);
    // a (2,3) uint8 .flip(0, 1)
    flip_u8(1) => |x| x[0].flip(&[0, 1]);
}

/// Every case in the fixture has a test here, and every test its case.
#[test]
fn every_fixture_case_is_tested() {
    let mut tested: Vec<String> = CASES.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(golden_case_names("rearrange"), tested);
}

/// Deterministic f64 values in (-2, 2).
fn f64s(shape: &[usize], seed: u64, dev: &Device) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(uniform(n, seed, -2.0, 2.0), shape, dev).unwrap()
}

/// The name an `Err` gives its bad argument.
fn bad_arg<T: std::fmt::Debug>(r: Result<T>) -> &'static str {
    match r {
        Err(Error::InvalidArgument { name, .. }) => name,
        other => panic!("expected an invalid argument, got {other:?}"),
    }
}

/// A named op of one tensor, for the gradcheck table.
type UnaryOp = fn(&Tensor) -> Result<Tensor>;

common::device_test! {
    /// Finite differences agree with every op's gradient, on a strided view.
    fn gradchecks(dev) {
        let x = f64s(&[4, 3, 2], 1, dev).transpose(0, 1).unwrap().requires_grad();
        let ops: [(&str, UnaryOp); 10] = [
            ("split", |t| weighted(t.split(3, 1), 1)),
            ("chunk", |t| weighted(t.chunk(3, 1), 1)),
            ("unbind", |t| weighted_stack(t.unbind(2))),
            ("select", |t| t.select(1, 2)),
            ("unflatten", |t| t.unflatten(1, &[2, 2])),
            ("expand", |t| t.narrow(0, 1, 1)?.expand(&[2, 3, 4, 2])),
            ("repeat", |t| t.repeat(&[2, 1, 3, 1])),
            ("repeat_interleave", |t| t.repeat_interleave(2, 2)),
            ("roll", |t| t.roll(&[1, -3], &[0, 1])),
            ("flip", |t| t.flip(&[0, 2])),
        ];
        for (name, op) in ops {
            gradcheck(|t| op(&t[0]), std::slice::from_ref(&x), GradcheckOpts::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    /// split, chunk, unbind, select, unflatten and expand are views of the input's
    /// storage (a write into the input shows in them); repeat, repeat_interleave,
    /// roll and flip are copies, even when nothing moves.
    fn views_and_copies(dev) {
        let x = f64s(&[4, 6], 2, dev);
        let mut views = x.split(4, 1).unwrap();
        views.extend(x.chunk(2, 0).unwrap());
        views.extend(x.unbind(0).unwrap());
        views.push(x.select(1, 5).unwrap());
        views.push(x.unflatten(1, &[3, 2]).unwrap());
        views.push(x.narrow(0, 1, 1).unwrap().expand(&[3, 4, 6]).unwrap());
        let copies: Vec<Tensor> = [
            x.roll(&[0], &[1]),
            x.flip(&[]),
            x.repeat(&[1, 1]),
            x.repeat_interleave(1, 0),
        ]
        .into_iter()
            .map(|c| c.unwrap())
            .collect();
        let before = host(&x);
        x.copy_(&x.mul_scalar(0.0).unwrap()).unwrap();
        for v in &views {
            assert!(host(v).iter().all(|&e| e == 0.0), "{:?} is not a view", v.shape());
        }
        for c in &copies {
            assert_eq!(host(c), before);
        }
    }

    /// Empty dimensions: split and chunk give empty pieces, unbind none, and the
    /// copies keep the empty shape.
    fn empty_inputs(dev) {
        let e = f64s(&[0, 3], 3, dev);
        let shapes = |parts: Vec<Tensor>| parts.iter().map(|p| p.shape().to_vec()).collect::<Vec<_>>();
        assert_eq!(shapes(e.split(2, 0).unwrap()), [vec![0, 3]]);
        assert_eq!(shapes(e.chunk(2, 0).unwrap()), [vec![0, 3], vec![0, 3]]);
        assert!(e.unbind(0).unwrap().is_empty());
        assert_eq!(e.repeat(&[2, 2]).unwrap().shape(), &[0, 6]);
        assert_eq!(e.repeat_interleave(3, 1).unwrap().shape(), &[0, 9]);
        assert_eq!(e.flip(&[0, 1]).unwrap().shape(), &[0, 3]);
        assert_eq!(e.unflatten(1, &[INFER, 1]).unwrap().shape(), &[0, 3, 1]);
    }

    /// Each bad argument is an `Err` that names it (a dim past the rank names the
    /// op), where PyTorch raises.
    fn errors_name_the_argument(dev) {
        let x = f64s(&[2, 3], 4, dev);
        assert_eq!(bad_arg(x.split(0, 1)), "size");
        assert_eq!(bad_arg(x.split_sizes(&[1, 1], 1)), "sizes");
        assert_eq!(bad_arg(x.chunk(0, 0)), "chunks");
        assert_eq!(bad_arg(x.select(1, 3)), "index");
        assert_eq!(bad_arg(x.unflatten(1, &[2, 2])), "sizes");
        assert_eq!(bad_arg(x.unflatten(1, &[INFER, INFER])), "sizes");
        assert_eq!(bad_arg(x.expand(&[3])), "sizes");
        assert_eq!(bad_arg(x.expand(&[2, 4])), "sizes");
        assert_eq!(bad_arg(x.expand(&[INFER, 2, 3])), "sizes");
        assert_eq!(bad_arg(x.repeat(&[2])), "repeats");
        assert_eq!(bad_arg(x.roll(&[1, 2], &[])), "shifts");
        assert_eq!(bad_arg(x.roll(&[1], &[0, 1])), "shifts");
        assert_eq!(bad_arg(x.flip(&[1, 1])), "dims");
        for r in [
            x.split(1, 2).map(|_| ()),
            x.unbind(2).map(|_| ()),
            x.select(2, 0).map(|_| ()),
            x.repeat_interleave(2, 2).map(|_| ()),
            x.roll(&[1], &[2]).map(|_| ()),
            x.flip(&[2]).map(|_| ()),
        ] {
            assert!(matches!(r, Err(Error::DimOutOfRange { dim: 2, rank: 2, .. })), "{r:?}");
        }
    }
}
