//! Deterministic test values. Each test draws from a xorshift generator of its own, made
//! from a seed: the global generator is shared with the tests running in parallel, so
//! values drawn from it would change from run to run.

/// A xorshift64 generator.
pub struct Xorshift(u64);

impl Xorshift {
    /// A generator whose sequence is fixed by `seed` (any seed, zero included).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_bits(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `bits`' top 53 bits as a value in [0, 1).
pub fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// `n` values uniform in [lo, hi).
pub fn uniform(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f64> {
    let mut rng = Xorshift::new(seed);
    (0..n)
        .map(|_| lo + (hi - lo) * unit(rng.next_bits()))
        .collect()
}

/// `n` values in (-2, 2) with |v| ≥ 0.1, every `zero_every`-th one 0 (`usize::MAX`: none).
/// Keeping the others away from 0 keeps finite differences off the kinks there (relu,
/// abs, sign), and distinct in practice, so that no tie (max, sort) lies within a step.
pub fn signed_away_from_zero(n: usize, seed: u64, zero_every: usize) -> Vec<f64> {
    let mut rng = Xorshift::new(seed);
    (0..n)
        .map(|i| {
            let bits = rng.next_bits();
            let v = 0.1 + 1.9 * unit(bits);
            match (i % zero_every == zero_every - 1, bits & 1) {
                (true, _) => 0.0,
                (false, 0) => v,
                (false, _) => -v,
            }
        })
        .collect()
}
