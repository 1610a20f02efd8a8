//! Open-loop pacing: when each request of a fixed-rate run is due.
//!
//! An open-loop client sends on a schedule whether or not earlier requests have been
//! answered, and measures each latency from the moment the request was *due*, not from when
//! it was sent. A closed-loop client that waits for slow answers would send less while the
//! server struggles and hide exactly the latencies we want to see (coordinated omission).

use std::time::Duration;

/// A fixed-rate schedule: request `i` carries `units_per_request` events (or queries) and is
/// due `i * units_per_request / units_per_second` seconds after the start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    units_per_request: u64,
    units_per_second: f64,
}

impl Schedule {
    /// `None` unless both the rate and the request size are positive.
    pub fn new(units_per_request: u64, units_per_second: f64) -> Option<Schedule> {
        let usable = units_per_request > 0 && units_per_second.is_finite() && units_per_second > 0.0;
        usable.then_some(Schedule { units_per_request, units_per_second })
    }

    /// How long after the start request `index` is due. Computed from the index alone, so
    /// rounding never accumulates over a long run.
    pub fn offset(&self, index: u64) -> Duration {
        let units = index as f64 * self.units_per_request as f64;
        Duration::from_secs_f64(units / self.units_per_second)
    }

    /// How many requests fall due within `duration` of the start.
    pub fn requests_within(&self, duration: Duration) -> u64 {
        (duration.as_secs_f64() * self.units_per_second / self.units_per_request as f64).floor() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_spaced_by_their_share_of_the_rate() {
        let schedule = Schedule::new(1000, 50_000.0).unwrap();
        assert_eq!(schedule.offset(0), Duration::ZERO);
        assert_eq!(schedule.offset(1), Duration::from_millis(20));
        assert_eq!(schedule.offset(50), Duration::from_secs(1));
        assert_eq!(schedule.requests_within(Duration::from_secs(10)), 500);
    }

    #[test]
    fn long_runs_do_not_drift() {
        let schedule = Schedule::new(1, 3.0).unwrap();
        let offset = schedule.offset(3_000_000);
        assert!(offset.abs_diff(Duration::from_secs(1_000_000)) < Duration::from_micros(1));
    }

    #[test]
    fn refuses_a_zero_rate_or_size() {
        assert!(Schedule::new(0, 10.0).is_none());
        assert!(Schedule::new(10, 0.0).is_none());
        assert!(Schedule::new(10, f64::INFINITY).is_none());
    }
}
