//! Latency percentiles and throughput, reported as JSON fields.

use std::time::Duration;

/// Latencies of individual operations, in the order they finished.
#[derive(Debug, Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn record(&mut self, latency: Duration) {
        self.0.push(latency);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Nearest-rank percentile in milliseconds.
    pub fn percentile_ms(&mut self, p: usize) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.sort_unstable();
        let rank = (p * self.0.len()).div_ceil(100).max(1);
        self.0[rank - 1].as_secs_f64() * 1_000.0
    }
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}
