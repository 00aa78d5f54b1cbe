//! `einsum`: PyTorch's Einstein-summation grammar, planned as views, sums and one
//! batched matmul per pair of operands — never a loop over elements.
//!
//! The plan, per operand: a label repeated in it takes the diagonal (a strided view);
//! a label of size 1 that another operand has larger is summed away (a reshape), so
//! it broadcasts; a label no other operand and not the output needs is summed. Then
//! operands are contracted left to right: labels in both and still needed are the
//! batch, labels in both and no longer needed are contracted, the rest are rows of
//! the left or columns of the right — a permute and reshape of each into
//! (batch, M, K) and (batch, K, N) and one matmul. A final permute orders the output.

use super::Tensor;
use crate::autograd::record;
use crate::shape::Layout;
use crate::{Error, Result};

/// A label: a letter, or one dimension of the ellipsis (numbered right-aligned
/// across operands, so broadcast dimensions share a label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Label {
    /// One of the ellipsis's dimensions, 0 the outermost of the widest operand's.
    Ellipsis(usize),
    /// A letter (`a`-`z`, `A`-`Z`).
    Letter(u8),
}

/// An operand's subscripts as written: letters with at most one ellipsis.
struct Subscripts {
    /// Letters before the ellipsis (all of them when there is none).
    head: Vec<u8>,
    /// Letters after the ellipsis, `None` without one.
    tail: Option<Vec<u8>>,
}

/// Sums the products of `operands`' elements as `equation` says, like
/// `torch.einsum`: subscripts per operand separated by `,`, letters (`a-z`,
/// `A-Z`) naming dimensions, `...` for broadcast dimensions, and an optional `->`
/// with the output's subscripts. Without `->`, the output has the ellipsis's
/// dimensions and then every letter used once, in alphabetical (ASCII) order. A
/// letter repeated in one operand takes its diagonal; letters not in the output are
/// summed; dimensions of size 1 broadcast. Planned as permutes, reshapes, sums and
/// one batched matmul per pair of operands (left to right), so gradients and
/// devices are those of those ops. Malformed equations, and operands that do not
/// fit them, are `Err`s naming `equation` or `operands`.
///
/// ```
/// # use kiln::{Device, Tensor};
/// let a = Tensor::ones(&[2, 3, 4], kiln::DType::F32, &Device::Cpu)?;
/// let b = Tensor::ones(&[2, 4, 5], kiln::DType::F32, &Device::Cpu)?;
/// let c = kiln::einsum("bij,bjk->bik", &[&a, &b])?;
/// assert_eq!(c.shape(), &[2, 3, 5]);
/// # Ok::<(), kiln::Error>(())
/// ```
pub fn einsum(equation: &str, operands: &[&Tensor]) -> Result<Tensor> {
    let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq.as_str(), None),
    };
    let inputs = lhs.split(',').map(parse).collect::<Result<Vec<_>>>()?;
    if inputs.len() != operands.len() {
        return Err(Error::arg(
            "operands",
            format!(
                "einsum: the equation has {} operands, {} given",
                inputs.len(),
                operands.len()
            ),
        ));
    }
    let first = operands[0];
    for t in &operands[1..] {
        first.check_same_device("einsum", t)?;
        first.check_same_dtype("einsum", t)?;
    }
    let ellipsis = ellipsis_rank(&inputs, operands)?;
    let labels: Vec<Vec<Label>> = inputs
        .iter()
        .zip(operands)
        .map(|(s, t)| labels_of(s, t.rank(), ellipsis))
        .collect();
    let output = match rhs {
        Some(r) => output_labels(&parse(r)?, &labels, ellipsis)?,
        None => implicit_output(&labels, ellipsis),
    };
    let mut terms = operands
        .iter()
        .zip(labels)
        .map(|(t, labels)| Term::new(t, labels).without_repeats())
        .collect::<Result<Vec<_>>>()?;
    broadcast_sizes(&mut terms)?;
    contract_all(terms, &output)?.permuted_to(&output)
}

/// One operand (or intermediate result) with a label per dimension.
struct Term {
    t: Tensor,
    labels: Vec<Label>,
}

impl Term {
    fn new(t: &Tensor, labels: Vec<Label>) -> Term {
        Term {
            t: t.clone(),
            labels,
        }
    }

    fn size(&self, l: Label) -> Option<usize> {
        self.labels
            .iter()
            .position(|&m| m == l)
            .map(|d| self.t.shape()[d])
    }

    /// The term with every repeated label reduced to its diagonal.
    fn without_repeats(mut self) -> Result<Term> {
        while let Some((a, b)) = first_repeat(&self.labels) {
            let (sa, sb) = (self.t.shape()[a], self.t.shape()[b]);
            if sa != sb {
                return Err(Error::arg(
                    "operands",
                    format!("einsum: a repeated subscript has sizes {sa} and {sb}"),
                ));
            }
            self.t = self.t.diagonal_view(a, b)?;
            self.labels.remove(b);
        }
        Ok(self)
    }

