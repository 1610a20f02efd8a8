//! Exact summary statistics over recorded samples: nearest-rank percentiles of latencies
//! and the median and spread of a figure measured over repeated runs.

use std::time::Duration;

/// The nearest-rank percentile of sorted samples: the smallest sample such that at least
/// `percent` % of all samples are at or below it. No interpolation, so the result is always
/// a value that was actually observed. `None` for no samples.
pub fn percentile<T: Copy>(sorted: &[T], percent: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (percent / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Latency percentiles of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySummary {
    pub count: usize,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

impl LatencySummary {
    /// Summarises the samples, or `None` when there are none.
    pub fn from_samples(mut samples: Vec<Duration>) -> Option<LatencySummary> {
        samples.sort_unstable();
        let total: Duration = samples.iter().sum();
        let count = samples.len();
        Some(LatencySummary {
            count,
            p50: percentile(&samples, 50.0)?,
            p90: percentile(&samples, 90.0)?,
            p99: percentile(&samples, 99.0)?,
            max: *samples.last()?,
            mean: total / u32::try_from(count).unwrap_or(u32::MAX),
        })
    }
}

/// The median, minimum and maximum of one figure over repeated runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Every run's value, in run order.
    pub runs: Vec<f64>,
}

impl Spread {
    /// `None` for no runs. The median of an even number of runs is the mean of the two
    /// middle values.
    pub fn of(runs: &[f64]) -> Option<Spread> {
        let mut sorted = runs.to_vec();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        let median = match sorted.len() {
            0 => return None,
            len if len % 2 == 1 => sorted[middle],
            _ => (sorted[middle - 1] + sorted[middle]) / 2.0,
        };
        Some(Spread { median, min: sorted[0], max: sorted[sorted.len() - 1], runs: runs.to_vec() })
    }

    /// Half the range as a percentage of the median: the "±" to print beside it.
    pub fn relative_half_range_percent(&self) -> f64 {
        if self.median == 0.0 { 0.0 } else { (self.max - self.min) / 2.0 / self.median * 100.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&samples, 50.0), Some(50));
        assert_eq!(percentile(&samples, 99.0), Some(99));
        assert_eq!(percentile(&samples, 100.0), Some(100));
        assert_eq!(percentile(&samples, 0.0), Some(1));
        let few = [10, 20, 30];
        assert_eq!(percentile(&few, 50.0), Some(20));
        assert_eq!(percentile(&few, 90.0), Some(30));
        assert_eq!(percentile::<u32>(&[], 50.0), None);
    }

    #[test]
    fn latency_summary_sorts_its_samples() {
        let samples = [5, 1, 4, 2, 3, 100, 6, 7, 8, 9].map(Duration::from_millis).to_vec();
        let summary = LatencySummary::from_samples(samples).unwrap();
        assert_eq!(summary.count, 10);
        assert_eq!(summary.p50, Duration::from_millis(5));
        assert_eq!(summary.p90, Duration::from_millis(9));
        assert_eq!(summary.p99, Duration::from_millis(100));
        assert_eq!(summary.max, Duration::from_millis(100));
        assert_eq!(summary.mean, Duration::from_micros(14_500));
        assert!(LatencySummary::from_samples(Vec::new()).is_none());
    }

    #[test]
    fn spread_over_runs() {
        let odd = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        assert_eq!(odd.runs, vec![3.0, 1.0, 2.0]);
        assert!((odd.relative_half_range_percent() - 50.0).abs() < 1e-9);
        let even = Spread::of(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(even.median, 2.5);
        assert!(Spread::of(&[]).is_none());
    }
}
