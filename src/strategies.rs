//! Pure, deterministic CPU kernels behind the built-in [`JobKind`]s.
//!
//! `compute_cost` is the caller's estimate of CPU time in nanoseconds, so each kernel
//! scales its work with the cost: a job of cost `c` takes roughly `c` ns on a modern
//! core. Calibration measured with `cargo bench --bench strategies` on the 2-core AMD
//! EPYC (KVM) development machine, as nanoseconds of wall time per unit of cost:
//!
//! | kernel | 1 µs | 100 µs | 5 ms | 50 ms |
//! |---|---|---|---|---|
//! | `hashmix` | 0.98 | 0.99 | 0.99 | 0.98 |
//! | `primecount` | 1.49 | 0.97 | 1.11 | 1.37 |
//! | `montecarlo_risk` | 1.07 | 0.98 | 0.97 | 0.97 |
//!
//! Below about 1 µs a fixed overhead dominates and the ratio is not meaningful.

use crate::types::{Job, JobKind, Output};

/// Hash steps per 7 ns of cost (a step is a dependent multiply + xor-shift, ≈1.75 ns).
pub(crate) const HASH_STEPS_PER_7NS: u64 = 4;
/// Sieve candidates per 6 ns of cost (≈1.2 ns per candidate, amortised).
pub(crate) const SIEVE_CANDIDATES_PER_6NS: u64 = 5;
/// Nanoseconds of cost per Monte-Carlo path (4 assets × 4 uniforms ≈ 30 ns).
pub(crate) const NS_PER_MC_PATH: u64 = 30;

/// Upper bound of the sieve span, so the cost cannot demand unbounded work per job.
/// Memory is bounded independently of it by the segmented sieve.
pub(crate) const MAX_SIEVE_SPAN: u64 = 1 << 32;
/// Sieve segment size in bytes (fits in L1/L2).
const SEGMENT: usize = 32 * 1024;
/// Histogram bins for the loss distribution (bounded memory regardless of paths).
const LOSS_BINS: usize = 512;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Runs a built-in job's kernel.
///
/// # Examples
///
/// ```
/// use helixrouter::strategies::execute_job;
/// use helixrouter::types::{Job, JobKind, Output};
/// let job = Job { id: 3, kind: JobKind::PrimeCount, inputs: vec![0], compute_cost: 120,
///                 scaling_potential: 0.0, latency_budget_ms: 10 };
/// assert_eq!(execute_job(&job), Output::U64(25)); // span 5 × 120 / 6 = 100: primes below 100
/// ```
#[inline]
pub fn execute_job(job: &Job) -> Output {
    match job.kind {
        JobKind::HashMix => Output::U64(hashmix(&job.inputs, job.compute_cost)),
        JobKind::PrimeCount => Output::U64(primecount(&job.inputs, job.compute_cost)),
        JobKind::MonteCarloRisk => {
            Output::F64(montecarlo_risk(job.id, &job.inputs, job.compute_cost))
        }
    }
}

/// FNV-style hash chain: folds the inputs into a 64-bit state `4 × cost / 7` times
/// (at least once per input), with an xor-shift after each multiply.
#[inline]
pub fn hashmix(inputs: &[u64], cost: u64) -> u64 {
    let inputs: &[u64] = if inputs.is_empty() { &[0] } else { inputs };
    let steps = (cost.saturating_mul(HASH_STEPS_PER_7NS) / 7).max(inputs.len() as u64);
    let rounds = steps.div_ceil(inputs.len() as u64);
    let mut h = FNV_OFFSET;
    for r in 0..rounds {
        for &x in inputs {
            h ^= x ^ r;
            h = h.wrapping_mul(FNV_PRIME);
            h ^= h >> 29;
        }
    }
    h
}

/// Counts the primes in `[lo, lo + span)` with a segmented sieve of Eratosthenes, where
/// `lo = inputs[0] mod 2^20` and `span = 5 × cost / 6` (clamped to `MAX_SIEVE_SPAN`).
/// Memory stays below `SEGMENT + sqrt(hi)` bytes whatever the cost.
pub fn primecount(inputs: &[u64], cost: u64) -> u64 {
    let lo = inputs.first().map_or(0, |x| x % (1 << 20));
    let span = (cost.saturating_mul(SIEVE_CANDIDATES_PER_6NS) / 6).clamp(1, MAX_SIEVE_SPAN);
    count_primes_in(lo, lo + span)
}

/// Primes `p` with `lo <= p < hi`.
fn count_primes_in(lo: u64, hi: u64) -> u64 {
    if hi <= 2 {
        return 0;
    }
    let root = isqrt(hi - 1) + 1;
    let base = simple_sieve(root);
    let mut seg = vec![true; SEGMENT];
    let mut count = 0u64;
    let mut start = lo.max(2);
    while start < hi {
        let end = (start + SEGMENT as u64).min(hi);
        let len = (end - start) as usize;
        seg[..len].fill(true);
        for &p in &base {
            let p = p as u64;
            if p * p >= end {
                break;
            }
            let first = (start.div_ceil(p) * p).max(p * p);
            let mut m = first;
            while m < end {
                seg[(m - start) as usize] = false;
                m += p;
            }
        }
        count += seg[..len].iter().filter(|&&b| b).count() as u64;
        start = end;
    }
    count
}

