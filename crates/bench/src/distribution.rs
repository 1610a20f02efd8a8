//! Exact discrete distributions: weighted choice and Zipf, sampled by inverse transform.
//!
//! The cumulative weights are computed once; a draw is one uniform number and a binary
//! search, so the sampled frequencies converge to the exact probabilities (no rejection
//! sampling, no continuous approximation of the harmonic numbers).

use rand::Rng;

/// A distribution over `0..len` given by relative weights.
#[derive(Debug, Clone)]
pub struct Discrete {
    /// `cumulative[i]` is the sum of the weights of `0..=i`; the last entry is the total.
    cumulative: Vec<f64>,
}

impl Discrete {
    /// Builds the distribution, or `None` when there is no weight, one is negative or not
    /// finite, or they sum to zero.
    pub fn from_weights(weights: impl IntoIterator<Item = f64>) -> Option<Discrete> {
        let mut cumulative = Vec::new();
        let mut total = 0.0;
        for weight in weights {
            if !weight.is_finite() || weight < 0.0 {
                return None;
            }
            total += weight;
            cumulative.push(total);
        }
        if total > 0.0 { Some(Discrete { cumulative }) } else { None }
    }

    /// Zipf's law over ranks `0..n`: rank `k` (0-based) has weight `1 / (k + 1)^exponent`.
    pub fn zipf(n: usize, exponent: f64) -> Option<Discrete> {
        if !exponent.is_finite() || exponent < 0.0 {
            return None;
        }
        Discrete::from_weights((1..=n).map(|rank| (rank as f64).powf(-exponent)))
    }

    pub fn len(&self) -> usize {
        self.cumulative.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cumulative.is_empty()
    }

    /// The exact probability of `index`.
    pub fn probability(&self, index: usize) -> f64 {
        let below = if index == 0 { 0.0 } else { self.cumulative[index - 1] };
        (self.cumulative[index] - below) / self.total()
    }

    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let point = rng.random::<f64>() * self.total();
        // The first index whose cumulative weight exceeds the point; zero-weight entries
        // share their predecessor's cumulative value and so are never chosen.
        let index = self.cumulative.partition_point(|&cumulative| cumulative <= point);
        index.min(self.cumulative.len() - 1)
    }

    fn total(&self) -> f64 {
        self.cumulative[self.cumulative.len() - 1]
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn zipf_probabilities_follow_the_power_law() {
        let zipf = Discrete::zipf(1000, 1.1).unwrap();
        let ratio = zipf.probability(0) / zipf.probability(1);
        assert!((ratio - 2f64.powf(1.1)).abs() < 1e-9);
        let total: f64 = (0..zipf.len()).map(|index| zipf.probability(index)).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }

    #[test]
    fn sampled_frequencies_match_the_probabilities() {
        let zipf = Discrete::zipf(50, 1.1).unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let draws = 200_000;
        let mut counts = vec![0u32; zipf.len()];
        for _ in 0..draws {
            counts[zipf.sample(&mut rng)] += 1;
        }
        for rank in [0, 1, 5, 49] {
            let observed = f64::from(counts[rank]) / f64::from(draws);
            let expected = zipf.probability(rank);
            assert!((observed - expected).abs() < 0.01 + expected * 0.05, "rank {rank}: {observed} vs {expected}");
        }
    }

    #[test]
    fn zero_weights_are_never_drawn() {
        let choice = Discrete::from_weights([0.0, 1.0, 0.0, 3.0, 0.0]).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..10_000 {
            let index = choice.sample(&mut rng);
            assert!(index == 1 || index == 3, "drew {index}");
        }
    }

    #[test]
    fn refuses_unusable_weights() {
        assert!(Discrete::from_weights([]).is_none());
        assert!(Discrete::from_weights([0.0, 0.0]).is_none());
        assert!(Discrete::from_weights([1.0, -1.0]).is_none());
        assert!(Discrete::from_weights([f64::NAN]).is_none());
        assert!(Discrete::zipf(0, 1.1).is_none());
    }
}