    /// The term with the labels not in `keep` summed away.
    fn summed_except(self, keep: &[Label]) -> Result<Term> {
        let dims: Vec<usize> = (0..self.labels.len())
            .filter(|&d| !keep.contains(&self.labels[d]))
            .collect();
        if dims.is_empty() {
            return Ok(self);
        }
        let labels = self
            .labels
            .iter()
            .copied()
            .filter(|l| keep.contains(l))
            .collect();
        Ok(Term {
            t: self.t.sum_dims(&dims, false)?,
            labels,
        })
    }

    /// The tensor with its dimensions in the order of `labels` (all of its own).
    fn permuted_to(&self, labels: &[Label]) -> Result<Tensor> {
        let order: Vec<usize> = labels
            .iter()
            .map(|l| {
                self.labels
                    .iter()
                    .position(|m| m == l)
                    .expect("a label of the term")
            })
            .collect();
        self.t.permute(&order)
    }

    /// The tensor with dimensions in the order of the three groups, each merged.
    fn as_matrices(&self, groups: [&[Label]; 3]) -> Result<Tensor> {
        let order: Vec<Label> = groups.concat();
        let shape = groups.map(|g| g.iter().map(|&l| self.size(l).unwrap_or(1)).product());
        self.permuted_to(&order)?.reshape(&shape)
    }
}

/// The first pair of dimensions that share a label.
fn first_repeat(labels: &[Label]) -> Option<(usize, usize)> {
    (0..labels.len()).find_map(|b| {
        labels[..b]
            .iter()
            .position(|&l| l == labels[b])
            .map(|a| (a, b))
    })
}

/// Parses one operand's subscripts: letters and at most one `...`.
fn parse(s: &str) -> Result<Subscripts> {
    let bad = |why: String| Error::arg("equation", format!("einsum: {why} in {s:?}"));
    let letters = |part: &str| -> Result<Vec<u8>> {
        part.bytes()
            .map(|c| match c.is_ascii_alphabetic() {
                true => Ok(c),
                false => Err(bad(format!("{:?} is not a subscript letter", c as char))),
            })
            .collect()
    };
    match s.split_once("...") {
        None => Ok(Subscripts {
            head: letters(s)?,
            tail: None,
        }),
        Some((_, rest)) if rest.contains("...") => Err(bad("more than one ellipsis".into())),
        Some((head, tail)) => Ok(Subscripts {
            head: letters(head)?,
            tail: Some(letters(tail)?),
        }),
    }
}

/// The number of dimensions the ellipsis stands for (the most any operand gives it);
/// Err when an operand's rank does not fit its subscripts.
fn ellipsis_rank(inputs: &[Subscripts], operands: &[&Tensor]) -> Result<usize> {
    let mut most = 0;
    for (i, (s, t)) in inputs.iter().zip(operands).enumerate() {
        let letters = s.head.len() + s.tail.as_ref().map_or(0, Vec::len);
        let fits = match s.tail {
            None => t.rank() == letters,
            Some(_) => t.rank() >= letters,
        };
        if !fits {
            return Err(Error::arg(
                "operands",
                format!(
                    "einsum: operand {i} has {} dimensions, its subscripts name {letters}",
                    t.rank()
                ),
            ));
        }
        most = most.max(t.rank() - letters);
    }
    Ok(most)
}

/// The labels of an operand of `rank` dimensions, its ellipsis right-aligned within
/// the `ellipsis` broadcast dimensions.
fn labels_of(s: &Subscripts, rank: usize, ellipsis: usize) -> Vec<Label> {
    let mut labels: Vec<Label> = s.head.iter().map(|&c| Label::Letter(c)).collect();
    if let Some(tail) = &s.tail {
        let own = rank - s.head.len() - tail.len();
        labels.extend((ellipsis - own..ellipsis).map(Label::Ellipsis));
        labels.extend(tail.iter().map(|&c| Label::Letter(c)));
    }
    labels
}

/// The explicit output's labels: each letter once and used by an input; the
/// ellipsis (when written) stands for all broadcast dimensions.
fn output_labels(s: &Subscripts, inputs: &[Vec<Label>], ellipsis: usize) -> Result<Vec<Label>> {
    let written = s.head.len() + s.tail.as_ref().map_or(0, Vec::len);
    let labels = labels_of(s, written + ellipsis, ellipsis);
    for (i, l) in labels.iter().enumerate() {
        let Label::Letter(c) = *l else { continue };
        if labels[..i].contains(l) {
            return Err(Error::arg(
                "equation",
                format!("einsum: output subscript {} appears twice", c as char),
            ));
        }
        if !inputs.iter().any(|labels| labels.contains(l)) {
            return Err(Error::arg(
                "equation",
                format!("einsum: output subscript {} is in no operand", c as char),
            ));
        }
    }
    Ok(labels)
}

/// The implicit output: the ellipsis's dimensions, then the letters written exactly
/// once in the whole equation, in ASCII order.
fn implicit_output(inputs: &[Vec<Label>], ellipsis: usize) -> Vec<Label> {
    let letters: Vec<Label> = inputs
        .iter()
        .flatten()
        .copied()
        .filter(|l| matches!(l, Label::Letter(_)))
        .collect();
    let mut once: Vec<Label> = letters
        .iter()
        .copied()
        .filter(|l| letters.iter().filter(|&m| m == l).count() == 1)
        .collect();
    once.sort_unstable();
    (0..ellipsis).map(Label::Ellipsis).chain(once).collect()
}