/// Primes below `n` (n is at most about 65 537 here).
fn simple_sieve(n: u64) -> Vec<u32> {
    let n = n as usize;
    let mut is = vec![true; n.max(2)];
    is[0] = false;
    if n > 1 {
        is[1] = false;
    }
    let mut i = 2;
    while i * i < n {
        if is[i] {
            let mut j = i * i;
            while j < n {
                is[j] = false;
                j += i;
            }
        }
        i += 1;
    }
    is.iter()
        .enumerate()
        .filter(|(_, b)| **b)
        .map(|(i, _)| i as u32)
        .collect()
}

fn isqrt(n: u64) -> u64 {
    let mut r = (n as f64).sqrt() as u64;
    while r * r > n {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= n {
        r += 1;
    }
    r
}

/// Monte-Carlo 95% value-at-risk of an equally weighted portfolio whose asset
/// volatilities come from `inputs` (up to 8 assets), over `cost / 30` paths drawn with
/// xorshift64 seeded from `seed` and the inputs. Losses go into a fixed histogram, so
/// memory does not grow with the number of paths. Returns the loss (fraction of value).
pub fn montecarlo_risk(seed: u64, inputs: &[u64], cost: u64) -> f64 {
    let n_assets = inputs.len().clamp(1, 8);
    let mut vols = [0.0f64; 8];
    for (i, v) in vols.iter_mut().take(n_assets).enumerate() {
        let x = inputs.get(i).copied().unwrap_or(0);
        *v = 0.01 + (x % 1000) as f64 / 1000.0 * 0.04; // 1%..5% daily vol
    }
    let weight = 1.0 / n_assets as f64;
    let paths = (cost / NS_PER_MC_PATH).max(1);
    let mut state = hashmix(inputs, 0) ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    // Losses in [-0.25, 0.25) mapped to bins; tails clamp to the edge bins.
    const RANGE: f64 = 0.25;
    let mut hist = [0u32; LOSS_BINS];
    for _ in 0..paths {
        let mut ret = 0.0;
        for &vol in vols.iter().take(n_assets) {
            // Irwin–Hall(4) shock: mean 0, variance 1/3 → scale to unit variance.
            let mut u = 0.0;
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                u += (state >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
            }
            ret += weight * vol * (u - 2.0) * 1.732_050_807_568_877_2;
        }
        let loss = -ret;
        let bin = (((loss + RANGE) / (2.0 * RANGE)) * LOSS_BINS as f64) as isize;
        hist[bin.clamp(0, LOSS_BINS as isize - 1) as usize] += 1;
    }
    let target = (paths as f64 * 0.95).ceil() as u64;
    let mut seen = 0u64;
    for (i, &c) in hist.iter().enumerate() {
        seen += u64::from(c);
        if seen >= target {
            return (i as f64 + 0.5) / LOSS_BINS as f64 * 2.0 * RANGE - RANGE;
        }
    }
    RANGE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primecount_matches_known_counts() {
        assert_eq!(count_primes_in(0, 100), 25);
        assert_eq!(count_primes_in(0, 1_000_000), 78_498);
        assert_eq!(count_primes_in(100, 200), 21);
        assert_eq!(count_primes_in(0, 2), 0);
        assert_eq!(count_primes_in(0, 3), 1);
        // Spans several segments.
        assert_eq!(count_primes_in(1_000_000, 1_100_000), 7_216);
    }

    #[test]
    fn kernels_are_deterministic() {
        let inputs = [7, 11, 13, 17];
        assert_eq!(hashmix(&inputs, 5_000), hashmix(&inputs, 5_000));
        assert_ne!(hashmix(&inputs, 5_000), hashmix(&[7, 11, 13, 18], 5_000));
        assert_eq!(primecount(&inputs, 50_000), primecount(&inputs, 50_000));
        let a = montecarlo_risk(9, &inputs, 100_000);
        assert_eq!(a.to_bits(), montecarlo_risk(9, &inputs, 100_000).to_bits());
        assert_ne!(a.to_bits(), montecarlo_risk(10, &inputs, 100_000).to_bits());
    }

    #[test]
    fn var_is_plausible() {
        // 4 assets at 1%..5% vol, equal weight: 95% VaR of a few percent.
        let v = montecarlo_risk(1, &[500, 500, 500, 500], 2_000_000);
        assert!(v > 0.005 && v < 0.06, "{v}");
    }

    #[test]
    fn empty_inputs_are_fine() {
        let _ = hashmix(&[], 10);
        let _ = primecount(&[], 10);
        assert!(montecarlo_risk(0, &[], 10).is_finite());
    }
}
