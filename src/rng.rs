//! Random numbers: Philox4x32-10, counter based, identical on the CPU and in
//! `kernels/common.cuh`, so that a seed gives the same numbers on every device.
//!
//! The global generator is a (seed, offset) pair, like PyTorch's Philox state: each
//! random op reserves a range of counters and advances the offset past it, so later
//! ops never reuse numbers. Element `i` of an op uses the 32-bit word `i % 4` of the
//! Philox block for counter `offset + i / 4` (counter words: low and high 32 bits of
//! that number, then 0, 0) under key (low, high 32 bits of the seed). The mapping does
//! not depend on how the work is split, so a GPU launch reproduces the CPU's numbers.
//!
//! A thread may draw from a generator of its own for a while ([`thread_generator`]):
//! then other threads' draws cannot move the numbers it gets, whatever the scheduling.

use parking_lot::Mutex;
use rayon::prelude::*;
use std::cell::RefCell;
use std::marker::PhantomData;

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// PyTorch's default seed, so an unseeded program is reproducible too.
const DEFAULT_SEED: u64 = 67_280_421_310_721;

/// The Philox4x32 block function with 10 rounds (Salmon et al., Random123).
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (counter, key);
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let p0 = u64::from(M0) * u64::from(c[0]);
        let p1 = u64::from(M1) * u64::from(c[2]);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// A reserved stream of random words: element `i` reads [`PhiloxStream::word`]`(i)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhiloxStream {
    /// The generator's key.
    pub seed: u64,
    /// The first counter of the stream.
    pub offset: u64,
}

impl PhiloxStream {
    /// The random word for element `i`.
    pub fn word(&self, i: usize) -> u32 {
        self.block(i / 4)[i % 4]
    }

    /// The four words for elements `4*b .. 4*b+4`.
    pub fn block(&self, b: usize) -> [u32; 4] {
        let n = self.offset.wrapping_add(b as u64);
        philox4x32_10(
            [n as u32, (n >> 32) as u32, 0, 0],
            [self.seed as u32, (self.seed >> 32) as u32],
        )
    }

    /// `n` words, computed in parallel blocks of four.
    pub fn words(&self, n: usize) -> Vec<u32> {
        let mut out = vec![0u32; n];
        out.par_chunks_mut(4 * 1024)
            .enumerate()
            .for_each(|(c, chunk)| {
                for (j, quad) in chunk.chunks_mut(4).enumerate() {
                    let block = self.block(c * 1024 + j);
                    quad.copy_from_slice(&block[..quad.len()]);
                }
            });
        out
    }
}

struct Generator {
    seed: u64,
    offset: u64,
}

static GENERATOR: Mutex<Generator> = Mutex::new(Generator {
    seed: DEFAULT_SEED,
    offset: 0,
});

thread_local! {
    /// The generators of the live [`thread_generator`] guards of this thread,
    /// innermost last.
    static OWN: RefCell<Vec<Generator>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on the generator this thread draws from: its innermost
/// [`thread_generator`], else the shared one.
fn with_generator<R>(f: impl FnOnce(&mut Generator) -> R) -> R {
    OWN.with_borrow_mut(|own| match own.last_mut() {
        Some(g) => f(g),
        None => f(&mut GENERATOR.lock()),
    })
}

/// Seeds every generator of kiln (CPU and CUDA share one Philox state); on a thread
/// inside a [`thread_generator`], that thread's own generator instead.
pub fn manual_seed(seed: u64) {
    with_generator(|g| *g = Generator { seed, offset: 0 });
}

/// While the returned guard lives, the random ops of the calling thread draw from a
/// generator of its own, seeded with `seed`: other threads' draws neither move it nor
/// are moved by it, and [`manual_seed`], [`rng_state`](crate::rng_state) and
/// [`set_rng_state`](crate::set_rng_state) on this thread act on it. Dropping the guard returns the thread to the generator it used
/// before (guards nest). The numbers are those the shared generator gives after
/// `manual_seed(seed)`, on every device.
///
/// For tests that need a seed's exact numbers while other tests draw in parallel (a
/// test binary runs its tests on several threads), and for any section that must be
/// reproducible whatever other threads do. The guard belongs to its thread (not
/// `Send`).
pub fn thread_generator(seed: u64) -> ThreadGenerator {
    let depth = OWN.with_borrow_mut(|own| {
        own.push(Generator { seed, offset: 0 });
        own.len() - 1
    });
    ThreadGenerator {
        depth,
        _not_send: PhantomData,
    }
}

/// The guard of [`thread_generator`]: the thread draws from its own generator until
/// it drops.
#[derive(Debug)]
pub struct ThreadGenerator {
    /// Generators at this depth and above belong to this guard and the guards
    /// nested in it.
    depth: usize,
    _not_send: PhantomData<*const ()>,
}

impl Drop for ThreadGenerator {
    fn drop(&mut self) {
        OWN.with_borrow_mut(|own| own.truncate(self.depth));
    }
}

/// The state of the generator this thread draws from ([`with_generator`]): its seed
/// and Philox offset (what `kiln::rng_state` saves).
pub(crate) fn state() -> (u64, u64) {
    with_generator(|g| (g.seed, g.offset))
}

/// Sets the state of the generator this thread draws from (what
/// `kiln::set_rng_state` restores).
pub(crate) fn set_state(seed: u64, offset: u64) {
    with_generator(|g| *g = Generator { seed, offset });
}

/// Reserves the counters for `n` random words and returns their stream.
pub fn reserve(n: usize) -> PhiloxStream {
    with_generator(|g| {
        let stream = PhiloxStream {
            seed: g.seed,
            offset: g.offset,
        };
        g.offset = g.offset.wrapping_add(n.div_ceil(4) as u64);
        stream
    })
}

/// A word as a uniform number in [0, 1) with 24 random bits (exact in f32).
pub fn uniform(word: u32) -> f64 {
    f64::from(word >> 8) * (1.0 / 16_777_216.0)
}

/// The words `n` normal numbers use: Box–Muller takes them in pairs.
pub fn normal_words(n: usize) -> usize {
    n + n % 2
}

/// Box–Muller on one word pair: elements `2j` and `2j+1` of a normal stream are the
/// cosine and sine of its words `(2j, 2j+1)` (reserve [`normal_words`]`(n)` words).
/// `kernels/random.cu` computes the same mapping in f64.
pub fn normal_pair(w0: u32, w1: u32) -> [f64; 2] {
    let u1 = (f64::from(w0) + 1.0) / 4_294_967_296.0; // (0, 1]: ln is finite
    let u2 = f64::from(w1) / 4_294_967_296.0;
    let r = (-2.0 * u1.ln()).sqrt();
    let theta = 2.0 * std::f64::consts::PI * u2;
    [r * theta.cos(), r * theta.sin()]
}

/// The dropout threshold for drop probability `p` (clamped to [0, 1]): an element
/// whose Philox word `r` satisfies `r < floor((1 - p) * 2^32)` is kept. Compared as
/// integers (u64, since p = 0 gives 2^32), identically on every device.
pub fn keep_threshold(p: f64) -> u64 {
    ((1.0 - p.clamp(0.0, 1.0)) * 4_294_967_296.0).floor() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer vectors from Random123's `kat_vectors` (philox4x32, 10 rounds).
    #[test]
    fn philox_matches_random123() {
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn stream_words_do_not_depend_on_chunking() {
        let s = PhiloxStream { seed: 7, offset: 3 };
        let all = s.words(10_001);
        assert_eq!(all[9_999], s.word(9_999));
        assert_eq!(all[5], s.block(1)[1]);
    }
}