/// Checks that each label has one size across operands or size 1 (broadcast); a
/// dimension of size 1 where another operand's is larger is summed away.
fn broadcast_sizes(terms: &mut [Term]) -> Result<()> {
    let mut sizes: Vec<(Label, usize)> = Vec::new();
    for term in terms.iter() {
        for (&l, &s) in term.labels.iter().zip(term.t.shape()) {
            match sizes.iter_mut().find(|(m, _)| *m == l) {
                Some((_, seen)) if *seen == s || s == 1 => {}
                Some((_, seen)) if *seen == 1 => *seen = s,
                Some((_, seen)) => {
                    return Err(Error::arg(
                        "operands",
                        format!(
                            "einsum: a subscript has sizes {seen} and {s}, which do not broadcast"
                        ),
                    ))
                }
                None => sizes.push((l, s)),
            }
        }
    }
    for term in terms.iter_mut() {
        let keep: Vec<Label> = term
            .labels
            .iter()
            .zip(term.t.shape())
            .filter(|&(l, &s)| s != 1 || sizes.iter().any(|&(m, n)| m == *l && n == 1))
            .map(|(&l, _)| l)
            .collect();
        let shape: Vec<usize> = term
            .labels
            .iter()
            .zip(term.t.shape())
            .filter(|(l, _)| keep.contains(l))
            .map(|(_, &s)| s)
            .collect();
        // Only size-1 dimensions go: a reshape.
        term.t = term.t.reshape(&shape)?;
        term.labels = keep;
    }
    Ok(())
}

/// Contracts the terms left to right; the result has only labels of `output`.
fn contract_all(terms: Vec<Term>, output: &[Label]) -> Result<Term> {
    let mut rest = terms.into_iter();
    let mut acc = rest.next().expect("einsum has at least one operand");
    let later: Vec<Term> = rest.collect();
    for (i, next) in later.iter().enumerate() {
        // Labels still needed after this step: the output's and later operands'.
        let mut keep: Vec<Label> = output.to_vec();
        keep.extend(later[i + 1..].iter().flat_map(|t| t.labels.iter().copied()));
        let mut own_keep = keep.clone();
        own_keep.extend(next.labels.iter().copied());
        let left = acc.summed_except(&own_keep)?;
        let mut their_keep = keep.clone();
        their_keep.extend(left.labels.iter().copied());
        let right = Term::new(&next.t, next.labels.clone()).summed_except(&their_keep)?;
        acc = contract(&left, &right, &keep)?;
    }
    acc.summed_except(output)
}

/// One batched matmul: `a` as (batch, M, K) times `b` as (batch, K, N).
fn contract(a: &Term, b: &Term, keep: &[Label]) -> Result<Term> {
    let in_b = |l: &Label| b.labels.contains(l);
    let batch: Vec<Label> = a
        .labels
        .iter()
        .copied()
        .filter(|l| in_b(l) && keep.contains(l))
        .collect();
    let summed: Vec<Label> = a
        .labels
        .iter()
        .copied()
        .filter(|l| in_b(l) && !keep.contains(l))
        .collect();
    let rows: Vec<Label> = a.labels.iter().copied().filter(|l| !in_b(l)).collect();
    let cols: Vec<Label> = b
        .labels
        .iter()
        .copied()
        .filter(|l| !a.labels.contains(l))
        .collect();
    let lhs = a.as_matrices([&batch, &rows, &summed])?;
    let rhs = b.as_matrices([&batch, &summed, &cols])?;
    let shape: Vec<usize> = [(&batch, a), (&rows, a), (&cols, b)]
        .iter()
        .flat_map(|(group, term)| group.iter().map(|&l| term.size(l).unwrap_or(1)))
        .collect();
    Ok(Term {
        t: lhs.matmul(&rhs)?.reshape(&shape)?,
        labels: [batch, rows, cols].concat(),
    })
}

impl Tensor {
    /// The diagonal of dimensions `a < b` (equal sizes) as dimension `a`, `b`
    /// removed: a strided view. The gradient fills that diagonal of zeros.
    fn diagonal_view(&self, a: usize, b: usize) -> Result<Tensor> {
        let _op = crate::profiler::op("diagonal", &[self]);
        let diagonal = move |l: &Layout| {
            let mut l = l.clone();
            l.strides[a] += l.strides[b];
            l.shape.remove(b);
            l.strides.remove(b);
            l
        };
        let out = self.with_layout(diagonal(self.layout()));
        let shape = self.shape().to_vec();
        Ok(record(out, "diagonal", &[self], move |_, g| {
            let grad = Tensor::zeros(&shape, g.dtype(), &g.device())?;
            grad.copy_region_from(&diagonal(grad.layout()), g)?;
            Ok(vec![Some(grad)])
        }))
    }
}
